use chrono::TimeZone;
use serde_json::{Value, json};

use super::*;

fn received() -> Received {
    Received {
        at: Utc
            .with_ymd_and_hms(2026, 12, 6, 12, 0, 10)
            .single()
            .expect("time"),
        ip: Some("203.0.113.9".into()),
    }
}

fn call(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        _ => panic!("a call is an object"),
    }
}

fn normalized(value: Value) -> Value {
    normalize(&call(value), None, None, &received()).expect("valid call")
}

fn refused(value: Value) -> String {
    normalize(&call(value), None, None, &received())
        .expect_err("refused")
        .to_string()
}

/// A track call as analytics.js sends it.
fn browser_track() -> Value {
    json!({
        "type": "track", "event": "Order Completed", "messageId": "ajs-next-1",
        "anonymousId": "anon-1", "userId": null,
        "timestamp": "2026-12-06T12:00:00.000Z", "sentAt": "2026-12-06T12:00:01.000Z",
        "properties": {"revenue": 42.5, "currency": "EUR", "products": [{"sku": "A1"}]},
        "integrations": {}, "writeKey": "secret-key",
        "context": {
            "userAgent": "Mozilla/5.0", "locale": "de-DE",
            "page": {"url": "https://shop.example/checkout?x=1", "path": "/checkout",
                     "referrer": "https://www.google.com/", "title": "Checkout", "search": "?x=1"},
            "campaign": {"name": "winter", "source": "newsletter", "medium": "email"},
            "library": {"name": "analytics.js", "version": "npm:next-1.84.3"},
            "ip": "198.51.100.7", "screen": {"width": 1280}
        },
        "_metadata": {"bundled": ["Segment.io"]}
    })
}

#[test]
fn a_browser_track_call_becomes_the_schema_s_fields() {
    let out = normalized(browser_track());
    assert_eq!(out["message_id"], "ajs-next-1");
    assert_eq!(out["type"], "track");
    assert_eq!(out["event"], "Order Completed");
    assert_eq!(out["anonymous_id"], "anon-1");
    assert_eq!(out["user_id"], Value::Null);
    let properties: Value =
        serde_json::from_str(out["properties"].as_str().expect("text")).expect("json");
    assert_eq!(properties["revenue"], 42.5);
    assert_eq!(out["context"]["user_agent"], "Mozilla/5.0");
    assert_eq!(
        out["context"]["ip"], "198.51.100.7",
        "the context's address wins"
    );
    assert_eq!(out["context"]["page"]["path"], "/checkout");
    assert_eq!(out["context"]["campaign"]["source"], "newsletter");
    assert_eq!(out["context"]["campaign"]["term"], Value::Null);
    assert_eq!(out["context"]["library"]["name"], "analytics.js");
    let rest: Value =
        serde_json::from_str(out["context"]["json"].as_str().expect("text")).expect("json");
    assert_eq!(rest["screen"]["width"], 1280, "the whole context is kept");
    assert!(
        rest.get("ip").is_none(),
        "but for the address, which has its column"
    );
    assert_eq!(out["extra"], r#"{"_metadata":{"bundled":["Segment.io"]}}"#);
    assert!(
        !out.to_string().contains("secret-key"),
        "the write key is kept nowhere"
    );
}

#[test]
fn the_client_s_clock_is_corrected_as_segment_documents() {
    // Sent one second after it happened by the client's clock; received at 12:00:10.
    let out = normalized(browser_track());
    let at = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .timestamp_millis()
    };
    assert_eq!(out["original_timestamp"], at("2026-12-06T12:00:00Z"));
    assert_eq!(out["sent_at"], at("2026-12-06T12:00:01Z"));
    assert_eq!(out["received_at"], at("2026-12-06T12:00:10Z"));
    assert_eq!(out["timestamp"], at("2026-12-06T12:00:09Z"));
}

#[test]
fn the_batch_s_sent_at_serves_calls_without_their_own_and_naive_times_are_utc() {
    let python = json!({"type": "identify", "userId": 7, "messageId": "m",
                        "timestamp": "2026-12-06T11:59:58.500", "traits": {"plan": "pro"}});
    let sent = json!("2026-12-06T12:00:00.500+00:00");
    let out = normalize(&call(python), None, Some(&sent), &received()).expect("valid");
    assert_eq!(out["user_id"], "7", "numeric ids are taken as text");
    let at = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .timestamp_millis()
    };
    assert_eq!(out["timestamp"], at("2026-12-06T12:00:08Z"));
    assert_eq!(out["traits"], r#"{"plan":"pro"}"#);
}

#[test]
fn without_times_the_call_is_placed_when_received_and_the_path_gives_the_type() {
    let bare = json!({"anonymousId": "a", "name": "Home"});
    let out = normalize(&call(bare), Some(CallType::Page), None, &received()).expect("valid");
    assert_eq!(out["type"], "page");
    assert_eq!(out["timestamp"], out["received_at"]);
    assert_eq!(out["context"]["ip"], "203.0.113.9", "the client's address");
    assert!(
        out["message_id"]
            .as_str()
            .expect("id")
            .starts_with("clickstream-")
    );
}

#[test]
fn what_segment_requires_is_refused_with_the_field_named() {
    let cases = [
        (json!({"anonymousId": "a"}), "field 'type': missing"),
        (
            json!({"type": "click", "anonymousId": "a"}),
            "field 'type': \"click\" is not a call type",
        ),
        (
            json!({"type": "track", "event": "E"}),
            "fields 'userId' and 'anonymousId'",
        ),
        (
            json!({"type": "track", "userId": "u"}),
            "field 'event': a track call needs",
        ),
        (
            json!({"type": "track", "userId": "u", "event": 3}),
            "field 'event': a track call needs",
        ),
        (
            json!({"type": "group", "userId": "u"}),
            "field 'groupId': a group call needs it",
        ),
        (
            json!({"type": "alias", "userId": "u"}),
            "field 'previousId': an alias call needs it",
        ),
        (
            json!({"type": "alias", "previousId": "p"}),
            "field 'userId': an alias call needs it",
        ),
        (
            json!({"type": "page", "userId": {"id": 1}}),
            "field 'userId': expected a string or a number, found an object",
        ),
        (
            json!({"type": "page", "userId": "u", "properties": [1]}),
            "field 'properties': expected an object, found an array",
        ),
        (
            json!({"type": "page", "userId": "u", "timestamp": "yesterday"}),
            "field 'timestamp': expected an ISO 8601 time",
        ),
        (
            json!({"type": "page", "userId": "u", "timestamp": 1733486400000_i64}),
            "found 1733486400000",
        ),
        (
            json!({"type": "page", "userId": "u", "context": "web"}),
            "field 'context': expected an object, found a string",
        ),
        (
            json!({"type": "page", "userId": "u", "name": false}),
            "field 'name': expected a string, found a boolean",
        ),
    ];
    for (call, expected) in cases {
        let reason = refused(call.clone());
        assert!(reason.contains(expected), "{call}: {reason}");
    }
}

#[test]
fn explicit_nulls_are_absent_fields() {
    let python = json!({"type": "page", "userId": "u", "anonymousId": null, "name": null,
                        "category": null, "properties": null, "context": null});
    let out = normalized(python);
    assert_eq!(out["name"], Value::Null);
    assert_eq!(out["properties"], Value::Null);
    assert_eq!(out["context"]["json"], Value::Null);
    assert_eq!(out["extra"], Value::Null);
}
