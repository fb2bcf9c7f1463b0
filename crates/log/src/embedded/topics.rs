//! The topics of the log: creation, recovery at open, lookup.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::fsutil::{self, io_err, lock};
use super::partition::Partition;
use crate::{LogError, TopicPartition, TopicSpec};

/// Most partitions a topic may have (each one holds open files).
const MAX_PARTITIONS: u32 = 10_000;

/// Content of `topics/<topic>/topic.json`, written last when a topic is created: a topic
/// directory without it is an interrupted creation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicFile {
    partitions: u32,
}

/// A topic and its partitions.
#[derive(Debug)]
pub(crate) struct Topic {
    /// Topic name.
    pub name: String,
    /// Partitions by number.
    pub partitions: Vec<Arc<Partition>>,
    /// Round-robin cursor for keyless records.
    next: AtomicU32,
}

impl Topic {
    /// The partition for the next keyless record: round robin.
    pub(crate) fn next_partition(&self) -> u32 {
        self.next.fetch_add(1, Ordering::Relaxed) % self.partitions.len() as u32
    }

    /// Partition `partition`, or `UnknownPartition`.
    pub(crate) fn partition(&self, partition: u32) -> Result<&Arc<Partition>, LogError> {
        self.partitions
            .get(partition as usize)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: self.name.clone(),
                partition,
            })
    }
}

/// All topics, by name.
#[derive(Debug)]
pub(crate) struct Topics {
    dir: PathBuf,
    map: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises creations, so two callers creating the same topic do not race on disk.
    create: Mutex<()>,
}

impl Topics {
    /// Recovers every topic under `dir` (created if missing). Blocking.
    pub(crate) fn open(dir: PathBuf) -> Result<Self, LogError> {
        fsutil::create_dir_durable(&dir)?;
        let mut map = HashMap::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if fsutil::validate_name("topic", &name).is_err() || !path.is_dir() {
                tracing::warn!(path = %path.display(), "ignoring unexpected entry in topics directory");
                continue;
            }
            let meta = path.join("topic.json");
            if !meta.exists() {
                tracing::warn!(topic = %name, "ignoring topic whose creation was interrupted; creating it again completes it");
                continue;
            }
            let file: TopicFile = serde_json::from_slice(&fs::read(&meta).map_err(io_err(&meta))?)
                .map_err(|e| LogError::Corrupt {
                    path: meta.clone(),
                    position: 0,
                    reason: format!("invalid topic file: {e}"),
                })?;
            let topic = open_topic(&path, &name, file.partitions)?;
            map.insert(name, Arc::new(topic));
        }
        Ok(Self {
            dir,
            map: RwLock::new(map),
            create: Mutex::new(()),
        })
    }

    /// The topic called `name`.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        fsutil::read(&self.map)
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_owned()))
    }

    /// A partition of a topic.
    pub(crate) fn partition(&self, tp: &TopicPartition) -> Result<Arc<Partition>, LogError> {
        Ok(self.get(&tp.topic)?.partition(tp.partition)?.clone())
    }

    /// Every topic, sorted by name.
    pub(crate) fn all(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = fsutil::read(&self.map).values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Checks a spec before any creation starts.
    pub(crate) fn validate(spec: &TopicSpec) -> Result<(), LogError> {
        fsutil::validate_name("topic", &spec.name)?;
        if spec.partitions == 0 || spec.partitions > MAX_PARTITIONS {
            return Err(LogError::InvalidRequest(format!(
                "topic {} needs between 1 and {MAX_PARTITIONS} partitions, not {}",
                spec.name, spec.partitions
            )));
        }
        Ok(())
    }

    /// Creates the topic unless it exists (blocking). The partition directories come
    /// first and `topic.json` last, so a crash midway leaves a directory that open ignores
    /// and a later creation completes.
    pub(crate) fn create(&self, spec: &TopicSpec) -> Result<(), LogError> {
        let _creating = lock(&self.create);
        if fsutil::read(&self.map).contains_key(&spec.name) {
            return Ok(());
        }
        let dir = self.dir.join(&spec.name);
        fsutil::create_dir_durable(&dir)?;
        for p in 0..spec.partitions {
            Partition::create_dir(&dir.join(p.to_string()))?;
        }
        let json = serde_json::to_vec(&TopicFile {
            partitions: spec.partitions,
        })
        .map_err(|e| LogError::InvalidRequest(format!("cannot encode topic file: {e}")))?;
        fsutil::write_atomic(&dir.join("topic.json"), &json)?;
        let topic = open_topic(&dir, &spec.name, spec.partitions)?;
        fsutil::write(&self.map).insert(spec.name.clone(), Arc::new(topic));
        tracing::info!(topic = %spec.name, partitions = spec.partitions, "created topic");
        Ok(())
    }
}

fn open_topic(dir: &Path, name: &str, partitions: u32) -> Result<Topic, LogError> {
    let mut opened = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        let pdir = dir.join(p.to_string());
        if !pdir.is_dir() {
            return Err(LogError::Corrupt {
                path: pdir,
                position: 0,
                reason: format!("topic {name} has {partitions} partitions but this one is missing"),
            });
        }
        opened.push(Arc::new(Partition::open(
            TopicPartition::new(name, p),
            pdir,
        )?));
    }
    Ok(Topic {
        name: name.to_owned(),
        partitions: opened,
        next: AtomicU32::new(0),
    })
}
