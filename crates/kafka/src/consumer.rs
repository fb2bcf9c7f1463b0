//! A member of a Kafka consumer group, as a [`GroupConsumer`].
//!
//! librdkafka's consumer is driven by blocking `poll` calls, during which it also runs the
//! rebalance callbacks. Each member therefore owns one thread that holds the consumer and
//! serves commands (poll, seek, commit) from the async side in order.
//!
//! Positions are the caller's: nothing is committed automatically and no offset is stored
//! by librdkafka. A seek is applied with librdkafka's seek, waited for briefly: it fails on
//! a partition whose fetcher has not started yet (the state right after an assignment) and
//! is then tried again at the next poll; until it is applied, nothing of that partition is
//! handed out. (It used to be applied by re-assigning every partition with explicit
//! offsets; re-assigning twice while the partitions of the first were still stopping, as
//! happens with brokers down, trips an assertion in librdkafka 2.12 and aborts the
//! process: confluentinc/librdkafka#5573.) A record is handed out only if its partition is
//! assigned, has no seek pending and its offset is at or beyond the partition's expected
//! position, so nothing fetched before a seek or a rebalance can slip through twice.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clickstream_log::{ConsumerEvent, GroupConsumer, LogError, LogRecord, TopicPartition};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;

use crate::context::{GroupContext, RebalanceQueue};
use crate::error::log_error;
use crate::record::to_log_record;

/// How long a seek may take to be accepted by librdkafka before it is tried again later.
const SEEK_WAIT: Duration = Duration::from_millis(100);

/// Least time between two attempts at pending seeks.
const SEEK_RETRY: Duration = Duration::from_millis(100);

enum Command {
    Poll {
        max_records: usize,
        timeout: Duration,
        reply: oneshot::Sender<Result<ConsumerEvent, LogError>>,
    },
    Seek {
        partition: TopicPartition,
        offset: u64,
    },
    Commit {
        offsets: Vec<(TopicPartition, u64)>,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
}

/// One member of a Kafka consumer group.
pub struct KafkaGroupConsumer {
    commands: Option<mpsc::Sender<Command>>,
    assignment: BTreeSet<TopicPartition>,
    thread: Option<JoinHandle<()>>,
}

impl KafkaGroupConsumer {
    /// Joins the group `consumer` is configured with, subscribed to `topics`.
    pub(crate) fn start(
        consumer: BaseConsumer<GroupContext>,
        events: RebalanceQueue,
        topics: &[String],
    ) -> Result<KafkaGroupConsumer, LogError> {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(log_error)?;
        let (commands, receiver) = mpsc::channel();
        let mut member = Member {
            consumer,
            events,
            assignment: BTreeSet::new(),
            expected: HashMap::new(),
            seeks: HashMap::new(),
            last_seek_attempt: None,
            stash: VecDeque::new(),
            failed: None,
        };
        let thread = std::thread::Builder::new()
            .name("kafka-consumer".into())
            .spawn(move || member.serve(receiver))
            .map_err(|e| LogError::Kafka(format!("starting the consumer thread: {e}")))?;
        Ok(KafkaGroupConsumer {
            commands: Some(commands),
            assignment: BTreeSet::new(),
            thread: Some(thread),
        })
    }

    fn send(&self, command: Command) -> Result<(), LogError> {
        self.commands
            .as_ref()
            .and_then(|c| c.send(command).ok())
            .ok_or(LogError::Closed)
    }
}

impl Drop for KafkaGroupConsumer {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which leaves the group as the consumer
        // drops. Not joined: leaving can wait on an unreachable coordinator, and a drop
        // may run on an async worker thread that must not block.
        self.commands.take();
        self.thread.take();
    }
}

#[async_trait]
impl GroupConsumer for KafkaGroupConsumer {
    async fn poll(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<ConsumerEvent, LogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Poll {
            max_records,
            timeout,
            reply,
        })?;
        let event = answer.await.map_err(|_| LogError::Closed)??;
        match &event {
            ConsumerEvent::Assigned(partitions) => self.assignment.extend(partitions.clone()),
            ConsumerEvent::Revoked(partitions) => {
                for tp in partitions {
                    self.assignment.remove(tp);
                }
            }
            ConsumerEvent::Records(_) | ConsumerEvent::Idle => {}
        }
        Ok(event)
    }

    fn seek(&mut self, partition: &TopicPartition, offset: u64) -> Result<(), LogError> {
        if !self.assignment.contains(partition) {
            return Err(LogError::InvalidRequest(format!(
                "cannot seek {partition}: not assigned to this member"
            )));
        }
        self.send(Command::Seek {
            partition: partition.clone(),
            offset,
        })
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.iter().cloned().collect()
    }

    async fn commit(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Commit {
            offsets: offsets.to_vec(),
            reply,
        })?;
        answer.await.map_err(|_| LogError::Closed)?
    }
}

/// The consumer thread's state.
struct Member {
    consumer: BaseConsumer<GroupContext>,
    events: RebalanceQueue,
    assignment: BTreeSet<TopicPartition>,
    /// Next offset to hand out per partition, once known (after a seek or a record).
    expected: HashMap<TopicPartition, u64>,
    /// Seeks asked for and not applied yet.
    seeks: HashMap<TopicPartition, u64>,
    /// When pending seeks were last tried.
    last_seek_attempt: Option<Instant>,
    /// Records fetched in the poll that also delivered a rebalance, held back until the
    /// rebalance event has been handed out.
    stash: VecDeque<LogRecord>,
    /// A permanent error met after part of a batch was fetched, handed out by the next
    /// poll: librdkafka reports some errors (topic authorization) once, then retries
    /// silently for ever, so dropping it would leave the processor waiting.
    failed: Option<LogError>,
}

impl Member {
    fn serve(&mut self, commands: mpsc::Receiver<Command>) {
        while let Ok(command) = commands.recv() {
            match command {
                Command::Poll {
                    max_records,
                    timeout,
                    reply,
                } => {
                    let _ = reply.send(self.poll(max_records.max(1), timeout));
                }
                Command::Seek { partition, offset } => {
                    self.seeks.insert(partition, offset);
                    // A new seek is tried at once.
                    self.last_seek_attempt = None;
                }
                Command::Commit { offsets, reply } => {
                    let _ = reply.send(self.commit(&offsets));
                }
            }
        }
    }

    fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<ConsumerEvent, LogError> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        let deadline = Instant::now() + timeout;
        let mut records = Vec::new();
        loop {
            if records.is_empty()
                && let Some(event) = self.next_rebalance()
            {
                return Ok(event);
            }
            self.apply_seeks()?;
            while records.len() < max_records {
                let Some(record) = self.stash.pop_front() else {
                    break;
                };
                if self.accept(&record) {
                    records.push(record);
                }
            }
            if records.len() >= max_records {
                return Ok(ConsumerEvent::Records(records));
            }
            let wait = if records.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.consumer.poll(wait) {
                None => {
                    if !records.is_empty() {
                        return Ok(ConsumerEvent::Records(records));
                    }
                    if self.rebalance_pending() {
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Ok(ConsumerEvent::Idle);
                    }
                }
                Some(Err(e)) => {
                    let error = log_error(e);
                    if records.is_empty() {
                        return Err(error);
                    }
                    tracing::warn!(%error, "kafka: consumer error after a partial batch");
                    if !error.is_transient() {
                        self.failed = Some(error);
                    }
                    return Ok(ConsumerEvent::Records(records));
                }
                Some(Ok(message)) => {
                    let record = to_log_record(&message);
                    if self.rebalance_pending() {
                        self.stash.push_back(record);
                        if !records.is_empty() {
                            return Ok(ConsumerEvent::Records(records));
                        }
                    } else if self.accept(&record) {
                        records.push(record);
                    }
                }
            }
        }
    }

    fn rebalance_pending(&self) -> bool {
        self.events.lock().map(|e| !e.is_empty()).unwrap_or(false)
    }

    /// Takes the oldest queued rebalance event and updates the member's view with it.
    fn next_rebalance(&mut self) -> Option<ConsumerEvent> {
        let event = self.events.lock().ok()?.pop_front()?;
        match &event {
            ConsumerEvent::Assigned(partitions) => {
                self.assignment.extend(partitions.iter().cloned());
            }
            ConsumerEvent::Revoked(partitions) => {
                for tp in partitions {
                    self.assignment.remove(tp);
                    self.expected.remove(tp);
                    self.seeks.remove(tp);
                }
                self.stash
                    .retain(|r| !partitions.iter().any(|tp| is_of(r, tp)));
            }
            ConsumerEvent::Records(_) | ConsumerEvent::Idle => {}
        }
        Some(event)
    }

    /// Whether a fetched record may be handed out, moving the partition's position past it.
    fn accept(&mut self, record: &LogRecord) -> bool {
        let tp = record.topic_partition();
        if !self.assignment.contains(&tp) || self.seeks.contains_key(&tp) {
            return false;
        }
        match self.expected.get(&tp) {
            Some(next) if record.offset < *next => false,
            _ => {
                self.expected.insert(tp, record.offset + 1);
                true
            }
        }
    }

    /// Applies the pending seeks of assigned partitions; a seek librdkafka refuses now (a
    /// fetcher not started yet, brokers unreachable) stays pending and is tried again, at
    /// most every [`SEEK_RETRY`].
    fn apply_seeks(&mut self) -> Result<(), LogError> {
        self.seeks.retain(|tp, _| self.assignment.contains(tp));
        if self.seeks.is_empty()
            || self
                .last_seek_attempt
                .is_some_and(|at| at.elapsed() < SEEK_RETRY)
        {
            return Ok(());
        }
        self.last_seek_attempt = Some(Instant::now());
        let pending: Vec<(TopicPartition, u64)> =
            self.seeks.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
        for (tp, offset) in pending {
            let at = Offset::Offset(offset as i64);
            match self
                .consumer
                .seek(&tp.topic, tp.partition as i32, at, SEEK_WAIT)
            {
                Ok(()) => {
                    self.seeks.remove(&tp);
                    self.stash.retain(|r| !is_of(r, &tp));
                    self.expected.insert(tp, offset);
                }
                Err(e) => tracing::debug!(
                    partition = %tp, offset, error = %e,
                    "kafka: seek not possible yet; trying again"
                ),
            }
        }
        Ok(())
    }

    fn commit(&mut self, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        let mut list = TopicPartitionList::new();
        for (tp, offset) in offsets {
            list.add_partition_offset(
                &tp.topic,
                tp.partition as i32,
                Offset::Offset(*offset as i64),
            )
            .map_err(log_error)?;
        }
        if list.count() == 0 {
            return Ok(());
        }
        // Informational (lag tools read it); positions live in the lake, so a failed commit
        // is logged, not fatal.
        if let Err(e) = self.consumer.commit(&list, CommitMode::Async) {
            tracing::debug!(error = %e, "kafka: committing offsets failed");
        }
        Ok(())
    }
}

fn is_of(record: &LogRecord, tp: &TopicPartition) -> bool {
    record.partition == tp.partition && record.topic == tp.topic
}
