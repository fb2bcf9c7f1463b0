//! Prometheus metrics (`/metrics`) and health (`/health/live`, `/health/ready`) on the
//! ingest port.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clickstream_event::RAW_TOPIC;
use clickstream_lake::{Lake, TableKind};
use clickstream_log::EventLog;
use clickstream_registry::RegistryClient;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed, in which case ours stays unused.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}

/// What readiness checks.
pub struct HealthState {
    /// The log must answer.
    pub log: Arc<dyn EventLog>,
    /// The registry must answer.
    pub registry: RegistryClient,
    /// The lake must load.
    pub lake: Lake,
}

/// `/metrics`, `/health/live` and `/health/ready`.
pub fn router(health: Arc<HealthState>) -> Router {
    let handle = prometheus();
    Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route(
            "/health/live",
            get(|| async { axum::Json(json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready))
        .with_state(health)
}

/// Ready only when the log, the registry and the lake all answer within a deadline.
async fn ready(State(health): State<Arc<HealthState>>) -> Response {
    let deadline = Duration::from_secs(2);
    let log = tokio::time::timeout(deadline, health.log.partition_count(RAW_TOPIC)).await;
    let registry = tokio::time::timeout(deadline, health.registry.subjects()).await;
    let lake = tokio::time::timeout(deadline, health.lake.table(TableKind::Events)).await;
    let verdict = |ok: bool| if ok { "ok" } else { "unavailable" };
    let checks = json!({
        "log": verdict(matches!(log, Ok(Ok(_)))),
        "registry": verdict(matches!(registry, Ok(Ok(_)))),
        "lake": verdict(matches!(lake, Ok(Ok(_)))),
    });
    let all_ok = checks
        .as_object()
        .is_some_and(|c| c.values().all(|v| v == "ok"));
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if all_ok { "ready" } else { "not ready" }, "checks": checks});
    (status, axum::Json(body)).into_response()
}
