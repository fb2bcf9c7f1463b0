//! A model of the processor and the lake, to check the rules of [`super`] against every
//! interleaving proptest can think of: a log of raw and invalid partitions, the four tables
//! with their `txn` versions and Delta's check of each commit, and processors that crash
//! after any step of any batch, lose the answer of a commit that landed, disagree with
//! themselves about duplicates from one run to the next, and hold a batch for a partition
//! that has meanwhile moved to another processor (a zombie writer). Whatever happens,
//! every record ends in exactly one table; for the Segment stream, an event that links
//! two ids also has exactly one row in `identities`, and a duplicate none.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;

use super::*;
use crate::stream::Stream;

/// Raw partitions of the modelled log, plus one invalid partition.
const RAW_PARTITIONS: u32 = 3;

/// A partition of the model: which feed, which number.
type Partition = (FeedKey, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum FeedKey {
    Raw,
    Invalid,
}

impl FeedKey {
    fn feed(self) -> Feed {
        match self {
            FeedKey::Raw => Feed::Raw,
            FeedKey::Invalid => Feed::Invalid,
        }
    }
}

/// A Delta table of the model: its rows (partition, offset) and `txn` versions.
#[derive(Debug, Default, Clone)]
struct ModelTable {
    rows: Vec<(u32, i64)>,
    txns: HashMap<u32, i64>,
}

impl ModelTable {
    /// Delta's commit with `LakeTable`'s checks: each `txn` must continue from exactly the
    /// recorded version and advance it, else nothing lands.
    fn commit(&mut self, rows: &[(u32, i64)], txns: &[(u32, Option<i64>, i64)]) -> bool {
        let valid = txns.iter().all(|&(p, previous, next)| {
            let recorded = self.txns.get(&p).copied();
            recorded == previous && recorded.is_none_or(|r| next > r)
        });
        if valid {
            self.rows.extend_from_slice(rows);
            for &(p, _, next) in txns {
                self.txns.insert(p, next);
            }
        }
        valid
    }
}

#[derive(Debug, Clone)]
struct Lake {
    stream: Stream,
    tables: BTreeMap<Table, ModelTable>,
}

impl Lake {
    fn table(&mut self, table: Table) -> &mut ModelTable {
        self.tables.entry(table).or_default()
    }

    fn positions(&mut self, (feed, p): Partition) -> Positions {
        let mut positions = Positions::default();
        for table in self.stream.feed_tables(feed.feed()) {
            if let Some(&next) = self.table(table).txns.get(&p) {
                positions.set(table, next);
            }
        }
        positions
    }
}

/// Whether the event at `offset` links two ids (an `identify`, say): modelled as every
/// third record, in the Segment stream only.
fn links_ids(stream: Stream, offset: i64) -> bool {
    stream == Stream::Segment && offset % 3 == 0
}

/// The log: per raw partition, whether each record decodes; the invalid partition's length.
#[derive(Debug, Clone)]
struct Log {
    raw: Vec<Vec<bool>>,
    invalid: i64,
}

impl Log {
    fn end(&self, (feed, p): Partition) -> i64 {
        match feed {
            FeedKey::Raw => self.raw[p as usize].len() as i64,
            FeedKey::Invalid => self.invalid,
        }
    }
}

/// A batch read and routed, not yet committed.
#[derive(Debug, Default)]
struct Batch {
    rows: BTreeMap<Table, Vec<(u32, i64)>>,
    next: BTreeMap<Partition, i64>,
}

/// One processor: the partitions it owns, where each stands, where it reads next.
#[derive(Debug, Default)]
struct Processor {
    owned: BTreeSet<Partition>,
    positions: HashMap<Partition, Positions>,
    decided: HashMap<u32, Vec<i64>>,
    read_at: HashMap<Partition, i64>,
}

impl Processor {
    /// Takes `partitions` over from what the lake says (the processor's `assign`).
    fn assign(&mut self, lake: &mut Lake, partitions: &[Partition]) {
        for &partition in partitions {
            self.owned.insert(partition);
            let positions = lake.positions(partition);
            let resume =
                resume_offset(&positions, partition.0.feed(), 0, u64::MAX).expect("resumable");
            if partition.0 == FeedKey::Raw {
                let range = positions.decided_range().unwrap_or(0..0);
                let held = lake.table(Table::Duplicates).rows.iter();
                let decided = held
                    .filter(|(p, o)| *p == partition.1 && range.contains(o))
                    .map(|(_, o)| *o);
                self.decided.insert(partition.1, decided.collect());
            }
            self.positions.insert(partition, positions);
            self.read_at.insert(partition, resume.offset as i64);
        }
    }

    /// Reads up to `max` records of every owned partition and routes them.
    fn read(
        &mut self,
        stream: Stream,
        log: &Log,
        max: i64,
        dedup: &mut impl FnMut() -> bool,
    ) -> Batch {
        let mut batch = Batch::default();
        let owned: Vec<Partition> = self.owned.iter().copied().collect();
        for partition in owned {
            let from = self.read_at[&partition];
            let until = log.end(partition).min(from + max);
            let positions = self.positions[&partition];
            for offset in from..until {
                let table = match partition.0 {
                    FeedKey::Invalid => positions
                        .lands(Table::Invalid, offset)
                        .then_some(Table::Invalid),
                    FeedKey::Raw => {
                        let record = if log.raw[partition.1 as usize][offset as usize] {
                            RawRecord::Event
                        } else {
                            RawRecord::Undecodable
                        };
                        let decided = || self.decided[&partition.1].contains(&offset);
                        match route_raw(&positions, offset, record, decided, &mut *dedup) {
                            Route::Skip => None,
                            Route::Event => {
                                if links_ids(stream, offset)
                                    && positions.lands(Table::Identities, offset)
                                {
                                    (batch.rows.entry(Table::Identities).or_default())
                                        .push((partition.1, offset));
                                }
                                Some(Table::Events)
                            }
                            Route::Duplicate => Some(Table::Duplicates),
                            Route::DeadLetter => Some(Table::DeadLetters),
                        }
                    }
                };
                if let Some(table) = table {
                    batch
                        .rows
                        .entry(table)
                        .or_default()
                        .push((partition.1, offset));
                }
            }
            if until > from {
                batch.next.insert(partition, until);
                self.read_at.insert(partition, until);
            }
        }
        batch
    }

    /// Commits `batch` step by step. Stops before step `crash` (a crash: the caller
    /// forgets this processor) and loses the answer of step `lose` (it landed, the
    /// processor saw an error and tries again). Returns false when it crashed.
    fn commit(&mut self, lake: &mut Lake, batch: &Batch, crash: usize, lose: usize) -> bool {
        for (index, step) in STEPS.iter().enumerate() {
            if index == crash {
                return false;
            }
            let Step::Commit(table) = *step else { continue };
            if !lake.stream.tables().contains(&table) {
                continue;
            }
            let feed = if table == Table::Invalid {
                FeedKey::Invalid
            } else {
                FeedKey::Raw
            };
            let rows = batch.rows.get(&table).cloned().unwrap_or_default();
            let txns: Vec<(u32, Option<i64>, i64)> = (batch.next.iter())
                .filter(|(partition, next)| {
                    let has_rows = rows.iter().any(|(q, _)| *q == partition.1);
                    let positions = self.positions.get(partition).copied().unwrap_or_default();
                    partition.0 == feed && carries_txn(table, &positions, **next, has_rows, true)
                })
                .map(|(partition, next)| {
                    let previous = self.positions.get(partition).and_then(|p| p.get(table));
                    (partition.1, previous, *next)
                })
                .collect();
            if txns.is_empty() {
                continue;
            }
            let mut landed = lake.table(table).commit(&rows, &txns);
            if landed && index == lose {
                // The answer was lost: the retry is refused, and the table is asked.
                landed = lake.table(table).commit(&rows, &txns);
            }
            if !landed {
                let recorded: Vec<Option<i64>> = (txns.iter())
                    .map(|(p, _, _)| lake.table(table).txns.get(p).copied())
                    .collect();
                let proposed: Vec<i64> = txns.iter().map(|(_, _, next)| *next).collect();
                if conflict_outcome(&recorded, &proposed) == Conflict::Moved {
                    // Drop the batch; read again from what the lake says.
                    let owned: Vec<Partition> = self.owned.iter().copied().collect();
                    self.assign(lake, &owned);
                    return true;
                }
            }
            for (p, _, next) in &txns {
                if let Some(positions) = self.positions.get_mut(&(feed, *p)) {
                    positions.set(table, *next);
                }
            }
        }
        true
    }
}

/// What may happen around one batch.
#[derive(Debug, Clone)]
struct Round {
    /// Which of the two processors reads and commits.
    second: bool,
    max: i64,
    crash: usize,
    lose: usize,
    /// Move a raw partition to the other processor between reading and committing: the
    /// batch being committed is then a zombie's for that partition.
    handover: Option<u32>,
}

fn round() -> impl Strategy<Value = Round> {
    (
        any::<bool>(),
        1..6i64,
        0..STEPS.len() * 3,
        0..STEPS.len() * 3,
        prop::option::weighted(0.2, 0..RAW_PARTITIONS),
    )
        .prop_map(|(second, max, crash, lose, handover)| Round {
            second,
            max,
            crash,
            lose,
            handover,
        })
}

/// Runs `rounds` and then both processors to the end without faults; returns the lake.
fn run(stream: Stream, log: &Log, rounds: &[Round], dedup_answers: &[bool]) -> Lake {
    let mut lake = Lake {
        stream,
        tables: BTreeMap::new(),
    };
    let mut answers = dedup_answers.iter().copied().cycle();
    let mut dedup = move || answers.next().unwrap_or(false);
    let all: Vec<Partition> = (0..RAW_PARTITIONS)
        .map(|p| (FeedKey::Raw, p))
        .chain([(FeedKey::Invalid, 0)])
        .collect();
    let mut procs = [Processor::default(), Processor::default()];
    procs[0].assign(&mut lake, &all);
    for round in rounds {
        let (me, other) = if round.second { (1, 0) } else { (0, 1) };
        let batch = procs[me].read(stream, log, round.max, &mut dedup);
        if let Some(p) = round
            .handover
            .filter(|p| procs[me].owned.contains(&(FeedKey::Raw, *p)))
        {
            // The other processor takes the partition and commits past it first.
            procs[me].owned.remove(&(FeedKey::Raw, p));
            procs[other].assign(&mut lake, &[(FeedKey::Raw, p)]);
            let theirs = procs[other].read(stream, log, round.max, &mut dedup);
            procs[other].commit(&mut lake, &theirs, usize::MAX, usize::MAX);
        }
        if !procs[me].commit(&mut lake, &batch, round.crash, round.lose) {
            let owned: Vec<Partition> = procs[me].owned.iter().copied().collect();
            procs[me] = Processor::default();
            procs[me].assign(&mut lake, &owned);
        }
    }
    for _ in 0..1000 {
        let mut progress = false;
        for processor in &mut procs {
            let batch = processor.read(stream, log, 4, &mut dedup);
            progress |= !batch.next.is_empty();
            processor.commit(&mut lake, &batch, usize::MAX, usize::MAX);
        }
        if !progress {
            break;
        }
    }
    lake
}

fn log_strategy() -> impl Strategy<Value = Log> {
    let partition = prop::collection::vec(prop::bool::weighted(0.8), 0..12);
    (
        prop::collection::vec(partition, RAW_PARTITIONS as usize),
        0..10i64,
    )
        .prop_map(|(raw, invalid)| Log { raw, invalid })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_record_lands_in_exactly_one_table(
        segment in any::<bool>(),
        log in log_strategy(),
        rounds in prop::collection::vec(round(), 0..25),
        dedup_answers in prop::collection::vec(prop::bool::weighted(0.3), 1..16),
    ) {
        let stream = if segment { Stream::Segment } else { Stream::Clickstream };
        let mut lake = run(stream, &log, &rounds, &dedup_answers);
        let mut links: HashMap<(u32, i64), usize> = HashMap::new();
        for &row in &lake.table(Table::Identities).rows {
            *links.entry(row).or_default() += 1;
        }
        let mut seen: HashMap<(bool, u32, i64), Vec<Table>> = HashMap::new();
        for table in [Table::DeadLetters, Table::Duplicates, Table::Events, Table::Invalid] {
            for &(p, offset) in &lake.table(table).rows {
                seen.entry((table == Table::Invalid, p, offset)).or_default().push(table);
            }
        }
        for (p, records) in log.raw.iter().enumerate() {
            for (offset, decodable) in records.iter().enumerate() {
                let tables = seen.remove(&(false, p as u32, offset as i64)).unwrap_or_default();
                let expected: &[Table] = if *decodable {
                    &[Table::Events, Table::Duplicates]
                } else {
                    &[Table::DeadLetters]
                };
                prop_assert!(
                    tables.len() == 1 && expected.contains(&tables[0]),
                    "raw {p}/{offset} landed in {tables:?}"
                );
                let linked = links.remove(&(p as u32, offset as i64)).unwrap_or(0);
                let expected_links = usize::from(
                    tables == [Table::Events] && links_ids(stream, offset as i64),
                );
                prop_assert_eq!(linked, expected_links, "identities of raw {}/{}", p, offset);
            }
        }
        for offset in 0..log.invalid {
            let tables = seen.remove(&(true, 0, offset)).unwrap_or_default();
            prop_assert_eq!(tables, vec![Table::Invalid], "invalid offset {}", offset);
        }
        prop_assert!(seen.is_empty(), "rows for records that do not exist: {:?}", seen);
        prop_assert!(links.is_empty(), "links for records that do not exist: {:?}", links);
    }
}
