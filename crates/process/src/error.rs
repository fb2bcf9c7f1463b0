//! Errors of the processor, classified: transient ones are retried with backoff (the
//! stream waits), the others stop the processor with the reason.

use clickstream_lake::LakeError;
use clickstream_log::LogError;
use clickstream_registry::RegistryError;

/// What can stop or delay the processor. A record that cannot be decoded is not an error:
/// it becomes a dead letter.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The log failed (reading, appending to the latest topic, committing).
    #[error("event log: {0}")]
    Log(#[from] LogError),
    /// The registry could not be asked for a schema.
    #[error("schema registry: {0}")]
    Registry(#[from] RegistryError),
    /// A lake table could not be read or written.
    #[error("lake: {0}")]
    Lake(#[from] LakeError),
    /// Derived state (unique users) could not be rebuilt or updated.
    #[error("state: {0}")]
    State(String),
    /// Derived state could not be rebuilt because the lake was unreachable for a moment.
    #[error("state: {0}")]
    StateUnavailable(String),
    /// A batch's `events` files could not be written: the batch is read again from the
    /// log ([`crate::events_files`]).
    #[error("writing the batch's events files: {0}")]
    EventsUnwritten(LakeError),
    /// A bug: a value the processor built could not be encoded.
    #[error("internal: {0}")]
    Internal(String),
}

impl ProcessError {
    /// Whether waiting and retrying may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ProcessError::Log(e) => e.is_transient(),
            ProcessError::Registry(e) => e.is_transient(),
            ProcessError::Lake(e) | ProcessError::EventsUnwritten(e) => e.is_transient(),
            ProcessError::StateUnavailable(_) => true,
            ProcessError::State(_) | ProcessError::Internal(_) => false,
        }
    }
}

impl ProcessError {
    /// A failed query for derived state: transient when the lake was unreachable.
    pub(crate) fn state_query(what: &str, error: &clickstream_query::QueryError) -> Self {
        let message = format!("{what}: {error}");
        if error.is_transient() {
            ProcessError::StateUnavailable(message)
        } else {
            ProcessError::State(message)
        }
    }
}
