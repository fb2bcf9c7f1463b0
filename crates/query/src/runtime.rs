//! The threads every statement is parsed, planned and run on.
//!
//! Planning recurses over the statement, and not all of that recursion can grow its stack,
//! so how deep a statement may be (`limits.rs`) is only meaningful for a known stack. The
//! engine therefore owns a small tokio runtime whose threads, and the blocking threads
//! DataFusion and object_store spawn from them, have [`STACK_BYTES`] of stack, whatever runtime
//! the caller runs on.
//!
//! It also keeps analytical work from taking the CPU from ingest and the processor: by
//! default it has half the cores' worth of workers, and on Linux every thread of it runs at
//! nice 19, so the scheduler gives the pipeline's threads the CPU whenever they want it.
//! (Measured on two cores, debug build: see the commit that added it.) The statement
//! timeout is kept by the caller's runtime, so it fires on time even while the query
//! threads are busy.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

use crate::QueryError;
use crate::cancel::CancelFlag;

/// Stack of each query thread. At the limits of `limits.rs` the deepest shape measured needs
/// about 7 MiB in a debug build (less in release); this leaves a margin of four and more.
pub(crate) const STACK_BYTES: usize = 32 * 1024 * 1024;

/// Most threads for blocking calls (file reads of the local object store).
const MAX_BLOCKING_THREADS: usize = 64;

/// A multi-threaded tokio runtime for queries, shut down without waiting when dropped.
pub(crate) struct QueryRuntime {
    /// Always `Some` until dropped.
    runtime: Option<Runtime>,
}

impl QueryRuntime {
    /// Starts `workers` workers, each with [`STACK_BYTES`] of stack, and every thread at
    /// nice `nice` (or the process's own nice value, if higher).
    pub(crate) fn start(workers: usize, nice: u8) -> Result<Self, QueryError> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_stack_size(STACK_BYTES)
            .thread_name("clickstream-sql")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()
            .map_err(|e| QueryError::Execution(format!("starting the query threads: {e}")))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `task` on the query threads and waits for it, at most `timeout`: past it the
    /// task is cancelled and the answer is [`QueryError::Timeout`]. Dropping the returned
    /// future (a client that went away) cancels the task too. Cancelling sets `cancel`
    /// (which the statement's plan watches, see `cancel.rs`) and aborts the task.
    pub(crate) async fn run<T, F>(
        &self,
        task: F,
        timeout: Option<Duration>,
        cancel: CancelFlag,
    ) -> Result<T, QueryError>
    where
        F: Future<Output = Result<T, QueryError>> + Send + 'static,
        T: Send + 'static,
    {
        let mut task = AbortOnDrop(self.handle()?.spawn(task), cancel);
        let joined = match timeout {
            // Dropping `task` on the way out aborts it at its next await point; DataFusion's
            // operators yield between batches, and their own tasks go with it.
            Some(limit) => tokio::time::timeout(limit, &mut task.0)
                .await
                .map_err(|_| QueryError::Timeout { limit })?,
            None => (&mut task.0).await,
        };
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(QueryError::Execution(format!("query panicked: {e}"))),
            Err(e) => Err(QueryError::Execution(format!("query cancelled: {e}"))),
        }
    }

    fn handle(&self) -> Result<&Handle, QueryError> {
        self.runtime
            .as_ref()
            .map(Runtime::handle)
            .ok_or_else(|| QueryError::Execution("the query threads are shut down".into()))
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its threads stop, which panics inside another
        // runtime (where engines are usually dropped); queries in flight are abandoned anyway.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for QueryRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryRuntime")
            .field("stack_bytes", &STACK_BYTES)
            .field(
                "workers",
                &self.runtime.as_ref().map(|r| r.metrics().num_workers()),
            )
            .finish_non_exhaustive()
    }
}

/// Raises the calling thread's nice value to `nice` (never lowers it: that needs a
/// privilege and would give queries priority over the pipeline). A failure is logged once:
/// queries still run, only at the process's priority.
fn lower_priority(nice: u8) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if nice == 0 {
        return;
    }
    if let Err(e) = set_thread_nice(i32::from(nice))
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(error = %e, nice, "could not lower the priority of the query threads");
    }
}

#[cfg(target_os = "linux")]
fn set_thread_nice(nice: i32) -> std::io::Result<()> {
    // On Linux a thread id names one thread for setpriority, so this leaves the
    // process's other threads (ingest, the processor) alone.
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid))?;
    if nice > current {
        rustix::process::setpriority_process(Some(tid), nice)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_thread_nice(_nice: i32) -> std::io::Result<()> {
    // Elsewhere setpriority applies to the whole process: leave it.
    Ok(())
}

/// The nice value of the calling thread (tests).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn thread_nice() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
}

/// Cancels the statement and aborts its task when the waiting side is dropped (harmless
/// when it has finished).
struct AbortOnDrop<T>(JoinHandle<T>, CancelFlag);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.1.cancel();
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_task_past_its_timeout_is_answered_on_time_and_cancelled() {
        let runtime = QueryRuntime::start(1, 0).expect("starts");
        let cancel = CancelFlag::default();
        let started = Instant::now();
        // Blocks its thread without ever yielding, as a busy operator can.
        let task = async {
            std::thread::sleep(Duration::from_millis(1500));
            Ok(())
        };
        let result = runtime
            .run(task, Some(Duration::from_millis(100)), cancel.clone())
            .await;
        assert!(
            matches!(result, Err(QueryError::Timeout { .. })),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "answered after {:?}",
            started.elapsed()
        );
        assert!(cancel.is_cancelled(), "the statement is told to stop");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn query_threads_run_at_a_lower_priority_than_the_callers() {
        let caller = thread_nice();
        let runtime = QueryRuntime::start(1, 15).expect("starts");
        let task = async { Ok(thread_nice()) };
        let nice = runtime
            .run(task, None, CancelFlag::default())
            .await
            .expect("runs");
        assert_eq!(nice, caller.max(15));
        assert_eq!(thread_nice(), caller, "the caller's thread is left alone");
    }
}
