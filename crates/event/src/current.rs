//! The validator in force. The raw schema is data: the registry may hold a newer version
//! than the one a process started with, so ingest asks a [`ValidatorSource`] for the current
//! validator once per request instead of holding one for its whole life.
//!
//! A request takes one snapshot ([`ValidatorSource::current`]) and validates and frames all
//! its events with it, so every record of a request carries one schema id; a replacement
//! affects only the requests that take their snapshot after it.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use apache_avro::Schema;

use crate::{EventError, EventValidator};

/// Where ingest gets the validator of the raw schema version in force.
pub trait ValidatorSource: Send + Sync {
    /// A snapshot of the validator in force; replacements made later do not affect it.
    fn current(&self) -> Arc<EventValidator>;
}

/// Holds the validator in force; readers take snapshots, a writer replaces it.
///
/// A read is a shared lock held for one `Arc` clone: cheap next to validating a request,
/// and replacements (a new schema version) are rare.
pub struct ValidatorCell {
    current: RwLock<Arc<EventValidator>>,
}

impl ValidatorCell {
    /// A cell holding `validator`.
    pub fn new(validator: EventValidator) -> Self {
        Self {
            current: RwLock::new(Arc::new(validator)),
        }
    }

    /// The validator in force.
    pub fn current(&self) -> Arc<EventValidator> {
        // A panic cannot leave the cell half-written: a write is one pointer swap.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `validator` in force and returns the one it replaces.
    pub fn replace(&self, validator: EventValidator) -> Arc<EventValidator> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, Arc::new(validator))
    }

    /// The registry id of the schema in force.
    pub fn schema_id(&self) -> u32 {
        self.current().schema_id()
    }
}

impl ValidatorSource for ValidatorCell {
    fn current(&self) -> Arc<EventValidator> {
        ValidatorCell::current(self)
    }
}

impl fmt::Debug for ValidatorCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorCell")
            .field("schema_id", &self.schema_id())
            .finish()
    }
}

impl EventValidator {
    /// A validator for a version of a topic's event schema: like [`EventValidator::new`],
    /// and the schema must be a record, since every event is a JSON object. (A schema of
    /// another type could be registered with compatibility NONE; it would reject every
    /// event.)
    pub fn for_events(schema: Schema, schema_id: u32) -> Result<Self, EventError> {
        if !matches!(schema, Schema::Record(_)) {
            return Err(EventError::NotARecord {
                schema_id,
                found: crate::validate::describe_schema(&schema),
            });
        }
        Self::new(schema, schema_id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use serde_json::json;

    use super::*;
    use crate::schemas::raw_event_schema;
    use crate::wire;

    fn validator(id: u32) -> EventValidator {
        EventValidator::for_events(raw_event_schema().expect("schema"), id).expect("validator")
    }

    /// The schema id in the wire header of `event` framed by `validator`.
    fn framed_id(validator: &EventValidator) -> u32 {
        let event = json!({"id": 1, "type": "click", "event": {
            "user_agent": "ua", "ip": "10.0.0.1", "timestamp": "2024-01-01T00:00:00Z"}});
        let encoded = validator.validate_batch([&event]).expect("encodes");
        let payload = &encoded[0].as_ref().expect("valid").payload;
        wire::split(payload).expect("framed").0
    }

    #[test]
    fn a_snapshot_keeps_its_version_after_a_replacement() {
        let cell = ValidatorCell::new(validator(1));
        let before = cell.current();
        let replaced = cell.replace(validator(2));
        assert_eq!(replaced.schema_id(), 1);
        assert_eq!(
            framed_id(&before),
            1,
            "a request in flight keeps its version"
        );
        assert_eq!(
            framed_id(&cell.current()),
            2,
            "the next request gets the new one"
        );
        assert_eq!(cell.schema_id(), 2);
        assert_eq!(format!("{cell:?}"), "ValidatorCell { schema_id: 2 }");
    }

    #[test]
    fn readers_during_replacements_see_one_whole_version() {
        let cell = Arc::new(ValidatorCell::new(validator(1)));
        let start = Arc::new(Barrier::new(5));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let cell = Arc::clone(&cell);
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    let mut last = 0;
                    for _ in 0..2_000 {
                        let snapshot = cell.current();
                        let id = snapshot.schema_id();
                        assert_eq!(framed_id(&snapshot), id, "one snapshot, one id");
                        assert!(id >= last, "versions only move forward here");
                        last = id;
                    }
                })
            })
            .collect();
        start.wait();
        for id in 2..=50 {
            cell.replace(validator(id));
        }
        for reader in readers {
            reader.join().expect("reader");
        }
        assert_eq!(cell.schema_id(), 50);
    }

    #[test]
    fn only_records_validate_events() {
        let err = EventValidator::for_events(Schema::String, 9).expect_err("not a record");
        assert_eq!(
            err.to_string(),
            "schema 9 is not a record (events are JSON objects); found string"
        );
    }

    #[test]
    fn a_source_behind_a_trait_object_gives_the_cell_s_validator() {
        let cell = Arc::new(ValidatorCell::new(validator(3)));
        let source: Arc<dyn ValidatorSource> = cell.clone();
        cell.replace(validator(4));
        assert_eq!(source.current().schema_id(), 4);
    }
}
