//! How the processor is doing, for readiness: when its loop last turned, how long the
//! batch it holds has waited, and what it is waiting on. A processor can be alive and
//! still stuck (a store that hangs, a full disk, a registry that never answers); these
//! figures tell the difference.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// The processor's vital signs, shared with whoever reports readiness. Times are wall
/// clock milliseconds; 0 means never. A processor whose loop has not polled for
/// `stuck_after`, or that has held a batch that long without committing it, is stuck.
#[derive(Debug)]
pub struct ProcessorHealth {
    stuck_after_ms: i64,
    started_ms: AtomicI64,
    polled_ms: AtomicI64,
    committed_ms: AtomicI64,
    pending_since_ms: AtomicI64,
    waiting_on: Mutex<Option<String>>,
    stopped: Mutex<Option<String>>,
}

/// Where the processor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Polling and committing.
    Ready,
    /// Working, but waiting out a failure it retries (the reason says which).
    Degraded,
    /// Not started yet, stopped, or stuck.
    Unavailable,
}

/// A readiness report of the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// The verdict.
    pub status: Verdict,
    /// Why, when not ready.
    pub reason: Option<String>,
    /// Milliseconds since the loop last polled the log.
    pub last_poll_age_ms: Option<i64>,
    /// Milliseconds since a batch was last committed.
    pub last_commit_age_ms: Option<i64>,
    /// Milliseconds the batch held now has waited, if one is held.
    pub pending_age_ms: Option<i64>,
}

impl Default for ProcessorHealth {
    fn default() -> Self {
        ProcessorHealth::new(Duration::from_secs(60))
    }
}

impl ProcessorHealth {
    /// Vital signs of a processor that counts as stuck after `stuck_after`.
    pub fn new(stuck_after: Duration) -> Self {
        ProcessorHealth {
            stuck_after_ms: millis(stuck_after),
            started_ms: AtomicI64::new(0),
            polled_ms: AtomicI64::new(0),
            committed_ms: AtomicI64::new(0),
            pending_since_ms: AtomicI64::new(0),
            waiting_on: Mutex::new(None),
            stopped: Mutex::new(None),
        }
    }

    pub(crate) fn started(&self) {
        self.started_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn polled(&self) {
        self.polled_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// A batch started at `since_ms` (wall clock) is held; 0: none.
    pub(crate) fn pending_since(&self, since_ms: i64) {
        self.pending_since_ms.store(since_ms, Ordering::Relaxed);
    }

    pub(crate) fn committed(&self) {
        self.committed_ms.store(now_ms(), Ordering::Relaxed);
        self.pending_since_ms.store(0, Ordering::Relaxed);
    }

    /// The processor is retrying `what` (`None`: it no longer is).
    pub(crate) fn waiting_on(&self, what: Option<String>) {
        *lock(&self.waiting_on) = what;
    }

    /// The processor stopped, for `why`.
    pub fn stopped(&self, why: impl Into<String>) {
        *lock(&self.stopped) = Some(why.into());
    }

    /// The verdict now.
    pub fn report(&self) -> HealthReport {
        let now = now_ms();
        let age = |at: &AtomicI64| {
            let at = at.load(Ordering::Relaxed);
            (at > 0).then(|| now.saturating_sub(at))
        };
        let mut report = HealthReport {
            status: Verdict::Ready,
            reason: None,
            last_poll_age_ms: age(&self.polled_ms),
            last_commit_age_ms: age(&self.committed_ms),
            pending_age_ms: age(&self.pending_since_ms),
        };
        let waiting = lock(&self.waiting_on).clone();
        let unavailable = |reason: String| (Verdict::Unavailable, Some(reason));
        let (status, reason) = if let Some(why) = lock(&self.stopped).clone() {
            unavailable(format!("stopped: {why}"))
        } else if self.started_ms.load(Ordering::Relaxed) == 0 {
            unavailable("starting: loading its state from the lake".into())
        } else if report.last_poll_age_ms.unwrap_or(0) > self.stuck_after_ms {
            unavailable(stuck(
                "has not polled the log",
                report.last_poll_age_ms,
                &waiting,
            ))
        } else if report.pending_age_ms.unwrap_or(0) > self.stuck_after_ms {
            unavailable(stuck(
                "holds a batch not committed",
                report.pending_age_ms,
                &waiting,
            ))
        } else if let Some(what) = waiting {
            (Verdict::Degraded, Some(what))
        } else {
            (Verdict::Ready, None)
        };
        report.status = status;
        report.reason = reason;
        report
    }
}

fn stuck(what: &str, age_ms: Option<i64>, waiting: &Option<String>) -> String {
    let secs = age_ms.unwrap_or(0) / 1000;
    match waiting {
        Some(on) => format!("stuck: {what} for {secs} s; waiting on: {on}"),
        None => format!("stuck: {what} for {secs} s"),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_then_ready_then_degraded_then_stuck() {
        let health = ProcessorHealth::default();
        assert_eq!(health.report().status, Verdict::Unavailable);
        health.started();
        health.polled();
        assert_eq!(health.report().status, Verdict::Ready);
        health.waiting_on(Some("lake: commit failed".into()));
        let report = health.report();
        assert_eq!(report.status, Verdict::Degraded);
        assert_eq!(report.reason.as_deref(), Some("lake: commit failed"));
        // A batch held for longer than the stuck threshold.
        health.pending_since(now_ms() - health.stuck_after_ms - 1_000);
        let report = health.report();
        assert_eq!(report.status, Verdict::Unavailable);
        assert!(
            report
                .reason
                .expect("reason")
                .contains("lake: commit failed")
        );
        health.committed();
        health.waiting_on(None);
        assert_eq!(health.report().status, Verdict::Ready);
    }

    #[test]
    fn a_loop_that_stopped_polling_is_stuck() {
        let health = ProcessorHealth::default();
        health.started();
        health
            .polled_ms
            .store(now_ms() - health.stuck_after_ms - 1_000, Ordering::Relaxed);
        let report = health.report();
        assert_eq!(report.status, Verdict::Unavailable);
        assert!(report.reason.expect("reason").contains("has not polled"));
    }

    #[test]
    fn a_stopped_processor_says_why() {
        let health = ProcessorHealth::default();
        health.started();
        health.polled();
        health.stopped("table events: schema mismatch");
        let report = health.report();
        assert_eq!(report.status, Verdict::Unavailable);
        assert!(report.reason.expect("reason").contains("schema mismatch"));
    }
}
