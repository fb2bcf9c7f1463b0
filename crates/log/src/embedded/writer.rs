//! The writer thread and its group commit.
//!
//! Every append goes through one thread. It takes a request, drains whatever else is
//! pending (up to `max_batch_bytes`), and commits them as one group:
//!
//! 1. **stage**: assign offsets per partition in arrival order and encode the records into
//!    one buffer per partition (rolling to a new segment when the active one is full);
//! 2. **write**: one positional write per buffer, and one per `SPILL_BYTES` of it as it
//!    is encoded, so a large group (a processor's batch of latest-topic records) is never
//!    held in memory whole: bytes past the segment's published length are invisible to
//!    readers until step 4, and a rollback truncates them like the rest;
//! 3. **sync**: under `fsync = always`, fdatasync every touched file, in parallel;
//! 4. **publish**: extend the readers' view and wake waiting readers, then answer every
//!    request of the group.
//!
//! Concurrent appenders thus share one sync, which is what makes `always` affordable.
//! If any write or sync fails, every touched segment is truncated back to its length
//! before the group (segments created by the group are deleted) and every request of the
//! group gets a transient error: a failed group leaves no trace, later groups go on.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::config::{EmbeddedLogConfig, FsyncPolicy};
use super::fsutil::{self, lock};
use super::partition::{Partition, WriteState};
use super::record;
use super::segment::{self, INDEX_INTERVAL_BYTES, IndexEntry, Segment};
use super::sync_pool::{SyncFailure, SyncPool};
use crate::{LogError, OutgoingRecord, RecordPosition};

/// Records of one append call bound for one partition.
pub(crate) struct PartitionBatch {
    /// Destination partition.
    pub partition: Arc<Partition>,
    /// Each record with its index in the call's input; timestamps are already resolved.
    pub records: Vec<(usize, OutgoingRecord)>,
}

/// One append call, validated and split by partition.
pub(crate) struct AppendRequest {
    /// Records by partition.
    pub batches: Vec<PartitionBatch>,
    /// Number of records in the call.
    pub record_count: usize,
    /// Encoded size of the call's records.
    pub bytes: usize,
}

type Reply = oneshot::Sender<Result<Vec<RecordPosition>, LogError>>;

enum Msg {
    Append(AppendRequest, Reply),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to the writer thread. Dropping it lets the thread finish the queued appends and
/// exit on its own (nothing waits for it).
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl Writer {
    /// Starts the writer thread. `published` is bumped after every group commit, so that
    /// group consumers wake up.
    pub(crate) fn start(
        config: &EmbeddedLogConfig,
        published: Arc<watch::Sender<u64>>,
    ) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = WriterThread {
            rx,
            policy: config.fsync,
            interval: Duration::from_millis(config.fsync_interval_ms),
            max_batch_bytes: config.max_batch_bytes,
            segment_bytes: config.segment_bytes,
            pool: SyncPool::new(config.fsync_threads)?,
            published,
            dirty: HashMap::new(),
            next_sync: Instant::now(),
        };
        thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || thread.run())?;
        Ok(Self { tx })
    }

    /// Queues an append and waits for its group to commit.
    pub(crate) async fn append(
        &self,
        request: AppendRequest,
    ) -> Result<Vec<RecordPosition>, LogError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Append(request, reply))
            .map_err(|_| LogError::Closed)?;
        // A dropped reply means the writer stopped before committing the request.
        answer.await.map_err(|_| LogError::Closed)?
    }

    /// Lets the writer commit what is queued, sync everything and stop.
    pub(crate) async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(done)).is_ok() {
            let _ = finished.await;
        }
    }
}

struct WriterThread {
    rx: mpsc::Receiver<Msg>,
    policy: FsyncPolicy,
    interval: Duration,
    max_batch_bytes: usize,
    segment_bytes: u64,
    pool: SyncPool,
    published: Arc<watch::Sender<u64>>,
    /// Files written but not synced yet (`interval` and `never`).
    dirty: HashMap<PathBuf, Arc<File>>,
    next_sync: Instant,
}

impl WriterThread {
    fn run(mut self) {
        loop {
            let first = if self.policy == FsyncPolicy::Interval && !self.dirty.is_empty() {
                let wait = self.next_sync.saturating_duration_since(Instant::now());
                match self.rx.recv_timeout(wait) {
                    Ok(msg) => msg,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.sync_dirty();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match self.rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                }
            };
            let mut group = Vec::new();
            let mut bytes = 0usize;
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append(request, reply) => {
                        bytes += request.bytes;
                        group.push((request, reply));
                    }
                    Msg::Shutdown(done) => shutdown = Some(done),
                }
                if shutdown.is_none() && bytes < self.max_batch_bytes {
                    next = self.rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit_group(group);
            }
            if self.policy == FsyncPolicy::Interval && Instant::now() >= self.next_sync {
                self.sync_dirty();
            }
            if let Some(done) = shutdown {
                self.sync_dirty();
                let _ = done.send(());
                return;
            }
        }
        self.sync_dirty();
    }

    /// Syncs the files written since the last sync (`interval` and `never` policies).
    fn sync_dirty(&mut self) {
        self.next_sync = Instant::now() + self.interval;
        if self.dirty.is_empty() {
            return;
        }
        let files = self.dirty.drain().collect();
        if let Err(failure) = self.pool.sync_all(files) {
            // Already acknowledged under this policy: all we can do is say so loudly.
            tracing::error!(path = %failure.path.display(), error = %failure.source, "background sync of the log failed");
        }
    }

    fn commit_group(&mut self, group: Vec<(AppendRequest, Reply)>) {
        let mut requests = Vec::with_capacity(group.len());
        for (request, reply) in group {
            match request
                .batches
                .iter()
                .find(|b| b.partition.failed.load(Ordering::Acquire))
            {
                Some(batch) => {
                    let _ = reply.send(Err(failed_partition(&batch.partition)));
                }
                None => requests.push((request, reply)),
            }
        }
        let mut positions: Vec<Vec<RecordPosition>> = requests
            .iter()
            .map(|(r, _)| {
                vec![
                    RecordPosition {
                        partition: 0,
                        offset: 0
                    };
                    r.record_count
                ]
            })
            .collect();
        let mut staged: Vec<Staged> = Vec::new();
        let mut by_partition: HashMap<*const Partition, usize> = HashMap::new();
        for (ri, (request, _)) in requests.iter().enumerate() {
            for (bi, batch) in request.batches.iter().enumerate() {
                let si = *by_partition
                    .entry(Arc::as_ptr(&batch.partition))
                    .or_insert_with(|| {
                        staged.push(Staged::new(batch.partition.clone()));
                        staged.len() - 1
                    });
                staged[si].work.push((ri, bi));
            }
        }

        let result = self.write_and_sync(&mut staged, &requests, &mut positions);
        match result {
            Ok(()) => {
                for s in &mut staged {
                    s.publish();
                }
                self.published
                    .send_modify(|generation| *generation = generation.wrapping_add(1));
                for ((_, reply), positions) in requests.into_iter().zip(positions) {
                    let _ = reply.send(Ok(positions));
                }
            }
            Err(failure) => {
                tracing::error!(path = %failure.path.display(), error = %failure.source, requests = requests.len(), "log write failed; rolling the group back");
                for s in &mut staged {
                    s.rollback();
                }
                for (_, reply) in requests {
                    let _ = reply.send(Err(LogError::Io {
                        path: failure.path.clone(),
                        source: io::Error::new(failure.source.kind(), failure.source.to_string()),
                    }));
                }
            }
        }
    }

    fn write_and_sync(
        &mut self,
        staged: &mut [Staged],
        requests: &[(AppendRequest, Reply)],
        positions: &mut [Vec<RecordPosition>],
    ) -> Result<(), SyncFailure> {
        for s in staged.iter_mut() {
            s.stage(requests, positions, self.segment_bytes)?;
        }
        let mut to_sync = Vec::new();
        for s in staged.iter_mut() {
            for chunk in &mut s.chunks {
                if chunk.is_empty() || chunk.synced {
                    continue;
                }
                chunk.write()?;
                to_sync.push((chunk.path.clone(), chunk.file.clone()));
            }
        }
        match self.policy {
            FsyncPolicy::Always => self.pool.sync_all(to_sync)?,
            FsyncPolicy::Interval | FsyncPolicy::Never => self.dirty.extend(to_sync),
        }
        Ok(())
    }
}

fn failed_partition(partition: &Partition) -> LogError {
    LogError::Unavailable(format!(
        "partition {} is failed after a write error that could not be undone; restart the log",
        partition.tp
    ))
}

/// Encoded bytes of a chunk written out while the group is still being staged.
const SPILL_BYTES: usize = 4 * 1024 * 1024;

/// Records of one group for one segment, encoded in one buffer (written out whenever it
/// reaches [`SPILL_BYTES`]).
struct Chunk {
    base: u64,
    path: PathBuf,
    /// Write handle.
    file: Arc<File>,
    /// Read handle for readers, for a segment created by this group.
    read_file: Option<Arc<File>>,
    /// Whether this group created the segment (rollback deletes it).
    new_segment: bool,
    /// Segment length before the group: where the chunk's bytes go, and where rollback
    /// truncates to.
    start_pos: u64,
    /// Bytes of the chunk already written at `start_pos`.
    written: u64,
    /// Encoded bytes not written yet; they go at `start_pos + written`.
    buf: Vec<u8>,
    index: Vec<IndexEntry>,
    /// Offset after the chunk's last record.
    end: u64,
    max_timestamp_ms: i64,
    /// A write was attempted (so rollback must truncate).
    touched: bool,
    /// Already synced (when rolling).
    synced: bool,
}

impl Chunk {
    fn at(ws: &WriteState, new_segment: bool) -> Self {
        Self {
            base: ws.base,
            path: ws.path.clone(),
            file: ws.file.clone(),
            read_file: None,
            new_segment,
            start_pos: ws.len,
            written: 0,
            buf: Vec::new(),
            index: Vec::new(),
            end: ws.next_offset,
            max_timestamp_ms: i64::MIN,
            touched: false,
            synced: false,
        }
    }

    /// Writes the encoded bytes not written yet after those that were.
    fn write(&mut self) -> Result<(), SyncFailure> {
        self.touched = true;
        self.file
            .write_all_at(&self.buf, self.start_pos + self.written)
            .map_err(|source| SyncFailure {
                path: self.path.clone(),
                source,
            })?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Whether the group put no record in this chunk.
    fn is_empty(&self) -> bool {
        self.written == 0 && self.buf.is_empty()
    }

    /// The segment's length once the chunk is in.
    fn end_pos(&self) -> u64 {
        self.start_pos + self.written + self.buf.len() as u64
    }
}

/// One partition's share of a group commit.
struct Staged {
    partition: Arc<Partition>,
    /// (request index, batch index) in arrival order.
    work: Vec<(usize, usize)>,
    /// Writer state before the group, restored on rollback; `None` until staged.
    before: Option<WriteState>,
    chunks: Vec<Chunk>,
}

impl Staged {
    fn new(partition: Arc<Partition>) -> Self {
        Self {
            partition,
            work: Vec::new(),
            before: None,
            chunks: Vec::new(),
        }
    }

    /// Assigns offsets and encodes this partition's records, rolling segments as needed.
    fn stage(
        &mut self,
        requests: &[(AppendRequest, Reply)],
        positions: &mut [Vec<RecordPosition>],
        segment_bytes: u64,
    ) -> Result<(), SyncFailure> {
        let owner = self.partition.clone();
        let mut ws = lock(&owner.write);
        self.before = Some(ws.clone());
        self.chunks.push(Chunk::at(&ws, false));
        let partition = owner.tp.partition;
        for (ri, bi) in std::mem::take(&mut self.work) {
            for (input, rec) in &requests[ri].0.batches[bi].records {
                let key = rec.key.as_deref();
                let len = record::encoded_len(key, &rec.headers, &rec.value) as u64;
                if ws.len > 0 && ws.len + len > segment_bytes {
                    self.roll(&mut ws)?;
                }
                let Some(chunk) = self.chunks.last_mut() else {
                    continue;
                };
                if ws.since_index >= INDEX_INTERVAL_BYTES {
                    chunk.index.push(IndexEntry {
                        offset: ws.next_offset,
                        position: ws.len,
                    });
                    ws.since_index = 0;
                }
                let timestamp_ms = rec.timestamp_ms.unwrap_or_else(fsutil::now_ms);
                record::encode(
                    &mut chunk.buf,
                    ws.next_offset,
                    timestamp_ms,
                    key,
                    &rec.headers,
                    &rec.value,
                );
                positions[ri][*input] = RecordPosition {
                    partition,
                    offset: ws.next_offset,
                };
                ws.len += len;
                ws.since_index += len;
                ws.next_offset += 1;
                chunk.end = ws.next_offset;
                chunk.max_timestamp_ms = chunk.max_timestamp_ms.max(timestamp_ms);
                if chunk.buf.len() >= SPILL_BYTES {
                    chunk.write()?;
                }
            }
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at the next offset.
    fn roll(&mut self, ws: &mut WriteState) -> Result<(), SyncFailure> {
        let fail = |path: &PathBuf| {
            let path = path.clone();
            move |source| SyncFailure { path, source }
        };
        // The old segment is made durable before a newer one exists, so that recovery may
        // treat damage followed by a non-empty segment as corruption, not a torn tail.
        if let Some(chunk) = self.chunks.last_mut() {
            if !chunk.is_empty() {
                chunk.write()?;
            }
            chunk.file.sync_data().map_err(fail(&chunk.path))?;
            chunk.synced = true;
        }
        let path = self.partition.dir.join(segment::file_name(ws.next_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(fail(&path))?;
        *ws = WriteState {
            base: ws.next_offset,
            path: path.clone(),
            file: Arc::new(file),
            len: 0,
            next_offset: ws.next_offset,
            since_index: INDEX_INTERVAL_BYTES,
        };
        // From here on the file exists, and rollback deletes it because the chunk says so.
        self.chunks.push(Chunk::at(ws, true));
        let read_file = File::open(&path).map_err(fail(&path))?;
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.read_file = Some(Arc::new(read_file));
        }
        fsutil::sync_dir(&self.partition.dir).map_err(fail(&self.partition.dir))?;
        tracing::debug!(partition = %self.partition.tp, base = ws.base, "rolled to a new segment");
        Ok(())
    }

    /// Extends the readers' view with the committed chunks and wakes waiting readers.
    fn publish(&mut self) {
        let mut state = lock(&self.partition.state);
        for chunk in self.chunks.drain(..) {
            let len = chunk.end_pos();
            if chunk.new_segment {
                let Some(file) = chunk.read_file else {
                    continue;
                };
                state.segments.push(Segment {
                    base: chunk.base,
                    path: chunk.path,
                    file,
                    len,
                    end: chunk.end,
                    max_timestamp_ms: chunk.max_timestamp_ms,
                    index: chunk.index,
                });
            } else if let Some(segment) = state
                .segments
                .iter_mut()
                .rev()
                .find(|s| s.base == chunk.base)
            {
                segment.len = len;
                segment.end = chunk.end;
                segment.max_timestamp_ms = segment.max_timestamp_ms.max(chunk.max_timestamp_ms);
                segment.index.extend(chunk.index);
            }
        }
        let end = state.segments.last().map_or(0, |s| s.end);
        drop(state);
        self.partition.end.send_replace(end);
    }

    /// Undoes the group on disk and in the writer state. If that fails, the partition is
    /// marked failed: its files no longer match what the writer believes.
    fn rollback(&mut self) {
        let Some(before) = self.before.take() else {
            return;
        };
        let mut undone = true;
        let mut removed_file = false;
        for chunk in self.chunks.drain(..).rev() {
            if chunk.new_segment {
                drop(chunk.file);
                match fs::remove_file(&chunk.path) {
                    Ok(()) => removed_file = true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::error!(path = %chunk.path.display(), error = %e, "cannot remove a segment of a failed write");
                        undone = false;
                    }
                }
            } else if chunk.touched
                && let Err(e) = chunk
                    .file
                    .set_len(chunk.start_pos)
                    .and_then(|()| chunk.file.sync_all())
            {
                tracing::error!(path = %chunk.path.display(), error = %e, "cannot truncate a segment after a failed write");
                undone = false;
            }
        }
        if removed_file && let Err(e) = fsutil::sync_dir(&self.partition.dir) {
            tracing::error!(dir = %self.partition.dir.display(), error = %e, "cannot sync the partition directory after a failed write");
            undone = false;
        }
        *lock(&self.partition.write) = before;
        if !undone {
            self.partition.failed.store(true, Ordering::Release);
            tracing::error!(partition = %self.partition.tp, "partition failed: appends refused until restart");
        }
    }
}
