//! Ingest's metrics, declared once: each one's name, kind, label keys and help text, and
//! the handles the request path records with.
//!
//! Handles are registered with the recorder on first use and kept (see [`Handles::get`]):
//! the process must install its recorder before serving, or they stay no-ops.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};

use http::StatusCode;
use metrics::{Counter, Histogram, Unit, counter, describe_counter, describe_histogram, histogram};

/// Counter: requests to `/collect`, by [`OUTCOME`] ([`RequestOutcome`]).
pub const REQUESTS: &str = "clickstream_ingest_requests_total";

/// Counter: events acknowledged, by [`OUTCOME`] ([`EventOutcome`]) and [`SOURCE`] (the
/// write key's name; empty without write keys).
pub const EVENTS: &str = "clickstream_ingest_events_total";

/// Counter: requests to `/collect` answered with an error, by [`STATUS`] (the code).
pub const REJECTED: &str = "clickstream_ingest_rejected_requests_total";

/// Counter: request body bytes of acknowledged `/collect` requests.
pub const BYTES: &str = "clickstream_ingest_bytes_total";

/// Histogram: seconds from receiving a `/collect` request to acknowledging it.
pub const REQUEST_DURATION: &str = "clickstream_ingest_request_duration_seconds";

/// Histogram: seconds for the log to make one batch's records durable.
pub const APPEND_DURATION: &str = "clickstream_log_append_duration_seconds";

/// Label key of [`REQUESTS`] and [`EVENTS`].
pub const OUTCOME: &str = "outcome";
/// Label key of [`EVENTS`]: a configured write key's name, so a bounded set.
pub const SOURCE: &str = "source";
/// Label key of [`REJECTED`]: the status codes ingest answers with, a bounded set.
pub const STATUS: &str = "status";

/// Help texts of ingest's metrics, shown as `# HELP` lines.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        "requests to /collect by outcome (accepted, rejected: 4xx, failed: 5xx)"
    );
    describe_counter!(
        EVENTS,
        "events acknowledged by /collect, by outcome (valid, invalid) and source (the write \
         key's name; empty without write keys)"
    );
    describe_counter!(
        REJECTED,
        "requests to /collect answered with an error, by status code"
    );
    describe_counter!(
        BYTES,
        "request body bytes of acknowledged /collect requests"
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "time from receiving a /collect request to acknowledging it"
    );
    describe_histogram!(
        APPEND_DURATION,
        Unit::Seconds,
        "time for the log to make one request's records durable"
    );
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Acknowledged (200).
    Accepted,
    /// Refused for what the client sent (4xx).
    Rejected,
    /// Failed on our side (5xx).
    Failed,
}

impl RequestOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [RequestOutcome; 3] = [
        RequestOutcome::Accepted,
        RequestOutcome::Rejected,
        RequestOutcome::Failed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Accepted => "accepted",
            RequestOutcome::Rejected => "rejected",
            RequestOutcome::Failed => "failed",
        }
    }

    /// The outcome of an error answered with `status`.
    pub fn of_error(status: StatusCode) -> Self {
        if status.is_server_error() {
            RequestOutcome::Failed
        } else {
            RequestOutcome::Rejected
        }
    }
}

/// Where an acknowledged event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// To the raw topic.
    Valid,
    /// To the invalid topic, with its reason.
    Invalid,
}

impl EventOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [EventOutcome; 2] = [EventOutcome::Valid, EventOutcome::Invalid];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Valid => "valid",
            EventOutcome::Invalid => "invalid",
        }
    }
}

/// Ingest's metric handles, registered once.
pub(crate) struct Handles {
    /// [`BYTES`].
    pub(crate) bytes: Counter,
    /// [`REQUEST_DURATION`].
    pub(crate) request_duration: Histogram,
    /// [`APPEND_DURATION`].
    pub(crate) append_duration: Histogram,
    requests: [Counter; RequestOutcome::ALL.len()],
    /// [`EVENTS`] per source, each with a counter per [`EventOutcome`].
    events: ByLabel<[Counter; EventOutcome::ALL.len()]>,
    /// [`REJECTED`] per status code.
    rejected: ByLabel<Counter>,
}

impl Handles {
    /// The handles, registered with the recorder in force at the first call.
    pub(crate) fn get() -> &'static Handles {
        static HANDLES: OnceLock<Handles> = OnceLock::new();
        HANDLES.get_or_init(|| Handles {
            bytes: counter!(BYTES),
            request_duration: histogram!(REQUEST_DURATION),
            append_duration: histogram!(APPEND_DURATION),
            requests: RequestOutcome::ALL.map(|o| counter!(REQUESTS, OUTCOME => o.as_str())),
            events: ByLabel::default(),
            rejected: ByLabel::default(),
        })
    }

    /// [`REQUESTS`] for `outcome`.
    pub(crate) fn requests(&self, outcome: RequestOutcome) -> &Counter {
        &self.requests[outcome as usize]
    }

    /// Counts a batch's `valid` and `invalid` events from `source` (empty without write
    /// keys).
    pub(crate) fn count_events(&self, source: &str, valid: u64, invalid: u64) {
        self.events.with(
            source,
            || {
                EventOutcome::ALL
                    .map(|o| counter!(EVENTS, OUTCOME => o.as_str(), SOURCE => source.to_owned()))
            },
            |counters| {
                counters[EventOutcome::Valid as usize].increment(valid);
                counters[EventOutcome::Invalid as usize].increment(invalid);
            },
        );
    }

    /// Counts a request answered with the error `status`.
    pub(crate) fn count_rejected(&self, status: StatusCode) {
        let code = status.as_str();
        self.rejected.with(
            code,
            || counter!(REJECTED, STATUS => code.to_owned()),
            |counter| counter.increment(1),
        );
    }
}

/// Handles per value of a label whose values are few but known only at run time (write
/// key names, status codes), each registered the first time its value is seen.
struct ByLabel<H> {
    handles: RwLock<HashMap<String, H>>,
}

impl<H> Default for ByLabel<H> {
    fn default() -> Self {
        ByLabel {
            handles: RwLock::new(HashMap::new()),
        }
    }
}

impl<H> ByLabel<H> {
    /// Calls `record` with the handle of `value`, registering it with `register` first
    /// when `value` is new.
    fn with(&self, value: &str, register: impl FnOnce() -> H, record: impl FnOnce(&H)) {
        // Nothing panics while a lock is held, but a poisoned map is still a valid one.
        {
            let handles = self.handles.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(handle) = handles.get(value) {
                record(handle);
                return;
            }
        }
        let mut handles = self.handles.write().unwrap_or_else(PoisonError::into_inner);
        record(handles.entry(value.to_owned()).or_insert_with(register));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handles are indexed by discriminant: each `ALL` must list its enum in
    /// declaration order.
    #[test]
    fn label_sets_list_their_values_in_declaration_order() {
        assert!(
            RequestOutcome::ALL
                .iter()
                .enumerate()
                .all(|(i, o)| *o as usize == i)
        );
        assert!(
            EventOutcome::ALL
                .iter()
                .enumerate()
                .all(|(i, o)| *o as usize == i)
        );
    }

    #[test]
    fn outcomes_are_the_label_values_dashboards_know() {
        assert_eq!(
            RequestOutcome::ALL.map(RequestOutcome::as_str),
            ["accepted", "rejected", "failed"]
        );
        assert_eq!(
            EventOutcome::ALL.map(EventOutcome::as_str),
            ["valid", "invalid"]
        );
        assert_eq!(
            RequestOutcome::of_error(StatusCode::SERVICE_UNAVAILABLE),
            RequestOutcome::Failed
        );
        assert_eq!(
            RequestOutcome::of_error(StatusCode::PAYLOAD_TOO_LARGE),
            RequestOutcome::Rejected
        );
    }

    #[test]
    fn a_label_value_is_registered_once_and_reused() {
        let by_label: ByLabel<u32> = ByLabel::default();
        let mut registered = 0;
        for _ in 0..3 {
            by_label.with(
                "web",
                || {
                    registered += 1;
                    7
                },
                |handle| assert_eq!(*handle, 7),
            );
        }
        by_label.with("ios", || 8, |handle| assert_eq!(*handle, 8));
        assert_eq!(registered, 1);
        assert_eq!(by_label.handles.read().map(|h| h.len()).ok(), Some(2));
    }

    #[test]
    fn handles_work_without_a_recorder() {
        let handles = Handles::get();
        handles.count_events("", 2, 1);
        handles.count_rejected(StatusCode::BAD_REQUEST);
        handles.requests(RequestOutcome::Accepted).increment(1);
    }
}
