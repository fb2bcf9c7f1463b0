//! Properties on primitive schemas, which apache-avro drops.
//!
//! apache-avro keeps custom attributes on records, enums, fixed, arrays, maps and record
//! fields, but parses `{"type": "string", "logicalType": "x", "foo": "bar"}` to the bare
//! primitive (and a supported logical type to its bare form), so its serialisation says
//! `"string"`. Java Avro, and so Confluent, keeps every key it does not reserve as a property
//! of the schema, and compares schemas by that text. This module walks the posted JSON and
//! apache-avro's serialisation side by side (union branches, record fields, array items and
//! map values align) and puts back, on each primitive node, the posted keys the
//! serialisation lost: `{"type": "string", ...}` followed by those keys in sorted order, with
//! the keys of object values sorted too, so that key order in the request does not matter.
//!
//! Not covered: keys on an object that only wraps another type (`{"type": {"type": "int"},
//! "foo": 1}`), on a reference to a named type, and an unknown `logicalType` on a complex
//! type; these stay dropped.
//!
//! A schema with no such key keeps apache-avro's text byte for byte: ids of stored schemas
//! depend on it.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// Avro's primitive type names.
const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Keys Java Avro reserves on a schema (`Schema.SCHEMA_RESERVED`): never properties.
const RESERVED: [&str; 10] = [
    "type",
    "doc",
    "aliases",
    "name",
    "namespace",
    "fields",
    "items",
    "values",
    "symbols",
    "size",
];

/// `normalized` (apache-avro's serialisation of the schema parsed from `posted`) with the
/// properties of primitive nodes that it dropped put back. When it dropped none, or its text
/// cannot be reread, `normalized` is returned unchanged.
pub(crate) fn with_primitive_properties(posted: &Value, normalized: String) -> String {
    let mut tree: Node = match serde_json::from_str(&normalized) {
        Ok(tree) => tree,
        Err(e) => {
            tracing::warn!(error = %e, "normalised schema not reread; properties of primitives dropped");
            return normalized;
        }
    };
    if !reattach(posted, &mut tree) {
        return normalized;
    }
    match serde_json::to_string(&tree) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(error = %e, "schema with properties not serialised; properties dropped");
            normalized
        }
    }
}

/// `normalized` with `"namespace": ""` on every named type that is in no namespace but
/// sits inside one. apache-avro writes such a type's bare name, which read back would
/// inherit the enclosing namespace: another schema (found by the `registry_schema` fuzz
/// target). Unchanged when no such type exists.
pub(crate) fn with_null_namespaces(normalized: String) -> String {
    let Ok(mut tree) = serde_json::from_str::<Node>(&normalized) else {
        return normalized;
    };
    if !mark_null_namespaces(&mut tree, "") {
        return normalized;
    }
    serde_json::to_string(&tree).unwrap_or(normalized)
}

/// Adds the `"namespace": ""` of [`with_null_namespaces`] in the schema `node` (and the
/// schemas below it: record field types, array items, map values, union branches; never
/// inside custom attributes), whose enclosing namespace is `enclosing`; true when it
/// added any.
fn mark_null_namespaces(node: &mut Node, enclosing: &str) -> bool {
    let entries = match node {
        Node::Array(branches) => {
            return branches.iter_mut().fold(false, |changed, branch| {
                mark_null_namespaces(branch, enclosing) | changed
            });
        }
        Node::Object(entries) => entries,
        Node::Scalar(_) => return false,
    };
    let kind = match entries.iter_mut().find(|(k, _)| k == "type") {
        Some((_, Node::Scalar(Value::String(kind)))) => kind.clone(),
        // A wrapped type: `{"type": {...}}` or `{"type": [...]}`.
        Some((_, wrapped)) => return mark_null_namespaces(wrapped, enclosing),
        None => return false,
    };
    match kind.as_str() {
        "array" => child(entries, "items", enclosing),
        "map" => child(entries, "values", enclosing),
        "record" | "enum" | "fixed" => {
            let (inner, mut changed) = name_in(entries, enclosing);
            if kind == "record"
                && let Some((_, Node::Array(fields))) =
                    entries.iter_mut().find(|(k, _)| k == "fields")
            {
                for field in fields.iter_mut() {
                    if let Node::Object(field) = field {
                        changed |= child(field, "type", &inner);
                    }
                }
            }
            changed
        }
        _ => false,
    }
}

/// [`mark_null_namespaces`] on the schema under `key`.
fn child(entries: &mut [(String, Node)], key: &str, enclosing: &str) -> bool {
    entries
        .iter_mut()
        .find(|(k, _)| k == key)
        .is_some_and(|(_, schema)| mark_null_namespaces(schema, enclosing))
}

/// The namespace a named type's children inherit, adding `"namespace": ""` to the type when
/// it is in none but `enclosing` is one; true when added.
fn name_in(entries: &mut Vec<(String, Node)>, enclosing: &str) -> (String, bool) {
    let text = |key: &str| {
        entries.iter().find_map(|(k, v)| match v {
            Node::Scalar(Value::String(s)) if k == key => Some(s.clone()),
            _ => None,
        })
    };
    let Some(name) = text("name") else {
        return (enclosing.to_owned(), false);
    };
    if let Some((namespace, _)) = name.rsplit_once('.') {
        return (namespace.to_owned(), false);
    }
    if let Some(namespace) = text("namespace") {
        return (namespace, false);
    }
    if enclosing.is_empty() {
        return (String::new(), false);
    }
    let at = entries
        .iter()
        .position(|(k, _)| k == "name")
        .map_or(0, |i| i + 1);
    let empty = Node::Scalar(Value::String(String::new()));
    entries.insert(at, ("namespace".to_owned(), empty));
    (String::new(), true)
}

/// Puts back on `node` (and below) what `posted` had on its primitive nodes; true when
/// anything was put back.
fn reattach(posted: &Value, node: &mut Node) -> bool {
    match posted {
        Value::Array(branches) => match node {
            Node::Array(nodes) if nodes.len() == branches.len() => branches
                .iter()
                .zip(nodes.iter_mut())
                .fold(false, |changed, (p, n)| reattach(p, n) | changed),
            _ => false,
        },
        Value::Object(map) => match map.get("type") {
            Some(inner @ (Value::Object(_) | Value::Array(_))) => reattach(inner, node),
            Some(Value::String(kind)) => match kind.as_str() {
                "record" => reattach_fields(map.get("fields"), node),
                "array" => reattach_child(map.get("items"), node, "items"),
                "map" => reattach_child(map.get("values"), node, "values"),
                kind if PRIMITIVES.contains(&kind) => attach(map, node),
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

/// Record fields, in order: the posted field's `type` against the serialised field's.
fn reattach_fields(posted: Option<&Value>, node: &mut Node) -> bool {
    let (Some(Value::Array(fields)), Some(Node::Array(nodes))) = (posted, node.get_mut("fields"))
    else {
        return false;
    };
    if fields.len() != nodes.len() {
        return false;
    }
    fields
        .iter()
        .zip(nodes.iter_mut())
        .fold(false, |changed, (field, node)| {
            let put_back = match (field.get("type"), node.get_mut("type")) {
                (Some(p), Some(n)) => reattach(p, n),
                _ => false,
            };
            put_back | changed
        })
}

/// The child schema under `key` (array items, map values).
fn reattach_child(posted: Option<&Value>, node: &mut Node, key: &str) -> bool {
    match (posted, node.get_mut(key)) {
        (Some(p), Some(n)) => reattach(p, n),
        _ => false,
    }
}

/// Appends to a primitive node the posted keys it lacks (a bare `"string"` becomes
/// `{"type": "string", ...}`); true when there were any.
fn attach(posted: &serde_json::Map<String, Value>, node: &mut Node) -> bool {
    let mut lost: Vec<(&String, &Value)> = posted
        .iter()
        .filter(|(key, _)| !RESERVED.contains(&key.as_str()) && node.get_mut(key).is_none())
        .collect();
    if lost.is_empty() {
        return false;
    }
    lost.sort_by(|a, b| a.0.cmp(b.0));
    let lost = lost
        .into_iter()
        .map(|(key, value)| (key.clone(), Node::sorted(value)));
    match node {
        Node::Object(entries) => {
            entries.extend(lost);
            true
        }
        Node::Scalar(Value::String(kind)) => {
            let kind = Node::Scalar(Value::String(std::mem::take(kind)));
            *node = Node::Object(
                std::iter::once(("type".to_owned(), kind))
                    .chain(lost)
                    .collect(),
            );
            true
        }
        _ => false,
    }
}

/// JSON that keeps the order (and any repetition) of object keys, so that apache-avro's
/// text is reproduced exactly.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Null, a boolean, a number or a string.
    Scalar(Value),
    /// An array.
    Array(Vec<Node>),
    /// An object, keys in their order.
    Object(Vec<(String, Node)>),
}

impl Node {
    /// `value` with the keys of every object sorted.
    fn sorted(value: &Value) -> Self {
        match value {
            Value::Array(items) => Self::Array(items.iter().map(Self::sorted).collect()),
            Value::Object(map) => {
                let mut entries: Vec<(String, Node)> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), Self::sorted(v)))
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Self::Object(entries)
            }
            scalar => Self::Scalar(scalar.clone()),
        }
    }

    /// The value of `key` when this is an object holding it.
    fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Self::Object(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Scalar(value) => value.serialize(serializer),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Node, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Node::Scalar(Value::Number(n)))
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Node>()? {
            entries.push(entry);
        }
        Ok(Node::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// apache-avro's text of `posted`, then with the properties put back.
    fn normalise(posted: &str) -> (String, String) {
        let schema = apache_avro::Schema::parse_str(posted).expect("parses");
        let old = serde_json::to_string(&schema).expect("serialises");
        let value: Value = serde_json::from_str(posted).expect("json");
        (old.clone(), with_primitive_properties(&value, old))
    }

    #[test]
    fn puts_properties_back_on_primitives_at_every_depth() {
        for (posted, expected) in [
            // The fuzz seed `seed-primitive-properties`.
            (
                r#"["null",{"type":"string","logicalType":"x","foo":{"b":1,"a":[2]}},{"type":"int","logicalType":"date","unit":"d"},{"type":{"type":"bytes","k":true}}]"#,
                r#"["null",{"type":"string","foo":{"a":[2],"b":1},"logicalType":"x"},{"type":"int","logicalType":"date","unit":"d"},{"type":"bytes","k":true}]"#,
            ),
            (
                r#"{"type":"string","logicalType":"x","foo":"bar"}"#,
                r#"{"type":"string","foo":"bar","logicalType":"x"}"#,
            ),
            (
                r#"{"type":"int","logicalType":"date","meta":{"z":1,"a":[true,null]}}"#,
                r#"{"type":"int","logicalType":"date","meta":{"a":[true,null],"z":1}}"#,
            ),
            (
                r#"{"type":"record","name":"R","fields":[
                    {"name":"a","type":["null",{"type":"long","unit":"ms"}],"default":null},
                    {"name":"b","type":{"type":"array","items":{"type":"string","x":1}}},
                    {"name":"c","type":{"type":"map","values":{"type":{"type":"bytes","y":2}}}}]}"#,
                r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null",{"type":"long","unit":"ms"}],"default":null},{"name":"b","type":{"type":"array","items":{"type":"string","x":1}}},{"name":"c","type":{"type":"map","values":{"type":"bytes","y":2}}}]}"#,
            ),
        ] {
            let (old, new) = normalise(posted);
            assert_ne!(old, new, "{posted}");
            assert_eq!(new, expected, "{posted}");
            // The stored text normalises to itself: posting it back finds the same schema.
            assert_eq!(normalise(&new).1, new, "{posted}");
        }
    }

    #[test]
    fn leaves_apache_avro_text_alone_without_such_properties() {
        for posted in [
            r#""string""#,
            r#"{"type":"string"}"#,
            r#"{"type":"long","logicalType":"timestamp-millis"}"#,
            r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#,
            // Reserved keys are not properties, in Java Avro either.
            r#"{"type":"string","doc":"d","aliases":["x"],"name":"n","namespace":"s"}"#,
            r#"{"type":"record","name":"R","namespace":"n","doc":"d","custom":{"b":1,"a":2},
                "fields":[{"name":"a","type":{"type":"enum","name":"E","symbols":["X"]},"order":"ascending","p":1},
                          {"name":"b","type":"E","default":"X"},
                          {"name":"c","type":{"type":"fixed","name":"F","size":2,"q":[1.5,2]}}]}"#,
        ] {
            let (old, new) = normalise(posted);
            assert_eq!(new, old, "{posted}");
        }
    }
}
