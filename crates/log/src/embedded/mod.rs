//! The embedded durable log: Kafka's model in a directory of append-only files.
//!
//! Layout under `dir`:
//!
//! ```text
//! lock                                   held (flock) while a process has the log open
//! topics/<topic>/topic.json              {"partitions": N}, written last at creation
//! topics/<topic>/<partition>/<base>.log  segments; <base> = first offset, 20 digits
//! groups/<group>.json                    committed offsets, replaced atomically
//! ```
//!
//! Appends go through one writer thread that commits them in groups (`writer.rs`); readers
//! see only published (under `fsync = always`: durable) records. Recovery at open trims a
//! torn tail left by a crash (`partition.rs`); the record framing is in `record.rs`. A
//! background thread applies retention.
//!
//! Guarantee: under `fsync = always`, a record whose append returned `Ok` is readable after
//! a crash of the process or the machine; under `interval`, after a crash of the process.

mod config;
mod consumer;
mod fsutil;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod groups;
mod partition;
mod record;
mod reserve;
mod segment;
mod sync_pool;
mod topics;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

pub use config::{EmbeddedLogConfig, FsyncPolicy};

use consumer::EmbeddedConsumer;
use fsutil::{io_err, lock};
use groups::GroupStore;
use reserve::DiskReserve;
use topics::{Topic, Topics};
use writer::{AppendRequest, PartitionBatch, Writer};

use crate::{
    EventLog, GroupConsumer, LogError, LogRecord, OutgoingRecord, PartitionInfo, PartitionOffsets,
    RecordPosition, TopicInfo, TopicPartition, TopicSpec, partition_for_key,
};

/// State shared by the log, its consumers and its background thread.
pub(crate) struct Shared {
    config: EmbeddedLogConfig,
    topics: Topics,
    groups: GroupStore,
    closed: AtomicBool,
    /// Generation bumped after every group commit; consumers wait on it.
    published: Arc<watch::Sender<u64>>,
    /// Group consumer polls waiting for records right now.
    parked_polls: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn check_open(&self) -> Result<(), LogError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        Ok(())
    }

    /// Deletes the segments retention no longer keeps; returns how many. Blocking.
    fn enforce_retention(&self) -> usize {
        let now = fsutil::now_ms();
        let mut deleted = 0;
        for topic in self.topics.all() {
            for partition in &topic.partitions {
                let expired = partition.expire_segments(
                    now,
                    self.config.retention_ms,
                    self.config.retention_bytes,
                );
                if expired.is_empty() {
                    continue;
                }
                for segment in &expired {
                    // Readers holding the segment's handle can still finish their read.
                    if let Err(e) = fs::remove_file(&segment.path) {
                        tracing::warn!(path = %segment.path.display(), error = %e, "cannot delete expired segment");
                    }
                }
                if let Err(e) = fsutil::sync_dir(&partition.dir) {
                    tracing::warn!(dir = %partition.dir.display(), error = %e, "cannot sync partition directory after retention");
                }
                deleted += expired.len();
                tracing::info!(partition = %partition.tp, segments = expired.len(), start = partition.offsets().start, "retention deleted segments");
            }
        }
        deleted
    }
}

/// The embedded durable log. See the [module documentation](self).
pub struct EmbeddedLog {
    shared: Arc<Shared>,
    writer: Writer,
    reserve: DiskReserve,
    /// Dropping the sender stops the retention thread.
    retention_stop: Mutex<Option<mpsc::Sender<()>>>,
    /// Keeps other processes from opening the same directory; released on drop.
    _dir_lock: File,
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `config.dir`, recovering every topic and group, and
    /// starts the writer and retention threads.
    pub async fn open(config: EmbeddedLogConfig) -> Result<Self, LogError> {
        config.validate()?;
        let dir = config.dir.clone();
        let (dir_lock, topics, groups) = tokio::task::spawn_blocking(move || {
            fsutil::create_dir_durable(&dir)?;
            let dir_lock = lock_dir(&dir)?;
            let topics = Topics::open(dir.join("topics"))?;
            let groups = GroupStore::open(dir.join("groups"))?;
            Ok::<_, LogError>((dir_lock, topics, groups))
        })
        .await
        .map_err(|e| LogError::Unavailable(format!("log recovery task failed: {e}")))??;
        let published = Arc::new(watch::channel(0u64).0);
        let writer = Writer::start(&config, published.clone()).map_err(io_err(&config.dir))?;
        let shared = Arc::new(Shared {
            config,
            topics,
            groups,
            closed: AtomicBool::new(false),
            published,
            parked_polls: std::sync::atomic::AtomicUsize::new(0),
        });
        let retention_stop = start_retention(shared.clone()).map_err(io_err(&shared.config.dir))?;
        tracing::info!(dir = %shared.config.dir.display(), topics = shared.topics.all().len(), "opened embedded log");
        let reserve = DiskReserve::new(
            shared.config.dir.clone(),
            shared.config.min_free_bytes,
            &shared.config.derived_topics,
        );
        Ok(Self {
            shared,
            writer,
            reserve,
            retention_stop: Mutex::new(Some(retention_stop)),
            _dir_lock: dir_lock,
        })
    }

    /// Reads of `partition` waiting at its end for a record right now (they wake up when
    /// one is published).
    pub fn parked_reads(&self, partition: &TopicPartition) -> Result<usize, LogError> {
        let partition = self.shared.topics.partition(partition)?;
        Ok(partition.parked.load(Ordering::Acquire))
    }

    /// Group consumer polls waiting for records right now.
    pub fn parked_polls(&self) -> usize {
        self.shared.parked_polls.load(Ordering::Acquire)
    }

    /// Commits what is queued, syncs every file, and stops the background threads. Later
    /// calls on the log or its consumers return [`LogError::Closed`].
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        lock(&self.retention_stop).take();
        self.writer.shutdown().await;
    }

    /// Applies retention now (the background thread does so every
    /// `retention_check_interval_ms`) and returns the number of segments deleted.
    pub async fn enforce_retention(&self) -> Result<usize, LogError> {
        self.shared.check_open()?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.enforce_retention())
            .await
            .map_err(|e| LogError::Unavailable(format!("retention task failed: {e}")))
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &EmbeddedLogConfig {
        &self.shared.config
    }

    /// Validates records and splits them by partition.
    fn prepare(&self, records: Vec<OutgoingRecord>) -> Result<AppendRequest, LogError> {
        let max = self.shared.config.max_record_bytes;
        let now = fsutil::now_ms();
        let record_count = records.len();
        let mut batches: Vec<PartitionBatch> = Vec::new();
        let mut batch_of: HashMap<(usize, u32), usize> = HashMap::new();
        let mut topics: Vec<Arc<Topic>> = Vec::new();
        let mut bytes = 0usize;
        for (input, mut rec) in records.into_iter().enumerate() {
            let ti = match topics.iter().position(|t| t.name == rec.topic) {
                Some(ti) => ti,
                None => {
                    topics.push(self.shared.topics.get(&rec.topic)?);
                    topics.len() - 1
                }
            };
            let topic = &topics[ti];
            let size = record::encoded_len(rec.key.as_deref(), &rec.headers, &rec.value);
            if size > max {
                return Err(LogError::RecordTooLarge { size, max });
            }
            bytes += size;
            let p = match (rec.partition, &rec.key) {
                (Some(p), _) => p,
                (None, Some(key)) => partition_for_key(key, topic.partitions.len() as u32),
                (None, None) => topic.next_partition(),
            };
            let partition = topic.partition(p)?;
            if partition.failed.load(Ordering::Acquire) {
                return Err(LogError::Unavailable(format!(
                    "partition {} is failed after a write error that could not be undone; restart the log",
                    partition.tp
                )));
            }
            rec.timestamp_ms.get_or_insert(now);
            let bi = *batch_of.entry((ti, p)).or_insert_with(|| {
                batches.push(PartitionBatch {
                    partition: partition.clone(),
                    records: Vec::new(),
                });
                batches.len() - 1
            });
            batches[bi].records.push((input, rec));
        }
        Ok(AppendRequest {
            batches,
            record_count,
            bytes,
        })
    }
}

impl Drop for EmbeddedLog {
    fn drop(&mut self) {
        // Without waiting: the writer finishes the queued appends and exits by itself once
        // its channel closes, and the retention thread stops at once.
        self.shared.closed.store(true, Ordering::Release);
        lock(&self.retention_stop).take();
    }
}

/// Takes an exclusive lock on `<dir>/lock` so that two processes never write one log.
fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let path = dir.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(LogError::Unavailable(format!(
            "log directory {} is in use by another process (or another open log)",
            dir.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

fn start_retention(shared: Arc<Shared>) -> std::io::Result<mpsc::Sender<()>> {
    let (stop, stopped) = mpsc::channel::<()>();
    let interval = Duration::from_millis(shared.config.retention_check_interval_ms);
    thread::Builder::new()
        .name("log-retention".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                shared.enforce_retention();
            }
        })?;
    Ok(stop)
}

#[async_trait]
impl EventLog for EmbeddedLog {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn accepts_new_events(&self) -> Result<(), LogError> {
        self.shared.check_open()?;
        self.reserve.check_intake()
    }

    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), LogError> {
        self.shared.check_open()?;
        for spec in specs {
            Topics::validate(spec)?;
        }
        let shared = self.shared.clone();
        let specs = specs.to_vec();
        tokio::task::spawn_blocking(move || {
            specs.iter().try_for_each(|spec| shared.topics.create(spec))
        })
        .await
        .map_err(|e| LogError::Unavailable(format!("topic creation task failed: {e}")))?
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>, LogError> {
        self.shared.check_open()?;
        Ok(self
            .shared
            .topics
            .all()
            .iter()
            .map(|topic| TopicInfo {
                name: topic.name.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| PartitionInfo {
                        partition: p.tp.partition,
                        offsets: p.offsets(),
                        size_bytes: p.size_bytes(),
                    })
                    .collect(),
            })
            .collect())
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, LogError> {
        self.shared.check_open()?;
        Ok(self.shared.topics.get(topic)?.partitions.len() as u32)
    }

    async fn append(&self, records: Vec<OutgoingRecord>) -> Result<Vec<RecordPosition>, LogError> {
        self.shared.check_open()?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.reserve.check(&records)?;
        let request = self.prepare(records)?;
        self.writer.append(request).await
    }

    async fn read(
        &self,
        partition: &TopicPartition,
        from: u64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Vec<LogRecord>, LogError> {
        self.shared.check_open()?;
        let partition = self.shared.topics.partition(partition)?;
        partition.read(from, max_records, max_wait).await
    }

    async fn offsets(&self, partition: &TopicPartition) -> Result<PartitionOffsets, LogError> {
        self.shared.check_open()?;
        Ok(self.shared.topics.partition(partition)?.offsets())
    }

    async fn commit(&self, group: &str, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        self.shared.check_open()?;
        fsutil::validate_name("group", group)?;
        for (tp, _) in offsets {
            fsutil::validate_name("topic", &tp.topic)?;
        }
        let group = self.shared.groups.get_or_create(group);
        let offsets = offsets.to_vec();
        tokio::task::spawn_blocking(move || group.commit(&offsets))
            .await
            .map_err(|e| LogError::Unavailable(format!("commit task failed: {e}")))?
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<BTreeMap<u32, u64>, LogError> {
        self.shared.check_open()?;
        fsutil::validate_name("group", group)?;
        Ok(self
            .shared
            .groups
            .get(group)
            .map(|g| g.committed(topic))
            .unwrap_or_default())
    }

    async fn groups(&self) -> Result<Vec<String>, LogError> {
        self.shared.check_open()?;
        Ok(self.shared.groups.names())
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn GroupConsumer>, LogError> {
        self.shared.check_open()?;
        fsutil::validate_name("group", group)?;
        if topics.is_empty() {
            return Err(LogError::InvalidRequest(
                "subscribe needs at least one topic".into(),
            ));
        }
        let group = self.shared.groups.get_or_create(group);
        let consumer = EmbeddedConsumer::join(self.shared.clone(), group, topics)?;
        Ok(Box::new(consumer))
    }
}
