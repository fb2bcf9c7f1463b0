//! Malformed JSON and wrong content types.

use serde_json::Value;

use super::{Case, Expect, case};
use crate::common::seed_events;

pub fn event_with(path: &[&str], value: Value) -> Vec<u8> {
    let mut event = seed_events()[0].clone();
    let mut target = &mut event;
    for key in &path[..path.len() - 1] {
        target = &mut target[*key];
    }
    target[path[path.len() - 1]] = value;
    serde_json::to_vec(&vec![event]).expect("json")
}

/// Broken JSON, JSON that is not a batch, events of the wrong shape, content types.
pub fn cases(limit: usize) -> Vec<Case> {
    use Expect::*;
    let mut cases = vec![
        // Broken JSON.
        case("open brace", "{", Error(400)),
        case("open bracket", "[", Error(400)),
        case("trailing comma in array", "[{\"id\": 1},]", Error(400)),
        case("trailing comma in object", "[{\"id\": 1,}]", Error(400)),
        case("missing value", "[{\"id\":}]", Error(400)),
        case("single quotes", "[{'id': 1}]", Error(400)),
        case("missing colon", "[{\"id\" 1}]", Error(400)),
        case("unterminated string", "[\"abc", Error(400)),
        case("bad escape", "[\"\\x41\"]", Error(400)),
        case("NaN", "[NaN]", Error(400)),
        case("Infinity", "[{\"id\": Infinity}]", Error(400)),
        case("hex number", "[{\"id\": 0x10}]", Error(400)),
        case("leading zero", "[{\"id\": 012}]", Error(400)),
        case("lone minus", "[-]", Error(400)),
        case("exponent without digits", "[1e]", Error(400)),
        case("two arrays", "[] []", Error(400)),
        case("extra bracket", "[]]", Error(400)),
        case("garbage after object", "{\"id\": 1} trailing", Error(400)),
        case("plain text", "this line is not json", Error(400)),
        case("empty body", "", Error(400)),
        case("only whitespace", "   \n\t ", Error(400)),
        case("byte order mark", b"\xEF\xBB\xBF[]".to_vec(), Error(400)),
        case("javascript comment", "[/* c */]", Error(400)),
        case(
            "truncated event",
            "[{\"id\": 1, \"type\": \"click\", \"event\": {\"ip\"",
            Error(400),
        ),
        // Not a batch.
        case("string body", "\"events\"", Error(400)),
        case("number body", "12", Error(400)),
        case("boolean body", "true", Error(400)),
        case("null body", "null", Error(400)),
        // Invalid UTF-8.
        case(
            "invalid utf-8 in string",
            b"[{\"id\": \"\xff\"}]".to_vec(),
            Error(400),
        ),
        case(
            "invalid utf-8 sequence",
            b"[{\"type\": \"\xc3\x28\"}]".to_vec(),
            Error(400),
        ),
        case("overlong utf-8", b"[\"\xc0\xaf\"]".to_vec(), Error(400)),
        case("bare high byte", b"[\xfe]".to_vec(), Error(400)),
        // Deep nesting.
        case("deep arrays", "[".repeat(100_000), Error(400)),
        // Nesting beyond serde_json's limit inside one event makes that event invalid (kept
        // with the reason), not the whole batch.
        case(
            "deep objects in an event",
            format!("[{}1{}]", "{\"a\":".repeat(5000), "}".repeat(5000)),
            AllInvalid(1),
        ),
        case(
            "unbalanced deep nesting",
            "[".repeat(100_000) + "1",
            Error(400),
        ),
        // Huge numbers.
        // A number beyond f64 makes that event unparsable: it is kept as invalid.
        case("number beyond f64", "[{\"id\": 1e400}]", AllInvalid(1)),
        case("number beyond f64 outside any event", "1e400", Error(400)),
        case(
            "integer beyond u64",
            event_with(
                &["id"],
                serde_json::from_str("123456789012345678901234567890").expect("n"),
            ),
            AllInvalid(1),
        ),
        case(
            "integer below i64",
            "[{\"id\": -9223372036854775809, \"type\": \"x\", \"event\": {}}]",
            AllInvalid(1),
        ),
        case(
            "u64 above i64",
            event_with(
                &["event", "customer_id"],
                serde_json::json!(18446744073709551615u64),
            ),
            AllInvalid(1),
        ),
        case(
            "fractional id",
            event_with(&["id"], serde_json::json!(1.5)),
            AllInvalid(1),
        ),
        // Wrong types, each an invalid event in an accepted batch.
        case(
            "id as string",
            event_with(&["id"], serde_json::json!("1")),
            AllInvalid(1),
        ),
        case(
            "id as boolean",
            event_with(&["id"], serde_json::json!(true)),
            AllInvalid(1),
        ),
        case("id null", event_with(&["id"], Value::Null), AllInvalid(1)),
        case(
            "type as number",
            event_with(&["type"], serde_json::json!(5)),
            AllInvalid(1),
        ),
        case(
            "type as array",
            event_with(&["type"], serde_json::json!(["click"])),
            AllInvalid(1),
        ),
        case(
            "event as string",
            event_with(&["event"], serde_json::json!("x")),
            AllInvalid(1),
        ),
        case(
            "event as array",
            event_with(&["event"], serde_json::json!([])),
            AllInvalid(1),
        ),
        case(
            "event null",
            event_with(&["event"], Value::Null),
            AllInvalid(1),
        ),
        case(
            "user_agent as number",
            event_with(&["event", "user_agent"], serde_json::json!(7)),
            AllInvalid(1),
        ),
        case(
            "ip as object",
            event_with(&["event", "ip"], serde_json::json!({})),
            AllInvalid(1),
        ),
        case(
            "timestamp null",
            event_with(&["event", "timestamp"], Value::Null),
            AllInvalid(1),
        ),
        case(
            "customer_id as string",
            event_with(&["event", "customer_id"], serde_json::json!("1404")),
            AllInvalid(1),
        ),
        case(
            "product as float",
            event_with(&["event", "product"], serde_json::json!(3.5)),
            AllInvalid(1),
        ),
        case(
            "position as boolean",
            event_with(&["event", "position"], serde_json::json!(false)),
            AllInvalid(1),
        ),
        case(
            "page as number",
            event_with(&["event", "page"], serde_json::json!(404)),
            AllInvalid(1),
        ),
        case(
            "package_id as number",
            event_with(&["package_id"], serde_json::json!(1)),
            AllInvalid(1),
        ),
        case(
            "events that are not objects",
            "[1, \"two\", null, [3], true]",
            AllInvalid(5),
        ),
        case(
            "empty objects",
            format!("[{}]", vec!["{}"; 1000].join(",")),
            AllInvalid(1000),
        ),
        case(
            "deep but legal nesting in an unknown field",
            format!(
                "[{{\"id\": 1, \"x\": {}1{}}}]",
                "[".repeat(100),
                "]".repeat(100)
            ),
            AllInvalid(1),
        ),
        // Oversized.
        case(
            "body beyond the limit",
            format!("[{}]", vec!["{\"id\": 1}"; limit / 8].join(",")),
            Error(413),
        ),
    ];
    cases.extend(more_broken_json());
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data; boundary=x",
        "text/json",
        "text/html",
        "application/javascript",
        "application/jsonp",
        "application/json-seq",
        "application/x-json",
        "application/octet-stream",
        "application/vnd.api+xml",
        "json",
        "application",
        "*/*",
        "image/png",
    ] {
        cases.push(Case {
            content_type: Some(content_type),
            reason: Some("unsupported content type".into()),
            ..case(&format!("content type {content_type}"), "[]", Error(415))
        });
    }
    cases.push(Case {
        content_type: None,
        ..case("no content type", "[]", Error(415))
    });
    cases
}

/// More ways for JSON to be broken, each refused whole with 400.
fn more_broken_json() -> Vec<Case> {
    let bodies: [(&str, &[u8]); 30] = [
        ("unclosed array", b"[{\"id\": 1}"),
        ("unclosed object", b"{\"id\": 1"),
        ("lone closing bracket", b"]"),
        ("lone closing brace", b"}"),
        ("leading comma", b"[,]"),
        ("double comma", b"[1,,2]"),
        ("lone colon", b":"),
        ("strings without comma", b"[\"a\" \"b\"]"),
        ("booleans without comma", b"[true false]"),
        ("misspelt null", b"[nul]"),
        ("misspelt true", b"[tru]"),
        ("number as key", b"[{1: 2}]"),
        ("members without comma", b"[{\"a\": 1 \"b\": 2}]"),
        ("tab inside a string", b"[\"a\tb\"]"),
        ("newline inside a string", b"[\"a\nb\"]"),
        ("short unicode escape", b"[\"\\u12\"]"),
        ("non-hex unicode escape", b"[\"\\uZZZZ\"]"),
        ("plus sign", b"[+1]"),
        ("leading dot", b"[.5]"),
        ("trailing dot", b"[1.]"),
        ("exponent sign only", b"[1e+]"),
        ("double minus", b"[--1]"),
        ("escaped closing quote only", b"[\"\\\"]"),
        ("NUL byte", b"[\x00]"),
        ("NUL body", b"\x00"),
        ("NUL after the array", b"[1]\x00"),
        ("word after the array", b"[] x"),
        ("object after the array", b"[] {}"),
        ("key without quotes", b"[{id: 1}]"),
        ("UTF-16 body", b"\xff\xfe[\x00]\x00"),
    ];
    bodies
        .into_iter()
        .map(|(name, body)| case(name, body.to_vec(), Expect::Error(400)))
        .collect()
}
