//! Duplicate detection by event `id` within a window of arrival (log) time: a retried HTTP
//! batch, or a client that sends an event twice, lands once.
//!
//! The window is measured from an id's first sighting, so a duplicate does not extend it.
//! Memory is bounded by the window and by `max_ids`; past it the oldest ids are forgotten
//! early (counted in [`Deduplicator::forgotten_early`]).

use std::collections::{HashMap, VecDeque};

use crate::config::DuplicatesConfig;

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

/// Ids seen within the window.
#[derive(Debug)]
pub struct Deduplicator {
    window_ms: i64,
    max_ids: usize,
    seen: HashMap<i64, i64>,
    /// (first seen, id) in order of insertion, to expire from the front.
    order: VecDeque<(i64, i64)>,
    newest_ms: i64,
    forgotten_early: u64,
}

impl Deduplicator {
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
    pub fn check(&mut self, id: i64, arrival_ms: i64) -> Sighting {
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
    pub fn restore(&mut self, id: i64, first_seen_ms: i64) {
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
