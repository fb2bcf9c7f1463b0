//! Errors of the event crate.

use std::fmt;

/// Failures that are not about one event's content: schemas that do not parse, encoders
/// that cannot be built, wire bytes that are not Confluent's format.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A schema failed to parse or resolve.
    #[error("invalid avro schema: {0}")]
    Schema(String),
    /// Avro encoding failed for a value the validator accepted (a bug, reported not hidden).
    #[error("avro encoding failed: {0}")]
    Encode(String),
    /// Avro decoding failed.
    #[error("avro decoding failed with schema id {schema_id}: {reason}")]
    Decode {
        /// Writer schema id from the wire header.
        schema_id: u32,
        /// What the decoder said.
        reason: String,
    },
    /// A schema meant for events is not a record (events are JSON objects).
    #[error("schema {schema_id} is not a record (events are JSON objects); found {found}")]
    NotARecord {
        /// Registry id of the schema.
        schema_id: u32,
        /// What the schema describes instead.
        found: String,
    },
    /// The bytes are not in Confluent wire format.
    #[error("not confluent wire format: {0}")]
    Wire(String),
}

/// Why one event does not conform to the schema: the path of the offending field and what
/// was expected there. Its `Display` is what goes into `X-Error-Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Dotted path of the field (`event.customer_id`); empty for the event itself.
    pub path: String,
    /// What the schema expects there (`long`, `string or null`, `a JSON object`).
    pub expected: String,
    /// What was found (`missing`, `string "abc"`, `number 1.5`).
    pub found: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "event: expected {}, found {}", self.expected, self.found)
        } else if self.found == "missing" {
            write!(
                f,
                "field '{}' is required: expected {}, found nothing",
                self.path, self.expected
            )
        } else {
            write!(
                f,
                "field '{}': expected {}, found {}",
                self.path, self.expected, self.found
            )
        }
    }
}

impl std::error::Error for ValidationError {}

/// Why an event given as JSON text is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextRefusal {
    /// The text does not parse as a JSON value: past serde_json's nesting limit, a number
    /// out of range, a lone surrogate escape (a syntax check that skips values, as
    /// `RawValue`'s does, lets these through).
    Unparsable(String),
    /// It parses, and does not conform to the schema.
    Invalid(ValidationError),
}

impl fmt::Display for TextRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextRefusal::Unparsable(reason) => f.write_str(reason),
            TextRefusal::Invalid(invalid) => invalid.fmt(f),
        }
    }
}

impl std::error::Error for TextRefusal {}
