//! Schema evolution inside an append: which columns a batch adds to its table, and the
//! batch laid out in the table's column order.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use deltalake::arrow::datatypes::{FieldRef, Schema, SchemaRef};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};

use crate::LakeError;
use crate::avro::{AVRO_PATH_KEY, holds, merge_types, widen};

/// A table schema grown by the columns of a batch.
#[derive(Debug)]
pub(crate) struct Evolution {
    /// The new schema, as Delta stores it.
    pub kernel: StructType,
    /// The new schema as Arrow, exactly as the table will report it once committed.
    pub arrow: SchemaRef,
    /// Names of the added columns.
    pub added: Vec<String>,
    /// Names of the struct columns that grew children.
    pub widened: Vec<String>,
}

/// The evolution `batches` need on a table of `table` schema, `None` if none. A column
/// may be added only if it is nullable and carries its Avro path; a user struct column may
/// grow children (see [`crate::avro::merge_types`]); the same name in two batches must
/// have merging types.
pub(crate) fn plan(
    name: &'static str,
    table: &Schema,
    batches: &[RecordBatch],
) -> Result<Option<Evolution>, LakeError> {
    let mismatch = |detail: String| LakeError::SchemaMismatch {
        table: name,
        detail,
    };
    let mut added: Vec<FieldRef> = Vec::new();
    let mut widened: Vec<FieldRef> = Vec::new();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        for field in batch.schema().fields() {
            if let Ok(have) = table.field_with_name(field.name()) {
                let current = widened
                    .iter()
                    .find(|f| f.name() == field.name())
                    .map_or(have.data_type(), |f| f.data_type());
                match merge_types(current, field.data_type()) {
                    Some(merged) if merged == *current => {}
                    Some(merged) if have.metadata().contains_key(AVRO_PATH_KEY) => {
                        widened.retain(|f| f.name() != field.name());
                        widened.push(Arc::new(have.clone().with_data_type(merged)));
                    }
                    _ => {
                        return Err(mismatch(format!(
                            "column {} is {} in the table and {} in a batch",
                            field.name(),
                            have.data_type(),
                            field.data_type()
                        )));
                    }
                }
                continue;
            }
            if let Some(seen) = added.iter_mut().find(|f| f.name() == field.name()) {
                match merge_types(seen.data_type(), field.data_type()) {
                    Some(merged) => *seen = Arc::new(seen.as_ref().clone().with_data_type(merged)),
                    None => {
                        return Err(mismatch(format!(
                            "new column {} is {} in one batch and {} in another",
                            field.name(),
                            seen.data_type(),
                            field.data_type()
                        )));
                    }
                }
                continue;
            }
            if !field.is_nullable() || !field.metadata().contains_key(AVRO_PATH_KEY) {
                return Err(mismatch(format!(
                    "a batch brings column {} ({}), which is not a nullable schema field",
                    field.name(),
                    field.data_type()
                )));
            }
            added.push(field.clone());
        }
    }
    if added.is_empty() && widened.is_empty() {
        return Ok(None);
    }
    let grown_field = |f: &FieldRef| {
        widened
            .iter()
            .find(|w| w.name() == f.name())
            .cloned()
            .unwrap_or_else(|| f.clone())
    };
    let fields: Vec<FieldRef> = table
        .fields()
        .iter()
        .map(grown_field)
        .chain(added.iter().cloned())
        .collect();
    let grown = Schema::new_with_metadata(fields, table.metadata().clone());
    let kernel: StructType = (&grown)
        .try_into_kernel()
        .map_err(|err| mismatch(format!("cannot express the new columns in delta: {err}")))?;
    let arrow: Schema = (&kernel)
        .try_into_arrow()
        .map_err(|err| mismatch(format!("cannot read the new schema back: {err}")))?;
    Ok(Some(Evolution {
        kernel,
        arrow: Arc::new(arrow),
        added: added.iter().map(|f| f.name().clone()).collect(),
        widened: widened.iter().map(|f| f.name().clone()).collect(),
    }))
}

/// `batch` with exactly `target`'s columns, in its order: the batch's column of each name,
/// or nulls where the batch has none. A column whose type differs is refused.
pub(crate) fn conform(
    name: &'static str,
    batch: &RecordBatch,
    target: &SchemaRef,
) -> Result<RecordBatch, LakeError> {
    if batch.schema() == *target {
        return Ok(batch.clone());
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        match batch.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => columns.push(column.clone()),
            // A narrower struct (a batch planned before the column grew): nulls in the
            // children it lacks.
            Some(column) if holds(field.data_type(), column.data_type()) => {
                columns.push(widen(column, field.data_type()).map_err(|detail| {
                    LakeError::SchemaMismatch {
                        table: name,
                        detail,
                    }
                })?)
            }
            Some(column) => {
                return Err(LakeError::SchemaMismatch {
                    table: name,
                    detail: format!(
                        "column {} is {} in the table and {} in the batch",
                        field.name(),
                        field.data_type(),
                        column.data_type()
                    ),
                });
            }
            None if field.is_nullable() => {
                columns.push(new_null_array(field.data_type(), batch.num_rows()))
            }
            None => {
                return Err(LakeError::SchemaMismatch {
                    table: name,
                    detail: format!("the batch lacks non-nullable column {}", field.name()),
                });
            }
        }
    }
    RecordBatch::try_new(target.clone(), columns).map_err(|source| LakeError::Arrow {
        table: name,
        source,
    })
}
