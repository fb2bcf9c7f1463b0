//! Entry points for the fuzz targets (`fuzz/`, feature `fuzzing`): the record decoder and
//! the recovery scan on arbitrary bytes, with what the rest of the log relies on checked by
//! assertions. A panic here is a bug found.

use bytes::Bytes;

use super::record::{self, FRAME_OVERHEAD, Frame};
use super::segment;

/// Checks the frames at the start of `bytes` one after another, as a read does. A frame
/// that passes the check must decode, and encoding what it decodes must give back the
/// same bytes (reads and recovery agree on what a record is).
pub fn frames(bytes: &[u8]) {
    let mut at = 0;
    while at < bytes.len() {
        match record::check_frame(&bytes[at..]) {
            Frame::Complete {
                len,
                offset,
                timestamp_ms,
            } => {
                let frame = Bytes::copy_from_slice(&bytes[at..at + len]);
                let decoded = record::decode(&frame, "fuzz", 0).unwrap_or_else(|e| {
                    panic!("a frame that passed the check does not decode: {e}")
                });
                assert_eq!(
                    (decoded.offset, decoded.timestamp_ms),
                    (offset, timestamp_ms)
                );
                let mut again = Vec::new();
                record::encode(
                    &mut again,
                    decoded.offset,
                    decoded.timestamp_ms,
                    decoded.key.as_deref(),
                    &decoded.headers,
                    &decoded.value,
                );
                assert_eq!(
                    again,
                    &frame[..],
                    "decoding then encoding changed the frame"
                );
                at += len;
            }
            Frame::Incomplete { needed } => {
                assert!(
                    needed > bytes.len() - at,
                    "incomplete, yet {needed} bytes are there"
                );
                break;
            }
            Frame::Invalid(_) => break,
        }
    }
}

/// `body` framed with its true length and checksum, so that a fuzzer reaches the body's
/// structure without having to guess a CRC.
pub fn frame_around(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_OVERHEAD + body.len());
    frame.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    frame.extend_from_slice(body);
    frame
}

/// Runs the recovery scan over `bytes` as a segment starting at offset `base`, and checks
/// what recovery relies on: the valid prefix is a prefix, the scan stops with a reason
/// exactly when something follows it, the sparse index points at records in order, and
/// the valid prefix alone scans clean to the same end.
pub fn scan(bytes: &[u8], base: u64) {
    let len = bytes.len() as u64;
    let scan = segment::scan_reader(bytes, len, base).expect("reading from memory");
    assert!(scan.valid_len <= len);
    assert_eq!(
        scan.bad.is_none(),
        scan.valid_len == len,
        "a clean scan must cover the file, a short one must say why: {:?}",
        scan.bad
    );
    assert!(scan.end >= base);
    for pair in scan.index.windows(2) {
        assert!(pair[0].offset < pair[1].offset && pair[0].position < pair[1].position);
    }
    if let Some(first) = scan.index.first() {
        assert_eq!((first.offset, first.position), (base, 0));
    }
    let prefix = &bytes[..scan.valid_len as usize];
    let again = segment::scan_reader(prefix, scan.valid_len, base).expect("reading from memory");
    assert!(
        again.bad.is_none(),
        "the valid prefix does not scan clean: {:?}",
        again.bad
    );
    assert_eq!(again.end, scan.end);
    frames(prefix);
}
