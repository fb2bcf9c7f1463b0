//! The offsets of a partition whose leader's broker went down and came back, on librdkafka's
//! mock cluster, through the log's public API.
//!
//! Since librdkafka 2.10 a client forgets the brokers a Metadata reply leaves out, and the
//! mock leaves out the brokers that are down, while still naming them as the leaders of
//! their partitions (taking a broker down moves no leader). A client that fetched metadata
//! during the outage therefore holds a partition whose leader it does not know, and
//! `rd_kafka_query_watermark_offsets`, which only looks at that cached metadata, answers
//! `_UNKNOWN_PARTITION` at once, for as long as nothing refreshes the metadata (minutes).

use std::time::{Duration, Instant};

use clickstream_kafka::{KafkaConfig, KafkaLog};
use clickstream_log::{EventLog, LogError, PartitionOffsets, TopicPartition};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

const TOPIC: &str = "clicks";

type Cluster = MockCluster<'static, DefaultProducerContext>;

/// Three brokers (ids 1 to 3) and `TOPIC`, whose partition `p` is led by broker `p + 1`.
fn cluster() -> Cluster {
    let cluster = MockCluster::new(3).expect("mock cluster starts");
    cluster.create_topic(TOPIC, 3, 1).expect("topic created");
    for partition in 0..3 {
        cluster
            .partition_leader(TOPIC, partition, Some(partition + 1))
            .expect("leader set");
    }
    cluster
}

/// The log on `cluster`. Its metadata client learns the three brokers here.
async fn connect(cluster: &Cluster) -> KafkaLog {
    let config = KafkaConfig {
        bootstrap_servers: Some(cluster.bootstrap_servers()),
        request_timeout_ms: 5_000,
        statistics_interval_ms: 0,
        ..KafkaConfig::default()
    };
    KafkaLog::connect(config).await.expect("kafka reachable")
}

/// Takes `brokers` down and has the log's metadata client fetch the cluster's metadata
/// while they are: afterwards it knows broker 1 only, and still has brokers 2 and 3 as the
/// leaders of partitions 1 and 2.
///
/// Only partition 0 (broker 1) is read before, so broker 1 is the only broker the client
/// is connected to, and the metadata request surely goes to it rather than to a broker
/// going down.
async fn fetch_metadata_while_down(log: &KafkaLog, cluster: &Cluster, brokers: &[i32]) {
    log.offsets(&TopicPartition::new(TOPIC, 0))
        .await
        .expect("offsets of a partition led by broker 1 while all brokers are up");
    for &broker in brokers {
        cluster.broker_down(broker).expect("broker down");
    }
    // Listing the topics fetches the metadata of all topics, then asks every partition's
    // offsets; those of the partitions led by a broker that is down fail, as they may.
    let _ = log.topics().await;
}

/// `tp`'s offsets, asked until they come (up to `limit`). Only transient errors may come
/// first: a permanent one would stop the processor for good.
async fn offsets_within(log: &KafkaLog, tp: &TopicPartition, limit: Duration) -> PartitionOffsets {
    let deadline = Instant::now() + limit;
    loop {
        match log.offsets(tp).await {
            Ok(offsets) => return offsets,
            Err(e) if !e.is_transient() => panic!(
                "{tp}: permanent error for a partition that exists: {e} ({e:?}); \
                 the processor stops on it"
            ),
            Err(e) if Instant::now() >= deadline => {
                panic!("{tp}: no offsets {limit:?} after the brokers came back: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The rare CI failure where the processor stopped for good after all brokers went down
/// and came back up: a group assigned it partitions, and asking their offsets (to seek to
/// the lake's position) failed with "unknown topic", a permanent error. Reproduced
/// deterministically: the log's metadata client fetches metadata while brokers 2 and 3
/// are down, so librdkafka forgets them but keeps them as leaders; once they are up again,
/// the offsets of partition 1 (broker 2) were refused as of an unknown topic at once, and
/// would be for minutes. They must come, after transient errors at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_come_once_the_leaders_broker_is_back() {
    let cluster = cluster();
    let log = connect(&cluster).await;
    fetch_metadata_while_down(&log, &cluster, &[2, 3]).await;
    for broker in [2, 3] {
        cluster.broker_up(broker).expect("broker up");
    }
    for partition in [1, 2] {
        let tp = TopicPartition::new(TOPIC, partition);
        let offsets = offsets_within(&log, &tp, Duration::from_secs(10)).await;
        assert_eq!(offsets, PartitionOffsets { start: 0, end: 0 }, "{tp}");
    }
    // The listing, which asks every partition's offsets, works again too.
    let topics = log.topics().await.expect("topics listed");
    assert_eq!(topics.len(), 1, "{topics:?}");
    assert_eq!(topics[0].partitions.len(), 3, "{topics:?}");
}

/// While a partition's leader is down, its offsets are unavailable (transient: the
/// processor waits), not unknown (permanent: the processor stops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_while_the_leaders_broker_is_down_are_transient() {
    let cluster = cluster();
    let log = connect(&cluster).await;
    fetch_metadata_while_down(&log, &cluster, &[2]).await;
    let tp = TopicPartition::new(TOPIC, 1);
    match log.offsets(&tp).await {
        Err(e) if e.is_transient() => {}
        other => panic!("{tp}: expected a transient error, got {other:?}"),
    }
    let led_by_3 = TopicPartition::new(TOPIC, 2);
    log.offsets(&led_by_3)
        .await
        .expect("offsets of a partition whose leader is up");
}

/// A topic or a partition the cluster does not have is still a permanent error, named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_of_a_missing_topic_or_partition_are_refused() {
    let cluster = cluster();
    let log = connect(&cluster).await;
    let missing_partition = log.offsets(&TopicPartition::new(TOPIC, 7)).await;
    assert!(
        matches!(
            missing_partition,
            Err(LogError::UnknownPartition { ref topic, partition: 7 }) if topic == TOPIC
        ),
        "{missing_partition:?}"
    );
    let missing_topic = log.offsets(&TopicPartition::new("nope", 0)).await;
    assert!(
        matches!(missing_topic, Err(LogError::UnknownTopic(ref topic)) if topic == "nope"),
        "{missing_topic:?}"
    );
}
