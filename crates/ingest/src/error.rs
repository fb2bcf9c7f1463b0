//! Every way a request can fail, each mapped to its status code and a JSON reason.

use axum::Json;
use axum::response::{IntoResponse, Response};
use clickstream_edge::body::BodyError;
use clickstream_edge::limit::Refused;
use clickstream_log::LogError;
use http::{StatusCode, header};
use serde_json::json;

use crate::metrics::{Handles, RequestOutcome};

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
    /// The body could not be read, decoded or kept within its caps (413, 415 or 400, as
    /// [`BodyError::status`] says).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// A rate limit or a load bound refused the request (429, 413 or 503, as
    /// [`Refused::status`] says, with `Retry-After` where waiting helps).
    #[error(transparent)]
    Refused(#[from] Refused),
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
    /// The log cannot take writes now; nothing of the batch is acknowledged. The reason is
    /// the log's (an outage, a disk at its reserve), which names no secret.
    #[error("the event log cannot accept writes right now ({source}); retry later")]
    LogUnavailable {
        /// The log's error, shown and logged.
        source: LogError,
        /// Seconds for `Retry-After`.
        retry_after_secs: u32,
    },
    /// The log refused the batch as too large (its limit is below ours): the same batch
    /// will be refused again, a smaller one may pass.
    #[error(
        "the event log refused the batch as too large ({source}); send fewer or smaller events"
    )]
    LogRefusedTooLarge {
        /// The log's error, shown: it names only the refusal.
        source: LogError,
    },
    /// The log refused the batch as invalid.
    #[error("the event log refused the batch: {source}")]
    LogRefusedInvalid {
        /// The log's error, shown.
        source: LogError,
    },
    /// The log refuses writes until an operator fixes the deployment (credentials, ACLs,
    /// a missing topic, an unsupported feature). Retrying does not help, so no 503; the
    /// reason says what is wrong. Log errors name codes and topics, never secrets.
    #[error("the event log refused the batch: {source}")]
    LogMisconfigured {
        /// The log's error, shown and logged.
        source: LogError,
    },
    /// A bug or an unexpected failure; the detail is logged, the client gets a generic body.
    #[error("internal error")]
    Internal(String),
}

impl IngestError {
    /// The status code the request is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Body(body) => body.status(),
            IngestError::Refused(refused) => refused.status(),
            IngestError::TooManyEvents { .. } | IngestError::EventTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::MalformedJson(_) | IngestError::NotABatch(_) => StatusCode::BAD_REQUEST,
            IngestError::LogUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::LogRefusedTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::LogRefusedInvalid { .. } => StatusCode::BAD_REQUEST,
            IngestError::LogMisconfigured { .. } | IngestError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let metrics = Handles::get();
        metrics.count_rejected(status);
        metrics
            .requests(RequestOutcome::of_error(status))
            .increment(1);
        match &self {
            IngestError::LogUnavailable { source, .. } => {
                tracing::warn!(error = %source, "refusing batch: log unavailable")
            }
            IngestError::LogMisconfigured { source } => {
                tracing::error!(error = %source, "refusing batch: the log refuses writes")
            }
            IngestError::Internal(detail) => tracing::error!(%detail, "internal error"),
            _ => tracing::debug!(%status, reason = %self, "rejected request"),
        }
        match self {
            // Its own answer: a 415 also lists the accepted codings.
            IngestError::Body(body) => return body.into_response(),
            // Its own answer: `Retry-After` when waiting helps.
            IngestError::Refused(refused) => return refused.into_response(),
            _ => {}
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

impl IngestError {
    /// Seconds a client is told to wait before retrying (`Retry-After`), when waiting
    /// helps: a log that cannot take writes now, a rate limit, a load bound.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            IngestError::LogUnavailable {
                retry_after_secs, ..
            } => Some(u64::from(*retry_after_secs)),
            IngestError::Refused(refused) => refused.retry_after(),
            _ => None,
        }
    }

    /// The answer to a failed append: 503 for what waiting fixes, 4xx for what the request
    /// can change, 500 with the reason for what the deployment must fix. Every variant of
    /// `LogError` is listed, so a new one needs a decision.
    pub(crate) fn from_append(source: LogError, retry_after_secs: u32) -> IngestError {
        match source {
            LogError::RecordTooLarge { size, max } => IngestError::EventTooLarge { size, max },
            LogError::RecordsTooLarge(_) => IngestError::LogRefusedTooLarge { source },
            LogError::InvalidRequest(_) => IngestError::LogRefusedInvalid { source },
            LogError::Unavailable(_)
            | LogError::Io { .. }
            | LogError::DiskFull { .. }
            | LogError::Closed => IngestError::LogUnavailable {
                source,
                retry_after_secs,
            },
            LogError::Unauthorized(_)
            | LogError::Unsupported(_)
            | LogError::Misconfigured(_)
            | LogError::UnknownTopic(_) => IngestError::LogMisconfigured { source },
            LogError::UnknownPartition { .. }
            | LogError::OffsetOutOfRange { .. }
            | LogError::Corrupt { .. }
            | LogError::Kafka(_) => IngestError::Internal(format!("append failed: {source}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn answer(source: LogError) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let response = IngestError::from_append(source, 1).into_response();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).expect("JSON body");
        (parts.status, parts.headers, json)
    }

    #[tokio::test]
    async fn outages_answer_503_with_retry_after() {
        for source in [
            LogError::Unavailable("kafka: message timed out".into()),
            LogError::Closed,
        ] {
            let (status, headers, body) = answer(source).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(headers.contains_key(header::RETRY_AFTER));
            assert_eq!(body["status"], "error");
        }
    }

    #[tokio::test]
    async fn deployment_faults_answer_500_saying_what_is_wrong() {
        let refusals = [
            LogError::Unauthorized("kafka refused: topic authorization failed (topic raw)".into()),
            LogError::Unsupported("kafka refused: unsupported version".into()),
            LogError::Misconfigured("kafka refused: invalid topic".into()),
            LogError::UnknownTopic("raw".into()),
        ];
        for source in refusals {
            let expected = source.to_string();
            let (status, headers, body) = answer(source).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{expected}");
            assert!(!headers.contains_key(header::RETRY_AFTER), "{expected}");
            assert_eq!(body["status"], "error");
            let message = body["message"].as_str().expect("message");
            assert!(message.contains(&expected), "{message}");
        }
    }

    #[tokio::test]
    async fn a_batch_the_log_finds_too_large_answers_413() {
        let source = LogError::RecordsTooLarge("kafka refused: message size too large".into());
        let (status, headers, body) = answer(source).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!headers.contains_key(header::RETRY_AFTER));
        let message = body["message"].as_str().expect("message");
        assert!(message.contains("message size too large"), "{message}");
    }

    #[tokio::test]
    async fn an_invalid_batch_answers_400() {
        let source = LogError::InvalidRequest("kafka refused: invalid timestamp".into());
        let (status, _, body) = answer(source).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["status"], "error");
    }

    #[tokio::test]
    async fn unexpected_errors_answer_a_generic_500() {
        let (status, _, body) = answer(LogError::Kafka("Fail (Local: Failed)".into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["message"], "internal error");
    }

    #[test]
    fn only_transient_log_errors_answer_503() {
        let all = [
            LogError::UnknownTopic("t".into()),
            LogError::RecordsTooLarge("x".into()),
            LogError::InvalidRequest("x".into()),
            LogError::Unauthorized("x".into()),
            LogError::Unsupported("x".into()),
            LogError::Misconfigured("x".into()),
            LogError::Unavailable("x".into()),
            LogError::Closed,
            LogError::Kafka("x".into()),
        ];
        for source in all {
            let transient = source.is_transient();
            let status = IngestError::from_append(source, 1).status();
            assert_eq!(
                status == StatusCode::SERVICE_UNAVAILABLE,
                transient,
                "{status}"
            );
        }
    }
}
