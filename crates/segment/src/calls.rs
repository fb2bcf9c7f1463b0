//! The calls of one request, each normalized, validated against the Segment subject's
//! version in force and framed for the Segment topic, or kept for the invalid topic with
//! its reason. Nothing a library sends is dropped: a call that cannot be taken is kept as
//! sent (but for its write key) with why.

use bytes::Bytes;
use clickstream_event::EventValidator;
use clickstream_ingest::{Routed, Stamp, invalid_record};
use clickstream_log::OutgoingRecord;
use serde_json::{Map, Value};

use crate::normalize::{CallType, Received, normalize};
use crate::{SEGMENT_INVALID_TOPIC, SEGMENT_TOPIC};

/// What a request's body says besides its calls.
#[derive(Debug, Default)]
pub(crate) struct Envelope {
    /// The batch's `sentAt`, for calls without their own.
    pub(crate) sent_at: Option<Value>,
    /// The first write key the body carries (the batch's, else a call's).
    pub(crate) write_key: Option<String>,
}

/// The calls of a body: a batch's `batch` array, or the body itself for a single call.
pub(crate) fn split(body: Value, batch: bool) -> Result<(Vec<Value>, Envelope), String> {
    let Value::Object(mut fields) = body else {
        return Err("the body must be a JSON object".into());
    };
    let mut envelope = Envelope {
        sent_at: fields.get("sentAt").cloned(),
        write_key: key_of(&fields),
    };
    if !batch {
        return Ok((vec![Value::Object(fields)], envelope));
    }
    let calls = match fields.remove("batch") {
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err("field 'batch': expected an array of calls".into()),
        None => return Err("field 'batch': missing (a batch's calls go in it)".into()),
    };
    if envelope.write_key.is_none() {
        envelope.write_key = calls.iter().find_map(|c| c.as_object().and_then(key_of));
    }
    Ok((calls, envelope))
}

fn key_of(fields: &Map<String, Value>) -> Option<String> {
    fields
        .get("writeKey")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}

/// Limits a call is held to.
pub(crate) struct CallLimits {
    /// Largest call, as JSON text.
    pub(crate) max_call_bytes: usize,
    /// How much of a larger one is kept.
    pub(crate) kept_bytes: usize,
}

/// Normalizes, validates and frames every call; one record per call, in order.
pub(crate) fn route(
    calls: Vec<Value>,
    envelope: &Envelope,
    path_type: Option<CallType>,
    (received, limits): (&Received, &CallLimits),
    validator: &EventValidator,
    stamp: &Stamp,
) -> Result<Routed, String> {
    let prepared: Vec<Result<Value, (String, String)>> = calls
        .into_iter()
        .map(|call| prepare(call, envelope, path_type, received, limits))
        .collect();
    // One encoder for the whole request, as ingest's `/collect` does.
    let mut checked = validator
        .validate_batch(prepared.iter().filter_map(|p| p.as_ref().ok()))
        .map_err(|e| format!("the calls could not be encoded: {e}"))?
        .into_iter();
    let mut records = Vec::with_capacity(prepared.len());
    let mut reasons = Vec::with_capacity(prepared.len());
    for call in &prepared {
        let (record, reason) = match call {
            Ok(normalized) => match checked.next() {
                Some(Ok(valid)) => (valid_record(normalized, valid.payload, stamp), None),
                Some(Err(invalid)) => refused(&normalized.to_string(), invalid.to_string(), stamp),
                None => return Err("the encoder answered fewer calls than it was given".into()),
            },
            Err((kept, reason)) => refused(kept, reason.clone(), stamp),
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

fn refused(kept: &str, reason: String, stamp: &Stamp) -> (OutgoingRecord, Option<String>) {
    let record = invalid_record(SEGMENT_INVALID_TOPIC, kept, stamp.headers(), reason.clone());
    (record, Some(reason))
}

/// The call's record for the Segment topic, keyed by its anonymous id (else its user id)
/// so that a visitor's calls stay in order on one partition.
fn valid_record(normalized: &Value, payload: Vec<u8>, stamp: &Stamp) -> OutgoingRecord {
    let key = ["anonymous_id", "user_id"]
        .iter()
        .find_map(|field| normalized[*field].as_str())
        .map(|id| Bytes::copy_from_slice(id.as_bytes()));
    OutgoingRecord {
        topic: SEGMENT_TOPIC.into(),
        partition: None,
        key,
        value: Bytes::from(payload),
        headers: stamp.headers(),
        timestamp_ms: None,
    }
}

/// The normalized call, or what is kept of it and why it is refused.
fn prepare(
    call: Value,
    envelope: &Envelope,
    path_type: Option<CallType>,
    received: &Received,
    limits: &CallLimits,
) -> Result<Value, (String, String)> {
    let Value::Object(mut fields) = call else {
        return Err((call.to_string(), "a call must be a JSON object".into()));
    };
    // A credential: kept nowhere, not even with a refused call.
    fields.remove("writeKey");
    let text = Value::Object(fields).to_string();
    if text.len() > limits.max_call_bytes {
        let mut end = limits.kept_bytes.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let reason = format!(
            "call is {} bytes, over the limit of {} bytes (its first {end} bytes are kept)",
            text.len(),
            limits.max_call_bytes
        );
        return Err((text[..end].to_string(), reason));
    }
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&text) else {
        return Err((text, "a call must be a JSON object".into()));
    };
    normalize(&fields, path_type, envelope.sent_at.as_ref(), received)
        .map_err(|rejected| (text, rejected.to_string()))
}
