//! Rows of the `invalid_events` and `segment_invalid_events` tables.

use std::sync::Arc;

use deltalake::arrow::array::{
    Date32Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};

use super::{batch, timestamp_builder};
use crate::time::{date32_from_millis, micros_from_millis};
use crate::{LakeError, TableKind};

/// One event (or Segment call) rejected at ingest, as read from an invalid topic.
#[derive(Debug, Clone, Copy)]
pub struct InvalidEventRow<'a> {
    /// The original JSON text of the event.
    pub raw_json: &'a str,
    /// Why it was rejected (the `X-Error-Message` header).
    pub reason: &'a str,
    /// Correlation id of the ingest request, if the header was present.
    pub correlation_id: Option<&'a str>,
    /// Name of the write key the event came with (the `X-Source` header), if any.
    pub source: Option<&'a str>,
    /// Timestamp of the log record, milliseconds since the epoch.
    pub received_at_ms: i64,
    /// Partition of the invalid topic the record was read from.
    pub source_partition: i32,
    /// Offset of the record in that partition.
    pub source_offset: i64,
}

/// The fields worth pulling out of a rejected event, best-effort.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Probed {
    pub(crate) event_id: Option<i64>,
    pub(crate) event_type: Option<String>,
}

/// Reads `id` (when an integer) and `type` (when a string) from a JSON object. Anything
/// else (not JSON, not an object, other types) yields nulls.
pub(crate) fn probe(raw_json: &str) -> Probed {
    let Some(object) = object(raw_json) else {
        return Probed::default();
    };
    Probed {
        event_id: object.get("id").and_then(serde_json::Value::as_i64),
        event_type: text(&object, "type"),
    }
}

/// The fields worth pulling out of a refused Segment call, best-effort.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SegmentProbed {
    pub(crate) message_id: Option<String>,
    pub(crate) event_type: Option<String>,
}

/// Reads a Segment call's `messageId` (a string, or a number as its text: Segment takes
/// numeric ids) and `type` (a string). A call the schema refused is kept as ingest
/// normalized it, in Segment's warehouse names: its `message_id` is read then.
pub(crate) fn probe_segment(raw_json: &str) -> SegmentProbed {
    let Some(object) = object(raw_json) else {
        return SegmentProbed::default();
    };
    let id = |key: &str| match object.get(key)? {
        serde_json::Value::String(id) if !id.is_empty() => Some(id.clone()),
        serde_json::Value::Number(id) => Some(id.to_string()),
        _ => None,
    };
    SegmentProbed {
        message_id: id("messageId").or_else(|| id("message_id")),
        event_type: text(&object, "type"),
    }
}

/// The JSON object `raw_json` is, if it is one.
fn object(raw_json: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    // Invalid events are rare and bounded by the ingest body limit: a full parse is fine.
    match serde_json::from_str(raw_json) {
        Ok(serde_json::Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// `object`'s `key` when it is a string.
fn text(object: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    object
        .get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// The id column of an invalid-events table.
#[derive(Debug)]
enum IdColumn {
    /// `invalid_events.event_id`: the event's integer `id`.
    Event(Int64Builder),
    /// `segment_invalid_events.message_id`: the call's `messageId`.
    Message(StringBuilder),
}

impl IdColumn {
    /// Appends `raw_json`'s id; returns its type.
    fn push(&mut self, raw_json: &str) -> Option<String> {
        match self {
            IdColumn::Event(ids) => {
                let probed = probe(raw_json);
                ids.append_option(probed.event_id);
                probed.event_type
            }
            IdColumn::Message(ids) => {
                let probed = probe_segment(raw_json);
                ids.append_option(probed.message_id);
                probed.event_type
            }
        }
    }

    fn finish(&mut self) -> deltalake::arrow::array::ArrayRef {
        match self {
            IdColumn::Event(ids) => Arc::new(ids.finish()),
            IdColumn::Message(ids) => Arc::new(ids.finish()),
        }
    }
}

/// Accumulates [`InvalidEventRow`]s into a batch of the `invalid_events` schema (or of
/// `segment_invalid_events`, see [`InvalidEventsBuilder::for_kind`]).
#[derive(Debug)]
pub struct InvalidEventsBuilder {
    kind: TableKind,
    raw_json: StringBuilder,
    reason: StringBuilder,
    correlation_id: StringBuilder,
    id: IdColumn,
    event_type: StringBuilder,
    received_at: TimestampMicrosecondBuilder,
    received_date: Date32Builder,
    source_partition: Int32Builder,
    source_offset: Int64Builder,
    source: StringBuilder,
    len: usize,
}

impl Default for InvalidEventsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl InvalidEventsBuilder {
    /// An empty builder of `invalid_events` rows.
    pub fn new() -> Self {
        InvalidEventsBuilder {
            kind: TableKind::InvalidEvents,
            raw_json: StringBuilder::new(),
            reason: StringBuilder::new(),
            correlation_id: StringBuilder::new(),
            id: IdColumn::Event(Int64Builder::new()),
            event_type: StringBuilder::new(),
            received_at: timestamp_builder(),
            received_date: Date32Builder::new(),
            source_partition: Int32Builder::new(),
            source_offset: Int64Builder::new(),
            source: StringBuilder::new(),
            len: 0,
        }
    }

    /// An empty builder whose batches are of table `kind`: `invalid_events` (the id is
    /// the event's integer `id`) or `segment_invalid_events` (the id is the call's
    /// `messageId`); any other table is [`LakeError::WrongTable`].
    pub fn for_kind(kind: TableKind) -> Result<Self, LakeError> {
        match kind {
            TableKind::InvalidEvents => Ok(Self::new()),
            TableKind::SegmentInvalidEvents => Ok(InvalidEventsBuilder {
                kind,
                id: IdColumn::Message(StringBuilder::new()),
                ..Self::new()
            }),
            other => Err(LakeError::WrongTable {
                table: other.name(),
                rows: TableKind::InvalidEvents.name(),
            }),
        }
    }

    /// The table its batches are for.
    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// Appends one rejected event; its id (`event_id` or `message_id`) and `event_type`
    /// are read from its JSON.
    pub fn push(&mut self, row: &InvalidEventRow<'_>) {
        let event_type = self.id.push(row.raw_json);
        self.raw_json.append_value(row.raw_json);
        self.reason.append_value(row.reason);
        self.correlation_id.append_option(row.correlation_id);
        self.event_type.append_option(event_type);
        self.received_at
            .append_value(micros_from_millis(row.received_at_ms));
        self.received_date
            .append_value(date32_from_millis(row.received_at_ms));
        self.source_partition.append_value(row.source_partition);
        self.source_offset.append_value(row.source_offset);
        self.source.append_option(row.source);
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
                Arc::new(self.raw_json.finish()),
                Arc::new(self.reason.finish()),
                Arc::new(self.correlation_id.finish()),
                self.id.finish(),
                Arc::new(self.event_type.finish()),
                Arc::new(self.received_at.finish()),
                Arc::new(self.received_date.finish()),
                Arc::new(self.source_partition.finish()),
                Arc::new(self.source_offset.finish()),
                Arc::new(self.source.finish()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Array, AsArray};
    use deltalake::arrow::datatypes::{Date32Type, Int64Type};

    use super::*;

    #[test]
    fn extracts_integer_id_and_string_type() {
        assert_eq!(
            probe(r#"{"id": 367858, "type": "placed_order", "event": {"ip": 1}}"#),
            Probed {
                event_id: Some(367_858),
                event_type: Some("placed_order".to_string())
            }
        );
    }

    #[test]
    fn leaves_non_integer_id_and_non_string_type_null() {
        assert_eq!(probe(r#"{"id": "12", "type": 7}"#), Probed::default());
        assert_eq!(probe(r#"{"id": 1.5, "type": null}"#), Probed::default());
        assert_eq!(
            probe(r#"{"id": 18446744073709551615, "type": "x"}"#),
            Probed {
                event_id: None,
                event_type: Some("x".to_string())
            }
        );
    }

    #[test]
    fn tolerates_non_objects_and_broken_json() {
        for raw in ["[1, 2]", "42", "\"id\"", "{\"id\": 1", "", "null"] {
            assert_eq!(probe(raw), Probed::default(), "{raw:?}");
        }
        assert_eq!(
            probe(r#"{"type": "click"}"#),
            Probed {
                event_id: None,
                event_type: Some("click".to_string())
            }
        );
    }

    #[test]
    fn builds_the_declared_schema() {
        let mut builder = InvalidEventsBuilder::new();
        builder.push(&InvalidEventRow {
            raw_json: r#"{"id": 5, "type": "click"}"#,
            reason: "event.ip: expected string",
            correlation_id: None,
            source: Some("ios_app"),
            received_at_ms: 86_400_000 * 2 + 5,
            source_partition: 1,
            source_offset: 9,
        });
        let batch = builder.finish();
        assert_eq!(batch.schema(), TableKind::InvalidEvents.arrow_schema());
        let ids = batch.column_by_name("event_id").expect("event_id");
        assert_eq!(ids.as_primitive::<Int64Type>().value(0), 5);
        let dates = batch
            .column_by_name("received_date")
            .expect("received_date");
        assert_eq!(dates.as_primitive::<Date32Type>().value(0), 2);
        assert!(
            batch
                .column_by_name("correlation_id")
                .expect("c")
                .is_null(0)
        );
        let sources = batch.column_by_name("source").expect("source");
        assert_eq!(sources.as_string::<i32>().value(0), "ios_app");
        assert!(builder.is_empty());
    }

    #[test]
    fn reads_a_segment_calls_message_id_as_sent_or_as_normalized() {
        assert_eq!(
            probe_segment(r#"{"messageId": "ajs-1", "type": "track", "id": 4}"#),
            SegmentProbed {
                message_id: Some("ajs-1".to_string()),
                event_type: Some("track".to_string())
            }
        );
        assert_eq!(
            probe_segment(r#"{"messageId": 42}"#).message_id.as_deref(),
            Some("42")
        );
        assert_eq!(
            probe_segment(r#"{"message_id": "m-2", "type": "page"}"#)
                .message_id
                .as_deref(),
            Some("m-2")
        );
        for raw in [
            r#"{"messageId": ""}"#,
            r#"{"messageId": {}}"#,
            "not json",
            "[]",
        ] {
            assert_eq!(probe_segment(raw), SegmentProbed::default(), "{raw}");
        }
    }

    #[test]
    fn builds_segment_invalid_events_with_the_message_id() {
        let mut builder =
            InvalidEventsBuilder::for_kind(TableKind::SegmentInvalidEvents).expect("invalid");
        assert_eq!(builder.kind(), TableKind::SegmentInvalidEvents);
        builder.push(&InvalidEventRow {
            raw_json: r#"{"messageId": "ajs-9", "type": "alias"}"#,
            reason: "field 'previousId': an alias call needs it",
            correlation_id: Some("c"),
            source: None,
            received_at_ms: 86_400_000,
            source_partition: 0,
            source_offset: 3,
        });
        let batch = builder.finish();
        assert_eq!(
            batch.schema(),
            TableKind::SegmentInvalidEvents.arrow_schema()
        );
        let ids = batch.column_by_name("message_id").expect("message_id");
        assert_eq!(ids.as_string::<i32>().value(0), "ajs-9");
        let types = batch.column_by_name("event_type").expect("event_type");
        assert_eq!(types.as_string::<i32>().value(0), "alias");
        assert!(InvalidEventsBuilder::for_kind(TableKind::DeadLetters).is_err());
    }
}
