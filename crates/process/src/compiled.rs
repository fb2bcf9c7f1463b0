//! A raw event's fields read straight from the record's bytes by a reader compiled once
//! per writer schema (`clickstream_event::fields`): no Avro value tree and no allocation
//! per record.
//!
//! It only ever answers "this record is an event with these fields": anything else is
//! `None` and the record takes the value path (`decode.rs`), which gives the verdict and
//! its reason. `None` covers what the field reader leaves to apache-avro, a required role
//! missing and a role of a type it does not take. In debug builds every record it reads is
//! also read the value path and the two compared (`decode.rs`).

use std::borrow::Cow;

use apache_avro::Schema;
use clickstream_event::fields::{Field, FieldReader};

use crate::decode::RawEvent;
use crate::roles::EventPaths;

/// How many fields a raw event is read from ([`EventPaths::texts`]).
const SLOTS: usize = 12;

/// A writer schema's reader of raw events.
#[derive(Debug)]
pub(crate) struct CompiledReader {
    fields: FieldReader,
}

impl CompiledReader {
    /// The reader of records written with `schema` whose fields are at `paths`; `None`
    /// when the schema has something it does not read (those records take the value path).
    pub(crate) fn new(schema: &'static Schema, paths: &EventPaths) -> Option<Self> {
        FieldReader::new(schema, &paths.texts()).map(|fields| CompiledReader { fields })
    }

    /// The raw event in `payload` (a datum without its wire header), or `None`: the value
    /// path decides.
    pub(crate) fn event<'a>(&self, payload: &'a [u8]) -> Option<RawEvent<'a>> {
        let mut fields = [Field::Absent; SLOTS];
        self.fields.read(payload, &mut fields)?;
        let [
            id,
            event_type,
            package_id,
            user_agent,
            ip,
            customer_id,
            timestamp,
            page,
            query,
            product,
            referrer,
            position,
        ] = fields;
        Some(RawEvent {
            id: long(id)??,
            event_type: string(event_type)??,
            package_id: string(package_id)?,
            user_agent: string(user_agent)??,
            ip: string(ip)??,
            customer_id: long(customer_id)?,
            timestamp: timestamp_text(timestamp)??,
            page: string(page)?,
            query: string(query)?,
            product: long(product)?,
            referrer: string(referrer)?,
            position: long(position)?,
        })
    }
}

/// A string role's value: `Some(None)` when absent, `None` when not a string.
fn string(field: Field<'_>) -> Option<Option<&str>> {
    match field {
        Field::Absent => Some(None),
        Field::Str(s) => Some(Some(s)),
        Field::Enum(s) => Some(Some(s)),
        _ => None,
    }
}

/// A long role's value: `Some(None)` when absent, `None` when not a long or an int.
fn long(field: Field<'_>) -> Option<Option<i64>> {
    match field {
        Field::Absent => Some(None),
        Field::Long(v) => Some(Some(v)),
        Field::Int(v) => Some(Some(i64::from(v))),
        _ => None,
    }
}

/// The timestamp role's text, as [`crate::roles::timestamp_at`] makes it.
fn timestamp_text(field: Field<'_>) -> Option<Option<Cow<'_, str>>> {
    let rfc3339 = |micros: Option<i64>| {
        micros
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| Cow::Owned(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
    };
    match field {
        Field::Absent => Some(None),
        Field::Str(s) => Some(Some(Cow::Borrowed(s))),
        Field::TimestampMillis(ms) => rfc3339(ms.checked_mul(1000)).map(Some),
        Field::TimestampMicros(us) => rfc3339(Some(us)).map(Some),
        _ => None,
    }
}

#[cfg(test)]
#[path = "compiled_tests.rs"]
mod tests;
