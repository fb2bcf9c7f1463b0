//! The disk reserve: appends of new events stop while the log's filesystem has less free
//! space than `min_free_bytes`, so that the processor, which writes derived topics and
//! (when the lake is on the same disk) Parquet files, can still catch up instead of
//! finding every byte taken by ingest. Derived topics may use the reserve down to a
//! quarter of it. The free space is read with `statvfs` at most every
//! [`RECHECK_EVERY`], so appends resume by themselves shortly after space is freed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{LogError, OutgoingRecord};

/// How long a free-space reading is trusted.
const RECHECK_EVERY: Duration = Duration::from_millis(50);

/// The reserve of one log directory.
pub(crate) struct DiskReserve {
    dir: PathBuf,
    min_free_bytes: u64,
    derived_topics: HashSet<String>,
    /// The last reading: when, and the bytes available to us.
    last: Mutex<Option<(Instant, u64)>>,
}

impl DiskReserve {
    pub(crate) fn new(dir: PathBuf, min_free_bytes: u64, derived_topics: &[String]) -> Self {
        DiskReserve {
            dir,
            min_free_bytes,
            derived_topics: derived_topics.iter().cloned().collect(),
            last: Mutex::new(None),
        }
    }

    /// Refuses an append of `records` when the free space is below what their topics may
    /// use: the whole reserve for new events, a quarter of it for derived topics.
    pub(crate) fn check(&self, records: &[OutgoingRecord]) -> Result<(), LogError> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        let derived = records
            .iter()
            .all(|r| self.derived_topics.contains(&r.topic));
        let floor = if derived {
            self.min_free_bytes / 4
        } else {
            self.min_free_bytes
        };
        self.check_floor(floor)
    }

    /// Whether appends of new events are accepted now.
    pub(crate) fn check_intake(&self) -> Result<(), LogError> {
        self.check_floor(self.min_free_bytes)
    }

    fn check_floor(&self, floor: u64) -> Result<(), LogError> {
        if floor == 0 {
            return Ok(());
        }
        let free = self.free_bytes()?;
        if free < floor {
            return Err(LogError::DiskFull {
                path: self.dir.clone(),
                free_bytes: free,
                reserve_bytes: floor,
            });
        }
        Ok(())
    }

    /// Bytes available to unprivileged writers on the log's filesystem.
    fn free_bytes(&self) -> Result<u64, LogError> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, free)) = *last
            && at.elapsed() < RECHECK_EVERY
        {
            return Ok(free);
        }
        let stats = rustix::fs::statvfs(&self.dir).map_err(|e| LogError::Io {
            path: self.dir.clone(),
            source: e.into(),
        })?;
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        *last = Some((Instant::now(), free));
        Ok(free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str) -> OutgoingRecord {
        OutgoingRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: bytes::Bytes::from_static(b"x"),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    #[test]
    fn no_reserve_accepts_everything() {
        let dir = tempfile::tempdir().expect("dir");
        let reserve = DiskReserve::new(dir.path().into(), 0, &[]);
        assert!(reserve.check(&[record("raw")]).is_ok());
    }

    #[test]
    fn a_reserve_beyond_the_disk_refuses_new_events_but_not_derived_ones_below_it() {
        let dir = tempfile::tempdir().expect("dir");
        let free = DiskReserve::new(dir.path().into(), 1, &[])
            .free_bytes()
            .expect("statvfs");
        // New events need all of it; derived topics a quarter.
        let reserve = DiskReserve::new(dir.path().into(), free * 2, &["latest".into()]);
        let refused = reserve.check(&[record("raw")]).expect_err("refused");
        assert!(matches!(refused, LogError::DiskFull { .. }), "{refused}");
        assert!(refused.is_transient());
        assert!(reserve.check(&[record("latest")]).is_ok());
        assert!(reserve.check(&[record("latest"), record("raw")]).is_err());
        assert!(reserve.check_intake().is_err());
    }
}
