//! A table version's data files as a plain Parquet scan.
//!
//! delta-rs's provider reads a table through the Delta kernel: one group of every file, a
//! file-id column added to each batch and the logical schema restored above the Parquet scan
//! batch by batch, with every predicate evaluated row by row inside the decoder. Our tables
//! use none of the features that needs (no deletion vectors, no column mapping, partition
//! values plain Hive-style), so a query reads the pinned version's active files the way a
//! Parquet reader reads a directory: the files split over the session's partitions,
//! partition values as constant columns, predicates used to skip files and row groups by
//! their statistics (and applied above the scan), footers cached between statements. The files, their
//! partition values and row counts come from the version's log, never from listing a
//! directory, so a statement sees exactly the version it was planned against.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use clickstream_lake::{DataFileInfo, LakeTable, TableKind};
use deltalake::arrow::array::{Array as _, AsArray as _, RecordBatch};
use deltalake::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use deltalake::datafusion::catalog::{Session, TableProvider};
use deltalake::datafusion::common::ToDFSchema as _;
use deltalake::datafusion::common::stats::Precision;
use deltalake::datafusion::common::{ScalarValue, Statistics};
use deltalake::datafusion::datasource::TableType;
use deltalake::datafusion::datasource::file_format::FileFormat as _;
use deltalake::datafusion::datasource::file_format::parquet::ParquetFormat;
use deltalake::datafusion::datasource::listing::PartitionedFile;
use deltalake::datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use deltalake::datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use deltalake::datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use deltalake::datafusion::datasource::source::DataSourceExec;
use deltalake::datafusion::datasource::table_schema::TableSchema;
use deltalake::datafusion::error::{DataFusionError, Result};
use deltalake::datafusion::execution::object_store::ObjectStoreUrl;
use deltalake::datafusion::logical_expr::utils::conjunction;
use deltalake::datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use deltalake::datafusion::physical_plan::ExecutionPlan;
use deltalake::datafusion::physical_plan::empty::EmptyExec;
use deltalake::logstore::LogStoreRef;
use deltalake::{ObjectStore, Path};

use crate::QueryError;
use crate::local_files::LocalFiles;

/// The active files of one table version, read as Parquet.
#[derive(Debug)]
pub(crate) struct LakeScan {
    /// The table's columns in the order Delta declares them (partition columns included).
    schema: SchemaRef,
    /// The columns the files hold, then the partition columns: how the scan lays them out.
    scan_schema: TableSchema,
    /// For each of `schema`'s columns, its index in `scan_schema`.
    to_scan: Vec<usize>,
    files: Vec<PartitionedFile>,
    log_store: LogStoreRef,
    /// The table's directory, when its files are on the local file system: they are then
    /// read on the query thread (`local_files.rs`).
    local_root: Option<PathBuf>,
}

impl LakeScan {
    /// The provider of `table`'s loaded version.
    pub(crate) fn of(kind: TableKind, table: &LakeTable) -> Result<Self, QueryError> {
        let delta = table.arrow_schema()?;
        let schema = Arc::new(Schema::new_with_metadata(
            delta.fields().iter().map(with_views).collect::<Vec<_>>(),
            delta.metadata().clone(),
        ));
        let partitions: Vec<FieldRef> = kind
            .partition_columns()
            .iter()
            .map(|name| schema.field_with_name(name).map(|f| Arc::new(f.clone())))
            .collect::<Result<_, _>>()
            .map_err(|e| QueryError::Execution(format!("table {}: {e}", kind.name())))?;
        let (file_fields, to_scan) = scan_order(&schema, &partitions);
        let file_schema = Arc::new(Schema::new(file_fields));
        let log_store = table.delta_table().log_store();
        let files = table
            .files()?
            .iter()
            .map(|file| data_file(file, &partitions, &file_schema))
            .collect::<Result<_>>()
            .map_err(|e| QueryError::from_datafusion(&e))?;
        Ok(Self {
            scan_schema: TableSchema::builder(file_schema)
                .with_table_partition_cols(partitions)
                .build(),
            schema,
            to_scan,
            files,
            local_root: local_root(&log_store),
            log_store,
        })
    }

    /// What the scan of `files` knows before reading them: their row count, when every
    /// one's log entry records it.
    fn statistics_of_scan(&self, files: &[PartitionedFile]) -> Statistics {
        let rows = files.iter().try_fold(0_usize, |sum, file| {
            let rows = file.statistics.as_ref()?.num_rows.get_value()?;
            Some(sum + rows)
        });
        let mut statistics = Statistics::new_unknown(self.scan_schema.table_schema());
        statistics.num_rows = rows.map_or(Precision::Absent, Precision::Exact);
        statistics
    }

    /// The table's object store under the URL its files are read through, registered with
    /// the session's runtime the first time.
    fn store_url(&self, state: &dyn Session) -> ObjectStoreUrl {
        let url = self.log_store.object_store_url();
        let runtime = state.runtime_env();
        if runtime.object_store(&url).is_err() {
            let store: Arc<dyn ObjectStore> = self.log_store.object_store(None);
            runtime.register_object_store(url.as_ref(), store);
        }
        url
    }

    /// The files whose partition values can satisfy `filters`: those that name only
    /// partition columns are evaluated once over a row of values per file, the way a
    /// directory of partitions is pruned before it is listed. The others are left to the
    /// Parquet scan (row-group statistics) and the filter above it.
    fn files_matching(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> Result<Vec<PartitionedFile>> {
        let partitions = self.scan_schema.table_partition_cols();
        let names: Vec<&str> = partitions.iter().map(|f| f.name().as_str()).collect();
        let on_partitions = filters
            .iter()
            .filter(|filter| !names.is_empty() && expr_applicable_for_cols(&names, filter))
            .cloned();
        let Some(filter) = conjunction(on_partitions) else {
            return Ok(self.files.clone());
        };
        let columns = (0..partitions.len())
            .map(|at| {
                ScalarValue::iter_to_array(
                    self.files.iter().map(|f| f.partition_values[at].clone()),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let values = RecordBatch::try_new(Arc::new(Schema::new(partitions.clone())), columns)?;
        let predicate = state.create_physical_expr(filter, &values.schema().to_dfschema()?)?;
        let verdicts = predicate.evaluate(&values)?.into_array(values.num_rows())?;
        let keep = verdicts.as_boolean_opt().ok_or_else(|| {
            DataFusionError::Internal(format!("partition filter of type {}", verdicts.data_type()))
        })?;
        Ok(self
            .files
            .iter()
            .enumerate()
            .filter(|&(at, _)| keep.is_valid(at) && keep.value(at))
            .map(|(_, file)| file.clone())
            .collect())
    }
}

/// The directory of a table whose log store is on the local file system.
fn local_root(log_store: &LogStoreRef) -> Option<PathBuf> {
    let location = log_store.config().location();
    if location.scheme() != "file" {
        return None;
    }
    location.to_file_path().ok()
}

/// The columns the files hold (the table's, less its partition columns, in order), and for
/// each of the table's columns its place in the scan's layout: the files' columns, then
/// the partition columns.
fn scan_order(schema: &Schema, partitions: &[FieldRef]) -> (Vec<FieldRef>, Vec<usize>) {
    let partition_at = |name: &str| partitions.iter().position(|p| p.name() == name);
    let file_fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .filter(|f| partition_at(f.name()).is_none())
        .cloned()
        .collect();
    let mut next_file = 0;
    let to_scan = schema
        .fields()
        .iter()
        .map(|field| match partition_at(field.name()) {
            Some(at) => file_fields.len() + at,
            None => {
                next_file += 1;
                next_file - 1
            }
        })
        .collect();
    (file_fields, to_scan)
}

/// A data file of the log, with its partition values and its row count when the log
/// records it.
fn data_file(
    file: &DataFileInfo,
    partitions: &[FieldRef],
    file_schema: &Schema,
) -> Result<PartitionedFile> {
    let values = partitions
        .iter()
        .map(|p| partition_value(p, file.partition_values.get(p.name())))
        .collect::<Result<Vec<_>>>()?;
    let mut statistics = Statistics::new_unknown(file_schema);
    statistics.num_rows = file
        .num_records
        .and_then(|n| usize::try_from(n).ok())
        .map_or(Precision::Absent, Precision::Exact);
    // Keep the log's percent-encoding when the path parses as one, as delta-rs does.
    let location = Path::parse(&file.path).unwrap_or_else(|_| Path::from(file.path.as_str()));
    let mut data = PartitionedFile::new(location.to_string(), file.size_bytes);
    data.object_meta.location = location;
    Ok(data
        .with_partition_values(values)
        .with_statistics(Arc::new(statistics)))
}

/// `field` with its strings and binaries (nested in structs and lists too) as views: how
/// DataFusion reads Parquet by default and how delta-rs's provider declares a table, so
/// values are not copied into contiguous buffers and short ones compare and hash inline.
fn with_views(field: &FieldRef) -> FieldRef {
    let data_type = match field.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8View,
        DataType::Binary | DataType::LargeBinary => DataType::BinaryView,
        DataType::Struct(children) => DataType::Struct(children.iter().map(with_views).collect()),
        DataType::List(item) => DataType::List(with_views(item)),
        DataType::LargeList(item) => DataType::LargeList(with_views(item)),
        _ => return Arc::clone(field),
    };
    Arc::new(field.as_ref().clone().with_data_type(data_type))
}

/// A file's value of partition column `field` from its log entry (`None`: the null partition).
fn partition_value(field: &FieldRef, value: Option<&Option<String>>) -> Result<ScalarValue> {
    match value.cloned().flatten() {
        Some(text) => ScalarValue::try_from_string(text, field.data_type()),
        None => ScalarValue::try_from(field.data_type()),
    }
}

/// The scan of `groups` by `source`: the columns at `columns` of the scan schema, the
/// version's statistics, at most `limit` rows.
fn scan_config(
    url: ObjectStoreUrl,
    source: Arc<dyn FileSource>,
    groups: Vec<FileGroup>,
    statistics: Statistics,
    columns: Vec<usize>,
    limit: Option<usize>,
) -> Result<FileScanConfig> {
    Ok(FileScanConfigBuilder::new(url, source)
        .with_file_groups(groups)
        .with_statistics(statistics)
        .with_projection_indices(Some(columns))?
        .with_limit(limit)
        .build())
}

#[async_trait]
impl TableProvider for LakeScan {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = match projection {
            Some(projection) => projection.iter().map(|&i| self.to_scan[i]).collect(),
            None => self.to_scan.clone(),
        };
        if self.files.is_empty() {
            let schema = self.schema.project(
                projection.map_or(&(0..self.schema.fields().len()).collect::<Vec<_>>(), |p| p),
            )?;
            return Ok(Arc::new(EmptyExec::new(Arc::new(schema))));
        }
        let files = self.files_matching(state, filters)?;
        let statistics = self.statistics_of_scan(&files);
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let mut options = state.table_options().parquet.clone();
        // The lake writes no Bloom filters: looking for them costs a read per file.
        options.global.bloom_filter_on_read = false;
        options.global.enable_page_index = false;
        let format = ParquetFormat::default().with_options(options.clone());
        let url = self.store_url(state);
        let Some(root) = &self.local_root else {
            let source = format.file_source(self.scan_schema.clone());
            let config = scan_config(url, source, groups, statistics, columns, limit)?;
            return format.create_physical_plan(state, config).await;
        };
        // What `ParquetFormat::create_physical_plan` builds, with a reader of local files.
        // Footers from the table's own store, not the one the session registered under
        // `url`: that URL is a lossy name of the table's location.
        let footers = CachedParquetFileReaderFactory::new(
            self.log_store.object_store(None),
            state.runtime_env().cache_manager.get_file_metadata_cache(),
        );
        let files = LocalFiles::new(root.clone(), footers);
        let mut source = ParquetSource::new(self.scan_schema.clone())
            .with_table_parquet_options(options)
            .with_parquet_file_reader_factory(Arc::new(files));
        if let Some(hint) = format.metadata_size_hint() {
            source = source.with_metadata_size_hint(hint);
        }
        let config = scan_config(url, Arc::new(source), groups, statistics, columns, limit)?;
        Ok(DataSourceExec::from_data_source(config))
    }

    /// Every filter is offered to the scan for skipping row groups by their statistics, and
    /// evaluated again above it: none is applied exactly by the scan.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    fn statistics(&self) -> Option<Statistics> {
        let mut statistics = Statistics::new_unknown(&self.schema);
        statistics.num_rows = self.statistics_of_scan(&self.files).num_rows;
        Some(statistics)
    }
}
