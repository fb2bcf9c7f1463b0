//! Errors of the log, classified so that callers decide retries by type.

use std::path::PathBuf;

/// What can go wrong when appending to, reading from or managing the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The topic does not exist.
    #[error("unknown topic {0}")]
    UnknownTopic(String),

    /// The topic exists but has no such partition.
    #[error("unknown partition {topic}/{partition}")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Requested partition.
        partition: u32,
    },

    /// The offset is outside the partition's retained range.
    #[error("offset {offset} out of range for {topic}/{partition} (start {start}, end {end})")]
    OffsetOutOfRange {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: u32,
        /// Requested offset.
        offset: u64,
        /// Oldest retained offset.
        start: u64,
        /// Next offset to be written.
        end: u64,
    },

    /// A record is larger than the log accepts.
    #[error("record of {size} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Encoded size of the record.
        size: usize,
        /// Configured maximum.
        max: usize,
    },

    /// The request itself is wrong (bad topic name, zero partitions, seek on an unassigned
    /// partition, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The log cannot take writes or reads right now (I/O failure being recovered, broker
    /// down, queue full); retrying later may succeed.
    #[error("log unavailable: {0}")]
    Unavailable(String),

    /// An I/O error on a file of the embedded log.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Data on disk failed its checksum or could not be parsed, outside the torn tail that
    /// recovery discards.
    #[error("corrupt log data in {path} at byte {position}: {reason}")]
    Corrupt {
        /// Segment file.
        path: PathBuf,
        /// Byte position of the bad record.
        position: u64,
        /// What was wrong.
        reason: String,
    },

    /// The log was shut down.
    #[error("log is closed")]
    Closed,

    /// An error reported by the Kafka client.
    #[error("kafka: {0}")]
    Kafka(String),
}

impl LogError {
    /// Whether retrying the same operation later may succeed; ingest answers these with
    /// 503 and `Retry-After`.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LogError::Unavailable(_) | LogError::Io { .. } | LogError::Closed | LogError::Kafka(_)
        )
    }
}
