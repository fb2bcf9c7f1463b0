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

/// Help texts of the metrics, shown as `# HELP` lines.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "clickstream_ingest_requests_total",
        "requests to /collect by outcome (accepted, rejected: 4xx, failed: 5xx)"
    );
    describe_counter!(
        "clickstream_ingest_events_total",
        "events acknowledged by /collect, by outcome (valid, invalid) and source (the write \
         key's name; empty without write keys)"
    );
    describe_counter!(
        clickstream_edge::metrics::WRITE_KEY_REFUSED,
        "requests refused for their write key, by reason (missing, unknown)"
    );
    describe_counter!(
        "clickstream_ingest_rejected_requests_total",
        "requests to /collect answered with an error, by status code"
    );
    describe_counter!(
        "clickstream_ingest_bytes_total",
        "request body bytes of acknowledged /collect requests"
    );
    describe_histogram!(
        "clickstream_ingest_request_duration_seconds",
        metrics::Unit::Seconds,
        "time from receiving a /collect request to acknowledging it"
    );
    describe_histogram!(
        "clickstream_log_append_duration_seconds",
        metrics::Unit::Seconds,
        "time for the log to make one request's records durable"
    );
    describe_histogram!(
        "clickstream_process_commit_duration_seconds",
        metrics::Unit::Seconds,
        "time for the processor to commit one batch to the lake"
    );
    describe_counter!(
        "clickstream_process_rows_total",
        "rows the processor committed, by table (dead_letters counts dead letters)"
    );
    describe_counter!(
        "clickstream_process_latest_skipped_total",
        "latest-topic records not emitted because the log refused them as too large or its \
         disk was at its reserve (the events are in the lake)"
    );
    describe_gauge!(
        "clickstream_process_lag_records",
        "end offset minus the consumer group's committed offset, per partition"
    );
    describe_gauge!(
        "clickstream_pipeline_lag_records",
        "acknowledged records not yet in the lake"
    );
    describe_gauge!(
        "clickstream_pipeline_lag_seconds",
        "age of the oldest acknowledged record not yet in the lake"
    );
    describe_gauge!(
        "clickstream_lake_table_bytes",
        "bytes of the active data files of a lake table"
    );
    describe_gauge!(
        "clickstream_lake_table_files",
        "active data files of a lake table"
    );
    describe_counter!(
        clickstream_edge::metrics::CONNECTIONS_CUT,
        "connections the server closed, by reason (opening: no protocol or TLS handshake \
         within the header deadline; plain_http: plain HTTP to a TLS port; idle: no request \
         within the idle deadline; write_stall: the client took none of a response)"
    );
    describe_gauge!("clickstream_lake_table_rows", "rows of a lake table");
    describe_gauge!(
        "clickstream_lake_table_version",
        "latest Delta version of a lake table"
    );
}

/// `/metrics`, `/health/live`, `/health/ready` and `/health/ready/{role}` (see
/// [`crate::health`]).
pub fn router(health: Arc<HealthState>, auth: &AdminAuth, protect_metrics: bool) -> Router {
    let handle = prometheus();
    let metrics = Router::new().route("/metrics", get(move || std::future::ready(handle.render())));
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
