//! A JSON object that keeps its keys in order and, for objects read from a file, each
//! value's original text. `serde_json::Map` sorts keys; a replayed line should reach the
//! server (and the invalid topic) as it was written, with only `package_id` added.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// One value of an [`Object`].
#[derive(Debug, Clone)]
pub enum Field {
    /// Text read from a file, passed through unchanged.
    Raw(Box<RawValue>),
    /// A value built in code.
    Value(Value),
    /// A nested object, keys in order.
    Object(Object),
}

impl From<Value> for Field {
    fn from(value: Value) -> Self {
        Field::Value(value)
    }
}

impl From<Object> for Field {
    fn from(object: Object) -> Self {
        Field::Object(object)
    }
}

/// A JSON object whose keys keep their insertion (or file) order.
#[derive(Debug, Clone, Default)]
pub struct Object {
    entries: Vec<(String, Field)>,
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`: replaces the value in place if the key exists, else appends it (what
    /// Python's `dict[key] = value` does, which the original generator relied on).
    pub fn set(&mut self, key: &str, value: impl Into<Field>) {
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    /// Appends `key` with `value` (builder style); replaces an existing key in place.
    pub fn with(mut self, key: &str, value: impl Into<Field>) -> Self {
        self.set(key, value);
        self
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Field> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    /// Renames `key` to `new_key` in place, keeping its position and value.
    pub fn rename(&mut self, key: &str, new_key: &str) {
        if let Some((k, _)) = self.entries.iter_mut().find(|(k, _)| k == key) {
            *k = new_key.to_string();
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Field> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The nested object under `key`, if that value is one built in code.
    pub fn object_mut(&mut self, key: &str) -> Option<&mut Object> {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, Field::Object(object))) => Some(object),
            _ => None,
        }
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The object as one line of JSON.
    pub fn to_json_string(&self) -> String {
        // invariant: every field is valid JSON (RawValue, Value or Object), and keys are
        // strings, so serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The object as a `serde_json::Value` (keys sorted; for inspection, not for sending).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.to_json_string()).unwrap_or(Value::Null)
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Raw(raw) => raw.serialize(serializer),
            Field::Value(value) => value.serialize(serializer),
            Field::Object(object) => object.serialize(serializer),
        }
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Reads a JSON object keeping key order and each value's text; anything but an object is
/// an error. A duplicated key keeps its first position and its last value, as Python's
/// `json.loads` does.
impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Object, A::Error> {
                let mut object = Object::new();
                while let Some((key, value)) = access.next_entry::<String, Box<RawValue>>()? {
                    object.set(&key, Field::Raw(value));
                }
                Ok(object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_parsed_line_is_written_back_as_it_was_plus_package_id() {
        let line = r#"{"id": 7, "type":"search", "event": {"ip": "1.2.3.4", "b": 1.50}}"#;
        let mut object: Object = serde_json::from_str(line).expect("object");
        object.set("package_id", json!("p-1"));
        assert_eq!(
            object.to_json_string(),
            r#"{"id":7,"type":"search","event":{"ip": "1.2.3.4", "b": 1.50},"package_id":"p-1"}"#
        );
    }

    #[test]
    fn an_existing_package_id_is_replaced_in_place() {
        let mut object: Object =
            serde_json::from_str(r#"{"package_id":"old","id":1}"#).expect("object");
        object.set("package_id", json!("new"));
        assert_eq!(object.to_json_string(), r#"{"package_id":"new","id":1}"#);
    }

    #[test]
    fn only_objects_parse() {
        for line in ["[1,2]", "42", "\"x\"", "null", "{\"a\":", "not json"] {
            assert!(serde_json::from_str::<Object>(line).is_err(), "{line}");
        }
    }

    #[test]
    fn nested_objects_keep_their_order_and_can_be_changed() {
        let mut object = Object::new().with("id", json!(1)).with(
            "event",
            Object::new().with("z", json!(1)).with("a", json!(2)),
        );
        object.object_mut("event").expect("event").rename("z", "y");
        assert_eq!(object.to_json_string(), r#"{"id":1,"event":{"y":1,"a":2}}"#);
        assert_eq!(object.to_value()["event"]["a"], json!(2));
    }
}
