//! Configuration of the registry server.

use serde::{Deserialize, Serialize};

/// Settings of the schema registry HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryServerConfig {
    /// TCP port to listen on (default 8085, beside Confluent's usual 8081).
    pub port: u16,
    /// Largest accepted request body in bytes (default 4 MiB); larger bodies get 413.
    pub max_body_bytes: usize,
}

impl Default for RegistryServerConfig {
    fn default() -> Self {
        Self {
            port: 8085,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_defaults_and_unknown_fields_are_rejected() {
        let config: RegistryServerConfig =
            serde_json::from_str(r#"{"port": 9000}"#).expect("valid config");
        assert_eq!(config.port, 9000);
        assert_eq!(
            config.max_body_bytes,
            RegistryServerConfig::default().max_body_bytes
        );
        assert!(serde_json::from_str::<RegistryServerConfig>(r#"{"prot": 1}"#).is_err());
    }
}
