//! librdkafka errors as [`LogError`]s, classified by what the caller should do about them:
//! wait and retry (transient), change the request, or fix the deployment.
//!
//! Only outages are transient: ingest answers them 503 with `Retry-After` and the processor
//! waits them out. Everything else is permanent, so a client is not told to retry for ever
//! and the processor stops with the reason instead of looping. librdkafka already retries
//! what it can (leader moves, timeouts) within `message.timeout.ms`; what reaches us after
//! that is its verdict, or an outage that outlasted the deadline.

use clickstream_log::LogError;
use clickstream_secret::{REDACTED, is_secret_key};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What an error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Waiting may help: broker down, timeouts, leader moves, coordinator loading, full
    /// queue, throttling, network, or an idempotence error that a new producer clears.
    Transient,
    /// The records are larger than the brokers or the topic accept: the request's fault.
    TooLarge,
    /// The request is wrong as sent (an offset or timestamp out of range).
    InvalidRequest,
    /// Authentication or authorization refused: a deployment fault.
    Unauthorized,
    /// The cluster lacks a feature or protocol version the client needs: a deployment fault.
    Unsupported,
    /// The topic or partition does not exist: a deployment fault (topics are created by the
    /// operator or at start-up).
    UnknownTopic,
    /// The cluster or client configuration cannot serve the request: a deployment fault.
    Misconfigured,
    /// The client is shutting down or dropped the request.
    Closed,
    /// A client bug, a fatal state whose cause is looked up separately, or a code this
    /// table does not know.
    Unexpected,
}

impl ErrorClass {
    /// Whether retrying may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorClass::Transient | ErrorClass::Closed)
    }
}

/// The class of a librdkafka error code (local codes are negative, broker codes positive).
pub fn class_of(code: RDKafkaErrorCode) -> ErrorClass {
    use ErrorClass::*;
    use RDKafkaErrorCode as C;
    match code {
        // Outages and moves that librdkafka or a later attempt gets past.
        C::BrokerTransportFailure
        | C::Resolve
        | C::AllBrokersDown
        | C::MessageTimedOut
        | C::OperationTimedOut
        | C::TimedOutQueue
        | C::RequestTimedOut
        | C::NetworkException
        | C::QueueFull
        | C::ThrottlingQuotaExceeded
        | C::BrokerNotAvailable
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::ReplicaNotAvailable
        | C::PreferredLeaderNotAvailable
        | C::EligibleLeadersNotAvailable
        | C::ElectionNotNeeded
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::OffsetNotAvailable
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::ISRInsufficient
        | C::KafkaStorageError
        | C::ReassignmentInProgress
        | C::ListenerNotFound
        | C::NotController
        | C::StaleControllerEpoch
        | C::StaleBrokerEpoch
        | C::CoordinatorLoadInProgress
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::WaitingForCoordinator
        | C::RebalanceInProgress
        | C::IllegalGeneration
        | C::UnknownMemberId
        | C::MemberIdRequired
        | C::FencedMemberEpoch
        | C::StaleMemberEpoch
        | C::UnknownSubscriptionId
        | C::UnstableOffsetCommit
        | C::AssignPartitions
        | C::RevokePartitions
        | C::AssignmentLost
        | C::PollExceeded
        | C::FetchSessionIdNotFound
        | C::InvalidFetchSessionEpoch
        | C::ConcurrentTransactions
        | C::TransactionCoordinatorFenced
        | C::OperationNotAttempted
        | C::InvalidMessage
        | C::BrokerDestroy
        | C::DestroyBroker
        | C::UnknownBroker
        | C::NodeUpdate
        | C::InProgress
        | C::PreviousInProgress
        | C::Outdated
        | C::WaitCache
        | C::Interrupted
        | C::Retry
        | C::Partial
        | C::Noop
        | C::PartitionEOF
        | C::TelemetryTooLarge
        | C::RebootstrapRequired => Transient,
        // The idempotent producer's sequence and epoch errors: librdkafka declares the
        // producer fatally failed, and a new producer (new producer id) starts clean. See
        // `produce::Producer`.
        C::OutOfOrderSequenceNumber
        | C::DuplicateSequenceNumber
        | C::UnknownProducerId
        | C::InvalidProducerEpoch
        | C::ProducerFenced
        | C::Fenced
        | C::GaplessGuarantee => Transient,
        C::MessageSizeTooLarge | C::MessageBatchTooLarge => TooLarge,
        C::OffsetOutOfRange
        | C::InvalidTimestamp
        | C::OffsetMetadataTooLarge
        | C::InvalidCommitOffsetSize
        | C::TopicAlreadyExists
        | C::NonEmptyGroup
        | C::GroupIdNotFound
        | C::GroupSubscribedToTopic
        | C::NoReassignmentInProgress
        | C::DuplicateResource => InvalidRequest,
        C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::DelegationTokenAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::SSL
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::UnacceptableCredential
        | C::PrincipalDeserializationFailure
        | C::InvalidPrincipalType
        | C::DelegationTokenNotFound
        | C::DelegationTokenOwnerMismatch
        | C::DelegationTokenRequestNotAllowed
        | C::DelegationTokenExpired => Unauthorized,
        C::UnsupportedVersion
        | C::UnsupportedFeature
        | C::UnsupportedForMessageFormat
        | C::UnsupportedCompressionType
        | C::UnsupportedAssignor
        | C::BadCompression
        | C::NotImplemented
        | C::UnknownProtocol
        | C::SecurityDisabled
        | C::DelegationTokenAuthDisabled
        | C::TopicDeletionDisabled => Unsupported,
        C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition | C::UnknownTopicId => {
            UnknownTopic
        }
        C::InvalidTopic
        | C::InvalidRecord
        | C::InvalidRequiredAcks
        | C::InvalidPartitions
        | C::InvalidReplicationFactor
        | C::InvalidReplicaAssignment
        | C::InvalidConfig
        | C::PolicyViolation
        | C::LogDirNotFound
        | C::ResourceNotFound
        | C::InvalidGroupId
        | C::InconsistentGroupProtocol
        | C::InvalidSessionTimeout
        | C::GroupMaxSizeReached
        | C::FencedInstanceId
        | C::UnreleasedInstanceId
        | C::UnknownGroup
        | C::NotConfigured
        | C::FileSystem => Misconfigured,
        C::PurgeQueue | C::PurgeInflight => Closed,
        _ => Unexpected,
    }
}

/// Maps a librdkafka error onto the log's error type.
pub fn log_error(error: KafkaError) -> LogError {
    to_log_error(&error, None)
}

/// [`log_error`] for an operation on `topic`, which the message then names.
pub fn log_error_on(error: KafkaError, topic: &str) -> LogError {
    to_log_error(&error, Some(topic))
}

fn to_log_error(error: &KafkaError, topic: Option<&str>) -> LogError {
    if let KafkaError::MessageConsumptionFatal(code) = error {
        // The consumer is finished whatever the cause: nothing it does later can succeed.
        let detail = format!("{} (fatal: the consumer cannot go on)", describe(*code));
        return match class_of(*code) {
            class if class.is_transient() => LogError::Kafka(detail),
            class => from_class(class, detail, topic),
        };
    }
    match error.rdkafka_error_code() {
        Some(code) => from_code(code, topic),
        None => without_code(error),
    }
}

/// The [`LogError`] for an error code, with the topic named when known.
pub fn from_code(code: RDKafkaErrorCode, topic: Option<&str>) -> LogError {
    from_class(class_of(code), describe(code), topic)
}

fn from_class(class: ErrorClass, detail: String, topic: Option<&str>) -> LogError {
    let detail = match topic {
        Some(topic) => format!("{detail} (topic {topic})"),
        None => detail,
    };
    match class {
        ErrorClass::Transient => LogError::Unavailable(detail),
        ErrorClass::Closed => LogError::Closed,
        ErrorClass::TooLarge => LogError::RecordsTooLarge(detail),
        ErrorClass::InvalidRequest => LogError::InvalidRequest(detail),
        ErrorClass::Unauthorized => LogError::Unauthorized(detail),
        ErrorClass::Unsupported => LogError::Unsupported(detail),
        ErrorClass::UnknownTopic => match topic {
            Some(topic) => LogError::UnknownTopic(topic.to_string()),
            // Kafka did not say which: the message says what it refused.
            None => LogError::Misconfigured(detail),
        },
        ErrorClass::Misconfigured => LogError::Misconfigured(detail),
        ErrorClass::Unexpected => LogError::Kafka(detail),
    }
}

/// Errors that carry no librdkafka code: client creation and API misuse.
fn without_code(error: &KafkaError) -> LogError {
    match error {
        // The description can quote the value; values of secret settings stay out.
        KafkaError::ClientConfig(_, description, key, value) => {
            LogError::Misconfigured(config_error(description, key, value))
        }
        KafkaError::ClientCreation(reason) => {
            LogError::Misconfigured(format!("creating the kafka client: {reason}"))
        }
        KafkaError::Canceled => LogError::Closed,
        KafkaError::NoMessageReceived | KafkaError::PartitionEOF(_) => {
            LogError::Unavailable("kafka: nothing received".into())
        }
        KafkaError::Nul(_) => LogError::InvalidRequest("a name contains a NUL byte".into()),
        other => LogError::Kafka(other.to_string()),
    }
}

/// `kafka refused: <what>` for a broker's answer, `kafka: <what>` for the client's own
/// verdict, with librdkafka's description of the code (never a broker's free text).
pub fn describe(code: RDKafkaErrorCode) -> String {
    let text = code.to_string();
    // Display is `Name (Broker: Description)` or `Name (Local: Description)`.
    let description = text
        .split_once(" (")
        .map_or(text.as_str(), |(_, d)| d.strip_suffix(')').unwrap_or(d));
    let (source, description) = match description.split_once(": ") {
        Some(("Broker", d)) => ("kafka refused", d),
        Some(("Local", d)) => ("kafka", d),
        _ => ("kafka", description),
    };
    format!("{source}: {}", lowercase_first_word(description))
}

/// `Topic authorization failed` → `topic authorization failed`; acronyms (`SASL`) stay.
fn lowercase_first_word(text: &str) -> String {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => first
            .to_lowercase()
            .chain(text[first.len_utf8()..].chars())
            .collect(),
        _ => text.to_string(),
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
mod tests;
