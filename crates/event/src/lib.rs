//! The clickstream event: bundled Avro schemas, JSON to Avro validation with precise
//! reasons, and the Confluent wire format.
//!
//! Ingest uses [`EventValidator`] to turn each JSON event of a request into either Avro
//! binary (valid) or a [`ValidationError`] naming the field and what was expected (invalid).
//! The processor uses [`wire`] to split a record into schema id and Avro payload.
//! [`ValidatorCell`] holds the validator in force, which a newer registry version replaces
//! while ingest runs.

mod current;
mod error;
pub mod fields;
pub mod schemas;
mod validate;
pub mod wire;

pub use current::{ValidatorCell, ValidatorSource};
pub use error::{EventError, TextRefusal, ValidationError};
pub use validate::{EventValidator, ValidatedEvent};

/// Topic of valid events: Avro in Confluent wire format.
pub const RAW_TOPIC: &str = "acme.clickstream.raw.events";
/// Topic of rejected events: the original JSON with reason headers.
pub const INVALID_TOPIC: &str = "acme.clickstream.invalid.events";
/// Topic of processed events: raw event plus `metadata`, Avro in Confluent wire format.
pub const LATEST_TOPIC: &str = "acme.clickstream.latest.events";
/// Topic of unique-users-per-day updates (JSON, key = day).
pub const UNIQUE_USERS_TOPIC: &str = "acme.clickstream.unique.users";
/// Topic of the Segment stream: calls of Segment's tracking API, normalized, Avro in
/// Confluent wire format.
pub const SEGMENT_TOPIC: &str = "acme.clickstream.segment.events";
/// Topic of the Segment calls no version of the Segment subject takes: as sent (but for
/// the write key), with the reason in the [`ERROR_MESSAGE_HEADER`].
pub const SEGMENT_INVALID_TOPIC: &str = "acme.clickstream.segment.invalid";

/// Header carrying the correlation id of the request that brought a record in.
pub const CORRELATION_ID_HEADER: &str = "X-Correlation-ID";
/// Header carrying why an event was rejected (invalid topic only).
pub const ERROR_MESSAGE_HEADER: &str = "X-Error-Message";
/// Header carrying the name of the write key the request that brought a record in
/// carried (its source); absent when ingest takes requests without keys.
pub const SOURCE_HEADER: &str = "X-Source";

/// Registry subject of a topic's values (Confluent's TopicNameStrategy).
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}
