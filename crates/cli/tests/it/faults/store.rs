//! The lake's S3 store misbehaving while events flow, through a fault proxy in front of a
//! real S3 API server (moto): slow answers, a run of 500s and 503s, and Delta commits that
//! land but whose answer never comes back (object_store retries the PUT, finds the file
//! there, and the processor must recognise its own commit by its `txn` version rather than
//! land the batch twice).

use std::time::Duration;

use clickstream::Config;

use crate::backends::{Backend, LakeBackend, LogBackend, MotoServer};
use crate::common::TestPipeline;
use crate::eventually::{check, eventually};
use crate::faults::ledger::{Ledger, Sender};
use crate::faults::proxy::{FaultyProxy, data_write, delta_commit};
use crate::faults::{lake_matches_log, report, settle};

/// A pipeline whose lake is on S3 behind a fault proxy, with everything it needs kept alive
/// for the test: the S3 server, the proxy, and the log backend (for Kafka, the mock
/// cluster: dropped, the pipeline loses its broker). Fields drop in order, pipeline first.
struct S3Pipeline {
    t: TestPipeline,
    _backend: Backend,
    proxy: FaultyProxy,
    _moto: MotoServer,
}

impl S3Pipeline {
    /// Starts it with `configure` applied last, and waits until everything runs (the
    /// processor has started) so that no fault lands before.
    async fn start(log: LogBackend, configure: impl FnOnce(&mut Config)) -> S3Pipeline {
        crate::faults::capture_logs();
        let moto = MotoServer::start();
        let proxy = FaultyProxy::start(&moto.endpoint).await;
        let backend = Backend::new(log, LakeBackend::File);
        let endpoint = proxy.url.clone();
        let t = TestPipeline::start_with(|config| {
            backend.configure(config);
            config.lake.s3.endpoint = Some(endpoint);
            config.lake.s3.access_key_id = Some("testing".into());
            config.lake.s3.secret_access_key = Some("testing".into());
            config.lake.flush_interval_ms = 100;
            configure(config);
        })
        .await;
        crate::faults::wait_ready(&t.base).await;
        S3Pipeline {
            t,
            _backend: backend,
            proxy,
            _moto: moto,
        }
    }

    /// Two senders of 20-event batches to `/collect`, recording in `ledger`.
    fn sender(&self, ledger: &Ledger) -> Sender {
        let collect = self.t.url("/collect");
        Sender::start(ledger, 2, 20, move || collect.clone())
    }
}

async fn store_faults(log: LogBackend, name: &str) {
    let pipeline = S3Pipeline::start(log, |_| {}).await;
    let (t, proxy) = (&pipeline.t, &pipeline.proxy);
    let ledger = Ledger::starting_at(1);
    let sender = pipeline.sender(&ledger);
    let more = |n: usize| ledger.acked_more(n, Duration::from_secs(60));
    more(200).await;

    // Slow: every request waits 400 ms.
    proxy.set_latency(Duration::from_millis(400));
    more(400).await;
    proxy.set_latency(Duration::ZERO);

    // A run of server errors, then of unavailability.
    use std::sync::atomic::Ordering::Relaxed;
    for (round, status) in [(1, 500), (2, 503)] {
        proxy.fail_next(30, status);
        eventually("errors served", Duration::from_secs(60), || async {
            let failed = proxy.seen.failed.load(Relaxed);
            check(failed >= 30 * round, || format!("{failed} served"))
        })
        .await;
    }
    more(400).await;

    // Commits that land but lose their answer.
    proxy.lose_answers(3, delta_commit);
    eventually(
        "three commit answers lost",
        Duration::from_secs(60),
        || async {
            check(proxy.answers_still_to_lose() == 0, || {
                format!("{} still to lose", proxy.answers_still_to_lose())
            })
        },
    )
    .await;
    more(200).await;
    sender.stop().await;

    let outcome = settle(&ledger, &t.base).await;
    lake_matches_log(t.log().as_ref(), &t.base).await;
    assert_eq!(proxy.seen.failed.load(Relaxed), 60, "errors were served");
    assert_eq!(proxy.seen.lost.load(Relaxed), 3, "answers were lost");
    report::record("S3 slow, 5xx, lost commit answers", name, 3, outcome);
}

/// Data files refused mid-batch, beyond the store client's retries (one retry here, so the
/// test is quick): a batch whose `events` files cannot be written is not committed but read
/// again from the log, and every acknowledged event still lands exactly once.
async fn data_writes_fail(log: LogBackend, name: &str) {
    let pipeline = S3Pipeline::start(log, |config| {
        for (key, value) in [
            ("max_retries", "1"),
            ("retry_timeout", "5s"),
            ("backoff_config.init_backoff", "20ms"),
        ] {
            config.lake.storage_options.insert(key, value);
        }
    })
    .await;
    let (t, proxy) = (&pipeline.t, &pipeline.proxy);
    let ledger = Ledger::starting_at(1);
    let sender = pipeline.sender(&ledger);
    let more = |n: usize| ledger.acked_more(n, Duration::from_secs(60));
    more(200).await;

    use std::sync::atomic::Ordering::Relaxed;
    proxy.fail_matching(8, 503, data_write);
    eventually("data writes refused", Duration::from_secs(60), || async {
        let failed = proxy.seen.failed.load(Relaxed);
        check(failed >= 8, || format!("{failed} refused"))
    })
    .await;
    more(400).await;
    sender.stop().await;

    let outcome = settle(&ledger, &t.base).await;
    lake_matches_log(t.log().as_ref(), &t.base).await;
    let metrics = reqwest::get(t.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let unwritten = metrics
        .lines()
        .find_map(|line| line.strip_prefix("clickstream_process_batches_unwritten_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .unwrap_or_default();
    assert!(unwritten >= 1.0, "no batch was read again:\n{metrics}");
    report::record("S3 refusing data files mid-write", name, 1, outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_writes_fail_embedded_log_s3_lake() {
    data_writes_fail(LogBackend::Embedded, "embedded, s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_embedded_log_s3_lake() {
    store_faults(LogBackend::Embedded, "embedded, s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_kafka_log_s3_lake() {
    store_faults(LogBackend::kafka(), "kafka, s3").await;
}
