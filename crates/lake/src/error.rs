//! The lake's error type and its classification (transient or not).

use deltalake::DeltaTableError;
use deltalake::ObjectStoreError;
use deltalake::kernel::transaction::{CommitConflictError, TransactionError};

/// Everything that can go wrong in the lake. Each variant names the table (or root) involved.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake root URL could not be parsed or is not usable.
    #[error("invalid lake root {url:?}: {reason}")]
    InvalidRoot {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A local directory of a `file://` lake could not be created.
    #[error("cannot create lake directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The lake's bucket could not be created (or checked).
    #[error("lake bucket {bucket}: {reason}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// What the store answered, or why it could not be asked.
        reason: String,
    },

    /// A Delta Lake operation failed.
    #[error("table {table}: {op} failed: {source}")]
    Delta {
        /// Table name.
        table: &'static str,
        /// What was being done (`"load"`, `"append"`, `"optimize"`...).
        op: &'static str,
        /// The delta-rs error.
        #[source]
        source: Box<DeltaTableError>,
    },

    /// Another writer committed a `txn` action for one of the same application ids since this
    /// table was loaded: committing would double-count. The caller must reload the table,
    /// re-read its positions ([`crate::LakeTable::txn_version`]) and redo its work.
    #[error("table {table}: concurrent commit for the same application id (one of {app_ids:?})")]
    TxnConflict {
        /// Table name.
        table: &'static str,
        /// The application ids this commit carried.
        app_ids: Vec<String>,
    },

    /// A commit expected to continue from one recorded version, but the table holds
    /// another: another writer took over the partition and moved it meanwhile. The caller
    /// must re-read its positions and redo its work from there.
    #[error(
        "table {table}: txn for {app_id} was expected to continue from {expected:?}, but the table records {recorded:?}"
    )]
    TxnMoved {
        /// Table name.
        table: &'static str,
        /// The application id.
        app_id: String,
        /// The version the writer started from.
        expected: Option<i64>,
        /// The version the table holds.
        recorded: Option<i64>,
    },

    /// A commit would move an application's recorded version backwards or leave it unchanged:
    /// the data it carries has already been committed (a stale writer), so it is refused.
    #[error(
        "table {table}: txn version for {app_id} must increase: recorded {recorded}, got {proposed}"
    )]
    TxnNotAdvancing {
        /// Table name.
        table: &'static str,
        /// The application id.
        app_id: String,
        /// Version recorded in the table.
        recorded: i64,
        /// Version the refused commit carried.
        proposed: i64,
    },

    /// The same application id appears twice in one commit.
    #[error("table {table}: application id {app_id} appears twice in one commit")]
    DuplicateAppId {
        /// Table name.
        table: &'static str,
        /// The repeated application id.
        app_id: String,
    },

    /// An existing table does not have the schema or partitioning this build expects.
    #[error("table {table}: schema mismatch: {detail}")]
    SchemaMismatch {
        /// Table name.
        table: &'static str,
        /// Expected versus found.
        detail: String,
    },

    /// A row builder was asked to fill a table whose columns are not the ones it builds
    /// (a dead-letters builder for `events`).
    #[error("table {table} does not take {rows} rows")]
    WrongTable {
        /// Table name.
        table: &'static str,
        /// The rows the builder makes (`dead_letters`, `invalid_events`).
        rows: &'static str,
    },

    /// Record batches could not be assembled or read.
    #[error("table {table}: arrow error: {source}")]
    Arrow {
        /// Table name.
        table: &'static str,
        /// The Arrow error.
        #[source]
        source: deltalake::arrow::error::ArrowError,
    },
}

impl LakeError {
    /// Wraps a delta-rs error, recognising a conflict on the same application id.
    pub(crate) fn delta(
        table: &'static str,
        op: &'static str,
        source: DeltaTableError,
        app_ids: impl FnOnce() -> Vec<String>,
    ) -> Self {
        if is_txn_conflict(&source) {
            return LakeError::TxnConflict {
                table,
                app_ids: app_ids(),
            };
        }
        LakeError::Delta {
            table,
            op,
            source: Box::new(source),
        }
    }

    /// Wraps a delta-rs error of an operation that carries no `txn` action.
    pub(crate) fn op(table: &'static str, op: &'static str, source: DeltaTableError) -> Self {
        Self::delta(table, op, source, Vec::new)
    }

    /// Whether retrying the same call later may succeed: object store unavailable, timeouts,
    /// lost commit races. Schema, protocol, conflicts on the same application id and invalid
    /// configuration are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            LakeError::Delta { source, .. } => delta_is_transient(source),
            LakeError::CreateDir { source, .. } => io_is_transient(source),
            LakeError::InvalidRoot { .. }
            | LakeError::Bucket { .. }
            | LakeError::TxnConflict { .. }
            | LakeError::TxnNotAdvancing { .. }
            | LakeError::TxnMoved { .. }
            | LakeError::DuplicateAppId { .. }
            | LakeError::SchemaMismatch { .. }
            | LakeError::WrongTable { .. }
            | LakeError::Arrow { .. } => false,
        }
    }

    /// Whether another writer changed the table's schema since it was loaded: the operation
    /// succeeds when redone on the refreshed table.
    pub fn is_schema_moved(&self) -> bool {
        matches!(
            self,
            LakeError::Delta { source, .. } if matches!(
                source.as_ref(),
                DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(CommitConflictError::MetadataChanged)
                }
            )
        )
    }

    /// Name of the table involved, if any.
    pub fn table(&self) -> Option<&'static str> {
        match self {
            LakeError::Delta { table, .. }
            | LakeError::TxnConflict { table, .. }
            | LakeError::TxnNotAdvancing { table, .. }
            | LakeError::TxnMoved { table, .. }
            | LakeError::DuplicateAppId { table, .. }
            | LakeError::SchemaMismatch { table, .. }
            | LakeError::WrongTable { table, .. }
            | LakeError::Arrow { table, .. } => Some(table),
            LakeError::InvalidRoot { .. }
            | LakeError::CreateDir { .. }
            | LakeError::Bucket { .. } => None,
        }
    }
}

fn is_txn_conflict(err: &DeltaTableError) -> bool {
    matches!(
        err,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction)
        }
    )
}

fn delta_is_transient(err: &DeltaTableError) -> bool {
    match err {
        DeltaTableError::ObjectStore { source } => object_store_is_transient(source),
        DeltaTableError::Io { source } => io_is_transient(source),
        // Writing a Parquet file streams it to the store: a store failure comes out of the
        // Parquet writer as its `External` error.
        DeltaTableError::Parquet { source } => chain_is_transient(source),
        DeltaTableError::VersionAlreadyExists(_) => true,
        DeltaTableError::Transaction { source } => match source {
            TransactionError::VersionAlreadyExists(_) | TransactionError::MaxCommitAttempts(_) => {
                true
            }
            TransactionError::ObjectStore { source } => object_store_is_transient(source),
            // A conflict with a concurrent optimize, overwrite or delete: redoing the
            // operation on a fresh snapshot succeeds. A conflict on the same application id
            // never reaches here (it becomes `LakeError::TxnConflict`).
            TransactionError::CommitConflict(conflict) => matches!(
                conflict,
                CommitConflictError::ConcurrentAppend
                    // Another writer added columns: redone on the refreshed table.
                    | CommitConflictError::MetadataChanged
                    | CommitConflictError::ConcurrentDeleteRead
                    | CommitConflictError::ConcurrentDeleteDelete
            ),
            TransactionError::LogStoreError { .. } => true,
            _ => false,
        },
        // The kernel wraps object-store and I/O errors without exposing them as a `source`:
        // look at its variant, then down the chain for anything else.
        DeltaTableError::KernelError(kernel) => kernel_is_transient(kernel),
        // Some paths (finding a table's latest version before a commit) flatten the
        // kernel's error into text: an object-store failure is recognised by the kernel's
        // own wording.
        DeltaTableError::Generic(text) => text.contains(KERNEL_STORE_ERROR),
        DeltaTableError::GenericError { source } => chain_is_transient(source.as_ref()),
        _ => false,
    }
}

/// How the kernel's `Error::ObjectStore` displays itself; stable across its releases.
const KERNEL_STORE_ERROR: &str = "Error interacting with object store";

/// Whether an object-store or I/O error down `err`'s chain is transient (false when
/// there is none).
fn chain_is_transient(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(store) = err.downcast_ref::<ObjectStoreError>() {
            return object_store_is_transient(store);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io_is_transient(io);
        }
        cause = err.source();
    }
    false
}

fn kernel_is_transient(kernel: &delta_kernel::Error) -> bool {
    match kernel {
        delta_kernel::Error::ObjectStore(store) => object_store_is_transient(store),
        delta_kernel::Error::IOError(io) => io_is_transient(io),
        other => chain_is_transient(other),
    }
}

fn object_store_is_transient(err: &ObjectStoreError) -> bool {
    // `Generic` is what network failures, timeouts and exhausted retries surface as; the
    // other variants describe a request that will fail the same way again.
    matches!(
        err,
        ObjectStoreError::Generic { .. } | ObjectStoreError::JoinError { .. }
    )
}

fn io_is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    !matches!(
        err.kind(),
        ErrorKind::NotFound
            | ErrorKind::PermissionDenied
            | ErrorKind::InvalidInput
            | ErrorKind::InvalidData
            | ErrorKind::AlreadyExists
            | ErrorKind::Unsupported
            | ErrorKind::NotADirectory
            | ErrorKind::IsADirectory
            | ErrorKind::ReadOnlyFilesystem
            | ErrorKind::InvalidFilename
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_same_app_id_conflict_as_txn_conflict_not_transient() {
        let err = LakeError::delta(
            "events",
            "append",
            DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(
                    CommitConflictError::ConcurrentTransaction,
                ),
            },
            || vec!["g:t:0".to_string()],
        );
        assert!(matches!(err, LakeError::TxnConflict { .. }));
        assert!(!err.is_transient());
        assert_eq!(err.table(), Some("events"));
    }

    #[test]
    fn classifies_store_outage_and_lost_race_as_transient() {
        let outage = LakeError::op(
            "events",
            "append",
            DeltaTableError::ObjectStore {
                source: ObjectStoreError::Generic {
                    store: "S3",
                    source: "connection refused".into(),
                },
            },
        );
        assert!(outage.is_transient());
        let race = LakeError::op(
            "events",
            "append",
            DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(15),
            },
        );
        assert!(race.is_transient());
    }

    /// A data file's upload failing (delta-rs's writer streams each file to the store) comes
    /// out of the Parquet writer: transient when a store failure is underneath, not when the
    /// encoding itself failed. (A store refusing data files mid-write stopped the processor:
    /// the fault matrix's data-file scenario.)
    #[test]
    fn classifies_a_store_failure_under_a_parquet_write_as_transient() {
        use deltalake::parquet::errors::ParquetError;
        let store = ObjectStoreError::Generic {
            store: "S3",
            source: "503 Service Unavailable".into(),
        };
        let upload = LakeError::op(
            "events",
            "append",
            DeltaTableError::Parquet {
                source: ParquetError::External(Box::new(store)),
            },
        );
        assert!(upload.is_transient());
        let encoding = LakeError::op(
            "events",
            "append",
            DeltaTableError::Parquet {
                source: ParquetError::General("bad page".into()),
            },
        );
        assert!(!encoding.is_transient());
    }

    /// A refresh that fails because the store answers 500 comes wrapped in the kernel's
    /// error, which does not expose the object-store error as a source: still transient.
    /// (It was classified fatal, and a store outage during a state rebuild stopped the
    /// processor: the fault matrix's S3 scenario.)
    #[test]
    fn classifies_a_store_outage_seen_by_the_kernel_as_transient() {
        let kernel = delta_kernel::Error::ObjectStore(ObjectStoreError::Generic {
            store: "S3",
            source: "500 Internal Server Error".into(),
        });
        let err = LakeError::op("events", "refresh", DeltaTableError::KernelError(kernel));
        assert!(err.is_transient(), "{err}");
        let schema = delta_kernel::Error::Schema("bad".into());
        let err = LakeError::op("events", "refresh", DeltaTableError::KernelError(schema));
        assert!(!err.is_transient(), "{err}");
    }

    /// Finding the latest version before a commit (`get_latest_version`) turns the
    /// kernel's error into text. A store answering 500s there was classified fatal and
    /// stopped the processor in the middle of the S3 fault test, now and then.
    #[test]
    fn classifies_a_store_outage_flattened_to_text_as_transient() {
        let kernel = delta_kernel::Error::ObjectStore(ObjectStoreError::Generic {
            store: "S3",
            source: "Error performing list request: 500 Internal Server Error".into(),
        });
        // As deltalake's `logstore::get_latest_version` builds it.
        let flattened = DeltaTableError::Generic(kernel.to_string());
        let err = LakeError::op("duplicates", "append", flattened);
        assert!(err.is_transient(), "{err}");
        let other = DeltaTableError::Generic("Cannot downgrade snapshot".into());
        assert!(!LakeError::op("events", "append", other).is_transient());
        let boxed = DeltaTableError::GenericError {
            source: Box::new(ObjectStoreError::Generic {
                store: "S3",
                source: "connection reset".into(),
            }),
        };
        assert!(LakeError::op("events", "append", boxed).is_transient());
    }

    #[test]
    fn classifies_schema_errors_as_fatal() {
        let err = LakeError::op(
            "events",
            "append",
            DeltaTableError::SchemaMismatch {
                msg: "no".to_string(),
            },
        );
        assert!(!err.is_transient());
        let not_found = LakeError::op(
            "events",
            "load",
            DeltaTableError::ObjectStore {
                source: ObjectStoreError::NotFound {
                    path: "x".to_string(),
                    source: "gone".into(),
                },
            },
        );
        assert!(!not_found.is_transient());
    }
}
