//! Ingest follows the registry without a restart: a version of the raw subject registered
//! through the registry's HTTP API while the pipeline runs is what the next requests are
//! validated and framed with, from the registry in the same process (the very next request)
//! and from one in another process (within a poll interval).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use apache_avro::types::Value as Avro;
use clickstream_event::schemas::RAW_EVENT_SCHEMA;
use clickstream_event::{INVALID_TOPIC, RAW_TOPIC, value_subject};
use clickstream_log::{EmbeddedLog, EmbeddedLogConfig, EventLog, LogRecord};
use serde_json::{Value, json};

use crate::common::{TestPipeline, decode_via_registry, json_body, read_topic};
use crate::eventually::{check, eventually};
use crate::faults::child::{Child, field};

/// The bundled raw schema plus an optional `event.price` (`["null","double"]`, default
/// null): a BACKWARD-compatible v2.
pub fn schema_with_price() -> String {
    let mut schema: Value = serde_json::from_str(RAW_EVENT_SCHEMA).expect("json");
    let event = schema["fields"]
        .as_array_mut()
        .expect("fields")
        .iter_mut()
        .find(|f| f["name"] == "event")
        .expect("event field");
    event["type"]["fields"]
        .as_array_mut()
        .expect("event fields")
        .push(json!({"name": "price", "type": ["null", "double"], "default": null}));
    schema.to_string()
}

/// A valid seed-shaped event with `event.price` set to `price`.
pub fn priced_event(id: i64, price: Value) -> Value {
    json!({"id": id, "type": "purchase", "event": {
        "user_agent": "Mozilla/5.0", "ip": "10.1.2.3", "customer_id": 1404,
        "timestamp": "2024-06-03T10:00:00Z", "page": "https://shop.example/checkout",
        "price": price}})
}

/// Registers `schema` under `subject` through the registry's REST API; its id.
pub async fn register(
    http: &reqwest::Client,
    registry_url: &str,
    subject: &str,
    schema: &str,
) -> u32 {
    let response = http
        .post(format!("{registry_url}/subjects/{subject}/versions"))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(json!({ "schema": schema }).to_string())
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, 200, "{body}");
    u32::try_from(body["id"].as_u64().expect("id")).expect("u32 id")
}

/// The schema id in a raw record's wire header.
pub fn wire_id(record: &LogRecord) -> u32 {
    assert_eq!(record.value[0], 0, "magic byte");
    u32::from_be_bytes(record.value[1..5].try_into().expect("4 bytes"))
}

/// The records of `topic` stamped with `correlation_id`.
fn of_request<'r>(records: &'r [LogRecord], correlation_id: &str) -> Vec<&'r LogRecord> {
    records
        .iter()
        .filter(|r| r.header("X-Correlation-ID") == Some(correlation_id.as_bytes()))
        .collect()
}

/// POSTs `events` to `collect_url`: the answer, asserting a 200.
async fn post(http: &reqwest::Client, collect_url: &str, events: &Value) -> Value {
    let response = http
        .post(collect_url)
        .header("content-type", "application/json")
        .body(events.to_string())
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `event.price` of a decoded raw record.
fn price(record: &Avro) -> Option<f64> {
    let field = |value: &'_ Avro, name: &str| -> Option<Avro> {
        let Avro::Record(fields) = value else {
            return None;
        };
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    match field(&field(record, "event")?, "price")? {
        Avro::Union(_, inner) => match *inner {
            Avro::Double(price) => Some(price),
            _ => None,
        },
        _ => None,
    }
}

fn error_message(record: &LogRecord) -> String {
    String::from_utf8_lossy(record.header("X-Error-Message").expect("reason")).into_owned()
}

#[tokio::test]
async fn a_version_registered_while_running_applies_to_the_next_request() {
    let t = TestPipeline::start().await;
    let subject = value_subject(RAW_TOPIC);
    let collect = t.url("/collect");
    let v1 = post(
        &t.http,
        &collect,
        &json!([priced_event(1, json!("ignored by v1"))]),
    )
    .await;
    assert_eq!(v1["valid_count"], 1, "v1 has no price: {v1}");

    let v2_id = register(
        &t.http,
        t.pipeline.registry_url(),
        &subject,
        &schema_with_price(),
    )
    .await;
    let priced = post(&t.http, &collect, &json!([priced_event(2, json!(12.5))])).await;
    assert_eq!(priced["valid_count"], 1, "{priced}");
    let wrong = post(
        &t.http,
        &collect,
        &json!([priced_event(3, json!("twelve"))]),
    )
    .await;
    assert_eq!(wrong["invalid_count"], 1, "v2 checks the price: {wrong}");

    let raw = read_topic(t.log().as_ref(), RAW_TOPIC).await;
    let first = of_request(&raw, v1["correlation_id"].as_str().expect("id"));
    assert_ne!(wire_id(first[0]), v2_id, "before v2");
    let record = of_request(&raw, priced["correlation_id"].as_str().expect("id"));
    assert_eq!(record.len(), 1);
    assert_eq!(wire_id(record[0]), v2_id, "framed with v2's id");
    let decoded = decode_via_registry(&t, &mut HashMap::new(), &record[0].value).await;
    assert_eq!(price(&decoded), Some(12.5), "{decoded:?}");

    let invalid = read_topic(t.log().as_ref(), INVALID_TOPIC).await;
    let rejected = of_request(&invalid, wrong["correlation_id"].as_str().expect("id"));
    let reason = error_message(rejected[0]);
    assert_eq!(
        reason,
        r#"field 'event.price': expected number or null, found string "twelve""#
    );

    let ready: Value = get_json(&t, "/health/ready").await;
    assert_eq!(ready["raw_schema"]["schema_id"], v2_id, "{ready}");
    assert_eq!(ready["raw_schema"]["version"], 2, "{ready}");
}

/// Requests in flight while a version is registered are each framed with one version: a
/// request takes one snapshot of the validator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_during_a_switch_are_each_one_version() {
    let t = TestPipeline::start().await;
    let collect = t.url("/collect");
    let batch = json!(
        (0..50)
            .map(|i| priced_event(i, json!(1.5)))
            .collect::<Vec<_>>()
    );
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, collect, batch) = (t.http.clone(), collect.clone(), batch.clone());
        senders.spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..10 {
                ids.push(post(&http, &collect, &batch).await["correlation_id"].clone());
            }
            ids
        });
    }
    let subject = value_subject(RAW_TOPIC);
    let v2_id = register(
        &t.http,
        t.pipeline.registry_url(),
        &subject,
        &schema_with_price(),
    )
    .await;
    let mut requests = Vec::new();
    while let Some(ids) = senders.join_next().await {
        requests.extend(ids.expect("sender"));
    }
    // One more after the registration, so v2 is certainly in the log.
    requests.push(post(&t.http, &collect, &batch).await["correlation_id"].clone());

    let raw = read_topic(t.log().as_ref(), RAW_TOPIC).await;
    let mut seen = HashSet::new();
    for id in &requests {
        let records = of_request(&raw, id.as_str().expect("id"));
        assert_eq!(records.len(), 50, "every event of {id} is valid under both");
        let ids: HashSet<u32> = records.iter().map(|r| wire_id(r)).collect();
        assert_eq!(ids.len(), 1, "request {id} carries one schema id: {ids:?}");
        seen.extend(ids);
    }
    assert!(seen.contains(&v2_id), "{seen:?}");
}

/// A latest version that cannot be used (not a record) keeps the previous one in force and
/// degrades ingest, naming the schema in use; events keep being acknowledged.
#[tokio::test]
async fn an_unusable_latest_version_keeps_the_previous_one_and_degrades_ingest() {
    let t = TestPipeline::start().await;
    let registry = t.pipeline.registry_url().to_owned();
    let subject = value_subject(RAW_TOPIC);
    let level = t
        .http
        .put(format!("{registry}/config/{subject}"))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(json!({"compatibility": "NONE"}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(level.status(), 200);
    let before = post(
        &t.http,
        &t.url("/collect"),
        &json!([priced_event(1, json!(1))]),
    )
    .await;
    let bad_id = register(&t.http, &registry, &subject, r#""string""#).await;

    let after = post(
        &t.http,
        &t.url("/collect"),
        &json!([priced_event(2, json!(1))]),
    )
    .await;
    assert_eq!(after["valid_count"], 1, "{after}");
    let raw = read_topic(t.log().as_ref(), RAW_TOPIC).await;
    let in_force = wire_id(of_request(&raw, before["correlation_id"].as_str().expect("id"))[0]);
    let record = of_request(&raw, after["correlation_id"].as_str().expect("id"));
    assert_eq!(
        wire_id(record[0]),
        in_force,
        "the previous version stays in force"
    );

    let ready: Value = get_json(&t, "/health/ready/ingest").await;
    assert_eq!(ready["roles"]["ingest"]["status"], "degraded", "{ready}");
    let reason = ready["roles"]["ingest"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("following the registry failed")
            && reason.contains(&format!("schema id {bad_id}"))
            && reason.contains(&format!("validating with schema {in_force}")),
        "{reason}"
    );
    assert_eq!(ready["raw_schema"]["schema_id"], in_force, "{ready}");
}

/// `clickstream ingest` on a `clickstream registry` in another process follows it by
/// polling: after v2 is registered, requests validate against v2 within a few polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_process_follows_a_registry_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut registry = Child::spawn(
        "registry",
        &dir.path().join("registry"),
        &["registry", "--port", "0"],
        [],
    );
    let line = registry.wait_for_line("schema registry is up").await;
    let registry_url = format!("http://{}", field(&line, "addr"));
    let ingest_dir = dir.path().join("ingest");
    let mut ingest = Child::spawn(
        "ingest",
        &ingest_dir,
        &["ingest", "--api-port", "0", "--registry-url", &registry_url],
        [
            (
                "CLICKSTREAM_REGISTRY__POLL_INTERVAL_MS".to_owned(),
                "200".to_owned(),
            ),
            ("CLICKSTREAM_UI__ENABLED".to_owned(), "false".to_owned()),
        ],
    );
    let line = ingest.wait_for_line("clickstream is up").await;
    let collect = format!("{}/collect", field(&line, "ingest"));
    let http = reqwest::Client::new();

    let subject = value_subject(RAW_TOPIC);
    let v2_id = register(&http, &registry_url, &subject, &schema_with_price()).await;
    let wrong = eventually("ingest validates with v2", Duration::from_secs(10), || {
        let (http, collect) = (http.clone(), collect.clone());
        async move {
            let answer = post(&http, &collect, &json!([priced_event(3, json!("twelve"))])).await;
            check(answer["invalid_count"] == 1, || answer.to_string()).map(|()| answer)
        }
    })
    .await;
    let priced = post(&http, &collect, &json!([priced_event(2, json!(12.5))])).await;
    assert_eq!(priced["valid_count"], 1, "{priced}");
    // Followed by the running process, not picked up by a restart.
    let line = ingest
        .wait_for_line("validating events with a new version of the subject's schema")
        .await;
    assert_eq!(field(&line, "schema_id"), v2_id.to_string(), "{line}");

    // Acknowledged means durable: the log, reopened after a kill -9, holds both records.
    ingest.kill().await;
    let log = EmbeddedLog::open(EmbeddedLogConfig::with_dir(ingest_dir.join("log")))
        .await
        .expect("log reopens");
    let raw = read_topic(&log as &dyn EventLog, RAW_TOPIC).await;
    let record = of_request(&raw, priced["correlation_id"].as_str().expect("id"));
    assert_eq!(wire_id(record[0]), v2_id, "framed with v2's id");
    let invalid = read_topic(&log as &dyn EventLog, INVALID_TOPIC).await;
    let rejected = of_request(&invalid, wrong["correlation_id"].as_str().expect("id"));
    let reason = error_message(rejected[0]);
    assert!(reason.contains("event.price"), "{reason}");
    log.close().await;
    drop(registry);
}

/// `GET path` on the pipeline's ingest port, as JSON.
async fn get_json(t: &TestPipeline, path: &str) -> Value {
    t.http
        .get(t.url(path))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}
