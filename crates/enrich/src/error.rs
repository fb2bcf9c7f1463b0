//! Errors of building enrichers. Enriching an event never fails: what cannot be derived
//! from it is left empty.

use std::path::PathBuf;

/// Why an enricher could not be built from its data or configuration.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// The uap-core regexes could not be read or compiled.
    #[error("user-agent regexes from {origin}: {detail}")]
    UserAgentRegexes {
        /// Bundled, or the configured file.
        origin: String,
        /// What went wrong.
        detail: String,
    },
    /// A geo-IP database could not be opened.
    #[error("geo-IP database {}: {detail}", path.display())]
    GeoDatabase {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A bot pattern does not compile.
    #[error("bot pattern {pattern:?} of {list}: {detail}")]
    BotPattern {
        /// The list the pattern comes from.
        list: &'static str,
        /// The pattern as written in the list.
        pattern: String,
        /// What went wrong.
        detail: String,
    },
    /// A line of the referrer classification data is malformed.
    #[error("referrer data, line {line}: {detail}")]
    ReferrerData {
        /// 1-based line number.
        line: usize,
        /// What went wrong.
        detail: String,
    },
    /// The privacy settings are unusable.
    #[error("privacy settings: {0}")]
    Privacy(String),
}
