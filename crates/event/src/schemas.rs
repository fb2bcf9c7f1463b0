//! The Avro schemas of SPEC.md, bundled in the binary and registered at start-up.

use apache_avro::Schema;

use crate::EventError;

/// Schema of the raw topic: record `acme.clickstream.ClickstreamEvent`.
pub const RAW_EVENT_SCHEMA: &str = include_str!("../schemas/acme.clickstream.raw.events.avsc");

/// Schema of the latest topic: the raw event plus a `metadata` record.
pub const LATEST_EVENT_SCHEMA: &str =
    include_str!("../schemas/acme.clickstream.latest.events.avsc");

/// Parses the bundled raw event schema.
pub fn raw_event_schema() -> Result<Schema, EventError> {
    Schema::parse_str(RAW_EVENT_SCHEMA).map_err(|e| EventError::Schema(e.to_string()))
}

/// Parses the bundled latest event schema.
pub fn latest_event_schema() -> Result<Schema, EventError> {
    Schema::parse_str(LATEST_EVENT_SCHEMA).map_err(|e| EventError::Schema(e.to_string()))
}

/// Name of the latest topic's record, whatever the raw record is called.
const LATEST_RECORD_NAME: &str = "ClickstreamLatestEvent";

/// The latest topic's schema for records written with raw schema `raw` (JSON text): the
/// same record, renamed [`LATEST_RECORD_NAME`], with the `metadata` record appended. Avro
/// writes a record as its fields in order, so a latest record is the raw record's bytes
/// followed by the metadata's, with no re-encoding. For the bundled raw schema this is the
/// bundled latest schema.
pub fn derive_latest(raw: &str) -> Result<String, EventError> {
    let invalid = |why: &str| EventError::Schema(format!("cannot derive the latest schema: {why}"));
    let mut schema: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| invalid(&e.to_string()))?;
    let latest: serde_json::Value =
        serde_json::from_str(LATEST_EVENT_SCHEMA).map_err(|e| invalid(&e.to_string()))?;
    let metadata = latest["fields"]
        .as_array()
        .and_then(|fields| fields.iter().find(|f| f["name"] == "metadata"))
        .cloned()
        .ok_or_else(|| invalid("the bundled latest schema has no metadata field"))?;
    let record = schema
        .as_object_mut()
        .filter(|o| o.get("type").and_then(|t| t.as_str()) == Some("record"))
        .ok_or_else(|| invalid("the raw schema is not a record"))?;
    // A dotted name carries its namespace: keep that namespace, change the name.
    if let Some(serde_json::Value::String(name)) = record.get("name").cloned()
        && let Some((namespace, _)) = name.rsplit_once('.')
    {
        record.insert("namespace".into(), namespace.into());
    }
    record.insert("name".into(), LATEST_RECORD_NAME.into());
    let fields = record
        .get_mut("fields")
        .and_then(|f| f.as_array_mut())
        .ok_or_else(|| invalid("the raw record has no fields"))?;
    if fields.iter().any(|f| f["name"] == "metadata") {
        return Err(invalid("the raw record has a field named metadata already"));
    }
    fields.push(metadata);
    let text = schema.to_string();
    Schema::parse_str(&text).map_err(|e| invalid(&e.to_string()))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_schemas_parse() {
        assert!(raw_event_schema().is_ok());
        assert!(latest_event_schema().is_ok());
    }

    #[test]
    fn the_latest_schema_derived_from_the_bundled_raw_one_is_the_bundled_latest_one() {
        let derived =
            Schema::parse_str(&derive_latest(RAW_EVENT_SCHEMA).expect("derive")).expect("parses");
        let bundled = latest_event_schema().expect("bundled");
        assert_eq!(derived.canonical_form(), bundled.canonical_form());
    }

    #[test]
    fn a_derived_latest_schema_keeps_the_raw_fields_in_order_then_metadata() {
        let raw = RAW_EVENT_SCHEMA.replace(
            r#"{"name": "position", "type": ["null", "long"], "default": null}"#,
            r#"{"name": "position", "type": ["null", "long"], "default": null},
               {"name": "price", "type": ["null", "double"], "default": null}"#,
        );
        let derived = Schema::parse_str(&derive_latest(&raw).expect("derive")).expect("parses");
        let Schema::Record(record) = derived else {
            panic!("a record")
        };
        assert_eq!(
            record.name.fullname(None),
            "acme.clickstream.ClickstreamLatestEvent"
        );
        let names: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "type", "package_id", "event", "metadata"]);
        assert!(derive_latest(r#""string""#).is_err());
    }
}
