//! The Segment layout: which `segment_events` columns the Segment schema's fields land in.

use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::Value;
use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::{DataType, Field, Fields, Float64Type};

use super::*;
use crate::TableKind;

const SEGMENT: &str = include_str!("../../../segment/schemas/acme.clickstream.segment.events.avsc");

/// The context record's last field, where a later version adds its own.
const CONTEXT_JSON: &str = r#"{"name": "json", "type": ["null", "string"], "default": null, "doc": "the whole context as sent, as JSON text, but for ip (in its own column, where privacy settings apply)"}"#;
/// The page record's last field.
const PAGE_SEARCH: &str = r#"{"name": "search", "type": ["null", "string"], "default": null}"#;
/// The top level's last field.
const EXTRA: &str = r#"{"name": "extra", "type": ["null", "string"], "default": null, "doc": "top-level fields with no column of their own (e.g. _metadata), as a JSON object"}"#;

fn schema(text: &str) -> Schema {
    Schema::parse_str(text).expect("schema parses")
}

/// The bundled schema with `replacements` (`(after, added)`: `added` follows `after`).
fn evolved(replacements: &[(&str, &str)]) -> Schema {
    let mut text = SEGMENT.to_string();
    for (after, added) in replacements {
        assert!(text.contains(after), "{after}");
        text = text.replace(after, &format!("{after}, {added}"));
    }
    schema(&text)
}

fn version(version: u32, id: u32, schema: &Schema) -> SubjectVersion {
    SubjectVersion {
        version,
        id,
        schema: Arc::new(schema.clone()),
    }
}

fn plan(history: &[SubjectVersion], id: u32) -> WriterPlan {
    let writer = &history.iter().find(|v| v.id == id).expect("writer").schema;
    let table = TableKind::SegmentEvents.arrow_schema();
    WriterPlan::for_layout(&Layout::SEGMENT, &table, history, id, writer).expect("plan")
}

fn text_fields(names: &[&str]) -> DataType {
    DataType::Struct(Fields::from(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

const PAGE: [&str; 5] = ["url", "path", "referrer", "title", "search"];

#[test]
fn the_bundled_schema_plans_every_field_beyond_the_seed_as_its_own_column() {
    let bundled = schema(SEGMENT);
    let plan = plan(&[version(1, 11, &bundled)], 11);
    let columns: Vec<(&str, &str, &DataType)> = plan
        .columns()
        .iter()
        .map(|c| {
            (
                c.field.name().as_str(),
                c.path.as_str(),
                c.field.data_type(),
            )
        })
        .collect();
    let text = DataType::Utf8;
    let time = mapping::timestamp_type();
    let page = text_fields(&PAGE);
    let campaign = text_fields(&["name", "source", "medium", "term", "content"]);
    let library = text_fields(&["name", "version"]);
    let expected: Vec<(&str, &str, &DataType)> = vec![
        ("event", "event", &text),
        ("name", "name", &text),
        ("category", "category", &text),
        ("user_id", "user_id", &text),
        ("anonymous_id", "anonymous_id", &text),
        ("previous_id", "previous_id", &text),
        ("group_id", "group_id", &text),
        ("original_timestamp", "original_timestamp", &time),
        ("sent_at", "sent_at", &time),
        ("received_at", "received_at", &time),
        ("properties", "properties", &text),
        ("traits", "traits", &text),
        ("context_locale", "context.locale", &text),
        ("context_timezone", "context.timezone", &text),
        ("context_page", "context.page", &page),
        ("context_campaign", "context.campaign", &campaign),
        ("context_library", "context.library", &library),
        ("context_json", "context.json", &text),
        ("integrations", "integrations", &text),
        ("extra", "extra", &text),
    ];
    assert_eq!(columns, expected);
    for column in plan.columns() {
        assert!(column.field.is_nullable(), "{}", column.path);
        assert_eq!(column.field.metadata()[AVRO_PATH_KEY], column.path);
        assert_eq!(column.field.metadata()[SCHEMA_ID_KEY], "11");
    }
}

#[test]
fn the_seed_fields_of_the_context_have_no_user_column() {
    let bundled = schema(SEGMENT);
    let plan = plan(&[version(1, 1, &bundled)], 1);
    for column in plan.columns() {
        assert!(
            ![
                "context.ip",
                "context.user_agent",
                "message_id",
                "type",
                "timestamp"
            ]
            .contains(&column.path.as_str()),
            "{}",
            column.path
        );
        assert!(
            !column.field.name().contains("ip"),
            "{}",
            column.field.name()
        );
    }
    // The clickstream layout plans the same schema differently: nothing is taken from it.
    let clickstream = WriterPlan::new(
        &TableKind::Events.arrow_schema(),
        &[version(1, 1, &bundled)],
        1,
        &bundled,
    )
    .expect("plan");
    assert!(clickstream.columns().iter().any(|c| c.path == "context"));
}

#[test]
fn a_later_version_adds_its_top_level_field_and_grows_the_page_struct() {
    let v1 = schema(SEGMENT);
    let revenue = r#"{"name": "revenue", "type": ["null", "double"], "default": null}"#;
    let hash = r#"{"name": "hash", "type": ["null", "string"], "default": null}"#;
    let v2 = evolved(&[(EXTRA, revenue), (PAGE_SEARCH, hash)]);
    let history = [version(1, 1, &v1), version(2, 5, &v2)];
    let grown = text_fields(&["url", "path", "referrer", "title", "search", "hash"]);
    for id in [1, 5] {
        let plan = plan(&history, id);
        let page = plan
            .columns()
            .iter()
            .find(|c| c.path == "context.page")
            .expect("page");
        assert_eq!(page.field.data_type(), &grown, "schema {id}");
        assert_eq!(page.field.metadata()[SCHEMA_ID_KEY], "1");
    }
    let v2_plan = plan(&history, 5);
    let last = v2_plan.columns().last().expect("a column");
    assert_eq!(
        (last.field.name().as_str(), last.path.as_str()),
        ("revenue", "revenue")
    );
    assert_eq!(last.field.data_type(), &DataType::Float64);

    let changes = columns_by_version_for(&Layout::SEGMENT, &history);
    let v2_changes = changes[1].changes.as_ref().expect("plans");
    let added: Vec<&str> = v2_changes
        .added
        .iter()
        .map(|c| c.field.name().as_str())
        .collect();
    assert_eq!(added, ["revenue"]);
    let [(widened, before)] = v2_changes.widened.as_slice() else {
        panic!("one grown column: {:?}", v2_changes.widened);
    };
    assert_eq!(widened.field.name(), "context_page");
    assert_eq!(before, &text_fields(&PAGE));
    let v1_changes = changes[0].changes.as_ref().expect("plans");
    assert_eq!(v1_changes.added.len(), 20);
}

#[test]
fn taken_names_get_the_path_with_double_underscores() {
    // A top-level `context_device` before `context`, a context field `device` and a
    // top-level `ip` (a seed column's name).
    let device = r#"{"name": "context_device", "type": ["null", "string"], "default": null}"#;
    let inner = r#"{"name": "device", "type": ["null", "string"], "default": null}"#;
    let ip = r#"{"name": "ip", "type": ["null", "string"], "default": null}"#;
    let v2 = evolved(&[
        (
            r#"{"name": "traits", "type": ["null", "string"], "default": null, "doc": "identify, group: traits, as JSON text"}"#,
            device,
        ),
        (CONTEXT_JSON, inner),
        (EXTRA, ip),
    ]);
    let plan = plan(&[version(1, 2, &v2)], 2);
    let named = |path: &str| {
        plan.columns()
            .iter()
            .find(|c| c.path == path)
            .map(|c| c.field.name().clone())
            .expect(path)
    };
    assert_eq!(named("context_device"), "context_device");
    assert_eq!(named("context.device"), "context__device");
    assert_eq!(named("ip"), "raw__ip");
}

/// A Segment call of the bundled schema, as ingest writes it.
fn segment_call(schema: &Schema) -> Value {
    let json = serde_json::json!({
        "message_id": "ajs-1", "type": "page", "event": null, "name": "Home",
        "category": null, "user_id": "u-7", "anonymous_id": "a-3", "previous_id": null,
        "group_id": null, "timestamp": 1_714_564_800_123_i64,
        "original_timestamp": 1_714_564_800_000_i64, "sent_at": null,
        "received_at": 1_714_564_801_000_i64,
        "properties": "{\"plan\":\"pro\"}", "traits": null,
        "context": {
            "ip": "10.0.0.1", "user_agent": "Mozilla/5.0", "locale": "en-US",
            "timezone": null,
            "page": {"url": "https://acme.test/?a=1", "path": "/", "referrer": null,
                     "title": "Acme", "search": "?a=1"},
            "campaign": null, "library": {"name": "analytics.js", "version": "5.0"},
            "json": "{\"locale\":\"en-US\"}"
        },
        "integrations": null, "extra": null
    });
    json_value(json).resolve(schema).expect("a conforming call")
}

/// A JSON value as a schema-less Avro value, for [`Value::resolve`].
fn json_value(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => n.as_i64().map_or_else(
            || Value::Double(n.as_f64().unwrap_or_default()),
            Value::Long,
        ),
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => {
            Value::Array(items.into_iter().map(json_value).collect())
        }
        serde_json::Value::Object(map) => {
            Value::Map(map.into_iter().map(|(k, v)| (k, json_value(v))).collect())
        }
    }
}

#[test]
fn a_call_fills_its_user_columns_and_a_later_versions_column_is_null() {
    let v1 = schema(SEGMENT);
    let revenue = r#"{"name": "revenue", "type": ["null", "double"], "default": null}"#;
    let v2 = evolved(&[(EXTRA, revenue)]);
    let history = [version(1, 1, &v1), version(2, 2, &v2)];
    let old = plan(&history, 1);
    let new = plan(&history, 2);
    let call = segment_call(&v1);
    let Value::Record(mut fields) = segment_call(&v2) else {
        panic!("a record")
    };
    fields
        .iter_mut()
        .find(|(name, _)| name == "revenue")
        .expect("revenue")
        .1 = Value::Union(1, Box::new(Value::Double(9.5)));
    let later = Value::Record(fields);
    old.check(&call).expect("storable");
    let mut columns = crate::rows::UserColumnsForTests::default();
    columns.push(0, Some((&old, &call)));
    columns.push(1, Some((&new, &later)));
    let built = columns.finish();
    let column = |name: &str| {
        built
            .iter()
            .find(|(f, _)| f.name() == name)
            .map(|(_, a)| a.clone())
            .expect(name)
    };
    assert_eq!(column("name").as_string::<i32>().value(0), "Home");
    assert_eq!(
        column("context_locale").as_string::<i32>().value(1),
        "en-US"
    );
    let page = column("context_page");
    let url = page.as_struct().column_by_name("url").expect("url").clone();
    assert_eq!(url.as_string::<i32>().value(0), "https://acme.test/?a=1");
    let revenue = column("revenue");
    assert!(revenue.is_null(0));
    assert_eq!(revenue.as_primitive::<Float64Type>().value(1), 9.5);
}
