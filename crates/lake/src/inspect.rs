//! Read-only views of a table for the UI and benchmarks: its data files, its columns and
//! its history, schema changes included.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use deltalake::arrow::datatypes::DataType as ArrowDataType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::{Action, CommitInfo};
use deltalake::logstore::{LogStore as _, get_actions};
use futures::{StreamExt as _, TryStreamExt as _};

use crate::avro::{AVRO_PATH_KEY, SCHEMA_ID_KEY};
use crate::{AppTxn, LakeError, LakeTable};

mod schema_history;

pub use schema_history::{SchemaChange, SchemaHistory};

/// Commit files read at once: they are small and independent, and object stores have high
/// per-request latency.
const CONCURRENT_READS: usize = 8;

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
    /// The table's schema as the commit set it (a `metaData` action), if it did.
    pub schema: Option<SchemaUpdate>,
}

/// A commit's `metaData` action: the table's columns from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaUpdate {
    /// The table's top-level columns after the commit, in order: name and Delta type.
    pub columns: Vec<(String, String)>,
    /// The columns the commit's info says it added: `operationMetrics.columns_added` of an
    /// append that brought new columns ([`LakeTable::append`]), the fields of an `ADD
    /// COLUMN` (a newer build's columns, added at open); `None` when it says nothing.
    pub declared_added: Option<Vec<String>>,
    /// The struct columns the commit's info says it grew children in
    /// (`operationMetrics.columns_widened` of an append); `None` when it says nothing.
    pub declared_widened: Option<Vec<String>>,
}

/// One column of a table's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Its Delta type (`long`, `string`, `struct<name: string, variant: long>`...).
    pub delta_type: String,
    /// Whether it may be null.
    pub nullable: bool,
    /// For a site's own field, its Avro path (`event.price`), from the column's metadata.
    pub avro_path: Option<String>,
    /// For a site's own field, the id of the schema version that added it.
    pub schema_id: Option<u32>,
}

/// The Delta type of an Arrow type, as Delta writes it in a schema (`double`,
/// `array<string>`, `map<string, string>`); Arrow's name when Delta has no such type.
pub fn delta_type_name(data_type: &ArrowDataType) -> String {
    let delta: Result<deltalake::kernel::DataType, _> = data_type.try_into_kernel();
    delta.map_or_else(|_| data_type.to_string(), |t| t.to_string())
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

    /// Whether the loaded version reads as its data files' Parquet plus their partition
    /// values: reader protocol version 1, so no deletion vectors, no column mapping and no
    /// other reader feature (the lake writes version 1; another writer may have upgraded it).
    pub fn reads_as_plain_parquet(&self) -> Result<bool, LakeError> {
        let name = self.kind().name();
        let state = self
            .table
            .snapshot()
            .map_err(|err| LakeError::op(name, "read protocol", err))?;
        // The kernel's accessors are private; its serialised form is the log's action.
        let protocol = serde_json::to_value(state.protocol())
            .map_err(|err| LakeError::op(name, "read protocol", err.into()))?;
        Ok(protocol["minReaderVersion"].as_i64() == Some(1))
    }

    /// The loaded version's columns, with their Delta types and, for a site's own fields,
    /// the Avro path and schema id from their metadata.
    pub fn columns(&self) -> Result<Vec<ColumnInfo>, LakeError> {
        Ok(self
            .arrow_schema()?
            .fields()
            .iter()
            .map(|field| ColumnInfo {
                name: field.name().clone(),
                delta_type: delta_type_name(field.data_type()),
                nullable: field.is_nullable(),
                avro_path: field.metadata().get(AVRO_PATH_KEY).cloned(),
                schema_id: field
                    .metadata()
                    .get(SCHEMA_ID_KEY)
                    .and_then(|id| id.parse().ok()),
            })
            .collect())
    }

    /// The latest `limit` commits up to the loaded version, newest first. Commits whose log
    /// entry was already cleaned up (older than the log retention) are left out.
    pub async fn history(&self, limit: usize) -> Result<Vec<CommitSummary>, LakeError> {
        let Ok(latest) = u64::try_from(self.version()) else {
            return Ok(Vec::new());
        };
        let versions: Vec<u64> = (0..=latest).rev().take(limit).collect();
        self.read_commits(versions, "history").await
    }

    /// The commits of `versions` that exist up to the loaded version, oldest first. Commits
    /// whose log entry was already cleaned up (older than the log retention) are left out.
    pub async fn commits(
        &self,
        versions: RangeInclusive<i64>,
    ) -> Result<Vec<CommitSummary>, LakeError> {
        let from = u64::try_from(*versions.start()).unwrap_or(0);
        let Ok(to) = u64::try_from((*versions.end()).min(self.version())) else {
            return Ok(Vec::new());
        };
        self.read_commits((from..=to).collect(), "read commits")
            .await
    }

    /// Summaries of the commits of `versions`, in that order, skipping cleaned-up ones.
    async fn read_commits(
        &self,
        versions: Vec<u64>,
        what: &'static str,
    ) -> Result<Vec<CommitSummary>, LakeError> {
        let name = self.kind().name();
        let log_store = self.table.log_store();
        let entries: Vec<(u64, Option<_>)> = futures::stream::iter(versions)
            .map(|version| {
                let log_store = log_store.clone();
                async move {
                    let entry = log_store
                        .read_commit_entry(version)
                        .await
                        .map_err(|err| LakeError::op(name, what, err))?;
                    Ok::<_, LakeError>((version, entry))
                }
            })
            .buffered(CONCURRENT_READS)
            .try_collect()
            .await?;
        let mut summaries = Vec::with_capacity(entries.len());
        for (version, entry) in entries {
            // `None`: the entry was cleaned up (older than the log retention).
            let Some(bytes) = entry else { continue };
            let actions =
                get_actions(version, &bytes).map_err(|err| LakeError::op(name, what, err))?;
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
        schema: None,
    };
    let mut declared = (None, None);
    for action in actions {
        match action {
            Action::CommitInfo(info) => {
                declared = declared_columns(&info);
                summary.timestamp_ms = info.in_commit_timestamp.or(info.timestamp);
                summary.operation = info.operation;
            }
            Action::Txn(txn) => summary.txns.push(AppTxn::new(txn.app_id, txn.version)),
            Action::Add(add) => {
                summary.files_added += 1;
                summary.bytes_added += u64::try_from(add.size).unwrap_or(0);
            }
            Action::Remove(_) => summary.files_removed += 1,
            Action::Metadata(metadata) => {
                // A schema the kernel cannot read is not a column change we can show.
                if let Ok(schema) = metadata.parse_schema() {
                    summary.schema = Some(SchemaUpdate {
                        columns: schema
                            .fields()
                            .map(|f| (f.name().clone(), f.data_type().to_string()))
                            .collect(),
                        declared_added: None,
                        declared_widened: None,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(schema) = &mut summary.schema {
        (schema.declared_added, schema.declared_widened) = declared;
    }
    summary
}

/// The columns a commit's info says it added and widened: `operationMetrics.columns_added`
/// and `columns_widened` (our appends), or the `fields` parameter of an `ADD COLUMN` (a
/// JSON text of Delta fields).
fn declared_columns(info: &CommitInfo) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let metrics = info.info.get("operationMetrics");
    let metric = |key: &str| names(metrics?.get(key)?, None);
    if let Some(added) = metric("columns_added") {
        return (Some(added), metric("columns_widened"));
    }
    let fields = info
        .operation_parameters
        .as_ref()
        .and_then(|parameters| parameters.get("fields"));
    let added = match fields {
        Some(serde_json::Value::String(text)) => serde_json::from_str(text)
            .ok()
            .and_then(|fields| names(&fields, Some("name"))),
        Some(other) => names(other, Some("name")),
        None => None,
    };
    (added, None)
}

/// The strings of a JSON array, or of field `key` of each of its objects.
fn names(value: &serde_json::Value, key: Option<&str>) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| {
            key.map_or(Some(item), |key| item.get(key))
                .and_then(|name| name.as_str().map(str::to_string))
        })
        .collect()
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
            .buffered(CONCURRENT_READS)
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

#[cfg(test)]
mod tests {
    use deltalake::arrow::datatypes::{Field, Fields};

    use super::*;

    /// The actions of a commit file: one JSON action a line, as delta-rs writes them.
    fn actions(lines: &[String]) -> Vec<Action> {
        lines
            .iter()
            .map(|line| serde_json::from_str(line).expect("an action"))
            .collect()
    }

    fn commit_info(operation: &str, extra: serde_json::Value) -> String {
        let mut info =
            serde_json::json!({"timestamp": 1_700_000_000_000_i64, "operation": operation});
        if let (Some(info), serde_json::Value::Object(extra)) = (info.as_object_mut(), extra) {
            info.extend(extra);
        }
        serde_json::json!({ "commitInfo": info }).to_string()
    }

    /// A `metaData` action with `columns`: `(name, Delta type as JSON)`.
    fn metadata(columns: &[(&str, serde_json::Value)]) -> String {
        let fields: Vec<_> = columns
            .iter()
            .map(|(c, t)| serde_json::json!({"name": c, "type": t, "nullable": true, "metadata": {}}))
            .collect();
        let schema = serde_json::json!({"type": "struct", "fields": fields}).to_string();
        serde_json::json!({"metaData": {
            "id": "5a2b", "format": {"provider": "parquet", "options": {}},
            "schemaString": schema, "partitionColumns": [], "configuration": {},
            "createdTime": 1_700_000_000_000_i64,
        }})
        .to_string()
    }

    fn add() -> String {
        serde_json::json!({"add": {
            "path": "part-0.parquet", "partitionValues": {}, "size": 100,
            "modificationTime": 1_700_000_000_000_i64, "dataChange": true,
        }})
        .to_string()
    }

    #[test]
    fn an_evolving_append_says_which_columns_it_added() {
        let commit = summarize(
            7,
            actions(&[
                add(),
                metadata(&[
                    ("id", "long".into()),
                    ("price", "double".into()),
                    ("experiment", experiment()),
                ]),
                commit_info(
                    "WRITE",
                    serde_json::json!({"operationMetrics": {"num_added_rows": 3,
                        "columns_added": ["price"], "columns_widened": ["experiment"]}}),
                ),
            ]),
        );
        assert_eq!(commit.files_added, 1);
        assert_eq!(
            commit.schema,
            Some(SchemaUpdate {
                columns: vec![
                    ("id".into(), "long".into()),
                    ("price".into(), "double".into()),
                    (
                        "experiment".into(),
                        "struct<name: string, bucket: long>".into()
                    ),
                ],
                declared_added: Some(vec!["price".into()]),
                declared_widened: Some(vec!["experiment".into()]),
            })
        );
        let plain = summarize(
            8,
            actions(&[add(), commit_info("WRITE", serde_json::json!({}))]),
        );
        assert_eq!(plain.schema, None);
    }

    #[test]
    fn add_column_names_its_fields_in_its_parameters() {
        let fields = r#"[{"name":"bot_kind","type":"string","nullable":true,"metadata":{}}]"#;
        let commit = summarize(
            3,
            actions(&[
                metadata(&[("id", "long".into()), ("bot_kind", "string".into())]),
                commit_info(
                    "ADD COLUMN",
                    serde_json::json!({"operationParameters": {"fields": fields}}),
                ),
            ]),
        );
        let schema = commit.schema.expect("metaData");
        assert_eq!(schema.declared_added, Some(vec!["bot_kind".to_string()]));
        assert_eq!(schema.declared_widened, None);
    }

    /// A struct type as a Delta schema writes it.
    fn experiment() -> serde_json::Value {
        serde_json::json!({"type": "struct", "fields": [
            {"name": "name", "type": "string", "nullable": true, "metadata": {}},
            {"name": "bucket", "type": "long", "nullable": true, "metadata": {}},
        ]})
    }

    #[test]
    fn delta_type_names_are_deltas() {
        let experiment = ArrowDataType::Struct(Fields::from(vec![
            Field::new("name", ArrowDataType::Utf8, true),
            Field::new("variant", ArrowDataType::Int64, true),
        ]));
        for (arrow, delta) in [
            (ArrowDataType::Float64, "double"),
            (ArrowDataType::Utf8, "string"),
            (
                crate::avro::data_type(
                    &apache_avro::Schema::parse_str(r#"{"type": "array", "items": "string"}"#)
                        .expect("schema"),
                )
                .expect("type"),
                "array<string>",
            ),
            (
                crate::avro::data_type(
                    &apache_avro::Schema::parse_str(r#"{"type": "map", "values": "long"}"#)
                        .expect("schema"),
                )
                .expect("type"),
                "map<string, long>",
            ),
            (experiment, "struct<name: string, variant: long>"),
            (ArrowDataType::Decimal128(10, 2), "decimal(10,2)"),
        ] {
            assert_eq!(delta_type_name(&arrow), delta);
        }
    }
}
