//! Segment's Tracking API over the router with a real embedded log: calls as the libraries
//! send them land in the Segment topic, refused ones in its invalid topic with the reason,
//! and the answers are Segment's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use clickstream_edge::{Limits, LimitsConfig, WriteKeys};
use clickstream_event::{EventValidator, ValidatorCell, wire};
use clickstream_ingest::{IngestConfig, IngestState};
use clickstream_log::{
    EmbeddedLog, EmbeddedLogConfig, EventLog, LogRecord, TopicPartition, TopicSpec,
};
use clickstream_secret::Secret;
use clickstream_segment::{SEGMENT_INVALID_TOPIC, SEGMENT_SCHEMA, SEGMENT_TOPIC, SegmentState};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "segment-key-0123456789abcdefgh";

struct Api {
    router: axum::Router,
    log: Arc<EmbeddedLog>,
    _dir: tempfile::TempDir,
}

async fn api(keys: &[(&str, &str)]) -> Api {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        EmbeddedLog::open(EmbeddedLogConfig {
            dir: dir.path().join("log"),
            ..EmbeddedLogConfig::default()
        })
        .await
        .expect("log"),
    );
    let specs: Vec<TopicSpec> = [SEGMENT_TOPIC, SEGMENT_INVALID_TOPIC]
        .into_iter()
        .map(|name| TopicSpec {
            name: name.into(),
            partitions: 2,
            replication: 1,
        })
        .collect();
    log.create_topics(&specs).await.expect("topics");
    let keys: BTreeMap<String, Secret> = keys
        .iter()
        .map(|(name, key)| (name.to_string(), Secret::new(*key)))
        .collect();
    let schema = apache_avro::Schema::parse_str(SEGMENT_SCHEMA).expect("schema");
    let ingest = Arc::new(IngestState {
        log: log.clone(),
        // The raw validator is not used by these routes.
        validator: Arc::new(ValidatorCell::new(
            EventValidator::for_events(schema.clone(), 1).expect("validator"),
        )),
        config: IngestConfig::default(),
        limits: Arc::new(
            Limits::new(&LimitsConfig::default(), Duration::from_secs(1)).expect("limits"),
        ),
        write_keys: WriteKeys::new(&keys, None).expect("keys"),
    });
    let state = Arc::new(SegmentState {
        ingest,
        validator: Arc::new(ValidatorCell::new(
            EventValidator::for_events(schema, 7).expect("validator"),
        )),
    });
    Api {
        router: clickstream_segment::router(state),
        log,
        _dir: dir,
    }
}

impl Api {
    async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Value,
        basic: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::post(path)
            .header("content-type", content_type)
            .header("host", "collector.example:60000");
        if let Some(user) = basic {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:"));
            request = request.header("authorization", format!("Basic {token}"));
        }
        let mut request = request.body(Body::from(body.to_string())).expect("request");
        let peer: SocketAddr = "192.0.2.10:50000".parse().expect("addr");
        request.extensions_mut().insert(ConnectInfo(peer));
        self.send(request).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.expect("answer");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn records(&self, topic: &str) -> Vec<LogRecord> {
        let mut all = Vec::new();
        for partition in 0..2 {
            let tp = TopicPartition {
                topic: topic.into(),
                partition,
            };
            all.extend(
                self.log
                    .read(&tp, 0, 1000, Duration::ZERO)
                    .await
                    .expect("read"),
            );
        }
        all
    }
}

/// A record of the Segment topic, decoded with the bundled schema.
fn decoded(record: &LogRecord) -> apache_avro::types::Value {
    let (id, payload) = wire::split(&record.value).expect("framed");
    assert_eq!(id, 7, "framed with the schema id in force");
    let schema = apache_avro::Schema::parse_str(SEGMENT_SCHEMA).expect("schema");
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
        .build()
        .expect("reader");
    wire::read_datum(&reader, id, payload).expect("decodes")
}

fn field<'v>(value: &'v apache_avro::types::Value, name: &str) -> &'v apache_avro::types::Value {
    match value {
        apache_avro::types::Value::Record(fields) => {
            &fields.iter().find(|(n, _)| n == name).expect("field").1
        }
        other => panic!("not a record: {other:?}"),
    }
}

/// A batch as analytics-python 2.4 sends it: explicit nulls, the key in the body too.
fn python_batch() -> Value {
    json!({
        "batch": [
            {"type": "track", "event": "Order Completed", "messageId": "m-1", "userId": "u-1",
             "anonymousId": null, "timestamp": "2026-12-06T12:00:00.000+00:00",
             "properties": {"revenue": 42.5}, "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
             "integrations": {}},
            {"type": "identify", "messageId": "m-2", "userId": "u-1", "anonymousId": "a-1",
             "traits": {"email": "u@example.com"}, "timestamp": "2026-12-06T12:00:00.000+00:00"},
        ],
        "sentAt": "2026-12-06T12:00:01.000000+00:00",
        "writeKey": KEY,
    })
}

#[tokio::test]
async fn a_python_batch_lands_in_the_segment_topic_and_is_answered_as_segment_does() {
    let api = api(&[]).await;
    let (status, body) = api
        .post("/v1/batch", "application/json", python_batch(), None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let records = api.records(SEGMENT_TOPIC).await;
    assert_eq!(records.len(), 2);
    let track = records
        .iter()
        .map(decoded)
        .find(|v| field(v, "message_id") == &apache_avro::types::Value::String("m-1".into()))
        .expect("the track call");
    assert_eq!(
        field(&track, "type"),
        &apache_avro::types::Value::String("track".into())
    );
    let ip = field(field(&track, "context"), "ip");
    assert_eq!(
        ip,
        &apache_avro::types::Value::Union(
            1,
            Box::new(apache_avro::types::Value::String("192.0.2.10".into()))
        ),
        "the client's address when the context has none"
    );
    for record in &records {
        assert!(
            !String::from_utf8_lossy(&record.value).contains(KEY),
            "the key is kept nowhere"
        );
    }
}

#[tokio::test]
async fn a_browser_call_in_text_plain_on_a_short_path_is_taken() {
    let api = api(&[]).await;
    let call = json!({"event": "Clicked", "anonymousId": "a-9", "messageId": "ajs-1",
                      "timestamp": "2026-12-06T12:00:00.000Z", "sentAt": "2026-12-06T12:00:00.100Z"});
    let (status, _) = api.post("/v1/t", "text/plain", call, None).await;
    assert_eq!(status, StatusCode::OK);
    let records = api.records(SEGMENT_TOPIC).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].key.as_deref(),
        Some(&b"a-9"[..]),
        "keyed by the anonymous id"
    );
}

#[tokio::test]
async fn refused_calls_are_kept_with_their_reason_and_the_others_land() {
    let api = api(&[]).await;
    let mut batch = python_batch();
    batch["batch"]
        .as_array_mut()
        .expect("calls")
        .push(json!({"type": "track", "userId": "u-2", "messageId": "m-3", "writeKey": KEY}));
    let (status, body) = api.post("/v1/batch", "application/json", batch, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_calls");
    assert_eq!(body["refused"][0]["index"], 2);
    assert_eq!(api.records(SEGMENT_TOPIC).await.len(), 2);
    let invalid = api.records(SEGMENT_INVALID_TOPIC).await;
    assert_eq!(invalid.len(), 1);
    let reason = invalid[0]
        .headers
        .iter()
        .find(|h| h.key == "X-Error-Message")
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .expect("reason");
    assert!(reason.contains("field 'event'"), "{reason}");
    let kept = String::from_utf8_lossy(&invalid[0].value);
    assert!(kept.contains("m-3") && !kept.contains(KEY), "{kept}");
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_code() {
    let api = api(&[]).await;
    for (path, body) in [
        ("/v1/batch", json!({"batch": "nope"})),
        ("/v1/batch", json!([1, 2])),
        ("/v1/batch", json!({"sentAt": "2026-12-06T12:00:00Z"})),
    ] {
        let (status, answer) = api.post(path, "application/json", body.clone(), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["code"], "invalid_request", "{answer}");
        assert!(answer["message"].is_string());
    }
}

#[tokio::test]
async fn write_keys_come_from_basic_auth_or_the_body_and_name_the_source() {
    let api = api(&[("web", KEY)]).await;
    let call = json!({"type": "page", "anonymousId": "a", "messageId": "p-1"});
    let (status, body) = api
        .post("/v1/p", "application/json", call.clone(), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorized");
    let (status, _) = api
        .post("/v1/p", "application/json", call.clone(), Some(KEY))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .post("/v1/batch", "application/json", python_batch(), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the key in the body");
    let (status, _) = api
        .post(
            "/v1/p",
            "application/json",
            call,
            Some("segment-key-not-configured-000"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let records = api.records(SEGMENT_TOPIC).await;
    assert_eq!(records.len(), 3);
    for record in records {
        let source = record
            .headers
            .iter()
            .find(|h| h.key == "X-Source")
            .expect("source");
        assert_eq!(&source.value[..], b"web");
    }
}

#[tokio::test]
async fn the_settings_document_points_the_browser_library_here() {
    let api = api(&[("web", KEY)]).await;
    let request = Request::get(format!("/v1/projects/{KEY}/settings"))
        .header("host", "collector.example:60000")
        .body(Body::empty())
        .expect("request");
    let (status, settings) = api.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let segment = &settings["integrations"]["Segment.io"];
    assert_eq!(segment["apiHost"], "collector.example:60000/v1");
    assert_eq!(segment["protocol"], "http");
    assert_eq!(segment["apiKey"], KEY);
    assert_eq!(
        settings["integrations"]
            .as_object()
            .expect("integrations")
            .len(),
        1
    );
    assert_eq!(settings["remotePlugins"], json!([]));
    let unknown = Request::get("/v1/projects/another-key-000000000000000000/settings")
        .body(Body::empty())
        .expect("request");
    assert_eq!(api.send(unknown).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_tracker_and_its_demo_page_are_served() {
    let api = api(&[("web", KEY)]).await;
    for (path, content_type, needle) in [
        (
            "/tracker.js",
            "application/javascript; charset=utf-8",
            "clickstream.js",
        ),
        ("/demo", "text/html; charset=utf-8", "/tracker.js"),
    ] {
        let request = Request::get(path).body(Body::empty()).expect("request");
        let response = api.router.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
        assert!(text.contains(needle), "{path} mentions {needle}");
    }
}
