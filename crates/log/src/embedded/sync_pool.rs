//! Threads that sync several files at once.
//!
//! A group commit often touches one segment per partition. Syncing them one after the other
//! would add their latencies; issued together, the file system commits them in one journal
//! transaction and the device sees one flush, so the group pays roughly one sync.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use super::fsutil::lock;

/// A sync that failed: which file, and the error.
#[derive(Debug)]
pub(crate) struct SyncFailure {
    /// The file being written or synced.
    pub path: PathBuf,
    /// What went wrong.
    pub source: io::Error,
}

struct SyncJob {
    path: PathBuf,
    file: Arc<File>,
    done: mpsc::Sender<Result<(), SyncFailure>>,
}

/// A fixed set of sync threads fed from one queue; they exit when the pool is dropped.
pub(crate) struct SyncPool {
    jobs: Option<mpsc::Sender<SyncJob>>,
}

impl SyncPool {
    /// A pool that syncs up to `parallelism` files at once (the calling thread is one of
    /// them, so it starts `parallelism - 1` threads).
    pub(crate) fn new(parallelism: usize) -> io::Result<Self> {
        if parallelism <= 1 {
            return Ok(Self { jobs: None });
        }
        let (tx, rx) = mpsc::channel::<SyncJob>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..parallelism - 1 {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("log-fsync-{i}"))
                .spawn(move || {
                    loop {
                        // The guard is a temporary: released as soon as a job is taken.
                        let job = lock(&rx).recv();
                        let Ok(job) = job else { return };
                        let result = job.file.sync_data().map_err(|source| SyncFailure {
                            path: job.path,
                            source,
                        });
                        // The requester may be gone only if the writer itself died.
                        let _ = job.done.send(result);
                    }
                })?;
        }
        Ok(Self { jobs: Some(tx) })
    }

    /// Syncs (fdatasync) every file, in parallel, and reports the first failure.
    pub(crate) fn sync_all(&self, files: Vec<(PathBuf, Arc<File>)>) -> Result<(), SyncFailure> {
        let mut files = files.into_iter();
        let Some(first) = files.next() else {
            return Ok(());
        };
        let (done_tx, done_rx) = mpsc::channel();
        let mut inline = vec![first];
        let mut sent = 0usize;
        for (path, file) in files {
            let job = SyncJob {
                path,
                file,
                done: done_tx.clone(),
            };
            match &self.jobs {
                Some(jobs) => match jobs.send(job) {
                    Ok(()) => sent += 1,
                    Err(mpsc::SendError(job)) => inline.push((job.path, job.file)),
                },
                None => inline.push((job.path, job.file)),
            }
        }
        drop(done_tx);
        let mut result = Ok(());
        for (path, file) in inline {
            if let Err(source) = file.sync_data() {
                result = result.and(Err(SyncFailure { path, source }));
            }
        }
        for _ in 0..sent {
            match done_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => result = result.and(Err(failure)),
                Err(_) => {
                    return Err(SyncFailure {
                        path: PathBuf::new(),
                        source: io::Error::other("sync thread exited"),
                    });
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn syncs_many_files_in_parallel_and_inline() {
        let dir = tempfile::tempdir().expect("tempdir");
        for parallelism in [1, 4] {
            let pool = SyncPool::new(parallelism).expect("pool");
            let files = (0..6)
                .map(|i| {
                    let path = dir.path().join(format!("{parallelism}-{i}"));
                    let mut file = File::create(&path).expect("create");
                    file.write_all(b"data").expect("write");
                    (path, Arc::new(file))
                })
                .collect();
            pool.sync_all(files).expect("sync");
        }
    }
}
