//! Records, topics and positions: the vocabulary shared by every `EventLog` backend.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A topic to create: its name, partition count and (for Kafka) replication factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Replication factor; the embedded log keeps one copy and ignores it.
    pub replication: u16,
}

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number, from 0.
    pub partition: u32,
}

impl TopicPartition {
    /// A partition of a topic.
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// A record header: a name and opaque bytes, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name, e.g. `X-Correlation-ID` (borrowed when it is one of ours).
    pub key: Cow<'static, str>,
    /// Header value.
    pub value: Bytes,
}

impl Header {
    /// A header from a name and a value.
    pub fn new(key: impl Into<Cow<'static, str>>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// Destination topic: usually one of the pipeline's fixed names, borrowed rather than
    /// allocated per record.
    pub topic: Cow<'static, str>,
    /// Explicit partition; `None` lets the partitioner choose from the key.
    pub partition: Option<u32>,
    /// Record key, which decides the partition when `partition` is `None`.
    pub key: Option<Bytes>,
    /// Record value.
    pub value: Bytes,
    /// Record headers, in order.
    pub headers: Vec<Header>,
    /// Creation time in milliseconds since the Unix epoch; `None` means "now, at append".
    pub timestamp_ms: Option<i64>,
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPosition {
    /// Partition the record went to.
    pub partition: u32,
    /// Its offset within that partition.
    pub offset: u64,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Topic the record belongs to.
    pub topic: String,
    /// Partition the record belongs to.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: u64,
    /// Record timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Record key.
    pub key: Option<Bytes>,
    /// Record value.
    pub value: Bytes,
    /// Record headers, in the order they were written.
    pub headers: Vec<Header>,
}

impl LogRecord {
    /// The value of the first header called `key`, if any.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .map(|h| h.value.as_ref())
    }

    /// The partition this record belongs to.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

/// Offsets bounding a partition's retained records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffsets {
    /// Oldest retained offset.
    pub start: u64,
    /// Offset the next appended record will get (Kafka's high watermark).
    pub end: u64,
}

/// A partition's offsets and size, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// Partition number.
    pub partition: u32,
    /// Start and end offsets.
    pub offsets: PartitionOffsets,
    /// Bytes on disk (0 when the backend cannot tell).
    pub size_bytes: u64,
}

/// A topic with its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Partitions, by number.
    pub partitions: Vec<PartitionInfo>,
}

/// What a [`crate::GroupConsumer::poll`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// These partitions were added to this member's assignment.
    Assigned(Vec<TopicPartition>),
    /// These partitions were taken away; the member must stop working on them.
    Revoked(Vec<TopicPartition>),
    /// Records from assigned partitions, each partition's records in offset order.
    Records(Vec<LogRecord>),
    /// Nothing arrived within the timeout.
    Idle,
}
