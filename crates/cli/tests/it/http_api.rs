//! Every behaviour of SPEC.md's HTTP section, over a real socket.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use clickstream_event::{INVALID_TOPIC, RAW_TOPIC};
use serde_json::{Value, json};

use crate::common::{
    EVENT_DETAIL_FIELDS, TestPipeline, decode_via_registry, json_body, read_topic, seed_events,
};

#[tokio::test]
async fn ping_answers_ok() {
    let t = TestPipeline::start().await;
    let response = t.http.get(t.url("/ping")).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(json_body(response).await, json!({"status": "OK"}));
}

#[tokio::test]
async fn seed_file_as_one_array_gives_12_valid_and_3_invalid() {
    let t = TestPipeline::start().await;
    let events = seed_events();
    assert_eq!(events.len(), 15);
    let response = t.collect(serde_json::to_vec(&events).expect("json")).await;
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    assert_eq!(body["status"], "success");
    assert_eq!(body["processed_count"], 15);
    assert_eq!(body["valid_count"], 12);
    assert_eq!(body["invalid_count"], 3);
    assert!(body["elapsed_time"].as_f64().expect("seconds") >= 0.0);
    let correlation_id = body["correlation_id"].as_str().expect("id");
    let parsed = uuid::Uuid::parse_str(correlation_id).expect("uuid");
    assert_eq!(parsed.get_version_num(), 4);
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys.len(),
        6,
        "exactly the original's fields, nothing more: {keys:?}"
    );
}

#[tokio::test]
async fn valid_records_decode_with_the_schema_fetched_by_id() {
    let t = TestPipeline::start().await;
    let events = seed_events();
    let body = json_body(t.collect(serde_json::to_vec(&events).expect("json")).await).await;
    let correlation_id = body["correlation_id"].as_str().expect("id").to_string();

    let records = read_topic(t.log().as_ref(), RAW_TOPIC).await;
    assert_eq!(records.len(), 12);
    let posted: HashMap<i64, &Value> = events
        .iter()
        .filter_map(|e| e["id"].as_i64().map(|id| (id, e)))
        .collect();
    let mut schemas: HashMap<u32, Schema> = HashMap::new();
    for record in &records {
        assert_eq!(
            record.header("X-Correlation-ID"),
            Some(correlation_id.as_bytes())
        );
        let decoded = avro_to_json(&decode_via_registry(&t, &mut schemas, &record.value).await);
        let original = posted[&decoded["id"].as_i64().expect("id")];
        assert_eq!(decoded["type"], original["type"]);
        for field in EVENT_DETAIL_FIELDS {
            let sent = original["event"].get(field).cloned().unwrap_or(Value::Null);
            assert_eq!(
                decoded["event"][field], sent,
                "field {field} of event {}",
                decoded["id"]
            );
        }
        // Key: customer_id when present, else id.
        let expected_key = match original["event"]["customer_id"].as_i64() {
            Some(customer) => customer.to_string(),
            None => original["id"].to_string(),
        };
        assert_eq!(record.key.as_deref(), Some(expected_key.as_bytes()));
    }
}

#[tokio::test]
async fn invalid_records_keep_original_json_and_both_headers() {
    let t = TestPipeline::start().await;
    let body = br#"[{"id": "not-a-number", "type": "click", "event": {"user_agent": "UA", "ip": "10.0.0.2", "customer_id": 8, "timestamp": "2022-05-25T05:45:00Z"}},
        {"id": 999003,   "invalid": "data"}]"#;
    let answer = json_body(t.collect(body.to_vec()).await).await;
    assert_eq!(answer["invalid_count"], 2);
    let correlation_id = answer["correlation_id"].as_str().expect("id");

    let mut records = read_topic(t.log().as_ref(), INVALID_TOPIC).await;
    records.sort_by_key(|r| r.value.len());
    assert_eq!(records.len(), 2);
    // The original bytes, whitespace included.
    assert_eq!(
        &records[0].value[..],
        br#"{"id": 999003,   "invalid": "data"}"#
    );
    for record in &records {
        assert_eq!(
            record.header("X-Correlation-ID"),
            Some(correlation_id.as_bytes())
        );
    }
    let reason = |r: &clickstream_log::LogRecord| {
        String::from_utf8(r.header("X-Error-Message").expect("reason header").to_vec())
            .expect("utf8")
    };
    assert_eq!(
        reason(&records[0]),
        "field 'type' is required: expected string, found nothing"
    );
    assert_eq!(
        reason(&records[1]),
        r#"field 'id': expected long (64-bit integer), found string "not-a-number""#
    );
}

#[tokio::test]
async fn single_object_is_a_batch_of_one() {
    let t = TestPipeline::start().await;
    let event = &seed_events()[0];
    let answer = json_body(t.collect(serde_json::to_vec(event).expect("json")).await).await;
    assert_eq!(answer["processed_count"], 1);
    assert_eq!(answer["valid_count"], 1);
    assert_eq!(read_topic(t.log().as_ref(), RAW_TOPIC).await.len(), 1);
}

#[tokio::test]
async fn mixed_batches_route_every_event_and_empty_batches_succeed() {
    let t = TestPipeline::start().await;
    let events = seed_events();
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.push(events[i % events.len()].clone());
    }
    let answer = json_body(t.collect(serde_json::to_vec(&batch).expect("json")).await).await;
    let valid = answer["valid_count"].as_u64().expect("n");
    let invalid = answer["invalid_count"].as_u64().expect("n");
    assert_eq!(valid + invalid, 50);
    assert_eq!(
        read_topic(t.log().as_ref(), RAW_TOPIC).await.len() as u64,
        valid
    );
    assert_eq!(
        read_topic(t.log().as_ref(), INVALID_TOPIC).await.len() as u64,
        invalid
    );

    let empty = json_body(t.collect("[]").await).await;
    assert_eq!(empty["processed_count"], 0);
    assert_eq!(empty["status"], "success");
}

#[tokio::test]
async fn request_errors_are_json_with_the_right_status() {
    let t = TestPipeline::start().await;
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (
            t.http
                .post(t.url("/collect"))
                .header("content-type", "application/json")
                .body("[{"),
            400,
        ),
        (
            t.http
                .post(t.url("/collect"))
                .header("content-type", "application/json")
                .body("\"just a string\""),
            400,
        ),
        (
            t.http
                .post(t.url("/collect"))
                .header("content-type", "application/json")
                .body("42"),
            400,
        ),
        (
            t.http
                .post(t.url("/collect"))
                .header("content-type", "text/plain")
                .body("[]"),
            415,
        ),
        (t.http.post(t.url("/collect")).body("[]"), 415),
        (t.http.get(t.url("/nowhere")), 404),
        (t.http.get(t.url("/collect")), 405),
        (t.http.post(t.url("/ping")), 405),
    ];
    for (request, status) in cases {
        let response = request.send().await.expect("sent");
        assert_eq!(response.status().as_u16(), status, "{:?}", response.url());
        let body = json_body(response).await;
        assert_eq!(body["status"], "error");
        assert!(!body["message"].as_str().expect("message").is_empty());
    }
}

#[tokio::test]
async fn cors_preflight_and_responses_allow_any_origin() {
    let t = TestPipeline::start().await;
    let preflight = t
        .http
        .request(reqwest::Method::OPTIONS, t.url("/collect"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("sent");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(methods.contains("POST"), "{methods}");

    let response = t
        .http
        .post(t.url("/collect"))
        .header("origin", "https://shop.example")
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn oversized_body_is_413_with_a_reason() {
    let t = TestPipeline::start_with(|c| c.ingest.max_body_bytes = 1024).await;
    let big = format!("[{}]", vec!["{\"id\": 1}"; 200].join(","));
    let response = t.collect(big).await;
    assert_eq!(response.status(), 413);
    let body = json_body(response).await;
    assert!(body["message"].as_str().expect("message").contains("1024"));
}

#[tokio::test]
async fn log_that_cannot_write_answers_503_with_retry_after() {
    // Tiny segments make every append roll to a new file; replacing the partition
    // directories with plain files makes that roll fail with a real I/O error.
    let t = TestPipeline::start_with(|c| c.log.segment_bytes = 64).await;
    let events = seed_events();
    let first = t.collect(serde_json::to_vec(&events).expect("json")).await;
    assert_eq!(first.status(), 200);
    let before_raw = read_topic(t.log().as_ref(), RAW_TOPIC).await.len();

    let topics_dir = t.config.data_dir.join("log").join("topics");
    for topic in [RAW_TOPIC, INVALID_TOPIC] {
        for p in 0..6 {
            let dir = topics_dir.join(topic).join(p.to_string());
            std::fs::rename(&dir, dir.with_extension("moved")).expect("move partition dir");
            std::fs::write(&dir, b"not a directory").expect("block partition dir");
        }
    }
    let response = t.collect(serde_json::to_vec(&events).expect("json")).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body = json_body(response).await;
    assert_eq!(body["status"], "error");
    assert!(body["message"].as_str().expect("message").contains("retry"));

    // Once the disk is back, the log takes writes again, and nothing of the refused batch
    // was acknowledged.
    for topic in [RAW_TOPIC, INVALID_TOPIC] {
        for p in 0..6 {
            let dir = topics_dir.join(topic).join(p.to_string());
            std::fs::remove_file(&dir).expect("unblock");
            std::fs::rename(dir.with_extension("moved"), &dir).expect("restore partition dir");
        }
    }
    let after_raw = read_topic(t.log().as_ref(), RAW_TOPIC).await.len();
    assert!(
        after_raw >= before_raw,
        "acknowledged records are still there"
    );
    let again = t.collect(serde_json::to_vec(&events).expect("json")).await;
    assert_eq!(again.status(), 200, "the log recovers by itself");
}

/// Avro value as the JSON a client would have sent (unions unwrapped).
fn avro_to_json(value: &Avro) -> Value {
    match value {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => json!(b),
        Avro::Int(i) => json!(i),
        Avro::Long(l) => json!(l),
        Avro::Float(f) => json!(f),
        Avro::Double(d) => json!(d),
        Avro::String(s) => json!(s),
        Avro::Union(_, inner) => avro_to_json(inner),
        Avro::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), avro_to_json(v)))
                .collect(),
        ),
        Avro::Array(items) => Value::Array(items.iter().map(avro_to_json).collect()),
        other => panic!("unexpected avro value {other:?}"),
    }
}

#[tokio::test]
async fn batches_beyond_the_event_limit_are_413() {
    let t = TestPipeline::start_with(|c| c.ingest.max_events_per_request = 10).await;
    let events: Vec<Value> = seed_events().into_iter().cycle().take(11).collect();
    let response = t.collect(serde_json::to_vec(&events).expect("json")).await;
    assert_eq!(response.status(), 413);
    let body = json_body(response).await;
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("11 events"),
        "{body}"
    );
    assert!(
        read_topic(t.log().as_ref(), RAW_TOPIC).await.is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn an_event_larger_than_a_log_record_is_413_not_500() {
    let t = TestPipeline::start_with(|c| c.log.max_record_bytes = 4096).await;
    let mut event = seed_events()[0].clone();
    event["event"]["user_agent"] = json!("x".repeat(8000));
    let response = t
        .collect(serde_json::to_vec(&vec![event]).expect("json"))
        .await;
    assert_eq!(response.status(), 413);
    let body = json_body(response).await;
    assert!(
        body["message"].as_str().expect("message").contains("4096"),
        "{body}"
    );
}
