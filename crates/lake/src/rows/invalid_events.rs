//! Rows of the `invalid_events` table.

use std::sync::Arc;

use deltalake::arrow::array::{
    Date32Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};

use super::{batch, timestamp_builder};
use crate::TableKind;
use crate::time::{date32_from_millis, micros_from_millis};

/// One event rejected at ingest, as read from the invalid topic.
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
    // Invalid events are rare and bounded by the ingest body limit: a full parse is fine.
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str(raw_json) else {
        return Probed::default();
    };
    Probed {
        event_id: object.get("id").and_then(serde_json::Value::as_i64),
        event_type: object
            .get("type")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string),
    }
}

/// Accumulates [`InvalidEventRow`]s into a batch of the `invalid_events` schema.
#[derive(Debug)]
pub struct InvalidEventsBuilder {
    raw_json: StringBuilder,
    reason: StringBuilder,
    correlation_id: StringBuilder,
    event_id: Int64Builder,
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
    /// An empty builder.
    pub fn new() -> Self {
        InvalidEventsBuilder {
            raw_json: StringBuilder::new(),
            reason: StringBuilder::new(),
            correlation_id: StringBuilder::new(),
            event_id: Int64Builder::new(),
            event_type: StringBuilder::new(),
            received_at: timestamp_builder(),
            received_date: Date32Builder::new(),
            source_partition: Int32Builder::new(),
            source_offset: Int64Builder::new(),
            source: StringBuilder::new(),
            len: 0,
        }
    }

    /// Appends one rejected event; `event_id` and `event_type` are read from its JSON.
    pub fn push(&mut self, row: &InvalidEventRow<'_>) {
        let probed = probe(row.raw_json);
        self.raw_json.append_value(row.raw_json);
        self.reason.append_value(row.reason);
        self.correlation_id.append_option(row.correlation_id);
        self.event_id.append_option(probed.event_id);
        self.event_type.append_option(probed.event_type);
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
            TableKind::InvalidEvents,
            vec![
                Arc::new(self.raw_json.finish()),
                Arc::new(self.reason.finish()),
                Arc::new(self.correlation_id.finish()),
                Arc::new(self.event_id.finish()),
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
}
