//! What every listener is configured with: timeouts, the connection cap and TLS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clickstream_secret::Secret;
use serde::{Deserialize, Serialize};

/// Settings shared by every HTTP listener (`[http]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Milliseconds a client has to send a request's headers (and, with TLS, to complete
    /// its handshake first), and the longest an idle kept-alive HTTP/1.1 connection stays
    /// open waiting for the next request.
    pub header_timeout_ms: u64,
    /// Milliseconds a client has to send a request's whole body, counted from the headers;
    /// also the longest a response may wait on a client that does not read it.
    pub body_timeout_ms: u64,
    /// Milliseconds a connection stays open with no request in flight: what closes an
    /// HTTP/2 connection without streams (an idle HTTP/1.1 one is closed at
    /// `header_timeout_ms` already).
    pub idle_timeout_ms: u64,
    /// Most connections open at once on one listener; past it new connections wait in the
    /// kernel's backlog until one closes. Keep it below the process's file-descriptor
    /// limit, so the log and the lake always have descriptors left.
    pub max_connections: usize,
    /// The server's certificate chain, PEM (`CLICKSTREAM_TLS_CERT`): with `tls_key`, every
    /// listener speaks HTTPS only (HTTP/2 or HTTP/1.1 by ALPN).
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM: PKCS#8, PKCS#1 or SEC1 (`CLICKSTREAM_TLS_KEY`).
    pub tls_key: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 512,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Why `[http]` cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum HttpConfigError {
    /// A timeout of 0 would close every connection at once.
    #[error("http.{key} is 0: give it in milliseconds, above 0")]
    ZeroTimeout {
        /// The key (`header_timeout_ms`, ...).
        key: &'static str,
    },
    /// One of the certificate and its key without the other.
    #[error(
        "http.{set} is set but http.{missing} is not: TLS needs both the certificate and its \
         key (CLICKSTREAM_TLS_CERT and CLICKSTREAM_TLS_KEY), or neither"
    )]
    TlsHalfSet {
        /// The key that is set.
        set: &'static str,
        /// The key that is missing.
        missing: &'static str,
    },
    /// A certificate or key file that cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
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

    /// [`HttpConfig::idle_timeout_ms`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// Checks what can be checked without reading files: no timeout is 0, and the TLS
    /// certificate and key are both set or neither.
    pub fn validate(&self) -> Result<(), HttpConfigError> {
        for (key, value) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ] {
            if value == 0 {
                return Err(HttpConfigError::ZeroTimeout { key });
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(HttpConfigError::TlsHalfSet {
                set: "tls_cert",
                missing: "tls_key",
            }),
            (None, Some(_)) => Err(HttpConfigError::TlsHalfSet {
                set: "tls_key",
                missing: "tls_cert",
            }),
            _ => Ok(()),
        }
    }

    /// Whether listeners speak HTTPS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeouts_are_refused_naming_the_key() {
        for key in ["header_timeout_ms", "body_timeout_ms", "idle_timeout_ms"] {
            let mut config = HttpConfig::default();
            match key {
                "header_timeout_ms" => config.header_timeout_ms = 0,
                "body_timeout_ms" => config.body_timeout_ms = 0,
                _ => config.idle_timeout_ms = 0,
            }
            let refused = config.validate().expect_err(key).to_string();
            assert!(refused.contains(&format!("http.{key} is 0")), "{refused}");
        }
        assert!(HttpConfig::default().validate().is_ok());
    }

    #[test]
    fn a_certificate_needs_its_key_and_the_reverse() {
        let cert_only = HttpConfig {
            tls_cert: Some("cert.pem".into()),
            ..HttpConfig::default()
        };
        let refused = cert_only.validate().expect_err("half").to_string();
        assert!(
            refused.contains("http.tls_cert is set but http.tls_key is not"),
            "{refused}"
        );
        let key_only = HttpConfig {
            tls_key: Some("key.pem".into()),
            ..HttpConfig::default()
        };
        let refused = key_only.validate().expect_err("half").to_string();
        assert!(
            refused.contains("http.tls_key is set but http.tls_cert is not"),
            "{refused}"
        );
        assert!(!key_only.tls() && !cert_only.tls());
    }
}
