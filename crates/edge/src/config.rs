//! What every listener is configured with: timeouts and the connection cap.

use std::collections::BTreeMap;
use std::time::Duration;

use clickstream_secret::Secret;
use serde::{Deserialize, Serialize};

/// Settings shared by every HTTP listener (`[http]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Milliseconds a client has to send a request's headers, and the longest an idle
    /// kept-alive HTTP/1.1 connection stays open waiting for the next request.
    pub header_timeout_ms: u64,
    /// Milliseconds a client has to send a request's whole body, counted from the headers.
    pub body_timeout_ms: u64,
    /// Most connections open at once on one listener; past it new connections wait in the
    /// kernel's backlog until one closes. Keep it below the process's file-descriptor
    /// limit, so the log and the lake always have descriptors left.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 512,
        }
    }
}

impl HttpConfig {
    /// [`HttpConfig::header_timeout_ms`] as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// [`HttpConfig::body_timeout_ms`] as a duration.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
}

/// Who may use the admin routes, and who may send events (`[auth]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The admin token (`CLICKSTREAM_ADMIN_TOKEN`): required by the UI's API, SQL and the
    /// registry's writes and deletes. Unset, those routes are open, which only loopback
    /// listeners allow.
    pub admin_token: Option<Secret>,
    /// Whether `/metrics` requires the admin token too (Prometheus can send it as a bearer
    /// token); open by default, as metrics hold counts, not events.
    pub protect_metrics: bool,
    /// Write keys by source name (`web = "…"`, or `CLICKSTREAM_AUTH__WRITE_KEYS__WEB`).
    /// With any set, `/collect` takes only requests carrying one (see
    /// [`crate::write_key`]) and records its name as the events' `source`; empty, ingest
    /// is open, as the original was.
    pub write_keys: BTreeMap<String, Secret>,
}
