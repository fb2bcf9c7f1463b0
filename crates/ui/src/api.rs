//! The JSON API under `/api/ui/`: read-only views for the pages.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::sampler::{Rate, Snapshot};
use crate::{UiState, invalid, lake_view, now_ms, schemas, topics};

/// Every `/api/ui/` route. Unknown `/api/ui/` paths answer a JSON 404.
pub(crate) fn router(state: Arc<UiState>) -> Router {
    Router::new()
        .route("/api/ui/overview", get(overview))
        .route("/api/ui/topics", get(topics::list))
        .route("/api/ui/topics/{topic}/messages", get(topics::messages))
        .route("/api/ui/invalid", get(invalid::list))
        .route("/api/ui/schemas", get(schemas::list))
        .route(
            "/api/ui/schemas/{subject}/versions/{version}",
            get(schemas::version),
        )
        .route("/api/ui/schemas/{subject}/diff", get(schemas::diff))
        .route("/api/ui/schemas/{subject}/columns", get(schemas::columns))
        .route("/api/ui/lake", get(lake_view::overview))
        .route("/api/ui/lake/{table}", get(lake_view::table))
        .route("/api/ui/{*rest}", get(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// `GET /api/ui/overview`
#[derive(Debug, Serialize)]
struct OverviewView {
    now_ms: i64,
    /// The latest sample; `null` until the first one is taken (a second after start).
    latest: Option<Snapshot>,
    /// Per-second rates of the last ten minutes, oldest first.
    rates: Vec<Rate>,
    ingest_url: String,
    registry_url: String,
    enrichment: Option<crate::EnrichmentSummary>,
}

async fn overview(State(state): State<Arc<UiState>>) -> Json<OverviewView> {
    let (latest, rates) = state.sampler.read();
    Json(OverviewView {
        now_ms: now_ms(),
        latest,
        rates,
        ingest_url: state.sources.ingest_url.clone(),
        registry_url: state.sources.registry_url.clone(),
        enrichment: state.sources.enrichment.clone(),
    })
}

async fn not_found(uri: Uri) -> Response {
    let message = format!("no UI API route {}", uri.path());
    (
        StatusCode::NOT_FOUND,
        Json(json!({"status": "error", "message": message})),
    )
        .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!(
        "method {method} is not allowed on {}: the UI API is read-only",
        uri.path()
    );
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"status": "error", "message": message})),
    )
        .into_response()
}

/// `Query`, with a malformed query string answered as a JSON 400 like every other error.
pub(crate) struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = crate::UiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| crate::UiError::BadRequest(rejection.body_text()))
    }
}
