//! Every way a query can fail, classified as the caller's fault or ours.

use std::fmt;
use std::time::Duration;

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
    /// The statement ran longer than `query.statement_timeout_ms` (waiting for a slot
    /// included) and was cancelled.
    #[error(
        "statement timeout: cancelled after {} (query.statement_timeout_ms); filter or \
         aggregate more, or raise the limit",
        Human(*limit)
    )]
    Timeout {
        /// The timeout.
        limit: Duration,
    },
    /// The statement's operators needed more memory than `query.memory_limit_bytes` (it
    /// alone is stopped; nothing spills to disk).
    #[error(
        "memory limit exceeded: the statement needed more than {} \
         (query.memory_limit_bytes) and was stopped; filter first, group by fewer values, \
         or raise the limit ({detail})",
        Human(*limit_bytes)
    )]
    MemoryLimit {
        /// The limit, in bytes.
        limit_bytes: u64,
        /// What asked for more memory, in DataFusion's words.
        detail: String,
    },
    /// The result has more rows or bytes than the result limits allow; the statement was
    /// stopped there.
    #[error("result too large: more than {limit}; add a LIMIT, select fewer columns or aggregate")]
    ResultTooLarge {
        /// The limit that was crossed.
        limit: ResultLimit,
    },
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
            QueryError::Rejected(_)
            | QueryError::Invalid(_)
            | QueryError::TooComplex { .. }
            | QueryError::Timeout { .. }
            | QueryError::MemoryLimit { .. }
            | QueryError::ResultTooLarge { .. } => true,
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

    /// True when the statement was stopped at one of the engine's limits (time, memory,
    /// result size) rather than failing by itself.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            QueryError::Timeout { .. }
                | QueryError::MemoryLimit { .. }
                | QueryError::ResultTooLarge { .. }
        )
    }

    /// Classifies an error raised while running a statement with a memory limit of
    /// `memory_limit_bytes`: running out of it is [`QueryError::MemoryLimit`].
    pub(crate) fn from_execution(error: &DataFusionError, memory_limit_bytes: Option<u64>) -> Self {
        match (error.find_root(), memory_limit_bytes) {
            (DataFusionError::ResourcesExhausted(detail), Some(limit_bytes)) => {
                QueryError::MemoryLimit {
                    limit_bytes,
                    detail: readable_exhaustion(detail),
                }
            }
            _ => Self::from_datafusion(error),
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

/// Which result limit a statement crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultLimit {
    /// `query.max_result_rows`.
    Rows(u64),
    /// `query.max_result_bytes`.
    Bytes(u64),
}

impl fmt::Display for ResultLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultLimit::Rows(rows) => write!(f, "{rows} rows (query.max_result_rows)"),
            ResultLimit::Bytes(bytes) => {
                write!(f, "{} (query.max_result_bytes)", Human(*bytes))
            }
        }
    }
}

/// DataFusion's report of an allocation that failed, in one line: what asked for how much
/// ("Failed to allocate additional 8.0 MB for ArrayAgg with 56.0 MB already allocated…"),
/// without the list of consumers before it.
fn readable_exhaustion(detail: &str) -> String {
    let line = detail
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or(detail);
    let line = line.strip_prefix("Error: ").unwrap_or(line);
    line.strip_prefix("Resources exhausted: ")
        .unwrap_or(line)
        .to_string()
}

/// A byte count or a duration as people write it: `64 MiB`, `1.5 s`, `250 ms`.
struct Human<T>(T);

impl fmt::Display for Human<u64> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 || value.fract() == 0.0 {
            write!(f, "{value} {}", UNITS[unit])
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

impl fmt::Display for Human<Duration> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis < 1000 {
            write!(f, "{millis} ms")
        } else {
            write!(f, "{} s", self.0.as_secs_f64())
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
    fn running_out_of_the_statement_memory_is_the_memory_limit_in_a_line() {
        let detail = "Additional allocation failed for ArrayAgg with top memory consumers \
                      (across reservations) as:\n  ArrayAgg#3(can spill: false) consumed \
                      56.0 MB, peak 56.0 MB.\nError: Failed to allocate additional 8.0 MB \
                      for ArrayAgg with 56.0 MB already allocated for this reservation - \
                      2.0 MB remain available for the total pool";
        let error = DataFusionError::ResourcesExhausted(detail.into()).context("aggregating");
        let classified = QueryError::from_execution(&error, Some(64 * 1024 * 1024));
        assert!(classified.is_client_error() && classified.is_limit());
        assert_eq!(
            classified.to_string(),
            "memory limit exceeded: the statement needed more than 64 MiB \
             (query.memory_limit_bytes) and was stopped; filter first, group by fewer values, \
             or raise the limit (Failed to allocate additional 8.0 MB for ArrayAgg with \
             56.0 MB already allocated for this reservation - 2.0 MB remain available for \
             the total pool)"
        );
        // Without a limit of ours, exhaustion is the machine's problem, not the statement's.
        let unlimited = QueryError::from_execution(&error, None);
        assert!(!unlimited.is_client_error(), "{unlimited:?}");
    }

    #[test]
    fn limits_are_named_with_their_setting() {
        let timeout = QueryError::Timeout {
            limit: Duration::from_millis(2500),
        };
        assert!(
            timeout.to_string().starts_with(
                "statement timeout: cancelled after 2.5 s (query.statement_timeout_ms)"
            ),
            "{timeout}"
        );
        let rows = QueryError::ResultTooLarge {
            limit: ResultLimit::Rows(100_000),
        };
        assert!(
            rows.to_string()
                .contains("more than 100000 rows (query.max_result_rows)")
        );
        let bytes = QueryError::ResultTooLarge {
            limit: ResultLimit::Bytes(16 * 1024 * 1024),
        };
        assert!(
            bytes
                .to_string()
                .contains("more than 16 MiB (query.max_result_bytes)")
        );
        assert_eq!(Human(1536_u64).to_string(), "1.5 KiB");
        assert_eq!(Human(Duration::from_millis(250)).to_string(), "250 ms");
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
