//! The edge of every listener (ingest, registry, UI and SQL, a processor's metrics): what a
//! request meets before a handler sees it, written once and applied to each router.
//!
//! - [`Server`]: HTTP/1.1 and HTTP/2 on one port, optionally over TLS, with a header
//!   deadline (the TLS handshake included; also the idle keep-alive limit of HTTP/1.1), a
//!   body deadline, an idle deadline, a deadline for clients that stop reading, and a cap
//!   on open connections.
//! - [`tls`]: the certificate and key of `[http]`, and how this process reaches its own
//!   listeners over HTTPS.
//! - [`auth`]: the admin token (bearer, HTTP Basic password, or the UI's login session)
//!   on every route that can read or change all data, and the rule that a listener beyond
//!   loopback needs one.
//! - [`write_key`]: write keys on the ingest routes (optional): which source sends events,
//!   put on the request as a [`Source`] for the handler and later middleware.
//! - [`body`]: request bodies read as a stream with a cap, decoded from their
//!   `Content-Encoding` (gzip, deflate, br, zstd) with caps on the size and the ratio.
//! - [`limit`]: rate limits per write key and per client IP (429 with `Retry-After`), and
//!   bounds on requests in flight and body bytes held (503).
//! - [`error`]: JSON errors (`{"status": "error", "message": ...}`) and the 404/405
//!   fallbacks every router shares.

mod activity;
pub mod auth;
pub mod body;
mod config;
mod connection;
mod deadline;
pub mod error;
pub mod limit;
pub mod metrics;
mod serve;
pub mod tls;
pub mod write_key;

pub use auth::{AdminAuth, AuthConfigError, check_exposure};
pub use config::{AuthConfig, HttpConfig, HttpConfigError};
pub use connection::Transport;
pub use deadline::{BodyDeadlineExceeded, DeadlineBody};
pub use limit::{Limits, LimitsConfig, LimitsConfigError};
pub use serve::Server;
pub use write_key::{Source, WriteKeys};
