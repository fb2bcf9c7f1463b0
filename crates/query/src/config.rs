//! `[query]`: what one statement may cost, and how much of the machine statements get.
//!
//! The defaults suit a small machine (two cores, a container of a gigabyte or two) that
//! also runs ingest and the processor: statements get half the cores at the lowest CPU
//! priority, at most [`QueryConfig::max_concurrent_statements`] run at once, and each is
//! bounded in time, memory and result size.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits of the SQL engine that serves `/api/sql` and the web UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// A statement still running after this long (waiting for a slot, planning, running
    /// and rendering its result) is cancelled and answered 400 (0: no limit).
    pub statement_timeout_ms: u64,
    /// Memory the operators of one statement may hold (hash tables of joins and
    /// aggregations, sort buffers): beyond it that statement fails with 400 and others go
    /// on. Nothing spills to disk, so a statement cannot fill the log's disk either (0: no
    /// limit).
    pub memory_limit_bytes: u64,
    /// Statements running at once; more wait for a slot (within their timeout). Memory
    /// for SQL is at most this times `memory_limit_bytes`.
    pub max_concurrent_statements: usize,
    /// Most rows of a result; a statement producing more is stopped and answered 413
    /// (0: no limit). `clickstream sql` is not bound by this or `max_result_bytes`.
    pub max_result_rows: u64,
    /// Largest result, as Arrow arrays in memory (about its size as JSON for numbers,
    /// less than it for text); a statement producing more is stopped and answered 413
    /// (0: no limit).
    pub max_result_bytes: u64,
    /// Threads that run statements (0: half the cores, at least one). Also the number of
    /// partitions a statement is split into.
    pub threads: usize,
    /// Nice value of those threads (0 to 19; Linux): 19, the default, lets ingest and the
    /// processor have the CPU whenever they want it, and statements the rest. Never below
    /// the process's own.
    pub nice: u8,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            statement_timeout_ms: 30_000,
            memory_limit_bytes: 256 * 1024 * 1024,
            max_concurrent_statements: 2,
            max_result_rows: 100_000,
            max_result_bytes: 16 * 1024 * 1024,
            threads: 0,
            nice: 19,
        }
    }
}

impl QueryConfig {
    /// No limits, all cores, the process's priority: for the processor's own queries
    /// (rebuilding its state from the lake), whose answers must be complete.
    pub fn unlimited() -> Self {
        Self {
            statement_timeout_ms: 0,
            memory_limit_bytes: 0,
            max_concurrent_statements: 0,
            max_result_rows: 0,
            max_result_bytes: 0,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            nice: 0,
        }
    }

    /// This config without the result-size limits (for `clickstream sql`, which prints
    /// whatever it is asked for).
    pub fn without_result_limits(mut self) -> Self {
        self.max_result_rows = 0;
        self.max_result_bytes = 0;
        self
    }

    /// The statement timeout, if any.
    pub fn statement_timeout(&self) -> Option<Duration> {
        (self.statement_timeout_ms > 0).then(|| Duration::from_millis(self.statement_timeout_ms))
    }

    /// Threads of the query runtime: `threads`, or half the cores (at least one).
    pub fn thread_count(&self) -> usize {
        match self.threads {
            0 => (std::thread::available_parallelism().map_or(2, |n| n.get()) / 2).max(1),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_timeout() {
        let config = QueryConfig {
            statement_timeout_ms: 0,
            ..QueryConfig::default()
        };
        assert_eq!(config.statement_timeout(), None);
        assert_eq!(
            QueryConfig::default().statement_timeout(),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn statements_get_at_least_one_thread_and_at_most_half_the_cores_by_default() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = QueryConfig::default().thread_count();
        assert!(
            threads >= 1 && (threads <= cores / 2 || threads == 1),
            "{threads}"
        );
        let three = QueryConfig {
            threads: 3,
            ..QueryConfig::default()
        };
        assert_eq!(three.thread_count(), 3);
    }
}
