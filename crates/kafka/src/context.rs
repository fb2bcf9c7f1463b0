//! librdkafka callbacks: statistics exported as metrics, and rebalances turned into
//! [`ConsumerEvent`]s.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clickstream_log::{ConsumerEvent, TopicPartition};
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Statistics, TopicPartitionList};

use crate::error::{ErrorClass, class_of};
use crate::metrics::Role;

/// Context of every client: exports librdkafka's statistics as `clickstream_kafka_*`
/// gauges, labelled by client role, and remembers the last refusal librdkafka reported
/// outside any request (see [`StatsContext::recent_refusal`]).
#[derive(Clone)]
pub struct StatsContext {
    role: Role,
    refusal: Arc<Mutex<Option<(RDKafkaErrorCode, Instant)>>>,
}

impl StatsContext {
    /// A context for a client playing `role`.
    pub fn new(role: Role) -> Self {
        StatsContext {
            role,
            refusal: Arc::default(),
        }
    }

    /// The permanent error (authentication, TLS, unsupported feature, configuration) the
    /// client reported within `within`, if any. A SASL or TLS failure never fails a
    /// produce request itself: the connection drops and the records time out. This is
    /// how a timeout is told apart from an outage.
    pub fn recent_refusal(&self, within: Duration) -> Option<RDKafkaErrorCode> {
        let refusal = *self.refusal.lock().ok()?;
        refusal
            .filter(|(_, at)| at.elapsed() <= within)
            .map(|(code, _)| code)
    }
}

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        crate::metrics::statistics(self.role, &statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(role = self.role.as_str(), %error, reason, "kafka client error");
        let Some(code) = error.rdkafka_error_code() else {
            return;
        };
        if matches!(
            class_of(code),
            ErrorClass::Unauthorized | ErrorClass::Unsupported | ErrorClass::Misconfigured
        ) && let Ok(mut refusal) = self.refusal.lock()
        {
            *refusal = Some((code, Instant::now()));
        }
    }
}

impl ConsumerContext for StatsContext {}

/// Rebalance events seen by a consumer, waiting for its `poll` to hand them out.
pub type RebalanceQueue = Arc<Mutex<VecDeque<ConsumerEvent>>>;

/// Context of a group consumer: statistics, plus each rebalance queued as
/// [`ConsumerEvent::Revoked`] / [`ConsumerEvent::Assigned`].
pub struct GroupContext {
    stats: StatsContext,
    events: RebalanceQueue,
}

impl GroupContext {
    /// A context queueing rebalances into `events`.
    pub fn new(events: RebalanceQueue) -> Self {
        GroupContext {
            stats: StatsContext::new(Role::Consumer),
            events,
        }
    }
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        self.stats.stats(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.stats.error(error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions = partitions_of(tpl);
            tracing::info!(?partitions, "kafka: partitions revoked");
            self.push(ConsumerEvent::Revoked(partitions));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = partitions_of(tpl);
                tracing::info!(?partitions, "kafka: partitions assigned");
                self.push(ConsumerEvent::Assigned(partitions));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "kafka: rebalance failed"),
        }
    }
}

impl GroupContext {
    fn push(&self, event: ConsumerEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push_back(event);
        }
    }
}

/// The topic partitions of a list, sorted.
pub fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    let mut partitions: Vec<TopicPartition> = tpl
        .elements()
        .iter()
        .filter(|e| e.partition() >= 0)
        .map(|e| TopicPartition::new(e.topic(), e.partition() as u32))
        .collect();
    partitions.sort();
    partitions
}
