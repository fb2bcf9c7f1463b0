//! JSON errors: one shape for every refusal at the edge and every unknown route.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, Uri, header};
use serde_json::json;

/// A JSON error answer: `{"status": "error", "message": ...}` with `status`, and a
/// `Retry-After` of `retry_after_secs` when given.
pub fn json_error(
    status: StatusCode,
    message: impl Into<String>,
    retry_after_secs: Option<u64>,
) -> Response {
    let body = Json(json!({"status": "error", "message": message.into()}));
    let mut response = (status, body).into_response();
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The 404 of every listener: names the path.
pub async fn not_found(uri: Uri) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
        None,
    )
}

/// The 405 of every listener: names the method and the path.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {}", uri.path()),
        None,
    )
}
