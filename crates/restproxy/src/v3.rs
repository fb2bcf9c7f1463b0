//! v3 `POST /v3/clusters/<id>/topics/<topic>/records`: one or more concatenated JSON records
//! `{"value": {"type": "JSON", "data": ...}}`, answered with one delivery report per record,
//! in order, each followed by CRLF (Confluent's streaming answer, sent here once the whole
//! request is durable).
//!
//! Value types: `JSON` (or none: the registry's schema applies) carries the event, `STRING`
//! its JSON text, `BINARY` that text in base64, `AVRO` the event in Avro's JSON encoding with
//! the `schema`, `schema_id` or latest version of the subject. A record's key, partition,
//! headers and timestamp are not used (see [`crate::v2`]). An invalid event is kept in the
//! invalid topic and reported with `error_code` 400 and the reason.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use clickstream_edge::Source;
use clickstream_edge::limit::Client;
use clickstream_event::INVALID_TOPIC;
use clickstream_ingest::Outcome;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::produce::{body, land_events, named_schema, writable};
use crate::{CLUSTER_ID, ProxyError, ProxyState, avro_json};

/// One v3 record; only `value` is used.
#[derive(Debug, Deserialize)]
struct Record {
    #[serde(default)]
    value: Option<Data>,
}

/// A record's value.
#[derive(Debug, Deserialize)]
struct Data {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    schema_id: Option<u32>,
}

/// `POST /v3/clusters/<id>/topics/<topic>/records`.
pub(crate) async fn produce(
    State(state): State<Arc<ProxyState>>,
    Path((_cluster, topic)): Path<(String, String)>,
    client: Option<Extension<Client>>,
    source: Option<Extension<Source>>,
    headers: HeaderMap,
    raw: Body,
) -> Result<Response, ProxyError> {
    check_content_type(&headers)?;
    writable(&topic)?;
    let bytes = body(&state, &headers, raw).await?;
    let records = split_records(&bytes)?;
    let mut events = Vec::with_capacity(records.len());
    let mut sizes = Vec::with_capacity(records.len());
    for record in records {
        let (event, kind) = event_of(&state, &topic, record).await?;
        sizes.push((kind, event.get().len()));
        events.push(event);
    }
    let landed = land_events(&state, (client, source), bytes.len(), &events).await?;
    let mut out = String::new();
    for (outcome, (kind, size)) in landed.outcomes.iter().zip(sizes) {
        let report = match outcome {
            Outcome::Valid(at) => json!({
                "error_code": 200,
                "cluster_id": CLUSTER_ID,
                "topic_name": topic,
                "partition_id": at.partition,
                "offset": at.offset,
                "value": {"type": kind, "size": size, "schema_id": landed.schema_id},
            }),
            Outcome::Invalid { position, reason } => json!({
                "error_code": 400,
                "message": format!(
                    "invalid event: {reason} (kept in {INVALID_TOPIC}, partition {}, offset {})",
                    position.partition, position.offset
                ),
            }),
        };
        out.push_str(&report.to_string());
        out.push_str("\r\n");
    }
    let mut response = (StatusCode::OK, out).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ProxyError> {
    let found = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = found.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(ProxyError::UnsupportedMediaType(format!(
        "content type {found:?} is not taken: send application/json"
    )))
}

/// The concatenated records of the body (at least one).
fn split_records(body: &[u8]) -> Result<Vec<Record>, ProxyError> {
    let records = serde_json::Deserializer::from_slice(body)
        .into_iter::<Record>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProxyError::BadRequest(format!("malformed record: {e}")))?;
    if records.is_empty() {
        return Err(ProxyError::Unprocessable {
            code: 42206,
            message: "the request has no record".into(),
        });
    }
    Ok(records)
}

/// A record's event as JSON text, and the value type it came as.
async fn event_of(
    state: &ProxyState,
    topic: &str,
    record: Record,
) -> Result<(Box<RawValue>, String), ProxyError> {
    let Some(value) = record.value else {
        return Ok((RawValue::NULL.to_owned(), "JSON".into()));
    };
    let kind = value.kind.as_deref().unwrap_or("JSON").to_ascii_uppercase();
    let data = value.data.unwrap_or_else(|| RawValue::NULL.to_owned());
    let event = match kind.as_str() {
        "JSON" => data,
        "STRING" => text_event(&data, false)?,
        "BINARY" => text_event(&data, true)?,
        "AVRO" => {
            let schema = match (value.schema_id, value.schema.as_deref()) {
                (None, None) => state
                    .registry
                    .latest(&clickstream_event::value_subject(topic))
                    .await
                    .map_err(|e| ProxyError::Unprocessable {
                        code: 42207,
                        message: format!("the schema registry could not answer: {e}"),
                    })
                    .map(|latest| (Some(latest.id), None))?,
                other => other,
            };
            let schema = named_schema(state, topic, schema.0, schema.1).await?;
            let parsed: Value = serde_json::from_str(data.get())
                .map_err(|e| ProxyError::BadRequest(format!("malformed record value: {e}")))?;
            RawValue::from_string(avro_json::to_plain(&schema, parsed).to_string())
                .map_err(|e| ProxyError::BadRequest(format!("malformed record value: {e}")))?
        }
        other => {
            return Err(ProxyError::BadRequest(format!(
                "value type {other} is not taken: send JSON, STRING, BINARY or AVRO"
            )));
        }
    };
    Ok((event, kind))
}

/// The event in a `STRING` (JSON text) or `BINARY` (base64 of it) value.
fn text_event(data: &RawValue, base64: bool) -> Result<Box<RawValue>, ProxyError> {
    let text: String = serde_json::from_str(data.get()).map_err(|_| {
        ProxyError::BadRequest("a STRING or BINARY value's data is a string".into())
    })?;
    let text = if base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| ProxyError::BadRequest(format!("a BINARY value is not base64: {e}")))?;
        String::from_utf8(bytes)
            .map_err(|_| ProxyError::BadRequest("a BINARY value must be UTF-8 text".into()))?
    } else {
        text
    };
    // Text that is not JSON is kept as a JSON string: validation rejects it with its reason.
    Ok(RawValue::from_string(text.clone())
        .or_else(|_| RawValue::from_string(Value::String(text).to_string()))
        .unwrap_or_else(|_| RawValue::NULL.to_owned()))
}
