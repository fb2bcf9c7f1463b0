//! Responses: JSON with the registry's content type, and errors as Confluent's
//! `{"error_code": N, "message": "..."}`. 5xx bodies stay generic; the detail is logged.

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::RegistryError;

/// Content type of responses, as Confluent sends unless the request's `Accept` prefers
/// `application/vnd.schemaregistry+json` or `application/json` (see `negotiate`).
pub const RESPONSE_CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Confluent's error body.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error_code: i64,
    message: String,
}

/// A 200 response with `value` serialised as JSON.
pub(crate) fn ok<T: Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => raw(StatusCode::OK, text),
        Err(e) => {
            RegistryError::StoreUnavailable(format!("cannot encode response: {e}")).into_response()
        }
    }
}

/// A response whose body is already JSON text (e.g. a schema served unescaped).
pub(crate) fn raw(status: StatusCode, json_text: String) -> Response {
    let mut response = (status, json_text).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(RESPONSE_CONTENT_TYPE),
    );
    response
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, error_code) = self.status_and_code();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if status.is_server_error() {
            tracing::error!(error = %self, error_code, "registry request failed");
            "error in the backend data store".to_owned()
        } else {
            tracing::debug!(error = %self, error_code, "registry request rejected");
            self.to_string()
        };
        let body = ErrorBody {
            error_code,
            message,
        };
        // Encoding two plain fields cannot fail; fall back to a fixed body all the same.
        let text = serde_json::to_string(&body)
            .unwrap_or_else(|_| format!(r#"{{"error_code":{error_code},"message":"error"}}"#));
        let mut response = raw(status, text);
        if status == StatusCode::UNAUTHORIZED {
            // Basic: what Confluent's clients send (basic.auth.user.info).
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"clickstream registry\""),
            );
        }
        response
    }
}
