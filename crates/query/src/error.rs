//! Every way a query can fail, classified as the caller's fault or ours.

use clickstream_lake::LakeError;
use deltalake::arrow::error::ArrowError;
use deltalake::datafusion::error::DataFusionError;

use crate::StatementLimit;

/// Why a statement produced no result. `Display` is a message fit for the user, except for
/// [`QueryError::is_client_error`] `== false` cases, whose detail belongs in the logs.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement is well-formed but not a single read-only query (`INSERT`, `COPY … TO`,
    /// `SET`, several statements, …). The message says what was refused and why.
    #[error("{0}")]
    Rejected(String),
    /// The statement is longer or nested more deeply than the engine plans safely (see
    /// [`StatementLimit`]); the message names the limit.
    #[error("statement too complex: {limit} exceeds the limit of {max}")]
    TooComplex {
        /// Which bound was exceeded.
        limit: StatementLimit,
        /// The bound.
        max: usize,
    },
    /// The statement cannot be parsed or planned (syntax, unknown table or column, type
    /// mismatch), or fails on the data because of how it is written (a bad cast).
    #[error("invalid query: {0}")]
    Invalid(String),
    /// The statement is valid but running it failed (I/O, resources, a bug).
    #[error("query execution failed: {0}")]
    Execution(String),
    /// The lake's storage failed while the statement read it (unreachable, timed out):
    /// the same statement may succeed later.
    #[error("lake storage unavailable: {0}")]
    Unavailable(String),
    /// A lake table could not be opened or refreshed.
    #[error("lake table unavailable: {0}")]
    Lake(#[from] LakeError),
    /// The result could not be rendered in the requested format.
    #[error("could not format the result as {format}: {message}")]
    Format {
        /// The output format asked for.
        format: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl QueryError {
    /// True when the statement itself is at fault (HTTP 400): resending it will fail again.
    pub fn is_client_error(&self) -> bool {
        match self {
            QueryError::Rejected(_) | QueryError::Invalid(_) | QueryError::TooComplex { .. } => {
                true
            }
            QueryError::Execution(_)
            | QueryError::Unavailable(_)
            | QueryError::Lake(_)
            | QueryError::Format { .. } => false,
        }
    }

    /// True when retrying later may succeed (the lake's storage was unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            QueryError::Lake(e) => e.is_transient(),
            QueryError::Unavailable(_) => true,
            _ => false,
        }
    }

    /// Classifies an error raised while parsing, planning or running a statement.
    pub(crate) fn from_datafusion(error: &DataFusionError) -> Self {
        let message = error.strip_backtrace();
        match error.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_) => QueryError::Invalid(message),
            DataFusionError::ArrowError(arrow, _) if arrow_error_is_caused_by_query(arrow) => {
                QueryError::Invalid(message)
            }
            DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => {
                QueryError::Unavailable(message)
            }
            _ => QueryError::Execution(message),
        }
    }
}

/// Arrow compute errors that follow from the statement (casting `'abc'` to an integer,
/// dividing by zero), as opposed to failures of the machinery.
fn arrow_error_is_caused_by_query(error: &ArrowError) -> bool {
    matches!(
        error,
        ArrowError::CastError(_)
            | ArrowError::ParseError(_)
            | ArrowError::DivideByZero
            | ArrowError::ArithmeticOverflow(_)
            | ArrowError::InvalidArgumentError(_)
            | ArrowError::ComputeError(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_while_reading_are_transient() {
        let error = DataFusionError::IoError(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the store did not answer",
        ));
        let classified = QueryError::from_datafusion(&error);
        assert!(classified.is_transient(), "{classified}");
        assert!(!classified.is_client_error());
    }

    #[test]
    fn planning_errors_are_client_errors() {
        let error = DataFusionError::Plan("table 'nope' not found".into());
        let classified = QueryError::from_datafusion(&error);
        assert!(
            matches!(classified, QueryError::Invalid(_)),
            "{classified:?}"
        );
        assert!(classified.is_client_error());
    }

    #[test]
    fn planning_errors_wrapped_in_context_stay_client_errors() {
        let error = DataFusionError::Plan("no field named x".into()).context("while planning");
        assert!(matches!(
            QueryError::from_datafusion(&error),
            QueryError::Invalid(_)
        ));
    }

    #[test]
    fn cast_failures_are_client_errors() {
        let error = DataFusionError::from(ArrowError::CastError("cannot cast 'abc'".into()));
        assert!(QueryError::from_datafusion(&error).is_client_error());
    }

    #[test]
    fn io_failures_are_server_errors() {
        let error = DataFusionError::IoError(std::io::Error::other("disk gone"));
        let classified = QueryError::from_datafusion(&error);
        assert!(
            matches!(classified, QueryError::Unavailable(_)),
            "{classified:?}"
        );
        assert!(!classified.is_client_error());
    }
}
