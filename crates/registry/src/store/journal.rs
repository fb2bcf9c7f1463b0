//! The append-only journal: one JSON line per [`Event`], fsynced before a change is
//! acknowledged, replayed on open.
//!
//! A crash can leave at most a torn last line (a prefix without its newline): it was never
//! acknowledged, so it is cut off on open. Any other unreadable line is corruption and the
//! store refuses to open rather than serve a different history.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::event::Event;
use crate::error::RegistryError;

/// File name of the journal inside the store directory.
pub(crate) const JOURNAL_FILE: &str = "journal.jsonl";

/// The open journal file, positioned at its end.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    len: u64,
    /// Set when a failed write could not be rolled back: appending more would corrupt it.
    broken: Option<String>,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` and returns it with its events.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Vec<Event>), RegistryError> {
        let path = dir.join(JOURNAL_FILE);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| RegistryError::io(&path, e))?;
        if !existed {
            sync_dir(dir)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| RegistryError::io(&path, e))?;

        let complete = bytes
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |pos| pos + 1);
        if complete < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                torn_bytes = bytes.len() - complete,
                "cutting off a torn last journal line (never acknowledged)"
            );
            file.set_len(complete as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| RegistryError::io(&path, e))?;
        }
        let events = parse_lines(&path, &bytes[..complete])?;
        file.seek(SeekFrom::End(0))
            .map_err(|e| RegistryError::io(&path, e))?;
        let journal = Self {
            path,
            file,
            len: complete as u64,
            broken: None,
        };
        Ok((journal, events))
    }

    /// Appends `event` and fsyncs; on failure the partial write is cut off again.
    pub(crate) fn append(&mut self, event: &Event) -> Result<(), RegistryError> {
        if let Some(reason) = &self.broken {
            return Err(RegistryError::StoreUnavailable(reason.clone()));
        }
        let mut line = serde_json::to_vec(event).map_err(|e| {
            RegistryError::StoreUnavailable(format!("cannot encode journal event: {e}"))
        })?;
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(err) => {
                // After a failed fsync the page cache cannot be trusted either: only a
                // successful truncate + fsync restores a known state.
                if let Err(undo) = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_all())
                {
                    self.broken = Some(format!(
                        "write to {} failed ({err}) and could not be undone ({undo})",
                        self.path.display()
                    ));
                }
                Err(RegistryError::io(&self.path, err))
            }
        }
    }
}

fn parse_lines(path: &Path, bytes: &[u8]) -> Result<Vec<Event>, RegistryError> {
    let mut events = Vec::new();
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = serde_json::from_slice(line).map_err(|e| RegistryError::CorruptJournal {
            path: path.to_owned(),
            line: index + 1,
            reason: e.to_string(),
        })?;
        events.push(event);
    }
    Ok(events)
}

/// Makes a new directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), RegistryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RegistryError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> Event {
        Event::DeleteVersion {
            subject: "s".to_owned(),
            version: n,
            permanent: false,
        }
    }

    #[test]
    fn appended_events_are_replayed_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut journal, events) = Journal::open(dir.path()).expect("open");
            assert!(events.is_empty());
            journal.append(&event(1)).expect("append");
            journal.append(&event(2)).expect("append");
        }
        let (_, events) = Journal::open(dir.path()).expect("reopen");
        assert_eq!(events, vec![event(1), event(2)]);
    }

    #[test]
    fn torn_last_line_is_cut_off_and_appends_continue() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut journal, _) = Journal::open(dir.path()).expect("open");
            journal.append(&event(1)).expect("append");
        }
        let path = dir.path().join(JOURNAL_FILE);
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open file");
        file.write_all(br#"{"op":"delete_ver"#).expect("write torn");
        drop(file);
        {
            let (mut journal, events) = Journal::open(dir.path()).expect("reopen");
            assert_eq!(events, vec![event(1)]);
            journal.append(&event(2)).expect("append after cut");
        }
        let (_, events) = Journal::open(dir.path()).expect("reopen again");
        assert_eq!(events, vec![event(1), event(2)]);
    }

    #[test]
    fn corrupt_middle_line_refuses_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(
            &path,
            "garbage\n{\"op\":\"clear_level\",\"subject\":null}\n",
        )
        .expect("write");
        let err = Journal::open(dir.path()).expect_err("corrupt");
        assert!(
            matches!(err, RegistryError::CorruptJournal { line: 1, .. }),
            "{err}"
        );
    }
}
