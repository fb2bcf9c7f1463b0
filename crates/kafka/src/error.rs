//! librdkafka errors as [`LogError`]s, classified so that ingest answers 503 and the
//! processor retries where waiting can help.

use clickstream_log::LogError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Maps a librdkafka error onto the log's error type.
pub fn log_error(error: KafkaError) -> LogError {
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
