//! Rows of the `identities` table.

use std::sync::Arc;

use deltalake::arrow::array::{
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};

use super::{batch, timestamp_builder};
use crate::TableKind;
use crate::time::micros_from_millis;

/// One identity link a Segment call carried: an anonymous id (or a previous id) that is
/// the user `user_id`. Ids as stored (after privacy).
#[derive(Debug, Clone, Copy)]
pub struct IdentityRow<'a> {
    /// The call's `anonymous_id`, if any.
    pub anonymous_id: Option<&'a str>,
    /// The call's `user_id`.
    pub user_id: &'a str,
    /// The call's `previous_id` (an alias call's), if any.
    pub previous_id: Option<&'a str>,
    /// What made the link: `identify`, `alias`, or the type of the call that carried both
    /// ids.
    pub link: &'a str,
    /// The call's `message_id`.
    pub message_id: &'a str,
    /// The call's corrected time (`timestamp`), milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Correlation id of the ingest request.
    pub correlation_id: &'a str,
    /// Partition of the Segment topic the call was read from.
    pub source_partition: i32,
    /// Offset of the call in that partition (joins to `segment_events`).
    pub source_offset: i64,
    /// When the processor handled the record, milliseconds since the epoch.
    pub ingested_at_ms: i64,
}

/// Accumulates [`IdentityRow`]s into a batch of the `identities` schema.
#[derive(Debug)]
pub struct IdentitiesBuilder {
    anonymous_id: StringBuilder,
    user_id: StringBuilder,
    previous_id: StringBuilder,
    link: StringBuilder,
    message_id: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    correlation_id: StringBuilder,
    source_partition: Int32Builder,
    source_offset: Int64Builder,
    ingested_at: TimestampMicrosecondBuilder,
    len: usize,
}

impl Default for IdentitiesBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl IdentitiesBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        IdentitiesBuilder {
            anonymous_id: StringBuilder::new(),
            user_id: StringBuilder::new(),
            previous_id: StringBuilder::new(),
            link: StringBuilder::new(),
            message_id: StringBuilder::new(),
            timestamp: timestamp_builder(),
            correlation_id: StringBuilder::new(),
            source_partition: Int32Builder::new(),
            source_offset: Int64Builder::new(),
            ingested_at: timestamp_builder(),
            len: 0,
        }
    }

    /// Appends one link.
    pub fn push(&mut self, row: &IdentityRow<'_>) {
        self.anonymous_id.append_option(row.anonymous_id);
        self.user_id.append_value(row.user_id);
        self.previous_id.append_option(row.previous_id);
        self.link.append_value(row.link);
        self.message_id.append_value(row.message_id);
        self.timestamp
            .append_value(micros_from_millis(row.timestamp_ms));
        self.correlation_id.append_value(row.correlation_id);
        self.source_partition.append_value(row.source_partition);
        self.source_offset.append_value(row.source_offset);
        self.ingested_at
            .append_value(micros_from_millis(row.ingested_at_ms));
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
            TableKind::Identities,
            vec![
                Arc::new(self.anonymous_id.finish()),
                Arc::new(self.user_id.finish()),
                Arc::new(self.previous_id.finish()),
                Arc::new(self.link.finish()),
                Arc::new(self.message_id.finish()),
                Arc::new(self.timestamp.finish()),
                Arc::new(self.correlation_id.finish()),
                Arc::new(self.source_partition.finish()),
                Arc::new(self.source_offset.finish()),
                Arc::new(self.ingested_at.finish()),
            ],
        )
    }
}
