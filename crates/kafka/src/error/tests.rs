use rdkafka::types::RDKafkaConfRes;

use super::*;

fn produced(code: RDKafkaErrorCode) -> LogError {
    log_error(KafkaError::MessageProduction(code))
}

#[test]
fn outages_and_moves_are_transient() {
    for code in [
        RDKafkaErrorCode::AllBrokersDown,
        RDKafkaErrorCode::BrokerTransportFailure,
        RDKafkaErrorCode::MessageTimedOut,
        RDKafkaErrorCode::RequestTimedOut,
        RDKafkaErrorCode::NotLeaderForPartition,
        RDKafkaErrorCode::LeaderNotAvailable,
        RDKafkaErrorCode::CoordinatorLoadInProgress,
        RDKafkaErrorCode::NotCoordinator,
        RDKafkaErrorCode::QueueFull,
        RDKafkaErrorCode::ThrottlingQuotaExceeded,
        RDKafkaErrorCode::NetworkException,
        RDKafkaErrorCode::NotEnoughReplicas,
        RDKafkaErrorCode::KafkaStorageError,
    ] {
        let error = produced(code);
        assert!(
            matches!(error, LogError::Unavailable(_)),
            "{code:?}: {error}"
        );
        assert!(error.is_transient(), "{code:?}");
    }
}

#[test]
fn idempotence_errors_are_transient_because_the_producer_is_replaced() {
    for code in [
        RDKafkaErrorCode::OutOfOrderSequenceNumber,
        RDKafkaErrorCode::UnknownProducerId,
        RDKafkaErrorCode::InvalidProducerEpoch,
        RDKafkaErrorCode::GaplessGuarantee,
    ] {
        assert_eq!(class_of(code), ErrorClass::Transient, "{code:?}");
    }
}

#[test]
fn authorization_and_authentication_failures_are_unauthorized() {
    for code in [
        RDKafkaErrorCode::TopicAuthorizationFailed,
        RDKafkaErrorCode::ClusterAuthorizationFailed,
        RDKafkaErrorCode::GroupAuthorizationFailed,
        RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
        RDKafkaErrorCode::SaslAuthenticationFailed,
        RDKafkaErrorCode::Authentication,
        RDKafkaErrorCode::UnsupportedSASLMechanism,
    ] {
        let error = produced(code);
        assert!(
            matches!(error, LogError::Unauthorized(_)),
            "{code:?}: {error}"
        );
        assert!(!error.is_transient(), "{code:?}");
    }
}

#[test]
fn oversized_records_are_the_requests_fault() {
    for code in [
        RDKafkaErrorCode::MessageSizeTooLarge,
        RDKafkaErrorCode::MessageBatchTooLarge,
    ] {
        let error = produced(code);
        assert!(
            matches!(error, LogError::RecordsTooLarge(_)),
            "{code:?}: {error}"
        );
        assert!(!error.is_transient(), "{code:?}");
    }
}

#[test]
fn unsupported_features_are_unsupported() {
    for code in [
        RDKafkaErrorCode::UnsupportedVersion,
        RDKafkaErrorCode::UnsupportedFeature,
        RDKafkaErrorCode::UnsupportedCompressionType,
        RDKafkaErrorCode::UnsupportedForMessageFormat,
    ] {
        let error = produced(code);
        assert!(
            matches!(error, LogError::Unsupported(_)),
            "{code:?}: {error}"
        );
        assert!(!error.is_transient(), "{code:?}");
    }
}

#[test]
fn deployment_faults_are_misconfigured() {
    for code in [
        RDKafkaErrorCode::InvalidTopic,
        RDKafkaErrorCode::PolicyViolation,
        RDKafkaErrorCode::InvalidRecord,
        RDKafkaErrorCode::InvalidRequiredAcks,
        RDKafkaErrorCode::FencedInstanceId,
    ] {
        let error = produced(code);
        assert!(
            matches!(error, LogError::Misconfigured(_)),
            "{code:?}: {error}"
        );
        assert!(!error.is_transient(), "{code:?}");
    }
}

#[test]
fn invalid_requests_are_invalid_requests() {
    let error = produced(RDKafkaErrorCode::InvalidTimestamp);
    assert!(matches!(error, LogError::InvalidRequest(_)), "{error}");
    assert!(!error.is_transient());
}

#[test]
fn unknown_topic_names_the_topic_when_known() {
    let error = log_error_on(
        KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition),
        "raw",
    );
    assert!(
        matches!(&error, LogError::UnknownTopic(t) if t == "raw"),
        "{error}"
    );
    let error = produced(RDKafkaErrorCode::UnknownTopic);
    assert!(matches!(error, LogError::Misconfigured(_)), "{error}");
    assert!(!error.is_transient());
}

#[test]
fn unknown_codes_are_not_retried() {
    for code in [
        RDKafkaErrorCode::Fail,
        RDKafkaErrorCode::Fatal,
        RDKafkaErrorCode::InvalidArgument,
        RDKafkaErrorCode::Unknown,
    ] {
        let error = produced(code);
        assert!(matches!(error, LogError::Kafka(_)), "{code:?}: {error}");
        assert!(!error.is_transient(), "{code:?}");
    }
}

#[test]
fn purged_requests_mean_the_client_closed() {
    assert!(matches!(
        produced(RDKafkaErrorCode::PurgeQueue),
        LogError::Closed
    ));
    assert!(matches!(log_error(KafkaError::Canceled), LogError::Closed));
}

#[test]
fn a_fatal_consumer_error_is_permanent_even_for_a_transient_code() {
    let error = log_error(KafkaError::MessageConsumptionFatal(
        RDKafkaErrorCode::BrokerTransportFailure,
    ));
    assert!(!error.is_transient(), "{error}");
    let error = log_error(KafkaError::MessageConsumptionFatal(
        RDKafkaErrorCode::FencedInstanceId,
    ));
    assert!(matches!(error, LogError::Misconfigured(_)), "{error}");
}

#[test]
fn consumer_errors_are_classified_like_produce_errors() {
    let error = log_error(KafkaError::MessageConsumption(
        RDKafkaErrorCode::TopicAuthorizationFailed,
    ));
    assert!(matches!(error, LogError::Unauthorized(_)), "{error}");
    let error = log_error(KafkaError::MessageConsumption(
        RDKafkaErrorCode::RequestTimedOut,
    ));
    assert!(error.is_transient(), "{error}");
}

#[test]
fn messages_say_what_kafka_refused_in_plain_words() {
    let error = log_error_on(
        KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed),
        "raw",
    );
    assert_eq!(
        error.to_string(),
        "not authorized: kafka refused: topic authorization failed (topic raw)"
    );
    assert_eq!(
        describe(RDKafkaErrorCode::MessageTimedOut),
        "kafka: message timed out"
    );
    assert_eq!(
        describe(RDKafkaErrorCode::MessageSizeTooLarge),
        "kafka refused: message size too large"
    );
}

#[test]
fn invalid_secret_settings_are_named_without_their_value() {
    let error = log_error(KafkaError::ClientConfig(
        RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
        "Invalid value \"hunter2\" for configuration property \"sasl.password\"".into(),
        "sasl.password".into(),
        "hunter2".into(),
    ));
    assert!(matches!(error, LogError::Misconfigured(_)), "{error}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(error.to_string().contains("sasl.password"), "{error}");
}

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
