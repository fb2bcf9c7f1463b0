//! The Segment stream's tables: `segment_events`, `segment_invalid_events`,
//! `segment_duplicates` and `identities` (`segment_dead_letters` has `dead_letters`'
//! columns).
//!
//! Segment ids are strings, and a call's time is the corrected one ingest computed
//! (`timestamp`, Segment's clock-skew rule), so it is a timestamp, never text.

use std::sync::{Arc, LazyLock};

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{common_fields, enrichment_fields, source_field, timestamp};

/// `segment_events`: the seed columns, the common ones, the enrichment ones, `source`;
/// every other field of the writer schema becomes a user column (see
/// [`crate::avro::Layout::SEGMENT`]).
pub(super) static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("message_id", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        // Server-side calls often carry neither.
        Field::new("user_agent", DataType::Utf8, true),
        Field::new("ip", DataType::Utf8, true),
        timestamp("timestamp", false),
        Field::new("event_date", DataType::Date32, false),
    ];
    fields.extend(common_fields());
    fields.extend(enrichment_fields());
    fields.push(source_field());
    Arc::new(Schema::new(fields))
});

/// `segment_invalid_events`: `invalid_events` with the call's `messageId` as text.
pub(super) static INVALID_EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("raw_json", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("correlation_id", DataType::Utf8, true),
        Field::new("message_id", DataType::Utf8, true),
        Field::new("event_type", DataType::Utf8, true),
        timestamp("received_at", false),
        Field::new("received_date", DataType::Date32, false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
        source_field(),
    ]))
});

/// `segment_duplicates`: `duplicates` with string ids and the corrected time.
pub(super) static DUPLICATES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("message_id", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("anonymous_id", DataType::Utf8, true),
        timestamp("timestamp", false),
        Field::new("correlation_id", DataType::Utf8, false),
        Field::new("schema_id", DataType::Int32, false),
        timestamp("first_seen_at", false),
        timestamp("log_timestamp", false),
        timestamp("detected_at", false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
    ]))
});

/// `identities`: one row per identity link, with the log position of its call.
pub(super) static IDENTITIES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("anonymous_id", DataType::Utf8, true),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("previous_id", DataType::Utf8, true),
        Field::new("link", DataType::Utf8, false),
        Field::new("message_id", DataType::Utf8, false),
        timestamp("timestamp", false),
        Field::new("correlation_id", DataType::Utf8, false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
        timestamp("ingested_at", false),
    ]))
});
