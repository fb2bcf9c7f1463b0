//! Prometheus metrics (`/metrics`) and health (`/health/live`, `/health/ready`), served on
//! the ingest port and the UI port.
//!
//! Metric names follow `clickstream_<stage>_<noun>_<unit>`. Durations (`*_seconds`) and
//! sizes (`*_bytes` histograms) are real Prometheus histograms with fixed buckets, so they
//! can be aggregated across instances (summaries cannot).

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::routing::get;
use clickstream_edge::AdminAuth;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::health::HealthState;

/// Buckets of every `*_seconds` histogram: 100 µs to 30 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Buckets of every `*_bytes` histogram: 1 KiB to 1 GiB.
const BYTES_BUCKETS: &[f64] = &[
    1024.0,
    16.0 * 1024.0,
    128.0 * 1024.0,
    1024.0 * 1024.0,
    8.0 * 1024.0 * 1024.0,
    32.0 * 1024.0 * 1024.0,
    128.0 * 1024.0 * 1024.0,
    512.0 * 1024.0 * 1024.0,
    1024.0 * 1024.0 * 1024.0,
];

/// The process-wide Prometheus recorder, installed on first use.
///
/// Call it before any part of the pipeline starts: the crates keep metric handles
/// registered on their first use (`Handles::get` in each crate's `metrics.rs`), and a
/// handle registered before the recorder is installed records nothing, ever.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        // Only an empty bucket list is an error, and ours are not empty.
        let builder = builder
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS))
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed, in which case ours stays unused.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

/// Help texts of the metrics, shown as `# HELP` lines: each crate declares its own.
fn describe() {
    clickstream_edge::metrics::describe();
    clickstream_ingest::metrics::describe();
    clickstream_restproxy::metrics::describe();
    clickstream_process::metrics::describe();
    clickstream_kafka::metrics::describe();
    clickstream_ui::metrics::describe();
    crate::memory::describe();
}

/// `/metrics`, `/health/live`, `/health/ready` and `/health/ready/{role}` (see
/// [`crate::health`]).
pub fn router(health: Arc<HealthState>, auth: &AdminAuth, protect_metrics: bool) -> Router {
    let handle = prometheus();
    let render = move || {
        crate::memory::record();
        std::future::ready(handle.render())
    };
    let metrics = Router::new().route("/metrics", get(render));
    let metrics = if protect_metrics {
        auth.protect(metrics)
    } else {
        metrics
    };
    Router::new()
        .route(
            "/health/live",
            get(|| async { axum::Json(json!({"status": "live"})) }),
        )
        .route("/health/ready", get(crate::health::ready))
        .route("/health/ready/{role}", get(crate::health::ready_role))
        .with_state(health)
        .merge(metrics)
}
