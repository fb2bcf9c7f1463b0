//! One loaded table: commits of data together with the consumed log positions.

use std::collections::HashMap;
use std::sync::Mutex;

use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Transaction};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};

use crate::{AppTxn, LakeError, TableKind};

/// Rows per Parquet row group: small enough for readers (DuckDB, DataFusion) to split a
/// compacted 128 MiB file across cores, large enough to keep per-group overhead low.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Parquet settings of every file the lake writes.
///
/// zstd rather than snappy: the columns are mostly repetitive text (user agents, IPs, event
/// types, JSON) where zstd level 3 gives files roughly a third smaller at a decode speed
/// close to snappy's, and every reader we target (Spark, DuckDB, pyarrow, delta-rs) reads
/// it. Page-level statistics let readers skip row groups and pages.
pub(crate) fn writer_properties() -> WriterProperties {
    let zstd = ZstdLevel::try_new(3).map_or(Compression::SNAPPY, Compression::ZSTD);
    WriterProperties::builder()
        .set_compression(zstd)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!(
            "clickstream-lake {} (delta-rs {})",
            env!("CARGO_PKG_VERSION"),
            deltalake::crate_version()
        ))
        .build()
}

/// A table of the lake, loaded at some version. Writes go through it and move it to the
/// version they committed.
pub struct LakeTable {
    kind: TableKind,
    pub(crate) table: DeltaTable,
    /// Latest `txn` versions known for the loaded snapshot (`None`: no `txn` for that app
    /// id). Filled lazily; dropped whenever the snapshot moves past commits we did not make.
    txns: Mutex<HashMap<String, Option<i64>>>,
}

impl std::fmt::Debug for LakeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeTable")
            .field("kind", &self.kind)
            .field("url", &self.table.table_url().as_str())
            .field("version", &self.version())
            .finish()
    }
}

impl LakeTable {
    pub(crate) fn new(kind: TableKind, table: DeltaTable) -> Self {
        LakeTable {
            kind,
            table,
            txns: Mutex::new(HashMap::new()),
        }
    }

    /// Which table this is.
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// The loaded version (`-1` if nothing is loaded, which [`crate::Lake::table`] prevents).
    pub fn version(&self) -> i64 {
        self.table
            .version()
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or(-1)
    }

    /// The underlying delta-rs table, for reads (for example a DataFusion table provider).
    pub fn delta_table(&self) -> &DeltaTable {
        &self.table
    }

    /// Loads the newest version of the table.
    pub async fn refresh(&mut self) -> Result<(), LakeError> {
        let before = self.version();
        self.table
            .update_state()
            .await
            .map_err(|err| LakeError::op(self.kind.name(), "refresh", err))?;
        if self.version() != before {
            self.txn_cache().clear();
        }
        Ok(())
    }

    /// The version recorded by the latest `txn` action for `app_id` in the loaded snapshot,
    /// or `None` if that application never committed. This is where a consumer resumes.
    ///
    /// Async because delta-rs resolves it by replaying the log (checkpoint + newer commits);
    /// results are cached for the loaded version.
    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>, LakeError> {
        if let Some(known) = self.txn_cache().get(app_id) {
            return Ok(*known);
        }
        let version = self.read_txn_version(app_id).await?;
        self.txn_cache().insert(app_id.to_string(), version);
        Ok(version)
    }

    async fn read_txn_version(&self, app_id: &str) -> Result<Option<i64>, LakeError> {
        let name = self.kind.name();
        let state = self
            .table
            .snapshot()
            .map_err(|err| LakeError::op(name, "read txn", err))?;
        state
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(|err| LakeError::op(name, "read txn", err))
    }

    fn txn_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<i64>>> {
        // The cache holds plain values: a panic while it was locked cannot leave it torn.
        self.txns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `batches` and records `txns` in ONE commit, and returns its version.
    ///
    /// With no rows but some `txns` it commits the positions alone (records that produced no
    /// rows still move the position). With neither it commits nothing and returns the loaded
    /// version. Each `txn` version must be greater than the one recorded for its app id,
    /// else [`LakeError::TxnNotAdvancing`]. Blind appends of other writers committed since
    /// the table was loaded are merged by delta-rs; a commit of another writer for one of the
    /// same app ids fails this call with [`LakeError::TxnConflict`] and nothing is written
    /// twice.
    pub async fn append(
        &mut self,
        batches: Vec<RecordBatch>,
        txns: &[AppTxn],
    ) -> Result<i64, LakeError> {
        let name = self.kind.name();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 && txns.is_empty() {
            return Ok(self.version());
        }
        self.check_txns_advance(txns).await?;
        let adds = if rows == 0 {
            Vec::new()
        } else {
            self.write_files(batches).await?
        };
        let files = adds.len();
        let bytes: i64 = adds.iter().map(|add| add.size).sum();
        let partitions = self.kind.partition_columns();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!partitions.is_empty())
                .then(|| partitions.iter().map(|c| (*c).to_string()).collect()),
            predicate: None,
        };
        let properties = commit_properties(txns).with_metadata([(
            "operationMetrics".to_string(),
            serde_json::json!({
                "num_added_files": files,
                "num_added_rows": rows,
                "num_added_bytes": bytes,
            }),
        )]);
        let before = self.version();
        let state = self
            .table
            .snapshot()
            .map_err(|err| LakeError::op(name, "append", err))?;
        let finalized = CommitBuilder::from(properties)
            .with_actions(adds.into_iter().map(Action::Add).collect())
            .build(Some(state), self.table.log_store(), operation)
            .await
            .map_err(|err| LakeError::delta(name, "append", err, || app_ids(txns)))?;
        self.table.state = Some(finalized.snapshot());
        self.after_commit(before, txns);
        let version = self.version();
        tracing::debug!(
            table = name,
            version,
            rows,
            files,
            txns = txns.len(),
            "lake commit"
        );
        Ok(version)
    }

    /// Replaces every row of the table with `batch` and records `txns`, in one commit; for
    /// small tables rewritten whole (the daily unique-users counts). Returns the version.
    ///
    /// The commit lands only directly on the version this handle read: if another writer
    /// committed since, it fails with a transient error and the caller refreshes and tries
    /// again. delta-rs would otherwise rebase it, and its conflict checker lets two
    /// concurrent overwrites both land (delta-io/delta-rs#3622), leaving both writers' rows.
    pub async fn overwrite(
        &mut self,
        batch: RecordBatch,
        txns: &[AppTxn],
    ) -> Result<i64, LakeError> {
        let name = self.kind.name();
        self.check_txns_advance(txns).await?;
        let before = self.version();
        let table = self
            .table
            .clone()
            .write(vec![batch])
            .with_save_mode(SaveMode::Overwrite)
            .with_writer_properties(writer_properties())
            .with_commit_properties(commit_properties(txns).with_max_retries(0))
            .await
            .map_err(|err| LakeError::delta(name, "overwrite", err, || app_ids(txns)))?;
        self.table = table;
        self.after_commit(before, txns);
        Ok(self.version())
    }

    /// Writes the batches as Parquet files (one per partition value) and returns their `add`
    /// actions, not yet committed.
    async fn write_files(
        &self,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<deltalake::kernel::Add>, LakeError> {
        let name = self.kind.name();
        let mut writer = RecordBatchWriter::for_table(&self.table)
            .map_err(|err| LakeError::op(name, "append", err))?
            .with_writer_properties(writer_properties());
        for batch in batches {
            if batch.num_rows() == 0 {
                continue;
            }
            if let Err(err) = writer.write(batch).await {
                writer.reset();
                return Err(LakeError::op(name, "append", err));
            }
        }
        writer
            .flush()
            .await
            .map_err(|err| LakeError::op(name, "append", err))
    }

    /// Refuses duplicate app ids in one commit, versions that do not advance, and commits
    /// whose expected predecessor version is not the recorded one.
    async fn check_txns_advance(&self, txns: &[AppTxn]) -> Result<(), LakeError> {
        let name = self.kind.name();
        for (index, txn) in txns.iter().enumerate() {
            if txns[..index].iter().any(|other| other.app_id == txn.app_id) {
                return Err(LakeError::DuplicateAppId {
                    table: name,
                    app_id: txn.app_id.clone(),
                });
            }
            let recorded = self.txn_version(&txn.app_id).await?;
            if let Some(previous) = txn.previous
                && previous != recorded
            {
                return Err(LakeError::TxnMoved {
                    table: name,
                    app_id: txn.app_id.clone(),
                    expected: previous,
                    recorded,
                });
            }
            if let Some(recorded) = recorded
                && txn.version <= recorded
            {
                return Err(LakeError::TxnNotAdvancing {
                    table: name,
                    app_id: txn.app_id.clone(),
                    recorded,
                    proposed: txn.version,
                });
            }
        }
        Ok(())
    }

    /// Forgets cached `txn` versions after a commit that may have loaded others' commits.
    pub(crate) fn after_foreign_commit(&self) {
        self.txn_cache().clear();
    }

    /// Keeps the `txn` cache right after this handle committed, moving from `before`.
    pub(crate) fn after_commit(&self, before: i64, txns: &[AppTxn]) {
        let mut cache = self.txn_cache();
        // Commits of other writers landed in between: cached values may be stale, except
        // for our own app ids, which delta-rs's conflict check guarantees nobody else moved.
        if self.version() != before + 1 {
            cache.clear();
        }
        for txn in txns {
            cache.insert(txn.app_id.clone(), Some(txn.version));
        }
    }
}

/// Commit properties carrying `txns`, with delta-rs's defaults otherwise (retries on lost
/// races, checkpoint every `delta.checkpointInterval` commits, expired log cleanup).
fn commit_properties(txns: &[AppTxn]) -> CommitProperties {
    let now = chrono::Utc::now().timestamp_millis();
    CommitProperties::default().with_application_transactions(
        txns.iter()
            .map(|txn| Transaction::new_with_last_update(&txn.app_id, txn.version, Some(now)))
            .collect(),
    )
}

fn app_ids(txns: &[AppTxn]) -> Vec<String> {
    txns.iter().map(|txn| txn.app_id.clone()).collect()
}
