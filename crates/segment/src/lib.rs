//! Segment's HTTP Tracking API: the calls Segment's own libraries send (track, page,
//! screen, identify, group, alias), normalized to the Segment stream's Avro schema.

mod calls;
pub mod metrics;
mod normalize;
mod routes;
mod settings;

pub use normalize::{CallType, Received, Rejected, normalize};
pub use routes::{SegmentState, router};

pub use clickstream_event::{SEGMENT_INVALID_TOPIC, SEGMENT_TOPIC};

/// The bundled first version of the Segment subject (`<topic>-value`): registered when the
/// subject has no version, as the raw schema is.
pub const SEGMENT_SCHEMA: &str = include_str!("../schemas/acme.clickstream.segment.events.avsc");

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use clickstream_event::EventValidator;
    use serde_json::{Value, json};

    use super::*;

    fn validator() -> EventValidator {
        let schema =
            apache_avro::Schema::parse_str(SEGMENT_SCHEMA).expect("the bundled schema parses");
        EventValidator::for_events(schema, 1).expect("a record")
    }

    /// Every kind of call, as the libraries send them, validates once normalized.
    #[test]
    fn normalized_calls_of_every_type_validate_against_the_bundled_schema() {
        let validator = validator();
        let received = Received {
            at: Utc::now(),
            ip: None,
        };
        let calls = [
            json!({"type": "track", "event": "Signed Up", "userId": "u", "properties": {"plan": "pro"},
                   "context": {"page": {"url": "https://x.example/"}, "library": {"name": "l", "version": "1"}}}),
            json!({"type": "page", "anonymousId": "a", "name": "Home", "timestamp": "2026-12-06T10:00:00Z"}),
            json!({"type": "screen", "userId": "u", "name": "Cart", "category": "shop"}),
            json!({"type": "identify", "userId": "u", "anonymousId": "a", "traits": {"email": "u@x"}}),
            json!({"type": "group", "userId": "u", "groupId": "g", "traits": {"name": "Acme"}}),
            json!({"type": "alias", "userId": "u", "previousId": "a", "_metadata": {}}),
        ];
        for call in calls {
            let Value::Object(fields) = call.clone() else {
                unreachable!()
            };
            let normalized = normalize(&fields, None, None, &received).expect("valid call");
            validator
                .to_avro(&normalized)
                .unwrap_or_else(|e| panic!("{call}: {e}"));
        }
    }
}
