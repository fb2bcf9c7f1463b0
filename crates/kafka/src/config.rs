//! Configuration of the Kafka backend.

use clickstream_secret::Settings;
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// How to reach the Kafka cluster and how to produce and consume. Any librdkafka setting
/// (<https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md>) can be passed
/// through `options` (all clients), `producer_options` or `consumer_options`; those win
/// over what clickstream sets itself. Values of credential-like settings (`sasl.password`,
/// `ssl.key.password`, `sasl.oauthbearer.client.secret`...) are held as secrets: librdkafka
/// gets them, printed configs and logs show them redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port` list (`KAFKA_BOOTSTRAP_SERVERS`). Set: the log is this Kafka cluster.
    pub bootstrap_servers: Option<String>,
    /// Compression of produced batches: `zstd`, `lz4`, `snappy`, `gzip` or `none`.
    pub compression: String,
    /// How long the producer may try to deliver a record before the HTTP request that
    /// carries it fails with 503 (librdkafka `message.timeout.ms`).
    pub delivery_timeout_ms: u64,
    /// How long the producer waits to fill a batch (librdkafka `linger.ms`).
    pub linger_ms: u64,
    /// Deadline of admin and metadata requests (topic creation, offsets, group lists).
    pub request_timeout_ms: u64,
    /// Largest record accepted, in bytes; larger ones are refused before producing.
    /// Keep it at or below the brokers' `message.max.bytes`.
    pub max_record_bytes: usize,
    /// How often librdkafka reports statistics, exported as metrics (0: never).
    pub statistics_interval_ms: u64,
    /// librdkafka settings for every client (security, SASL, client.id...).
    pub options: Settings,
    /// librdkafka settings for the producer only.
    pub producer_options: Settings,
    /// librdkafka settings for consumers only.
    pub consumer_options: Settings,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: None,
            compression: "zstd".to_string(),
            delivery_timeout_ms: 10_000,
            linger_ms: 5,
            request_timeout_ms: 10_000,
            max_record_bytes: 1_000_000,
            statistics_interval_ms: 5_000,
            options: Settings::new(),
            producer_options: Settings::new(),
            consumer_options: Settings::new(),
        }
    }
}

impl KafkaConfig {
    /// Whether a cluster is configured.
    pub fn is_enabled(&self) -> bool {
        self.bootstrap_servers
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set(
            "bootstrap.servers",
            self.bootstrap_servers.as_deref().unwrap_or_default(),
        );
        config.set(
            "statistics.interval.ms",
            self.statistics_interval_ms.to_string(),
        );
        config.set("client.id", "clickstream");
        config
    }

    /// The producer's settings: idempotent, every in-sync replica acknowledges, records
    /// compressed, then the operator's overrides.
    pub fn producer(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", &self.compression)
            .set("linger.ms", self.linger_ms.to_string())
            .set("message.timeout.ms", self.delivery_timeout_ms.to_string())
            .set(
                "message.max.bytes",
                (self.max_record_bytes + 1024).to_string(),
            );
        apply(&mut config, &self.options);
        apply(&mut config, &self.producer_options);
        config
    }

    /// A consumer's settings: no automatic commits or offset stores (positions come from
    /// the lake), earliest offset for a new group, eager rebalancing, a 10 s session
    /// timeout, then the overrides.
    pub fn consumer(&self, group: Option<&str>) -> ClientConfig {
        let mut config = self.base();
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("partition.assignment.strategy", "range,roundrobin")
            // A member that died is noticed after 10 s rather than Kafka's default 45 s, so
            // its partitions move to the survivors quickly.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "3000");
        // librdkafka wants a group id on every consumer; group-less uses (reads from an
        // offset, watermarks) get one that never joins or commits.
        config.set("group.id", group.unwrap_or("clickstream-reader"));
        apply(&mut config, &self.options);
        apply(&mut config, &self.consumer_options);
        config
    }

    /// Settings of the admin client.
    pub fn admin(&self) -> ClientConfig {
        let mut config = self.base();
        apply(&mut config, &self.options);
        config
    }

    pub(crate) fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }
}

/// Hands the settings, secrets included, to librdkafka.
fn apply(config: &mut ClientConfig, options: &Settings) {
    for (key, value) in options.exposed() {
        config.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_options_win_over_ours() {
        let mut config = KafkaConfig {
            bootstrap_servers: Some("k1:9092,k2:9092".into()),
            ..KafkaConfig::default()
        };
        config.producer_options.insert("compression.type", "lz4");
        config.options.insert("sasl.password", "hunter2");
        let producer = config.producer();
        assert_eq!(producer.get("compression.type"), Some("lz4"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("bootstrap.servers"), Some("k1:9092,k2:9092"));
        let consumer = config.consumer(Some("g"));
        assert_eq!(consumer.get("group.id"), Some("g"));
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!(consumer.get("compression.type"), None);
    }

    #[test]
    fn secret_settings_reach_librdkafka_but_are_never_printed() {
        let mut config = KafkaConfig::default();
        config.options.insert("sasl.username", "alice");
        config.options.insert("sasl.password", "hunter2");
        config
            .producer_options
            .insert("ssl.key.password", "pem-pass");
        config
            .consumer_options
            .insert("sasl.oauthbearer.client.secret", "oauth-secret");
        assert_eq!(config.admin().get("sasl.password"), Some("hunter2"));
        assert_eq!(config.producer().get("ssl.key.password"), Some("pem-pass"));
        assert_eq!(
            config.consumer(None).get("sasl.oauthbearer.client.secret"),
            Some("oauth-secret")
        );
        let debug = format!("{config:?}");
        let json = serde_json::to_string(&config).expect("json");
        for printed in [debug, json] {
            for secret in ["hunter2", "pem-pass", "oauth-secret"] {
                assert!(!printed.contains(secret), "{printed}");
            }
            assert!(printed.contains("alice"), "{printed}");
        }
    }
}
