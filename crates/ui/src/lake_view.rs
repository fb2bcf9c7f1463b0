//! The lake: tables with sizes, partitions, files, recent commits with the log offsets
//! they recorded, the last compaction, and each table's columns with the commits that
//! added them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use clickstream_lake::{ColumnInfo, CommitSummary, LakeTable, TableKind};
use serde::Serialize;

use crate::sampler::TableStats;
use crate::{UiError, UiState};

/// Commits shown per table.
const COMMITS: usize = 25;
/// Files listed per table (the newest).
const FILES: usize = 100;
/// Partitions listed per table (the last by value).
const PARTITIONS: usize = 200;
/// How far back, in commits, the first look at a table's log goes for its schema history.
const SCHEMA_LOOKBACK: i64 = 10_000;
/// Commits read for the schema history per request at most: a longer way to go is read
/// over the next requests (the page asks every few seconds).
const SCHEMA_READ_PER_REQUEST: i64 = 2_000;

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
    /// The loaded version's columns, in order.
    columns: Vec<ColumnView>,
    /// Which commits added which columns.
    schema_history: SchemaHistoryView,
}

#[derive(Debug, Serialize)]
struct ColumnView {
    name: String,
    /// Delta type (`long`, `struct<name: string, variant: long>`...).
    #[serde(rename = "type")]
    data_type: String,
    nullable: bool,
    /// For a site's own field, its Avro path (`event.price`).
    avro_path: Option<String>,
    /// For a site's own field, the id of the schema version that added it.
    schema_id: Option<u32>,
}

impl From<ColumnInfo> for ColumnView {
    fn from(column: ColumnInfo) -> Self {
        ColumnView {
            name: column.name,
            data_type: column.delta_type,
            nullable: column.nullable,
            avro_path: column.avro_path,
            schema_id: column.schema_id,
        }
    }
}

/// The commits that changed the table's columns, read from its log.
#[derive(Debug, Serialize)]
struct SchemaHistoryView {
    /// Oldest first.
    changes: Vec<SchemaChangeView>,
    /// The oldest commit read: changes before it are not known.
    read_from: Option<i64>,
    /// The newest commit read; below the table's version while the log is still being
    /// read (a little more each request).
    read_to: i64,
    /// Columns no change read accounts for: there before `read_from` (the log was read from
    /// there, or older entries are cleaned up).
    columns_before: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SchemaChangeView {
    version: i64,
    timestamp_ms: Option<i64>,
    operation: Option<String>,
    /// With their Delta types then.
    columns_added: Vec<ChangedColumnView>,
    /// Struct columns that grew children, with their Delta types after the commit.
    columns_widened: Vec<ChangedColumnView>,
    columns_removed: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ChangedColumnView {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
}

fn changed_columns(columns: &[(String, String)]) -> Vec<ChangedColumnView> {
    columns
        .iter()
        .map(|(name, data_type)| ChangedColumnView {
            name: name.clone(),
            data_type: data_type.clone(),
        })
        .collect()
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
    let columns = table.columns()?;
    let schema_history = schema_history(&state, &table, &columns).await?;

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
        columns: columns.into_iter().map(ColumnView::from).collect(),
        schema_history,
    }))
}

/// The table's schema history, read on from where the last request left it.
async fn schema_history(
    state: &UiState,
    table: &LakeTable,
    columns: &[ColumnInfo],
) -> Result<SchemaHistoryView, UiError> {
    let mut histories = state.schema_histories.lock().await;
    let history = histories.entry(table.kind()).or_default();
    if let Some(versions) = next_schema_read(history.read_to(), table.version()) {
        let to = *versions.end();
        let commits = table.commits(versions).await?;
        history.extend(&commits, to);
    }
    let accounted: std::collections::HashSet<&str> = history
        .changes()
        .iter()
        .flat_map(|c| c.columns_added.iter().map(|(name, _)| name.as_str()))
        .collect();
    Ok(SchemaHistoryView {
        changes: history
            .changes()
            .iter()
            .map(|c| SchemaChangeView {
                version: c.version,
                timestamp_ms: c.timestamp_ms,
                operation: c.operation.clone(),
                columns_added: changed_columns(&c.columns_added),
                columns_widened: changed_columns(&c.columns_widened),
                columns_removed: c.columns_removed.clone(),
            })
            .collect(),
        read_from: history.read_from(),
        read_to: history.read_to(),
        columns_before: columns
            .iter()
            .filter(|c| !accounted.contains(c.name.as_str()))
            .map(|c| c.name.clone())
            .collect(),
    })
}

/// The commits to read next for a schema history read up to `read_to` (`-1`: nothing yet)
/// of a table at `version`: on from there, or the last [`SCHEMA_LOOKBACK`] at the first
/// look, [`SCHEMA_READ_PER_REQUEST`] at most. `None` when there is nothing to read (a
/// request that loaded the table just before another one may find the history past it).
fn next_schema_read(read_to: i64, version: i64) -> Option<std::ops::RangeInclusive<i64>> {
    let from = if read_to < 0 {
        (version - SCHEMA_LOOKBACK + 1).max(0)
    } else {
        read_to + 1
    };
    (from <= version).then(|| from..=version.min(from + SCHEMA_READ_PER_REQUEST - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_history_reads_on_in_bounded_steps_from_a_bounded_first_look() {
        assert_eq!(next_schema_read(-1, 0), Some(0..=0));
        assert_eq!(next_schema_read(-1, 40), Some(0..=40));
        assert_eq!(next_schema_read(40, 43), Some(41..=43));
        assert_eq!(next_schema_read(43, 43), None);
        assert_eq!(
            next_schema_read(45, 43),
            None,
            "read past by another request"
        );
        let late = 100_000;
        let first = next_schema_read(-1, late).expect("a first look");
        assert_eq!(*first.start(), late - SCHEMA_LOOKBACK + 1);
        assert_eq!(*first.end() - *first.start() + 1, SCHEMA_READ_PER_REQUEST);
        assert_eq!(
            next_schema_read(*first.end(), late).map(|r| *r.start()),
            Some(*first.end() + 1)
        );
    }
}
