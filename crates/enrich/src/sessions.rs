//! Sessions: a visitor's events with no gap longer than the inactivity gap (30 minutes by
//! default) in *event time* form one session.
//!
//! A visitor is the customer when `customer_id` is set, else the pair (IP, user agent),
//! both as stored (after the privacy transformations, so the state can be rebuilt from
//! the lake's rows). A stream with string ids (Segment) keys visitors by the first of its
//! ids that is present, in an order the caller chooses ([`VisitorKey::of_ids`]), else by
//! (IP, user agent) in the same way.
//!
//! Order and lateness, deliberately:
//! - The events of one call to [`Sessionizer::assign`] (the processor calls it once per
//!   lake commit) are sessionized in event-time order (ties by event id), so the order in
//!   which they arrived within it does not matter.
//! - An event that arrives in a later call than events of its visitor that are later in
//!   event time joins the most recent session whose span, widened by the gap on both
//!   sides, contains it (the session's start moves back if need be); otherwise it opens a
//!   session of its own. Sessions already written are never merged or renumbered, so an
//!   event that would have bridged two sessions joins the later one.
//! - `session_index` is the order in which the visitor's sessions were opened (for
//!   on-time traffic, their chronological order); `event_index_in_session` the order in
//!   which events joined the session (chronological within a call).
//! - A visitor with no event for `state_ttl_ms` of event time is forgotten; their next
//!   session is numbered 1 again. The state is bounded by that and by `max_visitors`.
//!
//! Session ids are derived from the visitor, the session's first event time and its
//! index, so replaying the same events after a restart gives the same ids.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::SessionsConfig;

/// How many recent sessions of a visitor stay open to late events.
const SESSIONS_PER_VISITOR: usize = 4;

/// Event times more than this far ahead of the wall clock do not move the watermark
/// (a client with a wrong clock must not expire everyone else's state).
const MAX_CLOCK_SKEW_US: i64 = 3_600_000_000;

/// Who a session belongs to. Each kind of key has its own variant (and tag byte in the
/// session id), so keys of different kinds never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VisitorKey {
    /// A known customer.
    Customer(i64),
    /// Anonymous traffic: a digest of IP and user agent.
    Anonymous(u64),
    /// A user known by a string id (Segment's `userId`): a digest of it.
    User(u64),
    /// A device or browser known by a string id (Segment's `anonymousId`): a digest of it.
    Device(u64),
}

/// A string id that may identify a visitor, as an event carries it (`None` or empty when
/// it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitorId<'a> {
    /// Segment's `userId`.
    User(Option<&'a str>),
    /// Segment's `anonymousId`.
    Device(Option<&'a str>),
}

impl<'a> VisitorId<'a> {
    /// The privacy domain of this kind of id (see [`crate::Privacy::protect_id`]): its
    /// column name, `user_id` or `anonymous_id`.
    pub fn domain(self) -> &'static str {
        match self {
            VisitorId::User(_) => "user_id",
            VisitorId::Device(_) => "anonymous_id",
        }
    }

    /// The id, when present and not empty.
    pub fn value(self) -> Option<&'a str> {
        match self {
            VisitorId::User(id) | VisitorId::Device(id) => id.filter(|id| !id.is_empty()),
        }
    }

    /// The same kind of id with another value.
    pub(crate) fn with<'b>(self, id: Option<&'b str>) -> VisitorId<'b> {
        match self {
            VisitorId::User(_) => VisitorId::User(id),
            VisitorId::Device(_) => VisitorId::Device(id),
        }
    }
}

impl VisitorKey {
    /// The visitor of an event, from its stored `customer_id`, `ip` and `user_agent`.
    pub fn of(customer_id: Option<i64>, ip: &str, user_agent: &str) -> VisitorKey {
        match customer_id {
            Some(id) => VisitorKey::Customer(id),
            None => {
                let digest = Sha256::new()
                    .chain_update(ip.as_bytes())
                    .chain_update([0])
                    .chain_update(user_agent.as_bytes())
                    .finalize();
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                VisitorKey::Anonymous(u64::from_be_bytes(first))
            }
        }
    }

    /// The visitor of an event of a stream with string ids, from the ids *as stored*
    /// (pseudonyms when privacy says so), in order of preference: the first present one
    /// (e.g. `[Device(anonymous_id), User(user_id)]`); else, as [`VisitorKey::of`] without
    /// a customer, the stored IP and user agent (absent ones as empty).
    pub fn of_ids(ids: &[VisitorId<'_>], ip: Option<&str>, user_agent: Option<&str>) -> VisitorKey {
        let first = ids
            .iter()
            .find_map(|id| id.value().map(|value| (*id, value)));
        match first {
            Some((VisitorId::User(_), id)) => VisitorKey::User(digest64(id)),
            Some((VisitorId::Device(_), id)) => VisitorKey::Device(digest64(id)),
            None => VisitorKey::of(None, ip.unwrap_or(""), user_agent.unwrap_or("")),
        }
    }

    fn bytes(self) -> [u8; 9] {
        let (tag, value) = match self {
            VisitorKey::Customer(id) => (b'c', id as u64),
            VisitorKey::Anonymous(digest) => (b'a', digest),
            VisitorKey::User(digest) => (b'u', digest),
            VisitorKey::Device(digest) => (b'd', digest),
        };
        let mut out = [tag; 9];
        out[1..].copy_from_slice(&value.to_be_bytes());
        out
    }
}

/// One event to sessionize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInput {
    /// Whose event it is.
    pub visitor: VisitorKey,
    /// Event time, microseconds since the epoch (the caller falls back to the arrival
    /// time when the event's own timestamp is unusable).
    pub time_us: i64,
    /// The event id: orders events with equal times.
    pub event_id: i64,
}

/// The session of one event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionAssignment {
    /// 32 hex digits, unique per visitor and session.
    pub session_id: Arc<str>,
    /// 1-based number of the session among the visitor's sessions.
    pub session_index: i64,
    /// 1-based number of the event within its session.
    pub event_index: i64,
}

/// A session as the lake holds it, to rebuild the state at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredSession {
    /// The visitor.
    pub visitor: VisitorKey,
    /// Its id.
    pub session_id: String,
    /// Its index.
    pub session_index: i64,
    /// Earliest event time, microseconds.
    pub start_us: i64,
    /// Latest event time, microseconds.
    pub last_us: i64,
    /// Events in it (the highest `event_index_in_session`).
    pub events: i64,
}

#[derive(Debug, Clone)]
struct Session {
    id: Arc<str>,
    index: i64,
    start_us: i64,
    last_us: i64,
    events: i64,
}

#[derive(Debug, Default)]
struct Visitor {
    /// Most recent sessions, oldest first.
    sessions: Vec<Session>,
    /// Sessions opened so far (the last index handed out).
    opened: i64,
    last_us: i64,
}

impl Visitor {
    fn keep(&mut self, session: Session) {
        self.last_us = self.last_us.max(session.last_us);
        self.sessions.push(session);
        if self.sessions.len() > SESSIONS_PER_VISITOR
            && let Some((oldest, _)) = self
                .sessions
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| (s.last_us, s.index))
        {
            self.sessions.remove(oldest);
        }
    }
}

/// Session state of every visitor seen recently.
#[derive(Debug)]
pub struct Sessionizer {
    gap_us: i64,
    ttl_us: i64,
    max_visitors: usize,
    visitors: HashMap<VisitorKey, Visitor>,
    watermark_us: i64,
    swept_at_us: i64,
    forgotten: u64,
}

impl Sessionizer {
    /// An empty state.
    pub fn new(config: &SessionsConfig) -> Self {
        let us = |ms: u64| i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX);
        Sessionizer {
            gap_us: us(config.inactivity_gap_ms),
            ttl_us: us(config.state_ttl_ms).max(us(config.inactivity_gap_ms)),
            max_visitors: config.max_visitors.max(1),
            visitors: HashMap::new(),
            watermark_us: i64::MIN,
            swept_at_us: i64::MIN,
            forgotten: 0,
        }
    }

    /// Assigns sessions to a batch of events, in event-time order; the result is in the
    /// batch's order. `now_us` (the wall clock) bounds how far event times move the
    /// watermark that expires idle visitors.
    pub fn assign(&mut self, batch: &[SessionInput], now_us: i64) -> Vec<SessionAssignment> {
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| (batch[i].time_us, batch[i].event_id, i));
        let mut out: Vec<Option<SessionAssignment>> = vec![None; batch.len()];
        let skew_limit = now_us.saturating_add(MAX_CLOCK_SKEW_US);
        for i in order {
            let input = batch[i];
            out[i] = Some(self.assign_one(input));
            if input.time_us <= skew_limit {
                self.watermark_us = self.watermark_us.max(input.time_us);
            }
        }
        self.sweep();
        out.into_iter().flatten().collect()
    }

    fn assign_one(&mut self, input: SessionInput) -> SessionAssignment {
        let gap = self.gap_us;
        let t = input.time_us;
        let visitor = self.visitors.entry(input.visitor).or_default();
        visitor.last_us = visitor.last_us.max(t);
        let joined =
            visitor.sessions.iter_mut().rev().find(|s| {
                t >= s.start_us.saturating_sub(gap) && t <= s.last_us.saturating_add(gap)
            });
        if let Some(session) = joined {
            session.start_us = session.start_us.min(t);
            session.last_us = session.last_us.max(t);
            session.events += 1;
            return SessionAssignment {
                session_id: session.id.clone(),
                session_index: session.index,
                event_index: session.events,
            };
        }
        visitor.opened += 1;
        let index = visitor.opened;
        let id = session_id(input.visitor, t, index);
        visitor.keep(Session {
            id: id.clone(),
            index,
            start_us: t,
            last_us: t,
            events: 1,
        });
        SessionAssignment {
            session_id: id,
            session_index: index,
            event_index: 1,
        }
    }

    /// Takes back a session from the lake (rebuilding the state at start).
    pub fn restore(&mut self, session: RestoredSession) {
        let visitor = self.visitors.entry(session.visitor).or_default();
        visitor.opened = visitor.opened.max(session.session_index);
        visitor.keep(Session {
            id: Arc::from(session.session_id),
            index: session.session_index,
            start_us: session.start_us,
            last_us: session.last_us,
            events: session.events,
        });
        self.watermark_us = self.watermark_us.max(session.last_us);
    }

    /// Forgets everything (before rebuilding from the lake).
    pub fn clear(&mut self) {
        self.visitors.clear();
        self.watermark_us = i64::MIN;
        self.swept_at_us = i64::MIN;
    }

    /// Visitors in memory.
    pub fn visitors(&self) -> usize {
        self.visitors.len()
    }

    /// Visitors forgotten so far (idle past the TTL, or over `max_visitors`).
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// The latest event time seen (what the TTL is measured against), microseconds.
    pub fn watermark_us(&self) -> Option<i64> {
        (self.watermark_us != i64::MIN).then_some(self.watermark_us)
    }

    /// How far back in event time the state reaches: what the lake must be read from to
    /// rebuild it, given the newest event time there.
    pub fn horizon_us(&self, newest_us: i64) -> i64 {
        newest_us.saturating_sub(self.ttl_us)
    }

    /// Forgets idle visitors: past the TTL (checked once the watermark moved by a
    /// minute), then the longest idle while over `max_visitors`.
    fn sweep(&mut self) {
        let over = self.visitors.len() > self.max_visitors;
        if !over && self.watermark_us.saturating_sub(self.swept_at_us) < 60_000_000 {
            return;
        }
        self.swept_at_us = self.watermark_us;
        let before = self.visitors.len();
        let horizon = self.watermark_us.saturating_sub(self.ttl_us);
        self.visitors.retain(|_, v| v.last_us >= horizon);
        if self.visitors.len() > self.max_visitors {
            // Down to 90% so that the next sweep is not the very next event.
            let keep = self.max_visitors - self.max_visitors / 10;
            let mut lasts: Vec<i64> = self.visitors.values().map(|v| v.last_us).collect();
            let drop = lasts.len() - keep;
            let (_, cutoff, _) = lasts.select_nth_unstable(drop);
            let cutoff = *cutoff;
            let mut dropped = 0;
            self.visitors.retain(|_, v| {
                let go = v.last_us < cutoff || (v.last_us == cutoff && dropped < drop);
                if go {
                    dropped += 1;
                }
                !go
            });
        }
        self.forgotten += (before - self.visitors.len()) as u64;
    }
}

/// The first 64 bits of the SHA-256 of a string id: seedless, so the same in every
/// process and release (sessions are rebuilt from the lake after a restart).
fn digest64(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The session's id: visitor, first event time and index, hashed.
fn session_id(visitor: VisitorKey, start_us: i64, index: i64) -> Arc<str> {
    let digest = Sha256::new()
        .chain_update(visitor.bytes())
        .chain_update(start_us.to_be_bytes())
        .chain_update(index.to_be_bytes())
        .finalize();
    let mut id = String::with_capacity(32);
    for b in &digest[..16] {
        id.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        id.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    Arc::from(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;
    /// The wall clock in these tests: after every event time they use.
    const NOW: i64 = 100_000 * MIN;

    fn sessionizer() -> Sessionizer {
        Sessionizer::new(&SessionsConfig::default())
    }

    fn event(visitor: i64, minute: i64, id: i64) -> SessionInput {
        SessionInput {
            visitor: VisitorKey::Customer(visitor),
            time_us: minute * MIN,
            event_id: id,
        }
    }

    fn indices(out: &[SessionAssignment]) -> Vec<(i64, i64)> {
        out.iter()
            .map(|a| (a.session_index, a.event_index))
            .collect()
    }

    #[test]
    fn a_gap_longer_than_thirty_minutes_starts_a_session() {
        let mut s = sessionizer();
        let out = s.assign(
            &[
                event(1, 0, 1),
                event(1, 10, 2),
                event(1, 40, 3),
                event(1, 71, 4),
            ],
            NOW,
        );
        assert_eq!(indices(&out), vec![(1, 1), (1, 2), (1, 3), (2, 1)]);
        assert_eq!(out[0].session_id, out[2].session_id);
        assert_ne!(out[2].session_id, out[3].session_id);
        assert_eq!(out[0].session_id.len(), 32);
    }

    #[test]
    fn visitors_are_separate() {
        let mut s = sessionizer();
        let anonymous = VisitorKey::of(None, "81.2.69.142", "Firefox");
        assert_eq!(anonymous, VisitorKey::of(None, "81.2.69.142", "Firefox"));
        assert_ne!(anonymous, VisitorKey::of(None, "81.2.69.142", "Chrome"));
        let out = s.assign(
            &[
                event(1, 0, 1),
                event(2, 1, 2),
                SessionInput {
                    visitor: anonymous,
                    time_us: 2 * MIN,
                    event_id: 3,
                },
            ],
            NOW,
        );
        assert_eq!(indices(&out), vec![(1, 1), (1, 1), (1, 1)]);
        assert_eq!(s.visitors(), 3);
    }

    #[test]
    fn string_ids_key_visitors_in_the_callers_order() {
        let (anon, user) = (Some("d9c5-anon"), Some("user-1404"));
        let anonymous_first = [VisitorId::Device(anon), VisitorId::User(user)];
        let user_first = [VisitorId::User(user), VisitorId::Device(anon)];
        let device = VisitorKey::of_ids(&anonymous_first, None, None);
        assert!(matches!(device, VisitorKey::Device(_)));
        assert_eq!(
            device,
            VisitorKey::of_ids(&[VisitorId::Device(anon)], None, None)
        );
        let by_user = VisitorKey::of_ids(&user_first, None, None);
        assert!(matches!(by_user, VisitorKey::User(_)));
        // Absent and empty ids are skipped.
        let skipped = [
            VisitorId::Device(None),
            VisitorId::Device(Some("")),
            VisitorId::User(user),
        ];
        assert_eq!(VisitorKey::of_ids(&skipped, None, None), by_user);
        // No id: IP and user agent, as for the clickstream stream.
        assert_eq!(
            VisitorKey::of_ids(
                &[VisitorId::Device(None)],
                Some("81.2.69.142"),
                Some("curl")
            ),
            VisitorKey::of(None, "81.2.69.142", "curl")
        );
        assert_eq!(
            VisitorKey::of_ids(&[], None, None),
            VisitorKey::of(None, "", "")
        );
    }

    #[test]
    fn string_id_keys_never_meet_other_kinds() {
        // The same id as a user and as a device, and a customer whose number has the
        // same bits as the digest: four different visitors with four session ids.
        let id = Some("1404");
        let user = VisitorKey::of_ids(&[VisitorId::User(id)], None, None);
        let device = VisitorKey::of_ids(&[VisitorId::Device(id)], None, None);
        let VisitorKey::User(bits) = user else {
            panic!("{user:?}");
        };
        let keys = [
            user,
            device,
            VisitorKey::Customer(bits as i64),
            VisitorKey::Anonymous(bits),
        ];
        let ids: std::collections::HashSet<Arc<str>> =
            keys.iter().map(|&k| session_id(k, 0, 1)).collect();
        assert_eq!(ids.len(), keys.len());
        assert_ne!(user, device);
    }

    #[test]
    fn string_id_digests_are_stable_across_releases() {
        // SHA-256("abc") begins ba7816bf8f01cfea: pinned, because sessions are rebuilt
        // from stored ids by whatever binary runs next.
        let abc = Some("abc");
        assert_eq!(
            VisitorKey::of_ids(&[VisitorId::Device(abc)], None, None),
            VisitorKey::Device(0xba7816bf_8f01cfea)
        );
        assert_eq!(
            VisitorKey::of_ids(&[VisitorId::User(abc)], None, None),
            VisitorKey::User(0xba7816bf_8f01cfea)
        );
    }

    #[test]
    fn a_late_event_joins_the_session_it_falls_into() {
        let mut s = sessionizer();
        let first = s.assign(&[event(1, 0, 1), event(1, 10, 2)], NOW);
        let second = s.assign(&[event(1, 100, 3)], NOW);
        // Five minutes into the first session, arriving after the second opened.
        let late = s.assign(&[event(1, 5, 4)], NOW);
        assert_eq!(late[0].session_id, first[0].session_id);
        assert_eq!((late[0].session_index, late[0].event_index), (1, 3));
        // Far before anything known: a session of its own, numbered after the others.
        let very_late = s.assign(&[event(1, -200, 5)], NOW);
        assert_eq!(very_late[0].session_index, 3);
        assert_ne!(very_late[0].session_id, second[0].session_id);
    }

    #[test]
    fn idle_visitors_are_forgotten_after_the_ttl() {
        let mut s = Sessionizer::new(&SessionsConfig {
            state_ttl_ms: 120 * 60_000,
            ..SessionsConfig::default()
        });
        s.assign(&[event(1, 0, 1)], NOW);
        s.assign(&[event(2, 100, 2)], NOW);
        assert_eq!(s.visitors(), 2);
        s.assign(&[event(2, 200, 3)], NOW);
        assert_eq!(s.visitors(), 1);
        assert_eq!(s.forgotten(), 1);
        // Back after the TTL: numbered from 1 again.
        let back = s.assign(&[event(1, 300, 4)], NOW);
        assert_eq!(back[0].session_index, 1);
    }

    #[test]
    fn max_visitors_bounds_memory() {
        let mut s = Sessionizer::new(&SessionsConfig {
            max_visitors: 100,
            ..SessionsConfig::default()
        });
        let batch: Vec<SessionInput> = (0..1000).map(|v| event(v, v, v)).collect();
        s.assign(&batch, NOW);
        assert!(s.visitors() <= 100, "{}", s.visitors());
        assert!(s.forgotten() >= 900);
    }

    #[test]
    fn future_event_times_do_not_expire_everyone() {
        let mut s = sessionizer();
        s.assign(&[event(1, 0, 1)], 0);
        // A client clock years ahead.
        s.assign(&[event(2, 10_000_000, 2)], 0);
        assert_eq!(s.visitors(), 2);
        assert_eq!(s.watermark_us(), Some(0));
    }
}
