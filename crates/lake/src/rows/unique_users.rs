//! Rows of the `unique_users_daily` table.

use std::sync::Arc;

use deltalake::arrow::array::{
    Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};

use super::{batch, timestamp_builder};
use crate::TableKind;
use crate::time::micros_from_millis;

/// The distinct-customer count of one day.
#[derive(Debug, Clone, Copy)]
pub struct UniqueUsersRow<'a> {
    /// The day, `YYYY-MM-DD`: the first 10 characters of `event.timestamp`, as ksqlDB did.
    pub day: &'a str,
    /// Distinct non-null customer ids seen that day.
    pub unique_users: i64,
    /// When the count was last updated, milliseconds since the epoch.
    pub updated_at_ms: i64,
}

/// Accumulates [`UniqueUsersRow`]s into a batch of the `unique_users_daily` schema.
#[derive(Debug)]
pub struct UniqueUsersBuilder {
    day: StringBuilder,
    unique_users: Int64Builder,
    updated_at: TimestampMicrosecondBuilder,
    len: usize,
}

impl Default for UniqueUsersBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl UniqueUsersBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        UniqueUsersBuilder {
            day: StringBuilder::new(),
            unique_users: Int64Builder::new(),
            updated_at: timestamp_builder(),
            len: 0,
        }
    }

    /// Appends one day's count.
    pub fn push(&mut self, row: &UniqueUsersRow<'_>) {
        self.day.append_value(row.day);
        self.unique_users.append_value(row.unique_users);
        self.updated_at
            .append_value(micros_from_millis(row.updated_at_ms));
        self.len += 1;
    }

    /// Number of rows pushed since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row was pushed since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rows pushed so far as one batch; the builder is empty afterwards.
    pub fn finish(&mut self) -> RecordBatch {
        self.len = 0;
        batch(
            TableKind::UniqueUsersDaily,
            vec![
                Arc::new(self.day.finish()),
                Arc::new(self.unique_users.finish()),
                Arc::new(self.updated_at.finish()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::AsArray;
    use deltalake::arrow::datatypes::Int64Type;

    use super::*;

    #[test]
    fn builds_the_declared_schema() {
        let mut builder = UniqueUsersBuilder::new();
        for (day, n) in [("2022-05-25", 3), ("2022-05-26", 1)] {
            builder.push(&UniqueUsersRow {
                day,
                unique_users: n,
                updated_at_ms: 5,
            });
        }
        let batch = builder.finish();
        assert_eq!(batch.schema(), TableKind::UniqueUsersDaily.arrow_schema());
        let counts = batch.column_by_name("unique_users").expect("unique_users");
        assert_eq!(
            counts.as_primitive::<Int64Type>().values().to_vec(),
            vec![3, 1]
        );
        assert_eq!(
            batch
                .column_by_name("day")
                .expect("day")
                .as_string::<i32>()
                .value(1),
            "2022-05-26"
        );
    }
}
