//! `events` evolving with a site's schema: new columns land in the same commit as the
//! rows that first carry them, whoever else writes the table.

use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::Value;
use clickstream_lake::avro::{SubjectVersion, WriterPlan};
use clickstream_lake::{AppTxn, EventRow, EventsBuilder, Lake, LakeError, RecordBatch, TableKind};
use clickstream_secret::Settings;
use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::Float64Type;
use deltalake::datafusion::prelude::SessionContext;

use crate::common::{count_and_sum, events, root_of, temp_lake};

const RAW: &str = include_str!("../../../event/schemas/acme.clickstream.raw.events.avsc");

/// The raw schema with `extra` appended to the `event` record.
pub(crate) fn evolved(extra: &str) -> Schema {
    let text = RAW.replace(
        r#"{"name": "position", "type": ["null", "long"], "default": null}"#,
        &format!(r#"{{"name": "position", "type": ["null", "long"], "default": null}}, {extra}"#),
    );
    Schema::parse_str(&text).expect("schema")
}

pub(crate) const V2_FIELDS: &str = r#"
    {"name": "price", "type": ["null", "double"], "default": null},
    {"name": "cart", "type": ["null", {"type": "array", "items": {"type": "record", "name": "Line",
        "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}], "default": null},
    {"name": "attrs", "type": ["null", {"type": "map", "values": "string"}], "default": null},
    {"name": "tier", "type": ["null", {"type": "enum", "name": "Tier", "symbols": ["FREE", "PRO"]}], "default": null},
    {"name": "placed_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null}
"#;

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

/// A v2 record with `price`, resolved from JSON the way the processor gets it decoded.
fn v2_record(schema: &Schema, id: i64, price: f64) -> Value {
    let json = serde_json::json!({
        "id": id, "type": "purchase", "package_id": null,
        "event": {
            "user_agent": "Mozilla/5.0", "ip": "10.0.0.1", "customer_id": 3,
            "timestamp": "2024-03-01T10:00:00Z", "page": null, "query": null, "product": null,
            "referrer": null, "position": null,
            "price": price,
            "cart": [{"sku": "A-1", "qty": 2}],
            "attrs": {"color": "red"},
            "tier": "PRO",
            "placed_at": 1_709_287_200_000_i64,
        }
    });
    avro(json).resolve(schema).expect("conforming record")
}

/// An event row `id` written with schema `schema_id`, its user fields from `user`.
fn row<'a>(id: i64, schema_id: i32, user: (&'a WriterPlan, &'a Value)) -> EventRow<'a> {
    EventRow {
        id,
        event_type: "t",
        package_id: None,
        user_agent: "u",
        ip: "i",
        customer_id: None,
        timestamp: "2024-03-01T10:00:00Z",
        page: None,
        query: None,
        product: None,
        referrer: None,
        position: None,
        correlation_id: "c",
        source: None,
        schema_id,
        log_timestamp_ms: 0,
        source_partition: 0,
        source_offset: id,
        ingested_at_ms: 0,
        enrichment: Default::default(),
        user: Some(user),
    }
}

/// A batch of v2 events `ids` carrying their user columns.
pub(crate) fn v2_batch(
    table: &arrow_schema_ref::SchemaRef,
    schema: &Schema,
    ids: std::ops::Range<i64>,
) -> RecordBatch {
    let history = [SubjectVersion {
        version: 2,
        id: 2,
        schema: Arc::new(schema.clone()),
    }];
    let plan = WriterPlan::new(table, &history, 2, schema).expect("plan");
    let mut builder = EventsBuilder::new();
    for id in ids {
        let value = v2_record(schema, id, id as f64 + 0.5);
        builder.push(&row(id, 2, (&plan, &value)));
    }
    builder.finish()
}

mod arrow_schema_ref {
    pub use deltalake::arrow::datatypes::SchemaRef;
}

pub(crate) async fn rows(table: &clickstream_lake::LakeTable, sql: &str) -> Vec<RecordBatch> {
    let ctx = SessionContext::new();
    let delta = table.delta_table();
    delta
        .update_datafusion_session(&ctx.state())
        .expect("register store");
    let provider = delta.table_provider().await.expect("table provider");
    ctx.register_table("events", provider).expect("register");
    ctx.sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run")
}

pub(crate) fn commit_actions(dir: &std::path::Path, version: i64) -> Vec<String> {
    let path = dir.join(format!(
        "clickstream-data/events/_delta_log/{version:020}.json"
    ));
    std::fs::read_to_string(path)
        .expect("commit file")
        .lines()
        .filter_map(|line| {
            let action: serde_json::Value = serde_json::from_str(line).ok()?;
            action.as_object()?.keys().next().cloned()
        })
        .collect()
}

/// Appends v1 events 0..3, then v2 events 3..6 (which add the v2 columns); returns the
/// version of the second commit.
async fn v1_then_v2(table: &mut clickstream_lake::LakeTable) -> i64 {
    table
        .append(
            vec![events(0..3, "2024-03-01T09:00:00Z")],
            &[AppTxn::new("g:raw:0", 3)],
        )
        .await
        .expect("v1 rows");
    let schema = table.arrow_schema().expect("schema");
    table
        .append(
            vec![v2_batch(&schema, &evolved(V2_FIELDS), 3..6)],
            &[AppTxn::new("g:raw:0", 6)],
        )
        .await
        .expect("v2 rows")
}

#[tokio::test]
async fn new_columns_land_in_the_same_commit_as_their_first_rows() {
    let (dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    let version = v1_then_v2(&mut table).await;
    let actions = commit_actions(dir.path(), version);
    for kind in ["metaData", "add", "txn"] {
        assert!(actions.iter().any(|a| a == kind), "{kind} in {actions:?}");
    }

    let batches = rows(
        &table,
        "SELECT id, price, cart[1]['sku'] AS sku, cart[1]['qty'] AS qty, attrs['color'] AS color, \
         tier, CAST(placed_at AS VARCHAR) AS placed FROM events ORDER BY id",
    )
    .await;
    let batch =
        deltalake::arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
    assert_eq!(batch.num_rows(), 6);
    let price = batch.column(1).as_primitive::<Float64Type>();
    let text = |column: usize, row: usize| {
        let array = batch.column(column);
        (!array.is_null(row)).then(|| {
            deltalake::arrow::util::display::array_value_to_string(array, row).expect("display")
        })
    };
    for row in 0..3 {
        assert!(price.is_null(row), "v1 row {row}");
        assert_eq!((text(2, row), text(5, row)), (None, None), "v1 row {row}");
    }
    for row in 3..6 {
        assert_eq!(price.value(row), row as f64 + 0.5);
        assert_eq!(text(2, row).as_deref(), Some("A-1"));
        assert_eq!(text(3, row).as_deref(), Some("2"));
        assert_eq!(text(4, row).as_deref(), Some("red"));
        assert_eq!(text(5, row).as_deref(), Some("PRO"));
    }
    let placed = text(6, 3).expect("placed_at");
    assert!(placed.starts_with("2024-03-01T10:00:00"), "{placed}");

    // The evolved table opens again, and keeps its columns.
    drop(table);
    let lake = Lake::open(&root_of(dir.path()), &Settings::new())
        .await
        .expect("reopen");
    let table = lake.table(TableKind::Events).await.expect("load");
    let schema = table.arrow_schema().expect("schema");
    assert!(schema.field_with_name("cart").is_ok());
}

#[tokio::test]
async fn a_stale_writer_lands_after_another_evolved_the_table_and_adds_a_column_once() {
    let (_dir, lake) = temp_lake().await;
    let mut a = lake.table(TableKind::Events).await.expect("load a");
    let mut b = lake.table(TableKind::Events).await.expect("load b");
    let v2 = evolved(V2_FIELDS);
    let schema = a.arrow_schema().expect("schema");
    a.append(
        vec![v2_batch(&schema, &v2, 0..2)],
        &[AppTxn::new("g:raw:0", 2)],
    )
    .await
    .expect("a evolves");
    // b still has the old schema: a plain batch lands, nulls in the new columns.
    b.append(
        vec![events(2..4, "2024-03-01T09:00:00Z")],
        &[AppTxn::new("g:raw:1", 4)],
    )
    .await
    .expect("b appends on the new schema");
    // b's batch carries the same new columns: added once, not twice.
    let before = b.arrow_schema().expect("schema");
    b.append(
        vec![v2_batch(&schema, &v2, 4..6)],
        &[AppTxn::new("g:raw:1", 6)],
    )
    .await
    .expect("b appends the same columns");
    let after = b.arrow_schema().expect("schema");
    assert_eq!(before.fields().len(), after.fields().len());
    let (n, sum) = count_and_sum(&b, "id").await;
    assert_eq!((n, sum), (6, 15));
    let batches = rows(&b, "SELECT count(price) FROM events").await;
    let count = batches[0]
        .column(0)
        .as_primitive::<deltalake::arrow::datatypes::Int64Type>();
    assert_eq!(count.value(0), 4);
}

#[tokio::test]
async fn a_column_of_another_type_is_refused_and_nothing_is_written() {
    let (_dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    let v2 = evolved(r#"{"name": "price", "type": ["null", "double"], "default": null}"#);
    let schema = table.arrow_schema().expect("schema");
    table
        .append(
            vec![v2_batch(&schema, &evolved(V2_FIELDS), 0..1)],
            &[AppTxn::new("g:raw:0", 1)],
        )
        .await
        .expect("evolve");
    let _ = v2;
    let other = evolved(r#"{"name": "price", "type": ["null", "string"], "default": null}"#);
    // A plan made against the old schema (a stale view) would put a string in `price`.
    let stale = TableKind::Events.arrow_schema();
    let history = [SubjectVersion {
        version: 3,
        id: 3,
        schema: Arc::new(other.clone()),
    }];
    let plan = WriterPlan::new(&stale, &history, 3, &other).expect("plan on a stale view");
    let json = serde_json::json!({
        "id": 9, "type": "t", "package_id": null,
        "event": {"user_agent": "u", "ip": "i", "customer_id": null, "timestamp": "2024-03-01T10:00:00Z",
                  "page": null, "query": null, "product": null, "referrer": null, "position": null,
                  "price": "twelve"}
    });
    let value = avro(json).resolve(&other).expect("record");
    let mut builder = EventsBuilder::new();
    builder.push(&row(9, 3, (&plan, &value)));
    let version = table.version();
    let err = table
        .append(vec![builder.finish()], &[AppTxn::new("g:raw:0", 2)])
        .await
        .expect_err("type clash");
    assert!(matches!(err, LakeError::SchemaMismatch { .. }), "{err}");
    assert!(err.to_string().contains("price"), "{err}");
    table.refresh().await.expect("refresh");
    assert_eq!(table.version(), version);
}

#[tokio::test]
async fn optimize_after_evolution_keeps_every_value() {
    let (_dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    v1_then_v2(&mut table).await;
    table.optimize(64 * 1024 * 1024).await.expect("optimize");
    let batches = rows(
        &table,
        "SELECT sum(price), count(cart), count(*) FROM events",
    )
    .await;
    let sum = batches[0].column(0).as_primitive::<Float64Type>().value(0);
    assert_eq!(sum, 3.5 + 4.5 + 5.5);
    let carts = batches[0]
        .column(1)
        .as_primitive::<deltalake::arrow::datatypes::Int64Type>();
    assert_eq!(carts.value(0), 3);
}

const NARROW: &str = r#"{"name": "experiment", "type": ["null", {"type": "record", "name": "Experiment",
    "fields": [{"name": "name", "type": "string"}]}], "default": null}"#;
const GROWN: &str = r#"{"name": "experiment", "type": ["null", {"type": "record", "name": "Experiment",
    "fields": [{"name": "name", "type": "string"}, {"name": "bucket", "type": ["null", "long"], "default": null}]}], "default": null}"#;

/// A batch of events `ids` written with `schema`, planned against `history`, whose
/// `experiment` is `{"name": "e<id>", "bucket": id}` (bucket only where the schema has it).
fn experiment_batch(
    table: &deltalake::arrow::datatypes::SchemaRef,
    history: &[SubjectVersion],
    id: u32,
    schema: &Schema,
    ids: std::ops::Range<i64>,
) -> RecordBatch {
    let plan = WriterPlan::new(table, history, id, schema).expect("plan");
    let has_bucket = schema.canonical_form().contains("bucket");
    let values: Vec<Value> = ids
        .clone()
        .map(|event_id| {
            let mut experiment = serde_json::json!({"name": format!("e{event_id}")});
            if has_bucket {
                experiment["bucket"] = serde_json::json!(event_id);
            }
            let json = serde_json::json!({
                "id": event_id, "type": "t", "package_id": null,
                "event": {"user_agent": "u", "ip": "i", "customer_id": null,
                          "timestamp": "2024-03-01T10:00:00Z", "page": null, "query": null,
                          "product": null, "referrer": null, "position": null,
                          "experiment": experiment}
            });
            avro(json).resolve(schema).expect("record")
        })
        .collect();
    let mut builder = EventsBuilder::new();
    for (event_id, value) in ids.zip(&values) {
        builder.push(&row(event_id, id as i32, (&plan, value)));
    }
    builder.finish()
}

#[tokio::test]
async fn a_struct_column_grows_in_the_commit_of_its_first_wider_rows() {
    let (dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    let (v2, v3) = (evolved(NARROW), evolved(GROWN));
    let v2_only = [SubjectVersion {
        version: 2,
        id: 2,
        schema: Arc::new(v2.clone()),
    }];
    let both = [
        SubjectVersion {
            version: 2,
            id: 2,
            schema: Arc::new(v2.clone()),
        },
        SubjectVersion {
            version: 3,
            id: 3,
            schema: Arc::new(v3.clone()),
        },
    ];
    let schema = table.arrow_schema().expect("schema");
    table
        .append(
            vec![experiment_batch(&schema, &v2_only, 2, &v2, 0..2)],
            &[AppTxn::new("g:raw:0", 2)],
        )
        .await
        .expect("narrow struct column");
    let schema = table.arrow_schema().expect("schema");
    let version = table
        .append(
            vec![experiment_batch(&schema, &both, 3, &v3, 2..4)],
            &[AppTxn::new("g:raw:0", 4)],
        )
        .await
        .expect("the struct grows");
    assert!(
        commit_actions(dir.path(), version)
            .iter()
            .any(|a| a == "metaData")
    );
    // A writer still planning with the narrow type (before it knew v3) lands too.
    table
        .append(
            vec![experiment_batch(
                &TableKind::Events.arrow_schema(),
                &v2_only,
                2,
                &v2,
                4..6,
            )],
            &[AppTxn::new("g:raw:0", 6)],
        )
        .await
        .expect("a narrow batch widens");
    let batches = rows(
        &table,
        "SELECT id, experiment['name'] AS name, experiment['bucket'] AS bucket FROM events ORDER BY id",
    )
    .await;
    let batch =
        deltalake::arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
    let text = |column: usize, row: usize| {
        let array = batch.column(column);
        (!array.is_null(row)).then(|| {
            deltalake::arrow::util::display::array_value_to_string(array, row).expect("display")
        })
    };
    for row in 0..6 {
        assert_eq!(text(1, row), Some(format!("e{row}")));
        let bucket = (2..4).contains(&row).then(|| row.to_string());
        assert_eq!(text(2, row), bucket, "row {row}");
    }
}
