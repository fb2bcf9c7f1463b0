//! The Kafka backend's metrics, declared once: each one's name, kind, label keys and help
//! text. librdkafka's statistics arrive every few seconds per client and name brokers,
//! topics and partitions, so they are recorded here by name rather than through kept
//! handles.

use metrics::{counter, describe_counter, describe_gauge, gauge};
use rdkafka::Statistics;

/// Gauge: messages in a client's queues (librdkafka's `msg_cnt`), by [`ROLE`].
pub const QUEUED_MESSAGES: &str = "clickstream_kafka_queued_messages";
/// Gauge: bytes of the messages in a client's queues (`msg_size`), by [`ROLE`].
pub const QUEUED_BYTES: &str = "clickstream_kafka_queued_bytes";
/// Gauge (librdkafka keeps the count): messages sent to brokers (`txmsgs`), by [`ROLE`].
pub const SENT_MESSAGES: &str = "clickstream_kafka_sent_messages_total";
/// Gauge (librdkafka keeps the count): messages received from brokers (`rxmsgs`), by
/// [`ROLE`].
pub const RECEIVED_MESSAGES: &str = "clickstream_kafka_received_messages_total";
/// Gauge: 1 while a client's connection to a broker is up, by [`ROLE`] and [`BROKER`].
pub const BROKER_UP: &str = "clickstream_kafka_broker_up";
/// Gauge: average round trip of a client's requests to a broker, by [`ROLE`] and
/// [`BROKER`].
pub const BROKER_RTT: &str = "clickstream_kafka_broker_rtt_seconds";
/// Gauge (librdkafka keeps the count): a client's requests to a broker that timed out, by
/// [`ROLE`] and [`BROKER`].
pub const BROKER_REQUEST_TIMEOUTS: &str = "clickstream_kafka_broker_request_timeouts_total";
/// Gauge: the group consumer's lag as librdkafka reports it, by [`TOPIC`] and
/// [`PARTITION`].
pub const CONSUMER_LAG: &str = "clickstream_kafka_consumer_lag";
/// Counter: appends to Kafka that failed.
pub const PRODUCE_FAILURES: &str = "clickstream_kafka_produce_failures_total";

/// Label key: the client's [`Role`].
pub const ROLE: &str = "role";
/// Label key: the broker's `host:port/id` as librdkafka names it.
pub const BROKER: &str = "broker";
/// Label key: a topic's name.
pub const TOPIC: &str = "topic";
/// Label key: a partition's number.
pub const PARTITION: &str = "partition";

/// Help texts of the Kafka backend's metrics, shown as `# HELP` lines.
pub fn describe() {
    describe_gauge!(
        QUEUED_MESSAGES,
        "messages in a Kafka client's queues (librdkafka's msg_cnt), by client role"
    );
    describe_gauge!(
        QUEUED_BYTES,
        "bytes of the messages in a Kafka client's queues (librdkafka's msg_size), by client \
         role"
    );
    describe_gauge!(
        SENT_MESSAGES,
        "messages a Kafka client has sent to brokers since it started (librdkafka's txmsgs), \
         by client role"
    );
    describe_gauge!(
        RECEIVED_MESSAGES,
        "messages a Kafka client has received from brokers since it started (librdkafka's \
         rxmsgs), by client role"
    );
    describe_gauge!(
        BROKER_UP,
        "1 while a Kafka client's connection to a broker is up, else 0, by client role and \
         broker"
    );
    describe_gauge!(
        BROKER_RTT,
        "average round trip of a Kafka client's requests to a broker, by client role and \
         broker"
    );
    describe_gauge!(
        BROKER_REQUEST_TIMEOUTS,
        "requests of a Kafka client to a broker that timed out since it started, by client \
         role and broker"
    );
    describe_gauge!(
        CONSUMER_LAG,
        "the processor's lag as librdkafka reports it from offsets committed to Kafka \
         (informational: positions live in the lake), by topic and partition"
    );
    describe_counter!(
        PRODUCE_FAILURES,
        "appends to Kafka that failed (the request was answered with the error)"
    );
}

/// What a Kafka client is for: the [`ROLE`] label of its statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The idempotent producer behind `append`.
    Producer,
    /// A group consumer (the processor's).
    Consumer,
    /// The admin client (topic creation).
    Admin,
    /// The group-less consumer for metadata, watermarks and group lists.
    Metadata,
    /// The group-less consumer for reads from an offset (the UI's browser, tests, tools).
    Reader,
    /// A consumer that commits or reads a group's offsets.
    Offsets,
}

impl Role {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Admin => "admin",
            Role::Metadata => "metadata",
            Role::Reader => "reader",
            Role::Offsets => "offsets",
        }
    }
}

/// Sets the gauges of one client's statistics.
pub(crate) fn statistics(role: Role, stats: &Statistics) {
    let role_label = role.as_str();
    gauge!(QUEUED_MESSAGES, ROLE => role_label).set(stats.msg_cnt as f64);
    gauge!(QUEUED_BYTES, ROLE => role_label).set(stats.msg_size as f64);
    gauge!(SENT_MESSAGES, ROLE => role_label).set(stats.txmsgs as f64);
    gauge!(RECEIVED_MESSAGES, ROLE => role_label).set(stats.rxmsgs as f64);
    for broker in stats.brokers.values().filter(|b| b.nodeid >= 0) {
        let name = broker.nodename.clone();
        gauge!(BROKER_UP, ROLE => role_label, BROKER => name.clone())
            .set(if broker.state == "UP" { 1.0 } else { 0.0 });
        if let Some(rtt) = &broker.rtt {
            gauge!(BROKER_RTT, ROLE => role_label, BROKER => name.clone())
                .set(rtt.avg as f64 / 1e6);
        }
        gauge!(BROKER_REQUEST_TIMEOUTS, ROLE => role_label, BROKER => name)
            .set(broker.req_timeouts as f64);
    }
    if role == Role::Consumer {
        for topic in stats.topics.values() {
            for partition in topic.partitions.values().filter(|p| p.partition >= 0) {
                if partition.consumer_lag >= 0 {
                    gauge!(
                        CONSUMER_LAG,
                        TOPIC => topic.topic.clone(),
                        PARTITION => partition.partition.to_string()
                    )
                    .set(partition.consumer_lag as f64);
                }
            }
        }
    }
}

/// Counts an append that failed.
pub(crate) fn produce_failed() {
    counter!(PRODUCE_FAILURES).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_the_label_values_dashboards_know() {
        let roles = [
            Role::Producer,
            Role::Consumer,
            Role::Admin,
            Role::Metadata,
            Role::Reader,
            Role::Offsets,
        ];
        assert_eq!(
            roles.map(Role::as_str),
            [
                "producer", "consumer", "admin", "metadata", "reader", "offsets"
            ]
        );
    }
}
