//! Errors of the registry (server, store and client), classified so that callers decide
//! retries by type and the HTTP layer maps each one to Confluent's error code.

use std::path::PathBuf;

/// What can go wrong in the schema registry, its store, or when talking to one.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The subject has no (visible) versions. Confluent code 40401 and text.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),

    /// The version does not exist (or is soft-deleted). Confluent code 40402 and text, which
    /// names the version only.
    #[error("Version {version} not found.")]
    VersionNotFound {
        /// Subject name.
        subject: String,
        /// Requested version as Confluent prints it (`-1` for `latest`).
        version: String,
    },

    /// No schema has this id. Confluent code 40403 and text.
    #[error("Schema {0} not found")]
    SchemaIdNotFound(u32),

    /// The schema is not registered under the subject. Confluent code 40403 and text
    /// (which does not name the subject).
    #[error("Schema not found")]
    SchemaNotInSubject(String),

    /// The subject is already soft-deleted; only a permanent delete may follow. Code 40404.
    /// Confluent's text, missing space included.
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),

    /// A permanent delete was asked before a soft delete. Confluent code 40405 and text.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),

    /// The version is already soft-deleted. Confluent code 40406 and text.
    #[error(
        "Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted {
        /// Subject name.
        subject: String,
        /// Version number.
        version: u32,
    },

    /// A permanent version delete was asked before a soft delete. Confluent code 40407 and
    /// text.
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted {
        /// Subject name.
        subject: String,
        /// Version number.
        version: u32,
    },

    /// The subject has no subject-level compatibility level. Confluent code 40408 and text.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectLevelNotConfigured(String),

    /// The subject has no subject-level mode (this registry never sets one). Confluent code
    /// 40409 and text.
    #[error("Subject '{0}' does not have subject-level mode configured")]
    SubjectModeNotConfigured(String),

    /// The schema breaks the subject's compatibility rules; the text says why. HTTP 409,
    /// Confluent's text around our reasons.
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: {reason}"
    )]
    Incompatible {
        /// Subject name.
        subject: String,
        /// Every violation found, joined.
        reason: String,
    },

    /// A version other schemas reference cannot be deleted (soft-deleted referrers count for
    /// a permanent delete). Confluent code 42206 and text, which prints Confluent's key of
    /// the version.
    #[error(
        "One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={version}}}."
    )]
    ReferenceExists {
        /// Subject of the referenced version.
        subject: String,
        /// The referenced version.
        version: u32,
    },

    /// The schema text is not a valid Avro schema (or uses an unsupported feature). Code 42201.
    #[error("invalid schema: {0}")]
    InvalidSchema(String),

    /// The version is neither a positive 32-bit number nor `latest`/`-1`. Code 42202 and
    /// Confluent's text.
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),

    /// The compatibility level is not one of Confluent's levels. Code 42203 and Confluent's
    /// text (which does not repeat the level given).
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidCompatibilityLevel(String),

    /// The request is malformed (unparsable JSON body, bad query parameter). HTTP 400.
    #[error("bad request: {0}")]
    BadRequest(String),

    /// The request body could not be read (too large, aborted). Carries the HTTP status.
    #[error("request body rejected: {reason}")]
    BodyRejected {
        /// HTTP status to answer with (413 for a body over the limit).
        status: u16,
        /// Why the body was rejected.
        reason: String,
    },

    /// No media type the registry produces is acceptable by the request's `Accept` (held
    /// here). HTTP 406, with the text Confluent's registry answers (JAX-RS's default).
    #[error("HTTP 406 Not Acceptable")]
    NotAcceptable(String),

    /// The request's content type is not JSON. HTTP 415.
    #[error("unsupported content type '{0}'")]
    UnsupportedMediaType(String),

    /// No route matches the path. HTTP 404.
    #[error("no such resource: {0}")]
    RouteNotFound(String),

    /// The route exists but not for this method. HTTP 405.
    #[error("method not allowed")]
    MethodNotAllowed,

    /// A write or delete without the admin token.
    #[error(
        "{0} needs the admin token: send it as the password of HTTP Basic credentials (basic.auth.user.info) or as a bearer token"
    )]
    Unauthorized(String),

    /// An I/O error on a file of the store.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The journal holds a line that cannot be replayed; the store refuses to open.
    #[error("corrupt journal {path} at line {line}: {reason}")]
    CorruptJournal {
        /// Journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },

    /// Another process (or store instance) holds the store directory.
    #[error("store directory {0} is locked by another registry")]
    StoreLocked(PathBuf),

    /// A journal write failed and could not be undone; the store refuses further changes
    /// until it is reopened.
    #[error("store is unavailable after a failed write: {0}")]
    StoreUnavailable(String),

    /// The registry URL given to the client is unusable.
    #[error("invalid registry url '{url}': {reason}")]
    InvalidUrl {
        /// The URL with any password removed.
        url: String,
        /// Why it is unusable.
        reason: String,
    },

    /// The registry could not be reached (connection refused, timeout, reset).
    #[error("registry at {url} is unreachable: {source}")]
    Unreachable {
        /// The URL of the request, without credentials.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// The registry answered with an error status (Confluent error JSON when it sent one).
    #[error("registry answered http {status} (error code {error_code}): {message}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// Confluent error code (`error_code` field), or the HTTP status when absent.
        error_code: i64,
        /// Confluent error message, or the start of the body.
        message: String,
    },

    /// The registry answered 2xx with a body the client cannot interpret.
    #[error("unexpected response from {url}: {reason}")]
    InvalidResponse {
        /// The URL of the request, without credentials.
        url: String,
        /// What was wrong with it.
        reason: String,
    },

    /// The registry did not become ready within the allowed time.
    #[error("registry at {url} not ready after {waited_ms} ms: {last_error}")]
    NotReady {
        /// The registry base URL, without credentials.
        url: String,
        /// How long the client waited.
        waited_ms: u64,
        /// The last failure seen while polling.
        last_error: String,
    },
}

impl RegistryError {
    /// True when retrying the same call later may succeed (network trouble, registry
    /// starting, server-side 5xx, 408/429); false for invalid input and fatal store errors.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::NotReady { .. } => true,
            Self::Http { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Self::SubjectNotFound(_)
            | Self::VersionNotFound { .. }
            | Self::SchemaIdNotFound(_)
            | Self::SchemaNotInSubject(_)
            | Self::SubjectSoftDeleted(_)
            | Self::SubjectNotSoftDeleted(_)
            | Self::VersionSoftDeleted { .. }
            | Self::VersionNotSoftDeleted { .. }
            | Self::SubjectLevelNotConfigured(_)
            | Self::SubjectModeNotConfigured(_)
            | Self::ReferenceExists { .. }
            | Self::Incompatible { .. }
            | Self::InvalidSchema(_)
            | Self::InvalidVersion(_)
            | Self::InvalidCompatibilityLevel(_)
            | Self::BadRequest(_)
            | Self::BodyRejected { .. }
            | Self::NotAcceptable(_)
            | Self::UnsupportedMediaType(_)
            | Self::RouteNotFound(_)
            | Self::MethodNotAllowed
            | Self::Unauthorized(_)
            | Self::Io { .. }
            | Self::CorruptJournal { .. }
            | Self::StoreLocked(_)
            | Self::StoreUnavailable(_)
            | Self::InvalidUrl { .. }
            | Self::InvalidResponse { .. } => false,
        }
    }

    /// The HTTP status and Confluent `error_code` this error is reported with.
    pub fn status_and_code(&self) -> (u16, i64) {
        match self {
            Self::SubjectNotFound(_) => (404, 40401),
            Self::VersionNotFound { .. } => (404, 40402),
            Self::SchemaIdNotFound(_) | Self::SchemaNotInSubject(_) => (404, 40403),
            Self::SubjectSoftDeleted(_) => (404, 40404),
            Self::SubjectNotSoftDeleted(_) => (404, 40405),
            Self::VersionSoftDeleted { .. } => (404, 40406),
            Self::VersionNotSoftDeleted { .. } => (404, 40407),
            Self::SubjectLevelNotConfigured(_) => (404, 40408),
            Self::SubjectModeNotConfigured(_) => (404, 40409),
            Self::Incompatible { .. } => (409, 409),
            Self::InvalidSchema(_) => (422, 42201),
            Self::InvalidVersion(_) => (422, 42202),
            Self::InvalidCompatibilityLevel(_) => (422, 42203),
            Self::ReferenceExists { .. } => (422, 42206),
            Self::BadRequest(_) => (400, 400),
            Self::BodyRejected { status, .. } => (*status, i64::from(*status)),
            Self::NotAcceptable(_) => (406, 406),
            Self::UnsupportedMediaType(_) => (415, 415),
            Self::RouteNotFound(_) => (404, 404),
            Self::MethodNotAllowed => (405, 405),
            Self::Unauthorized(_) => (401, 401),
            Self::Http {
                status, error_code, ..
            } => (*status, *error_code),
            Self::Io { .. }
            | Self::CorruptJournal { .. }
            | Self::StoreLocked(_)
            | Self::StoreUnavailable(_) => (500, 50001),
            Self::InvalidUrl { .. }
            | Self::Unreachable { .. }
            | Self::InvalidResponse { .. }
            | Self::NotReady { .. } => (500, 50003),
        }
    }

    /// The Confluent error code when this is an error answered by a registry
    /// (`Http`), e.g. 40401 or 409; `None` for local errors.
    pub fn remote_error_code(&self) -> Option<i64> {
        match self {
            Self::Http { error_code, .. } => Some(*error_code),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
