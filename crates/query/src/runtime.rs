//! The threads every statement is parsed, planned and run on.
//!
//! Planning recurses over the statement, and not all of that recursion can grow its stack,
//! so how deep a statement may be (`limits.rs`) is only meaningful for a known stack. The
//! engine therefore owns a small tokio runtime whose threads, and the blocking threads
//! DataFusion and object_store spawn from them, have [`STACK_BYTES`] of stack, whatever runtime
//! the caller runs on. It also keeps analytical work off the threads that serve ingest.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

use crate::QueryError;

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
    /// Starts one worker per available core, each with [`STACK_BYTES`] of stack.
    pub(crate) fn start() -> Result<Self, QueryError> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = Builder::new_multi_thread()
            .worker_threads(workers)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_stack_size(STACK_BYTES)
            .thread_name("clickstream-sql")
            .enable_all()
            .build()
            .map_err(|e| QueryError::Execution(format!("starting the query threads: {e}")))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `task` on the query threads and waits for it. Dropping the returned future
    /// (a client that went away) cancels the task.
    pub(crate) async fn run<T, F>(&self, task: F) -> Result<T, QueryError>
    where
        F: Future<Output = Result<T, QueryError>> + Send + 'static,
        T: Send + 'static,
    {
        let mut task = AbortOnDrop(self.handle()?.spawn(task));
        match (&mut task.0).await {
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
            .finish_non_exhaustive()
    }
}

/// Aborts the task when the waiting side is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
