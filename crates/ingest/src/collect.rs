//! `POST /collect`: validate a batch, route each event, answer once all of it is durable.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::{Extension, Json};
use bytes::Bytes;
use clickstream_edge::Source;
use clickstream_edge::body::{BodyLimits, read_body};
use clickstream_edge::limit::Client;
use clickstream_event::{
    CORRELATION_ID_HEADER, ERROR_MESSAGE_HEADER, INVALID_TOPIC, RAW_TOPIC, SOURCE_HEADER,
    ValidationError,
};
use clickstream_log::{Header, OutgoingRecord};
use http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{IngestError, IngestState};

/// The success answer, field for field as the original service sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectResponse {
    /// Always `"success"`.
    pub status: String,
    /// The uuid4 stamped on every record of this request.
    pub correlation_id: String,
    /// Events in the batch (`valid_count + invalid_count`).
    pub processed_count: usize,
    /// Events written to the raw topic.
    pub valid_count: usize,
    /// Events written to the invalid topic.
    pub invalid_count: usize,
    /// Seconds spent handling the request.
    pub elapsed_time: f64,
}

/// What every record of a request carries as headers: its correlation id and, with write
/// keys, its source.
struct Stamp {
    correlation: Bytes,
    source: Option<Bytes>,
}

impl Stamp {
    fn headers(&self) -> Vec<Header> {
        let mut headers = Vec::with_capacity(3);
        headers.push(Header::new(CORRELATION_ID_HEADER, self.correlation.clone()));
        if let Some(source) = &self.source {
            headers.push(Header::new(SOURCE_HEADER, source.clone()));
        }
        headers
    }
}

pub(crate) async fn collect(
    State(state): State<Arc<IngestState>>,
    client: Option<Extension<Client>>,
    source: Option<Extension<Source>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CollectResponse>, IngestError> {
    let started = Instant::now();
    check_content_type(&headers)?;
    let limits = BodyLimits::new(
        state.config.max_body_bytes,
        state.config.max_compression_ratio,
    );
    let body = read_body(&headers, body, &limits).await?;
    // Held until the log has the events: bodies waiting for the log are bounded.
    let _held = state.limits.hold(body.len())?;
    let events = split_batch(&body)?;
    let limit = state.config.max_events_per_request;
    if events.len() > limit {
        return Err(IngestError::TooManyEvents {
            count: events.len(),
            limit,
        });
    }
    if let Some(Extension(client)) = &client {
        let count = u32::try_from(events.len()).unwrap_or(u32::MAX);
        state.limits.take(client, count.max(1))?;
    }

    let correlation_id = uuid::Uuid::new_v4().to_string();
    let source = source.map(|Extension(source)| source);
    let source_name = source.as_ref().map_or("", Source::name);
    let span = tracing::debug_span!(
        "collect",
        %correlation_id,
        source = source_name,
        events = events.len(),
        schema_id = tracing::field::Empty
    );
    let _enter = span.enter();
    let stamp = Stamp {
        correlation: Bytes::copy_from_slice(correlation_id.as_bytes()),
        source: source
            .as_ref()
            .map(|s| Bytes::copy_from_slice(s.name().as_bytes())),
    };
    let (records, valid_count) = route_events(&state, &events, &stamp)?;
    drop(_enter);

    let appending = Instant::now();
    let appended = state.log.append(records).await;
    metrics::histogram!("clickstream_log_append_duration_seconds")
        .record(appending.elapsed().as_secs_f64());
    appended.map_err(|source| IngestError::from_append(source, state.config.retry_after_secs))?;

    // `source` is a configured key's name, or empty without write keys: a bounded label.
    let label = source_name.to_string();
    metrics::counter!("clickstream_ingest_events_total", "outcome" => "valid", "source" => label.clone())
        .increment(valid_count as u64);
    metrics::counter!("clickstream_ingest_events_total", "outcome" => "invalid", "source" => label)
        .increment((events.len() - valid_count) as u64);
    metrics::counter!("clickstream_ingest_bytes_total").increment(body.len() as u64);
    metrics::counter!("clickstream_ingest_requests_total", "outcome" => "accepted").increment(1);
    metrics::histogram!("clickstream_ingest_request_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok(Json(CollectResponse {
        status: "success".into(),
        correlation_id,
        processed_count: events.len(),
        valid_count,
        invalid_count: events.len() - valid_count,
        elapsed_time: started.elapsed().as_secs_f64(),
    }))
}

/// `application/json`, with or without parameters, or any `application/*+json`.
fn check_content_type(headers: &HeaderMap) -> Result<(), IngestError> {
    let found = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is_json = found.as_deref().is_some_and(|ct| {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    });
    match is_json {
        true => Ok(()),
        false => Err(IngestError::UnsupportedMediaType { found }),
    }
}

/// Splits the body into its events, keeping each one's original JSON text.
fn split_batch(body: &[u8]) -> Result<Vec<&RawValue>, IngestError> {
    let malformed = |e: serde_json::Error| IngestError::MalformedJson(e.to_string());
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => serde_json::from_slice::<Vec<&RawValue>>(body).map_err(malformed),
        Some(b'{') => serde_json::from_slice::<&RawValue>(body)
            .map(|one| vec![one])
            .map_err(malformed),
        None => Err(IngestError::MalformedJson("empty body".into())),
        Some(_) => {
            // Well-formed JSON that is not a batch gets a different answer from garbage.
            let value: serde_json::Value = serde_json::from_slice(body).map_err(malformed)?;
            Err(IngestError::NotABatch(json_kind(&value)))
        }
    }
}

/// Validates every event and builds the records of the batch: valid events for the raw
/// topic, rejects for the invalid topic. Returns the records and how many were valid.
fn route_events(
    state: &IngestState,
    events: &[&RawValue],
    stamp: &Stamp,
) -> Result<(Vec<OutgoingRecord>, usize), IngestError> {
    // An event over the size limit is invalid, not the request, and is not parsed. `from_str`
    // of a RawValue only fails past serde_json's nesting limit: that event is invalid too.
    let max_event_bytes = state.config.max_event_bytes;
    let parsed: Vec<Result<serde_json::Value, String>> = events
        .iter()
        .map(|raw| match raw.get().len() {
            size if size > max_event_bytes => Err(oversized_reason(size, max_event_bytes)),
            _ => serde_json::from_str(raw.get()).map_err(|e| e.to_string()),
        })
        .collect();
    let nothing = serde_json::Value::Null;
    // One snapshot for the whole request: every record of it carries one schema id, even if
    // a new version is put in force meanwhile.
    let validator = state.validator.current();
    tracing::Span::current().record("schema_id", validator.schema_id());
    let checked = validator
        .validate_batch(parsed.iter().map(|p| p.as_ref().unwrap_or(&nothing)))
        .map_err(|e| IngestError::Internal(e.to_string()))?;

    let mut records = Vec::with_capacity(events.len());
    let mut valid_count = 0;
    for ((raw, parsed), checked) in events.iter().zip(&parsed).zip(checked) {
        let headers = stamp.headers();
        let record = match (parsed, checked) {
            (Ok(_), Ok(valid)) => {
                valid_count += 1;
                OutgoingRecord {
                    topic: RAW_TOPIC.to_string(),
                    partition: None,
                    key: valid.key.map(Bytes::from),
                    value: Bytes::from(valid.payload),
                    headers,
                    timestamp_ms: None,
                }
            }
            (Err(parse_error), _) => {
                let value = kept_value(raw.get(), max_event_bytes);
                invalid_record(value, headers, parse_error.clone())
            }
            (Ok(_), Err(reason)) => invalid_record(raw.get(), headers, reason_text(&reason)),
        };
        records.push(record);
    }
    Ok((records, valid_count))
}

/// How much of an event over the size limit the invalid topic keeps (at most the limit).
pub const OVERSIZED_EVENT_KEPT_BYTES: usize = 4096;

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

fn invalid_record(value: &str, mut headers: Vec<Header>, reason: String) -> OutgoingRecord {
    headers.push(Header::new(ERROR_MESSAGE_HEADER, reason));
    OutgoingRecord {
        topic: INVALID_TOPIC.to_string(),
        partition: None,
        key: None,
        value: Bytes::copy_from_slice(value.as_bytes()),
        headers,
        timestamp_ms: None,
    }
}

fn reason_text(reason: &ValidationError) -> String {
    reason.to_string()
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
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
