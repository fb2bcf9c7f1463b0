//! Which log the pipeline runs on: the embedded one, or a Kafka cluster when
//! `kafka.bootstrap_servers` (`KAFKA_BOOTSTRAP_SERVERS`) is set.

use std::sync::Arc;

use anyhow::Context;
use clickstream_event::{LATEST_TOPIC, UNIQUE_USERS_TOPIC};
use clickstream_kafka::KafkaLog;
use clickstream_log::{EmbeddedLog, EventLog};

use crate::config::Config;

/// The opened log, and what closing it takes.
#[derive(Clone)]
pub struct OpenedLog {
    /// The log, whichever backend.
    pub log: Arc<dyn EventLog>,
    embedded: Option<Arc<EmbeddedLog>>,
}

impl OpenedLog {
    /// Flushes and closes an embedded log; a Kafka producer flushes as it drops.
    pub async fn close(&self) {
        if let Some(embedded) = &self.embedded {
            embedded.close().await;
        }
    }
}

/// Opens the configured log: Kafka when bootstrap servers are set, else the embedded
/// log in `log.dir`.
pub async fn open_log(config: &Config) -> anyhow::Result<OpenedLog> {
    if config.kafka.is_enabled() {
        let servers = config.kafka.bootstrap_servers.clone().unwrap_or_default();
        let kafka = KafkaLog::connect(config.kafka.clone())
            .await
            .with_context(|| format!("connecting to Kafka at {servers}"))?;
        tracing::info!(%servers, "log: Kafka");
        return Ok(OpenedLog {
            log: Arc::new(kafka),
            embedded: None,
        });
    }
    let mut log_config = config.log.clone();
    // The processor's own output may use the disk reserve that new events may not.
    for topic in [LATEST_TOPIC, UNIQUE_USERS_TOPIC] {
        if !log_config.derived_topics.iter().any(|t| t == topic) {
            log_config.derived_topics.push(topic.to_string());
        }
    }
    let embedded = Arc::new(
        EmbeddedLog::open(log_config)
            .await
            .with_context(|| format!("opening the log in {}", config.log.dir.display()))?,
    );
    Ok(OpenedLog {
        log: embedded.clone(),
        embedded: Some(embedded),
    })
}
