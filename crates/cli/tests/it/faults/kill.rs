//! kill -9 at random points under load, [`ROUNDS`] times in one test: of `up` (on every
//! backend), and of `process` and `ingest` run apart (on Kafka only: the embedded log
//! belongs to one process). After the last round a clean run drains the log, and the lake
//! is checked against what the clients were told.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::TestPipeline;
use crate::faults::child::{Child, UP_ON_FREE_PORTS, field};
use crate::faults::ledger::{Ledger, Sender};
use crate::faults::{lake_matches_log, lake_matches_log_in, report, settle};

/// Kills per test.
const ROUNDS: usize = 20;

/// How long a round lets the clients post before the kill.
fn random_pause() -> Duration {
    Duration::from_millis(rand::rng().random_range(100..700))
}

/// Settings that make commits frequent (so kills land in every phase of a commit) and,
/// on Kafka, a dead group member noticed within 3 s (so rounds are short).
fn fast_env(backend: &Backend, dir: &std::path::Path) -> Vec<(String, String)> {
    let config = dir.join("fast.toml");
    std::fs::write(
        &config,
        "[kafka.consumer_options]\n\"session.timeout.ms\" = \"3000\"\n\
         \"heartbeat.interval.ms\" = \"500\"\n",
    )
    .expect("config written");
    let mut env: Vec<(String, String)> = backend
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push(("CLICKSTREAM_LAKE__FLUSH_INTERVAL_MS".into(), "50".into()));
    env.push(("CLICKSTREAM_CONFIG".into(), config.display().to_string()));
    env
}

/// `up` on `backend`, killed [`ROUNDS`] times.
async fn kill_up(backend: Backend, name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = fast_env(&backend, dir.path());
    let ledger = Ledger::starting_at(1);
    let url = Arc::new(Mutex::new(String::from("http://127.0.0.1:9/collect")));
    let target = url.clone();
    let sender = Sender::start(&ledger, 3, 20, move || target.lock().expect("url").clone());
    let up = UP_ON_FREE_PORTS;
    for _ in 0..ROUNDS {
        let mut child = Child::spawn("up", dir.path(), &up, env.clone());
        let line = child.wait_for_line("clickstream is up").await;
        *url.lock().expect("url") = format!("{}/collect", field(&line, "ingest"));
        tokio::time::sleep(random_pause()).await;
        child.kill().await;
    }
    sender.stop().await;
    let mut child = Child::spawn("up", dir.path(), &up, env.clone());
    let line = child.wait_for_line("clickstream is up").await;
    let base = field(&line, "ingest").to_string();
    let outcome = settle(&ledger, &base).await;
    child.kill().await;
    lake_matches_log_in(&backend, dir.path()).await;
    report::record("kill -9 of up", name, ROUNDS, outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_up_embedded_log_file_lake() {
    kill_up(
        Backend::new(LogBackend::Embedded, LakeBackend::File),
        "embedded, file",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_up_embedded_log_s3_lake() {
    kill_up(
        Backend::new(LogBackend::Embedded, LakeBackend::s3()),
        "embedded, s3",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_up_kafka_log_file_lake() {
    kill_up(
        Backend::new(LogBackend::kafka(), LakeBackend::File),
        "kafka, file",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_up_kafka_log_s3_lake() {
    kill_up(
        Backend::new(LogBackend::kafka(), LakeBackend::s3()),
        "kafka, s3",
    )
    .await;
}

/// `clickstream process` killed [`ROUNDS`] times while this process ingests.
async fn kill_process(backend: Backend, name: &str) {
    crate::faults::capture_logs();
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.processor.enabled = false;
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = fast_env(&backend, dir.path());
    env.push((
        "SCHEMA_REGISTRY_URL".into(),
        t.pipeline.registry_url().to_string(),
    ));
    env.push(("CLICKSTREAM_LAKE__URL".into(), t.lake().root().to_string()));
    env.push(("CLICKSTREAM_PROCESSOR__METRICS_PORT".into(), "0".into()));
    let ledger = Ledger::starting_at(1);
    let collect = t.url("/collect");
    // Paced (about 150 events/s): every restart rebuilds its state from the lake, so an
    // unpaced load makes each round slower than the last, most of all on S3.
    let pause = Duration::from_millis(250);
    let sender = Sender::paced(&ledger, 2, 20, pause, move || collect.clone());
    for _ in 0..ROUNDS {
        let mut child = Child::spawn("process", dir.path(), &["process"], env.clone());
        // Killed while it holds partitions, so every kill can land inside a commit.
        child.wait_for_line("partitions assigned").await;
        tokio::time::sleep(random_pause()).await;
        child.kill().await;
    }
    sender.stop().await;
    let mut child = Child::spawn("process", dir.path(), &["process"], env.clone());
    child.wait_for_line("processor running").await;
    let outcome = settle(&ledger, &t.base).await;
    lake_matches_log(t.log().as_ref(), &t.base).await;
    report::record("kill -9 of process", name, ROUNDS, outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_process_kafka_log_file_lake() {
    kill_process(
        Backend::new(LogBackend::kafka(), LakeBackend::File),
        "kafka, file",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_process_kafka_log_s3_lake() {
    kill_process(
        Backend::new(LogBackend::kafka(), LakeBackend::s3()),
        "kafka, s3",
    )
    .await;
}

/// `clickstream ingest` killed [`ROUNDS`] times under load while this process runs the
/// registry and the processor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ingest_kafka_log_file_lake() {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    crate::faults::capture_logs();
    let t = TestPipeline::start_on(&backend).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = fast_env(&backend, dir.path());
    env.push((
        "SCHEMA_REGISTRY_URL".into(),
        t.pipeline.registry_url().to_string(),
    ));
    let ledger = Ledger::starting_at(1);
    let url = Arc::new(Mutex::new(String::from("http://127.0.0.1:9/collect")));
    let target = url.clone();
    let sender = Sender::start(&ledger, 3, 20, move || target.lock().expect("url").clone());
    let ingest = ["ingest", "--api-port", "0"];
    for _ in 0..ROUNDS {
        let mut child = Child::spawn("ingest", dir.path(), &ingest, env.clone());
        let line = child.wait_for_line("clickstream is up").await;
        *url.lock().expect("url") = format!("{}/collect", field(&line, "ingest"));
        tokio::time::sleep(random_pause()).await;
        child.kill().await;
    }
    sender.stop().await;
    let outcome = settle(&ledger, &t.base).await;
    lake_matches_log(t.log().as_ref(), &t.base).await;
    report::record("kill -9 of ingest", "kafka, file", ROUNDS, outcome);
}
