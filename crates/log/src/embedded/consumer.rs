//! A member of a consumer group: follows the group's assignment and reads its partitions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::Shared;
use super::fsutil::lock;
use super::groups::{Group, MemberShared};
use super::partition::Partition;
use crate::{ConsumerEvent, GroupConsumer, LogError, TopicPartition};

/// A partition this member owns, with its read position.
struct Owned {
    tp: TopicPartition,
    partition: Arc<Partition>,
    position: u64,
}

/// The embedded log's [`GroupConsumer`]. Dropping it leaves the group, which hands its
/// partitions to the remaining members.
pub(crate) struct EmbeddedConsumer {
    shared: Arc<Shared>,
    group: Arc<Group>,
    member_id: u64,
    member: Arc<MemberShared>,
    /// Whether the first `Assigned` was delivered.
    announced: bool,
    /// Partitions delivered to the caller through `Assigned`, sorted.
    owned: Vec<Owned>,
    /// Bumped by the writer after every commit: wakes a waiting poll.
    published: watch::Receiver<u64>,
    /// Which owned partition a poll reads first, so that none starves.
    rotation: usize,
}

impl EmbeddedConsumer {
    /// Joins `group` with the partitions of `topics` (which must exist).
    pub(crate) fn join(
        shared: Arc<Shared>,
        group: Arc<Group>,
        topics: &[String],
    ) -> Result<Self, LogError> {
        let mut names = BTreeSet::new();
        let mut partitions = Vec::new();
        for name in topics {
            let topic = shared.topics.get(name)?;
            if names.insert(name.clone()) {
                partitions.extend(
                    (0..topic.partitions.len() as u32)
                        .map(|p| TopicPartition::new(name.clone(), p)),
                );
            }
        }
        let (member_id, member) = group.join(names, partitions);
        let published = shared.published.subscribe();
        Ok(Self {
            shared,
            group,
            member_id,
            member,
            announced: false,
            owned: Vec::new(),
            published,
            rotation: 0,
        })
    }

    /// The next assignment change to report, applied to `owned`: revocations first, then
    /// additions, each in its own event.
    fn assignment_event(&mut self) -> Result<Option<ConsumerEvent>, LogError> {
        let target = lock(&self.member.assignment).clone();
        let lost: Vec<TopicPartition> = self
            .owned
            .iter()
            .filter(|o| target.binary_search(&o.tp).is_err())
            .map(|o| o.tp.clone())
            .collect();
        if !lost.is_empty() {
            self.owned.retain(|o| target.binary_search(&o.tp).is_ok());
            return Ok(Some(ConsumerEvent::Revoked(lost)));
        }
        let gained: Vec<TopicPartition> = target
            .iter()
            .filter(|tp| !self.owned.iter().any(|o| &o.tp == *tp))
            .cloned()
            .collect();
        if gained.is_empty() && self.announced {
            return Ok(None);
        }
        self.announced = true;
        for tp in &gained {
            let partition = self.shared.topics.partition(tp)?;
            // The committed offset is read now, after the previous owner had its chance to
            // commit, rather than at rebalance time.
            let position = self
                .group
                .committed_offset(tp)
                .unwrap_or_else(|| partition.offsets().start);
            self.owned.push(Owned {
                tp: tp.clone(),
                partition,
                position,
            });
        }
        self.owned.sort_by(|a, b| a.tp.cmp(&b.tp));
        Ok(Some(ConsumerEvent::Assigned(gained)))
    }

    /// Reads what is available now from the owned partitions, starting with a different
    /// partition each time.
    async fn fetch(&mut self, max_records: usize) -> Result<Vec<crate::LogRecord>, LogError> {
        let mut out = Vec::new();
        let n = self.owned.len();
        if n == 0 {
            return Ok(out);
        }
        let first = self.rotation % n;
        self.rotation = self.rotation.wrapping_add(1);
        for i in 0..n {
            let budget = max_records - out.len();
            if budget == 0 {
                break;
            }
            let owned = &mut self.owned[(first + i) % n];
            let offsets = owned.partition.offsets();
            if owned.position < offsets.start || owned.position > offsets.end {
                // Retention overtook the position (or the committed offset is from data
                // that no longer exists): restart from the earliest, as Kafka's
                // `auto.offset.reset = earliest` does.
                tracing::warn!(group = %self.group.name, partition = %owned.tp, position = owned.position, start = offsets.start, end = offsets.end, "consumer position out of range; resetting to the start");
                owned.position = offsets.start;
            }
            if owned.position == offsets.end {
                continue;
            }
            match owned
                .partition
                .read(owned.position, budget, Duration::ZERO)
                .await
            {
                Ok(records) => {
                    if let Some(last) = records.last() {
                        owned.position = last.offset + 1;
                    }
                    out.extend(records);
                }
                // Retention raced with us; the next poll resets the position.
                Err(LogError::OffsetOutOfRange { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl GroupConsumer for EmbeddedConsumer {
    async fn poll(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<ConsumerEvent, LogError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(LogError::Closed);
            }
            if let Some(event) = self.assignment_event()? {
                return Ok(event);
            }
            // Mark the current generation seen before reading, so a commit that lands after
            // the read still wakes the wait below.
            self.published.borrow_and_update();
            let records = self.fetch(max_records.max(1)).await?;
            if !records.is_empty() {
                return Ok(ConsumerEvent::Records(records));
            }
            let member = self.member.clone();
            let _parked = super::partition::Parked::new(&self.shared.parked_polls);
            tokio::select! {
                changed = self.published.changed() => {
                    if changed.is_err() {
                        return Err(LogError::Closed);
                    }
                }
                () = member.changed.notified() => {}
                () = tokio::time::sleep_until(deadline) => return Ok(ConsumerEvent::Idle),
            }
        }
    }

    fn seek(&mut self, partition: &TopicPartition, offset: u64) -> Result<(), LogError> {
        let owned = self
            .owned
            .iter_mut()
            .find(|o| &o.tp == partition)
            .ok_or_else(|| {
                LogError::InvalidRequest(format!(
                    "seek on {partition}, which is not assigned to this consumer"
                ))
            })?;
        owned.position = offset;
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().map(|o| o.tp.clone()).collect()
    }

    async fn commit(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        let group = self.group.clone();
        let offsets = offsets.to_vec();
        tokio::task::spawn_blocking(move || group.commit(&offsets))
            .await
            .map_err(|e| LogError::Unavailable(format!("commit task failed: {e}")))?
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        self.group.leave(self.member_id);
    }
}
