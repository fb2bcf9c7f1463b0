use apache_avro::reader::datum::GenericDatumReader;
use serde_json::json;

use super::*;
use crate::schemas::raw_event_schema;

fn validator() -> EventValidator {
    EventValidator::new(raw_event_schema().expect("schema"), 7).expect("validator")
}

fn reason(event: Json) -> String {
    validator()
        .to_avro(&event)
        .expect_err("event should be invalid")
        .to_string()
}

/// `event` validated and encoded as ingest does, then decoded as the processor does.
pub(super) fn encode_then_decode(
    validator: &EventValidator,
    schema: &Schema,
    event: &Json,
) -> Avro {
    let encoded = validator.validate_batch([event]).expect("encodes");
    let payload = &encoded[0].as_ref().expect("valid").payload;
    let (id, datum) = wire::split(payload).expect("framed");
    let reader = GenericDatumReader::builder(schema).build().expect("reader");
    wire::read_datum(&reader, id, datum).expect("decodes")
}

fn valid_event() -> Json {
    json!({"id": 367851, "type": "page_view", "event": {
        "user_agent": "Mozilla/5.0", "ip": "39.202.24.19", "customer_id": 1404,
        "timestamp": "2022-05-25T05:41:33.648681", "page": "https://xcc-webshop.com/"}})
}

#[test]
fn accepts_seed_event_and_fills_missing_nullables() {
    let avro = validator().to_avro(&valid_event()).expect("valid");
    let Avro::Record(fields) = avro else {
        panic!("record")
    };
    assert_eq!(fields[0], ("id".into(), Avro::Long(367851)));
    assert_eq!(
        fields[2],
        ("package_id".into(), Avro::Union(0, Box::new(Avro::Null)))
    );
    let Avro::Record(details) = &fields[3].1 else {
        panic!("details")
    };
    let get = |name: &str| {
        details
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("customer_id"),
        Some(Avro::Union(1, Box::new(Avro::Long(1404))))
    );
    assert_eq!(get("query"), Some(Avro::Union(0, Box::new(Avro::Null))));
}

#[test]
fn unknown_fields_do_not_invalidate() {
    let mut event = valid_event();
    event["extra"] = json!({"nested": [1, 2, 3]});
    event["event"]["screen"] = json!("1920x1080");
    assert!(validator().to_avro(&event).is_ok());
}

#[test]
fn rejects_string_id_naming_the_field() {
    let mut event = valid_event();
    event["id"] = json!("not-a-number");
    assert_eq!(
        reason(event),
        r#"field 'id': expected long (64-bit integer), found string "not-a-number""#
    );
}

#[test]
fn rejects_missing_required_nested_field() {
    let mut event = valid_event();
    event["event"]
        .as_object_mut()
        .expect("object")
        .remove("user_agent");
    event["event"]["user-agent"] = json!("Mozilla");
    assert_eq!(
        reason(event),
        "field 'event.user_agent' is required: expected string, found nothing"
    );
}

#[test]
fn rejects_wrong_type_in_nullable_field() {
    let mut event = valid_event();
    event["event"]["customer_id"] = json!("1404");
    assert_eq!(
        reason(event),
        r#"field 'event.customer_id': expected long (64-bit integer) or null, found string "1404""#
    );
}

#[test]
fn rejects_fractional_and_out_of_range_longs() {
    let mut event = valid_event();
    event["event"]["product"] = json!(1.5);
    assert!(reason(event).contains("found number 1.5"));
    let body = r#"{"id": 99999999999999999999, "type": "x", "event": {}}"#;
    let event: Json = serde_json::from_str(body).expect("json");
    assert!(reason(event).contains("out of range"), "{}", body);
}

#[test]
fn rejects_non_objects() {
    assert_eq!(
        reason(json!([1, 2])),
        "event: expected object (record ClickstreamEvent), found array"
    );
    assert!(reason(json!("x")).contains("found string"));
    assert!(reason(json!({"id": 1, "type": "click", "event": "nope"})).contains("field 'event'"));
}

#[test]
fn rejects_event_without_type() {
    assert_eq!(
        reason(json!({"id": 999003, "invalid": "data"})),
        "field 'type' is required: expected string, found nothing"
    );
}

#[test]
fn long_strings_are_truncated_in_reasons() {
    let mut event = valid_event();
    event["id"] = json!("x".repeat(10_000));
    let reason = reason(event);
    assert!(reason.len() < 150, "{reason}");
}

#[test]
fn encodes_in_wire_format_that_decodes_back() {
    let v = validator();
    let event = valid_event();
    let results = v.validate_batch([&event]).expect("encoder");
    let encoded = results[0].as_ref().expect("valid");
    assert_eq!(encoded.key.as_deref(), Some("1404"));
    let (id, payload) = wire::split(&encoded.payload).expect("wire");
    assert_eq!(id, 7);
    let reader = GenericDatumReader::builder(v.schema())
        .build()
        .expect("reader");
    let decoded = reader.read_value(&mut &payload[..]).expect("decode");
    assert_eq!(decoded, v.to_avro(&event).expect("valid"));
}

#[test]
fn key_falls_back_to_id_without_customer() {
    let mut event = valid_event();
    event["event"]["customer_id"] = Json::Null;
    assert_eq!(partition_key(&event).as_deref(), Some("367851"));
}

/// The key is read from the JSON as sent, not through the schema: a registry version
/// without `id` or `event.customer_id` still keys by what an event carries, or not at all.
#[test]
fn key_does_not_need_the_fields_in_the_schema() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"Other","fields":[{"name":"sku","type":"string"}]}"#,
    )
    .expect("schema");
    let v = EventValidator::for_events(schema, 9).expect("validator");
    let bare = json!({"sku": "a"});
    let keyed = json!({"sku": "b", "id": 5, "event": {"customer_id": 77}});
    let odd = json!({"sku": "c", "id": "5", "event": "not an object"});
    let results = v.validate_batch([&bare, &keyed, &odd]).expect("encoder");
    let keys: Vec<Option<&str>> = results
        .iter()
        .map(|r| r.as_ref().expect("valid").key.as_deref())
        .collect();
    assert_eq!(keys, [None, Some("77"), None]);
}

#[test]
fn batch_keeps_order_and_mixes_results() {
    let v = validator();
    let bad = json!({"id": 1});
    let good = valid_event();
    let results = v.validate_batch([&good, &bad, &good]).expect("encoder");
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
}

/// Found by the `json_to_avro` fuzz target: a uuid was taken as any string, so ingest
/// acknowledged one that the processor then could not decode. Now it is parsed, refused
/// with a reason when malformed, and read back as what was validated, as text or as 16
/// bytes.
#[test]
fn uuids_are_checked_and_round_trip_as_text_or_fixed() {
    for schema in [
        r#"{"type":"record","name":"U","fields":[{"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#,
        r#"{"type":"record","name":"U","fields":[{"name":"u","type":{"type":"fixed","name":"F","size":16,"logicalType":"uuid"}}]}"#,
    ] {
        let schema = Schema::parse_str(schema).expect("schema");
        let validator = EventValidator::new(schema.clone(), 3).expect("validator");
        let bad = validator
            .to_avro(&json!({"u": "not-a-uuid"}))
            .expect_err("malformed uuid");
        assert_eq!(
            bad.to_string(),
            "field 'u': expected uuid, found string \"not-a-uuid\""
        );

        let event = json!({"u": "3F2B1C9E-0000-4000-8000-00000000000A"});
        let avro = validator.to_avro(&event).expect("valid uuid");
        assert_eq!(encode_then_decode(&validator, &schema, &event), avro);
    }
}

/// Every logical type: the forms a client sends are taken, encoded, and decode back to the
/// validated value; a value that does not fit is refused with the field's name.
#[test]
fn logical_types_validate_encode_and_decode() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"L","fields":[
        {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}},
        {"name":"total","type":{"type":"fixed","name":"T","size":8,"logicalType":"decimal","precision":12,"scale":3}},
        {"name":"big","type":{"type":"bytes","logicalType":"big-decimal"}},
        {"name":"day","type":{"type":"int","logicalType":"date"}},
        {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
        {"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"atu","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"atn","type":{"type":"long","logicalType":"timestamp-nanos"}},
        {"name":"local","type":{"type":"long","logicalType":"local-timestamp-millis"}},
        {"name":"span","type":{"type":"fixed","name":"D","size":12,"logicalType":"duration"}}
        ]}"#,
    )
    .expect("schema");
    let validator = EventValidator::new(schema.clone(), 9).expect("validator");
    let event = json!({
        "price": "-12.5", "total": 1234.567, "big": "3.14159265358979323846",
        "day": "2024-05-01", "tm": 1000, "tu": 1, "at": "2024-05-01T12:00:00Z",
        "atu": 1714564800000000_i64, "atn": "2024-05-01T12:00:00.000000001Z",
        "local": "2024-05-01T12:00:00", "span": {"months": 1, "days": 2, "millis": 3}
    });
    let avro = validator.to_avro(&event).expect("valid");
    let Avro::Record(fields) = &avro else {
        panic!("record")
    };
    assert_eq!(fields[3].1, Avro::Date(19844));
    assert_eq!(fields[6].1, Avro::TimestampMillis(1_714_564_800_000));
    assert_eq!(fields[8].1, Avro::TimestampNanos(1_714_564_800_000_000_001));
    assert_eq!(encode_then_decode(&validator, &schema, &event), avro);

    for (field, value, says) in [
        ("price", json!("12.345"), "expected decimal(6,2)"),
        ("price", json!(12345.6), "expected decimal(6,2)"),
        ("price", json!("twelve"), "found string \"twelve\""),
        ("day", json!("2024-13-01"), "expected date"),
        ("tm", json!(86_400_000), "expected time of day"),
        ("at", json!("2024-05-01 12:00"), "expected timestamp"),
        (
            "local",
            json!("2024-05-01T12:00:00Z"),
            "expected local timestamp",
        ),
        ("span", json!({"months": -1}), "expected duration"),
        ("span", json!({"weeks": 1}), "expected duration"),
    ] {
        let mut bad = event.clone();
        bad[field] = value;
        let reason = validator.to_avro(&bad).expect_err(field).to_string();
        assert!(
            reason.starts_with(&format!("field '{field}': ")),
            "{reason}"
        );
        assert!(reason.contains(says), "{reason}");
    }
}

#[test]
fn a_timestamp_millis_beyond_the_lakes_microsecond_range_is_refused() {
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#,
    )
    .expect("schema");
    let validator = EventValidator::new(schema, 1).expect("validator");
    assert!(
        validator
            .to_avro(&serde_json::json!({"t": i64::MAX / 1000}))
            .is_ok()
    );
    let error = validator
        .to_avro(&serde_json::json!({"t": i64::MAX / 1000 + 1}))
        .expect_err("beyond microseconds");
    assert_eq!(error.path, "t");
}
