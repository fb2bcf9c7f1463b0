//! Schema evolution inside an append: which columns a batch adds to its table, and the
//! batch laid out in the table's column order.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use deltalake::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};

use crate::avro::{AVRO_PATH_KEY, holds, merge_types, widen};
use crate::{LakeError, TableKind};

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
/// may be added only if it is nullable and either carries its Avro path or is one of this
/// build's columns of the table (a table written before it); a user struct column may
/// grow children (see [`crate::avro::merge_types`]); the same name in two batches must
/// have merging types. A column of this build that the table holds as a site's field of
/// the same name (a table evolved with that field before this build) is left out: the
/// site's field keeps the name.
pub(crate) fn plan(
    name: &'static str,
    table: &Schema,
    batches: &[RecordBatch],
) -> Result<Option<Evolution>, LakeError> {
    let schemas: Vec<SchemaRef> = batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .map(RecordBatch::schema)
        .collect();
    plan_schemas(name, table, &schemas)
}

/// The evolution files of `schemas` need on a table of `table` schema, as [`plan`] says
/// for batches of those schemas.
pub(crate) fn plan_schemas(
    name: &'static str,
    table: &Schema,
    schemas: &[SchemaRef],
) -> Result<Option<Evolution>, LakeError> {
    let mismatch = |detail: String| LakeError::SchemaMismatch {
        table: name,
        detail,
    };
    let mut added: Vec<FieldRef> = Vec::new();
    let mut widened: Vec<FieldRef> = Vec::new();
    for schema in schemas {
        for field in schema.fields() {
            if let Ok(have) = table.field_with_name(field.name()) {
                if avro_path(have) != avro_path(field) {
                    if avro_path(field).is_none() {
                        continue;
                    }
                    return Err(mismatch(format!(
                        "column {} holds another field than the batch's {}",
                        field.name(),
                        avro_path(field).unwrap_or_default()
                    )));
                }
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
            if !field.is_nullable() || !(avro_path(field).is_some() || ours(name, field)) {
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

/// The Avro path a user column comes from; `None` for this build's columns.
fn avro_path(field: &Field) -> Option<&str> {
    field.metadata().get(AVRO_PATH_KEY).map(String::as_str)
}

/// Whether `field` is one of this build's nullable columns of table `name`, as declared.
fn ours(name: &str, field: &Field) -> bool {
    TableKind::from_name(name)
        .map(TableKind::arrow_schema)
        .and_then(|schema| schema.field_with_name(field.name()).ok().cloned())
        .is_some_and(|declared| declared.is_nullable() && declared.data_type() == field.data_type())
}

/// The batch's column for the table's `field`: the same name and the same Avro path (none
/// for this build's columns).
fn column_for<'b>(batch: &'b RecordBatch, field: &Field) -> Option<&'b ArrayRef> {
    let schema = batch.schema_ref();
    let index = schema
        .fields()
        .iter()
        .position(|f| f.name() == field.name() && avro_path(f) == avro_path(field))?;
    Some(batch.column(index))
}

/// `batch` with exactly `target`'s columns, in its order: the batch's column of each name
/// and origin (see [`column_for`]), or nulls where the batch has none. A column whose type
/// differs is refused.
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
        match column_for(batch, field) {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use deltalake::arrow::array::{Array, AsArray, Int64Array};
    use deltalake::arrow::datatypes::{DataType, Int64Type};

    use super::*;
    use crate::rows::{InvalidEventRow, InvalidEventsBuilder};

    fn invalid_events(source: Option<&str>) -> RecordBatch {
        let mut builder = InvalidEventsBuilder::new();
        builder.push(&InvalidEventRow {
            raw_json: "{}",
            reason: "missing field: id",
            correlation_id: None,
            source,
            received_at_ms: 0,
            source_partition: 0,
            source_offset: 0,
        });
        builder.finish()
    }

    /// `kind`'s schema without `column`, as a table written before it has it.
    fn without(kind: TableKind, column: &str) -> Schema {
        let schema = kind.arrow_schema();
        Schema::new(
            schema
                .fields()
                .iter()
                .filter(|f| f.name() != column)
                .cloned()
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn a_column_of_this_build_that_the_table_lacks_is_added_with_the_rows() {
        let table = without(TableKind::InvalidEvents, "source");
        let batch = invalid_events(Some("web"));
        let evolution = plan("invalid_events", &table, std::slice::from_ref(&batch))
            .expect("planned")
            .expect("an evolution");
        assert_eq!(evolution.added, ["source"]);
        let conformed = conform("invalid_events", &batch, &evolution.arrow).expect("conformed");
        let source = conformed.column_by_name("source").expect("source");
        assert_eq!(source.as_string::<i32>().value(0), "web");
    }

    #[test]
    fn a_column_of_another_table_or_type_is_still_refused() {
        let table = without(TableKind::DeadLetters, "source");
        let batch = invalid_events(Some("web"));
        let refused = plan("dead_letters", &table, &[batch]).expect_err("not dead_letters'");
        assert!(refused.to_string().contains("column raw_json"), "{refused}");
    }

    #[test]
    fn a_site_field_holding_the_name_keeps_it_and_this_builds_values_are_left_out() {
        let tagged = HashMap::from([(AVRO_PATH_KEY.to_string(), "source".to_string())]);
        let site = Field::new("source", DataType::Int64, true).with_metadata(tagged);
        let mut fields = without(TableKind::InvalidEvents, "source")
            .fields()
            .to_vec();
        fields.push(Arc::new(site.clone()));
        let table = Arc::new(Schema::new(fields));
        // A batch with this build's `source` and, after it, the site's field of that name.
        let ours = invalid_events(Some("web"));
        let mut fields = ours.schema().fields().to_vec();
        fields.push(Arc::new(site));
        let mut columns = ours.columns().to_vec();
        columns.push(Arc::new(Int64Array::from(vec![7])));
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");

        let evolution = plan("invalid_events", &table, std::slice::from_ref(&batch));
        assert!(evolution.expect("planned").is_none());
        let conformed = conform("invalid_events", &batch, &table).expect("conformed");
        let source = conformed.column_by_name("source").expect("source");
        assert_eq!(source.as_primitive::<Int64Type>().value(0), 7);
        assert_eq!(source.len(), 1);
        // Without the site's value in the batch, the column is null, never this build's.
        let conformed = conform("invalid_events", &ours, &table).expect("conformed");
        assert!(
            conformed
                .column_by_name("source")
                .expect("source")
                .is_null(0)
        );
    }
}
