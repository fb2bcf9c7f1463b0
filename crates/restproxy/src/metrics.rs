//! The proxy's metric names, spelled once.

/// Events produced through the proxy (valid and invalid alike; ingest's own counters say
/// which).
pub const PRODUCED_EVENTS: &str = "clickstream_rest_proxy_events_total";
