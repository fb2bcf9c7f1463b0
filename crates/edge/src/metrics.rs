//! The edge's metrics, declared once: each one's name, kind, label key and help text, and
//! the handles the request path records with.
//!
//! Handles are registered with the recorder on first use and kept (see [`Handles::get`]):
//! the process must install its recorder before serving, or they stay no-ops.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};

use crate::limit::{Bound, Scope};
use crate::write_key::KeyRefusal;

/// Counter: requests to admin routes refused for want of the admin token.
pub const ADMIN_REFUSED: &str = "clickstream_http_admin_refused_total";

/// Counter: connections the server closed before their client did, by [`REASON`]
/// ([`CutReason`]).
pub const CONNECTIONS_CUT: &str = "clickstream_http_connections_cut_total";

/// Counter: ingest requests refused by a rate limit (429, or 413 for a batch larger than a
/// bucket), by [`SCOPE`] ([`Scope`]: `key`, `ip`).
pub const THROTTLED: &str = "clickstream_http_throttled_total";

/// Counter: ingest requests shed (503) because too much was in flight, by [`BOUND`]
/// ([`Bound`]: `requests`, `bytes`).
pub const SHED: &str = "clickstream_http_shed_total";

/// Gauge: ingest requests being handled.
pub const INGEST_REQUESTS_IN_FLIGHT: &str = "clickstream_ingest_requests_in_flight";

/// Gauge: request body bytes held until the log acknowledges their events.
pub const INGEST_PENDING_BYTES: &str = "clickstream_ingest_pending_bytes";

/// Counter: requests to write-key routes refused, by [`REASON`] ([`KeyRefusal`]:
/// `missing`, `unknown`).
pub const WRITE_KEY_REFUSED: &str = "clickstream_http_write_key_refused_total";

/// Label key of [`CONNECTIONS_CUT`] and [`WRITE_KEY_REFUSED`].
pub const REASON: &str = "reason";
/// Label key of [`THROTTLED`].
pub const SCOPE: &str = "scope";
/// Label key of [`SHED`].
pub const BOUND: &str = "bound";

/// Help texts of the edge's metrics, shown as `# HELP` lines.
pub fn describe() {
    describe_counter!(
        WRITE_KEY_REFUSED,
        "requests refused for their write key, by reason (missing, unknown)"
    );
    describe_counter!(
        CONNECTIONS_CUT,
        "connections the server closed, by reason (opening: no protocol or TLS handshake \
         within the header deadline; plain_http: plain HTTP to a TLS port; idle: no request \
         within the idle deadline; write_stall: the client took none of a response)"
    );
    describe_counter!(
        ADMIN_REFUSED,
        "requests to admin routes refused for want of the admin token"
    );
    describe_counter!(
        THROTTLED,
        "ingest requests refused by a rate limit (429, or 413 for a batch larger than a \
         bucket), by scope (key, ip)"
    );
    describe_counter!(
        SHED,
        "ingest requests shed (503) because too much was in flight, by bound (requests, bytes)"
    );
    describe_gauge!(INGEST_REQUESTS_IN_FLIGHT, "ingest requests being handled");
    describe_gauge!(
        INGEST_PENDING_BYTES,
        "request body bytes held until the log acknowledges their events"
    );
}

/// Why the server closed a connection before its client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// No protocol or TLS handshake within the header deadline.
    Opening,
    /// Plain HTTP to a TLS listener.
    PlainHttp,
    /// No request within the idle deadline.
    Idle,
    /// The client took none of a response within the body deadline.
    WriteStall,
}

impl CutReason {
    /// Every reason, in declaration order.
    pub const ALL: [CutReason; 4] = [
        CutReason::Opening,
        CutReason::PlainHttp,
        CutReason::Idle,
        CutReason::WriteStall,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CutReason::Opening => "opening",
            CutReason::PlainHttp => "plain_http",
            CutReason::Idle => "idle",
            CutReason::WriteStall => "write_stall",
        }
    }
}

/// Counts a refused write key, for routes that check keys themselves (a key in the body).
pub fn write_key_refused(reason: KeyRefusal) {
    Handles::get().write_key_refused(reason).increment(1);
}

/// The edge's metric handles, registered once.
pub(crate) struct Handles {
    /// [`ADMIN_REFUSED`].
    pub(crate) admin_refused: Counter,
    /// [`INGEST_REQUESTS_IN_FLIGHT`].
    pub(crate) requests_in_flight: Gauge,
    /// [`INGEST_PENDING_BYTES`].
    pub(crate) pending_bytes: Gauge,
    connections_cut: [Counter; CutReason::ALL.len()],
    throttled: [Counter; Scope::ALL.len()],
    shed: [Counter; Bound::ALL.len()],
    write_key_refused: [Counter; KeyRefusal::ALL.len()],
}

impl Handles {
    /// The handles, registered with the recorder in force at the first call.
    pub(crate) fn get() -> &'static Handles {
        static HANDLES: OnceLock<Handles> = OnceLock::new();
        HANDLES.get_or_init(|| Handles {
            admin_refused: counter!(ADMIN_REFUSED),
            requests_in_flight: gauge!(INGEST_REQUESTS_IN_FLIGHT),
            pending_bytes: gauge!(INGEST_PENDING_BYTES),
            connections_cut: CutReason::ALL
                .map(|r| counter!(CONNECTIONS_CUT, REASON => r.as_str())),
            throttled: Scope::ALL.map(|s| counter!(THROTTLED, SCOPE => s.as_str())),
            shed: Bound::ALL.map(|b| counter!(SHED, BOUND => b.as_str())),
            write_key_refused: KeyRefusal::ALL
                .map(|r| counter!(WRITE_KEY_REFUSED, REASON => r.as_str())),
        })
    }

    /// [`CONNECTIONS_CUT`] for `reason`.
    pub(crate) fn connection_cut(&self, reason: CutReason) -> &Counter {
        &self.connections_cut[reason as usize]
    }

    /// [`THROTTLED`] for `scope`.
    pub(crate) fn throttled(&self, scope: Scope) -> &Counter {
        &self.throttled[scope as usize]
    }

    /// [`SHED`] for `bound`.
    pub(crate) fn shed(&self, bound: Bound) -> &Counter {
        &self.shed[bound as usize]
    }

    /// [`WRITE_KEY_REFUSED`] for `reason`.
    pub(crate) fn write_key_refused(&self, reason: KeyRefusal) -> &Counter {
        &self.write_key_refused[reason as usize]
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
            CutReason::ALL
                .iter()
                .enumerate()
                .all(|(i, r)| *r as usize == i)
        );
        assert!(Scope::ALL.iter().enumerate().all(|(i, s)| *s as usize == i));
        assert!(Bound::ALL.iter().enumerate().all(|(i, b)| *b as usize == i));
        assert!(
            KeyRefusal::ALL
                .iter()
                .enumerate()
                .all(|(i, r)| *r as usize == i)
        );
    }

    #[test]
    fn label_values_are_the_ones_dashboards_know() {
        let values = |all: &[&'static str]| all.join(",");
        assert_eq!(
            values(&CutReason::ALL.map(CutReason::as_str)),
            "opening,plain_http,idle,write_stall"
        );
        assert_eq!(values(&Scope::ALL.map(Scope::as_str)), "key,ip");
        assert_eq!(values(&Bound::ALL.map(Bound::as_str)), "requests,bytes");
        assert_eq!(
            values(&KeyRefusal::ALL.map(KeyRefusal::as_str)),
            "missing,unknown"
        );
    }

    #[test]
    fn handles_work_without_a_recorder() {
        let handles = Handles::get();
        handles.connection_cut(CutReason::Idle).increment(1);
        handles.requests_in_flight.increment(1.0);
        handles.requests_in_flight.decrement(1.0);
    }
}
