//! The Schema Registry slow, down, and restarted while ingest and the processor run: both
//! go on with the schemas they loaded (ingest validates with the raw schema version in
//! force, the processor decodes with the versions it loaded), readiness names the registry
//! without taking them out of service, and nothing acknowledged is lost or doubled.

use std::time::Duration;

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::TestPipeline;

use crate::faults::child::{Child, field};
use crate::faults::ledger::{Ledger, Sender};
use crate::faults::proxy::FaultyProxy;
use crate::faults::{http_get_json, lake_matches_log, report, settle};

async fn registry_faults(log: LogBackend, name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry_dir = dir.path().join("registry");
    let mut registry = Child::spawn("registry", &registry_dir, &["registry", "--port", "0"], []);
    let line = registry.wait_for_line("schema registry is up").await;
    let addr = field(&line, "addr").to_string();
    let port = addr.rsplit(':').next().expect("port").to_string();
    let proxy = FaultyProxy::start(&format!("http://{addr}")).await;
    let backend = Backend::new(log, LakeBackend::File);
    let url = proxy.url.clone();
    crate::faults::capture_logs();
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.registry.url = Some(url.into());
    })
    .await;
    // Everything runs (the processor has started) before the registry misbehaves.
    crate::faults::wait_ready(&t.base).await;
    let ledger = Ledger::starting_at(1);
    let collect = t.url("/collect");
    let sender = Sender::start(&ledger, 2, 20, move || collect.clone());
    let more = |n: usize| ledger.acked_more(n, Duration::from_secs(60));
    more(200).await;

    // Slow: two seconds per answer.
    proxy.set_latency(Duration::from_secs(2));
    more(300).await;
    proxy.set_latency(Duration::ZERO);

    // Down: ingest and the processor go on, degraded.
    proxy.set_down(true);
    more(300).await;
    let (status, ready) = http_get_json(&format!("{}/health/ready", t.base)).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"]["registry"], "unavailable", "{ready}");
    assert_eq!(ready["roles"]["ingest"]["status"], "degraded", "{ready}");

    // Restarted: a new process on the same port and data.
    registry.kill().await;
    let mut registry = Child::spawn(
        "registry",
        &registry_dir,
        &["registry", "--port", &port],
        [],
    );
    registry.wait_for_line("schema registry is up").await;
    proxy.set_down(false);
    more(300).await;
    sender.stop().await;

    let outcome = settle(&ledger, &t.base).await;
    lake_matches_log(t.log().as_ref(), &t.base).await;
    report::record("registry slow, down, restarted", name, 3, outcome);
    drop(registry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_faults_embedded_log_file_lake() {
    registry_faults(LogBackend::Embedded, "embedded, file").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_faults_kafka_log_file_lake() {
    registry_faults(LogBackend::kafka(), "kafka, file").await;
}
