//! A site's own schema, evolving: records written with a later version of the raw subject
//! land with their new fields as new `events` columns, older rows null there, without a
//! restart; a version whose field cannot share a column is kept in `dead_letters` with
//! the reason.

use apache_avro::types::Value as Avro;
use bytes::Bytes;
use clickstream_event::{EventValidator, LATEST_TOPIC, RAW_TOPIC, value_subject};
use clickstream_log::OutgoingRecord;
use serde_json::{Value, json};

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::{TestPipeline, decode_via_registry, json_body, read_topic};

const RAW: &str = include_str!("../../../event/schemas/acme.clickstream.raw.events.avsc");

/// Fields the v2 of the tests adds to `event`: a double, a nested record, an array, a map,
/// an enum, a decimal and a timestamp-millis.
pub const V2_FIELDS: &str = r#"
    {"name": "price", "type": ["null", "double"], "default": null},
    {"name": "experiment", "type": ["null", {"type": "record", "name": "Experiment",
        "fields": [{"name": "name", "type": "string"}, {"name": "variant", "type": "int"}]}], "default": null},
    {"name": "cart", "type": ["null", {"type": "array", "items": "string"}], "default": null},
    {"name": "labels", "type": ["null", {"type": "map", "values": "string"}], "default": null},
    {"name": "tier", "type": ["null", {"type": "enum", "name": "Tier", "symbols": ["FREE", "PRO"]}], "default": null},
    {"name": "amount", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}], "default": null},
    {"name": "placed_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null}
"#;

/// The raw schema with `extra` appended to its `event` record.
pub fn raw_with(extra: &str) -> String {
    RAW.replace(
        r#"{"name": "position", "type": ["null", "long"], "default": null}"#,
        &format!(r#"{{"name": "position", "type": ["null", "long"], "default": null}}, {extra}"#),
    )
}

/// A seed-shaped event with `extra` merged into `event`.
pub fn event_with(id: i64, extra: Value) -> Value {
    let mut event = json!({
        "id": id,
        "type": "purchase",
        "event": {
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0",
            "ip": "203.0.113.7",
            "customer_id": 40 + id % 3,
            "timestamp": "2024-03-01T10:00:00.000000",
            "page": "/checkout"
        }
    });
    if let (Some(target), Value::Object(extra)) = (event["event"].as_object_mut(), extra) {
        target.extend(extra);
    }
    event
}

/// The v2 fields of event `id`, as posted.
pub fn v2_values(id: i64) -> Value {
    json!({
        "price": id as f64 + 0.25,
        "experiment": {"name": "checkout-button", "variant": id % 2},
        "cart": ["sku-1", format!("sku-{id}")],
        "labels": {"channel": "web"},
        "tier": "PRO",
        "amount": "12.34",
        "placed_at": 1_709_287_200_000_i64 + id,
    })
}

/// Registers `schema` under the raw subject of the pipeline's registry; returns its id,
/// or the HTTP status and body when refused.
pub async fn register(t: &TestPipeline, schema: &str) -> Result<u32, (u16, Value)> {
    let url = format!(
        "{}/subjects/{}/versions",
        t.pipeline.registry_url(),
        value_subject(RAW_TOPIC)
    );
    let answer = t
        .http
        .post(url)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .json(&json!({ "schema": schema }))
        .send()
        .await
        .expect("registry answers");
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.expect("json");
    match body["id"].as_u64() {
        Some(id) if status == 200 => Ok(id as u32),
        _ => Err((status, body)),
    }
}

/// Sets the raw subject's compatibility to `NONE`: any version registers.
async fn allow_any_version(t: &TestPipeline) {
    let answer = t
        .http
        .put(format!(
            "{}/config/{}",
            t.pipeline.registry_url(),
            value_subject(RAW_TOPIC)
        ))
        .json(&json!({"compatibility": "NONE"}))
        .send()
        .await
        .expect("registry answers");
    assert!(answer.status().is_success());
}

/// Frames `events` with `schema` (registered as `id`) the way a producer would, and
/// appends them straight to the raw topic in one append.
async fn produce(t: &TestPipeline, batches: &[(&str, u32, Vec<Value>)]) {
    let mut records = Vec::new();
    for (schema, id, events) in batches {
        let schema = apache_avro::Schema::parse_str(schema).expect("schema");
        let validator = EventValidator::new(schema, *id).expect("validator");
        for checked in validator.validate_batch(events.iter()).expect("encoder") {
            let valid = checked.expect("the event conforms");
            records.push((valid.payload, valid.key));
        }
    }
    let records = records
        .into_iter()
        .map(|(payload, key)| OutgoingRecord {
            topic: RAW_TOPIC.into(),
            partition: Some(0),
            key: key.map(Bytes::from),
            value: Bytes::from(payload),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect();
    t.log().append(records).await.expect("appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_version_lands_as_new_columns_embedded_log_file_lake() {
    a_later_version_lands_as_new_columns(Backend::new(LogBackend::Embedded, LakeBackend::File))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_version_lands_as_new_columns_kafka_log_s3_lake() {
    a_later_version_lands_as_new_columns(Backend::new(LogBackend::kafka(), LakeBackend::s3()))
        .await;
}

async fn a_later_version_lands_as_new_columns(backend: Backend) {
    let t = TestPipeline::start_on(&backend).await;
    let v1_events: Vec<Value> = (1..=3).map(|id| event_with(id, json!({}))).collect();
    let answer = json_body(
        t.collect(serde_json::to_vec(&v1_events).expect("json"))
            .await,
    )
    .await;
    assert_eq!(answer["valid_count"], 3, "{answer}");
    t.wait_for_count("SELECT count(*) AS n FROM events", 3)
        .await;

    let v1_id = register(&t, RAW).await.expect("v1 is registered already");
    let v2 = raw_with(V2_FIELDS);
    let v2_id = register(&t, &v2).await.expect("v2 is backward compatible");
    assert_ne!(v1_id, v2_id);

    // v1 and v2 records interleaved in one append: one poll, one batch.
    let v2_events: Vec<Value> = (10..14).map(|id| event_with(id, v2_values(id))).collect();
    let v1_more: Vec<Value> = (20..22).map(|id| event_with(id, json!({}))).collect();
    produce(
        &t,
        &[
            (&v2, v2_id, v2_events[..2].to_vec()),
            (RAW, v1_id, v1_more.clone()),
            (&v2, v2_id, v2_events[2..].to_vec()),
        ],
    )
    .await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 9)
        .await;

    let rows = t
        .sql(
            "SELECT id, schema_id, price, experiment, cart, labels, tier, CAST(amount AS VARCHAR) AS amount, \
             placed_at, customer_id, browser_family FROM events ORDER BY id",
        )
        .await;
    assert_eq!(rows.len(), 9);
    for row in &rows {
        let id = row["id"].as_i64().expect("id");
        if (10..14).contains(&id) {
            let sent = v2_values(id);
            assert_eq!(row["schema_id"], json!(v2_id), "{row:?}");
            assert_eq!(row["price"], sent["price"], "{row:?}");
            assert_eq!(row["experiment"], sent["experiment"], "{row:?}");
            assert_eq!(row["cart"], sent["cart"], "{row:?}");
            assert_eq!(row["labels"], sent["labels"], "{row:?}");
            assert_eq!(row["tier"], sent["tier"], "{row:?}");
            assert_eq!(row["amount"], sent["amount"], "{row:?}");
            let placed =
                chrono::DateTime::parse_from_rfc3339(row["placed_at"].as_str().expect("text"))
                    .expect("rfc3339");
            assert_eq!(
                placed.timestamp_millis(),
                sent["placed_at"].as_i64().expect("ms"),
                "{row:?}"
            );
        } else {
            for column in [
                "price",
                "experiment",
                "cart",
                "labels",
                "tier",
                "amount",
                "placed_at",
            ] {
                assert_eq!(row[column], Value::Null, "v1 row {id}: {column}");
            }
        }
        // Seed columns and enrichment as for any event.
        assert_eq!(row["customer_id"], json!(40 + id % 3), "{row:?}");
        assert_eq!(row["browser_family"], json!("Firefox"), "{row:?}");
    }

    // The latest topic carries each record with its own fields plus metadata, under the
    // latest schema derived from its writer schema.
    let latest = read_topic(t.log().as_ref(), LATEST_TOPIC).await;
    assert_eq!(latest.len(), 9);
    let mut schemas = std::collections::HashMap::new();
    let mut prices = Vec::new();
    for record in &latest {
        let Avro::Record(fields) = decode_via_registry(&t, &mut schemas, &record.value).await
        else {
            panic!("a record")
        };
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["id", "type", "package_id", "event", "metadata"]);
        let Avro::Record(event) = &fields[3].1 else {
            panic!("event is a record")
        };
        if let Some((_, Avro::Union(_, price))) = event.iter().find(|(n, _)| n == "price")
            && let Avro::Double(price) = price.as_ref()
        {
            prices.push(*price);
        }
    }
    prices.sort_by(f64::total_cmp);
    assert_eq!(prices, [10.25, 11.25, 12.25, 13.25]);

    // A version whose `price` is a string cannot share the double column: its records are
    // dead letters naming the field, never dropped, and the stream goes on.
    allow_any_version(&t).await;
    let v3 = raw_with(r#"{"name": "price", "type": ["null", "string"], "default": null}"#);
    let v3_id = register(&t, &v3).await.expect("NONE accepts anything");
    produce(
        &t,
        &[
            (&v3, v3_id, vec![event_with(30, json!({"price": "twelve"}))]),
            (&v2, v2_id, vec![event_with(31, v2_values(31))]),
        ],
    )
    .await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 10)
        .await;
    t.wait_for_count("SELECT count(*) AS n FROM dead_letters", 1)
        .await;
    let dead = t.sql("SELECT reason, schema_id FROM dead_letters").await;
    let reason = dead[0]["reason"].as_str().expect("reason");
    assert!(reason.contains("field 'event.price'"), "{reason}");
    assert_eq!(dead[0]["schema_id"], json!(v3_id));
}

/// A site whose schema keeps the user agent, IP and time elsewhere says where, and the
/// seed columns and enrichment follow; a role it has no field for stays null.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_with_a_role_are_read_where_the_config_says() {
    let t = TestPipeline::start_with(|config| {
        let fields = &mut config.processor.fields;
        fields.user_agent = "context.ua".into();
        fields.ip = "context.ip".into();
        fields.timestamp = "context.sent_at".into();
        fields.customer_id = "context.user".into();
    })
    .await;
    let schema = r#"{"type": "record", "name": "SiteEvent", "namespace": "shop",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "type", "type": "string"},
            {"name": "context", "type": {"type": "record", "name": "Context", "fields": [
                {"name": "ua", "type": "string"},
                {"name": "ip", "type": "string"},
                {"name": "sent_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
            ]}},
            {"name": "sku", "type": ["null", "string"], "default": null}
        ]}"#;
    allow_any_version(&t).await;
    register(&t, schema).await.expect("registered");
    let event = json!({
        "id": 7, "type": "add_to_cart", "sku": "A-1",
        "context": {
            "ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0",
            "ip": "203.0.113.7",
            "sent_at": 1_709_287_200_123_i64
        }
    });
    let answer = json_body(t.collect(serde_json::to_vec(&[event]).expect("json")).await).await;
    assert_eq!(answer["valid_count"], 1, "{answer}");
    t.wait_for_count("SELECT count(*) AS n FROM events", 1)
        .await;
    let rows = t
        .sql(
            "SELECT user_agent, ip, timestamp, CAST(event_time AS VARCHAR) AS event_time, \
             customer_id, browser_family, sku, context FROM events",
        )
        .await;
    let row = &rows[0];
    assert_eq!(
        row["user_agent"],
        json!("Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0")
    );
    assert_eq!(row["ip"], json!("203.0.113.7"));
    assert_eq!(row["timestamp"], json!("2024-03-01T10:00:00.123Z"));
    assert!(
        row["event_time"]
            .as_str()
            .is_some_and(|t| t.starts_with("2024-03-01T10:00:00.123")),
        "{row:?}"
    );
    assert_eq!(row["customer_id"], Value::Null);
    assert_eq!(row["browser_family"], json!("Firefox"));
    assert_eq!(row["sku"], json!("A-1"));
    assert_eq!(row["context"]["ip"], json!("203.0.113.7"));
}

/// A version adding a field inside a record grows the struct column: records of the older
/// version, before and interleaved after, read null in the new child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_added_inside_a_record_grows_its_struct_column() {
    let t = TestPipeline::start().await;
    let experiment = |extra: &str| {
        raw_with(&format!(
            r#"{{"name": "experiment", "type": ["null", {{"type": "record", "name": "Experiment",
                "fields": [{{"name": "name", "type": "string"}}{extra}]}}], "default": null}}"#
        ))
    };
    let v2 = experiment("");
    let v3 = experiment(r#", {"name": "bucket", "type": ["null", "long"], "default": null}"#);
    let v2_id = register(&t, &v2).await.expect("v2");
    let v2_event = |id: i64| event_with(id, json!({"experiment": {"name": format!("e{id}")}}));
    let v3_event = |id: i64| {
        event_with(
            id,
            json!({"experiment": {"name": format!("e{id}"), "bucket": id}}),
        )
    };
    produce(&t, &[(&v2, v2_id, (1..3).map(v2_event).collect())]).await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 2)
        .await;
    let v3_id = register(&t, &v3).await.expect("v3 is backward compatible");
    produce(
        &t,
        &[
            (&v2, v2_id, (3..5).map(v2_event).collect()),
            (&v3, v3_id, (5..7).map(v3_event).collect()),
            (&v2, v2_id, (7..8).map(v2_event).collect()),
        ],
    )
    .await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 7)
        .await;
    let rows = t
        .sql("SELECT id, experiment['name'] AS name, experiment['bucket'] AS bucket FROM events ORDER BY id")
        .await;
    for row in &rows {
        let id = row["id"].as_i64().expect("id");
        assert_eq!(row["name"], json!(format!("e{id}")), "{row:?}");
        let bucket = if (5..7).contains(&id) {
            json!(id)
        } else {
            Value::Null
        };
        assert_eq!(row["bucket"], bucket, "{row:?}");
    }
    assert_eq!(
        t.sql("SELECT count(*) AS n FROM dead_letters").await[0]["n"],
        json!(0)
    );
}

/// A version that uses a shared record through a Confluent schema reference validates,
/// lands and evolves like one that defines it inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_with_a_schema_reference_lands_like_an_inline_one() {
    let t = TestPipeline::start().await;
    let context = r#"{"type": "record", "name": "Context", "namespace": "shared",
        "fields": [{"name": "app_version", "type": "string"}, {"name": "consent", "type": "boolean"}]}"#;
    let answer = t
        .http
        .post(format!(
            "{}/subjects/shared-context/versions",
            t.pipeline.registry_url()
        ))
        .json(&json!({ "schema": context }))
        .send()
        .await
        .expect("registry answers");
    assert!(answer.status().is_success());
    let v2 =
        raw_with(r#"{"name": "context", "type": ["null", "shared.Context"], "default": null}"#);
    let answer: Value = t
        .http
        .post(format!(
            "{}/subjects/{}/versions",
            t.pipeline.registry_url(),
            value_subject(RAW_TOPIC)
        ))
        .json(&json!({
            "schema": v2,
            "references": [{"name": "shared.Context", "subject": "shared-context", "version": 1}]
        }))
        .send()
        .await
        .expect("registry answers")
        .json()
        .await
        .expect("json");
    assert!(answer["id"].is_u64(), "{answer}");
    let event = event_with(
        1,
        json!({"context": {"app_version": "2.3.1", "consent": true}}),
    );
    let wrong = event_with(2, json!({"context": {"app_version": 7, "consent": true}}));
    let answer = json_body(
        t.collect(serde_json::to_vec(&[event, wrong]).expect("json"))
            .await,
    )
    .await;
    assert_eq!(
        (
            answer["valid_count"].clone(),
            answer["invalid_count"].clone()
        ),
        (json!(1), json!(1)),
        "{answer}"
    );
    t.wait_for_count("SELECT count(*) AS n FROM events", 1)
        .await;
    t.wait_for_count("SELECT count(*) AS n FROM invalid_events", 1)
        .await;
    let rows = t.sql("SELECT context FROM events").await;
    assert_eq!(
        rows[0]["context"],
        json!({"app_version": "2.3.1", "consent": true})
    );
    let reasons = t.sql("SELECT reason FROM invalid_events").await;
    let reason = reasons[0]["reason"].as_str().expect("reason");
    assert!(reason.contains("event.context.app_version"), "{reason}");
}
