//! The pipeline on Kafka (librdkafka's mock cluster) under the faults the mock brokers can
//! inject: every broker down while ingest produces, request errors on fetch and offset
//! commit, and a processor of a two-member group killed mid-run.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{Value, json};

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::{TestPipeline, seed_events};

fn cluster(backend: &Backend) -> &MockCluster<'static, DefaultProducerContext> {
    match &backend.log {
        LogBackend::Kafka(cluster) => cluster,
        LogBackend::Embedded => unreachable!("a Kafka backend"),
    }
}

/// `n` copies of a seed event with ids from `first`.
fn batch(first: i64, n: i64) -> Vec<Value> {
    let template = seed_events()[0].clone();
    (first..first + n)
        .map(|id| {
            let mut event = template.clone();
            event["id"] = json!(id);
            event
        })
        .collect()
}

/// Every id in `events`, asserting none is there twice.
async fn lake_ids(t: &TestPipeline) -> HashSet<i64> {
    let rows = t.sql("SELECT id FROM events").await;
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().expect("id")).collect();
    let distinct: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), distinct.len(), "an event landed twice");
    distinct
}

/// All brokers go down while requests come in: ingest answers 503 with `Retry-After`
/// once the delivery timeout passes (it never acknowledges what Kafka does not have), and
/// when the brokers are back it accepts again. Every acknowledged event is in the lake
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_down_during_produce_answer_503_and_lose_nothing_acknowledged() {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.kafka.delivery_timeout_ms = 2_000;
    })
    .await;
    let mut acked: Vec<i64> = Vec::new();

    let response = t
        .collect(serde_json::to_vec(&batch(1, 20)).expect("json"))
        .await;
    assert_eq!(response.status(), 200);
    acked.extend(1..21);

    for broker in 1..=3 {
        cluster(&backend).broker_down(broker).expect("broker down");
    }
    let response = t
        .collect(serde_json::to_vec(&batch(100, 20)).expect("json"))
        .await;
    assert_eq!(response.status(), 503, "no broker can take the records");
    assert!(
        response.headers().contains_key("retry-after"),
        "503 carries Retry-After"
    );
    let body: Value = response.json().await.expect("JSON reason");
    assert!(body["message"].is_string(), "{body}");

    for broker in 1..=3 {
        cluster(&backend).broker_up(broker).expect("broker up");
    }
    // The client retries, as Retry-After tells it to, until the cluster is back.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = t
            .collect(serde_json::to_vec(&batch(200, 20)).expect("json"))
            .await;
        if response.status() == 200 {
            acked.extend(200..220);
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(Instant::now() < deadline, "ingest did not recover");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids = lake_ids(&t).await;
        if acked.iter().all(|id| ids.contains(id)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged events missing from the lake: {} of {}",
            acked.iter().filter(|id| !ids.contains(id)).count(),
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Fetch and offset-commit requests fail now and then (leadership moves, coordinator
/// loads): the consumer retries and the lake still ends with every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_commit_errors_neither_lose_nor_duplicate() {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    let t = TestPipeline::start_on(&backend).await;
    let mut next = 1;
    for round in 0..6 {
        if round % 2 == 0 {
            cluster(&backend).request_errors(
                RDKafkaApiKey::Fetch,
                &[
                    RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                    RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                    RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                ],
            );
            cluster(&backend).request_errors(
                RDKafkaApiKey::OffsetCommit,
                &[
                    RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                    RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                ],
            );
        }
        let response = t
            .collect(serde_json::to_vec(&batch(next, 50)).expect("json"))
            .await;
        assert_eq!(response.status(), 200);
        next += 50;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    t.wait_for_count_within(
        "SELECT count(*) AS n FROM events",
        next - 1,
        Duration::from_secs(60),
    )
    .await;
    let ids = lake_ids(&t).await;
    assert_eq!(ids.len() as i64, next - 1);
}

fn spawn_processor(
    backend: &Backend,
    registry_url: &str,
    lake_url: &str,
    dir: &std::path::Path,
    metrics_port: u16,
) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .arg("--data-dir")
        .arg(dir)
        .arg("process")
        .envs(backend.env())
        .env("SCHEMA_REGISTRY_URL", registry_url)
        .env("CLICKSTREAM_LAKE__URL", lake_url)
        .env("CLICKSTREAM_LAKE__FLUSH_INTERVAL_MS", "200")
        .env("CLICKSTREAM_INGEST__HOST", "127.0.0.1")
        .env(
            "CLICKSTREAM_PROCESSOR__METRICS_PORT",
            metrics_port.to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn clickstream process")
}

/// Two `clickstream process` instances share the raw topic's six partitions through the
/// consumer group and commit to the same Delta tables; one is killed with SIGKILL while
/// events flow. The survivor takes its partitions over (after the session timeout) from
/// the positions in the lake, and every acknowledged event lands exactly once. Unique
/// users per day, which each processor only partly sees, end up exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processors_one_killed_every_event_exactly_once() {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    // This process is the ingest role (and serves the registry); the processors are
    // separate processes.
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.processor.enabled = false;
    })
    .await;
    let lake_url = t.lake().root().to_string();
    let registry_url = t.pipeline.registry_url().to_string();
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let metrics_port = crate::backends::free_port();
    let mut first = spawn_processor(&backend, &registry_url, &lake_url, dirs[0].path(), 0);
    let mut second = spawn_processor(
        &backend,
        &registry_url,
        &lake_url,
        dirs[1].path(),
        metrics_port,
    );

    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let next_id = Arc::new(AtomicI64::new(1));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (http, url) = (t.http.clone(), t.url("/collect"));
        let (acked, next_id, stop) = (acked.clone(), next_id.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let from = next_id.fetch_add(40, Ordering::Relaxed);
                // One customer per event: each processor sees only some of them.
                let events: Vec<Value> = batch(from, 40)
                    .into_iter()
                    .map(|mut event| {
                        event["event"]["customer_id"] = event["id"].clone();
                        event
                    })
                    .collect();
                let sent = http.post(&url).json(&events).send().await;
                if sent.is_ok_and(|r| r.status().is_success()) {
                    acked.lock().expect("lock").extend(from..from + 40);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // Let both members join and commit for a while, then kill one mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = t.sql("SELECT count(*) AS n FROM events").await;
        if rows[0]["n"].as_i64().unwrap_or(0) > 400 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processors did not start landing events"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.kill().await.expect("SIGKILL");
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    sender.await.expect("sender");

    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 400,
        "only {} events acknowledged",
        acked.len()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ids = lake_ids(&t).await;
        let missing = acked.iter().filter(|id| !ids.contains(id)).count();
        if missing == 0 {
            break;
        }
        if let Ok(Some(status)) = second.try_wait() {
            panic!("the surviving processor exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged events still missing",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let truth = "SELECT substr(timestamp, 1, 10) AS day, count(DISTINCT customer_id) AS n \
                 FROM events WHERE customer_id IS NOT NULL GROUP BY 1 ORDER BY 1";
    let expected = t.sql(truth).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let table = t
            .sql("SELECT day, unique_users AS n FROM unique_users_daily ORDER BY day")
            .await;
        if table == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "unique_users_daily {table:?} never matched the events {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A separate processor serves its own metrics, librdkafka's statistics among them.
    let metrics = t
        .http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .expect("processor metrics answer")
        .text()
        .await
        .expect("text");
    for name in [
        "clickstream_process_rows_total",
        "clickstream_kafka_received_messages_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    second.kill().await.expect("stop");
}
