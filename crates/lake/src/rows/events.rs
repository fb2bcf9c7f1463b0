//! Rows of the `events` table.

use deltalake::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};

use super::enrichment::{EventEnrichment, SessionColumns};
use super::event_tail::{Provenance, Tail, TailBuilder};
use super::sized::FinishSized;
use super::timestamp_builder;
use crate::TableKind;
use crate::avro::WriterPlan;
use crate::time::{date32, parse_event_time};

/// One valid event, as the processor decoded it from the log.
#[derive(Debug, Clone, Copy)]
pub struct EventRow<'a> {
    /// The event's `id`.
    pub id: i64,
    /// The event's `type` (`page_view`, `placed_order`...).
    pub event_type: &'a str,
    /// The batch id the generator wrote into each event, if any.
    pub package_id: Option<&'a str>,
    /// `event.user_agent`.
    pub user_agent: &'a str,
    /// `event.ip`.
    pub ip: &'a str,
    /// `event.customer_id`.
    pub customer_id: Option<i64>,
    /// `event.timestamp` as sent; parsed into `event_time` and `event_date`.
    pub timestamp: &'a str,
    /// `event.page`.
    pub page: Option<&'a str>,
    /// `event.query`.
    pub query: Option<&'a str>,
    /// `event.product`.
    pub product: Option<i64>,
    /// `event.referrer`.
    pub referrer: Option<&'a str>,
    /// `event.position`.
    pub position: Option<i64>,
    /// Correlation id of the ingest request (header, else `package_id`).
    pub correlation_id: &'a str,
    /// Name of the write key the event came with (the `X-Source` header), if any.
    pub source: Option<&'a str>,
    /// Schema Registry id of the writer schema.
    pub schema_id: i32,
    /// Timestamp of the log record, milliseconds since the epoch.
    pub log_timestamp_ms: i64,
    /// Partition of the raw topic the event was read from.
    pub source_partition: i32,
    /// Offset of the record in that partition.
    pub source_offset: i64,
    /// When the processor handled the record, milliseconds since the epoch.
    pub ingested_at_ms: i64,
    /// What the enrichers derived (sessions come at [`EventsBuilder::finish_with_sessions`]).
    pub enrichment: EventEnrichment<'a>,
    /// The decoded record with its writer's plan, for the fields of the site's own schema
    /// beyond the seed's (`None`: no such fields).
    pub user: Option<(&'a WriterPlan, &'a apache_avro::types::Value)>,
}

/// Accumulates [`EventRow`]s into a batch of the `events` schema.
#[derive(Debug)]
pub struct EventsBuilder {
    id: Int64Builder,
    event_type: StringBuilder,
    package_id: StringBuilder,
    user_agent: StringBuilder,
    ip: StringBuilder,
    customer_id: Int64Builder,
    timestamp: StringBuilder,
    page: StringBuilder,
    query: StringBuilder,
    product: Int64Builder,
    referrer: StringBuilder,
    position: Int64Builder,
    event_time: TimestampMicrosecondBuilder,
    event_time_valid: BooleanBuilder,
    event_date: Date32Builder,
    tail: TailBuilder,
}

impl Default for EventsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        EventsBuilder {
            id: Int64Builder::new(),
            event_type: StringBuilder::new(),
            package_id: StringBuilder::new(),
            user_agent: StringBuilder::new(),
            ip: StringBuilder::new(),
            customer_id: Int64Builder::new(),
            timestamp: StringBuilder::new(),
            page: StringBuilder::new(),
            query: StringBuilder::new(),
            product: Int64Builder::new(),
            referrer: StringBuilder::new(),
            position: Int64Builder::new(),
            event_time: timestamp_builder(),
            event_time_valid: BooleanBuilder::new(),
            event_date: Date32Builder::new(),
            tail: TailBuilder::new(),
        }
    }

    /// Appends one event; `event_time`, `event_time_valid` and `event_date` are derived from
    /// its `timestamp`.
    pub fn push(&mut self, row: &EventRow<'_>) {
        let event_time = parse_event_time(row.timestamp);
        self.id.append_value(row.id);
        self.event_type.append_value(row.event_type);
        self.package_id.append_option(row.package_id);
        self.user_agent.append_value(row.user_agent);
        self.ip.append_value(row.ip);
        self.customer_id.append_option(row.customer_id);
        self.timestamp.append_value(row.timestamp);
        self.page.append_option(row.page);
        self.query.append_option(row.query);
        self.product.append_option(row.product);
        self.referrer.append_option(row.referrer);
        self.position.append_option(row.position);
        self.event_time
            .append_option(event_time.map(|time| time.timestamp_micros()));
        self.event_time_valid.append_value(event_time.is_some());
        self.event_date.append_option(event_time.map(date32));
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
            self.id.finish_sized(),
            self.event_type.finish_sized(),
            self.package_id.finish_sized(),
            self.user_agent.finish_sized(),
            self.ip.finish_sized(),
            self.customer_id.finish_sized(),
            self.timestamp.finish_sized(),
            self.page.finish_sized(),
            self.query.finish_sized(),
            self.product.finish_sized(),
            self.referrer.finish_sized(),
            self.position.finish_sized(),
            self.event_time.finish_sized(),
            self.event_time_valid.finish_sized(),
            self.event_date.finish_sized(),
        ];
        self.tail.finish(TableKind::Events, seed, sessions)
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{
        Array, AsArray, BooleanArray, Date32Array, Int64Array, TimestampMicrosecondArray,
    };
    use deltalake::arrow::datatypes::{Date32Type, Int64Type, TimestampMicrosecondType};

    use super::*;

    fn row(id: i64, timestamp: &str) -> EventRow<'_> {
        EventRow {
            id,
            event_type: "page_view",
            package_id: None,
            user_agent: "Opera/9.49",
            ip: "134.147.148.171",
            customer_id: Some(1404),
            timestamp,
            page: Some("/home"),
            query: None,
            product: None,
            referrer: None,
            position: Some(3),
            correlation_id: "c-1",
            source: (id == 1).then_some("web"),
            schema_id: 1,
            log_timestamp_ms: 1_653_457_293_000,
            source_partition: 2,
            source_offset: 40 + id,
            ingested_at_ms: 1_653_457_294_000,
            enrichment: EventEnrichment::default(),
            user: None,
        }
    }

    #[test]
    fn builds_the_declared_schema_with_parsed_event_time() {
        let mut builder = EventsBuilder::new();
        builder.push(&row(1, "2022-05-25T05:41:33.648681"));
        builder.push(&row(2, "not a time"));
        assert_eq!(builder.len(), 2);
        let batch = builder.finish();
        assert!(builder.is_empty());
        assert_eq!(batch.schema(), TableKind::Events.arrow_schema());
        assert_eq!(batch.num_rows(), 2);

        let column = |name: &str| batch.column_by_name(name).expect(name).clone();
        let event_time = column("event_time");
        let event_time = event_time.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(event_time.value(0), 1_653_457_293_648_681);
        assert!(event_time.is_null(1));
        let valid = column("event_time_valid");
        let valid: &BooleanArray = valid.as_boolean();
        assert!(valid.value(0));
        assert!(!valid.value(1));
        let date = column("event_date");
        let date: &Date32Array = date.as_primitive::<Date32Type>();
        assert_eq!(date.value(0), 19_137);
        assert!(date.is_null(1));
        let log_ts = column("log_timestamp");
        let log_ts: &TimestampMicrosecondArray = log_ts.as_primitive();
        assert_eq!(log_ts.value(0), 1_653_457_293_000_000);
        let offsets = column("source_offset");
        let offsets: &Int64Array = offsets.as_primitive::<Int64Type>();
        assert_eq!(offsets.values().to_vec(), vec![41, 42]);
        assert!(column("query").is_null(0));
        let source = column("source");
        assert_eq!(source.as_string::<i32>().value(0), "web");
        assert!(source.is_null(1));
    }

    #[test]
    fn finish_resets_and_builder_is_reusable() {
        let mut builder = EventsBuilder::new();
        builder.push(&row(1, "2022-05-25"));
        assert_eq!(builder.finish().num_rows(), 1);
        builder.push(&row(2, "2022-05-26"));
        let second = builder.finish();
        assert_eq!(second.num_rows(), 1);
        assert_eq!(second.schema(), TableKind::Events.arrow_schema());
    }
}
