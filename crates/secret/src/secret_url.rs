//! [`SecretUrl`]: a URL that may carry a password.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::{REDACTED, Secret};

/// A URL that may carry a password in its userinfo (`https://user:password@host/`), as
/// `SCHEMA_REGISTRY_URL` may. The whole URL is held as a [`Secret`]; `Debug`, `Display` and
/// serialization show it with the password replaced by [`REDACTED`], and
/// [`SecretUrl::expose`] gives it whole, for the client that connects.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl {
    url: Secret,
    redacted: String,
}

impl SecretUrl {
    /// Wraps a URL (not validated: the client that uses it does that).
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let redacted = redact(&url);
        SecretUrl {
            url: Secret::new(url),
            redacted,
        }
    }

    /// The URL with its password, for the client that connects. Never log it.
    pub fn expose(&self) -> &str {
        self.url.expose()
    }

    /// The URL with its password replaced by [`REDACTED`]: safe to log and show. A URL
    /// that does not parse but may hold credentials (it has an `@`) is [`REDACTED`] whole.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

/// `url` with the password of its userinfo replaced by [`REDACTED`].
fn redact(url: &str) -> String {
    let Ok(parsed) = Url::parse(url.trim()) else {
        return if url.contains('@') {
            REDACTED.to_owned()
        } else {
            url.to_owned()
        };
    };
    let Some(password) = parsed.password() else {
        return url.to_owned();
    };
    // Serialized, a URL with a password reads `scheme://username:password@...`.
    let start = parsed.scheme().len() + "://".len() + parsed.username().len() + ":".len();
    let text = parsed.as_str();
    match text.get(start..start + password.len()) {
        Some(found) if found == password => {
            format!(
                "{}{REDACTED}{}",
                &text[..start],
                &text[start + password.len()..]
            )
        }
        _ => REDACTED.to_owned(),
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> Self {
        SecretUrl::new(url)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretUrl").field(&self.redacted).finish()
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted)
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = SecretUrl::new(String::deserialize(deserializer)?);
        let password = Url::parse(url.expose().trim())
            .ok()
            .and_then(|u| u.password().map(str::to_owned));
        // `<` and `>` are percent-encoded in a parsed URL's password.
        if password.as_deref() == Some("%3Credacted%3E") {
            Secret::check_not_marker::<D::Error>(REDACTED)?;
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_the_password_and_keeps_the_rest() {
        let url = SecretUrl::new("https://alice:hunter2@registry.example:8085/sr/");
        assert_eq!(
            url.redacted(),
            "https://alice:<redacted>@registry.example:8085/sr/"
        );
        assert_eq!(url.to_string(), url.redacted());
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(
            serde_json::to_string(&url).expect("json"),
            "\"https://alice:<redacted>@registry.example:8085/sr/\""
        );
        assert_eq!(
            url.expose(),
            "https://alice:hunter2@registry.example:8085/sr/"
        );
    }

    #[test]
    fn leaves_urls_without_a_password_as_written() {
        for text in [
            "http://registry:8085",
            "http://alice@registry:8085",
            "not a url",
        ] {
            let url = SecretUrl::new(text);
            assert_eq!(url.redacted(), text);
        }
    }

    #[test]
    fn hides_encoded_passwords_and_unparsable_urls_with_credentials() {
        let url = SecretUrl::new("http://us%40er:p%3Ass@localhost:8085/");
        assert_eq!(url.redacted(), "http://us%40er:<redacted>@localhost:8085/");
        let broken = SecretUrl::new("http://alice:hunter2@[broken");
        assert_eq!(broken.redacted(), REDACTED);
    }

    #[test]
    fn deserializes_from_a_plain_string_but_not_from_redacted_output() {
        let url: SecretUrl =
            serde_json::from_str("\"http://alice:hunter2@registry:8085\"").expect("url");
        assert_eq!(url.expose(), "http://alice:hunter2@registry:8085");
        let printed = serde_json::to_string(&url).expect("json");
        assert!(
            serde_json::from_str::<SecretUrl>(&printed).is_err(),
            "{printed}"
        );
    }
}
