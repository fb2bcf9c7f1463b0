//! Properties of sessionization: arrival order within a batch does not matter, batching
//! of an ordered stream does not matter, and a restart that rebuilds the state from the
//! stored sessions continues exactly as if there had been none.

use std::collections::{BTreeMap, HashMap};

use clickstream_enrich::{
    RestoredSession, SessionAssignment, SessionInput, Sessionizer, SessionsConfig, VisitorKey,
};
use proptest::prelude::*;

const SECOND: i64 = 1_000_000;
const NOW: i64 = 1_000_000 * SECOND;

fn config() -> SessionsConfig {
    SessionsConfig::default()
}

/// Events of a few visitors over six hours, so that some gaps exceed 30 minutes.
fn events() -> impl Strategy<Value = Vec<SessionInput>> {
    prop::collection::vec((0..4i64, 0..(6 * 3600i64)), 1..120).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(id, (visitor, second))| SessionInput {
                visitor: if visitor == 3 {
                    VisitorKey::of(None, "81.2.69.142", "Firefox")
                } else {
                    VisitorKey::Customer(visitor)
                },
                // Clustered times: several events often share a minute.
                time_us: (second / 60) * 60 * SECOND,
                event_id: id as i64,
            })
            .collect()
    })
}

/// Deterministic Fisher–Yates with a small LCG.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        items.swap(i, j);
    }
}

type ById = BTreeMap<i64, SessionAssignment>;

fn run(batches: &[Vec<SessionInput>], sessionizer: &mut Sessionizer, out: &mut ById) {
    for batch in batches {
        let assigned = sessionizer.assign(batch, NOW);
        for (input, assignment) in batch.iter().zip(assigned) {
            out.insert(input.event_id, assignment);
        }
    }
}

/// Splits a time-ordered stream into consecutive batches at `cuts`, shuffling each.
fn batches(mut ordered: Vec<SessionInput>, cuts: &[usize], seed: u64) -> Vec<Vec<SessionInput>> {
    ordered.sort_by_key(|e| (e.time_us, e.event_id));
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (ordered.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([ordered.len()]) {
        let mut batch = ordered[start..cut.max(start)].to_vec();
        shuffle(&mut batch, seed ^ cut as u64);
        out.push(batch);
        start = cut.max(start);
    }
    out
}

/// What the lake holds about each session: the rebuild query's aggregate.
fn stored_sessions(inputs: &[SessionInput], assigned: &ById) -> Vec<RestoredSession> {
    let mut sessions: HashMap<(VisitorKey, String), RestoredSession> = HashMap::new();
    for input in inputs {
        let Some(a) = assigned.get(&input.event_id) else {
            continue;
        };
        let entry = sessions
            .entry((input.visitor, a.session_id.to_string()))
            .or_insert_with(|| RestoredSession {
                visitor: input.visitor,
                session_id: a.session_id.to_string(),
                session_index: a.session_index,
                start_us: input.time_us,
                last_us: input.time_us,
                events: 0,
            });
        entry.start_us = entry.start_us.min(input.time_us);
        entry.last_us = entry.last_us.max(input.time_us);
        entry.events = entry.events.max(a.event_index);
    }
    let mut out: Vec<RestoredSession> = sessions.into_values().collect();
    out.sort_by_key(|s| (s.visitor, s.session_index));
    out
}

proptest! {
    #[test]
    fn arrival_order_within_a_batch_does_not_matter(events in events(), seed in any::<u64>()) {
        let mut in_order = ById::new();
        run(std::slice::from_ref(&events), &mut Sessionizer::new(&config()), &mut in_order);
        let mut shuffled = events.clone();
        shuffle(&mut shuffled, seed);
        let mut out = ById::new();
        run(&[shuffled], &mut Sessionizer::new(&config()), &mut out);
        prop_assert_eq!(out, in_order);
    }

    #[test]
    fn batching_an_ordered_stream_does_not_matter(
        events in events(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        seed in any::<u64>(),
    ) {
        let mut whole = ById::new();
        run(std::slice::from_ref(&events), &mut Sessionizer::new(&config()), &mut whole);
        let mut batched = ById::new();
        run(&batches(events, &cuts, seed), &mut Sessionizer::new(&config()), &mut batched);
        prop_assert_eq!(batched, whole);
    }

    #[test]
    fn a_restart_from_stored_sessions_continues_the_same_sessions(
        events in events(),
        cuts in prop::collection::vec(any::<usize>(), 1..6),
        restart_after in any::<usize>(),
        seed in any::<u64>(),
    ) {
        let batches = batches(events, &cuts, seed);
        let mut uninterrupted = ById::new();
        run(&batches, &mut Sessionizer::new(&config()), &mut uninterrupted);

        let split = restart_after % (batches.len() + 1);
        let (before, after) = batches.split_at(split);
        let mut restarted = ById::new();
        run(before, &mut Sessionizer::new(&config()), &mut restarted);
        let committed: Vec<SessionInput> = before.iter().flatten().copied().collect();
        let mut rebuilt = Sessionizer::new(&config());
        for session in stored_sessions(&committed, &restarted) {
            rebuilt.restore(session);
        }
        run(after, &mut rebuilt, &mut restarted);
        prop_assert_eq!(restarted, uninterrupted);
    }

    #[test]
    fn sessions_never_span_a_gap_longer_than_the_inactivity_gap(events in events()) {
        let mut out = ById::new();
        run(std::slice::from_ref(&events), &mut Sessionizer::new(&config()), &mut out);
        let gap = config().inactivity_gap_ms as i64 * 1000;
        let mut by_session: HashMap<String, Vec<i64>> = HashMap::new();
        for e in &events {
            by_session.entry(out[&e.event_id].session_id.to_string()).or_default().push(e.time_us);
        }
        for times in by_session.values_mut() {
            times.sort_unstable();
            for pair in times.windows(2) {
                prop_assert!(pair[1] - pair[0] <= gap);
            }
        }
        // And events of one visitor closer than the gap share a session.
        let mut by_visitor: HashMap<VisitorKey, Vec<&SessionInput>> = HashMap::new();
        for e in &events {
            by_visitor.entry(e.visitor).or_default().push(e);
        }
        for list in by_visitor.values_mut() {
            list.sort_by_key(|e| (e.time_us, e.event_id));
            for pair in list.windows(2) {
                let same = out[&pair[0].event_id].session_id == out[&pair[1].event_id].session_id;
                prop_assert_eq!(same, pair[1].time_us - pair[0].time_us <= gap);
            }
        }
    }
}
