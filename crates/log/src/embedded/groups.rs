//! Consumer groups: committed offsets, persisted as one JSON file per group, and the
//! membership of the group's consumers in this process.
//!
//! Assignment follows Kafka's round-robin assignor: the partitions of every subscribed topic
//! are sorted and dealt in turn to the live members in join order (a member only receives
//! partitions of topics it subscribed to). Each join or leave recomputes the whole
//! assignment and wakes the members whose share changed; they learn of it on their next
//! poll. Members do not wait for each other to finish revoking (no stop-the-world barrier),
//! so around a rebalance a record may be processed twice: at-least-once, as with Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::fsutil::{self, io_err, lock};
use crate::{LogError, TopicPartition};

/// Committed offsets by topic, then partition.
type Offsets = BTreeMap<String, BTreeMap<u32, u64>>;

/// Content of `groups/<group>.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    /// Next offset to read, by topic and partition.
    offsets: Offsets,
}

/// Every consumer group known to the log.
#[derive(Debug)]
pub(crate) struct GroupStore {
    dir: PathBuf,
    groups: Mutex<BTreeMap<String, Arc<Group>>>,
}

impl GroupStore {
    /// Loads the committed offsets of every group in `dir` (created if missing).
    pub(crate) fn open(dir: PathBuf) -> Result<Self, LogError> {
        fsutil::create_dir_durable(&dir)?;
        let mut groups = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                // An interrupted atomic write; the previous file (if any) is intact.
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let Some(group) = name.strip_suffix(".json") else {
                tracing::warn!(path = %path.display(), "ignoring unexpected file in groups directory");
                continue;
            };
            if fsutil::validate_name("group", group).is_err() {
                tracing::warn!(path = %path.display(), "ignoring group file with an invalid name");
                continue;
            }
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let file: GroupFile =
                serde_json::from_slice(&bytes).map_err(|e| LogError::Corrupt {
                    path: path.clone(),
                    position: 0,
                    reason: format!("invalid group offsets file: {e}"),
                })?;
            groups.insert(
                group.to_owned(),
                Arc::new(Group::new(group, path, file.offsets)),
            );
        }
        Ok(Self {
            dir,
            groups: Mutex::new(groups),
        })
    }

    /// Names of the known groups (with committed offsets or members).
    pub(crate) fn names(&self) -> Vec<String> {
        lock(&self.groups).keys().cloned().collect()
    }

    /// The group called `name`, if known.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Group>> {
        lock(&self.groups).get(name).cloned()
    }

    /// The group called `name`, created (in memory) if new. The name must be valid.
    pub(crate) fn get_or_create(&self, name: &str) -> Arc<Group> {
        lock(&self.groups)
            .entry(name.to_owned())
            .or_insert_with(|| {
                let path = self.dir.join(format!("{name}.json"));
                Arc::new(Group::new(name, path, Offsets::new()))
            })
            .clone()
    }
}

/// One consumer group.
#[derive(Debug)]
pub(crate) struct Group {
    /// Group name.
    pub name: String,
    path: PathBuf,
    /// Held during the whole commit (file write included) so commits apply in order.
    committed: Mutex<Offsets>,
    membership: Mutex<Membership>,
}

/// What a member and the group share: the member's target assignment.
#[derive(Debug, Default)]
pub(crate) struct MemberShared {
    /// Partitions the group assigns to the member now, sorted.
    pub assignment: Mutex<Vec<TopicPartition>>,
    /// Signalled when `assignment` changes.
    pub changed: Notify,
}

#[derive(Debug, Default)]
struct Membership {
    next_id: u64,
    members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    id: u64,
    topics: BTreeSet<String>,
    partitions: Vec<TopicPartition>,
    shared: Arc<MemberShared>,
}

impl Group {
    fn new(name: &str, path: PathBuf, offsets: Offsets) -> Self {
        Self {
            name: name.to_owned(),
            path,
            committed: Mutex::new(offsets),
            membership: Mutex::new(Membership::default()),
        }
    }

    /// Committed offsets of `topic`, by partition.
    pub(crate) fn committed(&self, topic: &str) -> BTreeMap<u32, u64> {
        lock(&self.committed)
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    /// Committed offset of one partition.
    pub(crate) fn committed_offset(&self, tp: &TopicPartition) -> Option<u64> {
        lock(&self.committed)
            .get(&tp.topic)?
            .get(&tp.partition)
            .copied()
    }

    /// Durably stores offsets (blocking: call from a blocking thread). On error nothing
    /// changes, in memory or on disk.
    pub(crate) fn commit(&self, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        let mut committed = lock(&self.committed);
        let mut next = committed.clone();
        for (tp, offset) in offsets {
            next.entry(tp.topic.clone())
                .or_default()
                .insert(tp.partition, *offset);
        }
        let file = GroupFile { offsets: next };
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| LogError::Unavailable(format!("cannot encode group offsets: {e}")))?;
        fsutil::write_atomic(&self.path, &json)?;
        *committed = file.offsets;
        Ok(())
    }

    /// Adds a member subscribed to `topics` (whose partitions are `partitions`) and
    /// rebalances. Returns the member id and what it shares with the group.
    pub(crate) fn join(
        &self,
        topics: BTreeSet<String>,
        partitions: Vec<TopicPartition>,
    ) -> (u64, Arc<MemberShared>) {
        let mut membership = lock(&self.membership);
        let id = membership.next_id;
        membership.next_id += 1;
        let shared = Arc::new(MemberShared::default());
        membership.members.push(Member {
            id,
            topics,
            partitions,
            shared: shared.clone(),
        });
        rebalance(&membership.members);
        (id, shared)
    }

    /// Removes a member and gives its partitions to the others.
    pub(crate) fn leave(&self, id: u64) {
        let mut membership = lock(&self.membership);
        membership.members.retain(|m| m.id != id);
        rebalance(&membership.members);
    }
}

/// Recomputes the assignment and notifies the members whose share changed.
fn rebalance(members: &[Member]) {
    let subscriptions: Vec<(&BTreeSet<String>, &[TopicPartition])> = members
        .iter()
        .map(|m| (&m.topics, m.partitions.as_slice()))
        .collect();
    for (member, target) in members.iter().zip(assign(&subscriptions)) {
        let mut assignment = lock(&member.shared.assignment);
        if *assignment != target {
            *assignment = target;
            drop(assignment);
            member.shared.changed.notify_one();
        }
    }
}

/// Round-robin assignment: every subscribed partition, sorted, dealt to the members in
/// join order, skipping members not subscribed to its topic.
fn assign(members: &[(&BTreeSet<String>, &[TopicPartition])]) -> Vec<Vec<TopicPartition>> {
    let all: BTreeSet<&TopicPartition> = members.iter().flat_map(|(_, p)| p.iter()).collect();
    let mut targets = vec![Vec::new(); members.len()];
    let mut cursor = 0;
    for tp in all {
        for step in 0..members.len() {
            let m = (cursor + step) % members.len();
            if members[m].0.contains(&tp.topic) {
                targets[m].push(tp.clone());
                cursor = m + 1;
                break;
            }
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(topic: &str, n: u32) -> Vec<TopicPartition> {
        (0..n).map(|p| TopicPartition::new(topic, p)).collect()
    }

    #[test]
    fn round_robin_splits_evenly_in_join_order() {
        let topics: BTreeSet<String> = ["a".to_owned()].into();
        let parts = partitions("a", 6);
        let targets = assign(&[(&topics, &parts), (&topics, &parts)]);
        assert_eq!(
            targets[0],
            vec![parts[0].clone(), parts[2].clone(), parts[4].clone()]
        );
        assert_eq!(
            targets[1],
            vec![parts[1].clone(), parts[3].clone(), parts[5].clone()]
        );
    }

    #[test]
    fn members_only_get_their_topics() {
        let only_a: BTreeSet<String> = ["a".to_owned()].into();
        let a_and_b: BTreeSet<String> = ["a".to_owned(), "b".to_owned()].into();
        let a = partitions("a", 2);
        let ab: Vec<TopicPartition> = a.iter().cloned().chain(partitions("b", 3)).collect();
        let targets = assign(&[(&only_a, &a), (&a_and_b, &ab)]);
        assert!(targets[0].iter().all(|tp| tp.topic == "a"));
        assert_eq!(targets[0].len() + targets[1].len(), 5);
        assert_eq!(targets[1].iter().filter(|tp| tp.topic == "b").count(), 3);
    }

    #[test]
    fn commits_survive_reload_and_tmp_files_are_cleaned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = GroupStore::open(dir.path().to_path_buf()).expect("open");
        let group = store.get_or_create("g1");
        group
            .commit(&[
                (TopicPartition::new("t", 0), 5),
                (TopicPartition::new("t", 2), 9),
            ])
            .expect("commit");
        group
            .commit(&[(TopicPartition::new("t", 0), 7)])
            .expect("commit");
        fs::write(dir.path().join("g2.json.tmp"), b"{partial").expect("write tmp");

        let store = GroupStore::open(dir.path().to_path_buf()).expect("reopen");
        assert_eq!(store.names(), vec!["g1".to_owned()]);
        let group = store.get("g1").expect("group");
        assert_eq!(group.committed("t"), BTreeMap::from([(0, 7), (2, 9)]));
        assert!(!dir.path().join("g2.json.tmp").exists());
    }
}
