//! The processor's metrics, declared once: each one's name, kind, label key and help
//! text, and the handles the commit and record paths record with.
//!
//! Handles are registered with the recorder on first use and kept (see [`Handles::get`]):
//! the process must install its recorder before the processor starts, or they stay no-ops.

use std::sync::OnceLock;

use metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};

use clickstream_lake::TableKind;

/// Histogram: seconds for the processor to commit one batch to the lake.
pub const COMMIT_DURATION: &str = "clickstream_process_commit_duration_seconds";

/// Counter: rows the processor committed, by [`TABLE`] (`dead_letters`, `duplicates`,
/// `events`, `invalid_events`).
pub const ROWS: &str = "clickstream_process_rows_total";

/// Counter: latest-topic records not emitted (too large for the log, its disk at its
/// reserve, or no latest schema for their writer schema).
pub const LATEST_SKIPPED: &str = "clickstream_process_latest_skipped_total";

/// Counter: raw events whose id was seen within the dedup window.
pub const DUPLICATES: &str = "clickstream_process_duplicates_total";

/// Counter: batches read again from the log because their `events` files could not be
/// written.
pub const BATCHES_UNWRITTEN: &str = "clickstream_process_batches_unwritten_total";

/// Gauge: uap-core patterns compiled so far. The user-agent parser compiles a pattern the
/// first time a user agent needs it, so this (and the memory it takes, ~20 KB a pattern
/// on average) grows with the variety of the traffic, up to every pattern.
pub const USER_AGENT_PATTERNS_COMPILED: &str = "clickstream_process_user_agent_patterns_compiled";

/// Label key of [`ROWS`]: the lake table's name.
pub const TABLE: &str = "table";

/// Help texts of the processor's metrics, shown as `# HELP` lines.
pub fn describe() {
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "time for the processor to commit one batch to the lake"
    );
    describe_counter!(
        ROWS,
        "rows the processor committed, by table (dead_letters counts dead letters)"
    );
    describe_counter!(
        LATEST_SKIPPED,
        "latest-topic records not emitted because the log refused them as too large or its \
         disk was at its reserve (the events are in the lake)"
    );
    describe_counter!(
        BATCHES_UNWRITTEN,
        "batches whose events files could not be written (the store failed beyond its \
         retries), dropped and read again from the log"
    );
    describe_gauge!(
        USER_AGENT_PATTERNS_COMPILED,
        "uap-core patterns the user-agent parser has compiled so far (each the first time a \
         user agent needed it)"
    );
    describe_counter!(
        DUPLICATES,
        "raw events whose id was seen within the dedup window, kept out of events (into \
         duplicates)"
    );
}

/// The processor's metric handles, registered once.
pub(crate) struct Handles {
    /// [`COMMIT_DURATION`].
    pub(crate) commit_duration: Histogram,
    /// [`LATEST_SKIPPED`].
    pub(crate) latest_skipped: Counter,
    /// [`DUPLICATES`].
    pub(crate) duplicates: Counter,
    /// [`BATCHES_UNWRITTEN`].
    pub(crate) batches_unwritten: Counter,
    /// [`USER_AGENT_PATTERNS_COMPILED`].
    pub(crate) user_agent_patterns_compiled: Gauge,
    rows: [Counter; TableKind::ALL.len()],
}

impl Handles {
    /// The handles, registered with the recorder in force at the first call.
    pub(crate) fn get() -> &'static Handles {
        static HANDLES: OnceLock<Handles> = OnceLock::new();
        HANDLES.get_or_init(|| Handles {
            commit_duration: histogram!(COMMIT_DURATION),
            latest_skipped: counter!(LATEST_SKIPPED),
            duplicates: counter!(DUPLICATES),
            batches_unwritten: counter!(BATCHES_UNWRITTEN),
            user_agent_patterns_compiled: gauge!(USER_AGENT_PATTERNS_COMPILED),
            rows: TableKind::ALL.map(|kind| counter!(ROWS, TABLE => kind.name())),
        })
    }

    /// [`ROWS`] for `table`.
    pub(crate) fn rows(&self, table: TableKind) -> &Counter {
        let index = TableKind::ALL.iter().position(|kind| *kind == table);
        // Every kind is in `ALL`.
        &self.rows[index.unwrap_or_default()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_work_without_a_recorder() {
        let handles = Handles::get();
        handles.rows(TableKind::Events).increment(3);
        handles.duplicates.increment(1);
    }
}
