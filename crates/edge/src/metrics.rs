//! The names of the edge's metrics, declared once.

/// Counter: requests to admin routes refused for want of the admin token.
pub const ADMIN_REFUSED: &str = "clickstream_http_admin_refused_total";
