//! The lake: tables with sizes, partitions, files, recent commits with the log offsets
//! they recorded, and the last compaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use clickstream_lake::{CommitSummary, TableKind};
use serde::Serialize;

use crate::sampler::TableStats;
use crate::{UiError, UiState};

/// Commits shown per table.
const COMMITS: usize = 25;
/// Files listed per table (the newest).
const FILES: usize = 100;
/// Partitions listed per table (the last by value).
const PARTITIONS: usize = 200;

/// `GET /api/ui/lake`
#[derive(Debug, Serialize)]
pub(crate) struct LakeView {
    root: String,
    /// From the last sample (a second old at most).
    tables: Vec<TableStats>,
}

/// `GET /api/ui/lake`
pub(crate) async fn overview(State(state): State<Arc<UiState>>) -> Json<LakeView> {
    let (snapshot, _) = state.sampler.read();
    Json(LakeView {
        root: state.sources.lake.root().to_string(),
        tables: snapshot.map(|s| s.tables).unwrap_or_default(),
    })
}

/// One table in detail.
#[derive(Debug, Serialize)]
pub(crate) struct TableView {
    name: &'static str,
    url: String,
    version: i64,
    partition_columns: &'static [&'static str],
    file_count: usize,
    bytes: u64,
    rows: u64,
    /// By partition value, the last [`PARTITIONS`].
    partitions: Vec<PartitionView>,
    partition_count: usize,
    /// The newest [`FILES`] files.
    files: Vec<FileView>,
    /// The latest [`COMMITS`] commits, newest first.
    commits: Vec<CommitView>,
    last_compaction: Option<crate::sampler::Compaction>,
}

#[derive(Debug, Serialize)]
struct PartitionView {
    /// `column=value` (empty for an unpartitioned table).
    partition: String,
    files: usize,
    bytes: u64,
    rows: u64,
}

#[derive(Debug, Serialize)]
struct FileView {
    path: String,
    size_bytes: u64,
    rows: Option<u64>,
    modified_ms: i64,
}

#[derive(Debug, Serialize)]
struct CommitView {
    version: i64,
    timestamp_ms: Option<i64>,
    operation: Option<String>,
    files_added: usize,
    files_removed: usize,
    bytes_added: u64,
    /// The log positions the commit recorded (`txn` actions).
    offsets: Vec<TxnView>,
}

/// A `txn` action, its app id read back as group, topic and partition.
#[derive(Debug, Serialize)]
struct TxnView {
    app_id: String,
    group: Option<String>,
    topic: Option<String>,
    partition: Option<u32>,
    /// The next offset to read from that partition.
    next_offset: i64,
}

fn commit_view(commit: CommitSummary) -> CommitView {
    CommitView {
        version: commit.version,
        timestamp_ms: commit.timestamp_ms,
        operation: commit.operation,
        files_added: commit.files_added,
        files_removed: commit.files_removed,
        bytes_added: commit.bytes_added,
        offsets: commit
            .txns
            .into_iter()
            .map(|txn| {
                // `<group>:<topic>:<partition>`; neither group nor topic contains `:`.
                let mut parts = txn.app_id.splitn(3, ':');
                let (group, topic, partition) = (parts.next(), parts.next(), parts.next());
                TxnView {
                    group: group.map(str::to_string),
                    topic: topic.map(str::to_string),
                    partition: partition.and_then(|p| p.parse().ok()),
                    next_offset: txn.version,
                    app_id: txn.app_id,
                }
            })
            .collect(),
    }
}

/// `GET /api/ui/lake/{table}`
pub(crate) async fn table(
    State(state): State<Arc<UiState>>,
    Path(name): Path<String>,
) -> Result<Json<TableView>, UiError> {
    let kind = TableKind::from_name(&name).ok_or_else(|| {
        UiError::NotFound(format!(
            "no table {name:?}: the lake has events, invalid_events, dead_letters and \
             unique_users_daily"
        ))
    })?;
    let lake = &state.sources.lake;
    let table = lake.table(kind).await?;
    let mut files = table.files()?;
    let commits = table.history(COMMITS).await?;

    let mut partitions: BTreeMap<String, PartitionView> = BTreeMap::new();
    for file in &files {
        let key = file
            .partition_values
            .iter()
            .map(|(column, value)| {
                format!(
                    "{column}={}",
                    value.as_deref().unwrap_or("__HIVE_DEFAULT_PARTITION__")
                )
            })
            .collect::<Vec<_>>()
            .join("/");
        let entry = partitions.entry(key.clone()).or_insert(PartitionView {
            partition: key,
            files: 0,
            bytes: 0,
            rows: 0,
        });
        entry.files += 1;
        entry.bytes += file.size_bytes;
        entry.rows += file.num_records.unwrap_or(0);
    }
    let partition_count = partitions.len();
    let file_count = files.len();
    let bytes = files.iter().map(|f| f.size_bytes).sum();
    let rows = files.iter().filter_map(|f| f.num_records).sum();
    files.sort_by_key(|f| std::cmp::Reverse(f.modification_time_ms));
    files.truncate(FILES);
    let (snapshot, _) = state.sampler.read();
    let last_compaction = snapshot
        .and_then(|s| s.tables.into_iter().find(|t| t.name == kind.name()))
        .and_then(|t| t.last_compaction);
    Ok(Json(TableView {
        name: kind.name(),
        url: lake.table_url(kind).to_string(),
        version: table.version(),
        partition_columns: kind.partition_columns(),
        file_count,
        bytes,
        rows,
        partitions: partitions.into_values().rev().take(PARTITIONS).collect(),
        partition_count,
        files: files
            .into_iter()
            .map(|f| FileView {
                path: f.path,
                size_bytes: f.size_bytes,
                rows: f.num_records,
                modified_ms: f.modification_time_ms,
            })
            .collect(),
        commits: commits.into_iter().map(commit_view).collect(),
        last_compaction,
    }))
}
