//! Properties of duplicate detection: replaying a batch never changes what is counted,
//! and a state rebuilt from the first sightings decides like the original.

use std::collections::BTreeSet;

use clickstream_enrich::{Deduplicator, DuplicatesConfig, Sighting};
use proptest::prelude::*;

const WINDOW_MS: u64 = 60_000;

fn config() -> DuplicatesConfig {
    DuplicatesConfig {
        enabled: true,
        window_ms: WINDOW_MS,
        max_ids: 1_000_000,
    }
}

/// (id, arrival ms): ids repeat, arrivals within half a window.
fn batch() -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec((0..200i64, 0..(WINDOW_MS as i64 / 2)), 0..300).prop_map(|mut b| {
        b.sort_by_key(|(_, at)| *at);
        b
    })
}

fn firsts(dedup: &mut Deduplicator, batch: &[(i64, i64)]) -> Vec<(i64, i64)> {
    batch
        .iter()
        .copied()
        .filter(|(id, at)| dedup.check(*id, *at) == Sighting::First)
        .collect()
}

proptest! {
    #[test]
    fn replaying_a_batch_never_changes_the_counts(
        batch in batch(),
        delay_ms in 0..(WINDOW_MS as i64 / 2),
    ) {
        let mut dedup = Deduplicator::new(&config());
        let first = firsts(&mut dedup, &batch);
        let distinct: BTreeSet<i64> = batch.iter().map(|(id, _)| *id).collect();
        prop_assert_eq!(first.len(), distinct.len());
        // A client retrying the whole batch a little later.
        let replay: Vec<(i64, i64)> = batch.iter().map(|(id, at)| (*id, at + delay_ms)).collect();
        prop_assert!(firsts(&mut dedup, &replay).is_empty());
        prop_assert!(firsts(&mut dedup, &batch).is_empty());
    }

    #[test]
    fn a_state_rebuilt_from_first_sightings_decides_the_same(
        committed in batch(),
        next in batch(),
    ) {
        let mut original = Deduplicator::new(&config());
        let stored = firsts(&mut original, &committed);
        let mut rebuilt = Deduplicator::new(&config());
        for (id, at) in &stored {
            rebuilt.restore(*id, *at);
        }
        let later: Vec<(i64, i64)> = next.iter().map(|(id, at)| (*id, at + WINDOW_MS as i64 / 2)).collect();
        prop_assert_eq!(firsts(&mut rebuilt, &later), firsts(&mut original, &later));
    }
}
