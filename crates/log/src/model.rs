//! Records, topics and positions: the vocabulary shared by every `EventLog` backend.

use std::borrow::Cow;
use std::fmt;
use std::sync::{PoisonError, RwLock};

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

    /// A header read from a log. Its name is kept once for the process (a deployment
    /// writes a handful of names), so reading a record allocates no name; past 32
    /// distinct names, or for a name over 128 bytes, the name is allocated as usual.
    pub fn read(name: &str, value: Bytes) -> Self {
        Self {
            key: read_name(name),
            value,
        }
    }
}

/// Distinct header names kept for the process (see [`read_name`]).
const MAX_HEADER_NAMES: usize = 32;

/// A header name read from the log, kept once for the process: a deployment writes a
/// handful of names (ours: the correlation id, the source, the error message), so each
/// record read borrows them instead of allocating a string per header. Past
/// [`MAX_HEADER_NAMES`] distinct names, or for a name over 128 bytes, the name is
/// allocated per record as before: what is kept stays under 4 KiB.
fn read_name(name: &str) -> Cow<'static, str> {
    static NAMES: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());
    let known = |names: &[&'static str]| names.iter().copied().find(|known| *known == name);
    if let Some(known) = known(&NAMES.read().unwrap_or_else(PoisonError::into_inner)) {
        return Cow::Borrowed(known);
    }
    let mut names = NAMES.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = known(&names) {
        return Cow::Borrowed(known);
    }
    if names.len() >= MAX_HEADER_NAMES || name.len() > 128 {
        return Cow::Owned(name.to_owned());
    }
    let kept: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(kept);
    Cow::Borrowed(kept)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_kept_once_and_a_bounded_number_of_them() {
        let first = read_name("X-Kept-Once");
        let again = read_name("X-Kept-Once");
        assert!(
            matches!((&first, &again), (Cow::Borrowed(a), Cow::Borrowed(b)) if std::ptr::eq(*a, *b))
        );
        let long = "x".repeat(129);
        assert!(matches!(read_name(&long), Cow::Owned(name) if name == long));
        // Past the bound, names are still read right, allocated per record.
        let many: Vec<_> = (0..2 * MAX_HEADER_NAMES)
            .map(|i| read_name(&format!("X-Name-{i}")))
            .collect();
        for (i, name) in many.iter().enumerate() {
            assert_eq!(name, &format!("X-Name-{i}"));
        }
        assert!(many.iter().any(|name| matches!(name, Cow::Owned(_))));
    }
}
