//! `POST /collect`: validate a batch, route each event, answer once all of it is durable.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use bytes::Bytes;
use clickstream_event::{
    CORRELATION_ID_HEADER, ERROR_MESSAGE_HEADER, INVALID_TOPIC, RAW_TOPIC, ValidationError,
};
use clickstream_log::{Header, OutgoingRecord};
use http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
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

pub(crate) async fn collect(
    State(state): State<Arc<IngestState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CollectResponse>, IngestError> {
    let started = Instant::now();
    check_content_type(&headers)?;
    let limit = state.config.max_body_bytes;
    let body = read_body(body, limit).await?;
    let events = split_batch(&body)?;
    let limit = state.config.max_events_per_request;
    if events.len() > limit {
        return Err(IngestError::TooManyEvents {
            count: events.len(),
            limit,
        });
    }

    let correlation_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::debug_span!(
        "collect",
        %correlation_id,
        events = events.len(),
        schema_id = tracing::field::Empty
    );
    let _enter = span.enter();
    let (records, valid_count) = route_events(&state, &events, &correlation_id)?;
    drop(_enter);

    let appending = Instant::now();
    let appended = state.log.append(records).await;
    metrics::histogram!("clickstream_log_append_duration_seconds")
        .record(appending.elapsed().as_secs_f64());
    appended.map_err(|source| IngestError::from_append(source, state.config.retry_after_secs))?;

    metrics::counter!("clickstream_ingest_events_total", "outcome" => "valid")
        .increment(valid_count as u64);
    metrics::counter!("clickstream_ingest_events_total", "outcome" => "invalid")
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

async fn read_body(body: Body, limit: usize) -> Result<Bytes, IngestError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(IngestError::PayloadTooLarge { limit })
        }
        Err(e) => Err(IngestError::BodyRead(e.to_string())),
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
    correlation_id: &str,
) -> Result<(Vec<OutgoingRecord>, usize), IngestError> {
    // `from_str` of a RawValue only fails past serde_json's nesting limit: that event is
    // invalid, not the request.
    let parsed: Vec<Result<serde_json::Value, String>> = events
        .iter()
        .map(|raw| serde_json::from_str(raw.get()).map_err(|e| e.to_string()))
        .collect();
    let nothing = serde_json::Value::Null;
    // One snapshot for the whole request: every record of it carries one schema id, even if
    // a new version is put in force meanwhile.
    let validator = state.validator.current();
    tracing::Span::current().record("schema_id", validator.schema_id());
    let checked = validator
        .validate_batch(parsed.iter().map(|p| p.as_ref().unwrap_or(&nothing)))
        .map_err(|e| IngestError::Internal(e.to_string()))?;

    let correlation = Bytes::copy_from_slice(correlation_id.as_bytes());
    let mut records = Vec::with_capacity(events.len());
    let mut valid_count = 0;
    for ((raw, parsed), checked) in events.iter().zip(&parsed).zip(checked) {
        let correlation = Header::new(CORRELATION_ID_HEADER, correlation.clone());
        let record = match (parsed, checked) {
            (Ok(_), Ok(valid)) => {
                valid_count += 1;
                OutgoingRecord {
                    topic: RAW_TOPIC.to_string(),
                    partition: None,
                    key: valid.key.map(Bytes::from),
                    value: Bytes::from(valid.payload),
                    headers: vec![correlation],
                    timestamp_ms: None,
                }
            }
            (Err(parse_error), _) => invalid_record(raw, correlation, parse_error.clone()),
            (Ok(_), Err(reason)) => invalid_record(raw, correlation, reason_text(&reason)),
        };
        records.push(record);
    }
    Ok((records, valid_count))
}

fn invalid_record(raw: &RawValue, correlation: Header, reason: String) -> OutgoingRecord {
    OutgoingRecord {
        topic: INVALID_TOPIC.to_string(),
        partition: None,
        key: None,
        value: Bytes::copy_from_slice(raw.get().as_bytes()),
        headers: vec![correlation, Header::new(ERROR_MESSAGE_HEADER, reason)],
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
