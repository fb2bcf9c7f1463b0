//! Replay of a JSON Lines file, as the original `generator.py` did: batches of parsed
//! lines, one fresh uuid4 `package_id` per batch written into each event, the resume
//! position in a state file.
//!
//! The state file holds one number: the index of the first line not yet acknowledged (the
//! original's format, so its state files keep working). It is written only after the
//! server acknowledged every batch before that line, atomically (temporary file, fsync,
//! rename), so a crash at any moment leaves a position at or before the first unsent line:
//! a rerun may send a batch twice (it then carries another `package_id`), never skip one.
//! A batch the server refuses for good (a 4xx such as 413) is logged and passed; a batch
//! that still gets no answer or a 5xx after the retries holds the position where it is
//! for the rest of the run, so a rerun starts with it.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::GenerateError;
use crate::object::Object;
use crate::sender::Batch;

/// Where a replay starts and keeps its position.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The JSON Lines file.
    pub file: PathBuf,
    /// The resume position (`read_state.txt` in the working directory, as the original).
    pub state_file: PathBuf,
    /// Start at line 0 (and say so in the state file at once).
    pub reset: bool,
}

/// The resume position, kept in the state file.
#[derive(Debug)]
pub(crate) struct ReadState {
    path: PathBuf,
}

impl ReadState {
    pub fn new(path: &Path) -> ReadState {
        ReadState {
            path: path.to_path_buf(),
        }
    }

    /// The saved position: 0 if the file is missing or empty (as `--reset` leaves it).
    pub fn load(&self) -> Result<u64, GenerateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(GenerateError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(0);
        }
        text.parse().map_err(|_| GenerateError::BadState {
            path: self.path.clone(),
            found: text.chars().take(40).collect(),
        })
    }

    /// Saves `line` so that a crash leaves either the old or the new position.
    pub fn save(&self, line: u64) -> Result<(), GenerateError> {
        let io = |source| GenerateError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = dir.join(format!(".{name}.tmp"));
        let mut file = File::create(&temporary).map_err(io)?;
        file.write_all(line.to_string().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, &self.path).map_err(io)?;
        // The rename is durable once the directory is synced; not every platform can.
        if let Ok(dir) = File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Reads batches of events from the file, starting at a line.
#[derive(Debug)]
pub(crate) struct ReplayReader {
    path: PathBuf,
    reader: BufReader<File>,
    /// Index of the next line to read.
    line: u64,
    sequence: u64,
    buffer: Vec<u8>,
}

impl ReplayReader {
    /// Opens `path` and skips to line `start`.
    pub fn open(path: &Path, start: u64) -> Result<ReplayReader, GenerateError> {
        let io = |source| GenerateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let mut reader = ReplayReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            line: 0,
            sequence: 0,
            buffer: Vec::new(),
        };
        while reader.line < start {
            if !reader.read_line()? {
                break;
            }
        }
        Ok(reader)
    }

    /// Reads one line into the buffer (without its line ending); false at end of file.
    fn read_line(&mut self) -> Result<bool, GenerateError> {
        self.buffer.clear();
        let read = self
            .reader
            .read_until(b'\n', &mut self.buffer)
            .map_err(|source| GenerateError::Io {
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        while matches!(self.buffer.last(), Some(b'\n' | b'\r')) {
            self.buffer.pop();
        }
        Ok(true)
    }

    /// The next batch of up to `size` events, each stamped with `package_id`; `None` at
    /// the end of the file. Blank lines are passed over; lines that are not a JSON object
    /// are logged and counted.
    pub fn next_batch(
        &mut self,
        size: usize,
        package_id: &str,
    ) -> Result<Option<Batch>, GenerateError> {
        let mut body = Vec::with_capacity(size * 300);
        body.push(b'[');
        let (mut events, mut skipped, mut lines_end) = (0u64, 0u64, self.line);
        let mut any_line = false;
        while (events as usize) < size {
            if !self.read_line()? {
                break;
            }
            any_line = true;
            if self.buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Object>(&self.buffer) {
                Ok(mut event) => {
                    event.set("package_id", serde_json::Value::from(package_id));
                    if events > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(event.to_json_string().as_bytes());
                    events += 1;
                    lines_end = self.line;
                }
                Err(error) => {
                    tracing::warn!(
                        file = %self.path.display(),
                        line = self.line,
                        %error,
                        "skipping a line that is not a JSON object"
                    );
                    skipped += 1;
                }
            }
        }
        if !any_line {
            return Ok(None);
        }
        if (events as usize) < size {
            // The end of the file: the batch covers everything read, trailing junk included.
            lines_end = self.line;
        }
        body.push(b']');
        let batch = Batch {
            sequence: self.sequence,
            body: body.into(),
            events,
            invalid_generated: 0,
            lines_skipped: skipped,
            lines_end: Some(lines_end),
        };
        self.sequence += 1;
        Ok(Some(batch))
    }
}

/// Lines in `path` (a last line without a newline counts), for the progress bar.
pub(crate) fn count_lines(path: &Path) -> Result<u64, GenerateError> {
    let io = |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let chunk = reader.fill_buf().map_err(io)?;
        if chunk.is_empty() {
            break;
        }
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        last = chunk[chunk.len() - 1];
        let n = chunk.len();
        reader.consume(n);
    }
    Ok(lines + u64::from(last != b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(lines: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(lines.as_bytes()).expect("write");
        file
    }

    fn events_of(batch: &Batch) -> Vec<serde_json::Value> {
        serde_json::from_slice(&batch.body).expect("a JSON array")
    }

    #[test]
    fn batches_cover_the_file_and_the_last_one_is_partial() {
        let lines: String = (0..25).map(|i| format!("{{\"id\": {i}}}\n")).collect();
        let file = file_with(&lines);
        let mut reader = ReplayReader::open(file.path(), 0).expect("open");
        let sizes: Vec<(u64, Option<u64>)> =
            std::iter::from_fn(|| reader.next_batch(10, "p").expect("read"))
                .map(|b| (b.events, b.lines_end))
                .collect();
        assert_eq!(sizes, vec![(10, Some(10)), (10, Some(20)), (5, Some(25))]);
        assert_eq!(count_lines(file.path()).expect("count"), 25);
    }

    #[test]
    fn unparsable_lines_are_skipped_and_counted_and_package_ids_written() {
        let file = file_with(
            "{\"id\": 1}\nnot json\n[1]\n\n{\"id\": 2, \"package_id\": \"old\"}\n{\"id\": 3}",
        );
        let mut reader = ReplayReader::open(file.path(), 0).expect("open");
        let batch = reader.next_batch(2, "pkg").expect("read").expect("a batch");
        assert_eq!(
            (batch.events, batch.lines_skipped, batch.lines_end),
            (2, 2, Some(5))
        );
        let events = events_of(&batch);
        assert_eq!(events[1]["package_id"], "pkg");
        assert_eq!(events[1]["id"], 2);
        let last = reader
            .next_batch(2, "pkg2")
            .expect("read")
            .expect("a batch");
        assert_eq!((last.events, last.lines_end), (1, Some(6)));
        assert!(reader.next_batch(2, "x").expect("read").is_none());
        assert_eq!(count_lines(file.path()).expect("count"), 6);
    }

    #[test]
    fn reading_starts_at_the_saved_line() {
        let lines: String = (0..5).map(|i| format!("{{\"id\": {i}}}\n")).collect();
        let file = file_with(&lines);
        let mut reader = ReplayReader::open(file.path(), 3).expect("open");
        let batch = reader.next_batch(10, "p").expect("read").expect("batch");
        let ids: Vec<i64> = events_of(&batch)
            .iter()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect();
        assert_eq!(ids, vec![3, 4]);
        let mut past_end = ReplayReader::open(file.path(), 9).expect("open");
        assert!(past_end.next_batch(10, "p").expect("read").is_none());
    }

    #[test]
    fn the_state_file_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().expect("dir");
        let state = ReadState::new(&dir.path().join("read_state.txt"));
        assert_eq!(state.load().expect("missing is 0"), 0);
        state.save(1974).expect("save");
        assert_eq!(state.load().expect("load"), 1974);
        std::fs::write(dir.path().join("read_state.txt"), "").expect("truncate");
        assert_eq!(state.load().expect("empty is 0"), 0);
        std::fs::write(dir.path().join("read_state.txt"), "twelve").expect("write");
        assert!(matches!(state.load(), Err(GenerateError::BadState { .. })));
    }
}
