//! A table's Parquet files written slice by slice, before the commit that adds them.
//!
//! The processor streams `events` into its files while a batch is built, so a batch holds
//! encoded pages rather than Arrow columns (issue 16, item 2): a [`FileWriter`] takes the
//! slices as they are cut, [`FileWriter::finish`] closes the files, and
//! [`LakeTable::append_files`] commits the [`WrittenFiles`] with the batch's `txn`s, in
//! one commit as [`LakeTable::append`] does with rows. Files written and never committed
//! (a failed write, a batch dropped) are orphans: nothing in the log names them, readers
//! never see them, and `vacuum` removes them.

use std::sync::Arc;

use clickstream_secret::Settings;
use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::Add;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};

use crate::table::writer_properties;
use crate::{AppTxn, LakeError, LakeTable, TableKind, evolve};

/// Where a table's files go and the schema it had when this was taken: what a
/// [`FileWriter`] needs from a [`LakeTable`], so that files can be written while the
/// handle itself is busy committing an earlier batch.
#[derive(Clone)]
pub struct FileTarget {
    kind: TableKind,
    table: DeltaTable,
    schema: SchemaRef,
    storage_options: Arc<Settings>,
}

impl std::fmt::Debug for FileTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTarget")
            .field("kind", &self.kind)
            .field("url", &self.table.table_url().as_str())
            .finish()
    }
}

/// Files a [`FileWriter`] wrote, not yet committed.
#[derive(Debug, Clone)]
pub struct WrittenFiles {
    adds: Vec<Add>,
    /// The widest schema the files were written with (each file has this schema or,
    /// written before a slice brought more columns, a narrower one).
    schema: SchemaRef,
    rows: usize,
}

impl WrittenFiles {
    /// Rows in the files.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The widest schema the files were written with.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

/// Writes slices of a table's rows into Parquet files as they come (the store receives
/// them as they are encoded: delta-rs's writer streams each open file as a multipart
/// upload), conformed to the table's columns. A slice that brings columns the files do
/// not have closes the open files and continues in new ones of the wider schema; the
/// commit records that schema ([`LakeTable::append_files`]).
#[derive(Debug)]
pub struct FileWriter {
    target: FileTarget,
    /// The schema of the files being written.
    schema: SchemaRef,
    writer: Option<RecordBatchWriter>,
    /// Files closed when the schema grew.
    closed: Vec<Add>,
    rows: usize,
}

impl FileWriter {
    /// A writer of `target`'s files; nothing is written before the first slice.
    pub fn new(target: FileTarget) -> Self {
        let schema = target.schema.clone();
        FileWriter {
            target,
            schema,
            writer: None,
            closed: Vec::new(),
            rows: 0,
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Encodes `slice` into the open files. On an error the files written so far are
    /// abandoned (the writer is of no further use: the batch must be written again).
    pub async fn write(&mut self, slice: RecordBatch) -> Result<(), LakeError> {
        if slice.num_rows() == 0 {
            return Ok(());
        }
        let name = self.target.kind.name();
        if let Some(evolution) =
            evolve::plan_schemas(name, &self.schema, std::slice::from_ref(slice.schema_ref()))?
        {
            if let Some(mut writer) = self.writer.take() {
                let adds = writer
                    .flush()
                    .await
                    .map_err(|err| LakeError::op(name, "append", err))?;
                self.closed.extend(adds);
            }
            self.schema = evolution.arrow;
        }
        let slice = evolve::conform(name, &slice, &self.schema)?;
        let rows = slice.num_rows();
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self.writer.insert(self.target.open_writer(&self.schema)?),
        };
        if let Err(err) = writer.write(slice).await {
            writer.reset();
            return Err(LakeError::op(name, "append", err));
        }
        self.rows += rows;
        Ok(())
    }

    /// Closes the files; what they hold is committed by [`LakeTable::append_files`].
    pub async fn finish(mut self) -> Result<WrittenFiles, LakeError> {
        let mut adds = std::mem::take(&mut self.closed);
        if let Some(mut writer) = self.writer.take() {
            let last = writer
                .flush()
                .await
                .map_err(|err| LakeError::op(self.target.kind.name(), "append", err))?;
            adds.extend(last);
        }
        Ok(WrittenFiles {
            adds,
            schema: self.schema,
            rows: self.rows,
        })
    }
}

impl FileTarget {
    /// A Parquet writer of this table's files with `schema` (the table's, or the table's
    /// grown by new columns that are committed with the files).
    fn open_writer(&self, schema: &SchemaRef) -> Result<RecordBatchWriter, LakeError> {
        open_writer(
            self.kind,
            &self.table,
            &self.storage_options,
            (*schema != self.schema).then(|| schema.clone()),
        )
    }
}

/// A Parquet writer of `table`'s files: with the loaded schema, or with `evolved`.
pub(crate) fn open_writer(
    kind: TableKind,
    table: &DeltaTable,
    storage_options: &Settings,
    evolved: Option<SchemaRef>,
) -> Result<RecordBatchWriter, LakeError> {
    let writer = match evolved {
        None => RecordBatchWriter::for_table(table),
        Some(schema) => RecordBatchWriter::try_new(
            table.table_url().as_str(),
            schema,
            Some(
                kind.partition_columns()
                    .iter()
                    .map(|c| (*c).to_string())
                    .collect(),
            ),
            Some(
                storage_options
                    .exposed()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        ),
    };
    Ok(writer
        .map_err(|err| LakeError::op(kind.name(), "append", err))?
        .with_writer_properties(writer_properties()))
}

impl LakeTable {
    /// What a [`FileWriter`] of this table needs, as the table stands now.
    pub fn file_target(&self) -> Result<FileTarget, LakeError> {
        Ok(FileTarget {
            kind: self.kind(),
            table: self.table.clone(),
            schema: self.arrow_schema()?,
            storage_options: self.storage_options.clone(),
        })
    }

    /// Commits `files` with `txns` in one commit, as [`LakeTable::append`] commits rows,
    /// with the table's schema grown by the files' new columns in the same commit. If
    /// another writer changed the schema meanwhile, the commit is planned again on the new
    /// one (the files stay as written: a column both added is the same field, or the
    /// commit is refused as a schema mismatch).
    pub async fn append_files(
        &mut self,
        files: &WrittenFiles,
        txns: &[AppTxn],
    ) -> Result<i64, LakeError> {
        /// Schema changes of other writers to wait out before giving up (transiently).
        const SCHEMA_MOVES: usize = 3;
        let name = self.kind().name();
        let mut moves = 0;
        loop {
            self.check_txns_advance(txns).await?;
            let evolution = evolve::plan_schemas(
                name,
                &*self.arrow_schema()?,
                std::slice::from_ref(&files.schema),
            )?;
            match self
                .commit_adds(files.adds.clone(), evolution, files.rows, txns)
                .await
            {
                Err(err) if err.is_schema_moved() && moves < SCHEMA_MOVES => {
                    moves += 1;
                    tracing::info!(table = name, error = %err, "table schema changed under an append; planning it again on the new schema");
                    self.refresh().await?;
                }
                other => return other,
            }
        }
    }
}
