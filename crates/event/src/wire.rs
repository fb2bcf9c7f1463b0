//! Confluent wire format: byte 0 (magic), 4-byte big-endian schema id, Avro binary.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;

use crate::EventError;

/// The magic byte that starts every Confluent-framed record.
pub const MAGIC: u8 = 0;

/// Length of the wire header (magic + schema id).
pub const HEADER_LEN: usize = 5;

/// Writes the 5-byte header for `schema_id` into `out`.
pub fn write_header(out: &mut Vec<u8>, schema_id: u32) {
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Splits a framed record into its schema id and Avro payload.
pub fn split(bytes: &[u8]) -> Result<(u32, &[u8]), EventError> {
    if bytes.len() < HEADER_LEN {
        return Err(EventError::Wire(format!(
            "record of {} bytes is shorter than the 5-byte header",
            bytes.len()
        )));
    }
    if bytes[0] != MAGIC {
        return Err(EventError::Wire(format!(
            "magic byte is {:#04x}, expected 0x00",
            bytes[0]
        )));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}

/// Decodes the Avro payload of a record framed with schema `id`: exactly one datum, read
/// with `reader` (the writer schema, resolved to a reader schema if it was built so).
/// Trailing bytes are an error: the record is not what its schema says.
pub fn read_datum(
    reader: &GenericDatumReader<'_>,
    id: u32,
    payload: &[u8],
) -> Result<Value, EventError> {
    let decode = |reason: String| EventError::Decode {
        schema_id: id,
        reason,
    };
    let mut rest = payload;
    let value = reader
        .read_value(&mut rest)
        .map_err(|e| decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(decode(format!(
            "{} trailing bytes after the Avro record",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut buf = Vec::new();
        write_header(&mut buf, 0x0102_0304);
        buf.extend_from_slice(b"payload");
        assert_eq!(buf[..5], [0, 1, 2, 3, 4]);
        let (id, payload) = split(&buf).expect("framed");
        assert_eq!(id, 0x0102_0304);
        assert_eq!(payload, b"payload");
    }

    #[test]
    fn rejects_short_and_bad_magic() {
        assert!(split(&[0, 0, 0]).is_err());
        assert!(split(&[1, 0, 0, 0, 1, 9]).is_err());
    }
}
