//! The proxy's metrics, declared once: name, kind and help text, and the handle the
//! produce path records with.

use std::sync::OnceLock;

use metrics::{Counter, counter, describe_counter};

/// Counter: events produced through the proxy (valid and invalid alike; ingest's own
/// counters say which).
pub const PRODUCED_EVENTS: &str = "clickstream_rest_proxy_events_total";

/// Help texts of the proxy's metrics, shown as `# HELP` lines.
pub fn describe() {
    describe_counter!(
        PRODUCED_EVENTS,
        "events produced through the REST Proxy, valid and invalid alike \
         (clickstream_ingest_events_total says which)"
    );
}

/// Counts `events` produced through the proxy.
pub(crate) fn produced(events: usize) {
    static PRODUCED: OnceLock<Counter> = OnceLock::new();
    PRODUCED
        .get_or_init(|| counter!(PRODUCED_EVENTS))
        .increment(events as u64);
}
