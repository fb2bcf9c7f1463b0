//! Rows of the `segment_duplicates` table.

use std::sync::Arc;

use deltalake::arrow::array::{
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};

use super::{batch, timestamp_builder};
use crate::TableKind;
use crate::time::micros_from_millis;

/// A Segment call whose `message_id` had already been seen within the dedup window.
#[derive(Debug, Clone, Copy)]
pub struct SegmentDuplicateRow<'a> {
    /// The call's `message_id`.
    pub message_id: &'a str,
    /// The call's `type`.
    pub call_type: &'a str,
    /// `user_id` (as stored: pseudonymised when privacy says so), if any.
    pub user_id: Option<&'a str>,
    /// `anonymous_id` (as stored), if any.
    pub anonymous_id: Option<&'a str>,
    /// The call's corrected time (`timestamp`), milliseconds since the epoch.
    pub timestamp_ms: i64,
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
    /// Partition of the Segment topic this copy was read from.
    pub source_partition: i32,
    /// Offset of this copy in that partition.
    pub source_offset: i64,
}

/// Accumulates [`SegmentDuplicateRow`]s into a batch of the `segment_duplicates` schema.
#[derive(Debug)]
pub struct SegmentDuplicatesBuilder {
    message_id: StringBuilder,
    call_type: StringBuilder,
    user_id: StringBuilder,
    anonymous_id: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    correlation_id: StringBuilder,
    schema_id: Int32Builder,
    first_seen_at: TimestampMicrosecondBuilder,
    log_timestamp: TimestampMicrosecondBuilder,
    detected_at: TimestampMicrosecondBuilder,
    source_partition: Int32Builder,
    source_offset: Int64Builder,
    len: usize,
}

impl Default for SegmentDuplicatesBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SegmentDuplicatesBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        SegmentDuplicatesBuilder {
            message_id: StringBuilder::new(),
            call_type: StringBuilder::new(),
            user_id: StringBuilder::new(),
            anonymous_id: StringBuilder::new(),
            timestamp: timestamp_builder(),
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
    pub fn push(&mut self, row: &SegmentDuplicateRow<'_>) {
        self.message_id.append_value(row.message_id);
        self.call_type.append_value(row.call_type);
        self.user_id.append_option(row.user_id);
        self.anonymous_id.append_option(row.anonymous_id);
        self.timestamp
            .append_value(micros_from_millis(row.timestamp_ms));
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
            TableKind::SegmentDuplicates,
            vec![
                Arc::new(self.message_id.finish()),
                Arc::new(self.call_type.finish()),
                Arc::new(self.user_id.finish()),
                Arc::new(self.anonymous_id.finish()),
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
