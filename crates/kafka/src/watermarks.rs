//! Watermarks (first and next offset) of a partition, asked of its leader, with
//! librdkafka's "unknown partition" verdict checked against fresh metadata.
//!
//! `rd_kafka_query_watermark_offsets` looks the leader up in the client's metadata cache
//! only. Since librdkafka 2.10 a client forgets the brokers a Metadata reply leaves out
//! (brokers down when it asked), while the cache still names one of them as a partition's
//! leader; once that broker is back, the query keeps failing at once with
//! `_UNKNOWN_PARTITION` for a partition that exists, and nothing refreshes the cache for
//! minutes (`topic.metadata.refresh.interval.ms`). So that verdict is checked: the topic's
//! metadata is fetched again, which also relearns the brokers, and the query is asked
//! once more. The error is permanent only when the fresh metadata lacks the topic or the
//! partition; a partition without a leader the client knows is an outage.

use std::time::Duration;

use clickstream_log::{LogError, PartitionOffsets, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;

use crate::context::StatsContext;
use crate::error::{self, ErrorClass, class_of, log_error_on};

/// The offsets of `tp`. An unknown topic or partition is confirmed with fresh metadata
/// before it is reported; each request gets `timeout`.
pub(crate) fn fetch(
    meta: &BaseConsumer<StatsContext>,
    tp: &TopicPartition,
    timeout: Duration,
) -> Result<PartitionOffsets, LogError> {
    match query(meta, tp, timeout) {
        Err(e) if is_unknown(&e) => {
            tracing::debug!(
                partition = %tp, error = %e,
                "kafka: partition unknown to the client; refreshing its metadata"
            );
        }
        other => return other.map_err(|e| log_error_on(e, &tp.topic)),
    }
    let metadata = meta
        .fetch_metadata(Some(&tp.topic), timeout)
        .map_err(|e| log_error_on(e, &tp.topic))?;
    check_leader(&metadata, tp)?;
    match query(meta, tp, timeout) {
        // The fresh metadata names a live leader, yet the client has not caught up.
        Err(e) if is_unknown(&e) => Err(no_leader(tp)),
        other => other.map_err(|e| log_error_on(e, &tp.topic)),
    }
}

/// One round of `ListOffsets` requests to the partition's leader.
fn query(
    meta: &BaseConsumer<StatsContext>,
    tp: &TopicPartition,
    timeout: Duration,
) -> Result<PartitionOffsets, KafkaError> {
    let (low, high) = meta.fetch_watermarks(&tp.topic, tp.partition as i32, timeout)?;
    Ok(PartitionOffsets {
        start: low.max(0) as u64,
        end: high.max(0) as u64,
    })
}

/// Whether librdkafka called the topic or the partition unknown.
fn is_unknown(error: &KafkaError) -> bool {
    error.rdkafka_error_code().map(class_of) == Some(ErrorClass::UnknownTopic)
}

/// What fresh metadata says of `tp`: Ok when the partition's leader is among the live
/// brokers the reply lists; the topic's or partition's absence is permanent, a missing
/// leader transient.
fn check_leader(metadata: &Metadata, tp: &TopicPartition) -> Result<(), LogError> {
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == tp.topic) else {
        return Err(LogError::UnknownTopic(tp.topic.clone()));
    };
    // A missing topic comes back with an error code, and so does one we may not describe.
    if let Some(code) = topic.error() {
        return Err(error::from_code(code.into(), Some(&tp.topic)));
    }
    let found = topic
        .partitions()
        .iter()
        .find(|p| p.id() == tp.partition as i32);
    let Some(partition) = found else {
        return Err(match topic.partitions() {
            [] => LogError::UnknownTopic(tp.topic.clone()),
            _ => LogError::UnknownPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
            },
        });
    };
    let leader = partition.leader();
    if leader < 0 || !metadata.brokers().iter().any(|b| b.id() == leader) {
        return Err(no_leader(tp));
    }
    Ok(())
}

/// The transient error for a partition that exists but has no leader the client can ask.
fn no_leader(tp: &TopicPartition) -> LogError {
    LogError::Unavailable(format!("kafka: partition {tp} has no known leader yet"))
}
