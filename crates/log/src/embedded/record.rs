//! The on-disk record format of a segment file.
//!
//! A segment is a plain concatenation of frames, nothing else (no file header), so that a
//! torn tail is recognisable and can be cut off. Every integer is **little-endian**:
//!
//! ```text
//! u32  len            bytes that follow this field (crc + body)
//! u32  crc            CRC-32C (Castagnoli) of the body
//! body:
//!   u64  offset         the record's offset in its partition
//!   i64  timestamp_ms   milliseconds since the Unix epoch
//!   i32  key_len        -1 when the record has no key
//!   [u8] key
//!   u32  header_count
//!   header_count x { u32 name_len, [u8] name (UTF-8), u32 value_len, [u8] value }
//!   u32  value_len
//!   [u8] value
//! ```
//!
//! The offset is inside the checksummed body so that recovery can check that records are
//! consecutive: a frame from a previous life of the file can never pass as the next record.

use bytes::Bytes;

use crate::{Header, LogRecord};

/// Bytes before the body: `len` and `crc`.
pub(crate) const FRAME_OVERHEAD: usize = 8;
/// Smallest valid body: offset, timestamp, key length, header count, value length.
const MIN_BODY: usize = 8 + 8 + 4 + 4 + 4;

/// Encoded size of a record, framing included.
pub(crate) fn encoded_len(key: Option<&[u8]>, headers: &[Header], value: &[u8]) -> usize {
    let headers_len: usize = headers
        .iter()
        .map(|h| 8 + h.key.len() + h.value.len())
        .sum();
    FRAME_OVERHEAD + MIN_BODY + key.map_or(0, <[u8]>::len) + headers_len + value.len()
}

/// Appends one encoded record to `buf`. The caller has checked the size against
/// `max_record_bytes`, which keeps every length below `u32::MAX`.
pub(crate) fn encode(
    buf: &mut Vec<u8>,
    offset: u64,
    timestamp_ms: i64,
    key: Option<&[u8]>,
    headers: &[Header],
    value: &[u8],
) {
    let total = encoded_len(key, headers, value);
    let start = buf.len();
    buf.reserve(total);
    buf.extend_from_slice(&((total - 4) as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]); // crc, filled in below once the body is written
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&timestamp_ms.to_le_bytes());
    match key {
        Some(key) => {
            buf.extend_from_slice(&(key.len() as i32).to_le_bytes());
            buf.extend_from_slice(key);
        }
        None => buf.extend_from_slice(&(-1i32).to_le_bytes()),
    }
    buf.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for header in headers {
        buf.extend_from_slice(&(header.key.len() as u32).to_le_bytes());
        buf.extend_from_slice(header.key.as_bytes());
        buf.extend_from_slice(&(header.value.len() as u32).to_le_bytes());
        buf.extend_from_slice(&header.value);
    }
    buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
    buf.extend_from_slice(value);
    let crc = crc32c::crc32c(&buf[start + FRAME_OVERHEAD..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole, checksummed, well-formed frame of `len` bytes.
    Complete {
        /// Frame length, framing included.
        len: usize,
        /// Record offset.
        offset: u64,
        /// Record timestamp.
        timestamp_ms: i64,
    },
    /// The buffer ends inside the frame; `needed` bytes hold the whole frame.
    Incomplete {
        /// Frame length announced by the header (or the header length if not even that).
        needed: usize,
    },
    /// Not a valid frame.
    Invalid(String),
}

/// Checks the frame at the start of `buf`: length, checksum and body structure.
pub(crate) fn check_frame(buf: &[u8]) -> Frame {
    let Some(len) = read_u32(buf, 0) else {
        return Frame::Incomplete { needed: 4 };
    };
    let total = 4 + len as usize;
    if total < FRAME_OVERHEAD + MIN_BODY {
        return Frame::Invalid(format!("frame length {len} is too small"));
    }
    if buf.len() < total {
        return Frame::Incomplete { needed: total };
    }
    let frame = &buf[..total];
    let stored = read_u32(frame, 4).unwrap_or_default();
    let body = &frame[FRAME_OVERHEAD..];
    let actual = crc32c::crc32c(body);
    if stored != actual {
        return Frame::Invalid(format!(
            "checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        ));
    }
    if let Err(reason) = walk_body(body, |_| {}) {
        return Frame::Invalid(reason);
    }
    Frame::Complete {
        len: total,
        offset: read_u64(body, 0).unwrap_or_default(),
        timestamp_ms: read_u64(body, 8).unwrap_or_default() as i64,
    }
}

/// Decodes a frame already validated by [`check_frame`]; key, value and header values are
/// slices of `frame` (no copy).
pub(crate) fn decode(frame: &Bytes, topic: &str, partition: u32) -> Result<LogRecord, String> {
    let body_start = FRAME_OVERHEAD;
    let body = &frame[body_start..];
    let mut parts = BodyParts::default();
    walk_body(body, |part| match part {
        Part::Key(range) => parts.key = Some(range),
        Part::Header(name, value) => parts.headers.push((name, value)),
        Part::Value(range) => parts.value = range,
    })?;
    let slice = |r: std::ops::Range<usize>| frame.slice(body_start + r.start..body_start + r.end);
    let mut headers = Vec::with_capacity(parts.headers.len());
    for (name, value) in parts.headers {
        let name = std::str::from_utf8(&body[name]).map_err(|_| "header name is not UTF-8")?;
        headers.push(Header::read(name, slice(value)));
    }
    Ok(LogRecord {
        topic: topic.to_owned(),
        partition,
        offset: read_u64(body, 0).unwrap_or_default(),
        timestamp_ms: read_u64(body, 8).unwrap_or_default() as i64,
        key: parts.key.map(slice),
        value: slice(parts.value),
        headers,
    })
}

#[derive(Default)]
struct BodyParts {
    key: Option<std::ops::Range<usize>>,
    headers: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    value: std::ops::Range<usize>,
}

enum Part {
    Key(std::ops::Range<usize>),
    Header(std::ops::Range<usize>, std::ops::Range<usize>),
    Value(std::ops::Range<usize>),
}

/// Walks the variable part of a body, checking every length against the body's end, and
/// reports each part's byte range; the body must end exactly after the value.
fn walk_body(body: &[u8], mut on_part: impl FnMut(Part)) -> Result<(), String> {
    let mut pos = 16;
    let key_len = read_u32(body, pos).ok_or("truncated key length")? as i32;
    pos += 4;
    if key_len >= 0 {
        let range = take(body, &mut pos, key_len as usize).ok_or("key overruns the record")?;
        on_part(Part::Key(range));
    } else if key_len != -1 {
        return Err(format!("invalid key length {key_len}"));
    }
    let count = read_u32(body, pos).ok_or("truncated header count")?;
    pos += 4;
    for _ in 0..count {
        let name_len = read_u32(body, pos).ok_or("truncated header name length")?;
        pos += 4;
        let name = take(body, &mut pos, name_len as usize).ok_or("header name overruns")?;
        // Names are text (`Header::key`): a frame whose name is not would pass the check
        // and then fail every read of it.
        std::str::from_utf8(&body[name.clone()]).map_err(|_| "header name is not UTF-8")?;
        let value_len = read_u32(body, pos).ok_or("truncated header value length")?;
        pos += 4;
        let value = take(body, &mut pos, value_len as usize).ok_or("header value overruns")?;
        on_part(Part::Header(name, value));
    }
    let value_len = read_u32(body, pos).ok_or("truncated value length")?;
    pos += 4;
    let value = take(body, &mut pos, value_len as usize).ok_or("value overruns the record")?;
    on_part(Part::Value(value));
    if pos != body.len() {
        return Err(format!("{} trailing bytes in the record", body.len() - pos));
    }
    Ok(())
}

fn take(buf: &[u8], pos: &mut usize, len: usize) -> Option<std::ops::Range<usize>> {
    let end = pos.checked_add(len).filter(|&end| end <= buf.len())?;
    let range = *pos..end;
    *pos = end;
    Some(range)
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn read_u64(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(offset: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        let headers = [Header::new("h1", "v1"), Header::new("empty", "")];
        encode(
            &mut buf,
            offset,
            1_700_000_000_000,
            Some(b"key"),
            &headers,
            b"value",
        );
        buf
    }

    #[test]
    fn encode_decode_round_trip() {
        let buf = sample(42);
        assert_eq!(
            buf.len(),
            encoded_len(
                Some(b"key"),
                &[Header::new("h1", "v1"), Header::new("empty", "")],
                b"value"
            )
        );
        let Frame::Complete {
            len,
            offset,
            timestamp_ms,
        } = check_frame(&buf)
        else {
            panic!("frame should be complete");
        };
        assert_eq!(
            (len, offset, timestamp_ms),
            (buf.len(), 42, 1_700_000_000_000)
        );
        let record = decode(&Bytes::from(buf), "t", 3).expect("decode");
        assert_eq!(record.offset, 42);
        assert_eq!(record.partition, 3);
        assert_eq!(record.key.as_deref(), Some(&b"key"[..]));
        assert_eq!(record.value.as_ref(), b"value");
        assert_eq!(record.header("h1"), Some(&b"v1"[..]));
        assert_eq!(record.header("empty"), Some(&b""[..]));
    }

    #[test]
    fn keyless_empty_record_round_trips() {
        let mut buf = Vec::new();
        encode(&mut buf, 0, -5, None, &[], b"");
        assert!(matches!(check_frame(&buf), Frame::Complete { .. }));
        let record = decode(&Bytes::from(buf), "t", 0).expect("decode");
        assert_eq!(record.key, None);
        assert!(record.value.is_empty() && record.headers.is_empty());
        assert_eq!(record.timestamp_ms, -5);
    }

    /// Found by the `log_segment` fuzz target: a checksummed frame whose header name is not
    /// UTF-8 passed the check (so recovery kept it) and then failed to decode on every read.
    #[test]
    fn a_header_name_that_is_not_utf8_fails_the_check() {
        let mut buf = Vec::new();
        let headers = [Header::new("h", Bytes::from_static(b"v"))];
        encode(&mut buf, 0, 1, None, &headers, b"value");
        let name_at = FRAME_OVERHEAD + 8 + 8 + 4 + 4 + 4;
        assert_eq!(buf[name_at], b'h');
        buf[name_at] = 0xff;
        let crc = crc32c::crc32c(&buf[FRAME_OVERHEAD..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        match check_frame(&buf) {
            Frame::Invalid(reason) => assert!(reason.contains("UTF-8"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let buf = sample(7);
        for cut in 0..buf.len() {
            assert!(
                matches!(check_frame(&buf[..cut]), Frame::Incomplete { .. }),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let buf = sample(7);
        for at in 4..buf.len() {
            let mut bad = buf.clone();
            bad[at] ^= 0x40;
            assert!(
                matches!(check_frame(&bad), Frame::Invalid(_)),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn zeroed_tail_is_invalid_not_incomplete() {
        assert!(matches!(check_frame(&[0u8; 64]), Frame::Invalid(_)));
    }
}
