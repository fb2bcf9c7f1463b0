//! Write keys over real sockets: with keys configured, `/collect` refuses a request without
//! one or with a wrong one (401, JSON reason, `Basic` challenge) and takes the right one
//! from each carrier; the key's name travels as the `X-Source` header (on the embedded log
//! and on Kafka) into the `source` column of `events` and `invalid_events`, and labels the
//! events counter. Without keys ingest is open and `source` is null. A lake written before
//! the column gets it, and rows with sources land next to the old ones.

use std::path::Path;

use clickstream::Config;
use clickstream_event::{INVALID_TOPIC, RAW_TOPIC, SOURCE_HEADER};
use clickstream_lake::{
    EventRow, EventsBuilder, InvalidEventRow, InvalidEventsBuilder, RecordBatch, TableKind,
};
use clickstream_secret::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::{TestPipeline, json_body, read_topic, seed_events};

const WEB: &str = "it-web-key-0123456789abcdef";
const IOS: &str = "it-ios-key-0123456789abcdef";

/// Keys for sources `web` and `ios_app`.
fn with_keys(config: &mut Config) {
    config.auth.write_keys = [("web", WEB), ("ios_app", IOS)]
        .into_iter()
        .map(|(name, key)| (name.to_string(), Secret::new(key)))
        .collect();
}

/// How a request presents its key.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    Nothing,
    Header(&'static str),
    /// As the user of Basic credentials with an empty password, as Segment's libraries do.
    BasicUser(&'static str),
    Query(&'static str),
}

/// The seed's events with ids from `first_id`: 12 valid, 3 invalid.
fn events_from(first_id: i64) -> Vec<u8> {
    let mut events = seed_events();
    for (i, event) in events.iter_mut().take(12).enumerate() {
        event["id"] = json!(first_id + i as i64);
    }
    serde_json::to_vec(&events).expect("json")
}

async fn post(t: &TestPipeline, carrier: Carrier, body: Vec<u8>) -> reqwest::Response {
    let mut url = t.url("/collect");
    if let Carrier::Query(key) = carrier {
        url.push_str(&format!("?write_key={key}"));
    }
    let mut request = t
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    request = match carrier {
        Carrier::Header(key) => request.header("x-write-key", key),
        Carrier::BasicUser(key) => request.basic_auth(key, Some("")),
        Carrier::Nothing | Carrier::Query(_) => request,
    };
    request.send().await.expect("request sent")
}

/// Each refused request: 401, a JSON reason naming what is wrong, a `Basic` challenge.
async fn check_refused(t: &TestPipeline) {
    let wrong = "it-wrong-key-0123456789abcd";
    for (carrier, reason) in [
        (Carrier::Nothing, "write key is required"),
        (Carrier::Header(wrong), "not known"),
        (Carrier::BasicUser(wrong), "not known"),
        (Carrier::Query(wrong), "not known"),
    ] {
        let response = post(t, carrier, events_from(1)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{carrier:?}");
        let challenge = response.headers()["www-authenticate"].clone();
        assert!(challenge.to_str().expect("ascii").starts_with("Basic"));
        let body = json_body(response).await;
        assert_eq!(body["status"], "error");
        let message = body["message"].as_str().expect("message");
        assert!(message.contains(reason), "{carrier:?}: {message}");
        assert!(!message.contains(wrong), "the key is never echoed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_keys_name_the_source_of_every_row_embedded_log() {
    write_keys_name_the_source_of_every_row(Backend::new(LogBackend::Embedded, LakeBackend::File))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_keys_name_the_source_of_every_row_kafka_log() {
    write_keys_name_the_source_of_every_row(Backend::new(LogBackend::kafka(), LakeBackend::File))
        .await;
}

async fn write_keys_name_the_source_of_every_row(backend: Backend) {
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        with_keys(config);
    })
    .await;
    check_refused(&t).await;
    let ping = t.http.get(t.url("/ping")).send().await.expect("sent");
    assert_eq!(ping.status(), StatusCode::OK, "/ping stays open");

    for (first_id, carrier) in [
        (100, Carrier::Header(WEB)),
        (200, Carrier::BasicUser(IOS)),
        (300, Carrier::Query(WEB)),
    ] {
        let response = post(&t, carrier, events_from(first_id)).await;
        assert_eq!(response.status(), StatusCode::OK, "{carrier:?}");
        let answer = json_body(response).await;
        assert_eq!(
            (
                answer["valid_count"].as_i64(),
                answer["invalid_count"].as_i64()
            ),
            (Some(12), Some(3))
        );
    }

    // Every record of the log carries its request's source.
    let log = t.log();
    for topic in [RAW_TOPIC, INVALID_TOPIC] {
        let records = read_topic(log.as_ref(), topic).await;
        assert_eq!(records.len(), if topic == RAW_TOPIC { 36 } else { 9 });
        for record in &records {
            let source = record.header(SOURCE_HEADER).map(|s| s.to_vec());
            assert!(
                matches!(source.as_deref(), Some(b"web" | b"ios_app")),
                "{topic}/{}: {source:?}",
                record.offset
            );
        }
    }

    t.wait_for_count("SELECT count(*) AS n FROM events", 36)
        .await;
    t.wait_for_count("SELECT count(*) AS n FROM invalid_events", 9)
        .await;
    let by_source = |table: &str| {
        format!("SELECT source, count(*) AS n FROM {table} GROUP BY source ORDER BY source")
    };
    assert_eq!(
        sql_over_http(&t, &by_source("events")).await,
        [
            json!({"source": "ios_app", "n": 12}),
            json!({"source": "web", "n": 24})
        ]
    );
    assert_eq!(
        sql_over_http(&t, &by_source("invalid_events")).await,
        [
            json!({"source": "ios_app", "n": 3}),
            json!({"source": "web", "n": 6})
        ]
    );
    let rows = sql_over_http(&t, "SELECT source FROM events WHERE id BETWEEN 200 AND 211").await;
    assert!(rows.iter().all(|r| r["source"] == "ios_app"), "{rows:?}");

    let metrics = scrape(&t).await;
    let events = |outcome: &str, source: &str| {
        metrics.value(
            "clickstream_ingest_events_total",
            &[("outcome", outcome), ("source", source)],
        )
    };
    assert_eq!(
        (events("valid", "web"), events("invalid", "web")),
        (24.0, 6.0)
    );
    assert_eq!(
        (events("valid", "ios_app"), events("invalid", "ios_app")),
        (12.0, 3.0)
    );
    let refused = |reason: &str| {
        metrics.value(
            "clickstream_http_write_key_refused_total",
            &[("reason", reason)],
        )
    };
    assert_eq!((refused("missing"), refused("unknown")), (1.0, 3.0));
}

#[tokio::test]
async fn a_browser_page_may_send_a_key_as_a_header_or_basic_credentials() {
    let t = TestPipeline::start_with(with_keys).await;
    let preflight = t
        .http
        .request(Method::OPTIONS, t.url("/collect"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,x-write-key,content-type",
        )
        .send()
        .await
        .expect("sent");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for header in ["authorization", "x-write-key", "content-type"] {
        assert!(allowed.contains(header), "{allowed}");
    }
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-credentials")
    );
    // A refusal is readable by the page: it carries the CORS headers too.
    let refused = t
        .http
        .post(t.url("/collect"))
        .header("origin", "https://shop.example")
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
}

/// The rate limits key their buckets on the write key's name: one source over its rate is
/// throttled while another is served.
#[tokio::test]
async fn each_source_has_its_own_rate_limit() {
    let t = TestPipeline::start_with(|config| {
        with_keys(config);
        config.limits.key_events_per_sec = 1;
        config.limits.key_burst = 15;
    })
    .await;
    let first = post(&t, Carrier::Header(WEB), events_from(100)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = post(&t, Carrier::Query(WEB), events_from(200)).await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(again.headers().contains_key("retry-after"));
    let message = json_body(again).await["message"].to_string();
    assert!(message.contains("write key"), "{message}");
    let other = post(&t, Carrier::BasicUser(IOS), events_from(300)).await;
    assert_eq!(
        other.status(),
        StatusCode::OK,
        "another source's bucket is full"
    );
}

#[tokio::test]
async fn without_keys_ingest_is_open_and_source_is_null() {
    let t = TestPipeline::start().await;
    let response = post(&t, Carrier::Nothing, events_from(100)).await;
    assert_eq!(response.status(), StatusCode::OK);
    // A key sent anyway changes nothing: there is none to match.
    let response = post(&t, Carrier::Header(WEB), events_from(200)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let records = read_topic(t.log().as_ref(), RAW_TOPIC).await;
    assert!(records.iter().all(|r| r.header(SOURCE_HEADER).is_none()));

    t.wait_for_count("SELECT count(*) AS n FROM events WHERE source IS NULL", 24)
        .await;
    t.wait_for_count(
        "SELECT count(*) AS n FROM invalid_events WHERE source IS NULL",
        6,
    )
    .await;
    let metrics = scrape(&t).await;
    let valid = metrics.value(
        "clickstream_ingest_events_total",
        &[("outcome", "valid"), ("source", "")],
    );
    assert_eq!(valid, 24.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_written_before_the_source_column_gets_it_and_the_rows_their_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = dir.path().join("lake");
    write_old_table(&lake, TableKind::Events, old_events()).await;
    write_old_table(&lake, TableKind::InvalidEvents, old_invalid_events()).await;

    let t = TestPipeline::start_in(dir.path(), with_keys).await;
    let response = post(&t, Carrier::Header(WEB), events_from(100)).await;
    assert_eq!(response.status(), StatusCode::OK);
    t.wait_for_count("SELECT count(*) AS n FROM events WHERE source = 'web'", 12)
        .await;
    t.wait_for_count(
        "SELECT count(*) AS n FROM invalid_events WHERE source = 'web'",
        3,
    )
    .await;
    let old = t
        .sql("SELECT count(*) AS n FROM events WHERE source IS NULL AND correlation_id = 'old'")
        .await;
    assert_eq!(old[0]["n"], 2, "the rows written before read null");
    let old = t
        .sql("SELECT count(*) AS n FROM invalid_events WHERE source IS NULL")
        .await;
    assert_eq!(old[0]["n"], 1);
}

/// Creates `kind`'s table under `lake` as a build before the `source` column did, and
/// writes `rows` (a batch of this build, whose `source` column is left out) to it.
async fn write_old_table(lake: &Path, kind: TableKind, rows: RecordBatch) {
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;

    let path = lake.join("clickstream-data").join(kind.name());
    std::fs::create_dir_all(&path).expect("mkdir");
    let schema = rows.schema();
    let kept: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| schema.field(i).name() != "source")
        .collect();
    let old_rows = rows.project(&kept).expect("old columns");
    let old_schema: deltalake::kernel::StructType = old_rows
        .schema()
        .as_ref()
        .try_into_kernel()
        .expect("delta schema");
    let table =
        deltalake::DeltaTable::try_from_url(url::Url::from_directory_path(&path).expect("url"))
            .await
            .expect("handle")
            .create()
            .with_columns(old_schema.fields().cloned())
            .with_partition_columns(kind.partition_columns().iter().copied())
            .await
            .expect("an old-layout table");
    table.write(vec![old_rows]).await.expect("old rows written");
}

fn old_events() -> RecordBatch {
    let mut builder = EventsBuilder::new();
    for id in [900_001, 900_002] {
        builder.push(&EventRow {
            id,
            event_type: "page_view",
            package_id: None,
            user_agent: "Mozilla/5.0",
            ip: "10.0.0.1",
            customer_id: None,
            timestamp: "2022-05-25T05:41:33",
            page: Some("/"),
            query: None,
            product: None,
            referrer: None,
            position: None,
            correlation_id: "old",
            source: None,
            schema_id: 1,
            log_timestamp_ms: 1_653_457_293_000,
            source_partition: 0,
            source_offset: 0,
            ingested_at_ms: 1_653_457_294_000,
            enrichment: Default::default(),
            user: None,
        });
    }
    builder.finish()
}

fn old_invalid_events() -> RecordBatch {
    let mut builder = InvalidEventsBuilder::new();
    builder.push(&InvalidEventRow {
        raw_json: "{}",
        reason: "missing field: id",
        correlation_id: Some("old"),
        source: None,
        received_at_ms: 1_653_457_293_000,
        source_partition: 0,
        source_offset: 0,
    });
    builder.finish()
}

/// Rows of `sql` through `POST /api/sql`, as any client reads them.
async fn sql_over_http(t: &TestPipeline, sql: &str) -> Vec<Value> {
    let response = t
        .http
        .post(t.url("/api/sql"))
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK, "{sql}");
    json_body(response).await["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn scrape(t: &TestPipeline) -> crate::prometheus::Exposition {
    let text = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    crate::prometheus::parse(&text).unwrap_or_else(|e| panic!("/metrics: {e}"))
}
