//! librdkafka errors as [`LogError`]s, classified so that ingest answers 503 and the
//! processor retries where waiting can help.

use clickstream_log::LogError;
use clickstream_secret::{REDACTED, is_secret_key};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Maps a librdkafka error onto the log's error type.
pub fn log_error(error: KafkaError) -> LogError {
    if let KafkaError::ClientConfig(_, description, key, value) = &error {
        return LogError::Kafka(config_error(description, key, value));
    }
    let code = error.rdkafka_error_code();
    match code {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            LogError::Kafka(format!("unknown topic or partition: {error}"))
        }
        Some(
            RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::BrokerNotAvailable
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::NotEnoughReplicas
            | RDKafkaErrorCode::NotEnoughReplicasAfterAppend
            | RDKafkaErrorCode::QueueFull
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotCoordinator,
        ) => LogError::Unavailable(format!("kafka: {error}")),
        _ => LogError::Kafka(error.to_string()),
    }
}

/// A rejected setting, described without its value when the value is a secret (rdkafka's
/// own message shows the value, and librdkafka's description may quote it).
fn config_error(description: &str, key: &str, value: &str) -> String {
    if !is_secret_key(key) {
        return format!("kafka setting {key} = {value:?} rejected: {description}");
    }
    let description = if value.is_empty() {
        description.to_owned()
    } else {
        description.replace(value, REDACTED)
    };
    format!("kafka setting {key} rejected: {description}")
}

#[cfg(test)]
mod tests {
    use rdkafka::types::RDKafkaConfRes;

    use super::*;

    #[test]
    fn rejected_secret_settings_are_reported_without_their_value() {
        let error = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"hunter2\" for configuration property \"sasl.password\"".into(),
            "sasl.password".into(),
            "hunter2".into(),
        );
        let message = log_error(error).to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("sasl.password"), "{message}");
        let error = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value".into(),
            "acks".into(),
            "most".into(),
        );
        assert!(log_error(error).to_string().contains("\"most\""));
    }
}
