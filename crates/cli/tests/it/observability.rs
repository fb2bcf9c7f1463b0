//! `/metrics` (strictly parsed, counters exact) and health, on the ingest and UI ports.

use std::time::{Duration, Instant};

use clickstream_event::RAW_TOPIC;

use crate::common::{TestPipeline, seed_events};
use crate::eventually::{check, eventually};
use crate::prometheus::{Exposition, parse};

async fn scrape(t: &TestPipeline, url: String) -> Exposition {
    let response = t.http.get(url).send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.expect("text");
    parse(&text).unwrap_or_else(|e| panic!("/metrics is not valid Prometheus text: {e}"))
}

#[tokio::test]
async fn metrics_parse_and_count_exactly_the_events_posted() {
    let t = TestPipeline::start().await;
    let before = scrape(&t, t.url("/metrics")).await;
    let body = serde_json::to_vec(&seed_events()).expect("json");
    for _ in 0..3 {
        assert_eq!(t.collect(body.clone()).await.status(), 200);
    }
    let rejected = t
        .http
        .post(t.url("/collect"))
        .header("content-type", "text/plain")
        .body("[]")
        .send()
        .await
        .expect("sent");
    assert_eq!(rejected.status(), 415);
    let after = scrape(&t, t.url("/metrics")).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(
        delta("clickstream_ingest_events_total", &[("outcome", "valid")]),
        36.0
    );
    assert_eq!(
        delta("clickstream_ingest_events_total", &[("outcome", "invalid")]),
        9.0
    );
    assert_eq!(
        delta(
            "clickstream_ingest_requests_total",
            &[("outcome", "accepted")]
        ),
        3.0
    );
    assert_eq!(
        delta(
            "clickstream_ingest_requests_total",
            &[("outcome", "rejected")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "clickstream_ingest_rejected_requests_total",
            &[("status", "415")]
        ),
        1.0
    );
    assert_eq!(
        delta("clickstream_ingest_bytes_total", &[]),
        3.0 * body.len() as f64
    );
    for histogram in [
        "clickstream_ingest_request_duration_seconds",
        "clickstream_log_append_duration_seconds",
    ] {
        assert_eq!(
            after.types.get(histogram).map(String::as_str),
            Some("histogram")
        );
        assert_eq!(
            delta(&format!("{histogram}_count"), &[]),
            3.0,
            "{histogram}"
        );
    }
    assert_eq!(
        after
            .types
            .get("clickstream_ingest_events_total")
            .map(String::as_str),
        Some("counter")
    );
    every_family_has_help(&after);

    // Once the processor has landed everything: rows, lag per partition, lake sizes. The
    // body was posted three times, so its 12 valid events land once in `events` and the two
    // repeats in `duplicates`.
    t.wait_for_count("SELECT count(*) AS n FROM duplicates", 24)
        .await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 12)
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let settled = loop {
        let now = scrape(&t, t.ui_url("/metrics")).await;
        let lags = now.all("clickstream_process_lag_records");
        let raw_lags: Vec<_> = lags
            .iter()
            .filter(|s| s.labels.get("topic").map(String::as_str) == Some(RAW_TOPIC))
            .collect();
        let caught_up = raw_lags.len() == 6
            && raw_lags.iter().all(|s| s.value == 0.0)
            && now.value("clickstream_lake_table_rows", &[("table", "events")]) == 12.0
            && now.value("clickstream_lake_table_rows", &[("table", "duplicates")]) == 24.0
            && now.value("clickstream_pipeline_lag_records", &[]) == 0.0;
        if caught_up {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "lag and lake gauges did not settle: {raw_lags:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        settled.value("clickstream_process_rows_total", &[("table", "events")]),
        12.0
    );
    assert_eq!(
        settled.value("clickstream_process_rows_total", &[("table", "duplicates")]),
        24.0
    );
    assert_eq!(
        settled.value(
            "clickstream_process_rows_total",
            &[("table", "invalid_events")]
        ),
        9.0
    );
    assert!(settled.value("clickstream_lake_table_bytes", &[("table", "events")]) > 0.0);
    assert!(settled.value("clickstream_lake_table_files", &[("table", "events")]) >= 1.0);
    assert!(settled.value("clickstream_process_commit_duration_seconds_count", &[]) >= 1.0);
    // The seed's few user agents compiled some of uap-core's 1,200 patterns, not all.
    let compiled = settled.value("clickstream_process_user_agent_patterns_compiled", &[]);
    assert!(
        compiled > 0.0 && compiled < 600.0,
        "{compiled} patterns compiled"
    );
    for sample in settled.all("clickstream_process_lag_records") {
        assert_eq!(
            sample.labels.get("group").map(String::as_str),
            Some("clickstream-processor")
        );
    }
    every_family_has_help(&settled);
}

/// Every `clickstream_*` family exported has a `# HELP` line (each crate's
/// `metrics::describe`).
fn every_family_has_help(exposition: &Exposition) {
    let undescribed: Vec<&String> = exposition
        .types
        .keys()
        .filter(|family| family.starts_with("clickstream_"))
        .filter(|family| exposition.helps.get(*family).is_none_or(String::is_empty))
        .collect();
    assert!(undescribed.is_empty(), "no # HELP for {undescribed:?}");
}

/// GET `url` as JSON: (status, body).
async fn get_json(t: &TestPipeline, url: String) -> (u16, serde_json::Value) {
    let response = t.http.get(url).send().await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn health_answers_live_and_ready_per_role() {
    let t = TestPipeline::start().await;
    for url in [t.url("/health/live"), t.ui_url("/health/live")] {
        let live = t.http.get(url).send().await.expect("live");
        assert_eq!(live.status(), 200);
    }
    // Ready once the processor has loaded its state.
    let body = eventually("ready", Duration::from_secs(30), || async {
        let (status, body) = get_json(&t, t.url("/health/ready")).await;
        check(status == 200 && body["status"] == "ready", || {
            body.to_string()
        })
        .map(|()| body)
    })
    .await;
    for role in ["ingest", "processor", "segment_processor", "registry", "ui"] {
        assert_eq!(body["roles"][role]["status"], "ready", "{role}: {body}");
    }
    assert_eq!(
        body["checks"],
        serde_json::json!({"log": "ok", "registry": "ok", "lake": "ok"})
    );
    assert!(
        body["details"]["registry"]["detail"]
            .as_str()
            // The raw, latest and Segment subjects.
            .is_some_and(|d| d.contains("3 subjects")),
        "{body}"
    );
    let (status, one) = get_json(&t, t.url("/health/ready/ingest")).await;
    assert_eq!(status, 200);
    assert_eq!(one["roles"].as_object().map(|r| r.len()), Some(1), "{one}");
    let (status, unknown) = get_json(&t, t.url("/health/ready/nope")).await;
    assert_eq!(status, 404);
    assert!(
        unknown["message"]
            .as_str()
            .is_some_and(|m| m.contains("ingest")),
        "{unknown}"
    );
}

/// The registry going away degrades ingest and the processor (they go on with the schemas
/// they have) but makes neither unavailable: readiness stays 200 and names the part, and
/// an event posted meanwhile is acknowledged and lands. (It answered 503 before.)
#[tokio::test]
async fn readiness_names_the_registry_when_it_is_gone_and_stays_ready() {
    // An external registry that we then stop: the log and lake stay, the registry goes.
    let registry_dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(
        clickstream_registry::SchemaStore::open(registry_dir.path()).expect("store"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(clickstream_registry::serve(listener, store, async {
        let _ = stopped.await;
    }));
    let external = url.clone();
    let t = TestPipeline::start_with(move |c| c.registry.url = Some(external.into())).await;
    eventually("ready", Duration::from_secs(30), || async {
        let (status, body) = get_json(&t, t.url("/health/ready")).await;
        check(status == 200 && body["status"] == "ready", || {
            body.to_string()
        })
    })
    .await;
    let _ = stop.send(());
    server.await.expect("join").expect("server");

    let (status, body) = get_json(&t, t.url("/health/ready")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(
        body["checks"],
        serde_json::json!({"log": "ok", "registry": "unavailable", "lake": "ok"})
    );
    for role in ["ingest", "processor"] {
        assert_eq!(body["roles"][role]["status"], "degraded", "{role}: {body}");
        let reason = body["roles"][role]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("registry"), "{role}: {reason}");
    }
    let response = t
        .collect(serde_json::to_vec(&crate::common::seed_events()[..3]).expect("json"))
        .await;
    assert_eq!(response.status(), 200, "ingest keeps acknowledging");
    t.wait_for_count("SELECT count(*) AS n FROM events", 3)
        .await;
}

/// The lag and lake gauges come from the sampler, which runs whenever `/metrics` is
/// served, not only with the web UI (they were missing with `--no-ui` and in `process`).
#[tokio::test]
async fn lag_and_lake_gauges_are_exported_without_the_ui() {
    let t = TestPipeline::start_with(|c| c.ui.enabled = false).await;
    let body = serde_json::to_vec(&seed_events()).expect("json");
    assert_eq!(t.collect(body).await.status(), 200);
    t.wait_for_count("SELECT count(*) AS n FROM events", 12)
        .await;
    eventually("the gauges", Duration::from_secs(30), || async {
        let now = scrape(&t, t.url("/metrics")).await;
        let rows = now.value("clickstream_lake_table_rows", &[("table", "events")]);
        let lags = now.all("clickstream_process_lag_records").len();
        check(rows == 12.0 && lags > 0, || {
            format!("rows {rows}, {lags} lag series")
        })
    })
    .await;
}

/// The binary exports how much memory it holds: the process's resident set, and its
/// allocator's own counts (which only the binary, with jemalloc as its allocator, has).
#[tokio::test]
async fn the_binary_exports_its_memory_and_its_allocators_counts() {
    use crate::faults::child::{Child, UP_ON_FREE_PORTS, field};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Child::spawn("up", dir.path(), &UP_ON_FREE_PORTS, []);
    let line = child.wait_for_line("clickstream is up").await;
    let base = field(&line, "ingest").to_string();
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    child.kill().await;
    let exposition =
        parse(&text).unwrap_or_else(|e| panic!("/metrics is not valid Prometheus text: {e}"));
    for name in [
        "process_resident_memory_bytes",
        "clickstream_memory_allocated_bytes",
        "clickstream_memory_allocator_resident_bytes",
    ] {
        assert_eq!(
            exposition.types.get(name).map(String::as_str),
            Some("gauge"),
            "{name}"
        );
    }
    let resident = exposition.value("process_resident_memory_bytes", &[]);
    let allocated = exposition.value("clickstream_memory_allocated_bytes", &[]);
    let allocator = exposition.value("clickstream_memory_allocator_resident_bytes", &[]);
    // A running `up` holds at least its compiled user-agent patterns (~22 MB).
    assert!(allocated > 10e6, "allocated {allocated}");
    assert!(
        allocated <= allocator,
        "allocated {allocated} > allocator's {allocator}"
    );
    assert!(resident > 10e6, "resident {resident}");
}
