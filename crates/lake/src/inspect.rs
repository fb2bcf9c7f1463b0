//! Read-only views of a table for the UI and benchmarks: its data files and its history.

use std::collections::BTreeMap;

use deltalake::kernel::Action;
use deltalake::logstore::{LogStore as _, get_actions};
use futures::{StreamExt as _, TryStreamExt as _};

use crate::{AppTxn, LakeError, LakeTable};

/// One data file of the loaded table version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFileInfo {
    /// Path relative to the table root (`event_date=2022-05-25/part-...parquet`).
    pub path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Partition column values (`None`: the null partition).
    pub partition_values: BTreeMap<String, Option<String>>,
    /// Number of rows, when the file's statistics record it.
    pub num_records: Option<u64>,
    /// When the file was written, milliseconds since the epoch.
    pub modification_time_ms: i64,
}

/// One commit of a table's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// Table version the commit created.
    pub version: i64,
    /// Commit time, milliseconds since the epoch, if recorded.
    pub timestamp_ms: Option<i64>,
    /// Operation (`WRITE`, `OPTIMIZE`, `VACUUM END`, `CREATE TABLE`...), if recorded.
    pub operation: Option<String>,
    /// Application transactions (consumed positions) the commit recorded.
    pub txns: Vec<AppTxn>,
    /// Data files added.
    pub files_added: usize,
    /// Data files removed.
    pub files_removed: usize,
    /// Bytes of the files added.
    pub bytes_added: u64,
}

impl LakeTable {
    /// The data files of the loaded version, with sizes, partitions and row counts.
    pub fn files(&self) -> Result<Vec<DataFileInfo>, LakeError> {
        let name = self.kind().name();
        let state = self
            .table
            .snapshot()
            .map_err(|err| LakeError::op(name, "list files", err))?;
        let log_data = state
            .snapshot()
            .try_log_data()
            .map_err(|err| LakeError::op(name, "list files", err))?;
        Ok(log_data
            .iter()
            .map(|file| DataFileInfo {
                path: file.path().into_owned(),
                size_bytes: u64::try_from(file.size()).unwrap_or(0),
                partition_values: file.partition_values_map().into_iter().collect(),
                num_records: file.num_records().and_then(|n| u64::try_from(n).ok()),
                modification_time_ms: file.modification_time(),
            })
            .collect())
    }

    /// The latest `limit` commits up to the loaded version, newest first. Commits whose log
    /// entry was already cleaned up (older than the log retention) are left out.
    pub async fn history(&self, limit: usize) -> Result<Vec<CommitSummary>, LakeError> {
        let name = self.kind().name();
        let log_store = self.table.log_store();
        let Ok(latest) = u64::try_from(self.version()) else {
            return Ok(Vec::new());
        };
        // Commit files are small and independent: fetch a few at once (object stores have
        // high per-request latency), keeping newest-first order.
        let entries: Vec<(u64, Option<_>)> = futures::stream::iter((0..=latest).rev().take(limit))
            .map(|version| {
                let log_store = log_store.clone();
                async move {
                    let entry = log_store
                        .read_commit_entry(version)
                        .await
                        .map_err(|err| LakeError::op(name, "history", err))?;
                    Ok::<_, LakeError>((version, entry))
                }
            })
            .buffered(8)
            .try_collect()
            .await?;
        let mut summaries = Vec::with_capacity(entries.len());
        for (version, entry) in entries {
            // `None`: the entry was cleaned up (older than the log retention).
            let Some(bytes) = entry else { continue };
            let actions =
                get_actions(version, &bytes).map_err(|err| LakeError::op(name, "history", err))?;
            summaries.push(summarize(version, actions));
        }
        Ok(summaries)
    }
}

fn summarize(version: u64, actions: Vec<Action>) -> CommitSummary {
    let mut summary = CommitSummary {
        version: i64::try_from(version).unwrap_or(i64::MAX),
        timestamp_ms: None,
        operation: None,
        txns: Vec::new(),
        files_added: 0,
        files_removed: 0,
        bytes_added: 0,
    };
    for action in actions {
        match action {
            Action::CommitInfo(info) => {
                summary.timestamp_ms = info.in_commit_timestamp.or(info.timestamp);
                summary.operation = info.operation;
            }
            Action::Txn(txn) => summary.txns.push(AppTxn::new(txn.app_id, txn.version)),
            Action::Add(add) => {
                summary.files_added += 1;
                summary.bytes_added += u64::try_from(add.size).unwrap_or(0);
            }
            Action::Remove(_) => summary.files_removed += 1,
            _ => {}
        }
    }
    summary
}

impl LakeTable {
    /// The data files that commits after version `after`, up to the loaded version, added
    /// with new rows (compaction rewrites, which carry no new data, are left out), as
    /// paths relative to the table root. `None` when a commit's log entry is gone (older
    /// than the log retention): the caller must read the whole table instead.
    pub async fn data_files_added_since(
        &self,
        after: i64,
    ) -> Result<Option<Vec<String>>, LakeError> {
        let name = self.kind().name();
        let log_store = self.table.log_store();
        let from = u64::try_from(after.saturating_add(1)).unwrap_or(0);
        let Ok(upto) = u64::try_from(self.version()) else {
            return Ok(Some(Vec::new()));
        };
        let entries: Vec<(u64, Option<_>)> = futures::stream::iter(from..=upto)
            .map(|version| {
                let log_store = log_store.clone();
                async move {
                    let entry = log_store
                        .read_commit_entry(version)
                        .await
                        .map_err(|err| LakeError::op(name, "read commits", err))?;
                    Ok::<_, LakeError>((version, entry))
                }
            })
            .buffered(8)
            .try_collect()
            .await?;
        let mut paths = Vec::new();
        for (version, entry) in entries {
            let Some(bytes) = entry else {
                return Ok(None);
            };
            let actions = get_actions(version, &bytes)
                .map_err(|err| LakeError::op(name, "read commits", err))?;
            paths.extend(actions.into_iter().filter_map(|action| match action {
                Action::Add(add) if add.data_change => Some(add.path),
                _ => None,
            }));
        }
        Ok(Some(paths))
    }

    /// Reads `columns` of the given data files (paths as [`Self::data_files_added_since`]
    /// gives them), one file at a time. Meant for the files of a few commits: each file
    /// is fetched whole.
    pub async fn read_data_files(
        &self,
        paths: &[String],
        columns: &[&str],
    ) -> Result<Vec<deltalake::arrow::array::RecordBatch>, LakeError> {
        use deltalake::parquet::arrow::ProjectionMask;
        use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use object_store::ObjectStoreExt as _;
        let name = self.kind().name();
        let failed = |what: String| {
            LakeError::op(
                name,
                "read data file",
                deltalake::DeltaTableError::Generic(what),
            )
        };
        let store = self.table.object_store();
        let mut batches = Vec::new();
        for path in paths {
            let location = deltalake::Path::from_url_path(path)
                .map_err(|err| failed(format!("data file path {path:?}: {err}")))?;
            let bytes = store
                .get(&location)
                .await
                .map_err(|err| LakeError::op(name, "read data file", err.into()))?
                .bytes()
                .await
                .map_err(|err| LakeError::op(name, "read data file", err.into()))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .map_err(|err| failed(format!("{path}: {err}")))?;
            let schema = builder.parquet_schema();
            let wanted: Vec<usize> = (0..schema.num_columns())
                .filter(|i| columns.contains(&schema.column(*i).path().string().as_str()))
                .collect();
            let mask = ProjectionMask::leaves(schema, wanted);
            let reader = builder
                .with_projection(mask)
                .build()
                .map_err(|err| failed(format!("{path}: {err}")))?;
            for batch in reader {
                batches.push(batch.map_err(|err| failed(format!("{path}: {err}")))?);
            }
        }
        Ok(batches)
    }

    /// Runs `sql` over this handle's loaded version of the table, registered as
    /// `snapshot`: unlike the shared SQL engine, which moves every table to its newest
    /// version, the answer is known to be of [`Self::version`].
    pub async fn query_loaded_version(
        &self,
        sql: &str,
    ) -> Result<Vec<deltalake::arrow::array::RecordBatch>, LakeError> {
        use deltalake::datafusion::prelude::SessionContext;
        let name = self.kind().name();
        let failed = |err: deltalake::datafusion::error::DataFusionError| {
            LakeError::op(name, "query", err.into())
        };
        let provider = self.table.table_provider().await.map_err(failed)?;
        let ctx = SessionContext::new();
        ctx.register_table("snapshot", provider).map_err(failed)?;
        let frame = ctx.sql(sql).await.map_err(failed)?;
        frame.collect().await.map_err(failed)
    }
}
