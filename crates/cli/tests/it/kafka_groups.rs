//! Several `clickstream process` instances in one consumer group on Kafka (librdkafka's
//! mock cluster), with the group's timing pinned down by the faults the mock brokers can
//! inject, so each scenario happens the same way on every run.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{Value, json};

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::{TestPipeline, seed_events};
use crate::eventually::{check, eventually};

fn cluster(backend: &Backend) -> &MockCluster<'static, DefaultProducerContext> {
    match &backend.log {
        LogBackend::Kafka(cluster) => cluster,
        LogBackend::Embedded => unreachable!("a Kafka backend"),
    }
}

/// A `clickstream process` child with its log in a file, so a test can wait for what it
/// says.
pub struct ChildProcessor {
    child: tokio::process::Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ChildProcessor {
    /// Starts a processor of `t`'s pipeline (registry, lake) on `backend`'s log.
    pub fn spawn(t: &TestPipeline, backend: &Backend) -> ChildProcessor {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("processor.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_clickstream"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("process")
            .envs(backend.env())
            .env("SCHEMA_REGISTRY_URL", t.pipeline.registry_url())
            .env("CLICKSTREAM_LAKE__URL", t.lake().root().to_string())
            .env("CLICKSTREAM_LAKE__FLUSH_INTERVAL_MS", "200")
            .env("CLICKSTREAM_PROCESSOR__METRICS_PORT", "0")
            .env("RUST_LOG", "warn,clickstream=info,clickstream_kafka=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn clickstream process");
        ChildProcessor {
            child,
            log,
            _dir: dir,
        }
    }

    /// What the processor logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the processor has started: its state is loaded from the lake and it
    /// has asked to join the group.
    pub async fn wait_started(&mut self) {
        eventually("the processor starts", Duration::from_secs(60), || {
            let text = self.log_text();
            let exited = self.child.try_wait().ok().flatten();
            async move {
                if let Some(status) = exited {
                    panic!("the processor exited ({status}):\n{text}");
                }
                check(text.contains("processor running"), || "not yet".into())
            }
        })
        .await;
    }

    /// SIGKILL.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

impl Drop for ChildProcessor {
    fn drop(&mut self) {
        // A failing test shows what the processor said.
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.log.display(), self.log_text());
        }
    }
}

/// `n` copies of a seed event with ids from `first`, each its own customer.
fn batch(first: i64, n: i64) -> Vec<Value> {
    let template = seed_events()[0].clone();
    (first..first + n)
        .map(|id| {
            let mut event = template.clone();
            event["id"] = json!(id);
            event["event"]["customer_id"] = json!(id);
            event
        })
        .collect()
}

async fn post(t: &TestPipeline, events: &[Value]) {
    let response = t.collect(serde_json::to_vec(events).expect("json")).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

/// Waits until every id below `until` is in `events`, once.
async fn wait_landed(t: &TestPipeline, until: i64, within: Duration) {
    eventually("events land", within, || async move {
        let rows = t.sql("SELECT id FROM events").await;
        let ids: Vec<i64> = rows.iter().filter_map(|r| r["id"].as_i64()).collect();
        let distinct: HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(ids.len(), distinct.len(), "an event landed twice");
        let missing = (1..until).filter(|id| !distinct.contains(id)).count();
        check(missing == 0, || format!("{missing} missing"))
    })
    .await;
}

/// Waits until `unique_users_daily` says what `events` says.
async fn wait_unique_users_exact(t: &TestPipeline, within: Duration) {
    let truth = "SELECT substr(timestamp, 1, 10) AS day, count(DISTINCT customer_id) AS n \
                 FROM events WHERE customer_id IS NOT NULL GROUP BY 1 ORDER BY 1";
    let expected = t.sql(truth).await;
    eventually("unique_users_daily matches events", within, || {
        let expected = expected.clone();
        async move {
            let table = t
                .sql("SELECT day, unique_users AS n FROM unique_users_daily ORDER BY day")
                .await;
            check(table == expected, || {
                format!("table {table:?}, events {expected:?}")
            })
        }
    })
    .await;
}

/// The root cause of the stale `unique_users_daily` with two processors, made to happen
/// every time. Processor B starts (its unique-users state is loaded from `events`) but
/// cannot join the group yet (the coordinator refuses its JoinGroup requests); meanwhile
/// processor A, alone in the group, commits more events and is killed. When B gets in, its
/// first assignment is all partitions after A's session timeout: no rebalance it took part
/// in, no commit of another writer between two of its own. Its state must still come to
/// include A's last commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_processor_joining_after_another_left_counts_its_commits() {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.processor.enabled = false;
    })
    .await;

    let mut a = ChildProcessor::spawn(&t, &backend);
    a.wait_started().await;
    post(&t, &batch(1, 100)).await;
    wait_landed(&t, 101, Duration::from_secs(60)).await;

    // B starts and loads its state, but stays out of the group.
    let refused = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 100_000];
    cluster(&backend).request_errors(RDKafkaApiKey::JoinGroup, &refused);
    let mut b = ChildProcessor::spawn(&t, &backend);
    b.wait_started().await;

    // A, still alone, lands more, and dies.
    post(&t, &batch(101, 100)).await;
    wait_landed(&t, 201, Duration::from_secs(60)).await;
    a.kill().await;

    // B gets in, takes every partition once A's session has timed out, and lands more.
    cluster(&backend).clear_request_errors(RDKafkaApiKey::JoinGroup);
    post(&t, &batch(201, 100)).await;
    wait_landed(&t, 301, Duration::from_secs(90)).await;

    wait_unique_users_exact(&t, Duration::from_secs(30)).await;
    assert!(
        b.log_text().contains("partitions assigned"),
        "B took the partitions over:\n{}",
        b.log_text()
    );
}

/// Customer `c`'s `k`-th event, `minutes` after the start of the test's day.
fn customer_event(c: i64, k: i64, minutes: i64) -> Value {
    let mut event = seed_events()[0].clone();
    event["id"] = json!(c * 1000 + k);
    event["event"]["customer_id"] = json!(c);
    event["event"]["timestamp"] = json!(format!(
        "2024-03-01T{:02}:{:02}:00.000000",
        8 + minutes / 60,
        minutes % 60
    ));
    event
}

/// Two processors share the partitions; customers' sessions and repeated events are
/// spread over both. One is killed; the survivor rebuilds the duplicate and session state
/// of the partitions it takes over (from `events`, for the partitions it now owns) and
/// goes on: a customer's session continues with the right indices, a new one starts after
/// the gap, and repeats of events the dead processor landed are still caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_two_processors_keep_sessions_and_duplicates_across_a_handover() {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.processor.enabled = false;
    })
    .await;
    let customers = 1..41i64;
    let mut a = ChildProcessor::spawn(&t, &backend);
    let mut b = ChildProcessor::spawn(&t, &backend);
    a.wait_started().await;
    b.wait_started().await;
    eventually(
        "both processors own partitions",
        Duration::from_secs(60),
        || {
            let (a, b) = (a.log_text(), b.log_text());
            async move {
                check(
                    a.contains("partitions assigned") && b.contains("partitions assigned"),
                    || "not yet".into(),
                )
            }
        },
    )
    .await;

    // Three events per customer, one session; then ten of them again.
    let first: Vec<Value> = customers
        .clone()
        .flat_map(|c| (0..3).map(move |k| customer_event(c, k, k)))
        .collect();
    post(&t, &first).await;
    let count = |sql: &'static str, n: i64| {
        let t = &t;
        async move {
            eventually(sql, Duration::from_secs(90), || async move {
                let rows = t.sql(sql).await;
                let got = rows[0]["n"].as_i64().unwrap_or(0);
                check(got == n, || format!("{got} of {n}"))
            })
            .await
        }
    };
    count("SELECT count(*) AS n FROM events", 120).await;
    post(&t, &first[..10]).await;
    count("SELECT count(*) AS n FROM duplicates", 10).await;

    a.kill().await;
    // Two more events in the same session, one after the gap, and repeats again.
    let second: Vec<Value> = customers
        .clone()
        .flat_map(|c| {
            [
                customer_event(c, 3, 3),
                customer_event(c, 4, 4),
                customer_event(c, 5, 180),
            ]
        })
        .collect();
    post(&t, &second).await;
    post(&t, &first[10..20]).await;
    count("SELECT count(*) AS n FROM events", 240).await;
    count("SELECT count(*) AS n FROM duplicates", 20).await;

    let rows = t
        .sql(
            "SELECT id, customer_id, session_id, session_index, event_index_in_session \
             FROM events ORDER BY id",
        )
        .await;
    let ids: HashSet<i64> = rows.iter().filter_map(|r| r["id"].as_i64()).collect();
    assert_eq!(ids.len(), 240, "every event once");
    for c in customers {
        let mine: Vec<_> = rows
            .iter()
            .filter(|r| r["customer_id"] == json!(c))
            .collect();
        assert_eq!(mine.len(), 6, "customer {c}");
        let session = |r: &serde_json::Map<String, Value>| {
            (
                r["session_id"].as_str().map(str::to_string),
                r["session_index"].as_i64(),
                r["event_index_in_session"].as_i64(),
            )
        };
        let first_session = session(mine[0]).0;
        for (k, row) in mine.iter().enumerate().take(5) {
            assert_eq!(
                session(row),
                (first_session.clone(), Some(1), Some(k as i64 + 1)),
                "customer {c}, event {k}: one session across the handover"
            );
        }
        let (id, index, event_index) = session(mine[5]);
        assert_ne!(
            id, first_session,
            "customer {c}: a new session after the gap"
        );
        assert_eq!((index, event_index), (Some(2), Some(1)), "customer {c}");
    }
    drop(b);
}
