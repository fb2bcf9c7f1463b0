//! Fault injection for the crash tests: the process aborts (as `kill -9` would, no
//! shutdown, no flush) at a chosen point of a commit, so a test can crash it exactly
//! there rather than hoping a timed kill lands in a window of a few milliseconds.
//!
//! Set `CLICKSTREAM_FAULT_ABORT_AT` to one of the [`AbortPoint`] names; unset (always, in
//! production) it costs one check of a cached `None` per `events` commit.

use std::sync::OnceLock;

/// The environment variable naming the abort point.
pub const ABORT_AT_ENV: &str = "CLICKSTREAM_FAULT_ABORT_AT";

/// Where the process may abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AbortPoint {
    /// `before-evolving-events`: after the batch's earlier steps (latest topic,
    /// `dead_letters`, `duplicates`), just before the `events` commit that adds columns.
    BeforeEvolvingEvents,
    /// `after-evolving-events`: just after the `events` commit that added columns, before
    /// the batch's later steps.
    AfterEvolvingEvents,
}

fn configured() -> Option<AbortPoint> {
    static POINT: OnceLock<Option<AbortPoint>> = OnceLock::new();
    *POINT.get_or_init(|| match std::env::var(ABORT_AT_ENV).ok()?.as_str() {
        "before-evolving-events" => Some(AbortPoint::BeforeEvolvingEvents),
        "after-evolving-events" => Some(AbortPoint::AfterEvolvingEvents),
        other => {
            tracing::warn!(value = other, "unknown {ABORT_AT_ENV} ignored");
            None
        }
    })
}

/// Whether an abort point is configured at all (to skip the work of checking for one).
pub(crate) fn armed() -> bool {
    configured().is_some()
}

/// Aborts the process if `point` is the configured one.
pub(crate) fn abort_at(point: AbortPoint) {
    if configured() == Some(point) {
        eprintln!("{ABORT_AT_ENV}: aborting at {point:?}");
        std::process::abort();
    }
}
