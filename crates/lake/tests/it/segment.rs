//! The Segment stream's tables: rows built, appended to real Delta tables and read back.

use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use clickstream_lake::avro::{Layout, SubjectVersion, WriterPlan};
use clickstream_lake::{
    AppTxn, DeadLetterRow, DeadLettersBuilder, EventEnrichment, IdentitiesBuilder, IdentityRow,
    InvalidEventRow, InvalidEventsBuilder, LakeTable, RecordBatch, SegmentDuplicateRow,
    SegmentDuplicatesBuilder, SegmentEventRow, SegmentEventsBuilder, SessionColumns, TableKind,
};
use deltalake::arrow::util::pretty::pretty_format_batches;
use deltalake::datafusion::prelude::SessionContext;

use crate::common::temp_lake;

const SEGMENT: &str = include_str!("../../../segment/schemas/acme.clickstream.segment.events.avsc");

/// The app id of partition `p` of the Segment topic.
fn app(p: u32) -> String {
    format!("segment:acme.clickstream.segment.events:{p}")
}

/// `table`'s rows as text, the columns of `written` in its order, by `source_offset`.
async fn read_back(table: &LakeTable, written: &RecordBatch) -> String {
    let ctx = SessionContext::new();
    let delta = table.delta_table();
    delta
        .update_datafusion_session(&ctx.state())
        .expect("register store");
    let provider = delta.table_provider().await.expect("table provider");
    ctx.register_table("t", provider).expect("register table");
    let columns: Vec<String> = written
        .schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let sql = format!(
        "SELECT {} FROM t ORDER BY source_offset",
        columns.join(", ")
    );
    let batches = ctx
        .sql(&sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    pretty_format_batches(&batches).expect("render").to_string()
}

/// `batch` as text, as [`read_back`] renders it.
fn rendered(batch: &RecordBatch) -> String {
    pretty_format_batches(std::slice::from_ref(batch))
        .expect("render")
        .to_string()
}

/// Appends `batch` to `kind`'s table and checks every value reads back as written; the
/// table reloaded (alive as long as the directory).
async fn round_trip(kind: TableKind, batch: RecordBatch) -> (tempfile::TempDir, LakeTable) {
    let (dir, lake) = temp_lake().await;
    let mut table = lake.table(kind).await.expect("load");
    let rows = batch.num_rows();
    table
        .append(vec![batch.clone()], &[AppTxn::new(app(0), 10)])
        .await
        .expect("append");
    let reloaded = lake.table(kind).await.expect("reload");
    assert_eq!(reloaded.txn_version(&app(0)).await.expect("txn"), Some(10));
    let read = read_back(&reloaded, &batch).await;
    assert_eq!(read, rendered(&batch), "{kind}");
    assert_eq!(read.lines().count(), rows + 4, "{read}");
    (dir, reloaded)
}

/// A JSON value as a schema-less Avro value, for [`Value::resolve`].
fn avro(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => n.as_i64().map_or_else(
            || Value::Double(n.as_f64().unwrap_or_default()),
            Value::Long,
        ),
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => Value::Array(items.into_iter().map(avro).collect()),
        serde_json::Value::Object(map) => {
            Value::Map(map.into_iter().map(|(k, v)| (k, avro(v))).collect())
        }
    }
}

/// A call as ingest frames it: encoded with the bundled schema, then decoded as the
/// processor decodes it.
fn through_avro(schema: &Schema, json: serde_json::Value) -> Value {
    let value = avro(json).resolve(schema).expect("a conforming call");
    let bytes = GenericDatumWriter::builder(schema)
        .build()
        .expect("writer")
        .write_value_to_vec(value)
        .expect("encoded");
    GenericDatumReader::builder(schema)
        .build()
        .expect("reader")
        .read_value(&mut bytes.as_slice())
        .expect("decoded")
}

fn page_call() -> serde_json::Value {
    serde_json::json!({
        "message_id": "ajs-1", "type": "page", "event": null, "name": "Home",
        "category": "Docs", "user_id": null, "anonymous_id": "a-3", "previous_id": null,
        "group_id": null, "timestamp": 1_714_564_800_123_i64,
        "original_timestamp": 1_714_564_800_000_i64, "sent_at": 1_714_564_800_500_i64,
        "received_at": 1_714_564_801_000_i64,
        "properties": "{\"plan\":\"pro\"}", "traits": null,
        "context": {
            "ip": "10.0.0.1", "user_agent": "Mozilla/5.0", "locale": "en-US",
            "timezone": "Europe/Paris",
            "page": {"url": "https://acme.test/docs?a=1", "path": "/docs", "referrer": null,
                     "title": "Docs", "search": "?a=1"},
            "campaign": {"name": "spring", "source": "news", "medium": "email",
                         "term": null, "content": null},
            "library": {"name": "analytics.js", "version": "5.0"},
            "json": "{\"locale\":\"en-US\",\"userAgent\":\"Mozilla/5.0\"}"
        },
        "integrations": "{\"All\":true}", "extra": "{\"_metadata\":{}}"
    })
}

fn identify_call() -> serde_json::Value {
    serde_json::json!({
        "message_id": "node-2", "type": "identify", "user_id": "u-7", "anonymous_id": "a-3",
        "timestamp": 1_714_651_200_000_i64, "received_at": 1_714_651_200_000_i64,
        "traits": "{\"plan\":\"pro\"}",
        "context": {"ip": null, "user_agent": null, "library": {"name": "analytics-node",
                    "version": null}, "json": null}
    })
}

fn event_row<'a>(
    (message_id, call_type): (&'a str, &'a str),
    (user_agent, ip): (Option<&'a str>, Option<&'a str>),
    timestamp_ms: i64,
    offset: i64,
    user: (&'a WriterPlan, &'a Value),
) -> SegmentEventRow<'a> {
    SegmentEventRow {
        message_id,
        call_type,
        user_agent,
        ip,
        timestamp_ms,
        correlation_id: "corr",
        source: Some("web"),
        schema_id: 21,
        log_timestamp_ms: timestamp_ms + 1_000,
        source_partition: 0,
        source_offset: offset,
        ingested_at_ms: timestamp_ms + 2_000,
        enrichment: EventEnrichment {
            browser_family: user_agent.map(|_| "Firefox"),
            geo_country: ip.map(|_| "FR"),
            ..EventEnrichment::default()
        },
        user: Some(user),
    }
}

#[tokio::test]
async fn segment_calls_land_each_field_in_its_column() {
    let (dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::SegmentEvents).await.expect("load");
    let schema = Schema::parse_str(SEGMENT).expect("bundled schema");
    let history = [SubjectVersion {
        version: 1,
        id: 21,
        schema: Arc::new(schema.clone()),
    }];
    let committed = table.arrow_schema().expect("schema");
    let plan =
        WriterPlan::for_layout(&Layout::SEGMENT, &committed, &history, 21, &schema).expect("plan");
    let page = through_avro(&schema, page_call());
    let identify = through_avro(&schema, identify_call());
    let mut builder = SegmentEventsBuilder::new();
    builder.push(&event_row(
        ("ajs-1", "page"),
        (Some("Mozilla/5.0"), Some("10.0.0.1")),
        1_714_564_800_123,
        4,
        (&plan, &page),
    ));
    builder.push(&event_row(
        ("node-2", "identify"),
        (None, None),
        1_714_651_200_000,
        5,
        (&plan, &identify),
    ));
    let sessions = [
        SessionColumns {
            session_id: "s-1",
            session_index: 1,
            event_index: 1,
        },
        SessionColumns {
            session_id: "s-1",
            session_index: 1,
            event_index: 2,
        },
    ];
    let batch = builder.finish_with_sessions(Some(&sessions));
    table
        .append(vec![batch.clone()], &[AppTxn::new(app(0), 6)])
        .await
        .expect("append");

    let reloaded = lake.table(TableKind::SegmentEvents).await.expect("reload");
    let read = read_back(&reloaded, &batch).await;
    assert_eq!(read, rendered(&batch));
    let events_dir = dir.path().join("clickstream-data/segment_events");
    assert!(events_dir.join("event_date=2024-05-01").is_dir());
    assert!(events_dir.join("event_date=2024-05-02").is_dir());
    let columns = reloaded.arrow_schema().expect("schema");
    let names: Vec<&str> = columns.fields().iter().map(|f| f.name().as_str()).collect();
    for expected in [
        "name",
        "category",
        "anonymous_id",
        "received_at",
        "context_locale",
        "context_page",
        "context_campaign",
        "context_json",
        "integrations",
        "extra",
    ] {
        assert!(names.contains(&expected), "{expected}: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("context_ip")),
        "{names:?}"
    );
    for (value, wanted) in [
        ("ip", "10.0.0.1"),
        ("context_page", "url: https://acme.test/docs?a=1"),
        ("context_campaign", "source: news"),
        ("properties", "{\"plan\":\"pro\"}"),
        ("traits", "{\"plan\":\"pro\"}"),
        ("received_at", "2024-05-01T12:00:01Z"),
        ("context_timezone", "Europe/Paris"),
    ] {
        assert!(read.contains(wanted), "{value}: {wanted} in\n{read}");
    }
}

#[tokio::test]
async fn segment_duplicates_round_trip() {
    let mut builder = SegmentDuplicatesBuilder::new();
    for (offset, user_id) in [(7, Some("u-7")), (8, None)] {
        builder.push(&SegmentDuplicateRow {
            message_id: "ajs-1",
            call_type: "track",
            user_id,
            anonymous_id: Some("a-3"),
            timestamp_ms: 1_714_564_800_123,
            correlation_id: "corr-2",
            schema_id: 21,
            first_seen_ms: 1_714_564_801_000,
            log_timestamp_ms: 1_714_564_900_000,
            detected_at_ms: 1_714_564_900_500,
            source_partition: 0,
            source_offset: offset,
        });
    }
    round_trip(TableKind::SegmentDuplicates, builder.finish()).await;
}

#[tokio::test]
async fn identities_round_trip() {
    let mut builder = IdentitiesBuilder::new();
    builder.push(&IdentityRow {
        anonymous_id: Some("a-3"),
        user_id: "u-7",
        previous_id: None,
        link: "identify",
        message_id: "node-2",
        timestamp_ms: 1_714_651_200_000,
        correlation_id: "corr",
        source_partition: 0,
        source_offset: 5,
        ingested_at_ms: 1_714_651_202_000,
    });
    builder.push(&IdentityRow {
        anonymous_id: None,
        user_id: "u-7",
        previous_id: Some("old-1"),
        link: "alias",
        message_id: "node-3",
        timestamp_ms: 1_714_651_300_000,
        correlation_id: "corr",
        source_partition: 0,
        source_offset: 6,
        ingested_at_ms: 1_714_651_302_000,
    });
    assert_eq!(builder.len(), 2);
    let (_dir, table) = round_trip(TableKind::Identities, builder.finish()).await;
    assert!(
        table
            .files()
            .expect("files")
            .iter()
            .all(|f| f.partition_values.is_empty())
    );
}

#[tokio::test]
async fn segment_invalid_events_keep_the_message_id() {
    let mut builder =
        InvalidEventsBuilder::for_kind(TableKind::SegmentInvalidEvents).expect("builder");
    let calls = [
        r#"{"messageId": "ajs-9", "type": "alias", "userId": "u-1"}"#,
        r#"{"message_id": "m-2", "type": "track", "timestamp": 1}"#,
        "not json",
    ];
    for (offset, raw_json) in calls.iter().enumerate() {
        builder.push(&InvalidEventRow {
            raw_json,
            reason: "field 'previousId': an alias call needs it",
            correlation_id: Some("corr"),
            source: Some("web"),
            received_at_ms: 1_714_564_800_000,
            source_partition: 0,
            source_offset: i64::try_from(offset).expect("small"),
        });
    }
    let batch = builder.finish();
    let (_dir, table) = round_trip(TableKind::SegmentInvalidEvents, batch.clone()).await;
    let read = read_back(&table, &batch).await;
    assert!(read.contains("| ajs-9"), "{read}");
    assert!(read.contains("| m-2"), "{read}");
}

#[tokio::test]
async fn segment_dead_letters_round_trip() {
    let mut builder = DeadLettersBuilder::for_kind(TableKind::SegmentDeadLetters).expect("builder");
    builder.push(&DeadLetterRow {
        reason: "unknown schema id 42",
        source_topic: "acme.clickstream.segment.events",
        source_partition: 1,
        source_offset: 99,
        raw: &[0, 0, 0, 0, 42, 1, 2, 3],
        correlation_id: Some("corr"),
        schema_id: Some(42),
        received_at_ms: 1_714_564_800_000,
        failed_at_ms: 1_714_564_800_500,
    });
    round_trip(TableKind::SegmentDeadLetters, builder.finish()).await;
}
