//! A processor frozen (SIGSTOP) past the group's session timeout while it holds a batch:
//! the other processor takes its partitions and commits them; when the frozen one wakes
//! up, its batch must be refused, not landed over offsets that are no longer its own.

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::TestPipeline;
use crate::faults::child::Child;
use crate::faults::ledger::{Ledger, Sender};
use crate::faults::{lake_matches_log, report, settle, wait_landed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_zombie_processor_lands_nothing_it_lost_kafka_log_file_lake() {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    crate::faults::capture_logs();
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.processor.enabled = false;
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A 3 s session for both. A holds what it reads for 60 s before committing, so once
    // it has read anything it holds an uncommitted batch; B commits every 200 ms.
    let config = |name: &str, flush_ms: u64| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[kafka.consumer_options]\n\"session.timeout.ms\" = \"3000\"\n\
                 \"heartbeat.interval.ms\" = \"500\"\n[lake]\nflush_interval_ms = {flush_ms}\n"
            ),
        )
        .expect("config");
        path.display().to_string()
    };
    let mut env: Vec<(String, String)> = backend
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push((
        "SCHEMA_REGISTRY_URL".into(),
        t.pipeline.registry_url().to_string(),
    ));
    env.push(("CLICKSTREAM_LAKE__URL".into(), t.lake().root().to_string()));
    env.push(("CLICKSTREAM_PROCESSOR__METRICS_PORT".into(), "0".into()));
    let with_config = |path: String| {
        let mut env = env.clone();
        env.push(("CLICKSTREAM_CONFIG".to_string(), path));
        // "records read" (debug) tells the test when A holds something.
        env.push((
            "RUST_LOG".to_string(),
            "warn,clickstream=info,clickstream_kafka=info,clickstream_process=debug".to_string(),
        ));
        env
    };
    let mut a = Child::spawn(
        "a",
        &dir.path().join("a"),
        &["process"],
        with_config(config("a", 60_000)),
    );
    let mut b = Child::spawn(
        "b",
        &dir.path().join("b"),
        &["process"],
        with_config(config("b", 200)),
    );
    a.wait_for_line("partitions assigned").await;
    b.wait_for_line("partitions assigned").await;
    // Both hold partitions: the group is settled.

    let ledger = Ledger::starting_at(1);
    let collect = t.url("/collect");
    let sender = Sender::start(&ledger, 2, 20, move || collect.clone());
    // A has read events it will not commit for a minute: it holds a batch.
    a.mark();
    a.wait_for_line("records read").await;
    b.mark();
    a.pause();
    let held = ledger.acked_ids();
    // B notices A is gone, takes every partition, and lands what A held.
    b.wait_for_line("partitions revoked").await;
    wait_landed(&t.base, &held).await;
    a.mark();
    a.resume();
    a.wait_for_line("partitions moved on under us").await;
    sender.stop().await;
    // A would hold what it reads next for a minute: B alone lands the rest.
    a.kill().await;

    let outcome = settle(&ledger, &t.base).await;
    lake_matches_log(t.log().as_ref(), &t.base).await;
    report::record(
        "processor frozen past its session (zombie)",
        "kafka, file",
        1,
        outcome,
    );
    drop((a, b));
}
