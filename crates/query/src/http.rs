//! `POST /api/sql`: the query engine over HTTP, JSON in and out.
//!
//! A statement stopped at one of the engine's limits is the statement's doing: 400 for the
//! timeout and the memory limit, 413 for a result over the result limits, each with a
//! message naming the limit and its setting. Not 408 for the timeout: it means the client
//! was too slow to send its request, and browsers resend the request on a reused
//! connection when they get one, so the statement would run twice. Never a truncated 200:
//! a script would take the first rows for all of them.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clickstream_edge::body::{BodyError, BodyLimits, read_body};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{QueryEngine, QueryError};

/// Largest accepted request body: statements are text, not data.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Seconds a client is told to wait when the lake's storage is unreachable.
const RETRY_AFTER_SECS: u32 = 1;

/// The request body of `POST /api/sql`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One read-only statement.
    pub sql: String,
}

/// The SQL API: `POST /api/sql`. Has no fallback, so it can be merged into a larger router.
pub fn router(engine: QueryEngine) -> Router {
    Router::new()
        .route("/api/sql", post(run_sql))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(engine)
}

async fn run_sql(
    State(engine): State<QueryEngine>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    // Statements are small: the size cap is all the bound a compressed one needs.
    let body = read_body(&headers, body, &BodyLimits::new(MAX_BODY_BYTES, 0)).await?;
    let request: SqlRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
    // Rendered on the query threads: a large result is work the ingest threads must not do.
    let (rows, elapsed_ms, json) = engine
        .sql_then(&request.sql, |output| {
            let json = output.to_response_json()?;
            Ok((output.row_count(), output.elapsed_ms(), json))
        })
        .await?;
    tracing::debug!(rows, elapsed_ms, "answered SQL request");
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// Why a request got no result; each variant has one status code.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("unsupported content type {found:?}: send application/json")]
    UnsupportedMediaType { found: Option<String> },
    #[error("request body must be a JSON object {{\"sql\": \"...\"}}: {0}")]
    MalformedBody(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Body(e) => e.status(),
            ApiError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Query(QueryError::ResultTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Query(e) if e.is_client_error() => StatusCode::BAD_REQUEST,
            ApiError::Query(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Query(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Body(e) = self {
            tracing::debug!(status = %e.status(), reason = %e, "rejected SQL request");
            return e.into_response();
        }
        let status = self.status();
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self, "SQL request failed: lake unavailable");
            "the lake is unavailable right now; retry later".to_string()
        } else if status.is_server_error() {
            tracing::error!(error = %self, "SQL request failed");
            "internal error: the query could not be completed; the server log has the detail"
                .to_string()
        } else {
            tracing::debug!(%status, reason = %self, "rejected SQL request");
            self.to_string()
        };
        let body = Json(json!({"status": "error", "message": message}));
        let mut response = (status, body).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
        }
        response
    }
}

/// `application/json`, with or without parameters, or any `application/*+json`.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let found = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is_json = found.as_deref().is_some_and(|content_type| {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    });
    match is_json {
        true => Ok(()),
        false => Err(ApiError::UnsupportedMediaType { found }),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("method {method} is not allowed on {}", uri.path());
    let body = Json(json!({"status": "error", "message": message}));
    (StatusCode::METHOD_NOT_ALLOWED, body).into_response()
}
