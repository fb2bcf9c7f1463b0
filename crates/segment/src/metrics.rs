//! The Segment API's metric names, spelled once.

/// Calls taken through Segment's API, by outcome (`valid`, `invalid`).
pub const CALLS: &str = "clickstream_segment_calls_total";

/// Counts a request's calls.
pub(crate) fn calls(valid: usize, invalid: usize) {
    metrics::counter!(CALLS, "outcome" => "valid").increment(valid as u64);
    metrics::counter!(CALLS, "outcome" => "invalid").increment(invalid as u64);
}
