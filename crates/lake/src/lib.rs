//! The lake: Delta Lake tables of the pipeline on an object store (local disk, or S3 and S3-compatible stores such as MinIO), written
//! so that each commit also records the log positions its data came from.
//!
//! ```text
//! <root>/clickstream-data/events/              partitioned by event_date=YYYY-MM-DD/
//!                        /invalid_events/      partitioned by received_date=YYYY-MM-DD/
//!                        /dead_letters/
//!                        /unique_users_daily/
//!                        /duplicates/
//!                        /segment_events/      partitioned by event_date=YYYY-MM-DD/
//!                        /segment_invalid_events/  partitioned by received_date=YYYY-MM-DD/
//!                        /segment_dead_letters/
//!                        /segment_duplicates/
//!                        /identities/
//! ```
//!
//! The processor builds Arrow batches with the [`rows`] builders and commits them with
//! [`LakeTable::append`], passing one [`AppTxn`] per source partition (the next offset to
//! read). Data and positions land in the same Delta commit, as kafka-delta-ingest does, so
//! after a crash the processor reads its positions back with [`LakeTable::txn_version`] and
//! resumes exactly where the table ends: nothing twice, nothing skipped.
//!
//! Tables use Delta protocol reader 1 / writer 2 and plain Parquet (snappy as committed,
//! zstd once compacted), so Spark, Python `deltalake` and DuckDB read them. A checkpoint is
//! written every 100 commits.

pub mod avro;
mod bucket;
mod config;
mod error;
mod evolve;
mod files;
mod inspect;
mod lake;
mod maintenance;
pub mod rows;
mod schema;
mod table;
mod time;
mod txn;

pub use bucket::{BucketStatus, create_bucket_if_missing};
pub use config::{LakeConfig, S3Config};
pub use error::LakeError;
pub use files::{FileTarget, FileWriter, WrittenFiles};
pub use inspect::{
    ColumnInfo, CommitSummary, DataFileInfo, SchemaChange, SchemaHistory, SchemaUpdate,
    delta_type_name,
};
pub use lake::{LAKE_PREFIX, Lake};
pub use maintenance::{OptimizeSummary, VacuumSummary};
pub use rows::{
    DeadLetterRow, DeadLettersBuilder, DuplicateRow, DuplicatesBuilder, EventEnrichment, EventRow,
    EventsBuilder, IdentitiesBuilder, IdentityRow, InvalidEventRow, InvalidEventsBuilder,
    SegmentDuplicateRow, SegmentDuplicatesBuilder, SegmentEventRow, SegmentEventsBuilder,
    SessionColumns, UniqueUsersBuilder, UniqueUsersRow,
};
pub use schema::TableKind;
pub use table::LakeTable;
pub use time::parse_event_time;
pub use txn::{AppTxn, txn_app_id};

/// Arrow record batch, re-exported so callers use the same Arrow version as the lake.
pub use deltalake::arrow::array::RecordBatch;
