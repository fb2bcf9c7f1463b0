//! The Segment API's metrics, declared once: name, kind and help text, and the handles
//! the request path records with.

use std::sync::OnceLock;

use metrics::{Counter, counter, describe_counter};

/// Counter, label `outcome` (`valid`, `invalid`): calls taken through Segment's API.
pub const CALLS: &str = "clickstream_segment_calls_total";

/// Help texts of the Segment API's metrics, shown as `# HELP` lines.
pub fn describe() {
    describe_counter!(
        CALLS,
        "calls taken through Segment's Tracking API, by outcome (invalid ones are kept \
         in the Segment stream's invalid topic with their reason)"
    );
}

/// Counts a request's calls.
pub(crate) fn calls(valid: usize, invalid: usize) {
    static HANDLES: OnceLock<[Counter; 2]> = OnceLock::new();
    let [valid_calls, invalid_calls] = HANDLES.get_or_init(|| {
        [
            counter!(CALLS, "outcome" => "valid"),
            counter!(CALLS, "outcome" => "invalid"),
        ]
    });
    valid_calls.increment(valid as u64);
    invalid_calls.increment(invalid as u64);
}
