//! REST Proxy errors: `{"error_code": N, "message": "..."}`, where `error_code` is the HTTP
//! status or a five-digit code starting with it, as Confluent's proxy answers.

use axum::Json;
use axum::response::{IntoResponse, Response};
use clickstream_ingest::IngestError;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::V2_CONTENT_TYPE;

/// Why a request to the proxy failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No such topic (40401). Confluent's v2 proxy waits for its producer's timeout and
    /// answers 200 with a failed offset per record; we answer at once.
    #[error("topic {0} not found")]
    UnknownTopic(String),
    /// No such cluster (404): the proxy fronts one, [`crate::CLUSTER_ID`].
    #[error("cluster {0} not found; this proxy fronts one cluster, {cluster}", cluster = crate::CLUSTER_ID)]
    UnknownCluster(String),
    /// A topic only clickstream itself writes (40301).
    #[error(
        "topic {topic} is written by clickstream itself; produce events to {raw}, where they are \
         validated like /collect's"
    )]
    NotWritable {
        /// The topic asked for.
        topic: String,
        /// The topic that takes events.
        raw: &'static str,
    },
    /// A content type the proxy does not take (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A body that is not the request it should be (400).
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request that cannot be carried out as asked (422 with `code`).
    #[error("{message}")]
    Unprocessable {
        /// 422xx.
        code: u32,
        /// Why.
        message: String,
    },
    /// The request failed where `/collect` would: body caps, limits, the log.
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl ProxyError {
    fn status_and_code(&self) -> (StatusCode, u32) {
        match self {
            ProxyError::UnknownTopic(_) => (StatusCode::NOT_FOUND, 40401),
            ProxyError::UnknownCluster(_) => (StatusCode::NOT_FOUND, 404),
            ProxyError::NotWritable { .. } => (StatusCode::FORBIDDEN, 40301),
            ProxyError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 415),
            ProxyError::BadRequest(_) => (StatusCode::BAD_REQUEST, 400),
            ProxyError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, *code),
            ProxyError::Ingest(e) => {
                let status = e.status();
                // 50003: the proxy's "retriable" code, for a log that cannot take writes now.
                let code = match status {
                    StatusCode::SERVICE_UNAVAILABLE => 50003,
                    other => u32::from(other.as_u16()),
                };
                (status, code)
            }
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            ProxyError::Ingest(e) => e.retry_after_secs(),
            _ => None,
        };
        if status.is_server_error() {
            tracing::warn!(%status, reason = %self, "REST proxy request failed");
        } else {
            tracing::debug!(%status, reason = %self, "REST proxy request refused");
        }
        let message = match &self {
            // The detail of an internal error is logged, not returned.
            ProxyError::Ingest(IngestError::Internal(_)) => "internal error".to_string(),
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(json!({"error_code": code, "message": message})),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(V2_CONTENT_TYPE),
        );
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}
