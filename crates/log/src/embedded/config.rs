//! Configuration of the embedded log: where it lives, how hard it syncs, how long it keeps data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::LogError;

/// When the embedded log forces appended records to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Sync (fdatasync) every write group before acknowledging it: an acknowledged record
    /// survives a process crash and a power loss. Concurrent appends share one sync (group
    /// commit), so throughput stays high.
    #[default]
    Always,
    /// Acknowledge once the records are handed to the operating system (they survive a
    /// process crash but not a power loss) and sync every `fsync_interval_ms`.
    Interval,
    /// Never sync explicitly (except when rolling a segment and at shutdown); the operating
    /// system writes pages back when it likes. For tests and throwaway data.
    Never,
}

/// Settings of the embedded durable log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedLogConfig {
    /// Directory holding topics (`topics/<topic>/<partition>/*.log`) and consumer group
    /// offsets (`groups/<group>.json`). Created if missing.
    pub dir: PathBuf,
    /// When appended records are synced to disk: `always` (before acknowledging),
    /// `interval` (every `fsync_interval_ms`; acknowledged records survive a process crash
    /// but not a power loss) or `never`.
    pub fsync: FsyncPolicy,
    /// Period of the background sync under `fsync = "interval"`, in milliseconds.
    pub fsync_interval_ms: u64,
    /// Size at which a partition's active segment file is closed and a new one started, in
    /// bytes. Retention deletes whole segments, so this is also its granularity.
    pub segment_bytes: u64,
    /// Delete a segment once its newest record is older than this many milliseconds
    /// (by record timestamp). `None` keeps data forever (unless `retention_bytes` applies).
    pub retention_ms: Option<u64>,
    /// Delete a partition's oldest segments while the partition is larger than this many
    /// bytes. `None` means no size limit.
    pub retention_bytes: Option<u64>,
    /// How often the retention check runs, in milliseconds.
    pub retention_check_interval_ms: u64,
    /// Largest record accepted by `append`, in bytes, as encoded on disk (key, value,
    /// headers and about 40 bytes of framing).
    pub max_record_bytes: usize,
    /// Upper bound on the bytes one group commit writes before syncing: the writer drains
    /// pending appends until it reaches this size, then syncs them all at once.
    pub max_batch_bytes: usize,
    /// Number of threads that sync the files of one group commit in parallel (sync latency
    /// dominates appends, and one group often touches several partitions).
    pub fsync_threads: usize,
    /// Free space, in bytes, on the log's filesystem below which appends of new events
    /// (every topic but `derived_topics`) are refused with [`LogError::DiskFull`] (ingest
    /// answers 503 with `Retry-After`). What is left is kept for the processor, so that
    /// it can still write its derived topics and, on the same disk, the lake, and catch
    /// up. Appends resume by themselves once space is freed. 0: no reserve.
    pub min_free_bytes: u64,
    /// Topics written from what is already in the log (the processor's latest and unique
    /// users topics): they may use the reserve, down to a quarter of it.
    pub derived_topics: Vec<String>,
}

impl Default for EmbeddedLogConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/log"),
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 1000,
            segment_bytes: 64 * 1024 * 1024,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
            retention_check_interval_ms: 60_000,
            max_record_bytes: 8 * 1024 * 1024,
            max_batch_bytes: 16 * 1024 * 1024,
            fsync_threads: 16,
            min_free_bytes: 512 * 1024 * 1024,
            derived_topics: Vec::new(),
        }
    }
}

impl EmbeddedLogConfig {
    /// A default configuration rooted at `dir`.
    pub fn with_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            ..Self::default()
        }
    }

    /// Rejects settings the log cannot work with, naming the offending field.
    pub fn validate(&self) -> Result<(), LogError> {
        let invalid = |msg: &str| {
            Err(LogError::InvalidRequest(format!(
                "embedded log config: {msg}"
            )))
        };
        if self.dir.as_os_str().is_empty() {
            return invalid("dir must not be empty");
        }
        if self.segment_bytes == 0 {
            return invalid("segment_bytes must be at least 1");
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > u32::MAX as usize / 2 {
            return invalid("max_record_bytes must be between 1 and 2 GiB");
        }
        if self.max_batch_bytes == 0 {
            return invalid("max_batch_bytes must be at least 1");
        }
        if self.fsync == FsyncPolicy::Interval && self.fsync_interval_ms == 0 {
            return invalid("fsync_interval_ms must be at least 1 with fsync = \"interval\"");
        }
        if self.retention_check_interval_ms == 0 {
            return invalid("retention_check_interval_ms must be at least 1");
        }
        if self.fsync_threads == 0 {
            return invalid("fsync_threads must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_reject_unknown_fields() {
        let config = EmbeddedLogConfig::default();
        let json = serde_json::to_string(&config).expect("serialize");
        let back: EmbeddedLogConfig = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, config);
        assert!(serde_json::from_str::<EmbeddedLogConfig>(r#"{"segment_mb": 1}"#).is_err());
    }

    #[test]
    fn partial_config_takes_defaults_and_lowercase_policy() {
        let config: EmbeddedLogConfig =
            serde_json::from_str(r#"{"dir": "/x", "fsync": "interval"}"#).expect("deserialize");
        assert_eq!(config.fsync, FsyncPolicy::Interval);
        assert_eq!(config.segment_bytes, 64 * 1024 * 1024);
        assert_eq!(config.dir, PathBuf::from("/x"));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn validate_rejects_zero_segment_bytes() {
        let config = EmbeddedLogConfig {
            segment_bytes: 0,
            ..EmbeddedLogConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(LogError::InvalidRequest(_))
        ));
    }
}
