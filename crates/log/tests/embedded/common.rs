//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clickstream_log::{
    EmbeddedLog, EmbeddedLogConfig, EventLog, Header, LogRecord, OutgoingRecord, TopicPartition,
    TopicSpec,
};

/// A default configuration in `dir`.
pub fn config(dir: &Path) -> EmbeddedLogConfig {
    EmbeddedLogConfig::with_dir(dir)
}

/// Opens a log, panicking on error.
pub async fn open(config: EmbeddedLogConfig) -> EmbeddedLog {
    EmbeddedLog::open(config).await.expect("open log")
}

/// Creates a topic.
pub async fn create(log: &dyn EventLog, name: &str, partitions: u32) {
    log.create_topics(&[TopicSpec {
        name: name.into(),
        partitions,
        replication: 1,
    }])
    .await
    .expect("create topic");
}

/// A record for an explicit partition, with a key, a header and a fixed timestamp.
pub fn record(topic: &str, partition: u32, value: &str) -> OutgoingRecord {
    OutgoingRecord {
        topic: topic.to_owned().into(),
        partition: Some(partition),
        key: Some(format!("key-{value}").into()),
        value: value.to_owned().into(),
        headers: vec![Header::new("source", format!("test-{value}"))],
        timestamp_ms: Some(1_700_000_000_000),
    }
}

/// Every record of a partition, from its start to its end offset.
pub async fn read_all(log: &dyn EventLog, tp: &TopicPartition) -> Vec<LogRecord> {
    let offsets = log.offsets(tp).await.expect("offsets");
    let mut out = Vec::new();
    let mut next = offsets.start;
    while next < offsets.end {
        let batch = log
            .read(tp, next, 1000, Duration::ZERO)
            .await
            .expect("read");
        assert!(
            !batch.is_empty(),
            "read at {next} below end {} returned nothing",
            offsets.end
        );
        next = batch.last().map_or(next, |r| r.offset + 1);
        out.extend(batch);
    }
    out
}

/// The values of records, as strings.
pub fn values(records: &[LogRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect()
}

/// Directory of a partition.
pub fn partition_dir(dir: &Path, topic: &str, partition: u32) -> PathBuf {
    dir.join("topics").join(topic).join(partition.to_string())
}

/// Segment files of a partition, sorted.
pub fn segment_files(dir: &Path, topic: &str, partition: u32) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(partition_dir(dir, topic, partition))
        .expect("read partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `condition` holds (polling every millisecond), failing after 10 s with
/// `what`: how a test learns that a reader is parked before it wakes it up.
pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not reached in 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}
