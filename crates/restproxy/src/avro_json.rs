//! Avro's JSON encoding to the plain JSON `/collect` takes. The REST Proxy's Avro embedded
//! format writes a union's non-null value as `{"<branch>": value}` (`{"string": "x"}`,
//! `{"com.acme.Item": {...}}`); ingest validates plain JSON against the raw schema in force,
//! so each such wrapper is taken off where the writer's schema says a union is. Anything
//! that does not fit the schema is left as it is, for validation to name the field.

use apache_avro::Schema;
use apache_avro::schema::{InnerDecimalSchema, Name, UnionSchema, UuidSchema};
use serde_json::{Map, Value};

/// `value`, in Avro's JSON encoding for `schema`, as plain JSON.
pub fn to_plain(schema: &Schema, value: Value) -> Value {
    Plain::new(schema).convert(schema, value)
}

/// The conversion, with the named types of the schema, for references to them.
struct Plain<'s> {
    named: Vec<(&'s Name, &'s Schema)>,
}

impl<'s> Plain<'s> {
    fn new(schema: &'s Schema) -> Self {
        let mut named = Vec::new();
        collect_named(schema, &mut named);
        Self { named }
    }

    fn resolve(&self, schema: &'s Schema) -> &'s Schema {
        match schema {
            Schema::Ref { name } => self
                .named
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(schema, |(_, s)| *s),
            other => other,
        }
    }

    fn convert(&self, schema: &'s Schema, value: Value) -> Value {
        match (self.resolve(schema), value) {
            (Schema::Union(union), value) => self.unwrap_union(union, value),
            (Schema::Record(record), Value::Object(mut fields)) => {
                for field in &record.fields {
                    if let Some(v) = fields.remove(&field.name) {
                        fields.insert(field.name.clone(), self.convert(&field.schema, v));
                    }
                }
                Value::Object(fields)
            }
            (Schema::Array(array), Value::Array(items)) => Value::Array(
                items
                    .into_iter()
                    .map(|v| self.convert(&array.items, v))
                    .collect(),
            ),
            (Schema::Map(map), Value::Object(entries)) => Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, self.convert(&map.types, v)))
                    .collect::<Map<_, _>>(),
            ),
            (_, value) => value,
        }
    }

    /// `null`, or `{"<branch>": value}` naming one of the union's branches: the value,
    /// converted for that branch.
    fn unwrap_union(&self, union: &'s UnionSchema, value: Value) -> Value {
        let Value::Object(wrapper) = value else {
            return value;
        };
        if wrapper.len() == 1
            && let Some((branch, inner)) = wrapper.iter().next()
            && let Some(schema) = union
                .variants()
                .iter()
                .find(|s| branch_name(self.resolve(s)).as_deref() == Some(branch.as_str()))
        {
            let inner = inner.clone();
            return self.convert(schema, inner);
        }
        Value::Object(wrapper)
    }
}

/// The name a union branch is written under: the type's name, full name for named types.
fn branch_name(schema: &Schema) -> Option<String> {
    let name = match schema {
        Schema::Null => "null",
        Schema::Boolean => "boolean",
        Schema::Int | Schema::Date | Schema::TimeMillis => "int",
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "long",
        Schema::Float => "float",
        Schema::Double => "double",
        Schema::Bytes | Schema::BigDecimal => "bytes",
        Schema::String => "string",
        Schema::Uuid(UuidSchema::String) => "string",
        Schema::Uuid(UuidSchema::Bytes) => "bytes",
        Schema::Uuid(UuidSchema::Fixed(f)) | Schema::Duration(f) => {
            return Some(f.name.fullname(None));
        }
        Schema::Array(_) => "array",
        Schema::Map(_) => "map",
        Schema::Record(r) => return Some(r.name.fullname(None)),
        Schema::Enum(e) => return Some(e.name.fullname(None)),
        Schema::Fixed(f) => return Some(f.name.fullname(None)),
        Schema::Decimal(d) => match &d.inner {
            InnerDecimalSchema::Bytes => "bytes",
            InnerDecimalSchema::Fixed(f) => return Some(f.name.fullname(None)),
        },
        Schema::Ref { name } => return Some(name.fullname(None)),
        // A union cannot be a branch of a union.
        Schema::Union(_) => return None,
    };
    Some(name.to_string())
}

fn collect_named<'s>(schema: &'s Schema, out: &mut Vec<(&'s Name, &'s Schema)>) {
    match schema {
        Schema::Record(record) => {
            out.push((&record.name, schema));
            for field in &record.fields {
                collect_named(&field.schema, out);
            }
        }
        Schema::Enum(e) => out.push((&e.name, schema)),
        Schema::Fixed(f) => out.push((&f.name, schema)),
        Schema::Array(a) => collect_named(&a.items, out),
        Schema::Map(m) => collect_named(&m.types, out),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_named(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(text: &str) -> Schema {
        Schema::parse_str(text).expect("schema")
    }

    #[test]
    fn union_wrappers_come_off_and_nulls_stay() {
        let s = schema(
            r#"{"type":"record","name":"E","fields":[
                {"name":"id","type":"long"},
                {"name":"page","type":["null","string"]},
                {"name":"price","type":["null","double"]},
                {"name":"ref","type":["null","string"]}]}"#,
        );
        let avro =
            json!({"id": 1, "page": {"string": "/home"}, "price": {"double": 2.5}, "ref": null});
        assert_eq!(
            to_plain(&s, avro),
            json!({"id": 1, "page": "/home", "price": 2.5, "ref": null})
        );
    }

    #[test]
    fn named_branches_nested_records_arrays_and_maps_are_followed() {
        let s = schema(
            r#"{"type":"record","name":"E","namespace":"com.acme","fields":[
                {"name":"item","type":["null",{"type":"record","name":"Item","fields":[
                    {"name":"sku","type":["null","string"]}]}]},
                {"name":"again","type":["null","Item"]},
                {"name":"tags","type":{"type":"array","items":["null","string"]}},
                {"name":"attrs","type":{"type":"map","values":["null","long"]}}]}"#,
        );
        let avro = json!({
            "item": {"com.acme.Item": {"sku": {"string": "A1"}}},
            "again": {"com.acme.Item": {"sku": null}},
            "tags": [{"string": "x"}, null],
            "attrs": {"n": {"long": 3}}
        });
        assert_eq!(
            to_plain(&s, avro),
            json!({"item": {"sku": "A1"}, "again": {"sku": null}, "tags": ["x", null], "attrs": {"n": 3}})
        );
    }

    #[test]
    fn what_does_not_fit_the_schema_is_left_for_validation() {
        let s = schema(
            r#"{"type":"record","name":"E","fields":[{"name":"page","type":["null","string"]}]}"#,
        );
        let avro = json!({"page": {"int": 3}, "other": {"string": "kept"}});
        assert_eq!(to_plain(&s, avro.clone()), avro);
    }
}
