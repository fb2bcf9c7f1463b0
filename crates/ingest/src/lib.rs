//! HTTP ingest API, compatible with the original Flask service (SPEC.md, "HTTP ingest API").
//!
//! `POST /collect` validates each event of a batch against the raw Avro schema, writes valid
//! events to the raw topic (Confluent wire format) and invalid ones to the invalid topic
//! (original JSON with the reason in a header), and answers only once the whole batch is
//! durable in the log. Which version of the raw schema is in force is asked of a
//! [`ValidatorSource`] once per request, so the schema can change while ingest runs and a
//! request is still validated and framed with one version.
//!
//! With write keys configured ([`clickstream_edge::WriteKeys`]), `/collect` takes only
//! requests carrying one, and every record of a request carries the key's name as the
//! `X-Source` header; `/ping` and CORS preflights stay open.

mod collect;
mod error;
mod land;
pub mod metrics;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use clickstream_edge::{Limits, WriteKeys};
use clickstream_event::ValidatorSource;
use clickstream_log::EventLog;
use http::{HeaderName, HeaderValue, Method, header};
use serde::{Deserialize, Serialize};
use tower_http::cors::{AllowHeaders, AllowOrigin, Any, CorsLayer};

pub use collect::CollectResponse;
pub use error::IngestError;
pub use land::{
    Landed, OVERSIZED_EVENT_KEPT_BYTES, Outcome, Routed, Stamp, append_routed, invalid_record, land,
};

/// Settings of the ingest API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (`API_PORT` in the original).
    pub port: u16,
    /// Largest accepted request body, decompressed when it comes with a
    /// `Content-Encoding` (and as sent: a compressed body is never larger than this
    /// either); larger bodies get 413.
    pub max_body_bytes: usize,
    /// Largest ratio of a compressed body's decompressed size to its size as sent, checked
    /// once past 1 MiB decompressed; past it, 413. 0 turns the bound off.
    pub max_compression_ratio: u32,
    /// Largest event (its JSON text); a larger one becomes an invalid event with the
    /// reason and its first 4 KiB kept, its batch accepted.
    pub max_event_bytes: usize,
    /// Most events accepted in one request; larger batches get 413 (each event becomes a
    /// log record, so this bounds what one request can cost).
    pub max_events_per_request: usize,
    /// Seconds a client is told to wait (`Retry-After`) when the log cannot take writes.
    pub retry_after_secs: u32,
    /// Origins whose pages may send events from a browser (CORS on `/collect` and `/ping`
    /// only; `*`, the original's, allows any). Credentials are never allowed, and the admin
    /// routes served on the same port (SQL, metrics) answer no CORS at all.
    pub cors_origins: Vec<String>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 60000,
            max_body_bytes: 10 * 1024 * 1024,
            max_compression_ratio: 100,
            max_event_bytes: 64 * 1024,
            max_events_per_request: 50_000,
            retry_after_secs: 1,
            cors_origins: vec!["*".into()],
        }
    }
}

/// What the handlers share: where events go and how they are checked.
pub struct IngestState {
    /// Destination of valid and invalid events.
    pub log: Arc<dyn EventLog>,
    /// The raw schema version in force and its registry id (asked once per request).
    pub validator: Arc<dyn ValidatorSource>,
    /// Limits and retry hints.
    pub config: IngestConfig,
    /// Rate limits and load bounds of `/collect`.
    pub limits: Arc<Limits>,
    /// Who may send events (none configured: anyone).
    pub write_keys: WriteKeys,
}

/// The ingest API: `/ping`, `/collect`, JSON 404/405, CORS for browser pages.
pub fn router(state: Arc<IngestState>) -> Router {
    router_with(state, Router::new())
}

/// The ingest API plus `extra` routes served on the same port (the SQL API, metrics),
/// sharing the JSON 404/405 answers. CORS applies to the ingest routes alone.
pub fn router_with(state: Arc<IngestState>, extra: Router) -> Router {
    let cors = cors(&state.config.cors_origins);
    // The write key is checked first: the limits key their bucket on its `Source`.
    let collect = post(collect::collect).layer(axum::middleware::from_fn_with_state(
        state.limits.clone(),
        clickstream_edge::limit::guard,
    ));
    let collect = state
        .write_keys
        .protect(Router::new().route("/collect", collect));
    Router::new()
        .route("/ping", get(ping))
        .merge(collect)
        // The body limit is enforced by `collect` itself, to answer 413 in JSON.
        .layer(DefaultBodyLimit::disable())
        // Set before the CORS layer so that it wraps this fallback too: a preflight
        // (OPTIONS) is answered by the layer, never by a bare 405.
        .method_not_allowed_fallback(clickstream_edge::error::method_not_allowed)
        .layer(cors)
        .with_state(state)
        .merge(extra)
        .fallback(clickstream_edge::error::not_found)
        .method_not_allowed_fallback(clickstream_edge::error::method_not_allowed)
}

/// CORS for browser pages sending events: `origins` (`*` for any), no credentials. The
/// request headers a preflight asks for are allowed by name: `*` would not cover
/// `Authorization`, which carries a write key as Basic credentials.
pub fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        // Readable by the page's script, which waits as told before retrying a 429 or 503.
        .expose_headers([
            header::RETRY_AFTER,
            HeaderName::from_static("x-ratelimit-reset"),
        ])
        .max_age(std::time::Duration::from_secs(86_400));
    if origins.iter().any(|o| o == "*") {
        return layer.allow_origin(Any);
    }
    let listed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    layer.allow_origin(AllowOrigin::list(listed))
}

async fn ping() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "OK"}))
}
