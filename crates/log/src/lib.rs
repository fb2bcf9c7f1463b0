//! The `EventLog` abstraction and its embedded durable implementation.
//!
//! The model is Kafka's, so that the Kafka backend (rdkafka) implements the same trait:
//! topics split into partitions; keyed records with headers and a timestamp; an append that
//! returns each record's offset only once the record is durable; reads from an offset;
//! consumer groups with committed offsets, end offsets and lag.
//!
//! Callers hold an `Arc<dyn EventLog>` and never know which backend is behind it.

mod error;
mod model;
mod partitioner;

pub mod embedded;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

pub use embedded::{EmbeddedLog, EmbeddedLogConfig, FsyncPolicy};
pub use error::LogError;
pub use model::{
    ConsumerEvent, Header, LogRecord, OutgoingRecord, PartitionInfo, PartitionOffsets,
    RecordPosition, TopicInfo, TopicPartition, TopicSpec,
};
pub use partitioner::partition_for_key;

/// A partitioned, durable, append-only log of records: the backbone between ingest and the
/// processor.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Short name of the backend, for logs and the UI (`"embedded"`, `"kafka"`).
    fn backend(&self) -> &'static str;

    /// Creates the topics that do not exist yet. Existing topics are left as they are
    /// (idempotent), whatever partition count the spec asks for.
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), LogError>;

    /// Whether an append of new events would be accepted now as far as the log itself can
    /// tell (for readiness): the embedded log refuses them while its disk reserve is
    /// reached ([`LogError::DiskFull`]). Says nothing about reaching remote brokers.
    async fn accepts_new_events(&self) -> Result<(), LogError> {
        Ok(())
    }

    /// Every topic with its partitions and their offsets.
    async fn topics(&self) -> Result<Vec<TopicInfo>, LogError>;

    /// Number of partitions of `topic`.
    async fn partition_count(&self, topic: &str) -> Result<u32, LogError>;

    /// Appends records, possibly to several topics, and returns their positions in input
    /// order. Returns only once every record is durable according to the backend's policy;
    /// on error no record of the call may be reported as acknowledged (some may still have
    /// been written: the guarantee before an acknowledgement is at-least-once).
    ///
    /// A record without an explicit partition goes to `partition_for_key(key)`, or round
    /// robin when it has no key.
    async fn append(&self, records: Vec<OutgoingRecord>) -> Result<Vec<RecordPosition>, LogError>;

    /// Reads up to `max_records` records of one partition starting at offset `from`.
    /// Waits up to `max_wait` for the first record when `from` is the end offset. A `from`
    /// below the start offset (retention deleted it) is an `OffsetOutOfRange` error.
    async fn read(
        &self,
        partition: &TopicPartition,
        from: u64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Vec<LogRecord>, LogError>;

    /// Start (oldest retained) and end (next to be written) offsets of a partition.
    async fn offsets(&self, partition: &TopicPartition) -> Result<PartitionOffsets, LogError>;

    /// Stores a consumer group's committed offsets (the next offset to read, as Kafka does).
    async fn commit(&self, group: &str, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError>;

    /// A consumer group's committed offsets for one topic, by partition.
    async fn committed(&self, group: &str, topic: &str) -> Result<BTreeMap<u32, u64>, LogError>;

    /// Names of the consumer groups known to the log.
    async fn groups(&self) -> Result<Vec<String>, LogError>;

    /// Joins consumer group `group` as a new member subscribed to `topics`.
    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn GroupConsumer>, LogError>;
}

/// One member of a consumer group. Partitions are assigned to members by the group; a
/// member learns of changes through [`ConsumerEvent::Assigned`] and
/// [`ConsumerEvent::Revoked`], delivered by `poll` before any record of the new assignment.
#[async_trait]
pub trait GroupConsumer: Send {
    /// The next thing that happened: an assignment change, a batch of records from the
    /// assigned partitions (each partition in offset order), or `Idle` after `timeout`.
    ///
    /// A newly assigned partition starts at the group's committed offset, else at the
    /// partition's start (earliest); `seek` overrides that.
    async fn poll(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<ConsumerEvent, LogError>;

    /// Sets the offset the next `poll` reads an assigned partition from.
    fn seek(&mut self, partition: &TopicPartition, offset: u64) -> Result<(), LogError>;

    /// The partitions currently assigned to this member.
    fn assignment(&self) -> Vec<TopicPartition>;

    /// Commits the group's offsets for these partitions (the next offset to read).
    async fn commit(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError>;
}
