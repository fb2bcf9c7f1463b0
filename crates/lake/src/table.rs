//! One loaded table: commits of data together with the consumed log positions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use clickstream_secret::Settings;

use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, MetadataExt, Transaction};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::DeltaWriter;

use crate::{AppTxn, LakeError, TableKind, evolve};

/// Rows per Parquet row group: small enough for readers (DuckDB, DataFusion) to split a
/// compacted 128 MiB file across cores, large enough to keep per-group overhead low.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Rows handed to the Parquet writer at a time. The writer splits what it is given by
/// partition value with a copy of those rows, so a whole batch at once would hold a second
/// copy of the batch while it encodes; a slice bounds that copy. A multiple of parquet's
/// write batch size (1,024), so the pages come out as they would from the whole batch.
const WRITE_SLICE_ROWS: usize = 8 * 1024;

/// Parquet settings of the files a commit writes: snappy.
///
/// A commit writes one small file per day partition, and the compactor soon rewrites them.
/// parquet-rs makes a zstd compressor and decompressor for every column chunk it writes or
/// reads, and on files this small that set-up is most of the cost: ~10 % of a funnel query
/// over a fresh `events` table went to creating zstd contexts, ~3 % of a drain
/// (bench/README.md "Parquet codecs"). Snappy needs no context.
pub(crate) fn writer_properties() -> WriterProperties {
    properties(Compression::SNAPPY)
}

/// Parquet settings of the files compaction writes: zstd (level 3).
///
/// The columns are mostly repetitive text (user agents, IPs, event types, JSON), where
/// zstd gives files roughly a third smaller than snappy at a decode speed close to it once
/// the row groups are large; every reader we target (Spark, DuckDB, pyarrow, delta-rs)
/// reads it. What stays in the lake for long is what compaction wrote.
pub(crate) fn compacted_writer_properties() -> WriterProperties {
    properties(ZstdLevel::try_new(3).map_or(Compression::SNAPPY, Compression::ZSTD))
}

/// Page-level statistics let readers skip row groups and pages.
fn properties(compression: Compression) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(compression)
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
    /// id). Filled lazily; a refresh follows it through the new commits' `txn`s.
    txns: Mutex<HashMap<String, Option<i64>>>,
    /// How to reach the store, for writers of an evolving schema.
    pub(crate) storage_options: Arc<Settings>,
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
    pub(crate) fn new(kind: TableKind, table: DeltaTable, storage_options: Arc<Settings>) -> Self {
        LakeTable {
            kind,
            table,
            txns: Mutex::new(HashMap::new()),
            storage_options,
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

    /// The loaded version's schema as Arrow, with each column's metadata.
    pub fn arrow_schema(&self) -> Result<deltalake::arrow::datatypes::SchemaRef, LakeError> {
        let state = self
            .table
            .snapshot()
            .map_err(|err| LakeError::op(self.kind.name(), "schema", err))?;
        Ok(state.snapshot().arrow_schema())
    }

    /// Loads the newest version of the table.
    pub async fn refresh(&mut self) -> Result<(), LakeError> {
        let before = self.version();
        self.table
            .update_state()
            .await
            .map_err(|err| LakeError::op(self.kind.name(), "refresh", err))?;
        if self.version() != before {
            self.follow_txns(before).await;
        }
        Ok(())
    }

    /// Brings the `txn` cache from version `before` to the loaded one by reading only the
    /// commits in between: a later commit's `txn` for an app id supersedes every earlier
    /// one, so the cached versions stay exact. A full `txn` lookup replays every commit
    /// since the last checkpoint (delta-rs opens them all at once, each with a JSON decoder
    /// sized for 1,000 rows of every field of the action schema); a follower that refreshes
    /// every second (the UI's sampler) would do that once per partition per second. If the
    /// commits in between cannot all be read (cleaned up, or too many to be worth it), the
    /// cache is dropped and filled again lazily.
    async fn follow_txns(&self, before: i64) {
        /// More new commits than this: dropping the cache is cheaper than reading them.
        const MAX_FOLLOWED: i64 = 100;
        let after = self.version();
        if self.txn_cache().is_empty() {
            return;
        }
        let commits = if before < 0 || after < before || after - before > MAX_FOLLOWED {
            None
        } else {
            self.commits(before + 1..=after).await.ok()
        };
        let mut cache = self.txn_cache();
        match commits {
            Some(commits) if commits.len() as i64 == after - before => {
                for txn in commits.into_iter().flat_map(|c| c.txns) {
                    cache.insert(txn.app_id, Some(txn.version));
                }
            }
            _ => cache.clear(),
        }
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
    ///
    /// Batches are matched to the table's columns by name; columns of the table a batch
    /// lacks are null. A batch column the table lacks (a site's own field, tagged with its
    /// Avro path, see [`crate::avro`]) is added to the table's schema **in the same
    /// commit** as the rows, so the schema change, the rows and the `txn`s land together.
    /// If another writer changed the schema meanwhile, the append is redone on the new
    /// schema.
    pub async fn append(
        &mut self,
        batches: Vec<RecordBatch>,
        txns: &[AppTxn],
    ) -> Result<i64, LakeError> {
        /// Schema changes of other writers to wait out before giving up (transiently).
        const SCHEMA_MOVES: usize = 3;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 && txns.is_empty() {
            return Ok(self.version());
        }
        let mut moves = 0;
        loop {
            self.check_txns_advance(txns).await?;
            match self.append_once(&batches, txns, rows).await {
                Err(err) if err.is_schema_moved() && moves < SCHEMA_MOVES => {
                    moves += 1;
                    tracing::info!(table = self.kind.name(), error = %err, "table schema changed under an append; redoing it on the new schema");
                    self.refresh().await?;
                }
                other => return other,
            }
        }
    }

    async fn append_once(
        &mut self,
        batches: &[RecordBatch],
        txns: &[AppTxn],
        rows: usize,
    ) -> Result<i64, LakeError> {
        let name = self.kind.name();
        let table_schema = self.arrow_schema()?;
        let evolution = evolve::plan(name, &table_schema, batches)?;
        let target = evolution
            .as_ref()
            .map_or(table_schema.clone(), |e| e.arrow.clone());
        let batches = batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| evolve::conform(name, b, &target))
            .collect::<Result<Vec<_>, _>>()?;
        let adds = if rows == 0 {
            Vec::new()
        } else {
            self.write_files(batches, evolution.as_ref().map(|e| e.arrow.clone()))
                .await?
        };
        self.commit_adds(adds, evolution, rows, txns).await
    }

    /// Commits files already written (`adds`, `rows` rows in all) with `txns`, and with
    /// `evolution`'s schema when they bring new columns, in one commit on the loaded
    /// snapshot (delta-rs rebases it over other writers' blind appends).
    pub(crate) async fn commit_adds(
        &mut self,
        adds: Vec<deltalake::kernel::Add>,
        evolution: Option<evolve::Evolution>,
        rows: usize,
        txns: &[AppTxn],
    ) -> Result<i64, LakeError> {
        let name = self.kind.name();
        let state = self
            .table
            .snapshot()
            .map_err(|err| LakeError::op(name, "append", err))?;
        let files = adds.len();
        let bytes: i64 = adds.iter().map(|add| add.size).sum();
        let mut actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
        let mut metrics = serde_json::json!({
            "num_added_files": files,
            "num_added_rows": rows,
            "num_added_bytes": bytes,
        });
        if let Some(evolution) = &evolution {
            let metadata = state
                .metadata()
                .clone()
                .with_schema(&evolution.kernel)
                .map_err(|err| LakeError::SchemaMismatch {
                    table: name,
                    detail: format!("cannot record the new schema: {err}"),
                })?;
            actions.push(Action::Metadata(metadata));
            metrics["columns_added"] = serde_json::json!(evolution.added);
            metrics["columns_widened"] = serde_json::json!(evolution.widened);
        }
        let partitions = self.kind.partition_columns();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!partitions.is_empty())
                .then(|| partitions.iter().map(|c| (*c).to_string()).collect()),
            predicate: None,
        };
        let properties =
            commit_properties(txns).with_metadata([("operationMetrics".to_string(), metrics)]);
        let before = self.version();
        let finalized = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(state), self.table.log_store(), operation)
            .await
            .map_err(|err| LakeError::delta(name, "append", err, || app_ids(txns)))?;
        self.table.state = Some(finalized.snapshot());
        self.after_commit(before, txns);
        let version = self.version();
        if let Some(evolution) = &evolution {
            tracing::info!(table = name, version, added = ?evolution.added, widened = ?evolution.widened, "table schema evolved with the rows that first carry the new columns");
        }
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
    /// With `evolved`, the files have that schema (the table's plus new columns, committed
    /// with them), not the loaded one.
    async fn write_files(
        &self,
        batches: Vec<RecordBatch>,
        evolved: Option<deltalake::arrow::datatypes::SchemaRef>,
    ) -> Result<Vec<deltalake::kernel::Add>, LakeError> {
        let name = self.kind.name();
        let mut writer =
            crate::files::open_writer(self.kind, &self.table, &self.storage_options, evolved)?;
        let slices = batches.iter().flat_map(|batch| {
            (0..batch.num_rows())
                .step_by(WRITE_SLICE_ROWS)
                .map(|offset| batch.slice(offset, WRITE_SLICE_ROWS.min(batch.num_rows() - offset)))
        });
        for slice in slices {
            if let Err(err) = writer.write(slice).await {
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
    pub(crate) async fn check_txns_advance(&self, txns: &[AppTxn]) -> Result<(), LakeError> {
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
