//! v2 `POST /topics/<topic>`: `{"records": [{"value": ...}], "value_schema_id": ...}` in the
//! JSON, Avro or binary embedded format, answered with one offset per record in order.
//!
//! A record's `key` and `partition` are not used: events are keyed and partitioned by their
//! customer id as `/collect` does, so that the processor sees each customer's events in
//! order. An invalid event is kept in the invalid topic with its reason and reported in its
//! offset's `error` (code 42203), the others landing: the request is answered 200, as the
//! proxy answers per-record failures.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use clickstream_edge::Source;
use clickstream_edge::limit::Client;
use clickstream_event::INVALID_TOPIC;
use clickstream_ingest::{Landed, Outcome};
use http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::produce::{body, land_events, named_schema, writable};
use crate::{ProxyError, ProxyState, V2_CONTENT_TYPE, avro_json};

/// The embedded format a v2 request's content type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Embedded {
    Json,
    Avro,
    Binary,
}

/// A v2 produce request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRequest {
    records: Option<Vec<ProduceRecord>>,
    #[serde(default)]
    key_schema: Option<String>,
    #[serde(default)]
    key_schema_id: Option<u32>,
    #[serde(default)]
    value_schema: Option<String>,
    #[serde(default)]
    value_schema_id: Option<u32>,
}

/// One record of a v2 request; `key` and `partition` are accepted and not used.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRecord {
    #[serde(default)]
    #[allow(dead_code)]
    key: Option<Box<RawValue>>,
    #[serde(default)]
    value: Option<Box<RawValue>>,
    #[serde(default)]
    #[allow(dead_code)]
    partition: Option<u32>,
}

/// `POST /topics/<topic>`.
pub(crate) async fn produce(
    State(state): State<Arc<ProxyState>>,
    Path(topic): Path<String>,
    client: Option<Extension<Client>>,
    source: Option<Extension<Source>>,
    headers: HeaderMap,
    raw: Body,
) -> Result<Response, ProxyError> {
    let embedded = embedded_format(&headers)?;
    writable(&topic)?;
    let bytes = body(&state, &headers, raw).await?;
    let request: ProduceRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ProxyError::BadRequest(format!("malformed request: {e}")))?;
    let records = match request.records {
        Some(records) if !records.is_empty() => records,
        _ => {
            return Err(ProxyError::Unprocessable {
                code: 422,
                message: "records may not be empty".into(),
            });
        }
    };
    let _ = (&request.key_schema, &request.key_schema_id);
    let events = match embedded {
        Embedded::Json => records.into_iter().map(json_value).collect(),
        Embedded::Binary => records
            .into_iter()
            .map(binary_value)
            .collect::<Result<Vec<_>, _>>()?,
        Embedded::Avro => {
            let schema = named_schema(
                &state,
                &topic,
                request.value_schema_id,
                request.value_schema.as_deref(),
            )
            .await?;
            records
                .into_iter()
                .map(|r| avro_value(&schema, r))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let landed = land_events(&state, (client, source), bytes.len(), &events).await?;
    let value_schema_id = (embedded == Embedded::Avro).then_some(landed.schema_id);
    Ok(answer(&landed, value_schema_id))
}

/// The embedded format of `Content-Type`: `application/vnd.kafka.{json,avro,binary}.v2+json`,
/// or `application/json` (JSON, as proxies before 6.0 took it).
fn embedded_format(headers: &HeaderMap) -> Result<Embedded, ProxyError> {
    let found = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = found
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/vnd.kafka.json.v2+json" | "application/json" => Ok(Embedded::Json),
        "application/vnd.kafka.avro.v2+json" => Ok(Embedded::Avro),
        "application/vnd.kafka.binary.v2+json" => Ok(Embedded::Binary),
        _ => Err(ProxyError::UnsupportedMediaType(format!(
            "content type {found:?} is not taken: send application/vnd.kafka.json.v2+json, \
             application/vnd.kafka.avro.v2+json or application/vnd.kafka.binary.v2+json"
        ))),
    }
}

/// A JSON record's value, as sent (`null` when it has none: an invalid event).
fn json_value(record: ProduceRecord) -> Box<RawValue> {
    record.value.unwrap_or_else(|| RawValue::NULL.to_owned())
}

/// A binary record's value: base64 of the event's JSON text.
fn binary_value(record: ProduceRecord) -> Result<Box<RawValue>, ProxyError> {
    let Some(value) = record.value else {
        return Ok(RawValue::NULL.to_owned());
    };
    let text: String = serde_json::from_str(value.get())
        .map_err(|_| ProxyError::BadRequest("a binary value must be a base64 string".into()))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| ProxyError::BadRequest(format!("a binary value is not base64: {e}")))?;
    let event = String::from_utf8(decoded)
        .map_err(|_| ProxyError::BadRequest("a binary value must be UTF-8 JSON text".into()))?;
    // Text that is not JSON is kept as a JSON string: validation rejects it with its reason.
    Ok(RawValue::from_string(event.clone())
        .or_else(|_| RawValue::from_string(Value::String(event).to_string()))
        .unwrap_or_else(|_| RawValue::NULL.to_owned()))
}

/// An Avro record's value in plain JSON (see [`avro_json`]).
fn avro_value(
    schema: &apache_avro::Schema,
    record: ProduceRecord,
) -> Result<Box<RawValue>, ProxyError> {
    let Some(value) = record.value else {
        return Ok(RawValue::NULL.to_owned());
    };
    let parsed: Value = serde_json::from_str(value.get())
        .map_err(|e| ProxyError::BadRequest(format!("malformed record value: {e}")))?;
    let plain = avro_json::to_plain(schema, parsed);
    RawValue::from_string(plain.to_string())
        .map_err(|e| ProxyError::BadRequest(format!("malformed record value: {e}")))
}

/// 200 with one offset per record, in order.
fn answer(landed: &Landed, value_schema_id: Option<u32>) -> Response {
    let offsets: Vec<Value> = landed
        .outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Valid(at) => json!({
                "partition": at.partition, "offset": at.offset, "error_code": null, "error": null
            }),
            Outcome::Invalid { position, reason } => json!({
                "partition": null, "offset": null, "error_code": 42203,
                "error": format!(
                    "invalid event: {reason} (kept in {INVALID_TOPIC}, partition {}, offset {})",
                    position.partition, position.offset
                ),
            }),
        })
        .collect();
    let body = json!({
        "key_schema_id": null,
        "value_schema_id": value_schema_id,
        "offsets": offsets,
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(V2_CONTENT_TYPE),
    );
    response
}
