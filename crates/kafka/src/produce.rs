//! Producing: one idempotent producer shared by every append, its failures classified, and
//! replaced when librdkafka declares it fatally failed.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use clickstream_log::{LogError, OutgoingRecord, RecordPosition};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};

use crate::config::KafkaConfig;
use crate::context::StatsContext;
use crate::error::{from_code, log_error, log_error_on};
use crate::metrics::Role;
use crate::record;

/// One librdkafka producer and its context (kept apart: the producer wraps it privately).
struct Client {
    producer: FutureProducer<StatsContext>,
    context: StatsContext,
}

/// A fatally failed producer is replaced at most this often, so that a cause that
/// persists (an ACL refusing idempotent writes) does not cost a new client per request.
const REPLACE_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// The idempotent producer behind `append`.
///
/// librdkafka raises a *fatal* error on an idempotent producer when it can no longer
/// guarantee order and exactly-once delivery: a sequence desynchronisation with a broker
/// (`OUT_OF_ORDER_SEQUENCE_NUMBER` on the oldest request in flight), an unknown producer
/// id with requests in flight, or a refused `InitProducerId` (`CLUSTER_AUTHORIZATION_FAILED`,
/// an unsupported feature). From then on every produce call fails with `_FATAL` and queued
/// records are purged: the instance is dead for good.
///
/// We replace it rather than stop ingest. Our guarantee before an acknowledgement is
/// at-least-once, and a request whose records were in flight is answered with an error and
/// retried by the client, so a new producer id loses nothing we promised; stopping would
/// turn one broker hiccup into an outage that needs a restart. The request that met the
/// fatal error is answered by its cause: a sequence or epoch error is transient (503, the
/// retry goes to the new producer), an authorization or feature refusal is permanent (the
/// operator must act; the replacement lets the first request after the fix succeed).
pub(crate) struct Producer {
    config: KafkaConfig,
    current: RwLock<Arc<Client>>,
    replaced_at: Mutex<Option<Instant>>,
}

/// The first failure of an append and the topic of the record it hit.
struct Failure {
    error: KafkaError,
    topic: String,
}

impl Producer {
    /// Creates the producer.
    pub(crate) fn new(config: &KafkaConfig) -> Result<Producer, LogError> {
        Ok(Producer {
            config: config.clone(),
            current: RwLock::new(Arc::new(create(config)?)),
            replaced_at: Mutex::new(None),
        })
    }

    fn current(&self) -> Arc<Client> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sends `records[i]` to `partitions[i]` and waits for every delivery report. On error
    /// no position is returned; some records may have been written (at-least-once).
    pub(crate) async fn send(
        &self,
        records: &[OutgoingRecord],
        partitions: &[u32],
    ) -> Result<Vec<RecordPosition>, LogError> {
        let producer = self.current();
        let result = match self.send_with(&producer, records, partitions).await {
            Ok(positions) => Ok(positions),
            Err(failure) => Err(self.classify(&producer, failure).await),
        };
        self.release(producer);
        result
    }

    async fn send_with(
        &self,
        producer: &Client,
        records: &[OutgoingRecord],
        partitions: &[u32],
    ) -> Result<Vec<RecordPosition>, Failure> {
        let mut deliveries = Vec::with_capacity(records.len());
        for (record, partition) in records.iter().zip(partitions) {
            deliveries.push(self.enqueue(producer, record, *partition).await?);
        }
        let mut positions = Vec::with_capacity(deliveries.len());
        let mut first_error = None;
        for (delivery, record) in deliveries.into_iter().zip(records) {
            let error = match delivery.await {
                Ok(Ok(delivered)) => {
                    positions.push(RecordPosition {
                        partition: delivered.partition.max(0) as u32,
                        offset: delivered.offset.max(0) as u64,
                    });
                    continue;
                }
                Ok(Err((error, _))) => error,
                Err(_canceled) => KafkaError::Canceled,
            };
            first_error.get_or_insert(Failure {
                error,
                topic: record.topic.to_string(),
            });
        }
        first_error.map_or(Ok(positions), Err)
    }

    /// Hands one record to librdkafka, waiting while its local queue is full (deliveries
    /// drain it) for at most the delivery timeout.
    async fn enqueue(
        &self,
        producer: &Client,
        record: &OutgoingRecord,
        partition: u32,
    ) -> Result<DeliveryFuture, Failure> {
        let mut message = FutureRecord::to(&record.topic)
            .payload(record.value.as_ref())
            .partition(partition as i32)
            .headers(record::to_kafka_headers(&record.headers));
        if let Some(key) = &record.key {
            message = message.key(key.as_ref());
        }
        if let Some(ts) = record.timestamp_ms {
            message = message.timestamp(ts);
        }
        let deadline = Instant::now() + self.delivery_timeout();
        loop {
            match producer.producer.send_result(message) {
                Ok(delivery) => return Ok(delivery),
                Err((e, returned))
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
                        && Instant::now() < deadline =>
                {
                    message = returned;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((error, _)) => {
                    return Err(Failure {
                        error,
                        topic: record.topic.to_string(),
                    });
                }
            }
        }
    }

    /// The [`LogError`] for a failed append, after whatever recovery the failure calls for.
    async fn classify(&self, producer: &Arc<Client>, failure: Failure) -> LogError {
        let Failure { error, topic } = failure;
        if let Some((cause, reason)) = producer.producer.client().fatal_error() {
            tracing::error!(%cause, %reason, "kafka: the producer failed fatally");
            self.replace(producer);
            return from_code(cause, Some(&topic));
        }
        let code = error.rdkafka_error_code();
        if code == Some(RDKafkaErrorCode::MessageTimedOut)
            && let Some(refusal) = producer.context.recent_refusal(self.delivery_timeout())
        {
            // The records timed out because the brokers refused the connection.
            return from_code(refusal, None);
        }
        if code == Some(RDKafkaErrorCode::TopicAuthorizationFailed) {
            self.refresh_topic(producer, &topic).await;
        }
        log_error_on(error, &topic)
    }

    /// librdkafka marks a topic refused for authorization as failed and fails every later
    /// record for it locally until its next metadata refresh (minutes away). Asking for the
    /// topic's metadata now lets the next request see the current ACLs.
    async fn refresh_topic(&self, producer: &Arc<Client>, topic: &str) {
        let (producer, topic) = (producer.clone(), topic.to_string());
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let refreshed = tokio::task::spawn_blocking(move || {
            producer
                .producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
        })
        .await;
        if let Ok(Err(e)) = refreshed {
            tracing::debug!(error = %e, "kafka: refreshing topic metadata failed");
        }
    }

    /// Replaces `failed` with a new producer, unless another append did already or the
    /// last replacement was less than [`REPLACE_AT_MOST_EVERY`] ago.
    fn replace(&self, failed: &Arc<Client>) {
        let Ok(mut replaced_at) = self.replaced_at.lock() else {
            return;
        };
        if replaced_at.is_some_and(|at| at.elapsed() < REPLACE_AT_MOST_EVERY) {
            return;
        }
        let Ok(mut current) = self.current.write() else {
            return;
        };
        if !Arc::ptr_eq(&current, failed) {
            return;
        }
        match create(&self.config) {
            Ok(fresh) => {
                tracing::warn!("kafka: replaced the fatally failed producer with a new one");
                *current = Arc::new(fresh);
                *replaced_at = Some(Instant::now());
            }
            Err(e) => tracing::error!(error = %e, "kafka: could not create a new producer"),
        }
    }

    /// Drops a replaced producer off the async threads: dropping flushes and joins threads.
    fn release(&self, producer: Arc<Client>) {
        if !Arc::ptr_eq(&producer, &self.current()) {
            tokio::task::spawn_blocking(move || drop(producer));
        }
    }

    fn delivery_timeout(&self) -> Duration {
        Duration::from_millis(self.config.delivery_timeout_ms)
    }
}

fn create(config: &KafkaConfig) -> Result<Client, LogError> {
    let context = StatsContext::new(Role::Producer);
    let producer = config
        .producer()
        .create_with_context(context.clone())
        .map_err(log_error)?;
    Ok(Client { producer, context })
}
