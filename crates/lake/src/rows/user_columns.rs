//! The `events` columns of a site's own fields, made as records arrive (see
//! [`crate::avro`]).

use std::collections::HashMap;

use apache_avro::types::Value;
use deltalake::arrow::array::ArrayRef;
use deltalake::arrow::datatypes::FieldRef;

use crate::avro::{ColumnBuilder, WriterPlan};

/// User columns of one batch, in the order they first appeared.
#[derive(Default)]
pub(crate) struct UserColumns {
    columns: Vec<(FieldRef, ColumnBuilder)>,
    by_name: HashMap<String, usize>,
}

impl UserColumns {
    /// Appends one record's values; `rows` is the number of rows before it. Columns this
    /// record does not fill get a null, columns new in this batch start with `rows` nulls.
    pub fn push(&mut self, rows: usize, plan: Option<(&WriterPlan, &Value)>) {
        if let Some((plan, record)) = plan {
            let scope = plan.scope();
            for (index, column) in plan.columns().iter().enumerate() {
                let position = self.position(&column.field, rows);
                let builder = &mut self.columns[position].1;
                match (plan.value(index, record), plan.column_schema(index)) {
                    (Some(value), Some(schema)) => builder.append(&scope, schema, value),
                    _ => builder.append_null(),
                }
            }
        }
        for (_, builder) in &mut self.columns {
            if builder.len() == rows {
                builder.append_null();
            }
        }
    }

    /// The builder of `field`, created with `rows` nulls when new.
    fn position(&mut self, field: &FieldRef, rows: usize) -> usize {
        if let Some(position) = self.by_name.get(field.name()) {
            return *position;
        }
        let mut builder = ColumnBuilder::new(field.data_type());
        builder.append_nulls(rows);
        self.columns.push((field.clone(), builder));
        self.by_name
            .insert(field.name().clone(), self.columns.len() - 1);
        self.columns.len() - 1
    }

    /// The columns built so far with their fields; empty afterwards.
    pub fn finish(&mut self) -> Vec<(FieldRef, ArrayRef)> {
        self.by_name.clear();
        std::mem::take(&mut self.columns)
            .into_iter()
            .map(|(field, mut builder)| {
                let array = builder.finish();
                (field, array)
            })
            .collect()
    }
}

impl std::fmt::Debug for UserColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.columns
                    .iter()
                    .map(|(field, b)| (field.name(), b.len())),
            )
            .finish()
    }
}
