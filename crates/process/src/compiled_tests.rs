//! The compiled reader against the value path: whatever it reads, the value path reads
//! the same; whatever the value path refuses, it leaves to the value path.

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use proptest::prelude::*;

use super::*;
use crate::roles::{EventPaths, FieldRoles};
use clickstream_event::fields::MAX_DEPTH;

const RAW: &str = include_str!("../../event/schemas/acme.clickstream.raw.events.avsc");

fn to_avro_datum(schema: &Schema, value: Value) -> Result<Vec<u8>, apache_avro::Error> {
    GenericDatumWriter::builder(schema)
        .build()?
        .write_value_to_vec(value)
}

fn leak(text: &str) -> &'static Schema {
    Box::leak(Box::new(Schema::parse_str(text).expect("schema")))
}

/// The value path's reading of `payload`: `None` when it refuses it (decoding, or a role).
fn by_value<'v>(
    schema: &'static Schema,
    paths: &EventPaths,
    payload: &[u8],
    value: &'v mut Option<Value>,
) -> Option<RawEvent<'v>> {
    let reader = GenericDatumReader::builder(schema).build().expect("reader");
    let mut rest = payload;
    let decoded = reader.read_value(&mut rest).ok()?;
    if !rest.is_empty() {
        return None;
    }
    *value = Some(decoded);
    RawEvent::from_value(value.as_ref()?, paths).ok()
}

/// Checks one payload: a reading of the compiled reader is the value path's.
fn agrees(schema: &'static Schema, reader: &CompiledReader, paths: &EventPaths, payload: &[u8]) {
    let mut value = None;
    let expected = by_value(schema, paths, payload, &mut value);
    if let Some(event) = reader.event(payload) {
        assert_eq!(Some(&event), expected.as_ref(), "payload {payload:?}");
    }
}

fn seed_value(
    id: i64,
    package_id: Option<String>,
    customer: Option<i64>,
    page: Option<String>,
    text: String,
) -> Value {
    let opt_s = |v: Option<String>| match v {
        Some(s) => Value::Union(1, Box::new(Value::String(s))),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    let opt_l = |v: Option<i64>| match v {
        Some(l) => Value::Union(1, Box::new(Value::Long(l))),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    Value::Record(vec![
        ("id".into(), Value::Long(id)),
        ("type".into(), Value::String(text.clone())),
        ("package_id".into(), opt_s(package_id)),
        (
            "event".into(),
            Value::Record(vec![
                ("user_agent".into(), Value::String(text.clone())),
                ("ip".into(), Value::String("203.0.113.7".into())),
                ("customer_id".into(), opt_l(customer)),
                ("timestamp".into(), Value::String(text)),
                ("page".into(), opt_s(page.clone())),
                ("query".into(), opt_s(page)),
                ("product".into(), opt_l(customer.map(|c| c / 3))),
                ("referrer".into(), opt_s(None)),
                ("position".into(), opt_l(Some(id.wrapping_neg()))),
            ]),
        ),
    ])
}

#[test]
fn reads_the_seed_events_as_the_value_path_does() {
    let schema = leak(RAW);
    let paths = EventPaths::new(&FieldRoles::default(), schema);
    let reader = CompiledReader::new(schema, &paths).expect("the seed schema compiles");
    let validator = clickstream_event::EventValidator::new(schema.clone(), 1).expect("validator");
    let seed = include_str!("../../event/tests/data/seed_events.jsonl");
    let mut read = 0;
    for event in validator.validate_texts(seed.lines()).expect("encoder") {
        let Ok(event) = event else { continue };
        let payload = &event.payload[clickstream_event::wire::HEADER_LEN..];
        let mut value = None;
        let expected = by_value(schema, &paths, payload, &mut value).expect("a seed event");
        assert_eq!(reader.event(payload), Some(expected));
        read += 1;
    }
    assert!(read > 10, "only {read} seed events");
}

#[test]
fn every_truncation_and_byte_change_is_read_as_the_value_path_reads_it() {
    let schema = leak(RAW);
    let paths = EventPaths::new(&FieldRoles::default(), schema);
    let reader = CompiledReader::new(schema, &paths).expect("compiles");
    let value = seed_value(
        300,
        Some("pkg-1".into()),
        Some(-70_000),
        Some("https://shop.example/p?q=1".into()),
        "Mozilla/5.0 é".into(),
    );
    let payload = to_avro_datum(schema, value).expect("encode");
    let mut accepted = 0;
    for cut in 0..payload.len() {
        agrees(schema, &reader, &paths, &payload[..cut]);
        // A cut datum is never a whole event.
        assert_eq!(reader.event(&payload[..cut]), None, "cut at {cut}");
    }
    for at in 0..payload.len() {
        for byte in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xc3, 0xff] {
            let mut changed = payload.clone();
            changed[at] = byte;
            agrees(schema, &reader, &paths, &changed);
            accepted += usize::from(reader.event(&changed).is_some());
        }
    }
    let mut longer = payload.clone();
    longer.push(0);
    assert_eq!(reader.event(&longer), None, "a trailing byte");
    assert!(accepted > 0, "no changed datum read at all");
}

proptest! {
    #[test]
    fn random_seed_events_read_alike(
        id in any::<i64>(),
        package_id in proptest::option::of(".{0,12}"),
        customer in proptest::option::of(any::<i64>()),
        page in proptest::option::of("\\PC{0,40}"),
        text in "\\PC{0,30}",
    ) {
        let schema = leak(RAW);
        let paths = EventPaths::new(&FieldRoles::default(), schema);
        let reader = CompiledReader::new(schema, &paths).expect("compiles");
        let payload = to_avro_datum(schema, seed_value(id, package_id, customer, page, text))
            .expect("encode");
        let mut value = None;
        let expected = by_value(schema, &paths, &payload, &mut value);
        // Ids and numbers of ten varint bytes are the value path's alone.
        let ten_bytes = |n: i64| ((n << 1) ^ (n >> 63)) as u64 >= 1 << 63;
        let long_varint = [id, customer.unwrap_or(0), customer.unwrap_or(0) / 3, id.wrapping_neg()]
            .into_iter()
            .any(ten_bytes);
        if long_varint {
            prop_assert_eq!(reader.event(&payload), None);
        } else {
            prop_assert!(expected.is_some());
            prop_assert_eq!(reader.event(&payload), expected);
        }
    }
}

/// A site's schema (shared with the fuzz target): roles elsewhere, under a nullable record,
/// an int id, an enum type, a timestamp-millis, and types no role reads around them
/// (arrays, maps, fixed, bytes, a date, a recursive record, a boolean, floats).
const SITE: &str = include_str!("../../event/tests/data/site_hit.avsc");

fn site_roles() -> FieldRoles {
    FieldRoles {
        id: "id".into(),
        event_type: "kind".into(),
        user_agent: "ctx.ua".into(),
        ip: "ctx.ip".into(),
        timestamp: "ctx.at".into(),
        ..FieldRoles::default()
    }
}

fn site_value(ip: Option<&str>, at: i64, nested: Option<Value>, tags: usize) -> Value {
    let ctx = Value::Record(vec![
        ("ua".into(), Value::String("curl/8".into())),
        (
            "ip".into(),
            match ip {
                Some(ip) => Value::Union(1, Box::new(Value::String(ip.into()))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
        ("at".into(), Value::TimestampMillis(at)),
        ("day".into(), Value::Date(19_000)),
        (
            "attrs".into(),
            Value::Map(
                [
                    (
                        "a".to_string(),
                        Value::Union(1, Box::new(Value::Double(1.5))),
                    ),
                    (
                        "b".to_string(),
                        Value::Union(2, Box::new(Value::Enum(1, "buy".into()))),
                    ),
                ]
                .into_iter()
                .collect(),
            ),
        ),
        ("hash".into(), Value::Fixed(4, vec![1, 2, 3, 4])),
        ("blob".into(), Value::Bytes(vec![0, 0xff])),
        (
            "next".into(),
            match nested {
                Some(hit) => Value::Union(1, Box::new(hit)),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
    ]);
    Value::Record(vec![
        (
            "tags".into(),
            Value::Array((0..tags).map(|i| Value::String(format!("t{i}"))).collect()),
        ),
        ("id".into(), Value::Int(-12)),
        ("kind".into(), Value::Enum(0, "view".into())),
        ("flag".into(), Value::Boolean(true)),
        ("ctx".into(), Value::Union(1, Box::new(ctx))),
        ("score".into(), Value::Float(0.25)),
    ])
}

#[test]
fn reads_a_site_schema_with_roles_elsewhere() {
    let schema = leak(SITE);
    let paths = EventPaths::new(&site_roles(), schema);
    let reader = CompiledReader::new(schema, &paths).expect("compiles");
    let inner = site_value(None, 5, None, 0);
    for value in [
        site_value(Some("198.51.100.1"), 1_709_287_200_123, None, 3),
        site_value(Some("::1"), -1, Some(inner), 0),
    ] {
        let payload = to_avro_datum(schema, value).expect("encode");
        let event = reader.event(&payload).expect("read");
        assert_eq!(event.id, -12);
        assert_eq!(event.event_type, "view");
        assert_eq!(event.user_agent, "curl/8");
        let mut value = None;
        assert_eq!(Some(event), by_value(schema, &paths, &payload, &mut value));
        for cut in 0..payload.len() {
            agrees(schema, &reader, &paths, &payload[..cut]);
        }
        for at in 0..payload.len() {
            for byte in [0x00, 0x01, 0x03, 0x80, 0xff] {
                let mut changed = payload.clone();
                changed[at] = byte;
                agrees(schema, &reader, &paths, &changed);
            }
        }
    }
    // A required role that is null (the value path's dead letter) is left to it.
    let payload = to_avro_datum(schema, site_value(None, 5, None, 1)).expect("encode");
    assert_eq!(reader.event(&payload), None);
    let mut value = None;
    assert_eq!(by_value(schema, &paths, &payload, &mut value), None);
}

#[test]
fn leaves_deep_nesting_to_the_value_path() {
    // apache-avro's writer and reader recurse with large frames in debug builds.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(deep_nesting)
        .expect("thread")
        .join()
        .expect("deep nesting");
}

fn deep_nesting() {
    let schema = leak(SITE);
    let paths = EventPaths::new(&site_roles(), schema);
    let reader = CompiledReader::new(schema, &paths).expect("compiles");
    let mut hit = site_value(Some("1.2.3.4"), 0, None, 0);
    // Each level is a union and a record twice over: four steps of depth.
    for _ in 0..MAX_DEPTH / 4 + 1 {
        hit = site_value(Some("1.2.3.4"), 0, Some(hit), 0);
    }
    let payload = to_avro_datum(schema, hit).expect("encode");
    assert_eq!(reader.event(&payload), None);
    let mut value = None;
    assert!(by_value(schema, &paths, &payload, &mut value).is_some());
}

#[test]
fn schemas_it_cannot_read_are_not_compiled() {
    let paths = |schema| EventPaths::new(&FieldRoles::default(), schema);
    let with_uuid = leak(
        r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"},
            {"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#,
    );
    assert!(CompiledReader::new(with_uuid, &paths(with_uuid)).is_none());
    let two_records = leak(
        r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"},
            {"name":"event","type":["null",
                {"type":"record","name":"A","fields":[{"name":"ip","type":"string"}]},
                {"type":"record","name":"B","fields":[{"name":"ip","type":"string"}]}]}]}"#,
    );
    assert!(CompiledReader::new(two_records, &paths(two_records)).is_none());
    let not_a_record = leak(r#""string""#);
    assert!(CompiledReader::new(not_a_record, &paths(not_a_record)).is_none());
}
