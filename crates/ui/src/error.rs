//! Why a UI API request failed; each variant has one status code.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use clickstream_lake::LakeError;
use clickstream_log::LogError;
use clickstream_query::QueryError;
use clickstream_registry::RegistryError;
use serde_json::json;

/// An error answered by the UI's JSON API.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The topic, partition, subject, version or table does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A query parameter is out of range or malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The log could not be read.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// The registry could not be asked.
    #[error("schema registry: {0}")]
    Registry(#[from] RegistryError),
    /// The lake could not be read.
    #[error("lake: {0}")]
    Lake(#[from] LakeError),
    /// A query over the lake failed.
    #[error("sql: {0}")]
    Query(#[from] QueryError),
}

impl UiError {
    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            UiError::NotFound(_) => StatusCode::NOT_FOUND,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Log(LogError::UnknownTopic(_) | LogError::UnknownPartition { .. }) => {
                StatusCode::NOT_FOUND
            }
            UiError::Registry(RegistryError::Http { status: 404, .. }) => StatusCode::NOT_FOUND,
            UiError::Log(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            UiError::Registry(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            UiError::Lake(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            UiError::Query(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            // The page's own statement ran out of time: the engine is busy, try again.
            UiError::Query(QueryError::Timeout { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            UiError::Log(_) | UiError::Registry(_) | UiError::Lake(_) | UiError::Query(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, %status, "UI request failed");
        }
        // The UI is an operator's tool on a trusted port: the detail helps more than it
        // leaks (no secrets travel in these errors; registry URLs are redacted).
        let body = Json(json!({"status": "error", "message": self.to_string()}));
        let mut response = (status, body).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}
