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

    /// The log refused records as too large although they passed the local size check
    /// (Kafka's MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE: the brokers' or the topic's limit
    /// is below ours). The request's fault as sent: fewer or smaller records may pass.
    #[error("records refused as too large: {0}")]
    RecordsTooLarge(String),

    /// The request itself is wrong (bad topic name, zero partitions, seek on an unassigned
    /// partition, a record timestamp outside the topic's window, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// Authentication or authorization was refused (SASL, TLS, ACLs on a topic, group or
    /// the cluster). A deployment fault: retrying fails the same way until credentials or
    /// ACLs change.
    #[error("not authorized: {0}")]
    Unauthorized(String),

    /// The log lacks a feature or protocol version the client needs (API version,
    /// compression type, idempotent producer). A deployment fault.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// The log's or the client's configuration cannot serve the request (invalid topic
    /// name, topic policy, group settings, a client setting). A deployment fault.
    #[error("misconfigured: {0}")]
    Misconfigured(String),

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

    /// The log's disk has less free space than the reserve kept for the processor: new
    /// events are refused until space is freed (retention, an operator), then accepted
    /// again without a restart.
    #[error(
        "disk almost full under {path}: {free_bytes} bytes free, {reserve_bytes} kept in \
         reserve so the lake can catch up"
    )]
    DiskFull {
        /// The log's directory.
        path: PathBuf,
        /// Bytes free on its filesystem.
        free_bytes: u64,
        /// The reserve the append needed.
        reserve_bytes: u64,
    },

    /// The log was shut down.
    #[error("log is closed")]
    Closed,

    /// An error of the Kafka client that fits none of the classes above: a client bug or a
    /// code this version does not know. Not retried: an unknown error surfaces rather than
    /// looping.
    #[error("kafka: {0}")]
    Kafka(String),
}

impl LogError {
    /// Whether retrying the same operation later may succeed; ingest answers these with
    /// 503 and `Retry-After`, the processor waits and retries. Every variant is listed, so
    /// a new one needs a decision.
    pub fn is_transient(&self) -> bool {
        match self {
            LogError::Unavailable(_)
            | LogError::Io { .. }
            | LogError::DiskFull { .. }
            | LogError::Closed => true,
            LogError::UnknownTopic(_)
            | LogError::UnknownPartition { .. }
            | LogError::OffsetOutOfRange { .. }
            | LogError::RecordTooLarge { .. }
            | LogError::RecordsTooLarge(_)
            | LogError::InvalidRequest(_)
            | LogError::Unauthorized(_)
            | LogError::Unsupported(_)
            | LogError::Misconfigured(_)
            | LogError::Corrupt { .. }
            | LogError::Kafka(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_outages_are_transient() {
        let transient = [
            LogError::Unavailable("broker down".into()),
            LogError::Closed,
            LogError::Io {
                path: PathBuf::from("segment"),
                source: std::io::Error::other("disk"),
            },
        ];
        for error in transient {
            assert!(error.is_transient(), "{error}");
        }
        let permanent = [
            LogError::RecordsTooLarge("message size too large".into()),
            LogError::Unauthorized("topic authorization failed".into()),
            LogError::Unsupported("unsupported version".into()),
            LogError::Misconfigured("invalid topic".into()),
            LogError::UnknownTopic("t".into()),
            LogError::Kafka("unclassified".into()),
        ];
        for error in permanent {
            assert!(!error.is_transient(), "{error}");
        }
    }
}
