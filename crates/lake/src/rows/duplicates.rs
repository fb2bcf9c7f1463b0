//! Rows of the `duplicates` table.

use std::sync::Arc;

use deltalake::arrow::array::{
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};

use super::{batch, timestamp_builder};
use crate::TableKind;
use crate::time::micros_from_millis;

/// An event whose `id` had already been seen within the dedup window.
#[derive(Debug, Clone, Copy)]
pub struct DuplicateRow<'a> {
    /// The event's `id`.
    pub id: i64,
    /// The event's `type`.
    pub event_type: &'a str,
    /// `event.customer_id` (as stored: pseudonymised when privacy says so).
    pub customer_id: Option<i64>,
    /// `event.timestamp` as sent.
    pub timestamp: &'a str,
    /// Correlation id of the ingest request that carried this copy.
    pub correlation_id: &'a str,
    /// Schema Registry id of the writer schema.
    pub schema_id: i32,
    /// When the first copy arrived (log time), milliseconds since the epoch.
    pub first_seen_ms: i64,
    /// When this copy arrived (log time), milliseconds since the epoch.
    pub log_timestamp_ms: i64,
    /// When the processor recognised it, milliseconds since the epoch.
    pub detected_at_ms: i64,
    /// Partition of the raw topic this copy was read from.
    pub source_partition: i32,
    /// Offset of this copy in that partition.
    pub source_offset: i64,
}

/// Accumulates [`DuplicateRow`]s into a batch of the `duplicates` schema.
#[derive(Debug)]
pub struct DuplicatesBuilder {
    id: Int64Builder,
    event_type: StringBuilder,
    customer_id: Int64Builder,
    timestamp: StringBuilder,
    correlation_id: StringBuilder,
    schema_id: Int32Builder,
    first_seen_at: TimestampMicrosecondBuilder,
    log_timestamp: TimestampMicrosecondBuilder,
    detected_at: TimestampMicrosecondBuilder,
    source_partition: Int32Builder,
    source_offset: Int64Builder,
    len: usize,
}

impl Default for DuplicatesBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DuplicatesBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        DuplicatesBuilder {
            id: Int64Builder::new(),
            event_type: StringBuilder::new(),
            customer_id: Int64Builder::new(),
            timestamp: StringBuilder::new(),
            correlation_id: StringBuilder::new(),
            schema_id: Int32Builder::new(),
            first_seen_at: timestamp_builder(),
            log_timestamp: timestamp_builder(),
            detected_at: timestamp_builder(),
            source_partition: Int32Builder::new(),
            source_offset: Int64Builder::new(),
            len: 0,
        }
    }

    /// Appends one duplicate.
    pub fn push(&mut self, row: &DuplicateRow<'_>) {
        self.id.append_value(row.id);
        self.event_type.append_value(row.event_type);
        self.customer_id.append_option(row.customer_id);
        self.timestamp.append_value(row.timestamp);
        self.correlation_id.append_value(row.correlation_id);
        self.schema_id.append_value(row.schema_id);
        self.first_seen_at
            .append_value(micros_from_millis(row.first_seen_ms));
        self.log_timestamp
            .append_value(micros_from_millis(row.log_timestamp_ms));
        self.detected_at
            .append_value(micros_from_millis(row.detected_at_ms));
        self.source_partition.append_value(row.source_partition);
        self.source_offset.append_value(row.source_offset);
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
            TableKind::Duplicates,
            vec![
                Arc::new(self.id.finish()),
                Arc::new(self.event_type.finish()),
                Arc::new(self.customer_id.finish()),
                Arc::new(self.timestamp.finish()),
                Arc::new(self.correlation_id.finish()),
                Arc::new(self.schema_id.finish()),
                Arc::new(self.first_seen_at.finish()),
                Arc::new(self.log_timestamp.finish()),
                Arc::new(self.detected_at.finish()),
                Arc::new(self.source_partition.finish()),
                Arc::new(self.source_offset.finish()),
            ],
        )
    }
}
