use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::Value;
use deltalake::arrow::array::{
    Array, AsArray, Decimal128Array, Float64Array, Int64Array, MapArray, StringArray,
    TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{
    DataType, Field, Fields, Int64Type, Schema as ArrowSchema, TimeUnit,
};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};

use super::*;
use crate::TableKind;

const RAW: &str = include_str!("../../../event/schemas/acme.clickstream.raw.events.avsc");

fn parse(text: &str) -> Schema {
    Schema::parse_str(text).expect("schema parses")
}

/// The raw schema with `extra` fields appended to `event`.
fn evolved(extra: &str) -> Schema {
    let text = RAW.replace(
        r#"{"name": "position", "type": ["null", "long"], "default": null}"#,
        &format!(r#"{{"name": "position", "type": ["null", "long"], "default": null}}, {extra}"#),
    );
    parse(&text)
}

fn version(version: u32, id: u32, schema: &Schema) -> SubjectVersion {
    SubjectVersion {
        version,
        id,
        schema: Arc::new(schema.clone()),
    }
}

fn mapped(type_json: &str) -> Option<DataType> {
    data_type(&parse(type_json))
}

#[test]
fn maps_every_avro_type_as_the_architecture_table_says() {
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let cases: Vec<(&str, Option<DataType>)> = vec![
        (r#""null""#, None),
        (r#""boolean""#, Some(DataType::Boolean)),
        (r#""int""#, Some(DataType::Int64)),
        (r#""long""#, Some(DataType::Int64)),
        (r#""float""#, Some(DataType::Float64)),
        (r#""double""#, Some(DataType::Float64)),
        (r#""string""#, Some(DataType::Utf8)),
        (r#""bytes""#, Some(DataType::Binary)),
        (
            r#"{"type":"fixed","name":"F","size":4}"#,
            Some(DataType::Binary),
        ),
        (
            r#"{"type":"enum","name":"E","symbols":["A","B"]}"#,
            Some(DataType::Utf8),
        ),
        (
            r#"{"type":"string","logicalType":"uuid"}"#,
            Some(DataType::Utf8),
        ),
        (
            r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}"#,
            Some(DataType::Decimal128(10, 2)),
        ),
        (
            r#"{"type":"bytes","logicalType":"decimal","precision":40,"scale":2}"#,
            Some(DataType::Utf8),
        ),
        (
            r#"{"type":"int","logicalType":"date"}"#,
            Some(DataType::Date32),
        ),
        (
            r#"{"type":"long","logicalType":"timestamp-millis"}"#,
            Some(utc.clone()),
        ),
        (
            r#"{"type":"long","logicalType":"timestamp-micros"}"#,
            Some(utc),
        ),
        (
            r#"{"type":"long","logicalType":"local-timestamp-millis"}"#,
            Some(DataType::Int64),
        ),
        (
            r#"{"type":"int","logicalType":"time-millis"}"#,
            Some(DataType::Int64),
        ),
        (
            r#"{"type":"array","items":"string"}"#,
            Some(DataType::List(Arc::new(Field::new(
                "element",
                DataType::Utf8,
                true,
            )))),
        ),
        (r#"["null","double"]"#, Some(DataType::Float64)),
        (
            r#"["null","long","string"]"#,
            Some(DataType::Struct(Fields::from(vec![
                Field::new("long", DataType::Int64, true),
                Field::new("string", DataType::Utf8, true),
            ]))),
        ),
        (
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"n","type":"null"}]}"#,
            Some(DataType::Struct(Fields::from(vec![Field::new(
                "a",
                DataType::Int64,
                true,
            )]))),
        ),
    ];
    for (avro, expected) in cases {
        assert_eq!(mapped(avro), expected, "{avro}");
    }
    let map = mapped(r#"{"type":"map","values":"long"}"#).expect("a type");
    let DataType::Map(entries, false) = &map else {
        panic!("{map}")
    };
    assert_eq!(entries.name(), "key_value");
    // A recursive type is kept as JSON text.
    let list = mapped(
        r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"]}]}"#,
    );
    let Some(DataType::Struct(fields)) = list else {
        panic!("{list:?}")
    };
    assert_eq!(fields[1].data_type(), &DataType::Utf8);
}

/// What the lake builds is what Delta hands back: no type changes on the way through the
/// kernel, so batches match the table after it evolved.
#[test]
fn every_mapped_type_survives_the_delta_round_trip() {
    let types = [
        r#""long""#,
        r#""bytes""#,
        r#"{"type":"bytes","logicalType":"decimal","precision":38,"scale":9}"#,
        r#"{"type":"int","logicalType":"date"}"#,
        r#"{"type":"long","logicalType":"timestamp-millis"}"#,
        r#"{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}"#,
        r#"{"type":"map","values":{"type":"array","items":"double"}}"#,
        r#"["null","long","string",{"type":"enum","name":"E","symbols":["A"]}]"#,
        r#"{"type":"fixed","name":"D","size":12,"logicalType":"duration"}"#,
    ];
    let fields: Vec<Field> = types
        .iter()
        .enumerate()
        .map(|(i, t)| Field::new(format!("c{i}"), mapped(t).expect(t), true))
        .collect();
    let arrow = ArrowSchema::new(fields);
    let kernel: StructType = (&arrow).try_into_kernel().expect("to delta");
    let back: ArrowSchema = (&kernel).try_into_arrow().expect("to arrow");
    assert_eq!(back, arrow);
}

#[test]
fn the_seed_schema_has_no_user_columns() {
    let raw = parse(RAW);
    let plan = WriterPlan::new(
        &TableKind::Events.arrow_schema(),
        &[version(1, 1, &raw)],
        1,
        &raw,
    )
    .expect("plan");
    assert!(plan.columns().is_empty());
    assert_eq!(SEED_PATHS.len(), 12);
}

#[test]
fn new_fields_become_named_nullable_columns_with_their_path() {
    let raw = parse(RAW);
    let v2 = evolved(
        r#"{"name": "price", "type": ["null", "double"], "default": null},
           {"name": "session_id", "type": ["null", "string"], "default": null}"#,
    );
    let history = [version(1, 1, &raw), version(2, 7, &v2)];
    let plan = WriterPlan::new(&TableKind::Events.arrow_schema(), &history, 7, &v2).expect("plan");
    let names: Vec<&str> = plan
        .columns()
        .iter()
        .map(|c| c.field.name().as_str())
        .collect();
    // `session_id` is an enrichment column already: the path names the user's.
    assert_eq!(names, ["price", "event__session_id"]);
    let price = &plan.columns()[0].field;
    assert!(price.is_nullable());
    assert_eq!(price.metadata()[AVRO_PATH_KEY], "event.price");
    assert_eq!(price.metadata()[SCHEMA_ID_KEY], "7");
}

#[test]
fn the_earliest_version_decides_a_columns_type_and_later_ones_conflict() {
    let raw = parse(RAW);
    let v2 = evolved(r#"{"name": "qty", "type": ["null", "long"], "default": null}"#);
    let v3 = evolved(r#"{"name": "qty", "type": ["null", "double"], "default": null}"#);
    let history = [version(3, 9, &v3), version(1, 1, &raw), version(2, 5, &v2)];
    let table = TableKind::Events.arrow_schema();
    assert!(WriterPlan::new(&table, &history, 5, &v2).is_ok());
    let reason = WriterPlan::new(&table, &history, 9, &v3).expect_err("conflict");
    assert!(reason.contains("field 'event.qty'"), "{reason}");
    assert!(reason.contains("from schema 5"), "{reason}");
}

#[test]
fn a_committed_column_wins_over_the_history() {
    let v3 = evolved(r#"{"name": "qty", "type": ["null", "double"], "default": null}"#);
    let mut fields = TableKind::Events.arrow_schema().fields().to_vec();
    let committed = Field::new("qty", DataType::Float64, true)
        .with_metadata([(AVRO_PATH_KEY.to_string(), "event.qty".to_string())].into());
    fields.push(Arc::new(committed));
    let table = ArrowSchema::new(fields);
    let v2 = evolved(r#"{"name": "qty", "type": ["null", "long"], "default": null}"#);
    let history = [version(2, 5, &v2), version(3, 9, &v3)];
    assert!(WriterPlan::new(&table, &history, 9, &v3).is_ok());
    assert!(WriterPlan::new(&table, &history, 5, &v2).is_err());
}

fn record(schema: &Schema, fields: Vec<(&str, Value)>) -> Value {
    let Schema::Record(top) = schema else {
        panic!("record")
    };
    let mut event: Vec<(String, Value)> = vec![
        ("user_agent".into(), Value::String("ua".into())),
        ("ip".into(), Value::String("1.2.3.4".into())),
        ("customer_id".into(), Value::Union(0, Box::new(Value::Null))),
        (
            "timestamp".into(),
            Value::String("2024-01-01T00:00:00Z".into()),
        ),
    ];
    for name in ["page", "query", "product", "referrer", "position"] {
        event.push((name.into(), Value::Union(0, Box::new(Value::Null))));
    }
    event.extend(fields.into_iter().map(|(n, v)| (n.to_string(), v)));
    assert_eq!(top.fields.len(), 4);
    Value::Record(vec![
        ("id".into(), Value::Long(1)),
        ("type".into(), Value::String("page_view".into())),
        ("package_id".into(), Value::Union(0, Box::new(Value::Null))),
        ("event".into(), Value::Record(event)),
    ])
}

#[test]
fn builds_nested_values_and_nulls_for_records_without_the_field() {
    let v2 = evolved(
        r#"{"name": "price", "type": ["null", "double"], "default": null},
           {"name": "placed", "type": ["null", {"type":"long","logicalType":"timestamp-millis"}], "default": null},
           {"name": "amount", "type": ["null", {"type":"bytes","logicalType":"decimal","precision":9,"scale":2}], "default": null},
           {"name": "tags", "type": ["null", {"type":"map","values":"long"}], "default": null},
           {"name": "choice", "type": ["null", "long", "string"], "default": null}"#,
    );
    let raw = parse(RAW);
    let history = [version(1, 1, &raw), version(2, 2, &v2)];
    let plan = WriterPlan::new(&TableKind::Events.arrow_schema(), &history, 2, &v2).expect("plan");
    let value = record(
        &v2,
        vec![
            ("price", Value::Union(1, Box::new(Value::Double(12.5)))),
            (
                "placed",
                Value::Union(1, Box::new(Value::TimestampMillis(1_700_000_000_123))),
            ),
            (
                "amount",
                Value::Union(
                    1,
                    Box::new(Value::Decimal(apache_avro::Decimal::from(vec![0x04, 0xD2]))),
                ),
            ),
            (
                "tags",
                Value::Union(
                    1,
                    Box::new(Value::Map(
                        [
                            ("b".to_string(), Value::Long(2)),
                            ("a".to_string(), Value::Long(1)),
                        ]
                        .into(),
                    )),
                ),
            ),
            (
                "choice",
                Value::Union(2, Box::new(Value::String("x".into()))),
            ),
        ],
    );
    plan.check(&value).expect("storable");
    let mut columns = crate::rows::UserColumnsForTests::default();
    columns.push(0, Some((&plan, &value)));
    columns.push(1, None);
    let built = columns.finish();
    let column = |name: &str| {
        built
            .iter()
            .find(|(f, _)| f.name() == name)
            .map(|(_, a)| a.clone())
            .expect(name)
    };
    let price = column("price");
    let price: &Float64Array = price.as_primitive();
    assert_eq!(price.value(0), 12.5);
    assert!(price.is_null(1));
    let placed = column("placed");
    let placed: &TimestampMicrosecondArray = placed.as_primitive();
    assert_eq!(placed.value(0), 1_700_000_000_123_000);
    let amount = column("amount");
    let amount: &Decimal128Array = amount.as_primitive();
    assert_eq!(amount.value_as_string(0), "12.34");
    let tags = column("tags");
    let tags: &MapArray = tags.as_map();
    let keys: &StringArray = tags.keys().as_string();
    assert_eq!(keys.iter().flatten().collect::<Vec<_>>(), ["a", "b"]);
    let values: &Int64Array = tags.values().as_primitive::<Int64Type>();
    assert_eq!(values.values().to_vec(), vec![1, 2]);
    assert!(tags.is_null(1));
    let choice = column("choice");
    let choice = choice.as_struct();
    assert!(choice.column(0).is_null(0));
    assert_eq!(choice.column(1).as_string::<i32>().value(0), "x");
}

#[test]
fn a_value_out_of_its_columns_range_is_refused_naming_the_field() {
    let v2 = evolved(
        r#"{"name": "placed", "type": ["null", {"type":"long","logicalType":"timestamp-millis"}], "default": null}"#,
    );
    let plan = WriterPlan::new(
        &TableKind::Events.arrow_schema(),
        &[version(2, 2, &v2)],
        2,
        &v2,
    )
    .expect("plan");
    let value = record(
        &v2,
        vec![(
            "placed",
            Value::Union(1, Box::new(Value::TimestampMillis(i64::MAX))),
        )],
    );
    let reason = plan.check(&value).expect_err("out of range");
    assert!(reason.starts_with("field 'event.placed'"), "{reason}");
}

#[test]
fn a_version_adding_fields_inside_a_record_grows_the_struct_column() {
    let raw = parse(RAW);
    let v2 = evolved(
        r#"{"name": "experiment", "type": ["null", {"type": "record", "name": "Experiment",
            "fields": [{"name": "name", "type": "string"}]}], "default": null}"#,
    );
    let v3 = evolved(
        r#"{"name": "experiment", "type": ["null", {"type": "record", "name": "Experiment",
            "fields": [{"name": "name", "type": "string"},
                       {"name": "bucket", "type": ["null", "long"], "default": null}]}], "default": null}"#,
    );
    let history = [version(1, 1, &raw), version(2, 2, &v2), version(3, 3, &v3)];
    let table = TableKind::Events.arrow_schema();
    let grown = DataType::Struct(Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("bucket", DataType::Int64, true),
    ]));
    for (id, schema) in [(2, &v2), (3, &v3)] {
        let plan = WriterPlan::new(&table, &history, id, schema).expect("plan");
        assert_eq!(plan.columns()[0].field.data_type(), &grown, "schema {id}");
    }
    // A struct column grows through lists and maps too, and a leaf of another type is
    // still a conflict.
    let list = |t: DataType| mapping::list_type(t);
    let narrow = DataType::Struct(Fields::from(vec![Field::new("name", DataType::Utf8, true)]));
    assert_eq!(
        merge_types(&list(narrow.clone()), &list(grown.clone())),
        Some(list(grown.clone()))
    );
    assert!(holds(&grown, &narrow));
    assert!(!holds(&narrow, &grown));
    let clash = DataType::Struct(Fields::from(vec![Field::new(
        "name",
        DataType::Int64,
        true,
    )]));
    assert_eq!(merge_types(&narrow, &clash), None);
}

#[test]
fn a_narrow_struct_column_widens_with_nulls_in_the_new_children() {
    let narrow = DataType::Struct(Fields::from(vec![Field::new("a", DataType::Int64, true)]));
    let wide = DataType::Struct(Fields::from(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]));
    let mut builder = ColumnBuilder::new(&mapping::list_type(narrow));
    let schema = parse(
        r#"{"type":"array","items":{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}}"#,
    );
    let names = Names::new();
    let scope = Scope { names: &names };
    builder.append(
        &scope,
        &schema,
        &Value::Array(vec![Value::Record(vec![("a".into(), Value::Long(7))])]),
    );
    builder.append_null();
    let array = builder.finish();
    let widened = widen(&array, &mapping::list_type(wide)).expect("widens");
    let list = widened.as_list::<i32>();
    assert!(list.is_null(1));
    let items = list.value(0);
    let items = items.as_struct();
    assert_eq!(items.column(0).as_primitive::<Int64Type>().value(0), 7);
    assert!(items.column(1).is_null(0));
}
