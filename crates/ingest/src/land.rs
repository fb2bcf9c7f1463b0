//! One batch of events through validation to the log: what `/collect` and the REST
//! Proxy's produce calls share. Every event is validated against the raw schema in force
//! (one snapshot per batch), valid ones are framed for the raw topic, invalid ones keep
//! their JSON and reason for the invalid topic, and all of them go to the log in one
//! append: the batch is durable, or nothing of it is acknowledged.

use bytes::Bytes;
use clickstream_edge::Source;
use clickstream_event::{
    CORRELATION_ID_HEADER, ERROR_MESSAGE_HEADER, INVALID_TOPIC, RAW_TOPIC, SOURCE_HEADER,
    TextRefusal,
};
use clickstream_log::{Header, OutgoingRecord, RecordPosition};
use serde_json::value::RawValue;

use crate::metrics::Handles;
use crate::{IngestError, IngestState};

/// How much of an event over the size limit the invalid topic keeps (at most the limit).
pub const OVERSIZED_EVENT_KEPT_BYTES: usize = 4096;

/// What became of one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Valid: written to the raw topic at this position.
    Valid(RecordPosition),
    /// Invalid: kept in the invalid topic at this position, with why.
    Invalid {
        /// Where the invalid topic holds it.
        position: RecordPosition,
        /// Why it is invalid (the `X-Error-Message` header).
        reason: String,
    },
}

/// A batch durable in the log.
#[derive(Debug, Clone)]
pub struct Landed {
    /// The uuid4 stamped on every record of the batch.
    pub correlation_id: String,
    /// Registry id of the raw schema the valid events were framed with.
    pub schema_id: u32,
    /// Each event's outcome, in the batch's order.
    pub outcomes: Vec<Outcome>,
}

impl Landed {
    /// Events written to the raw topic.
    pub fn valid_count(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Valid(_)))
            .count()
    }
}

/// Validates `events` (each one's JSON text as sent), appends them to the log and returns
/// where each one went, once all of them are durable. `source` is the write key's name,
/// stamped on every record.
pub async fn land(
    state: &IngestState,
    events: &[&RawValue],
    source: Option<&Source>,
) -> Result<Landed, IngestError> {
    let stamp = Stamp::new(source);
    let span = tracing::debug_span!(
        "land",
        correlation_id = %stamp.correlation_id(),
        source = stamp.source_name(),
        events = events.len(),
        schema_id = tracing::field::Empty
    );
    let route = || span.in_scope(|| route_events(state, events, &stamp));
    let routed = match offloaded(events) {
        // Validating a large batch takes a millisecond or more: the worker's other tasks
        // (other requests, the processor) move to another thread meanwhile.
        true => tokio::task::block_in_place(route)?,
        false => route()?,
    };
    append_routed(state, &stamp, routed).await
}

/// Events of a batch past which it is validated off the async worker.
const OFFLOADED_BATCH_BYTES: usize = 64 * 1024;

/// Whether `events` is large enough to validate off the async worker, and the runtime can
/// (`block_in_place` needs the multi-threaded one).
fn offloaded(events: &[&RawValue]) -> bool {
    let bytes: usize = events.iter().map(|raw| raw.get().len()).sum();
    bytes >= OFFLOADED_BATCH_BYTES
        && tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
            runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        })
}

/// A batch validated and framed for the log: its records, in order, each with its reason
/// when it is invalid, and the schema id the valid ones are framed with.
#[derive(Debug)]
pub struct Routed {
    /// The records, in the batch's order.
    pub records: Vec<OutgoingRecord>,
    /// Each record's reason when it is invalid.
    pub reasons: Vec<Option<String>>,
    /// Registry id of the schema the valid records are framed with.
    pub schema_id: u32,
}

/// Appends `routed` in one call and returns where each record went, once all are durable.
pub async fn append_routed(
    state: &IngestState,
    stamp: &Stamp,
    routed: Routed,
) -> Result<Landed, IngestError> {
    let Routed {
        records,
        reasons,
        schema_id,
    } = routed;
    let appending = std::time::Instant::now();
    let appended = state.log.append(records).await;
    Handles::get()
        .append_duration
        .record(appending.elapsed().as_secs_f64());
    let positions = appended
        .map_err(|source| IngestError::from_append(source, state.config.retry_after_secs))?;
    if positions.len() != reasons.len() {
        return Err(IngestError::Internal(format!(
            "the log answered {} positions for {} records",
            positions.len(),
            reasons.len()
        )));
    }
    let outcomes: Vec<Outcome> = positions
        .into_iter()
        .zip(reasons)
        .map(|(position, reason)| match reason {
            None => Outcome::Valid(position),
            Some(reason) => Outcome::Invalid { position, reason },
        })
        .collect();
    let landed = Landed {
        correlation_id: stamp.correlation_id().to_string(),
        schema_id,
        outcomes,
    };
    count_events(&landed, stamp.source_name());
    Ok(landed)
}

fn count_events(landed: &Landed, source: &str) {
    let valid = landed.valid_count();
    let invalid = landed.outcomes.len() - valid;
    // `source` is a configured key's name, or empty without write keys: a bounded label.
    Handles::get().count_events(source, valid as u64, invalid as u64);
}

/// What every record of a request carries as headers: its correlation id (a uuid4 made
/// for the request) and, with write keys, its source.
#[derive(Debug, Clone)]
pub struct Stamp {
    correlation_id: String,
    correlation: Bytes,
    source_name: String,
    source: Option<Bytes>,
}

impl Stamp {
    /// A new request's stamp, from the write key's name when it carried one.
    pub fn new(source: Option<&Source>) -> Self {
        let correlation_id = uuid::Uuid::new_v4().to_string();
        Self {
            correlation: Bytes::copy_from_slice(correlation_id.as_bytes()),
            correlation_id,
            source_name: source.map_or_else(String::new, |s| s.name().to_string()),
            source: source.map(|s| Bytes::copy_from_slice(s.name().as_bytes())),
        }
    }

    /// The request's correlation id.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// The write key's name, empty without write keys.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The headers of each of the request's records.
    pub fn headers(&self) -> Vec<Header> {
        let mut headers = Vec::with_capacity(3);
        headers.push(Header::new(CORRELATION_ID_HEADER, self.correlation.clone()));
        if let Some(source) = &self.source {
            headers.push(Header::new(SOURCE_HEADER, source.clone()));
        }
        headers
    }
}

/// Validates every event and builds the records of the batch: valid events for the raw
/// topic, rejects for the invalid topic with their reasons.
fn route_events(
    state: &IngestState,
    events: &[&RawValue],
    stamp: &Stamp,
) -> Result<Routed, IngestError> {
    // An event over the size limit is invalid, not the request, and is not parsed.
    let max_event_bytes = state.config.max_event_bytes;
    let within = |text: &str| text.len() <= max_event_bytes;
    // One snapshot for the whole request: every record of it carries one schema id, even if
    // a new version is put in force meanwhile.
    let validator = state.validator.current();
    tracing::Span::current().record("schema_id", validator.schema_id());
    let mut checked = validator
        .validate_texts(
            events
                .iter()
                .map(|raw| raw.get())
                .filter(|text| within(text)),
        )
        .map_err(|e| IngestError::Internal(e.to_string()))?
        .into_iter();

    let mut records = Vec::with_capacity(events.len());
    let mut reasons = Vec::with_capacity(events.len());
    for raw in events {
        let headers = stamp.headers();
        let outcome = match within(raw.get()) {
            true => checked.next().ok_or_else(|| {
                IngestError::Internal("the validator answered fewer events than given".into())
            })?,
            false => Err(TextRefusal::Unparsable(oversized_reason(
                raw.get().len(),
                max_event_bytes,
            ))),
        };
        let (record, reason) = match outcome {
            Ok(valid) => {
                let record = OutgoingRecord {
                    topic: RAW_TOPIC.into(),
                    partition: None,
                    key: valid.key.map(Bytes::from),
                    value: Bytes::from(valid.payload),
                    headers,
                    timestamp_ms: None,
                };
                (record, None)
            }
            Err(refusal) => {
                let value = kept_value(raw.get(), max_event_bytes);
                let reason = refusal.to_string();
                let record = invalid_record(INVALID_TOPIC, value, headers, reason.clone());
                (record, Some(reason))
            }
        };
        records.push(record);
        reasons.push(reason);
    }
    Ok(Routed {
        records,
        reasons,
        schema_id: validator.schema_id(),
    })
}

fn oversized_reason(size: usize, limit: usize) -> String {
    let kept = OVERSIZED_EVENT_KEPT_BYTES.min(limit);
    format!(
        "event is {size} bytes, over the limit of {limit} bytes (its first {kept} bytes are kept)"
    )
}

/// The event's JSON, or for one over `limit` its first [`OVERSIZED_EVENT_KEPT_BYTES`]
/// (cut on a character boundary: the kept text is UTF-8, no longer JSON).
fn kept_value(raw: &str, limit: usize) -> &str {
    if raw.len() <= limit {
        return raw;
    }
    let mut end = OVERSIZED_EVENT_KEPT_BYTES.min(limit);
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    &raw[..end]
}

/// A record of an invalid event for `topic`: its JSON text as sent (or the kept part of
/// it), with the reason in the `X-Error-Message` header.
pub fn invalid_record(
    topic: &str,
    value: &str,
    mut headers: Vec<Header>,
    reason: String,
) -> OutgoingRecord {
    headers.push(Header::new(ERROR_MESSAGE_HEADER, reason));
    OutgoingRecord {
        topic: topic.to_string().into(),
        partition: None,
        key: None,
        value: Bytes::copy_from_slice(value.as_bytes()),
        headers,
        timestamp_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_within_the_limit_is_kept_whole() {
        assert_eq!(kept_value("{\"id\": 1}", 9), "{\"id\": 1}");
    }

    #[test]
    fn an_oversized_event_keeps_its_first_kilobytes_on_a_character_boundary() {
        let ascii = format!("{{\"x\": \"{}\"}}", "a".repeat(10_000));
        assert_eq!(kept_value(&ascii, 5000).len(), OVERSIZED_EVENT_KEPT_BYTES);
        assert_eq!(
            kept_value(&ascii, 100),
            &ascii[..100],
            "never more than the limit"
        );
        // "é" is two bytes: a cut through it moves back to the character before.
        let accents = format!("\"{}\"", "é".repeat(5000));
        let kept = kept_value(&accents, 5000);
        assert_eq!(kept.len(), OVERSIZED_EVENT_KEPT_BYTES - 1);
        assert!(accents.starts_with(kept));
    }

    #[test]
    fn the_reason_names_the_size_the_limit_and_what_is_kept() {
        assert_eq!(
            oversized_reason(80123, 65536),
            "event is 80123 bytes, over the limit of 65536 bytes (its first 4096 bytes are kept)"
        );
    }
}
