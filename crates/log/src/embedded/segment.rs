//! One segment file: its in-memory description (sparse index, published length), the
//! recovery scan, and positional reads.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::record::{self, Frame};
use crate::{LogError, LogRecord};

/// A sparse index entry is added every this many bytes of records: a read scans at most
/// this much before reaching its first record.
pub(crate) const INDEX_INTERVAL_BYTES: u64 = 4096;

/// Bytes read per positional read; larger records get a read of their own size.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// File name of the segment starting at `base`: the offset on 20 digits, so that names
/// sort like offsets.
pub(crate) fn file_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The base offset encoded in a segment file name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A sparse index entry: the record with `offset` starts at byte `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Record offset.
    pub offset: u64,
    /// Byte position of the record in the segment.
    pub position: u64,
}

/// What readers know of a segment: only published (durable under `fsync = always`) data.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Offset of the first record.
    pub base: u64,
    /// The segment file.
    pub path: PathBuf,
    /// Read-only handle for positional reads, separate from the writer's.
    pub file: Arc<File>,
    /// Published length in bytes; readers never look past it.
    pub len: u64,
    /// Offset after the last published record.
    pub end: u64,
    /// Newest record timestamp, `i64::MIN` when empty; drives time retention.
    pub max_timestamp_ms: i64,
    /// Sparse index, by increasing offset.
    pub index: Vec<IndexEntry>,
}

impl Segment {
    /// Where a read of `offset` should start scanning: the last indexed record at or
    /// before it.
    pub(crate) fn position_for(&self, offset: u64) -> u64 {
        let after = self.index.partition_point(|e| e.offset <= offset);
        after.checked_sub(1).map_or(0, |i| self.index[i].position)
    }
}

/// Result of scanning a segment file at recovery.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Length of the valid prefix.
    pub valid_len: u64,
    /// Offset after the last valid record.
    pub end: u64,
    /// Newest timestamp in the valid prefix.
    pub max_timestamp_ms: i64,
    /// Sparse index of the valid prefix.
    pub index: Vec<IndexEntry>,
    /// Actual file length.
    pub file_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub bad: Option<String>,
}

/// Reads a segment from the start and validates every frame: complete, checksum, offsets
/// consecutive from `base`. Stops at the first bad frame and says why.
pub(crate) fn scan(path: &Path, base: u64) -> io::Result<Scan> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    scan_reader(file, file_len, base)
}

/// [`scan`] over any reader of `file_len` bytes.
pub(crate) fn scan_reader(mut file: impl Read, file_len: u64, base: u64) -> io::Result<Scan> {
    let mut scan = Scan {
        valid_len: 0,
        end: base,
        max_timestamp_ms: i64::MIN,
        index: Vec::new(),
        file_len,
        bad: None,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut consumed = 0usize; // bytes of `buf` already parsed
    let mut eof = false;
    let mut since_index = INDEX_INTERVAL_BYTES; // index the first record
    loop {
        match record::check_frame(&buf[consumed..]) {
            Frame::Complete {
                len,
                offset,
                timestamp_ms,
            } => {
                if offset != scan.end {
                    scan.bad = Some(format!("offset {offset} where {} was expected", scan.end));
                    break;
                }
                if since_index >= INDEX_INTERVAL_BYTES {
                    scan.index.push(IndexEntry {
                        offset,
                        position: scan.valid_len,
                    });
                    since_index = 0;
                }
                since_index += len as u64;
                scan.valid_len += len as u64;
                scan.end += 1;
                scan.max_timestamp_ms = scan.max_timestamp_ms.max(timestamp_ms);
                consumed += len;
            }
            Frame::Incomplete { needed } => {
                let available = buf.len() - consumed;
                // Everything up to the file's length parsed: a clean end, even when the
                // last read happened to fill the buffer exactly (or the file is empty).
                if available == 0 && scan.valid_len == file_len {
                    break;
                }
                if eof {
                    if available > 0 {
                        scan.bad = Some("incomplete record at the end of the file".into());
                    }
                    break;
                }
                if scan.valid_len + needed as u64 > file_len {
                    scan.bad = Some(format!("record of {needed} bytes runs past the end"));
                    break;
                }
                buf.drain(..consumed);
                consumed = 0;
                let want = needed.max(READ_CHUNK_BYTES) - available;
                let read = (&mut file).take(want as u64).read_to_end(&mut buf)?;
                eof = read < want;
            }
            Frame::Invalid(reason) => {
                scan.bad = Some(reason);
                break;
            }
        }
    }
    Ok(scan)
}

/// The part of a segment a read may look at, captured under the partition lock so the
/// disk read runs without it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentSlice {
    /// The segment file (for errors).
    pub path: PathBuf,
    /// Read handle; stays valid even if retention unlinks the file meanwhile.
    pub file: Arc<File>,
    /// Where to start scanning.
    pub position: u64,
    /// Published length: never read past it.
    pub len: u64,
}

/// Records gathered by a read, with its limits.
#[derive(Debug)]
pub(crate) struct Collector {
    /// Records read so far.
    pub records: Vec<LogRecord>,
    /// Frame bytes read so far.
    pub bytes: usize,
    /// Stop at this many records.
    pub max_records: usize,
    /// Stop once this many bytes are read (a read returns at least one record).
    pub max_bytes: usize,
}

impl Collector {
    /// An empty collector with these limits.
    pub(crate) fn new(max_records: usize, max_bytes: usize) -> Self {
        Self {
            records: Vec::with_capacity(max_records.min(1024)),
            bytes: 0,
            max_records,
            max_bytes,
        }
    }

    /// Whether a limit is reached.
    pub(crate) fn is_full(&self) -> bool {
        self.records.len() >= self.max_records
            || (self.bytes >= self.max_bytes && !self.records.is_empty())
    }
}

/// Adds to `out` the records of `slice` with offset >= `from` until `out` is full or the
/// slice ends.
pub(crate) fn read_slice(
    slice: &SegmentSlice,
    from: u64,
    topic: &str,
    partition: u32,
    out: &mut Collector,
) -> Result<(), LogError> {
    let corrupt = |position: u64, reason: String| LogError::Corrupt {
        path: slice.path.clone(),
        position,
        reason,
    };
    let mut pos = slice.position;
    let mut want = READ_CHUNK_BYTES;
    while pos < slice.len && !out.is_full() {
        let size = want.min((slice.len - pos) as usize);
        let mut buf = vec![0u8; size];
        slice
            .file
            .read_exact_at(&mut buf, pos)
            .map_err(|source| LogError::Io {
                path: slice.path.clone(),
                source,
            })?;
        let buf = Bytes::from(buf);
        let mut at = 0usize;
        while at < buf.len() && !out.is_full() {
            match record::check_frame(&buf[at..]) {
                Frame::Complete { len, offset, .. } => {
                    if offset >= from {
                        let frame = buf.slice(at..at + len);
                        let rec = record::decode(&frame, topic, partition)
                            .map_err(|reason| corrupt(pos + at as u64, reason))?;
                        out.records.push(rec);
                        out.bytes += len;
                    }
                    at += len;
                }
                Frame::Incomplete { needed } => {
                    if pos + (at + needed) as u64 > slice.len {
                        return Err(corrupt(
                            pos + at as u64,
                            "record overruns the segment".into(),
                        ));
                    }
                    want = needed.max(READ_CHUNK_BYTES);
                    break;
                }
                Frame::Invalid(reason) => return Err(corrupt(pos + at as u64, reason)),
            }
        }
        pos += at as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_segment(path: &Path, base: u64, count: u64, value_len: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        for i in 0..count {
            let value = vec![b'a' + (i % 26) as u8; value_len];
            record::encode(&mut buf, base + i, i as i64, None, &[], &value);
        }
        let mut file = File::create(path).expect("create");
        file.write_all(&buf).expect("write");
        buf
    }

    #[test]
    fn file_names_round_trip_and_sort() {
        assert_eq!(file_name(42), "00000000000000000042.log");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_file_name("42.log"), None);
        assert_eq!(parse_file_name("0000000000000000004x.log"), None);
    }

    #[test]
    fn scan_indexes_and_reads_from_any_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(file_name(100));
        let bytes = write_segment(&path, 100, 500, 100);
        let scan = scan(&path, 100).expect("scan");
        assert!(scan.bad.is_none());
        assert_eq!((scan.valid_len, scan.end), (bytes.len() as u64, 600));
        assert_eq!(scan.max_timestamp_ms, 499);
        assert!(
            scan.index.len() > 10,
            "sparse index has {} entries",
            scan.index.len()
        );
        let segment = Segment {
            base: 100,
            path: path.clone(),
            file: Arc::new(File::open(&path).expect("open")),
            len: scan.valid_len,
            end: scan.end,
            max_timestamp_ms: scan.max_timestamp_ms,
            index: scan.index,
        };
        for from in [100, 101, 333, 599] {
            let slice = SegmentSlice {
                path: path.clone(),
                file: segment.file.clone(),
                position: segment.position_for(from),
                len: segment.len,
            };
            let mut out = Collector::new(3, usize::MAX);
            read_slice(&slice, from, "t", 0, &mut out).expect("read");
            let offsets: Vec<u64> = out.records.iter().map(|r| r.offset).collect();
            let expected: Vec<u64> = (from..600.min(from + 3)).collect();
            assert_eq!(offsets, expected);
        }
    }

    #[test]
    fn scan_of_an_empty_segment_is_clean() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(file_name(7));
        write_segment(&path, 7, 0, 0);
        let scan = scan(&path, 7).expect("scan");
        assert!(scan.bad.is_none(), "{:?}", scan.bad);
        assert_eq!((scan.valid_len, scan.end), (0, 7));
    }

    #[test]
    fn scan_of_a_segment_that_fills_the_read_buffer_exactly_is_clean() {
        // 1024 frames of 36 + 220 bytes: exactly one read chunk, so the last read returns
        // as many bytes as asked and end-of-file is only seen by the length check.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(file_name(0));
        let bytes = write_segment(&path, 0, 1024, 220);
        assert_eq!(bytes.len(), READ_CHUNK_BYTES);
        let scan = scan(&path, 0).expect("scan");
        assert!(scan.bad.is_none(), "{:?}", scan.bad);
        assert_eq!(scan.end, 1024);
    }

    #[test]
    fn scan_stops_at_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(file_name(0));
        let bytes = write_segment(&path, 0, 10, 50);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        file.write_all(&bytes[..30]).expect("append partial record");
        let scan = scan(&path, 0).expect("scan");
        assert_eq!((scan.valid_len, scan.end), (bytes.len() as u64, 10));
        assert_eq!(scan.file_len, bytes.len() as u64 + 30);
        assert!(scan.bad.is_some());
    }

    #[test]
    fn scan_rejects_non_consecutive_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(file_name(0));
        let mut buf = Vec::new();
        record::encode(&mut buf, 0, 0, None, &[], b"a");
        let first = buf.len() as u64;
        record::encode(&mut buf, 5, 0, None, &[], b"b");
        std::fs::write(&path, &buf).expect("write");
        let scan = scan(&path, 0).expect("scan");
        assert_eq!((scan.valid_len, scan.end), (first, 1));
        assert!(scan.bad.expect("bad").contains("offset 5"));
    }
}
