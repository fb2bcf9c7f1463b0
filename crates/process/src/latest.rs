//! The latest topic's records: the raw record's Avro bytes followed by the `metadata`
//! record's, under the id of the latest schema derived from the writer schema. Avro
//! writes a record as its fields in order, so neither part is re-encoded through a value
//! tree: `metadata` (two strings and a long, checked once against the bundled latest
//! schema) is written directly.

use std::borrow::Cow;

use apache_avro::Schema;
use bytes::{Bytes, BytesMut};
use chrono::{Datelike, Timelike};
use clickstream_event::{CORRELATION_ID_HEADER, LATEST_TOPIC, wire};
use clickstream_log::{Header, LogRecord, OutgoingRecord};

use crate::ProcessError;

/// The `metadata` fields, in the order [`write_metadata`] writes them.
const METADATA_FIELDS: [(&str, &str); 3] = [
    ("correlation_id", "string"),
    ("timestamp", "string"),
    ("schema_id", "long"),
];

/// Checks that the latest schema ends with the `metadata` record [`write_metadata`] writes.
pub(crate) fn check_metadata(latest: &Schema) -> Result<(), ProcessError> {
    let refused = |why: &str| ProcessError::Internal(format!("latest schema: {why}"));
    let Schema::Record(record) = latest else {
        return Err(refused("not a record"));
    };
    let Some(field) = record.fields.last().filter(|f| f.name == "metadata") else {
        return Err(refused("does not end with a `metadata` field"));
    };
    let Schema::Record(metadata) = &field.schema else {
        return Err(refused("`metadata` is not a record"));
    };
    let shape: Vec<(&str, String)> = metadata
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.schema.canonical_form().replace('"', "")))
        .collect();
    let expected: Vec<(&str, String)> = METADATA_FIELDS
        .iter()
        .map(|(name, kind)| (*name, (*kind).to_string()))
        .collect();
    if shape != expected {
        return Err(refused(&format!(
            "`metadata` is {shape:?}, not {expected:?}"
        )));
    }
    Ok(())
}

/// Where the latest-topic records are written: one buffer whose parts become the
/// records' keys, values and header values, so a record costs no allocation of its own
/// beyond its header list (before, each record allocated its topic name, key, payload,
/// the payload's shared handle, and its header's name and value). A part keeps its
/// chunk alive until the record is appended, which happens poll by poll; a chunk no
/// record holds any more is written over.
#[derive(Debug, Default)]
pub(crate) struct LatestBytes {
    chunk: BytesMut,
    payload: Vec<u8>,
}

impl LatestBytes {
    /// Room reserved at a time; a poll's records take a few of these.
    const CHUNK: usize = 64 * 1024;

    /// The latest-topic record of `record` (a raw record in wire format) under
    /// `latest_id`.
    pub(crate) fn record(
        &mut self,
        record: &LogRecord,
        latest_id: u32,
        schema_id: u32,
        correlation_id: &str,
    ) -> OutgoingRecord {
        self.payload.clear();
        wire::write_header(&mut self.payload, latest_id);
        self.payload
            .extend_from_slice(record.value.get(wire::HEADER_LEN..).unwrap_or_default());
        write_metadata(
            &mut self.payload,
            correlation_id,
            record.timestamp_ms,
            schema_id,
        );
        let value = take(&mut self.chunk, &self.payload);
        OutgoingRecord {
            topic: Cow::Borrowed(LATEST_TOPIC),
            partition: None,
            // A copy, not a slice: the record's bytes share the log's read buffer, which
            // a slice would keep alive until the records are appended.
            key: record.key.as_deref().map(|key| take(&mut self.chunk, key)),
            value,
            headers: vec![Header::new(
                CORRELATION_ID_HEADER,
                take(&mut self.chunk, correlation_id.as_bytes()),
            )],
            timestamp_ms: Some(record.timestamp_ms),
        }
    }
}

/// `bytes` copied into `chunk` and split off it as a handle of their own.
fn take(chunk: &mut BytesMut, bytes: &[u8]) -> Bytes {
    if chunk.capacity() < bytes.len() {
        chunk.reserve(bytes.len().max(LatestBytes::CHUNK));
    }
    chunk.extend_from_slice(bytes);
    chunk.split().freeze()
}

/// The latest-topic record of `record` with `payload` (framed Avro) as its value.
pub(crate) fn outgoing(
    record: &LogRecord,
    payload: Vec<u8>,
    correlation_id: &str,
) -> OutgoingRecord {
    OutgoingRecord {
        topic: Cow::Borrowed(LATEST_TOPIC),
        partition: None,
        // A copy, not a slice: the record's bytes share the log's read buffer, which a
        // slice would keep alive until the batch commits (tens of MB per batch).
        key: record.key.as_deref().map(Bytes::copy_from_slice),
        value: Bytes::from(payload),
        headers: vec![Header::new(
            CORRELATION_ID_HEADER,
            Bytes::copy_from_slice(correlation_id.as_bytes()),
        )],
        timestamp_ms: Some(record.timestamp_ms),
    }
}

/// Appends the Avro binary of `metadata`: the correlation id, the log timestamp in
/// RFC 3339 (UTC, milliseconds) and the writer schema's id.
pub(crate) fn write_metadata(
    out: &mut Vec<u8>,
    correlation_id: &str,
    timestamp_ms: i64,
    schema_id: u32,
) {
    write_string(out, correlation_id.as_bytes());
    let mut text = [0u8; 32];
    let len = rfc3339_millis(timestamp_ms, &mut text);
    write_string(out, &text[..len]);
    write_long(out, i64::from(schema_id));
}

fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Avro's long: zig-zag, then base-128 little-endian groups.
fn write_long(out: &mut Vec<u8>, value: i64) {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Writes `ms` as chrono's `to_rfc3339_opts(SecondsFormat::Millis, true)` does
/// (`2022-05-25T05:41:33.648Z`) into `buf`, returning the length; an out-of-range
/// instant is the epoch, as before. Years beyond four digits go through chrono.
fn rfc3339_millis(ms: i64, buf: &mut [u8; 32]) -> usize {
    let time = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let year = time.year();
    if !(0..=9999).contains(&year) {
        let text = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let len = text.len().min(buf.len());
        buf[..len].copy_from_slice(&text.as_bytes()[..len]);
        return len;
    }
    let millis = time.timestamp_subsec_millis().min(999);
    let mut at = 0;
    let mut put = |value: u32, digits: u32, then: Option<u8>| {
        for i in (0..digits).rev() {
            buf[at] = b'0' + (value / 10u32.pow(i) % 10) as u8;
            at += 1;
        }
        if let Some(c) = then {
            buf[at] = c;
            at += 1;
        }
    };
    put(year as u32, 4, Some(b'-'));
    put(time.month(), 2, Some(b'-'));
    put(time.day(), 2, Some(b'T'));
    put(time.hour(), 2, Some(b':'));
    put(time.minute(), 2, Some(b':'));
    put(time.second(), 2, Some(b'.'));
    put(millis, 3, Some(b'Z'));
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;
    use clickstream_event::schemas::latest_event_schema;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let same_as_chrono = |ms: i64| {
            let expected = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let mut buf = [0u8; 32];
            let len = rfc3339_millis(ms, &mut buf);
            assert_eq!(
                std::str::from_utf8(&buf[..len]),
                Ok(expected.as_str()),
                "{ms}"
            );
        };
        let mut ms = -62_167_219_200_000i64 - 5; // just before year 0
        let mut checked = 0;
        while ms < 253_402_300_800_000 + 5 {
            same_as_chrono(ms);
            ms += 7_919_777_773; // ~92 days, prime: every field takes many values
            checked += 1;
        }
        for ms in [i64::MIN, i64::MAX, -1, 0, 999, 1_000, 1_653_457_293_648] {
            same_as_chrono(ms);
        }
        assert!(checked > 1000);
    }

    #[test]
    fn metadata_is_encoded_as_the_latest_schema_says() {
        let latest = latest_event_schema().expect("latest schema");
        check_metadata(&latest).expect("the bundled schema's metadata");
        let schema = match &latest {
            Schema::Record(record) => record.fields.last().map(|f| f.schema.clone()),
            _ => None,
        }
        .expect("the metadata record");
        for (id, ms, schema_id) in [
            ("", 0, 0),
            ("c0ffee-1", 1_653_457_293_648, 1),
            (&"é".repeat(200)[..], -1, u32::MAX),
            ("x", 253_402_300_799_999, 64),
        ] {
            let mut ours = Vec::new();
            write_metadata(&mut ours, id, ms, schema_id);
            let timestamp = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let value = Value::Record(vec![
                ("correlation_id".into(), Value::String(id.into())),
                ("timestamp".into(), Value::String(timestamp)),
                ("schema_id".into(), Value::Long(i64::from(schema_id))),
            ]);
            let mut theirs = Vec::new();
            apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
                .build()
                .expect("a writer")
                .write_value(&mut theirs, value)
                .expect("encode");
            assert_eq!(ours, theirs, "{id:?} {ms} {schema_id}");
        }
    }

    /// The old way: a payload of its own and copies of the key and correlation id.
    fn one_by_one(record: &LogRecord, latest_id: u32, schema_id: u32, id: &str) -> OutgoingRecord {
        let mut payload = Vec::new();
        wire::write_header(&mut payload, latest_id);
        payload.extend_from_slice(&record.value[wire::HEADER_LEN..]);
        write_metadata(&mut payload, id, record.timestamp_ms, schema_id);
        outgoing(record, payload, id)
    }

    #[test]
    fn records_cut_from_one_buffer_are_those_made_one_by_one() {
        let mut bytes = LatestBytes::default();
        let mut made = Vec::new();
        // Past several chunks, with a record larger than a chunk among them.
        for i in 0..600u32 {
            let size = if i == 300 {
                3 * LatestBytes::CHUNK
            } else {
                200 + i as usize
            };
            let mut value = vec![0u8, 0, 0, 0, 1];
            value.extend((0..size).map(|b| (b as u32 * 7 + i) as u8));
            let record = LogRecord {
                topic: "raw".into(),
                partition: i % 3,
                offset: u64::from(i),
                timestamp_ms: 1_653_457_293_648 + i64::from(i),
                key: (i % 5 != 0).then(|| Bytes::from(format!("customer-{i}"))),
                value: Bytes::from(value),
                headers: Vec::new(),
            };
            let id = format!("correlation-{i}");
            made.push((
                bytes.record(&record, 9, i, &id),
                one_by_one(&record, 9, i, &id),
            ));
            if i % 7 == 0 {
                // Records leave in any order; the others' bytes stay as they were.
                let (ours, theirs) = made.swap_remove(0);
                assert_eq!(ours, theirs);
            }
        }
        for (ours, theirs) in made {
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn a_metadata_of_another_shape_is_refused() {
        let text = clickstream_event::schemas::LATEST_EVENT_SCHEMA.replace(
            r#""name": "schema_id", "type": "long""#,
            r#""name": "schema_id", "type": "int""#,
        );
        assert_ne!(
            text,
            clickstream_event::schemas::LATEST_EVENT_SCHEMA,
            "the edit applies"
        );
        let schema = Schema::parse_str(&text).expect("parses");
        assert!(check_metadata(&schema).is_err());
    }
}
