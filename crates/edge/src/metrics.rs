//! The names of the edge's metrics, declared once.

/// Counter: requests to admin routes refused for want of the admin token.
pub const ADMIN_REFUSED: &str = "clickstream_http_admin_refused_total";

/// Counter: connections the server closed before their client did, by `reason`: `opening`
/// (no protocol or TLS handshake within the header deadline), `plain_http` (plain HTTP to a
/// TLS listener), `idle` (no request within the idle deadline), `write_stall` (the client
/// took none of a response within the body deadline).
pub const CONNECTIONS_CUT: &str = "clickstream_http_connections_cut_total";
