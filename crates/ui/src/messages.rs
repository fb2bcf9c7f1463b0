//! Log records as people read them: Confluent-framed Avro decoded to JSON with the writer
//! schema fetched from the registry by id, JSON shown as sent, anything else as text or
//! hex, headers as text.

use apache_avro::reader::datum::GenericDatumReader;
use clickstream_event::wire;
use clickstream_log::LogRecord;
use clickstream_registry::RegistryClient;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::avro_json::AvroJson;

/// Most bytes of an undecodable value shown (as hex or text).
const PREVIEW_BYTES: usize = 4096;

/// A record for the message browser.
#[derive(Debug, Serialize)]
pub(crate) struct Message {
    /// Partition.
    pub partition: u32,
    /// Offset.
    pub offset: u64,
    /// Log timestamp, milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Key as text (lossy), if any.
    pub key: Option<String>,
    /// Headers in order, values as text (lossy).
    pub headers: Vec<MessageHeader>,
    /// Size of the value in bytes.
    pub size_bytes: usize,
    /// The value, decoded as far as it goes.
    pub value: DecodedValue,
}

/// One header.
#[derive(Debug, Serialize)]
pub(crate) struct MessageHeader {
    /// Name.
    pub key: String,
    /// Value as text.
    pub value: String,
}

/// What a value turned out to be.
#[derive(Debug, Serialize)]
pub(crate) struct DecodedValue {
    /// `avro` (decoded through the registry), `json`, `text` or `binary`.
    pub format: &'static str,
    /// The writer schema's id, for Avro.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<u32>,
    /// The value as JSON (Avro decoded in field order, or the JSON as sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Box<RawValue>>,
    /// The value as text (text), or as hex (binary), cut at 4 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why an Avro-framed value could not be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DecodedValue {
    fn fallback(bytes: &[u8], error: Option<String>, schema_id: Option<u32>) -> Self {
        let shown = &bytes[..bytes.len().min(PREVIEW_BYTES)];
        let (format, text) = match std::str::from_utf8(shown) {
            Ok(text) if !text.contains('\0') => ("text", text.to_string()),
            _ => ("binary", hex(shown)),
        };
        DecodedValue {
            format,
            schema_id,
            json: None,
            text: Some(text),
            error,
        }
    }
}

/// Decodes one record for display.
pub(crate) async fn decode(registry: &RegistryClient, record: &LogRecord) -> Message {
    Message {
        partition: record.partition,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        key: record
            .key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned()),
        headers: record
            .headers
            .iter()
            .map(|h| MessageHeader {
                key: h.key.to_string(),
                value: String::from_utf8_lossy(&h.value).into_owned(),
            })
            .collect(),
        size_bytes: record.value.len(),
        value: decode_value(registry, &record.value).await,
    }
}

/// Avro in Confluent wire format if it starts with the magic byte and its schema id is
/// known to the registry; else JSON if it parses; else text or hex.
pub(crate) async fn decode_value(registry: &RegistryClient, bytes: &[u8]) -> DecodedValue {
    if bytes.first() == Some(&wire::MAGIC)
        && let Ok((id, payload)) = wire::split(bytes)
    {
        return match decode_avro(registry, id, payload).await {
            Ok(json) => DecodedValue {
                format: "avro",
                schema_id: Some(id),
                json: Some(json),
                text: None,
                error: None,
            },
            Err(error) => DecodedValue::fallback(bytes, Some(error), Some(id)),
        };
    }
    match serde_json::from_slice::<&RawValue>(bytes) {
        Ok(raw) => DecodedValue {
            format: "json",
            schema_id: None,
            json: Some(raw.to_owned()),
            text: None,
            error: None,
        },
        Err(_) => DecodedValue::fallback(bytes, None, None),
    }
}

async fn decode_avro(
    registry: &RegistryClient,
    id: u32,
    payload: &[u8],
) -> Result<Box<RawValue>, String> {
    let schema = registry
        .schema_by_id(id)
        .await
        .map_err(|e| format!("schema id {id}: {e}"))?;
    let reader = GenericDatumReader::builder(&schema)
        .build()
        .map_err(|e| format!("schema id {id}: {e}"))?;
    let value = wire::read_datum(&reader, id, payload).map_err(|e| e.to_string())?;
    let text = serde_json::to_string(&AvroJson(&value)).map_err(|e| e.to_string())?;
    RawValue::from_string(text).map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_fall_back_to_hex() {
        let shown = DecodedValue::fallback(&[0xff, 0x00, 0x10], None, None);
        assert_eq!(shown.format, "binary");
        assert_eq!(shown.text.as_deref(), Some("ff 00 10"));
        let shown = DecodedValue::fallback(b"plain words", None, None);
        assert_eq!(shown.format, "text");
    }
}
