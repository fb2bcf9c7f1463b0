//! The HTTP side of Segment's Tracking API on the ingest port: the paths the libraries
//! post to, the write key wherever they carry it, and Segment's answers (`{"success":
//! true}`; a JSON `code` and `message` otherwise, which current libraries read to decide not
//! to retry a 4xx). Also the first-party browser tracker (`/tracker.js`), which speaks
//! this API, and a demo page loading it (`/demo`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use clickstream_edge::body::{BodyLimits, read_body};
use clickstream_edge::limit::Client;
use clickstream_edge::write_key::KeyRefusal;
use clickstream_edge::{Source, Transport};
use clickstream_event::ValidatorSource;
use clickstream_ingest::{
    IngestError, IngestState, OVERSIZED_EVENT_KEPT_BYTES, Stamp, append_routed,
};
use http::{HeaderMap, StatusCode, Uri, header};
use serde_json::{Value, json};

use crate::calls::{CallLimits, split};
use crate::normalize::{CallType, Received};

/// What the Segment routes share.
pub struct SegmentState {
    /// Ingest's state: the log, body caps, limits, write keys.
    pub ingest: Arc<IngestState>,
    /// The Segment subject's version in force.
    pub validator: Arc<dyn ValidatorSource>,
}

/// The Segment routes, to be served with ingest's (and under its CORS and limits).
pub fn router(state: Arc<SegmentState>) -> Router {
    let mut routes = Router::new();
    for path in BATCH {
        routes = routes.route(path, post(calls));
    }
    for (long, short, _) in SINGLE {
        routes = routes.route(long, post(calls)).route(short, post(calls));
    }
    let guard = axum::middleware::from_fn_with_state(
        state.ingest.limits.clone(),
        clickstream_edge::limit::guard,
    );
    Router::new()
        .merge(routes.route_layer(guard))
        // The browser library's own telemetry: taken and not kept.
        .route("/v1/m", post(|| async { Json(json!({"success": true})) }))
        .route(
            "/v1/projects/{key}/settings",
            get(crate::settings::settings),
        )
        // The first-party browser tracker, and a demo shop page that loads it from here.
        .route("/tracker.js", get(tracker))
        .route("/demo", get(demo))
        .with_state(state)
}

/// The first-party browser tracker: plain JavaScript sending Segment calls to `/v1/batch`.
const TRACKER_JS: &str = include_str!("../assets/tracker.js");

/// A tiny shop to try the tracker in a browser (`/demo?write_key=...` when keys are set).
const DEMO_HTML: &str = include_str!("../assets/demo.html");

/// `GET /tracker.js`: the tracker as source, cacheable for five minutes.
async fn tracker() -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        ),
        (header::CACHE_CONTROL, "public, max-age=300"),
    ];
    (headers, TRACKER_JS).into_response()
}

/// `GET /demo`: the demo shop page.
async fn demo() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, DEMO_HTML).into_response()
}

/// The paths of batches.
const BATCH: [&str; 3] = ["/v1/batch", "/v1/b", "/v1/import"];

/// The paths of single calls, long and short (the browser library's), and their types.
const SINGLE: [(&str, &str, CallType); 6] = [
    ("/v1/track", "/v1/t", CallType::Track),
    ("/v1/page", "/v1/p", CallType::Page),
    ("/v1/screen", "/v1/s", CallType::Screen),
    ("/v1/identify", "/v1/i", CallType::Identify),
    ("/v1/group", "/v1/g", CallType::Group),
    ("/v1/alias", "/v1/a", CallType::Alias),
];

type Connect = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Every call path: a batch path takes a batch, the others one call of their type.
async fn calls(
    State(state): State<Arc<SegmentState>>,
    client: Option<Extension<Client>>,
    connect: Connect,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let path_type = if BATCH.contains(&uri.path()) {
        None
    } else {
        let Some(call) = SINGLE
            .iter()
            .find(|(long, short, _)| uri.path() == *long || uri.path() == *short)
            .map(|(_, _, call)| *call)
        else {
            return clickstream_edge::error::not_found(uri).await;
        };
        Some(call)
    };
    take(&state, path_type, (client, connect), (&headers, &uri), body)
        .await
        .unwrap_or_else(|failure| failure.into_response())
}

/// Why a request was not taken: its status, Segment-style `code`, and reason.
pub(crate) struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl Failure {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<IngestError> for Failure {
    fn from(e: IngestError) -> Self {
        let status = e.status();
        let message = match &e {
            IngestError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let code = match status.as_u16() {
            413 => "payload_too_large",
            429 => "rate_limited",
            503 => "unavailable",
            500..=599 => "internal_error",
            _ => "invalid_request",
        };
        Self {
            status,
            code,
            retry_after: e.retry_after_secs(),
            message,
        }
    }
}

impl From<KeyRefusal> for Failure {
    fn from(refusal: KeyRefusal) -> Self {
        clickstream_edge::metrics::write_key_refused(refusal);
        let message = match refusal {
            KeyRefusal::Missing => {
                "a write key is required: send it as the user of HTTP Basic \
                                    credentials or as writeKey in the body"
            }
            KeyRefusal::Unknown => "the write key is not known",
        };
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = json!({"success": false, "code": self.code, "message": self.message});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            // Browsers before analytics-next 1.84 read only X-RateLimit-Reset (seconds).
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
            response
                .headers_mut()
                .insert("x-ratelimit-reset", secs.into());
        }
        response
    }
}

/// Reads, checks and lands one request's calls; `Ok` is Segment's success answer, or 400
/// naming the refused calls once the others and they (with their reasons) are durable.
async fn take(
    state: &SegmentState,
    path_type: Option<CallType>,
    (client, connect): (Option<Extension<Client>>, Connect),
    (headers, uri): (&HeaderMap, &Uri),
    body: Body,
) -> Result<Response, Failure> {
    let ingest = &state.ingest;
    let config = &ingest.config;
    let limits = BodyLimits::new(config.max_body_bytes, config.max_compression_ratio);
    let bytes = read_body(headers, body, &limits)
        .await
        .map_err(IngestError::from)?;
    let _held = ingest.limits.hold(bytes.len()).map_err(IngestError::from)?;
    // Any content type: the browser library sends text/plain to avoid a CORS preflight.
    let parsed: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::bad_request(format!("malformed JSON: {e}")))?;
    let (calls, envelope) = split(parsed, path_type.is_none()).map_err(Failure::bad_request)?;
    if calls.len() > config.max_events_per_request {
        return Err(IngestError::TooManyEvents {
            count: calls.len(),
            limit: config.max_events_per_request,
        }
        .into());
    }
    let source = source(state, headers, uri, envelope.write_key.as_deref())?;
    if let Some(Extension(mut client)) = client {
        client.key = source.as_ref().map(|s| s.name().to_string());
        let count = u32::try_from(calls.len()).unwrap_or(u32::MAX);
        ingest
            .limits
            .take(&client, count.max(1))
            .map_err(IngestError::from)?;
    }
    let received = Received {
        at: chrono::Utc::now(),
        ip: connect.map(|Extension(ConnectInfo(peer))| peer.ip().to_canonical().to_string()),
    };
    let call_limits = CallLimits {
        max_call_bytes: config.max_event_bytes,
        kept_bytes: OVERSIZED_EVENT_KEPT_BYTES,
    };
    let stamp = Stamp::new(source.as_ref());
    let validator = state.validator.current();
    let routed = crate::calls::route(
        calls,
        &envelope,
        path_type,
        (&received, &call_limits),
        &validator,
        &stamp,
    )
    .map_err(IngestError::Internal)?;
    let landed = append_routed(ingest, &stamp, routed).await?;
    let refused: Vec<Value> = landed
        .outcomes
        .iter()
        .enumerate()
        .filter_map(|(index, outcome)| match outcome {
            clickstream_ingest::Outcome::Invalid { reason, .. } => {
                Some(json!({"index": index, "reason": reason}))
            }
            clickstream_ingest::Outcome::Valid(_) => None,
        })
        .collect();
    crate::metrics::calls(landed.outcomes.len() - refused.len(), refused.len());
    if refused.is_empty() {
        return Ok(Json(json!({"success": true})).into_response());
    }
    let first = refused[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let message = format!(
        "{} of {} calls refused and kept with their reasons (the others are taken); first: {first}",
        refused.len(),
        landed.outcomes.len()
    );
    let body =
        json!({"success": false, "code": "invalid_calls", "message": message, "refused": refused});
    Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

/// The request's source: from its headers or query (Basic user, `X-Write-Key`,
/// `write_key`), else from the body's `writeKey`, when write keys are configured.
fn source(
    state: &SegmentState,
    headers: &HeaderMap,
    uri: &Uri,
    body_key: Option<&str>,
) -> Result<Option<Source>, Failure> {
    let keys = &state.ingest.write_keys;
    match keys.check(headers, uri) {
        Ok(source) => Ok(source),
        Err(KeyRefusal::Missing) => match body_key {
            Some(key) => keys.check_key(key).map_err(Failure::from),
            None => Err(KeyRefusal::Missing.into()),
        },
        Err(refusal) => Err(refusal.into()),
    }
}

/// How a request reached us, for the settings document's `protocol`.
pub(crate) fn scheme(transport: Option<&Extension<Transport>>) -> &'static str {
    match transport {
        Some(Extension(Transport::Tls)) => "https",
        _ => "http",
    }
}
