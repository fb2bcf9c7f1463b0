//! What `clickstream up` sets up before serving: topics, schemas, which registry.

use std::sync::Arc;

use clickstream_event::{RAW_TOPIC, UNIQUE_USERS_TOPIC};
use clickstream_registry::{RegistryClient, SchemaStore};

use crate::common::{TestPipeline, seed_events};

#[tokio::test]
async fn topics_come_from_the_csv_and_default_to_six_partitions() {
    let csv_dir = tempfile::tempdir().expect("tempdir");
    let csv = csv_dir.path().join("topics.csv");
    // The seed's file: the last line has no newline.
    std::fs::write(
        &csv,
        "acme.clickstream.raw.events,6,1\nacme.clickstream.unique.users,1,1",
    )
    .expect("write csv");
    let t = TestPipeline::start_with(|c| c.topics.partitions_csv = Some(csv.clone())).await;
    let log = t.log();
    assert_eq!(log.partition_count(RAW_TOPIC).await.expect("raw"), 6);
    assert_eq!(
        log.partition_count(UNIQUE_USERS_TOPIC).await.expect("uu"),
        1
    );
    assert_eq!(
        log.partition_count("acme.clickstream.invalid.events")
            .await
            .expect("invalid"),
        6
    );
}

#[tokio::test]
async fn an_external_registry_is_used_instead_of_serving_one() {
    // A registry in its own server, standing in for a remote one: the same Confluent API.
    let registry_dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SchemaStore::open(registry_dir.path()).expect("store"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(clickstream_registry::serve(listener, store, async {
        let _ = stopped.await;
    }));

    let external = url.clone();
    let t = TestPipeline::start_with(move |c| c.registry.url = Some(external)).await;
    assert!(
        t.pipeline.registry_addr().is_none(),
        "no registry of our own"
    );
    assert_eq!(t.pipeline.registry_url(), url);

    let client = RegistryClient::new(&url).expect("client");
    let raw = client
        .latest("acme.clickstream.raw.events-value")
        .await
        .expect("raw schema registered in the external registry");
    assert!(
        client
            .latest("acme.clickstream.latest.events-value")
            .await
            .is_ok(),
        "latest schema registered too"
    );

    // Events are encoded with the external registry's id.
    let answer = t
        .collect(serde_json::to_vec(&seed_events()).expect("json"))
        .await;
    assert_eq!(answer.status(), 200);
    let records = crate::common::read_topic(t.log().as_ref(), RAW_TOPIC).await;
    let id = u32::from_be_bytes(records[0].value[1..5].try_into().expect("4 bytes"));
    assert_eq!(id, raw.id);

    let _ = stop.send(());
    server.await.expect("join").expect("server");
}

/// The value of one sample line of Prometheus text (`name{labels} value`), 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series)
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_exactly_the_events_posted() {
    let t = TestPipeline::start().await;
    let scrape = || async {
        let response = t.http.get(t.url("/metrics")).send().await.expect("scrape");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    };
    let before = scrape().await;
    for _ in 0..3 {
        let answer = t
            .collect(serde_json::to_vec(&seed_events()).expect("json"))
            .await;
        assert_eq!(answer.status(), 200);
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
    let after = scrape().await;
    // Every line is `name{labels} value` or a comment: the text format parses.
    for line in after
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (_, value) = line.rsplit_once(' ').expect("name and value");
        assert!(value.parse::<f64>().is_ok(), "unparsable sample: {line}");
    }
    let delta = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        delta(r#"clickstream_ingest_events_total{outcome="valid"}"#),
        36.0
    );
    assert_eq!(
        delta(r#"clickstream_ingest_events_total{outcome="invalid"}"#),
        9.0
    );
    assert_eq!(
        delta(r#"clickstream_ingest_rejected_requests_total{status="415"}"#),
        1.0
    );
    assert!(after.contains("clickstream_log_append_duration_seconds"));
}

#[tokio::test]
async fn health_answers_live_and_ready() {
    let t = TestPipeline::start().await;
    let live = t
        .http
        .get(t.url("/health/live"))
        .send()
        .await
        .expect("live");
    assert_eq!(live.status(), 200);
    let ready = t
        .http
        .get(t.url("/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(
        body["checks"],
        serde_json::json!({"log": "ok", "registry": "ok", "lake": "ok"})
    );
}
