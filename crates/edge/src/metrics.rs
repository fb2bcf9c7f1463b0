//! The names of the edge's metrics, declared once.

/// Counter: requests to admin routes refused for want of the admin token.
pub const ADMIN_REFUSED: &str = "clickstream_http_admin_refused_total";

/// Counter: connections the server closed before their client did, by `reason`: `opening`
/// (no protocol or TLS handshake within the header deadline), `plain_http` (plain HTTP to a
/// TLS listener), `idle` (no request within the idle deadline), `write_stall` (the client
/// took none of a response within the body deadline).
pub const CONNECTIONS_CUT: &str = "clickstream_http_connections_cut_total";

/// Counter: ingest requests refused by a rate limit (429, or 413 for a batch larger than a
/// bucket), by `scope` (`key`, `ip`).
pub const THROTTLED: &str = "clickstream_http_throttled_total";

/// Counter: ingest requests shed (503) because too much was in flight, by `bound`
/// (`requests`, `bytes`).
pub const SHED: &str = "clickstream_http_shed_total";

/// Gauge: ingest requests being handled.
pub const INGEST_REQUESTS_IN_FLIGHT: &str = "clickstream_ingest_requests_in_flight";

/// Gauge: request body bytes held until the log acknowledges their events.
pub const INGEST_PENDING_BYTES: &str = "clickstream_ingest_pending_bytes";

/// Counter: requests to write-key routes refused, by `reason` (`missing`, `unknown`).
pub const WRITE_KEY_REFUSED: &str = "clickstream_http_write_key_refused_total";
