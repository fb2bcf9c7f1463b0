//! Rows of the `segment_events` table.

use deltalake::arrow::array::{
    ArrayRef, Date32Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};

use super::enrichment::{EventEnrichment, SessionColumns};
use super::event_tail::{Provenance, Tail, TailBuilder};
use super::sized::FinishSized;
use super::timestamp_builder;
use crate::TableKind;
use crate::avro::WriterPlan;
use crate::time::{date32_from_millis, micros_from_millis};

/// One valid Segment call, as the processor decoded it from the Segment topic.
#[derive(Debug, Clone, Copy)]
pub struct SegmentEventRow<'a> {
    /// The call's `message_id`.
    pub message_id: &'a str,
    /// The call's `type` (`track`, `page`, `identify`...).
    pub call_type: &'a str,
    /// `context.user_agent` (as stored), if the call had one.
    pub user_agent: Option<&'a str>,
    /// `context.ip` (as stored: pseudonymised when privacy says so), if any.
    pub ip: Option<&'a str>,
    /// The call's corrected time (`timestamp`), milliseconds since the epoch; its UTC
    /// date is `event_date`.
    pub timestamp_ms: i64,
    /// Correlation id of the ingest request.
    pub correlation_id: &'a str,
    /// Name of the write key the call came with (the `X-Source` header), if any.
    pub source: Option<&'a str>,
    /// Schema Registry id of the writer schema.
    pub schema_id: i32,
    /// Timestamp of the log record, milliseconds since the epoch.
    pub log_timestamp_ms: i64,
    /// Partition of the Segment topic the call was read from.
    pub source_partition: i32,
    /// Offset of the record in that partition.
    pub source_offset: i64,
    /// When the processor handled the record, milliseconds since the epoch.
    pub ingested_at_ms: i64,
    /// What the enrichers derived (sessions come at
    /// [`SegmentEventsBuilder::finish_with_sessions`]).
    pub enrichment: EventEnrichment<'a>,
    /// The decoded record with its writer's plan (made with
    /// [`crate::avro::Layout::SEGMENT`]), for every field beyond the seed's (`None`: no
    /// user columns for this row).
    pub user: Option<(&'a WriterPlan, &'a apache_avro::types::Value)>,
}

/// Accumulates [`SegmentEventRow`]s into a batch of the `segment_events` schema.
#[derive(Debug)]
pub struct SegmentEventsBuilder {
    message_id: StringBuilder,
    call_type: StringBuilder,
    user_agent: StringBuilder,
    ip: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    event_date: Date32Builder,
    tail: TailBuilder,
}

impl Default for SegmentEventsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SegmentEventsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        SegmentEventsBuilder {
            message_id: StringBuilder::new(),
            call_type: StringBuilder::new(),
            user_agent: StringBuilder::new(),
            ip: StringBuilder::new(),
            timestamp: timestamp_builder(),
            event_date: Date32Builder::new(),
            tail: TailBuilder::new(),
        }
    }

    /// Appends one call; `event_date` is the UTC date of its `timestamp`.
    pub fn push(&mut self, row: &SegmentEventRow<'_>) {
        self.message_id.append_value(row.message_id);
        self.call_type.append_value(row.call_type);
        self.user_agent.append_option(row.user_agent);
        self.ip.append_option(row.ip);
        self.timestamp
            .append_value(micros_from_millis(row.timestamp_ms));
        self.event_date
            .append_value(date32_from_millis(row.timestamp_ms));
        self.tail.push(Tail {
            provenance: Provenance {
                correlation_id: row.correlation_id,
                schema_id: row.schema_id,
                log_timestamp_ms: row.log_timestamp_ms,
                ingested_at_ms: row.ingested_at_ms,
                source_partition: row.source_partition,
                source_offset: row.source_offset,
                source: row.source,
            },
            enrichment: &row.enrichment,
            user: row.user,
        });
    }

    /// Number of rows pushed since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.tail.len()
    }

    /// Whether no row was pushed since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows pushed so far as one batch, without sessions; the builder is empty
    /// afterwards.
    pub fn finish(&mut self) -> RecordBatch {
        self.finish_with_sessions(None)
    }

    /// The rows pushed so far as one batch, with `sessions` (one per row, in push order;
    /// the session columns are null when it is `None` or of another length).
    pub fn finish_with_sessions(&mut self, sessions: Option<&[SessionColumns<'_>]>) -> RecordBatch {
        let seed: Vec<ArrayRef> = vec![
            self.message_id.finish_sized(),
            self.call_type.finish_sized(),
            self.user_agent.finish_sized(),
            self.ip.finish_sized(),
            self.timestamp.finish_sized(),
            self.event_date.finish_sized(),
        ];
        self.tail.finish(TableKind::SegmentEvents, seed, sessions)
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Array, AsArray};
    use deltalake::arrow::datatypes::{Date32Type, Int64Type, TimestampMicrosecondType};

    use super::*;

    fn row(offset: i64, ip: Option<&str>) -> SegmentEventRow<'_> {
        SegmentEventRow {
            message_id: "m-1",
            call_type: "track",
            user_agent: None,
            ip,
            // 2024-05-01T12:00:00.123Z
            timestamp_ms: 1_714_564_800_123,
            correlation_id: "c-1",
            source: Some("web"),
            schema_id: 3,
            log_timestamp_ms: 1_714_564_801_000,
            source_partition: 1,
            source_offset: offset,
            ingested_at_ms: 1_714_564_802_000,
            enrichment: EventEnrichment {
                is_bot: Some(false),
                ..EventEnrichment::default()
            },
            user: None,
        }
    }

    #[test]
    fn builds_the_declared_schema_with_the_date_of_the_corrected_time() {
        let mut builder = SegmentEventsBuilder::new();
        builder.push(&row(7, Some("10.0.0.1")));
        builder.push(&row(8, None));
        assert_eq!(builder.len(), 2);
        let sessions = [
            SessionColumns {
                session_id: "s",
                session_index: 1,
                event_index: 1,
            },
            SessionColumns {
                session_id: "s",
                session_index: 1,
                event_index: 2,
            },
        ];
        let batch = builder.finish_with_sessions(Some(&sessions));
        assert!(builder.is_empty());
        assert_eq!(batch.schema(), TableKind::SegmentEvents.arrow_schema());
        let column = |name: &str| batch.column_by_name(name).expect(name).clone();
        let time = column("timestamp");
        assert_eq!(
            time.as_primitive::<TimestampMicrosecondType>().value(0),
            1_714_564_800_123_000
        );
        assert_eq!(
            column("event_date").as_primitive::<Date32Type>().value(0),
            19_844
        );
        assert!(column("ip").is_null(1));
        assert!(column("user_agent").is_null(0));
        assert_eq!(
            column("source_offset")
                .as_primitive::<Int64Type>()
                .values()
                .to_vec(),
            vec![7, 8]
        );
        assert_eq!(
            column("event_index_in_session")
                .as_primitive::<Int64Type>()
                .value(1),
            2
        );
        assert!(!column("is_bot").as_boolean().value(0));
    }
}
