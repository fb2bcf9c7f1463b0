//! The Kafka backend of the event log: [`KafkaLog`] implements [`EventLog`] on librdkafka,
//! so ingest and the processor run unchanged on a Kafka cluster (Kafka, Redpanda, MSK,
//! Confluent Cloud) instead of the embedded log.
//!
//! - **Producing** (`produce.rs`): one idempotent producer (`acks=all`, zstd by default),
//!   replaced when librdkafka declares it fatally failed. `append` hands every record to
//!   librdkafka and returns once each delivery report is in, so an HTTP acknowledgement
//!   means the brokers have the record. Partitions are chosen with the embedded log's
//!   murmur2 partitioner, which is also Kafka's Java default: a key lands in the same
//!   partition whichever backend or client wrote it.
//! - **Errors** (`error.rs`): every librdkafka code has a class; only outages are
//!   transient, so refusals (authorization, unknown topic, too large) are not retried.
//!   An unknown partition is confirmed with fresh metadata first (`watermarks.rs`): a
//!   stale cache makes librdkafka call a partition unknown when its leader is unknown.
//! - **Consuming**: [`KafkaGroupConsumer`] is a group member with automatic commits and
//!   offset stores off. The processor seeks each assigned partition to the position
//!   recorded in the lake; offsets committed to Kafka are informational (lag tools).
//! - **Admin**: topics are created through the admin API, idempotently.
//! - **Statistics**: librdkafka's statistics become `clickstream_kafka_*` metrics.

mod config;
mod consumer;
mod context;
mod error;
pub mod metrics;
mod produce;
mod record;
mod watermarks;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clickstream_log::{
    EventLog, GroupConsumer, LogError, LogRecord, OutgoingRecord, PartitionInfo, PartitionOffsets,
    RecordPosition, TopicInfo, TopicPartition, TopicSpec, partition_for_key,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

pub use crate::metrics::Role;
pub use config::KafkaConfig;
pub use consumer::KafkaGroupConsumer;
pub use context::{GroupContext, StatsContext};
pub use error::{ErrorClass, class_of, log_error, log_error_on};

/// An [`EventLog`] on a Kafka cluster. Cheap to clone.
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

struct Inner {
    config: KafkaConfig,
    producer: produce::Producer,
    admin: AdminClient<StatsContext>,
    /// A group-less consumer for metadata, watermarks and group lists.
    meta: BaseConsumer<StatsContext>,
    /// A group-less consumer for reads from an offset (the UI's browser, tests, tools).
    reader: Mutex<BaseConsumer<StatsContext>>,
    partitions: RwLock<HashMap<String, u32>>,
    round_robin: AtomicU32,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl KafkaLog {
    /// Creates the clients and checks that the cluster answers a metadata request.
    pub async fn connect(config: KafkaConfig) -> Result<KafkaLog, LogError> {
        if !config.is_enabled() {
            return Err(LogError::InvalidRequest(
                "kafka.bootstrap_servers is not set".into(),
            ));
        }
        let producer = produce::Producer::new(&config)?;
        let admin = config
            .admin()
            .create_with_context(StatsContext::new(Role::Admin))
            .map_err(log_error)?;
        let meta = config
            .consumer(None)
            .create_with_context(StatsContext::new(Role::Metadata))
            .map_err(log_error)?;
        let reader = config
            .consumer(None)
            .create_with_context(StatsContext::new(Role::Reader))
            .map_err(log_error)?;
        let log = KafkaLog {
            inner: Arc::new(Inner {
                config,
                producer,
                admin,
                meta,
                reader: Mutex::new(reader),
                partitions: RwLock::new(HashMap::new()),
                round_robin: AtomicU32::new(0),
            }),
        };
        let brokers = log
            .blocking(|inner| {
                let metadata = inner
                    .meta
                    .fetch_metadata(None, inner.config.request_timeout())
                    .map_err(log_error)?;
                Ok(metadata.brokers().len())
            })
            .await
            .map_err(|e| {
                LogError::Unavailable(format!(
                    "cannot reach Kafka at {}: {e}",
                    log.inner.config.bootstrap_servers.as_deref().unwrap_or("")
                ))
            })?;
        tracing::info!(brokers, "connected to Kafka");
        Ok(log)
    }

    /// Runs a blocking librdkafka call off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Inner) -> Result<T, LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || call(&inner))
            .await
            .map_err(|e| LogError::Kafka(format!("blocking task failed: {e}")))?
    }

    fn cached_partitions(&self, topic: &str) -> Option<u32> {
        self.inner.partitions.read().ok()?.get(topic).copied()
    }
}

impl Inner {
    /// The partition's offsets, from its leader. A partition whose leader the client does
    /// not know (yet) is an outage, not an unknown partition: see `watermarks.rs`.
    fn watermarks(&self, tp: &TopicPartition) -> Result<PartitionOffsets, LogError> {
        watermarks::fetch(&self.meta, tp, self.config.request_timeout())
    }

    fn group_consumer(&self, group: &str) -> Result<BaseConsumer<StatsContext>, LogError> {
        self.config
            .consumer(Some(group))
            .create_with_context(StatsContext::new(Role::Offsets))
            .map_err(log_error)
    }

    fn read(
        &self,
        tp: &TopicPartition,
        from: u64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Vec<LogRecord>, LogError> {
        let offsets = self.watermarks(tp)?;
        if from < offsets.start || from > offsets.end {
            return Err(LogError::OffsetOutOfRange {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: from,
                start: offsets.start,
                end: offsets.end,
            });
        }
        let available = (offsets.end - from) as usize;
        let wanted = max_records.min(available.max(1));
        let reader = self
            .reader
            .lock()
            .map_err(|_| LogError::Kafka("reader poisoned".into()))?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(from as i64))
            .map_err(log_error)?;
        reader.assign(&list).map_err(log_error)?;
        // Records known to exist are waited for up to the request timeout; at the end of the
        // partition, up to `max_wait` for a new one.
        let first_wait = if available > 0 {
            self.config.request_timeout()
        } else {
            max_wait
        };
        let deadline = Instant::now() + first_wait;
        let mut records = Vec::with_capacity(wanted);
        let mut next = from;
        while records.len() < wanted {
            let wait = if records.is_empty() || (next < offsets.end) {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match reader.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    if records.is_empty() {
                        return Err(log_error(e));
                    }
                    break;
                }
                Some(Ok(message)) => {
                    let record = record::to_log_record(&message);
                    if record.topic == tp.topic
                        && record.partition == tp.partition
                        && record.offset >= next
                    {
                        next = record.offset + 1;
                        records.push(record);
                    }
                }
            }
        }
        let _ = reader.unassign();
        Ok(records)
    }
}

#[async_trait]
impl EventLog for KafkaLog {
    fn backend(&self) -> &'static str {
        "kafka"
    }

    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), LogError> {
        let (brokers, existing) = self
            .blocking(|inner| {
                let metadata = inner
                    .meta
                    .fetch_metadata(None, inner.config.request_timeout())
                    .map_err(log_error)?;
                let names: Vec<String> = metadata
                    .topics()
                    .iter()
                    .filter(|t| !t.partitions().is_empty())
                    .map(|t| t.name().to_string())
                    .collect();
                Ok((metadata.brokers().len().max(1), names))
            })
            .await?;
        let new: Vec<NewTopic<'_>> = specs
            .iter()
            .filter(|spec| !existing.contains(&spec.name))
            .map(|spec| {
                // A replication factor above the broker count cannot be met; a one-broker
                // development cluster gets what it can hold.
                let replication = (spec.replication.max(1) as usize).min(brokers) as i32;
                NewTopic::new(
                    &spec.name,
                    spec.partitions.max(1) as i32,
                    TopicReplication::Fixed(replication),
                )
            })
            .collect();
        if !new.is_empty() {
            let options =
                AdminOptions::new().operation_timeout(Some(self.inner.config.request_timeout()));
            let results = self
                .inner
                .admin
                .create_topics(&new, &options)
                .await
                .map_err(log_error)?;
            for result in results {
                match result {
                    Ok(name) => tracing::info!(topic = %name, "created topic"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => return Err(error::from_code(code, Some(&name))),
                }
            }
        }
        // Wait until every topic's metadata shows its partitions (creation propagates).
        for spec in specs {
            let deadline = Instant::now() + self.inner.config.request_timeout();
            loop {
                match self.partition_count(&spec.name).await {
                    Ok(_) => break,
                    // Only a topic still propagating is waited for; a refusal is final.
                    Err(e @ (LogError::UnknownTopic(_) | LogError::Unavailable(_)))
                        if Instant::now() < deadline =>
                    {
                        tracing::debug!(topic = %spec.name, error = %e, "waiting for topic metadata");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>, LogError> {
        self.blocking(|inner| {
            let metadata = inner
                .meta
                .fetch_metadata(None, inner.config.request_timeout())
                .map_err(log_error)?;
            let mut topics = Vec::new();
            for topic in metadata.topics() {
                if topic.name().starts_with("__") || topic.partitions().is_empty() {
                    continue;
                }
                let mut partitions = Vec::new();
                for partition in topic.partitions() {
                    let tp = TopicPartition::new(topic.name(), partition.id() as u32);
                    partitions.push(PartitionInfo {
                        partition: tp.partition,
                        offsets: inner.watermarks(&tp)?,
                        // Kafka does not report sizes through the consumer API.
                        size_bytes: 0,
                    });
                }
                partitions.sort_by_key(|p| p.partition);
                topics.push(TopicInfo {
                    name: topic.name().to_string(),
                    partitions,
                });
            }
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(topics)
        })
        .await
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, LogError> {
        if let Some(n) = self.cached_partitions(topic) {
            return Ok(n);
        }
        let name = topic.to_string();
        let n = self
            .blocking(move |inner| {
                let metadata = inner
                    .meta
                    .fetch_metadata(Some(&name), inner.config.request_timeout())
                    .map_err(log_error)?;
                let Some(found) = metadata.topics().iter().find(|t| t.name() == name) else {
                    return Err(LogError::UnknownTopic(name));
                };
                // A topic the client may not describe is reported with an error, not as
                // missing: say which.
                if let Some(code) = found.error() {
                    return Err(error::from_code(code.into(), Some(&name)));
                }
                match found.partitions().len() as u32 {
                    0 => Err(LogError::UnknownTopic(name)),
                    count => Ok(count),
                }
            })
            .await?;
        if let Ok(mut cache) = self.inner.partitions.write() {
            cache.insert(topic.to_string(), n);
        }
        Ok(n)
    }

    async fn append(&self, records: Vec<OutgoingRecord>) -> Result<Vec<RecordPosition>, LogError> {
        let max = self.inner.config.max_record_bytes;
        for record in &records {
            let size = record.value.len() + record.key.as_ref().map_or(0, |k| k.len());
            if size > max {
                return Err(LogError::RecordTooLarge { size, max });
            }
        }
        let mut partitions = Vec::with_capacity(records.len());
        for record in &records {
            let count = self.partition_count(&record.topic).await?;
            partitions.push(match (record.partition, &record.key) {
                (Some(p), _) => p,
                (None, Some(key)) => partition_for_key(key, count),
                (None, None) => self.inner.round_robin.fetch_add(1, Ordering::Relaxed) % count,
            });
        }
        let sent = self.inner.producer.send(&records, &partitions).await;
        if let Err(e) = &sent {
            crate::metrics::produce_failed();
            tracing::debug!(error = %e, "kafka: append failed");
        }
        sent
    }

    async fn read(
        &self,
        partition: &TopicPartition,
        from: u64,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<Vec<LogRecord>, LogError> {
        let tp = partition.clone();
        self.blocking(move |inner| inner.read(&tp, from, max_records, max_wait))
            .await
    }

    async fn offsets(&self, partition: &TopicPartition) -> Result<PartitionOffsets, LogError> {
        let tp = partition.clone();
        self.blocking(move |inner| inner.watermarks(&tp)).await
    }

    async fn commit(&self, group: &str, offsets: &[(TopicPartition, u64)]) -> Result<(), LogError> {
        let group = group.to_string();
        let offsets = offsets.to_vec();
        self.blocking(move |inner| {
            let consumer = inner.group_consumer(&group)?;
            let mut list = TopicPartitionList::new();
            for (tp, offset) in &offsets {
                list.add_partition_offset(
                    &tp.topic,
                    tp.partition as i32,
                    Offset::Offset(*offset as i64),
                )
                .map_err(log_error)?;
            }
            consumer.commit(&list, CommitMode::Sync).map_err(log_error)
        })
        .await
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<BTreeMap<u32, u64>, LogError> {
        let partitions = self.partition_count(topic).await?;
        let (group, topic) = (group.to_string(), topic.to_string());
        self.blocking(move |inner| {
            let consumer = inner.group_consumer(&group)?;
            let mut list = TopicPartitionList::new();
            for p in 0..partitions {
                list.add_partition(&topic, p as i32);
            }
            let committed = consumer
                .committed_offsets(list, inner.config.request_timeout())
                .map_err(log_error)?;
            Ok(committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some((e.partition() as u32, o as u64)),
                    _ => None,
                })
                .collect())
        })
        .await
    }

    async fn groups(&self) -> Result<Vec<String>, LogError> {
        self.blocking(|inner| {
            let list = inner
                .meta
                .fetch_group_list(None, inner.config.request_timeout())
                .map_err(log_error)?;
            let mut names: Vec<String> =
                list.groups().iter().map(|g| g.name().to_string()).collect();
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn GroupConsumer>, LogError> {
        let events = context::RebalanceQueue::default();
        let consumer: BaseConsumer<GroupContext> = self
            .inner
            .config
            .consumer(Some(group))
            .create_with_context(GroupContext::new(events.clone()))
            .map_err(log_error)?;
        Ok(Box::new(KafkaGroupConsumer::start(
            consumer, events, topics,
        )?))
    }
}
