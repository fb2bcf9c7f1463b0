//! The compiled path against the value path on what the random schemas do not make:
//! unions of several branches, non-null defaults, escapes, repeated members, and the
//! partition key on the seed's schema.

use apache_avro::Schema;
use serde_json::{Value as Json, json};

use crate::schemas::raw_event_schema;
use crate::{EventValidator, TextRefusal, wire};

use super::{Scratch, encode_text};

fn validator(schema: &Json) -> EventValidator {
    let schema = Schema::parse_str(&schema.to_string()).expect("a valid schema");
    EventValidator::new(schema, 3).expect("validator")
}

/// Whether the compiled path took `text`, and that every answer equals the value path's.
fn taken(validator: &EventValidator, text: &str) -> bool {
    let mut payload = Vec::new();
    wire::write_header(&mut payload, validator.schema_id());
    let compiled = encode_text(
        validator,
        &validator.plan,
        text,
        &mut payload,
        &mut Scratch::default(),
    );
    let answer = validator
        .validate_texts([text])
        .expect("encoder")
        .pop()
        .expect("one answer");
    let json: Json = serde_json::from_str(text).expect("JSON");
    let expected = validator
        .validate_batch([&json])
        .expect("encoder")
        .pop()
        .expect("one answer");
    match (answer, expected) {
        (Ok(answer), Ok(expected)) => {
            assert_eq!(answer.key, expected.key, "{text}");
            assert_eq!(
                decode(validator, &answer.payload),
                decode(validator, &expected.payload)
            );
            if let Some(key) = &compiled {
                assert_eq!(*key, expected.key, "{text}");
                assert_eq!(
                    decode(validator, &payload),
                    decode(validator, &expected.payload)
                );
            }
        }
        (Err(answer), Err(expected)) => {
            assert_eq!(answer, TextRefusal::Invalid(expected), "{text}");
            assert!(compiled.is_none(), "the compiled path took {text}");
        }
        (answer, expected) => panic!("{text}: {answer:?} against {expected:?}"),
    }
    compiled.is_some()
}

fn decode(validator: &EventValidator, framed: &[u8]) -> apache_avro::types::Value {
    crate::validate::proptests::decode(validator.schema(), framed)
}

fn unions() -> EventValidator {
    validator(&json!({"type": "record", "name": "U", "fields": [
        {"name": "a", "type": ["int", "string"], "default": 1},
        {"name": "b", "type": ["long", "double"], "default": 2},
        {"name": "c", "type": ["null", "string", "long"], "default": null},
        {"name": "d", "type": ["string", {"type": "record", "name": "D", "fields": [
            {"name": "x", "type": "long", "default": 5}]}], "default": "dd"},
        {"name": "e", "type": ["null",
            {"type": "record", "name": "E1", "fields": [{"name": "p", "type": "long"}]},
            {"type": "record", "name": "E2", "fields": [{"name": "q", "type": "string"}]}],
            "default": null},
        {"name": "f", "type": {"type": "enum", "name": "F", "symbols": ["X", "Y"]}, "default": "Y"},
        {"name": "g", "type": {"type": "map", "values": "long"}, "default": {}},
        {"name": "h", "type": {"type": "array", "items": "D"}, "default": []},
        {"name": "t", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
            "default": null}
    ]}))
}

#[test]
fn a_union_of_scalars_takes_the_first_branch_the_value_fits() {
    let v = unions();
    assert!(taken(&v, r#"{"a": 7, "b": 8}"#));
    assert!(taken(&v, r#"{"a": "7", "b": 8.5, "c": 9}"#));
    assert!(
        !taken(&v, r#"{"a": 3000000000}"#),
        "beyond int, not a string: refused"
    );
    assert!(taken(&v, r#"{"c": "text", "t": "2024-05-01T10:00:00Z"}"#));
    assert!(taken(&v, r#"{"c": null, "t": 1714557600000}"#));
}

#[test]
fn defaults_of_every_kind_fill_absent_fields() {
    let v = unions();
    assert!(taken(&v, "{}"));
    assert!(taken(&v, r#"{"d": {}, "h": [{}, {"x": -1}]}"#));
}

#[test]
fn an_object_goes_to_the_one_branch_that_takes_objects_or_to_the_value_path() {
    let v = unions();
    assert!(taken(&v, r#"{"d": {"x": 2}}"#));
    // Two record branches: only trying each can tell, which the value path does.
    assert!(!taken(&v, r#"{"e": {"q": "second branch"}}"#));
    assert!(!taken(&v, r#"{"e": {"p": 1}}"#));
}

#[test]
fn escapes_and_repeated_members_read_as_the_value_path_reads_them() {
    let v = unions();
    assert!(taken(&v, r#"{"\u0061": "\u00e9t\u00e9\n", "f": "X"}"#));
    // The last of a repeated member wins, as in a parsed object.
    assert!(taken(&v, r#"{"a": 1, "a": "later", "f": "X", "f": "Y"}"#));
    // A map with a repeated key is left to the value path (which keeps the last value).
    assert!(!taken(&v, r#"{"g": {"k": 1, "k": 2}}"#));
    assert!(taken(&v, r#"{"g": {"k": 1, "l": 2}}"#));
}

#[test]
fn what_the_value_path_refuses_is_refused_with_its_reason() {
    let v = unions();
    for text in [
        r#"{"a": true}"#,
        r#"{"f": "Z"}"#,
        r#"{"h": [{"x": "no"}]}"#,
        r#"{"t": "yesterday"}"#,
        r#"[1, 2]"#,
        "17",
    ] {
        assert!(!taken(&v, text), "{text}");
    }
    let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let answer = v.validate_texts([nested.as_str()]).expect("encoder");
    assert!(
        matches!(&answer[0], Err(TextRefusal::Unparsable(reason)) if reason.contains("recursion")),
        "{answer:?}"
    );
}

#[test]
fn the_partition_key_is_the_customer_id_else_the_id_as_before() {
    let v = EventValidator::new(raw_event_schema().expect("schema"), 1).expect("validator");
    let event = |id: &str, customer: &str| {
        format!(
            r#"{{"id": {id}, "type": "page_view", "event": {{"user_agent": "UA", "ip": "1.2.3.4", {customer} "timestamp": "2024-05-01T10:00:00"}}}}"#
        )
    };
    for (id, customer) in [
        ("5", r#""customer_id": 1404,"#),
        ("5", r#""customer_id": null,"#),
        ("5", ""),
        ("5", r#""customer_id": 9, "customer_id": null,"#),
        ("-6", r#""customer_id": -2,"#),
    ] {
        assert!(taken(&v, &event(id, customer)), "{id} {customer}");
    }
    // An `event` repeated: the last one is the event, and its customer id the key's. (The
    // compiled path encodes every copy and the first lacks required fields, so it leaves
    // this one to the value path; either way the answer is the value path's.)
    let text = r#"{"id": 1, "type": "t", "event": {"customer_id": 3}, "event": {"user_agent": "UA", "ip": "ip", "timestamp": "ts"}}"#;
    taken(&v, text);
    let key = v.validate_texts([text]).expect("encoder")[0]
        .clone()
        .expect("valid")
        .key;
    assert_eq!(key.as_deref(), Some("1"));
}

#[test]
fn members_the_schema_does_not_name_are_read_as_strictly_as_a_parse_reads_them() {
    let v = validator(&json!({"type": "record", "name": "R", "fields": [
        {"name": "n", "type": "long"}]}));
    let deep = format!(r#"{{"n": 1, "x": {}{}}}"#, "[".repeat(200), "]".repeat(200));
    for text in [
        r#"{"n": 1, "x": 1e400}"#,
        r#"{"n": 1, "x": "\ud800"}"#,
        r#"{"n": 1, "id": [1e400]}"#,
        r#"{"n": 1, "event": {"y": "\udc00"}}"#,
        deep.as_str(),
    ] {
        let answer = v
            .validate_texts([text])
            .expect("encoder")
            .pop()
            .expect("one");
        assert!(
            matches!(answer, Err(TextRefusal::Unparsable(_))),
            "{text}: {answer:?}"
        );
    }
}

#[test]
fn an_object_serde_json_reads_as_a_raw_value_is_left_to_the_value_path() {
    let token = "$serde_json::private::RawValue";
    let v = validator(&json!({"type": "record", "name": "R", "fields": [
        {"name": "n", "type": "long", "default": 0},
        {"name": "m", "type": {"type": "map", "values": "string"}, "default": {}}]}));
    for text in [
        format!(r#"{{"{token}": "{{\"n\": 5}}"}}"#),
        format!(r#"{{"m": {{"{token}": "{{}}"}}}}"#),
        format!(r#"{{"id": {{"{token}": "7"}}}}"#),
    ] {
        let mut payload = Vec::new();
        let taken = encode_text(&v, &v.plan, &text, &mut payload, &mut Scratch::default());
        assert!(taken.is_none(), "{text}");
    }
}

#[test]
fn a_decimal_its_fixed_cannot_hold_is_refused_not_a_failed_batch() {
    let v = validator(&json!({"type": "record", "name": "R", "fields": [
        {"name": "d", "type": [{"type": "fixed", "name": "D", "size": 1,
            "logicalType": "decimal", "precision": 3, "scale": 0}, "long"]}]}));
    // 100 fits one byte of two's complement (0x64); 200 needs two (0x00c8).
    assert!(taken(&v, r#"{"d": 100}"#));
    assert!(
        taken(&v, r#"{"d": 200}"#),
        "200 goes to the long branch on both paths"
    );
    let alone = validator(&json!({"type": "record", "name": "S", "fields": [
        {"name": "d", "type": {"type": "fixed", "name": "D", "size": 1,
            "logicalType": "decimal", "precision": 3, "scale": 0}}]}));
    assert!(!taken(&alone, r#"{"d": 200}"#));
}
