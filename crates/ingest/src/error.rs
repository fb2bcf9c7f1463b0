//! Every way a request can fail, each mapped to its status code and a JSON reason.

use axum::Json;
use axum::response::{IntoResponse, Response};
use clickstream_log::LogError;
use http::{StatusCode, Uri, header};
use serde_json::json;

/// Why a request was refused. `Display` is the message the client sees, except for
/// internal errors whose detail is logged, not returned.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The `Content-Type` is not JSON.
    #[error("unsupported content type {found:?}: send application/json")]
    UnsupportedMediaType {
        /// The content type received, if any.
        found: Option<String>,
    },
    /// The body is larger than the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// `max_body_bytes`.
        limit: usize,
    },
    /// The batch has more events than allowed.
    #[error("batch of {count} events exceeds the limit of {limit} events per request")]
    TooManyEvents {
        /// Events in the request.
        count: usize,
        /// `max_events_per_request`.
        limit: usize,
    },
    /// One event is larger than the log accepts as a record.
    #[error("an event of {size} bytes exceeds the largest record the log accepts ({max} bytes)")]
    EventTooLarge {
        /// Encoded record size.
        size: usize,
        /// The log's limit.
        max: usize,
    },
    /// The body is not well-formed JSON (or not UTF-8).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON but neither an array nor an object.
    #[error("request body must be a JSON array of events or a single event object, found {0}")]
    NotABatch(&'static str),
    /// The body could not be read from the connection.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The log cannot take writes now; nothing of the batch is acknowledged.
    #[error("the event log cannot accept writes right now; retry later")]
    LogUnavailable {
        /// The log's error, logged.
        source: LogError,
        /// Seconds for `Retry-After`.
        retry_after_secs: u32,
    },
    /// A bug or an unexpected failure; the detail is logged, the client gets a generic body.
    #[error("internal error")]
    Internal(String),
}

impl IngestError {
    fn status(&self) -> StatusCode {
        match self {
            IngestError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::PayloadTooLarge { .. }
            | IngestError::TooManyEvents { .. }
            | IngestError::EventTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::MalformedJson(_) | IngestError::NotABatch(_) => StatusCode::BAD_REQUEST,
            IngestError::BodyRead(_) => StatusCode::BAD_REQUEST,
            IngestError::LogUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        metrics::counter!("clickstream_ingest_rejected_requests_total", "status" => status.as_str().to_owned())
            .increment(1);
        let outcome = if status.is_server_error() {
            "failed"
        } else {
            "rejected"
        };
        metrics::counter!("clickstream_ingest_requests_total", "outcome" => outcome).increment(1);
        match &self {
            IngestError::LogUnavailable { source, .. } => {
                tracing::warn!(error = %source, "refusing batch: log unavailable")
            }
            IngestError::Internal(detail) => tracing::error!(%detail, "internal error"),
            _ => tracing::debug!(%status, reason = %self, "rejected request"),
        }
        let body = Json(json!({"status": "error", "message": self.to_string()}));
        let mut response = (status, body).into_response();
        if let IngestError::LogUnavailable {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

pub(crate) async fn not_found(uri: Uri) -> Response {
    let body = json!({"status": "error", "message": format!("no route for {}", uri.path())});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

pub(crate) async fn method_not_allowed(method: http::Method, uri: Uri) -> Response {
    let message = format!("method {method} is not allowed on {}", uri.path());
    let body = json!({"status": "error", "message": message});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
