//! Settings of the web UI.

use serde::{Deserialize, Serialize};

/// Where the web UI listens, and whether it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Whether `clickstream up` serves the UI.
    pub enabled: bool,
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0 picks a free port).
    pub port: u16,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "127.0.0.1".into(),
            port: 8080,
        }
    }
}
