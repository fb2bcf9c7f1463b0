//! Property tests over random schemas: any JSON that conforms to a random Avro schema is
//! accepted, and validate → encode → decode gives back exactly the validated value; JSON
//! with one leaf of the wrong kind is refused with a reason naming that leaf; and the
//! decoded record lands in the lake's Arrow columns unchanged.

use apache_avro::Schema;
use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};

use super::EventValidator;

/// A schema shape; names are given when it is written out.
#[derive(Debug, Clone)]
enum Shape {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    String,
    Bytes,
    Enum(usize),
    Fixed(usize),
    Decimal(usize, usize),
    Date,
    TimestampMillis,
    Uuid,
    Array(Box<Shape>),
    Map(Box<Shape>),
    Nullable(Box<Shape>),
    /// Fields; `true` marks an optional one (`["null", T]`, default null, may be absent).
    Record(Vec<(Shape, bool)>),
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Boolean),
        Just(Shape::Int),
        Just(Shape::Long),
        Just(Shape::Float),
        Just(Shape::Double),
        Just(Shape::String),
        Just(Shape::Bytes),
        (1usize..4).prop_map(Shape::Enum),
        (1usize..9).prop_map(Shape::Fixed),
        (1usize..18)
            .prop_flat_map(|p| (Just(p), 0..=p))
            .prop_map(|(p, s)| Shape::Decimal(p, s)),
        Just(Shape::Date),
        Just(Shape::TimestampMillis),
        Just(Shape::Uuid),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| Shape::Array(Box::new(s))),
            inner.clone().prop_map(|s| Shape::Map(Box::new(s))),
            inner.clone().prop_map(|s| Shape::Nullable(Box::new(s))),
            prop::collection::vec((inner, any::<bool>()), 1..5).prop_map(Shape::Record),
        ]
    })
}

/// The top level is always a record.
fn top() -> impl Strategy<Value = Shape> {
    prop::collection::vec((shape(), any::<bool>()), 1..6).prop_map(Shape::Record)
}

/// The Avro schema JSON of `shape`; `n` numbers the named types.
fn schema_json(shape: &Shape, n: &mut usize) -> Json {
    *n += 1;
    let name = format!("N{n}");
    match shape {
        Shape::Boolean => json!("boolean"),
        Shape::Int => json!("int"),
        Shape::Long => json!("long"),
        Shape::Float => json!("float"),
        Shape::Double => json!("double"),
        Shape::String => json!("string"),
        Shape::Bytes => json!("bytes"),
        Shape::Enum(k) => {
            json!({"type": "enum", "name": name, "symbols": (0..*k).map(|i| format!("S{i}")).collect::<Vec<_>>()})
        }
        Shape::Fixed(size) => json!({"type": "fixed", "name": name, "size": size}),
        Shape::Decimal(p, s) => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s})
        }
        Shape::Date => json!({"type": "int", "logicalType": "date"}),
        Shape::TimestampMillis => json!({"type": "long", "logicalType": "timestamp-millis"}),
        Shape::Uuid => json!({"type": "string", "logicalType": "uuid"}),
        Shape::Array(items) => json!({"type": "array", "items": schema_json(items, n)}),
        Shape::Map(values) => json!({"type": "map", "values": schema_json(values, n)}),
        Shape::Nullable(inner) => nullable(schema_json(inner, n)),
        Shape::Record(fields) => {
            let fields: Vec<Json> = fields
                .iter()
                .enumerate()
                .map(|(i, (field, optional))| {
                    let schema = schema_json(field, n);
                    if *optional {
                        json!({"name": format!("f{i}"), "type": nullable(schema), "default": null})
                    } else {
                        json!({"name": format!("f{i}"), "type": schema})
                    }
                })
                .collect();
            json!({"type": "record", "name": name, "fields": fields})
        }
    }
}

/// `["null", schema]`, or `schema` when it is a union already (unions do not nest).
fn nullable(schema: Json) -> Json {
    if schema.is_array() {
        schema
    } else {
        json!(["null", schema])
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// JSON values conforming to `shape`.
fn value(shape: &Shape) -> BoxedStrategy<Json> {
    match shape {
        Shape::Boolean => any::<bool>().prop_map(Json::from).boxed(),
        Shape::Int => any::<i32>().prop_map(Json::from).boxed(),
        Shape::Long => any::<i64>().prop_map(Json::from).boxed(),
        Shape::Float => any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f64::from(f)))
            .boxed(),
        Shape::Double => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f))
            .boxed(),
        Shape::String => any::<String>().prop_map(Json::from).boxed(),
        Shape::Bytes => any::<Vec<u8>>()
            .prop_map(|b| Json::from(latin1(&b)))
            .boxed(),
        Shape::Enum(k) => (0..*k).prop_map(|i| Json::from(format!("S{i}"))).boxed(),
        Shape::Fixed(size) => prop::collection::vec(any::<u8>(), *size)
            .prop_map(|b| Json::from(latin1(&b)))
            .boxed(),
        Shape::Decimal(p, s) => {
            let (p, s) = (*p as u32, *s);
            let max = 10i64.pow(p) - 1;
            (-max..=max)
                .prop_map(move |unscaled| {
                    let digits = format!("{:0>width$}", unscaled.unsigned_abs(), width = s + 1);
                    let (int, frac) = digits.split_at(digits.len() - s);
                    let sign = if unscaled < 0 { "-" } else { "" };
                    let point = if s > 0 { "." } else { "" };
                    Json::from(format!("{sign}{int}{point}{frac}"))
                })
                .boxed()
        }
        Shape::Date => (-100_000i32..100_000).prop_map(Json::from).boxed(),
        // Every millisecond count a lake timestamp (microseconds) can hold.
        Shape::TimestampMillis => (i64::MIN / 1000..=i64::MAX / 1000)
            .prop_map(Json::from)
            .boxed(),
        Shape::Uuid => any::<u128>().prop_map(|u| Json::from(uuid_text(u))).boxed(),
        Shape::Array(items) => prop::collection::vec(value(items), 0..4)
            .prop_map(Json::from)
            .boxed(),
        Shape::Map(values) => prop::collection::btree_map("[a-z]{0,6}", value(values), 0..4)
            .prop_map(|m| Json::Object(m.into_iter().collect()))
            .boxed(),
        Shape::Nullable(inner) => prop_oneof![Just(Json::Null), value(inner)].boxed(),
        Shape::Record(fields) => {
            let parts: Vec<BoxedStrategy<Option<Json>>> = fields
                .iter()
                .map(|(field, optional)| {
                    if *optional {
                        prop_oneof![
                            Just(None),
                            Just(Some(Json::Null)),
                            value(field).prop_map(Some)
                        ]
                        .boxed()
                    } else {
                        value(field).prop_map(Some).boxed()
                    }
                })
                .collect();
            parts
                .prop_map(|values| {
                    let mut object = Map::new();
                    for (i, v) in values.into_iter().enumerate() {
                        if let Some(v) = v {
                            object.insert(format!("f{i}"), v);
                        }
                    }
                    Json::Object(object)
                })
                .boxed()
        }
    }
}

fn uuid_text(u: u128) -> String {
    let h = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Nodes of `event` reachable from the top through records only (by field names), each
/// with a value of a kind the node cannot take: replacing one must be refused with a
/// reason naming that node's path.
fn breakable(
    shape: &Shape,
    json: Option<&Json>,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Json)>,
) {
    let mut base = shape;
    while let Shape::Nullable(inner) = base {
        base = inner;
    }
    if !path.is_empty() {
        let wrong = if matches!(base, Shape::Boolean) {
            json!(0)
        } else {
            json!(true)
        };
        out.push((path.clone(), wrong));
    }
    if let (Shape::Record(fields), Some(Json::Object(object))) = (base, json) {
        for (i, (field, _)) in fields.iter().enumerate() {
            let name = format!("f{i}");
            let child = object.get(&name);
            path.push(name);
            breakable(field, child, path, out);
            path.pop();
        }
    }
}

fn set(json: &mut Json, path: &[String], value: Json) {
    let Some((first, rest)) = path.split_first() else {
        *json = value;
        return;
    };
    if !json.is_object() {
        *json = json!({});
    }
    let object = json.as_object_mut().expect("an object");
    let child = object.entry(first.clone()).or_insert(Json::Null);
    if rest.is_empty() {
        *child = value;
    } else {
        set(child, rest, value);
    }
}

/// `json` as text with every object's members in reverse order: clients send fields in
/// any order, the schema's order is the one written.
fn reversed_text(json: &Json) -> String {
    match json {
        Json::Object(object) => {
            let members: Vec<String> = object
                .iter()
                .rev()
                .map(|(k, v)| format!("{}:{}", Json::from(k.as_str()), reversed_text(v)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(reversed_text).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// Members the random schemas do not name, where the partition key is read from.
fn key_members() -> impl Strategy<Value = (Option<Json>, Option<Json>)> {
    let id = prop_oneof![
        Just(None),
        any::<i64>().prop_map(|i| Some(json!(i))),
        any::<u64>().prop_map(|i| Some(json!(i))),
        Just(Some(json!(1.5))),
        Just(Some(json!("7"))),
        Just(Some(Json::Null)),
    ];
    let event = prop_oneof![
        Just(None),
        any::<i64>().prop_map(|c| Some(json!({"customer_id": c, "x": [1, {"customer_id": 2}]}))),
        Just(Some(json!({"customer_id": null}))),
        Just(Some(json!({"other": 3}))),
        Just(Some(json!([{"customer_id": 4}]))),
    ];
    (id, event)
}

/// The compiled path alone: the framed payload and partition key, or `None` when it
/// leaves the event to the value path.
fn compiled_only(validator: &EventValidator, text: &str) -> Option<(Vec<u8>, Option<String>)> {
    let mut payload = Vec::new();
    crate::wire::write_header(&mut payload, validator.schema_id());
    let mut scratch = super::compiled::Scratch::default();
    let key =
        super::compiled::encode_text(validator, &validator.plan, text, &mut payload, &mut scratch)?;
    Some((payload, key))
}

pub(super) fn decode(schema: &Schema, framed: &[u8]) -> apache_avro::types::Value {
    let (id, datum) = crate::wire::split(framed).expect("framed");
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()
        .expect("reader");
    crate::wire::read_datum(&reader, id, datum).expect("decodes")
}

fn event() -> impl Strategy<Value = (Shape, Json, Json)> {
    top().prop_flat_map(|shape| {
        let mut n = 0;
        let schema = schema_json(&shape, &mut n);
        (Just(shape.clone()), Just(schema), value(&shape))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn conforming_json_round_trips((_shape, schema, event) in event()) {
        let schema = Schema::parse_str(&schema.to_string()).expect("a valid schema");
        let validator = EventValidator::new(schema.clone(), 1).expect("validator");
        let avro = validator.to_avro(&event);
        prop_assert!(avro.is_ok(), "{event} refused: {:?}", avro.err());
        let decoded = super::tests::encode_then_decode(&validator, &schema, &event);
        prop_assert_eq!(decoded, avro.expect("checked above"));
    }

    #[test]
    fn conforming_json_lands_in_arrow_unchanged((_shape, schema, event) in event()) {
        let schema = Schema::parse_str(&schema.to_string()).expect("a valid schema");
        let validator = EventValidator::new(schema.clone(), 1).expect("validator");
        let decoded = super::tests::encode_then_decode(&validator, &schema, &event);
        let table = clickstream_lake::TableKind::Events.arrow_schema();
        let plan = clickstream_lake::avro::WriterPlan::new(&table, &[], 1, &schema)
            .expect("every field has a column");
        // Ingest refuses what the lake cannot hold, so nothing it accepts is refused here.
        let checked = plan.check(&decoded);
        prop_assert!(checked.is_ok(), "{}", checked.err().unwrap_or_default());
        let columns = clickstream_lake::avro::build_columns(&plan, std::slice::from_ref(&decoded));
        let apache_avro::types::Value::Record(fields) = &decoded else {
            panic!("a record")
        };
        for (name, value) in fields {
            let column = columns.iter().find(|(f, _)| f.name() == name);
            match column {
                Some((_, array)) => {
                    let same = super::arrow_leg::same(value, array, 0, name);
                    prop_assert!(same.is_ok(), "{}", same.err().unwrap_or_default());
                }
                None => prop_assert!(false, "no column for {name}"),
            }
        }
    }

    #[test]
    fn one_wrong_leaf_is_named((shape, schema, event) in event(), pick in any::<prop::sample::Index>()) {
        let mut leaves = Vec::new();
        breakable(&shape, Some(&event), &mut Vec::new(), &mut leaves);
        prop_assume!(!leaves.is_empty());
        let (path, wrong) = leaves[pick.index(leaves.len())].clone();
        let mut event = event;
        set(&mut event, &path, wrong);
        let schema = Schema::parse_str(&schema.to_string()).expect("a valid schema");
        let validator = EventValidator::new(schema, 1).expect("validator");
        let error = validator.to_avro(&event).expect_err("a wrong leaf");
        prop_assert_eq!(&error.path, &path.join("."), "{}", event);
        // The compiled path leaves it to the value path, so the reason is the same.
        let text = reversed_text(&event);
        prop_assert!(compiled_only(&validator, &text).is_none(), "{}", text);
        let answer = validator.validate_texts([text.as_str()]).expect("encoder").pop().expect("one");
        prop_assert_eq!(answer, Err(crate::TextRefusal::Invalid(error)));
    }

    #[test]
    fn the_compiled_path_takes_what_conforms_and_writes_the_same(
        (_shape, schema, event) in event(),
        (id, customer) in key_members(),
    ) {
        let schema = Schema::parse_str(&schema.to_string()).expect("a valid schema");
        let validator = EventValidator::new(schema.clone(), 1).expect("validator");
        let mut event = event;
        let object = event.as_object_mut().expect("a record");
        if let Some(id) = id {
            object.insert("id".into(), id);
        }
        if let Some(customer) = customer {
            object.insert("event".into(), customer);
        }
        for text in [event.to_string(), reversed_text(&event)] {
            // Against the same text parsed: serde_json's float parsing does not round-trip
            // every double it prints, and ingest parses what the client sent.
            let parsed: Json = serde_json::from_str(&text).expect("JSON");
            let expected = validator.validate_batch([&parsed]).expect("encoder").pop().expect("one");
            let expected = expected.expect("conforming");
            let taken = compiled_only(&validator, &text);
            prop_assert!(taken.is_some(), "the compiled path left {} to the value path", text);
            let (payload, key) = taken.expect("checked above");
            prop_assert_eq!(decode(&schema, &payload), decode(&schema, &expected.payload));
            prop_assert_eq!(key, expected.key.clone(), "{}", text);
        }
    }
}
