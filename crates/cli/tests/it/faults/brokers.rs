//! Kafka brokers restarted one after the other and partition leaders moved, while events
//! flow through the mock cluster: requests touching a partition whose leader is down get
//! 503 and are sent again; nothing acknowledged is lost or doubled.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use clickstream_event::RAW_TOPIC;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::TestPipeline;
use crate::eventually::{check, eventually};
use crate::faults::ledger::{Ledger, Sender};
use crate::faults::{lake_matches_log, report, settle};

fn cluster(backend: &Backend) -> &MockCluster<'static, DefaultProducerContext> {
    match &backend.log {
        LogBackend::Kafka(cluster) => cluster,
        LogBackend::Embedded => unreachable!("a Kafka backend"),
    }
}

async fn broker_faults(lake: LakeBackend, name: &str) {
    let backend = Backend::new(LogBackend::kafka(), lake);
    crate::faults::capture_logs();
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.kafka.delivery_timeout_ms = 2_000;
    })
    .await;
    let ledger = Ledger::starting_at(1);
    let collect = t.url("/collect");
    let sender = Sender::start(&ledger, 2, 20, move || collect.clone());
    let more = |n: usize| ledger.acked_more(n, Duration::from_secs(90));
    more(200).await;
    for broker in 1..=3 {
        let refused = ledger.refused.load(Relaxed);
        cluster(&backend).broker_down(broker).expect("broker down");
        eventually(
            "requests refused while a broker is down",
            Duration::from_secs(60),
            || async { check(ledger.refused.load(Relaxed) > refused, || "none yet".into()) },
        )
        .await;
        cluster(&backend).broker_up(broker).expect("broker up");
        more(100).await;
    }
    for partition in 0..6 {
        let leader = (partition % 3) + 1;
        cluster(&backend)
            .partition_leader(RAW_TOPIC, partition, Some(leader))
            .expect("leader moved");
        more(50).await;
    }
    sender.stop().await;
    let outcome = settle(&ledger, &t.base).await;
    lake_matches_log(t.log().as_ref(), &t.base).await;
    report::record("broker restarts, leader moves", name, 9, outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_broker_faults_kafka_log_file_lake() {
    broker_faults(LakeBackend::File, "kafka, file").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_broker_faults_kafka_log_s3_lake() {
    broker_faults(LakeBackend::s3(), "kafka, s3").await;
}
