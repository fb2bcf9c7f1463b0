//! The `events` columns of a site's own fields, made as records arrive (see
//! [`crate::avro`]).

use std::collections::HashMap;

use apache_avro::types::Value;
use deltalake::arrow::array::ArrayRef;
use deltalake::arrow::compute::concat;
use deltalake::arrow::datatypes::FieldRef;

use crate::avro::{ColumnBuilder, WriterPlan, merge_types, widen};

/// One user column of a batch. Plans made before and after a version that grew a struct
/// column disagree on its type: the rows built so far are kept as a finished chunk and
/// widened at [`UserColumns::finish`], so one column of the widest type comes out.
struct Column {
    field: FieldRef,
    /// The plan field last accepted: rows of the same plan skip the type comparison.
    accepted: FieldRef,
    chunks: Vec<ArrayRef>,
    builder: ColumnBuilder,
    /// Rows in `chunks` and `builder`.
    rows: usize,
}

impl Column {
    fn new(field: &FieldRef, rows: usize) -> Self {
        let mut builder = ColumnBuilder::new(field.data_type());
        builder.append_nulls(rows);
        Column {
            field: field.clone(),
            accepted: field.clone(),
            chunks: Vec::new(),
            builder,
            rows,
        }
    }

    /// Makes the builder build `field`'s type, when it is wider.
    fn accept(&mut self, field: &FieldRef) {
        if std::sync::Arc::ptr_eq(field, &self.accepted) {
            return;
        }
        self.accepted = field.clone();
        if field.data_type() == self.field.data_type() {
            return;
        }
        let Some(merged) = merge_types(self.field.data_type(), field.data_type()) else {
            // The planning rules give every plan the same leaf types for a path.
            tracing::error!(column = %field.name(), have = %self.field.data_type(), got = %field.data_type(), "user column types disagree; keeping the first");
            return;
        };
        if merged == *self.field.data_type() {
            return;
        }
        self.chunks.push(self.builder.finish());
        self.builder = ColumnBuilder::new(&merged);
        self.field = std::sync::Arc::new(self.field.as_ref().clone().with_data_type(merged));
    }

    fn finish(mut self) -> (FieldRef, ArrayRef) {
        let last = self.builder.finish();
        if self.chunks.is_empty() {
            return (self.field, last);
        }
        self.chunks.push(last);
        let to = self.field.data_type();
        let widened: Result<Vec<ArrayRef>, String> =
            self.chunks.iter().map(|chunk| widen(chunk, to)).collect();
        let array = widened.and_then(|parts| {
            let refs: Vec<&dyn deltalake::arrow::array::Array> =
                parts.iter().map(|a| a.as_ref()).collect();
            concat(&refs).map_err(|e| e.to_string())
        });
        match array {
            Ok(array) => (self.field, array),
            // Every chunk was built from a type the final one holds.
            Err(reason) => {
                tracing::error!(column = %self.field.name(), %reason, "widening a user column failed; it is null in this batch");
                let nulls = deltalake::arrow::array::new_null_array(to, self.rows);
                (self.field, nulls)
            }
        }
    }
}

/// User columns of one batch, in the order they first appeared.
#[derive(Default)]
pub(crate) struct UserColumns {
    columns: Vec<Column>,
    by_name: HashMap<String, usize>,
}

impl UserColumns {
    /// Appends one record's values; `rows` is the number of rows before it. Columns this
    /// record does not fill get a null, columns new in this batch start with `rows` nulls.
    pub fn push(&mut self, rows: usize, plan: Option<(&WriterPlan, &Value)>) {
        if let Some((plan, record)) = plan {
            let scope = plan.scope();
            for (index, planned) in plan.columns().iter().enumerate() {
                let position = self.position(&planned.field, rows);
                let column = &mut self.columns[position];
                column.accept(&planned.field);
                match (plan.value(index, record), plan.column_schema(index)) {
                    (Some(value), Some(schema)) => column.builder.append(&scope, schema, value),
                    _ => column.builder.append_null(),
                }
                column.rows += 1;
            }
        }
        for column in &mut self.columns {
            if column.rows == rows {
                column.builder.append_null();
                column.rows += 1;
            }
        }
    }

    /// The column of `field`'s name, created with `rows` nulls when new.
    fn position(&mut self, field: &FieldRef, rows: usize) -> usize {
        if let Some(position) = self.by_name.get(field.name()) {
            return *position;
        }
        self.columns.push(Column::new(field, rows));
        self.by_name
            .insert(field.name().clone(), self.columns.len() - 1);
        self.columns.len() - 1
    }

    /// The columns built so far with their fields; empty afterwards.
    pub fn finish(&mut self) -> Vec<(FieldRef, ArrayRef)> {
        self.by_name.clear();
        std::mem::take(&mut self.columns)
            .into_iter()
            .map(Column::finish)
            .collect()
    }
}

impl std::fmt::Debug for UserColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.columns.iter().map(|c| (c.field.name(), c.rows)))
            .finish()
    }
}
