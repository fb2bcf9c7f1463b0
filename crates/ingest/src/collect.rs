//! `POST /collect`: validate a batch, route each event, answer once all of it is durable.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::{Extension, Json};
use clickstream_edge::Source;
use clickstream_edge::body::{BodyLimits, read_body};
use clickstream_edge::limit::Client;
use http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::land::land;
use crate::metrics::{Handles, RequestOutcome};
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

    let source = source.map(|Extension(source)| source);
    let landed = land(&state, &events, source.as_ref()).await?;
    let valid_count = landed.valid_count();
    let metrics = Handles::get();
    metrics.bytes.increment(body.len() as u64);
    metrics.requests(RequestOutcome::Accepted).increment(1);
    metrics
        .request_duration
        .record(started.elapsed().as_secs_f64());
    Ok(Json(CollectResponse {
        status: "success".into(),
        correlation_id: landed.correlation_id,
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
