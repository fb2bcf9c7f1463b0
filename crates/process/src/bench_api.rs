//! What `benches/decode_rows.rs` drives: the processor's decode → Arrow path for one writer
//! schema, outside a running processor (no log, registry, lake or enrichers). Not an API:
//! public only so that the bench, a separate crate, can reach it.

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use bytes::Bytes;
use clickstream_event::{RAW_TOPIC, wire};
use clickstream_lake::{EventRow, EventsBuilder};
use clickstream_log::{LogRecord, OutgoingRecord};
use deltalake::arrow::record_batch::RecordBatch;

use crate::FieldRoles;
use crate::decode::RawEvent;
use crate::roles::EventPaths;

/// How the fields with a role are found and the latest record's `metadata` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Before: fields searched by name in every record, `metadata` through an Avro value
    /// tree and apache-avro's encoder.
    ByName,
    /// Field positions resolved once per writer schema, `metadata` written directly.
    Resolved,
    /// Now: the fields read straight from the record by the schema's compiled reader (no
    /// value tree), `metadata` written directly.
    Compiled,
}

/// The decode → Arrow path over one writer schema.
pub struct DecodeToRows {
    reader: GenericDatumReader<'static>,
    by_name: EventPaths,
    resolved: EventPaths,
    compiled: crate::compiled::CompiledReader,
    metadata: Schema,
}

impl DecodeToRows {
    /// For records written with `writer` (the latest schema is the bundled one).
    pub fn new(writer: &Schema) -> Result<Self, String> {
        // Leaked like the processor's own decoders' schemas: one per bench.
        let schema: &'static Schema = Box::leak(Box::new(writer.clone()));
        let metadata = match clickstream_event::schemas::latest_event_schema() {
            Ok(Schema::Record(record)) => record.fields.last().map(|f| f.schema.clone()),
            _ => None,
        };
        Ok(DecodeToRows {
            reader: GenericDatumReader::builder(schema)
                .build()
                .map_err(|e| e.to_string())?,
            by_name: EventPaths::unresolved(&FieldRoles::default()),
            resolved: EventPaths::new(&FieldRoles::default(), schema),
            compiled: crate::compiled::CompiledReader::new(
                schema,
                &EventPaths::new(&FieldRoles::default(), schema),
            )
            .ok_or("the schema does not compile")?,
            metadata: metadata.ok_or("the bundled latest schema has no metadata")?,
        })
    }

    /// Log records of the raw topic holding `payloads` (framed Avro), as a poll gives them.
    pub fn records(payloads: &[Vec<u8>]) -> Vec<LogRecord> {
        payloads
            .iter()
            .enumerate()
            .map(|(offset, payload)| LogRecord {
                topic: RAW_TOPIC.into(),
                partition: 0,
                offset: offset as u64,
                timestamp_ms: 1_653_457_293_648 + offset as i64,
                key: None,
                value: Bytes::from(payload.clone()),
                headers: Vec::new(),
            })
            .collect()
    }

    /// Decodes each record, reads its fields, makes its latest-topic record and appends its
    /// row (no enrichment, no user columns); the batch and the latest records.
    pub fn rows(&self, records: &[LogRecord], path: Path) -> (RecordBatch, Vec<OutgoingRecord>) {
        let mut events = EventsBuilder::new();
        let mut latest = Vec::with_capacity(records.len());
        let mut latest_bytes = crate::latest::LatestBytes::default();
        let paths = match path {
            Path::ByName => &self.by_name,
            Path::Resolved | Path::Compiled => &self.resolved,
        };
        // Built once per poll, as the processor did.
        let writer = GenericDatumWriter::builder(&self.metadata)
            .validate(false)
            .build()
            .ok();
        for record in records {
            let Ok((id, payload)) = wire::split(&record.value) else {
                continue;
            };
            let value;
            let event = if path == Path::Compiled {
                self.compiled.event(payload)
            } else {
                value = wire::read_datum(&self.reader, id, payload).ok();
                value
                    .as_ref()
                    .and_then(|value| RawEvent::from_value(value, paths).ok())
            };
            let Some(event) = event else {
                continue;
            };
            let correlation_id = event.package_id.unwrap_or_default();
            latest.push(match path {
                Path::ByName => latest_via_values(writer.as_ref(), record, id, correlation_id),
                Path::Resolved | Path::Compiled => {
                    latest_bytes.record(record, 2, id, correlation_id)
                }
            });
            events.push(&EventRow {
                id: event.id,
                event_type: event.event_type,
                package_id: event.package_id,
                user_agent: event.user_agent,
                ip: event.ip,
                customer_id: event.customer_id,
                timestamp: &event.timestamp,
                page: event.page,
                query: event.query,
                product: event.product,
                referrer: event.referrer,
                position: event.position,
                correlation_id,
                source: None,
                schema_id: id as i32,
                log_timestamp_ms: record.timestamp_ms,
                source_partition: record.partition as i32,
                source_offset: record.offset as i64,
                ingested_at_ms: record.timestamp_ms,
                enrichment: Default::default(),
                user: None,
            });
        }
        (events.finish(), latest)
    }
}

/// The latest record as the processor made it before: `metadata` as an Avro value tree
/// through apache-avro's encoder, the timestamp formatted by chrono.
fn latest_via_values(
    writer: Option<&GenericDatumWriter<'_>>,
    record: &LogRecord,
    id: u32,
    correlation_id: &str,
) -> OutgoingRecord {
    let timestamp = chrono::DateTime::from_timestamp_millis(record.timestamp_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let metadata = Value::Record(vec![
        (
            "correlation_id".into(),
            Value::String(correlation_id.into()),
        ),
        ("timestamp".into(), Value::String(timestamp)),
        ("schema_id".into(), Value::Long(i64::from(id))),
    ]);
    let mut payload = Vec::with_capacity(record.value.len() + 96);
    wire::write_header(&mut payload, 2);
    payload.extend_from_slice(record.value.get(wire::HEADER_LEN..).unwrap_or_default());
    if let Some(writer) = writer {
        let _ = writer.write_value_ref(&mut payload, &metadata);
    }
    crate::latest::outgoing(record, payload, correlation_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickstream_event::EventValidator;
    use clickstream_event::schemas::raw_event_schema;

    /// The bench's legs are the same work: identical rows and latest records, byte for
    /// byte (so the new `metadata` encoding, the resolved field positions and the compiled
    /// reader change nothing the processor writes).
    #[test]
    fn every_path_makes_the_same_rows_and_latest_records() {
        let schema = raw_event_schema().expect("schema");
        let validator = EventValidator::new(schema.clone(), 1).expect("validator");
        let seed = include_str!("../../event/tests/data/seed_events.jsonl");
        let payloads: Vec<Vec<u8>> = validator
            .validate_texts(seed.lines())
            .expect("encoder")
            .into_iter()
            .filter_map(Result::ok)
            .map(|event| event.payload)
            .collect();
        assert!(payloads.len() >= 10, "the seed sample's valid events");
        let payloads: Vec<Vec<u8>> = payloads.iter().cycle().take(300).cloned().collect();
        let records = DecodeToRows::records(&payloads);
        let path = DecodeToRows::new(&schema).expect("decoder");
        let (old_rows, old_latest) = path.rows(&records, Path::ByName);
        let (new_rows, new_latest) = path.rows(&records, Path::Resolved);
        assert_eq!(new_rows.num_rows(), payloads.len());
        assert_eq!(old_rows, new_rows);
        assert_eq!(old_latest, new_latest);
        let (compiled_rows, compiled_latest) = path.rows(&records, Path::Compiled);
        assert_eq!(old_rows, compiled_rows);
        assert_eq!(old_latest, compiled_latest);
    }
}
