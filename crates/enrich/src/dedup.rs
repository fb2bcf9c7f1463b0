//! Duplicate detection by event `id` within a window of arrival (log) time: a retried HTTP
//! batch, or a client that sends an event twice, lands once.
//!
//! The key is the clickstream stream's numeric `id` by default; a stream whose ids are
//! strings (Segment's `messageId`) uses their [`IdDigest`].
//!
//! The window is measured from an id's first sighting, so a duplicate does not extend it.
//! Memory is bounded by the window and by `max_ids`; past it the oldest ids are forgotten
//! early (counted in [`Deduplicator::forgotten_early`]).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use sha2::{Digest, Sha256};

use crate::config::DuplicatesConfig;

/// A string id reduced to 128 bits of its SHA-256: a fixed-size duplicate-detection key,
/// the same in every process and release (the state is rebuilt from the stored ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdDigest(u128);

impl IdDigest {
    /// The digest of `id`, byte for byte (no trimming or case folding).
    pub fn of(id: &str) -> IdDigest {
        let digest = Sha256::digest(id.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        IdDigest(u128::from_be_bytes(first))
    }

    /// The first 64 bits, where an `i64` is wanted to order events deterministically
    /// (e.g. [`crate::SessionInput::event_id`]).
    pub fn as_i64(self) -> i64 {
        (self.0 >> 64) as i64
    }
}

/// Whether an event was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// The first sighting within the window: the event goes to `events`.
    First,
    /// Seen before; `first_seen_ms` is the arrival time of the first sighting.
    Duplicate {
        /// Arrival time of the first sighting, milliseconds since the epoch.
        first_seen_ms: i64,
    },
}

/// Ids seen within the window, keyed by `K`: the clickstream stream's `i64` ids, or
/// [`IdDigest`]s of string ids.
#[derive(Debug)]
pub struct Deduplicator<K = i64> {
    window_ms: i64,
    max_ids: usize,
    seen: HashMap<K, i64>,
    /// (first seen, id) in order of insertion, to expire from the front.
    order: VecDeque<(i64, K)>,
    newest_ms: i64,
    forgotten_early: u64,
}

impl<K: Hash + Eq + Copy> Deduplicator<K> {
    /// An empty detector.
    pub fn new(config: &DuplicatesConfig) -> Self {
        Deduplicator {
            window_ms: i64::try_from(config.window_ms).unwrap_or(i64::MAX),
            max_ids: config.max_ids.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
            newest_ms: i64::MIN,
            forgotten_early: 0,
        }
    }

    /// Checks `id`, arriving at `arrival_ms`, and remembers it if it is new.
    pub fn check(&mut self, id: K, arrival_ms: i64) -> Sighting {
        if let Some(&first_seen_ms) = self.seen.get(&id)
            && arrival_ms.saturating_sub(first_seen_ms) <= self.window_ms
        {
            return Sighting::Duplicate { first_seen_ms };
        }
        self.seen.insert(id, arrival_ms);
        self.order.push_back((arrival_ms, id));
        self.newest_ms = self.newest_ms.max(arrival_ms);
        self.expire();
        Sighting::First
    }

    /// Remembers an id that is already in the lake (rebuilding the state at start).
    pub fn restore(&mut self, id: K, first_seen_ms: i64) {
        let _ = self.check(id, first_seen_ms);
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Ids forgotten before their window ended because of `max_ids`.
    pub fn forgotten_early(&self) -> u64 {
        self.forgotten_early
    }

    /// Forgets everything (before rebuilding from the lake).
    pub fn clear(&mut self) {
        self.seen.clear();
        self.order.clear();
        self.newest_ms = i64::MIN;
    }

    fn expire(&mut self) {
        let horizon = self.newest_ms.saturating_sub(self.window_ms);
        while let Some(&(at, id)) = self.order.front() {
            let over = self.seen.len() > self.max_ids;
            // Arrival times are only roughly ordered: an entry behind the front may be
            // older; it goes when it reaches the front. The map decides duplicates.
            if at >= horizon && !over {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&id) == Some(&at) {
                self.seen.remove(&id);
                if at >= horizon {
                    self.forgotten_early += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dedup(window_ms: u64, max_ids: usize) -> Deduplicator {
        Deduplicator::new(&DuplicatesConfig {
            enabled: true,
            window_ms,
            max_ids,
        })
    }

    #[test]
    fn second_sighting_within_the_window_is_a_duplicate() {
        let mut d = dedup(1000, 100);
        assert_eq!(d.check(1, 0), Sighting::First);
        assert_eq!(d.check(2, 10), Sighting::First);
        assert_eq!(d.check(1, 900), Sighting::Duplicate { first_seen_ms: 0 });
        assert_eq!(d.check(1, 1000), Sighting::Duplicate { first_seen_ms: 0 });
        // The window runs from the first sighting.
        assert_eq!(d.check(1, 1001), Sighting::First);
    }

    #[test]
    fn expired_ids_are_forgotten() {
        let mut d = dedup(1000, 100);
        for id in 0..10 {
            d.check(id, id * 100);
        }
        d.check(100, 5000);
        assert_eq!(d.len(), 1);
        assert_eq!(d.forgotten_early(), 0);
    }

    #[test]
    fn string_ids_are_detected_by_digest() {
        let mut d: Deduplicator<IdDigest> = Deduplicator::new(&DuplicatesConfig {
            enabled: true,
            window_ms: 1000,
            max_ids: 100,
        });
        let id = "ajs-5f1c2b3a-message";
        assert_eq!(d.check(IdDigest::of(id), 0), Sighting::First);
        assert_eq!(d.check(IdDigest::of("another"), 5), Sighting::First);
        assert_eq!(
            d.check(IdDigest::of(id), 900),
            Sighting::Duplicate { first_seen_ms: 0 }
        );
        assert_eq!(d.check(IdDigest::of(id), 1001), Sighting::First);
    }

    #[test]
    fn digests_are_stable_across_processes_and_releases() {
        // SHA-256("abc") begins ba7816bf 8f01cfea 414140de 5dae2223: pinned, because the
        // state is rebuilt from stored ids by whatever binary runs next.
        assert_eq!(
            IdDigest::of("abc"),
            IdDigest(0xba7816bf_8f01cfea_414140de_5dae2223)
        );
        assert_eq!(IdDigest::of("abc").as_i64(), 0xba7816bf_8f01cfea_u64 as i64);
        assert_ne!(IdDigest::of("abc"), IdDigest::of("ABC"));
        assert_ne!(IdDigest::of("abc"), IdDigest::of("abc "));
    }

    #[test]
    fn max_ids_bounds_memory() {
        let mut d = dedup(1_000_000, 3);
        for id in 0..10 {
            d.check(id, id);
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.forgotten_early(), 7);
        assert_eq!(d.check(9, 20), Sighting::Duplicate { first_seen_ms: 9 });
        assert_eq!(d.check(0, 20), Sighting::First);
    }
}
