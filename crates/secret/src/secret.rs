//! The [`Secret`] type.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

/// What a secret shows instead of its value, in `Debug`, `Display` and serialization.
pub const REDACTED: &str = "<redacted>";

/// A credential (password, secret key, token). `Debug`, `Display` and `Serialize` show
/// [`REDACTED`]; it deserializes from a plain string; [`Secret::expose`] gives the value.
/// Equality runs in constant time.
///
/// The value is not wiped from memory on drop: it is copied into the libraries that use
/// it (librdkafka, object_store, HTTP headers), which would keep copies anyway.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, to hand to the library that needs it. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the credential is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `candidate` (a token presented by a client, say) is this secret, compared in
    /// a time that does not depend on where the two differ. Only the length is not hidden.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }

    /// Refuses the redaction marker as a value: it means a printed config was copied back
    /// into a file, and connecting with `<redacted>` as a password fails obscurely later.
    pub(crate) fn check_not_marker<E: serde::de::Error>(value: &str) -> Result<(), E> {
        if value == REDACTED {
            return Err(E::custom(format!(
                "a secret is set to the redaction marker {REDACTED:?}, copied from printed \
                 output: set the real value"
            )));
        }
        Ok(())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.expose())
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Secret::check_not_marker::<D::Error>(&value)?;
        Ok(Secret(value))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// So a command-line flag can be a `Secret` directly.
impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "hunter2-s3cr3t";

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new(VALUE);
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(<redacted>))");
        assert!(!format!("{secret:#?}").contains(VALUE));
    }

    #[test]
    fn serializes_as_the_marker_and_deserializes_from_a_plain_string() {
        let secret: Secret = serde_json::from_str(&format!("\"{VALUE}\"")).expect("string");
        assert_eq!(secret.expose(), VALUE);
        assert_eq!(
            serde_json::to_string(&secret).expect("json"),
            "\"<redacted>\""
        );
        #[derive(Debug, Serialize, Deserialize)]
        struct Config {
            user: String,
            password: Option<Secret>,
        }
        let config: Config =
            serde_json::from_str(&format!(r#"{{"user": "admin", "password": "{VALUE}"}}"#))
                .expect("config");
        assert_eq!(config.password.as_ref().map(Secret::expose), Some(VALUE));
        let printed = serde_json::to_string(&config).expect("json");
        assert_eq!(printed, r#"{"user":"admin","password":"<redacted>"}"#);
        assert!(!format!("{config:?}").contains(VALUE));
    }

    #[test]
    fn refuses_the_marker_as_a_value() {
        let error = serde_json::from_str::<Secret>("\"<redacted>\"").expect_err("marker");
        assert!(error.to_string().contains("redaction marker"), "{error}");
    }

    #[test]
    fn expose_gives_the_value() {
        let secret = Secret::from(VALUE.to_string());
        assert_eq!(secret.expose(), VALUE);
        assert!(!secret.is_empty());
        assert!(Secret::new("").is_empty());
        let parsed: Secret = VALUE.parse().expect("infallible");
        assert_eq!(parsed.expose(), VALUE);
    }

    #[test]
    fn compares_by_value() {
        let secret = Secret::new(VALUE);
        assert_eq!(secret, Secret::new(VALUE));
        assert_ne!(secret, Secret::new("hunter2-s3cr3T"));
        assert_ne!(secret, Secret::new("hunter2"));
        assert!(secret.matches(VALUE));
        assert!(!secret.matches(""));
    }
}
