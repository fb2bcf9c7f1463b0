//! [`Settings`]: free-form library options whose credentials are [`Secret`]s.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Secret;

/// Free-form `key = value` options handed unchanged to a library (librdkafka settings,
/// object_store options). Values under keys that name a credential ([`is_secret_key`]) are
/// held as [`Secret`]s: `Debug` and serialization show them redacted, and only
/// [`Settings::exposed`] gives them back, for the library. Keys are kept sorted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings(BTreeMap<String, Value>);

#[derive(Clone, PartialEq, Eq)]
enum Value {
    Plain(String),
    Secret(Secret),
}

impl Value {
    fn expose(&self) -> &str {
        match self {
            Value::Plain(value) => value,
            Value::Secret(secret) => secret.expose(),
        }
    }
}

impl Settings {
    /// No settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`, as a [`Secret`] when the key names a credential.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = if is_secret_key(&key) {
            Value::Secret(Secret::new(value))
        } else {
            Value::Plain(value.into())
        };
        self.0.insert(key, value);
    }

    /// Sets `key` to a secret, whatever its name.
    pub fn insert_secret(&mut self, key: impl Into<String>, value: Secret) {
        self.0.insert(key.into(), Value::Secret(value));
    }

    /// Sets every key of `other` here, its values winning.
    pub fn merge(&mut self, other: &Settings) {
        self.0
            .extend(other.0.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// The value of `key`, secret or not, for the library that needs it. Never log it.
    pub fn expose(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(Value::expose)
    }

    /// Whether `key` is set and held as a secret.
    pub fn is_secret(&self, key: &str) -> bool {
        matches!(self.0.get(key), Some(Value::Secret(_)))
    }

    /// Every `(key, value)` in key order, secrets included, for the library that needs
    /// them. Never log them.
    pub fn exposed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.expose()))
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Settings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut settings = Settings::new();
        for (key, value) in iter {
            settings.insert(key, value);
        }
        settings
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.0 {
            match value {
                Value::Plain(value) => map.entry(key, value),
                Value::Secret(secret) => map.entry(key, secret),
            };
        }
        map.finish()
    }
}

impl Serialize for Settings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            match value {
                Value::Plain(value) => map.serialize_entry(key, value)?,
                Value::Secret(secret) => map.serialize_entry(key, secret)?,
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let plain = BTreeMap::<String, String>::deserialize(deserializer)?;
        for (key, value) in &plain {
            if is_secret_key(key) {
                Secret::check_not_marker::<D::Error>(value)?;
            }
        }
        Ok(plain.into_iter().collect())
    }
}

/// Parts of a setting's name that make it a credential wherever they appear.
const SECRET_PARTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "private",
    "passphrase",
    // librdkafka's unsecured-JWT settings (`principal=... extension_...=...`).
    "oauthbearer.config",
];

/// Last words that make a `key` setting name an identifier or a file rather than key
/// material (`aws_access_key_id`, `ssl.key.location`).
const NOT_KEY_MATERIAL: &[&str] = &["id", "location", "path", "file", "name", "type"];

/// Whether a setting named `key` holds a credential: its name mentions a password, secret,
/// token, credential or private key, or it is key material (`ssl.key.pem`,
/// `azure_storage_account_key`), not a key's id or file (`aws_access_key_id`,
/// `ssl.key.location`). Case is ignored; `.`, `_` and `-` separate words.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if SECRET_PARTS.iter().any(|part| key.contains(part)) {
        return true;
    }
    let words: Vec<&str> = key
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.contains(&"key") && !words.last().is_some_and(|w| NOT_KEY_MATERIAL.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_credentials_are_secret() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            "aws_session_token",
            "azure_storage_account_key",
            "azure_storage_sas_key",
            "google_service_account_key",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "bootstrap.servers",
            "security.protocol",
            "sasl.mechanism",
            "sasl.username",
            "ssl.key.location",
            "ssl.keystore.location",
            "ssl.ca.pem",
            "aws_access_key_id",
            "aws_region",
            "aws_endpoint",
            "client.id",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    fn sample() -> Settings {
        [
            ("security.protocol", "SASL_SSL"),
            ("sasl.username", "alice"),
            ("sasl.password", "hunter2"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn debug_and_serialization_redact_secret_keys_only() {
        let settings = sample();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("alice") && debug.contains("SASL_SSL"),
            "{debug}"
        );
        let json = serde_json::to_value(&settings).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "sasl.password": "<redacted>",
                "sasl.username": "alice",
                "security.protocol": "SASL_SSL",
            })
        );
    }

    #[test]
    fn deserializes_a_map_of_strings_and_exposes_every_value() {
        let settings: Settings = serde_json::from_str(
            r#"{"sasl.username": "alice", "sasl.password": "hunter2", "security.protocol": "SASL_SSL"}"#,
        )
        .expect("map");
        assert_eq!(settings, sample());
        assert!(settings.is_secret("sasl.password"));
        assert!(!settings.is_secret("sasl.username"));
        assert_eq!(settings.expose("sasl.password"), Some("hunter2"));
        let exposed: Vec<_> = settings.exposed().collect();
        assert_eq!(
            exposed,
            [
                ("sasl.password", "hunter2"),
                ("sasl.username", "alice"),
                ("security.protocol", "SASL_SSL"),
            ]
        );
        assert!(serde_json::from_str::<Settings>(r#"{"sasl.password": "<redacted>"}"#).is_err());
    }

    #[test]
    fn merge_lets_the_other_side_win_and_keeps_it_secret() {
        let mut base = Settings::new();
        base.insert("aws_region", "us-east-1");
        base.insert_secret("custom", Secret::new("hidden"));
        let mut overrides = Settings::new();
        overrides.insert("aws_region", "eu-west-1");
        base.merge(&overrides);
        assert_eq!(base.expose("aws_region"), Some("eu-west-1"));
        assert!(base.is_secret("custom"));
        assert_eq!(base.len(), 2);
        assert_eq!(base.keys().collect::<Vec<_>>(), ["aws_region", "custom"]);
        assert!(!format!("{base:?}").contains("hidden"));
    }
}
