//! Duplicate detection by event `id` within a window of arrival (log) time: a retried HTTP
//! batch, or a client that sends an event twice, lands once.
//!
//! The key is the clickstream stream's numeric `id` by default; a stream whose ids are
//! strings (Segment's `messageId`) uses their [`IdDigest`].
//!
//! The window is measured from an id's first sighting, so a duplicate does not extend it.
//! Memory is bounded by the window and by `max_ids`; past it the oldest ids are forgotten
//! early (counted in [`Deduplicator::forgotten_early`]).
//!
//! Layout: each sighting is one `(first seen, id)` entry in a ring of fixed-size chunks, in
//! arrival order (expired from the front); a hash table of 4-byte entry numbers, hashed by
//! the id each points at, finds an id's entry. A chunk keeps its arrival times as 4-byte
//! offsets from its first one, apart from the ids, so an `i64` id's entry is 12 bytes (a
//! `(time, id)` pair was padded to 16): about 17 bytes per id with the table's 4 and control
//! byte per slot (at hashbrown's 7/8 load), where a map from id to time plus an order queue
//! took ~50 (both doubling their capacity as they grow). During a catch-up every id of the
//! backlog is within the window, which made this the largest item of its peak
//! (bench/README.md).

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};

use hashbrown::{DefaultHashBuilder, HashTable};
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
    /// Every sighting that started a window, in arrival order.
    order: Ring<K>,
    /// The entry number (its low 32 bits) of each remembered id's latest sighting.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    newest_ms: i64,
    forgotten_early: u64,
}

impl<K: Hash + Eq + Copy> Deduplicator<K> {
    /// An empty detector.
    pub fn new(config: &DuplicatesConfig) -> Self {
        Deduplicator {
            window_ms: i64::try_from(config.window_ms).unwrap_or(i64::MAX),
            max_ids: config.max_ids.max(1),
            order: Ring::default(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            newest_ms: i64::MIN,
            forgotten_early: 0,
        }
    }

    /// Checks `id`, arriving at `arrival_ms`, and remembers it if it is new.
    pub fn check(&mut self, id: K, arrival_ms: i64) -> Sighting {
        let hash = self.hasher.hash_one(id);
        let order = &self.order;
        let number = order.next_number();
        match self.index.find_mut(hash, |&n| order.entry(n).1 == id) {
            Some(slot) => {
                let first_seen_ms = order.entry(*slot).0;
                if arrival_ms.saturating_sub(first_seen_ms) <= self.window_ms {
                    return Sighting::Duplicate { first_seen_ms };
                }
                // Seen before, but the window has passed: a new window starts.
                *slot = number;
            }
            None => {
                let hasher = &self.hasher;
                self.index
                    .insert_unique(hash, number, |&n| hasher.hash_one(order.entry(n).1));
            }
        }
        self.order.push((arrival_ms, id));
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
        self.index.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Ids forgotten before their window ended because of `max_ids`.
    pub fn forgotten_early(&self) -> u64 {
        self.forgotten_early
    }

    /// Forgets everything (before rebuilding from the lake).
    pub fn clear(&mut self) {
        self.index.clear();
        self.order.clear();
        self.newest_ms = i64::MIN;
    }

    fn expire(&mut self) {
        let horizon = self.newest_ms.saturating_sub(self.window_ms);
        while let Some((number, (at, id))) = self.order.front() {
            let over = self.index.len() > self.max_ids;
            // Arrival times are only roughly ordered: an entry behind the front may be
            // older; it goes when it reaches the front. The index decides duplicates.
            if at >= horizon && !over {
                break;
            }
            self.order.pop_front();
            // The id's latest sighting may be a later entry (a new window): then it stays.
            if let Ok(slot) = self
                .index
                .find_entry(self.hasher.hash_one(id), |&n| n == number)
            {
                slot.remove();
                if at >= horizon {
                    self.forgotten_early += 1;
                }
            }
        }
    }
}

/// Entries per chunk of the [`Ring`]: growth in steps of this many, not by doubling.
const CHUNK: usize = 8192;

/// A queue of `(first seen, id)` entries numbered in push order, stored in fixed-size
/// chunks so that its capacity follows its length. Entry numbers are kept to their low 32
/// bits: far more entries than that can never be live at once.
#[derive(Debug)]
struct Ring<K> {
    chunks: VecDeque<Chunk<K>>,
    /// Position of the front entry within the first chunk.
    head: usize,
    len: usize,
    /// The number of the front entry.
    front: u32,
}

impl<K> Default for Ring<K> {
    fn default() -> Self {
        Ring {
            chunks: VecDeque::new(),
            head: 0,
            len: 0,
            front: 0,
        }
    }
}

impl<K: Copy> Ring<K> {
    /// The number the next pushed entry gets.
    fn next_number(&self) -> u32 {
        self.front.wrapping_add(self.len as u32)
    }

    /// The live entry numbered `number`.
    fn entry(&self, number: u32) -> (i64, K) {
        let at = self.head + number.wrapping_sub(self.front) as usize;
        self.chunks[at / CHUNK].get(at % CHUNK)
    }

    fn push(&mut self, entry: (i64, K)) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < CHUNK => last.push(entry),
            _ => {
                let mut chunk = Chunk::starting_at(entry.0);
                chunk.push(entry);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
    }

    /// The front entry and its number.
    fn front(&self) -> Option<(u32, (i64, K))> {
        (self.len > 0).then(|| (self.front, self.chunks[0].get(self.head)))
    }

    fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        self.head += 1;
        self.len -= 1;
        self.front = self.front.wrapping_add(1);
        if self.head == CHUNK || self.len == 0 {
            self.chunks.pop_front();
            self.head = 0;
        }
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.head = 0;
        self.len = 0;
    }
}

/// The offset of an arrival time too far from its chunk's base for 4 bytes (~24 days).
const FAR: i32 = i32::MIN;

/// Up to [`CHUNK`] entries of the [`Ring`]: arrival times as offsets from the chunk's
/// first, and the ids, in two arrays (no padding between a time and an id).
#[derive(Debug)]
struct Chunk<K> {
    base_ms: i64,
    offsets: Vec<i32>,
    ids: Vec<K>,
    /// The times whose offset is [`FAR`], by position: only after a clock jumped weeks.
    far: Vec<(u16, i64)>,
}

impl<K: Copy> Chunk<K> {
    fn starting_at(base_ms: i64) -> Self {
        Chunk {
            base_ms,
            offsets: Vec::with_capacity(CHUNK),
            ids: Vec::with_capacity(CHUNK),
            far: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn push(&mut self, (at, id): (i64, K)) {
        let offset = at
            .checked_sub(self.base_ms)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|&d| d != FAR);
        if offset.is_none() {
            // CHUNK fits in u16.
            self.far.push((self.ids.len() as u16, at));
        }
        self.offsets.push(offset.unwrap_or(FAR));
        self.ids.push(id);
    }

    fn get(&self, position: usize) -> (i64, K) {
        let at = match self.offsets[position] {
            FAR => self
                .far
                .iter()
                .find(|&&(p, _)| usize::from(p) == position)
                .map_or(self.base_ms, |&(_, at)| at),
            offset => self.base_ms + i64::from(offset),
        };
        (at, self.ids[position])
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

    /// The first layout (a map from id to first sighting beside an order queue), kept as
    /// the model the compact one must agree with.
    struct Model {
        window_ms: i64,
        max_ids: usize,
        seen: std::collections::HashMap<i64, i64>,
        order: VecDeque<(i64, i64)>,
        newest_ms: i64,
        forgotten_early: u64,
    }

    impl Model {
        fn check(&mut self, id: i64, arrival_ms: i64) -> Sighting {
            if let Some(&first_seen_ms) = self.seen.get(&id)
                && arrival_ms.saturating_sub(first_seen_ms) <= self.window_ms
            {
                return Sighting::Duplicate { first_seen_ms };
            }
            self.seen.insert(id, arrival_ms);
            self.order.push_back((arrival_ms, id));
            self.newest_ms = self.newest_ms.max(arrival_ms);
            let horizon = self.newest_ms.saturating_sub(self.window_ms);
            while let Some(&(at, id)) = self.order.front() {
                if at >= horizon && self.seen.len() <= self.max_ids {
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
            Sighting::First
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Over sightings that cross chunk boundaries, re-open expired windows, arrive out
        /// of order and overflow `max_ids`, every answer and count matches the model.
        #[test]
        fn agrees_with_the_map_and_queue_model(
            window_ms in proptest::prop_oneof![1_i64..400, 1_000_i64..10_000_000],
            max_ids in 1_usize..30_000,
            steps in proptest::collection::vec((0_i64..20_000, 0_i64..60), 1..40_000),
        ) {
            let mut d = dedup(window_ms as u64, max_ids);
            let mut model = Model {
                window_ms,
                max_ids,
                seen: Default::default(),
                order: VecDeque::new(),
                newest_ms: i64::MIN,
                forgotten_early: 0,
            };
            let mut now = 0;
            for (id, step) in steps {
                // Mostly forward in time, sometimes a little back.
                now += step - 10;
                proptest::prop_assert_eq!(d.check(id, now), model.check(id, now));
            }
            proptest::prop_assert_eq!(d.len(), model.seen.len());
            proptest::prop_assert_eq!(d.forgotten_early(), model.forgotten_early);
        }
    }

    /// Arrival times weeks apart within one chunk (a clock that jumped) do not fit a
    /// chunk's 4-byte offsets: they are kept exactly all the same.
    #[test]
    fn arrival_times_weeks_apart_are_kept_exactly() {
        const DAY: i64 = 86_400_000;
        let window = 40 * DAY;
        let mut d = dedup(window as u64, 100);
        let mut model = Model {
            window_ms: window,
            max_ids: 100,
            seen: Default::default(),
            order: VecDeque::new(),
            newest_ms: i64::MIN,
            forgotten_early: 0,
        };
        let steps = [
            (1, 0),
            (2, 30 * DAY),
            (3, -5 * DAY),
            (1, 35 * DAY),
            (2, 31 * DAY),
            (4, 30 * DAY + 1),
            (3, 34 * DAY),
            (1, 41 * DAY),
        ];
        for (id, at) in steps {
            assert_eq!(d.check(id, at), model.check(id, at), "id {id} at {at}");
        }
        assert_eq!(
            d.check(2, 32 * DAY),
            Sighting::Duplicate {
                first_seen_ms: 30 * DAY
            }
        );
        assert_eq!(
            d.check(3, 34 * DAY + 5),
            Sighting::Duplicate {
                first_seen_ms: -5 * DAY
            }
        );
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
