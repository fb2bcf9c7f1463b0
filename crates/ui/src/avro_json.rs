//! Avro values as JSON for people: records keep their schema's field order (a
//! `serde_json::Value` would sort them), unions show their branch's value.

use apache_avro::types::Value;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// Serializes a decoded Avro value as plain JSON.
pub(crate) struct AvroJson<'a>(pub &'a Value);

impl Serialize for AvroJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => s.serialize_i32(*i),
            Value::Long(l)
            | Value::TimeMicros(l)
            | Value::TimestampMillis(l)
            | Value::TimestampMicros(l)
            | Value::TimestampNanos(l)
            | Value::LocalTimestampMillis(l)
            | Value::LocalTimestampMicros(l)
            | Value::LocalTimestampNanos(l) => s.serialize_i64(*l),
            Value::Float(f) if f.is_finite() => s.serialize_f32(*f),
            Value::Double(d) if d.is_finite() => s.serialize_f64(*d),
            Value::Float(f) => s.serialize_str(&f.to_string()),
            Value::Double(d) => s.serialize_str(&d.to_string()),
            // Avro's own JSON encoding: one code point per byte.
            Value::Bytes(bytes) | Value::Fixed(_, bytes) => {
                s.serialize_str(&bytes.iter().map(|&b| char::from(b)).collect::<String>())
            }
            Value::String(text) | Value::Enum(_, text) => s.serialize_str(text),
            Value::Union(_, inner) => AvroJson(inner).serialize(s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&AvroJson(item))?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut sorted: Vec<_> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                let mut map = s.serialize_map(Some(sorted.len()))?;
                for (key, value) in sorted {
                    map.serialize_entry(key, &AvroJson(value))?;
                }
                map.end()
            }
            Value::Record(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, &AvroJson(value))?;
                }
                map.end()
            }
            Value::Uuid(uuid) => s.serialize_str(&uuid.to_string()),
            other => s.serialize_str(&format!("{other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_field_order_and_unions_unwrap() {
        let value = Value::Record(vec![
            ("zeta".into(), Value::Long(1)),
            (
                "alpha".into(),
                Value::Union(1, Box::new(Value::String("x".into()))),
            ),
            ("none".into(), Value::Union(0, Box::new(Value::Null))),
            (
                "nested".into(),
                Value::Record(vec![("b".into(), Value::Boolean(true))]),
            ),
        ]);
        let text = serde_json::to_string(&AvroJson(&value)).expect("serializes");
        assert_eq!(
            text,
            r#"{"zeta":1,"alpha":"x","none":null,"nested":{"b":true}}"#
        );
    }

    #[test]
    fn non_finite_numbers_become_strings() {
        let text = serde_json::to_string(&AvroJson(&Value::Double(f64::NAN))).expect("json");
        assert_eq!(text, r#""NaN""#);
    }
}
