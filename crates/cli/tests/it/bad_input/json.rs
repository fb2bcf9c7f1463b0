//! Malformed requests: each gets a clear status and a JSON reason, and the server keeps
//! serving. None may answer 5xx.

use serde_json::Value;

use crate::common::{TestPipeline, json_body, seed_events};

/// What a case must get back.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A request error with this status and a JSON `message`.
    Error(u16),
    /// Accepted, with every event of the batch routed to the invalid topic.
    AllInvalid(u64),
}

struct Case {
    name: String,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    expect: Expect,
}

fn case(name: &str, body: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name: name.to_string(),
        body: body.into(),
        content_type: Some("application/json"),
        expect,
    }
}

fn event_with(path: &[&str], value: Value) -> Vec<u8> {
    let mut event = seed_events()[0].clone();
    let mut target = &mut event;
    for key in &path[..path.len() - 1] {
        target = &mut target[*key];
    }
    target[path[path.len() - 1]] = value;
    serde_json::to_vec(&vec![event]).expect("json")
}

fn cases(limit: usize) -> Vec<Case> {
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
    for (name, content_type) in [
        ("text/plain", Some("text/plain")),
        ("form", Some("application/x-www-form-urlencoded")),
        ("xml", Some("application/xml")),
        ("multipart", Some("multipart/form-data; boundary=x")),
        ("no content type", None),
    ] {
        cases.push(Case {
            name: format!("content type {name}"),
            body: b"[]".to_vec(),
            content_type,
            expect: Error(415),
        });
    }
    cases
}

#[tokio::test]
async fn every_malformed_request_gets_a_json_reason_and_the_server_survives() {
    let limit = 256 * 1024;
    let t = TestPipeline::start_with(|c| c.ingest.max_body_bytes = limit).await;
    let cases = cases(limit);
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    for case in cases {
        let mut request = t.http.post(t.url("/collect")).body(case.body.clone());
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: no answer: {e}", case.name));
        let status = response.status().as_u16();
        let body = json_body(response).await;
        match case.expect {
            Expect::Error(expected) => {
                assert_eq!(status, expected, "{}: {body}", case.name);
                assert_eq!(body["status"], "error", "{}", case.name);
                let message = body["message"].as_str().unwrap_or_default();
                assert!(!message.is_empty(), "{}: no reason", case.name);
            }
            Expect::AllInvalid(n) => {
                assert_eq!(status, 200, "{}: {body}", case.name);
                assert_eq!(body["processed_count"], n, "{}", case.name);
                assert_eq!(body["invalid_count"], n, "{}", case.name);
            }
        }
    }
    // Still serving, and still accepting good events.
    let ping = t.http.get(t.url("/ping")).send().await.expect("ping");
    assert_eq!(ping.status(), 200);
    let good = t
        .collect(serde_json::to_vec(&seed_events()).expect("json"))
        .await;
    assert_eq!(json_body(good).await["valid_count"], 12);
}

#[tokio::test]
async fn chunked_body_beyond_the_limit_is_413() {
    let t = TestPipeline::start_with(|c| c.ingest.max_body_bytes = 4096).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..100).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = t.collect(body).await;
    assert_eq!(response.status(), 413);
    assert_eq!(json_body(response).await["status"], "error");
}
