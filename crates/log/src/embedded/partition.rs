//! One partition: its segments, recovery, reads, and retention.
//!
//! Two views of a partition coexist. Readers see [`PartitionState`]: the segments with only
//! their *published* bytes, so under `fsync = always` they never see a record that is not
//! yet durable. The writer thread alone uses [`WriteState`]: the active segment's write
//! handle and the next offset, which run ahead of the published view during a group commit.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::fsutil::{self, io_err, lock};
use super::segment::{self, Collector, Segment, SegmentSlice};
use crate::{LogError, LogRecord, PartitionOffsets, TopicPartition};

/// Upper bound on the bytes one read returns (at least one record is always returned).
const MAX_READ_BYTES: usize = 4 * 1024 * 1024;

/// What readers see of a partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// Segments by base offset; never empty, the last one is (or precedes) the active one.
    pub segments: Vec<Segment>,
}

/// The writer's position in a partition.
#[derive(Debug, Clone)]
pub(crate) struct WriteState {
    /// Base offset of the active segment.
    pub base: u64,
    /// Active segment file.
    pub path: PathBuf,
    /// Write handle of the active segment (positional writes, no shared cursor).
    pub file: Arc<File>,
    /// Bytes written to the active segment.
    pub len: u64,
    /// Offset the next record gets.
    pub next_offset: u64,
    /// Record bytes since the last sparse index entry.
    pub since_index: u64,
}

/// A partition of a topic.
#[derive(Debug)]
pub(crate) struct Partition {
    /// Topic and partition number.
    pub tp: TopicPartition,
    /// Directory holding the segments.
    pub dir: PathBuf,
    /// Readers' view.
    pub state: Mutex<PartitionState>,
    /// Writer's view.
    pub write: Mutex<WriteState>,
    /// Published end offset; readers waiting at the end subscribe to it.
    pub end: watch::Sender<u64>,
    /// Set when a failed write could not be undone: appends are refused until restart,
    /// which re-validates the files.
    pub failed: AtomicBool,
    /// Reads waiting at the end for a record right now.
    pub parked: AtomicUsize,
}

/// Counts one waiter for as long as it lives.
pub(crate) struct Parked<'a>(&'a AtomicUsize);

impl<'a> Parked<'a> {
    pub(crate) fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Parked(count)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Partition {
    /// Makes sure the partition directory exists with at least one segment (used when a
    /// topic is created, and idempotent if that creation was interrupted).
    pub(crate) fn create_dir(dir: &Path) -> Result<(), LogError> {
        fsutil::create_dir_durable(dir)?;
        if list_segments(dir)?.is_empty() {
            let path = dir.join(segment::file_name(0));
            File::create(&path).map_err(io_err(&path))?;
            fsutil::sync_dir(dir).map_err(io_err(dir))?;
        }
        Ok(())
    }

    /// Opens a partition from its directory, validating every segment.
    ///
    /// The recovery rule: records are valid up to the first frame that is incomplete, fails
    /// its checksum, or breaks the offset sequence. If every segment after that point is
    /// empty, what follows is a torn tail (a write interrupted by a crash, never
    /// acknowledged because acknowledgement follows the sync): it is logged, cut off and
    /// the empty segments after it removed. Otherwise the damage is in data that was synced
    /// before a later segment was created (the writer syncs a segment before rolling), so
    /// it is media corruption of possibly acknowledged records: opening fails with
    /// `Corrupt` instead of silently dropping them, and an operator decides.
    pub(crate) fn open(tp: TopicPartition, dir: PathBuf) -> Result<Self, LogError> {
        let mut bases = list_segments(&dir)?;
        if bases.is_empty() {
            Self::create_dir(&dir)?;
            bases = vec![0];
        }
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            let path = dir.join(segment::file_name(base));
            if let Some(prev) = segments.last()
                && prev.end != base
            {
                return Err(LogError::Corrupt {
                    path,
                    position: 0,
                    reason: format!(
                        "segment starts at {base} but the previous one ends at {}",
                        prev.end
                    ),
                });
            }
            let scan = segment::scan(&path, base).map_err(io_err(&path))?;
            let torn = scan.bad.clone();
            let file = Arc::new(File::open(&path).map_err(io_err(&path))?);
            segments.push(Segment {
                base,
                path: path.clone(),
                file,
                len: scan.valid_len,
                end: scan.end,
                max_timestamp_ms: scan.max_timestamp_ms,
                index: scan.index,
            });
            let Some(reason) = torn else { continue };
            let later = &bases[i + 1..];
            let later_empty = later.iter().all(|&b| {
                fs::metadata(dir.join(segment::file_name(b))).is_ok_and(|m| m.len() == 0)
            });
            if !later_empty {
                return Err(LogError::Corrupt {
                    path,
                    position: scan.valid_len,
                    reason,
                });
            }
            tracing::warn!(
                path = %path.display(),
                position = scan.valid_len,
                discarded_bytes = scan.file_len - scan.valid_len,
                reason = %reason,
                "discarding torn tail of segment"
            );
            truncate_durably(&path, scan.valid_len)?;
            for &b in later {
                let later_path = dir.join(segment::file_name(b));
                fs::remove_file(&later_path).map_err(io_err(&later_path))?;
            }
            if !later.is_empty() {
                fsutil::sync_dir(&dir).map_err(io_err(&dir))?;
            }
            break;
        }
        let active = segments.last().ok_or_else(|| LogError::Corrupt {
            path: dir.clone(),
            position: 0,
            reason: "partition has no segment".into(),
        })?;
        let write_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&active.path)
            .map_err(io_err(&active.path))?;
        let write = WriteState {
            base: active.base,
            path: active.path.clone(),
            file: Arc::new(write_file),
            len: active.len,
            next_offset: active.end,
            // Start a fresh index entry at the first record written after recovery.
            since_index: segment::INDEX_INTERVAL_BYTES,
        };
        let (end, _) = watch::channel(active.end);
        Ok(Self {
            tp,
            dir,
            state: Mutex::new(PartitionState { segments }),
            write: Mutex::new(write),
            end,
            failed: AtomicBool::new(false),
            parked: AtomicUsize::new(0),
        })
    }

    /// Start and end offsets of the published records.
    pub(crate) fn offsets(&self) -> PartitionOffsets {
        let state = lock(&self.state);
        offsets_of(&state)
    }

    /// Published bytes on disk.
    pub(crate) fn size_bytes(&self) -> u64 {
        lock(&self.state).segments.iter().map(|s| s.len).sum()
    }

    /// Reads up to `max_records` records from `from`, waiting up to `max_wait` for the first
    /// one when `from` is the end offset.
    pub(crate) async fn read(
        self: &Arc<Self>,
        from: u64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Vec<LogRecord>, LogError> {
        // Subscribe before looking at the end offset, so a publish in between still wakes us.
        let mut end_rx = self.end.subscribe();
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let slices = self.slices_from(from, max_records)?;
            if let Some(slices) = slices {
                if max_records == 0 {
                    return Ok(Vec::new());
                }
                return self.read_slices(slices, from, max_records).await;
            }
            // `from` is the end offset: wait for a publish or the deadline.
            let _parked = Parked::new(&self.parked);
            match tokio::time::timeout_at(deadline, end_rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return Ok(Vec::new()),
            }
        }
    }

    /// The segment slices holding `from` and what follows, or `None` when `from` is the end
    /// offset. Out-of-range offsets are an error.
    fn slices_from(
        &self,
        from: u64,
        max_records: usize,
    ) -> Result<Option<Vec<SegmentSlice>>, LogError> {
        let state = lock(&self.state);
        let offsets = offsets_of(&state);
        if from < offsets.start || from > offsets.end {
            return Err(LogError::OffsetOutOfRange {
                topic: self.tp.topic.clone(),
                partition: self.tp.partition,
                offset: from,
                start: offsets.start,
                end: offsets.end,
            });
        }
        if from == offsets.end {
            return Ok(None);
        }
        let first = state
            .segments
            .partition_point(|s| s.base <= from)
            .saturating_sub(1);
        // Enough segments to cover the read's limits, known from their offsets and sizes.
        let mut slices = Vec::new();
        let (mut records, mut bytes) = (0u64, 0u64);
        for s in &state.segments[first..] {
            if records >= max_records as u64 || bytes >= MAX_READ_BYTES as u64 {
                break;
            }
            let position = if slices.is_empty() {
                s.position_for(from)
            } else {
                0
            };
            records += s.end.saturating_sub(from.max(s.base));
            bytes += s.len - position;
            slices.push(SegmentSlice {
                path: s.path.clone(),
                file: s.file.clone(),
                position,
                len: s.len,
            });
        }
        Ok(Some(slices))
    }

    async fn read_slices(
        &self,
        slices: Vec<SegmentSlice>,
        from: u64,
        max_records: usize,
    ) -> Result<Vec<LogRecord>, LogError> {
        let topic = self.tp.topic.clone();
        let partition = self.tp.partition;
        let read = tokio::task::spawn_blocking(move || {
            let mut out = Collector::new(max_records, MAX_READ_BYTES);
            for slice in &slices {
                segment::read_slice(slice, from, &topic, partition, &mut out)?;
                if out.is_full() {
                    break;
                }
            }
            Ok(out.records)
        });
        read.await
            .map_err(|e| LogError::Unavailable(format!("read task failed: {e}")))?
    }

    /// Removes the oldest non-active segments that retention no longer keeps from the
    /// readers' view and returns them; the caller deletes the files.
    pub(crate) fn expire_segments(
        &self,
        now_ms: i64,
        retention_ms: Option<u64>,
        retention_bytes: Option<u64>,
    ) -> Vec<Segment> {
        let mut state = lock(&self.state);
        let mut total: u64 = state.segments.iter().map(|s| s.len).sum();
        let mut expired = 0;
        // The last segment is never deleted: it is the active one, or the one the writer is
        // about to publish a roll after.
        while expired + 1 < state.segments.len() {
            let oldest = &state.segments[expired];
            let too_big = retention_bytes.is_some_and(|max| total > max);
            let too_old = retention_ms.is_some_and(|ms| {
                oldest.max_timestamp_ms
                    < now_ms.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX))
            });
            if !too_big && !too_old {
                break;
            }
            total -= oldest.len;
            expired += 1;
        }
        state.segments.drain(..expired).collect()
    }
}

/// Offsets of a readers' view.
fn offsets_of(state: &PartitionState) -> PartitionOffsets {
    PartitionOffsets {
        start: state.segments.first().map_or(0, |s| s.base),
        end: state.segments.last().map_or(0, |s| s.end),
    }
}

/// Base offsets of the segment files in `dir`, sorted.
fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        match name.to_str().and_then(segment::parse_file_name) {
            Some(base) => bases.push(base),
            None => {
                tracing::warn!(path = %entry.path().display(), "ignoring unexpected file in partition directory")
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Truncates a file and syncs the new length.
pub(crate) fn truncate_durably(path: &Path, len: u64) -> Result<(), LogError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    file.set_len(len).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}
