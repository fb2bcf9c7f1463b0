//! Rows of the `dead_letters` table.

use std::sync::Arc;

use deltalake::arrow::array::{
    BinaryBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};

use super::{batch, timestamp_builder};
use crate::time::micros_from_millis;
use crate::{LakeError, TableKind};

/// One log record the processor could not handle, kept with the reason.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterRow<'a> {
    /// Why the record could not be processed.
    pub reason: &'a str,
    /// Topic the record was read from.
    pub source_topic: &'a str,
    /// Partition the record was read from.
    pub source_partition: i32,
    /// Offset of the record in that partition.
    pub source_offset: i64,
    /// The record's value bytes, unchanged.
    pub raw: &'a [u8],
    /// Correlation id header, if present.
    pub correlation_id: Option<&'a str>,
    /// Schema id from the wire-format header, if it could be read.
    pub schema_id: Option<i32>,
    /// Timestamp of the log record, milliseconds since the epoch.
    pub received_at_ms: i64,
    /// When processing failed, milliseconds since the epoch.
    pub failed_at_ms: i64,
}

/// Accumulates [`DeadLetterRow`]s into a batch of the `dead_letters` schema, for
/// `dead_letters` or `segment_dead_letters`.
#[derive(Debug)]
pub struct DeadLettersBuilder {
    kind: TableKind,
    reason: StringBuilder,
    source_topic: StringBuilder,
    source_partition: Int32Builder,
    source_offset: Int64Builder,
    raw: BinaryBuilder,
    correlation_id: StringBuilder,
    schema_id: Int32Builder,
    received_at: TimestampMicrosecondBuilder,
    failed_at: TimestampMicrosecondBuilder,
    len: usize,
}

impl Default for DeadLettersBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DeadLettersBuilder {
    /// An empty builder of `dead_letters` rows.
    pub fn new() -> Self {
        DeadLettersBuilder {
            kind: TableKind::DeadLetters,
            reason: StringBuilder::new(),
            source_topic: StringBuilder::new(),
            source_partition: Int32Builder::new(),
            source_offset: Int64Builder::new(),
            raw: BinaryBuilder::new(),
            correlation_id: StringBuilder::new(),
            schema_id: Int32Builder::new(),
            received_at: timestamp_builder(),
            failed_at: timestamp_builder(),
            len: 0,
        }
    }

    /// An empty builder whose batches are of table `kind`: `dead_letters` or
    /// `segment_dead_letters` (the same columns); any other table is
    /// [`LakeError::WrongTable`].
    pub fn for_kind(kind: TableKind) -> Result<Self, LakeError> {
        match kind {
            TableKind::DeadLetters | TableKind::SegmentDeadLetters => Ok(DeadLettersBuilder {
                kind,
                ..Self::new()
            }),
            other => Err(LakeError::WrongTable {
                table: other.name(),
                rows: TableKind::DeadLetters.name(),
            }),
        }
    }

    /// The table its batches are for.
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// Appends one dead letter.
    pub fn push(&mut self, row: &DeadLetterRow<'_>) {
        self.reason.append_value(row.reason);
        self.source_topic.append_value(row.source_topic);
        self.source_partition.append_value(row.source_partition);
        self.source_offset.append_value(row.source_offset);
        self.raw.append_value(row.raw);
        self.correlation_id.append_option(row.correlation_id);
        self.schema_id.append_option(row.schema_id);
        self.received_at
            .append_value(micros_from_millis(row.received_at_ms));
        self.failed_at
            .append_value(micros_from_millis(row.failed_at_ms));
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
            self.kind,
            vec![
                Arc::new(self.reason.finish()),
                Arc::new(self.source_topic.finish()),
                Arc::new(self.source_partition.finish()),
                Arc::new(self.source_offset.finish()),
                Arc::new(self.raw.finish()),
                Arc::new(self.correlation_id.finish()),
                Arc::new(self.schema_id.finish()),
                Arc::new(self.received_at.finish()),
                Arc::new(self.failed_at.finish()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Array, AsArray};

    use super::*;

    #[test]
    fn builds_the_declared_schema_and_keeps_bytes() {
        let mut builder = DeadLettersBuilder::new();
        builder.push(&DeadLetterRow {
            reason: "unknown schema id 9",
            source_topic: "acme.clickstream.raw.events",
            source_partition: 3,
            source_offset: 17,
            raw: &[0, 0, 0, 0, 9, 0xff],
            correlation_id: Some("c-9"),
            schema_id: None,
            received_at_ms: 1_000,
            failed_at_ms: 2_000,
        });
        assert_eq!(builder.len(), 1);
        let batch = builder.finish();
        assert_eq!(batch.schema(), TableKind::DeadLetters.arrow_schema());
        let raw = batch.column_by_name("raw").expect("raw");
        assert_eq!(raw.as_binary::<i32>().value(0), &[0, 0, 0, 0, 9, 0xff]);
        assert!(
            batch
                .column_by_name("schema_id")
                .expect("schema_id")
                .is_null(0)
        );
    }

    #[test]
    fn stamps_its_batches_with_the_table_it_was_made_for() {
        let mut builder =
            DeadLettersBuilder::for_kind(TableKind::SegmentDeadLetters).expect("same columns");
        assert_eq!(builder.kind(), TableKind::SegmentDeadLetters);
        let batch = builder.finish();
        assert_eq!(batch.schema(), TableKind::SegmentDeadLetters.arrow_schema());
        let refused = DeadLettersBuilder::for_kind(TableKind::SegmentEvents).expect_err("events");
        assert!(matches!(
            refused,
            LakeError::WrongTable {
                table: "segment_events",
                ..
            }
        ));
        assert!(!refused.is_transient());
    }
}
