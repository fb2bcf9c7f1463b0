//! Why a generator run could not start or go on.

use std::path::PathBuf;

/// A generator run that could not happen (an HTTP error during a run is not one: it is
/// logged, counted in the summary, and the run goes on).
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Reading the input or writing the state or output file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The state file holds something other than a line number.
    #[error("{} holds {found:?}, not a line number (use --reset to start over)", path.display())]
    BadState {
        /// The state file.
        path: PathBuf,
        /// The start of what it holds.
        found: String,
    },
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(String),
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
}
