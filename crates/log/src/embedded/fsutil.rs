//! Small file-system helpers: durable directory entries, atomic file replacement, names.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::LogError;

/// Wraps an I/O error with the path it happened on.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Syncs a directory so that entries created, renamed or removed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (and parents) and makes the new entry durable in its parent.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), LogError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent).map_err(io_err(parent))?;
    }
    Ok(())
}

/// Replaces `path` with `contents` atomically: a crash leaves either the old or the new file,
/// never a mix (write a temporary file, sync it, rename it over, sync the directory).
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), LogError> {
    let tmp = tmp_path(path);
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(io_err(dir))?;
    }
    Ok(())
}

/// The temporary file [`write_atomic`] uses for `path`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Checks a topic or group name against Kafka's rule: 1 to 249 characters from
/// `[a-zA-Z0-9._-]`, and not `.` or `..` (they would escape the directory layout).
pub(crate) fn validate_name(kind: &str, name: &str) -> Result<(), LogError> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > 249 || !valid_chars || name == "." || name == ".." {
        return Err(LogError::InvalidRequest(format!(
            "invalid {kind} name {name:?}: use 1 to 249 characters from [a-zA-Z0-9._-]"
        )));
    }
    Ok(())
}

/// Locks a mutex, ignoring poisoning: every critical section leaves the data consistent
/// before anything that can panic, so a panic elsewhere must not wedge the log.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks an `RwLock`, ignoring poisoning (see [`lock`]).
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks an `RwLock`, ignoring poisoning (see [`lock`]).
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_rules() {
        for ok in ["a", "clickstream.events-v1_raw", &"x".repeat(249)] {
            assert!(validate_name("topic", ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(250)] {
            assert!(validate_name("topic", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.json");
        write_atomic(&path, b"one").expect("first write");
        write_atomic(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert!(!tmp_path(&path).exists());
    }
}
