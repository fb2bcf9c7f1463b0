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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_schemas_parse() {
        assert!(raw_event_schema().is_ok());
        assert!(latest_event_schema().is_ok());
    }
}
