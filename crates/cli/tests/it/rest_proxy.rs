//! Confluent REST Proxy's produce API beside ingest, over real HTTP: v2 with the JSON, Avro
//! and binary embedded formats and v3 records, each event validated like `/collect`'s and
//! landed in the lake; invalid events kept with their reason and reported per record; the
//! topics clickstream writes itself and unknown topics refused; write keys as Basic users.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestPipeline, json_body, seed_events};

const RAW: &str = "acme.clickstream.raw.events";
const V2_JSON: &str = "application/vnd.kafka.json.v2+json";
const V2_AVRO: &str = "application/vnd.kafka.avro.v2+json";

fn proxy_url(t: &TestPipeline, path: &str) -> String {
    let addr = t.pipeline.rest_proxy_addr().expect("the REST proxy runs");
    format!("http://127.0.0.1:{}{path}", addr.port())
}

/// A seed event with `id`.
fn event(id: i64) -> Value {
    let mut event = seed_events()[0].clone();
    event["id"] = json!(id);
    event
}

async fn post(t: &TestPipeline, path: &str, content_type: &str, body: String) -> reqwest::Response {
    t.http
        .post(proxy_url(t, path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn v2_json_events_land_and_an_invalid_one_is_kept_and_reported() {
    let t = TestPipeline::start().await;
    let mut bad = event(9_000_004);
    bad["event"]["customer_id"] = json!("not a number");
    let body = json!({"records": [
        {"value": event(9_000_001)}, {"value": event(9_000_002)},
        {"key": "ignored", "value": event(9_000_003)}, {"value": bad},
    ]});
    let answer = post(&t, &format!("/topics/{RAW}"), V2_JSON, body.to_string()).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers()["content-type"],
        "application/vnd.kafka.v2+json"
    );
    let answer = json_body(answer).await;
    assert_eq!(answer["value_schema_id"], Value::Null);
    let offsets = answer["offsets"].as_array().expect("offsets");
    assert_eq!(offsets.len(), 4);
    for landed in &offsets[..3] {
        assert!(landed["offset"].is_u64(), "{landed}");
        assert_eq!(landed["error_code"], Value::Null);
    }
    assert_eq!(offsets[3]["error_code"], 42203);
    let reason = offsets[3]["error"].as_str().expect("reason");
    assert!(
        reason.contains("event.customer_id") && reason.contains("acme.clickstream.invalid.events"),
        "{reason}"
    );
    t.wait_for_count(
        "SELECT count(*) AS n FROM events WHERE id BETWEEN 9000001 AND 9000003",
        3,
    )
    .await;
    t.wait_for_count(
        "SELECT count(*) AS n FROM invalid_events WHERE reason LIKE '%event.customer_id%'",
        1,
    )
    .await;
}

/// `event` in Avro's JSON encoding for the raw schema: non-null union values wrapped.
fn avro_encoded(event: &Value) -> Value {
    let mut encoded = event.clone();
    let details = encoded["event"].as_object_mut().expect("event details");
    for (field, branch) in [
        ("customer_id", "long"),
        ("page", "string"),
        ("query", "string"),
        ("product", "long"),
        ("referrer", "string"),
        ("position", "long"),
    ] {
        let value = details.remove(field).unwrap_or(Value::Null);
        let wrapped = match value {
            Value::Null => Value::Null,
            other => json!({ branch: other }),
        };
        details.insert(field.to_string(), wrapped);
    }
    encoded["package_id"] = Value::Null;
    encoded
}

#[tokio::test]
async fn v2_avro_with_a_registered_schema_lands_and_an_unregistered_one_is_refused() {
    let t = TestPipeline::start().await;
    let schema_id = json_body(
        t.http
            .get(format!(
                "{}/subjects/{RAW}-value/versions/latest",
                t.pipeline.registry_url()
            ))
            .send()
            .await
            .expect("registry"),
    )
    .await["id"]
        .as_u64()
        .expect("id");
    let body = json!({
        "value_schema_id": schema_id,
        "records": [{"value": avro_encoded(&event(9_100_001))}, {"value": avro_encoded(&event(9_100_002))}],
    });
    let answer = post(&t, &format!("/topics/{RAW}"), V2_AVRO, body.to_string()).await;
    let status = answer.status();
    let answer = json_body(answer).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["value_schema_id"], schema_id);
    assert!(answer["offsets"][1]["offset"].is_u64(), "{answer}");
    t.wait_for_count(
        "SELECT count(*) AS n FROM events WHERE id IN (9100001, 9100002) AND page IS NOT NULL",
        2,
    )
    .await;

    let unregistered =
        json!({"type": "record", "name": "Other", "fields": [{"name": "id", "type": "long"}]});
    let body = json!({
        "value_schema": unregistered.to_string(),
        "records": [{"value": {"id": 9_100_003}}],
    });
    let answer = post(&t, &format!("/topics/{RAW}"), V2_AVRO, body.to_string()).await;
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let answer = json_body(answer).await;
    assert_eq!(answer["error_code"], 42207);
    assert!(
        answer["message"]
            .as_str()
            .expect("message")
            .contains("register it"),
        "{answer}"
    );
}

#[tokio::test]
async fn v2_binary_values_carry_the_event_text() {
    let t = TestPipeline::start().await;
    let text = event(9_200_001).to_string();
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let body = json!({"records": [{"value": encoded}]});
    let answer = post(
        &t,
        &format!("/topics/{RAW}"),
        "application/vnd.kafka.binary.v2+json",
        body.to_string(),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    t.wait_for_count("SELECT count(*) AS n FROM events WHERE id = 9200001", 1)
        .await;
}

#[tokio::test]
async fn v3_records_land_with_one_report_each() {
    let t = TestPipeline::start().await;
    let clusters = json_body(
        t.http
            .get(proxy_url(&t, "/v3/clusters"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    let cluster = clusters["data"][0]["cluster_id"]
        .as_str()
        .expect("cluster id")
        .to_string();
    let records = [
        json!({"value": {"type": "JSON", "data": event(9_300_001)}}),
        json!({"value": {"type": "STRING", "data": event(9_300_002).to_string()}}),
        json!({"value": {"data": event(9_300_003)}}),
        json!({"value": {"type": "JSON", "data": {"id": "nine"}}}),
    ];
    let body: String = records.iter().map(Value::to_string).collect();
    let path = format!("/v3/clusters/{cluster}/topics/{RAW}/records");
    let answer = post(&t, &path, "application/json", body).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let text = answer.text().await.expect("body");
    let reports: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("concatenated reports");
    assert_eq!(reports.len(), 4, "{text}");
    for report in &reports[..3] {
        assert_eq!(report["error_code"], 200, "{report}");
        assert_eq!(report["topic_name"], RAW);
        assert!(report["offset"].is_u64());
    }
    assert_eq!(reports[3]["error_code"], 400);
    t.wait_for_count(
        "SELECT count(*) AS n FROM events WHERE id BETWEEN 9300001 AND 9300003",
        3,
    )
    .await;
}

#[tokio::test]
async fn listings_and_refusals_answer_in_the_proxy_shapes() {
    let t = TestPipeline::start().await;
    let topics = json_body(
        t.http
            .get(proxy_url(&t, "/topics"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert!(
        topics.as_array().expect("names").contains(&json!(RAW)),
        "{topics}"
    );
    let topic = json_body(
        t.http
            .get(proxy_url(&t, &format!("/topics/{RAW}")))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(topic["name"], RAW);
    assert_eq!(topic["partitions"].as_array().expect("partitions").len(), 6);

    let one = json!({"records": [{"value": event(9_400_001)}]}).to_string();
    for (path, content_type, status, code) in [
        ("/topics/nope", V2_JSON, 404, 40401),
        (
            "/topics/acme.clickstream.latest.events",
            V2_JSON,
            403,
            40301,
        ),
        (&format!("/topics/{RAW}") as &str, "text/plain", 415, 415),
    ] {
        let answer = post(&t, path, content_type, one.clone()).await;
        assert_eq!(answer.status().as_u16(), status, "{path} {content_type}");
        let body = json_body(answer).await;
        assert_eq!(body["error_code"], code, "{body}");
        assert!(body["message"].is_string());
    }
    let empty = post(
        &t,
        &format!("/topics/{RAW}"),
        V2_JSON,
        r#"{"records": []}"#.into(),
    )
    .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let count = t
        .sql("SELECT count(*) AS n FROM events WHERE id = 9400001")
        .await;
    assert_eq!(count[0]["n"], 0, "nothing refused was written");
}

#[tokio::test]
async fn write_keys_are_taken_as_basic_users_and_name_the_source() {
    let key = "proxy-key-0123456789abcdefghij";
    let t = TestPipeline::start_with(|config| {
        config
            .auth
            .write_keys
            .insert("scripts".into(), clickstream_secret::Secret::new(key));
    })
    .await;
    let body = json!({"records": [{"value": event(9_500_001)}]}).to_string();
    let path = proxy_url(&t, &format!("/topics/{RAW}"));
    let refused = t
        .http
        .post(&path)
        .header("content-type", V2_JSON)
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let accepted = t
        .http
        .post(&path)
        .basic_auth(key, Some(""))
        .header("content-type", V2_JSON)
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(accepted.status(), StatusCode::OK);
    t.wait_for_count(
        "SELECT count(*) AS n FROM events WHERE id = 9500001 AND source = 'scripts'",
        1,
    )
    .await;
}
