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

/// What a record takes on disk, about: its key, value and headers plus the framing.
fn approximate_size(record: &OutgoingRecord) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.len() + 8)
        .sum();
    record.key.as_ref().map_or(0, |k| k.len()) + record.value.len() + headers + 40
}

/// How long a free-space reading is trusted.
const RECHECK_EVERY: Duration = Duration::from_millis(50);

/// The reserve of one log directory.
pub(crate) struct DiskReserve {
    dir: PathBuf,
    min_free_bytes: u64,
    derived_topics: HashSet<String>,
    /// The last reading: when, the bytes available then, and the bytes of the appends let
    /// through since (not yet visible in a reading: they are on their way to the disk), so
    /// that appends checked at once cannot all take the same space.
    last: Mutex<Option<Reading>>,
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    free: u64,
    granted: u64,
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

    /// Refuses an append of `records` when it would leave less free space than their
    /// topics may use: the whole reserve for new events, a quarter of it for derived
    /// topics.
    pub(crate) fn check(&self, records: &[OutgoingRecord]) -> Result<(), LogError> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        let derived = records
            .iter()
            .all(|r| self.derived_topics.contains(r.topic.as_ref()));
        let floor = if derived {
            self.min_free_bytes / 4
        } else {
            self.min_free_bytes
        };
        let bytes: u64 = records.iter().map(|r| approximate_size(r) as u64).sum();
        self.check_floor(floor, bytes)
    }

    /// Whether appends of new events are accepted now.
    pub(crate) fn check_intake(&self) -> Result<(), LogError> {
        self.check_floor(self.min_free_bytes, 0)
    }

    /// Lets `bytes` through if that leaves at least `floor` free, and counts them against
    /// the free space until the next reading.
    fn check_floor(&self, floor: u64, bytes: u64) -> Result<(), LogError> {
        if floor == 0 {
            return Ok(());
        }
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let reading = match *last {
            Some(reading) if reading.at.elapsed() < RECHECK_EVERY => reading,
            _ => Reading {
                at: Instant::now(),
                free: self.statvfs()?,
                granted: 0,
            },
        };
        let free = reading.free.saturating_sub(reading.granted);
        if free < floor.saturating_add(bytes) {
            *last = Some(reading);
            return Err(LogError::DiskFull {
                path: self.dir.clone(),
                free_bytes: free,
                reserve_bytes: floor,
            });
        }
        *last = Some(Reading {
            granted: reading.granted + bytes,
            ..reading
        });
        Ok(())
    }

    /// Bytes available to unprivileged writers on the log's filesystem now.
    fn statvfs(&self) -> Result<u64, LogError> {
        let stats = rustix::fs::statvfs(&self.dir).map_err(|e| LogError::Io {
            path: self.dir.clone(),
            source: e.into(),
        })?;
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str) -> OutgoingRecord {
        OutgoingRecord {
            topic: topic.to_owned().into(),
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
    fn a_reserve_beyond_the_disk_refuses_new_events_but_not_small_derived_ones() {
        const MIB: u64 = 1024 * 1024;
        let dir = tempfile::tempdir().expect("dir");
        let free = DiskReserve::new(dir.path().into(), 1, &[])
            .statvfs()
            .expect("statvfs");
        // Derived topics may go down to a quarter of the reserve: 8 MiB below what is free.
        let reserve = DiskReserve::new(dir.path().into(), (free - 8 * MIB) * 4, &["latest".into()]);
        let refused = reserve.check(&[record("raw")]).expect_err("refused");
        assert!(matches!(refused, LogError::DiskFull { .. }), "{refused}");
        assert!(refused.is_transient());
        assert!(reserve.check_intake().is_err());
        assert!(reserve.check(&[record("latest")]).is_ok());
        assert!(reserve.check(&[record("latest"), record("raw")]).is_err());
        // An append bigger than what is left above the floor is refused too.
        let big = OutgoingRecord {
            value: bytes::Bytes::from(vec![0u8; (16 * MIB) as usize]),
            ..record("latest")
        };
        assert!(reserve.check(&[big]).is_err());
    }

    #[test]
    fn appends_let_through_count_against_the_space_until_the_next_reading() {
        const MIB: u64 = 1024 * 1024;
        let dir = tempfile::tempdir().expect("dir");
        let free = DiskReserve::new(dir.path().into(), 1, &[])
            .statvfs()
            .expect("statvfs");
        // 6 MiB above the floor: two appends of 4 MiB checked at once cannot both pass.
        let reserve = DiskReserve::new(dir.path().into(), free - 6 * MIB, &[]);
        let four = || OutgoingRecord {
            value: bytes::Bytes::from(vec![0u8; (4 * MIB) as usize]),
            ..record("raw")
        };
        assert!(reserve.check(&[four()]).is_ok());
        assert!(reserve.check(&[four()]).is_err());
    }
}
