//! The exactly-once rules of the processor, in one place and without I/O.
//!
//! Each stream ([`crate::stream::Stream`]) has its own tables fed from log partitions:
//! `dead_letters`, `duplicates` and `events` (and, for the Segment stream, `identities`)
//! from its topic of valid records, `invalid_events` from its invalid topic. No table is
//! fed by two streams, so the rules hold per stream. Every commit to one of them
//! carries, in the same atomic Delta commit, a `txn` action per partition it covers whose
//! version is the next offset to read ([`Positions`] holds them). From that follow the
//! rules this module states, each as a function the processor calls and the tests below
//! check against a model of crashes at every step:
//!
//! 1. **Order** ([`STEPS`]): a batch is committed latest topic, `dead_letters`,
//!    `duplicates`, `identities`, `events`, `invalid_events`, unique users (a stream skips
//!    the steps it has no part in). Everything a raw record can
//!    become lands before `events`, so `events`' version is the lowest raw position not
//!    fully in the lake.
//! 2. **Resume** ([`resume_offset`]): a partition is read again from that position
//!    (`events` for raw partitions, `invalid_events` for invalid ones).
//! 3. **Skip below a table's version** ([`Positions::lands`], [`route_raw`]): a record
//!    re-read after a crash between two steps is written only to the tables whose version
//!    is at or below its offset; a table ahead of it already has it.
//! 4. **Decided once** ([`route_raw`]): a raw record that `duplicates` already holds or
//!    passed over (between the `events` and `duplicates` versions) keeps the decision
//!    that landed, whatever the duplicate state says now.
//! 5. **Continue from what was read** ([`carries_txn`], [`Positions::get`]): each `txn`
//!    names the version it continues from; a processor that lost a partition to another
//!    cannot land a batch over offsets the new owner already took.
//! 6. **After a conflict** ([`conflict_outcome`]): a refused commit either landed on an
//!    earlier attempt (the table holds exactly this batch's versions: the step is done) or
//!    the partitions moved on (re-read positions, drop the batch).

/// A table fed from log partitions, whose commits carry `txn` positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Table {
    /// `dead_letters`: raw records that cannot be decoded.
    DeadLetters,
    /// `duplicates`: raw events whose id was seen within the window.
    Duplicates,
    /// `identities`: links between anonymous and user ids (Segment stream only), from
    /// the events that carry them.
    Identities,
    /// `events`: every other raw event.
    Events,
    /// `invalid_events`: records of the invalid topic.
    Invalid,
}

/// One step of committing a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Latest-topic records appended to the log (at-least-once: derived output).
    Latest,
    /// A table commit with its `txn` positions.
    Commit(Table),
    /// Unique users updated from the committed events (derived: rebuilt from `events`).
    UniqueUsers,
}

/// The order of a batch's steps. Everything fed from a raw partition commits before
/// `events`, so `events`' version bounds what is fully done.
pub(crate) const STEPS: [Step; 7] = [
    Step::Latest,
    Step::Commit(Table::DeadLetters),
    Step::Commit(Table::Duplicates),
    Step::Commit(Table::Identities),
    Step::Commit(Table::Events),
    Step::Commit(Table::Invalid),
    Step::UniqueUsers,
];

/// Which topic a partition belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    /// The raw topic: feeds `dead_letters`, `duplicates` and `events`.
    Raw,
    /// The invalid topic: feeds `invalid_events`.
    Invalid,
}

impl Table {
    /// The feed whose partitions this table's `txn` actions track.
    pub(crate) fn feed(self) -> Feed {
        match self {
            Table::Invalid => Feed::Invalid,
            Table::DeadLetters | Table::Duplicates | Table::Identities | Table::Events => Feed::Raw,
        }
    }
}

impl Feed {
    /// The table committed last for this feed: its version is where a partition resumes.
    pub(crate) fn resume_table(self) -> Table {
        match self {
            Feed::Raw => Table::Events,
            Feed::Invalid => Table::Invalid,
        }
    }
}

/// Where one partition stands in each table fed from it: the `txn` version (next offset)
/// each table records, `None` when it never recorded one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Positions {
    dead_letters: Option<i64>,
    duplicates: Option<i64>,
    identities: Option<i64>,
    events: Option<i64>,
    invalid: Option<i64>,
}

impl Positions {
    /// The version `table` records for this partition.
    pub(crate) fn get(&self, table: Table) -> Option<i64> {
        match table {
            Table::DeadLetters => self.dead_letters,
            Table::Duplicates => self.duplicates,
            Table::Identities => self.identities,
            Table::Events => self.events,
            Table::Invalid => self.invalid,
        }
    }

    /// Records that `table` now holds this partition up to `next` (exclusive).
    pub(crate) fn set(&mut self, table: Table, next: i64) {
        let slot = match table {
            Table::DeadLetters => &mut self.dead_letters,
            Table::Duplicates => &mut self.duplicates,
            Table::Identities => &mut self.identities,
            Table::Events => &mut self.events,
            Table::Invalid => &mut self.invalid,
        };
        *slot = Some(next);
    }

    /// Whether a record at `offset` still has to be written to `table`: rule 3, a table
    /// whose version is past the offset already holds what the record became there.
    pub(crate) fn lands(&self, table: Table, offset: i64) -> bool {
        self.get(table).is_none_or(|next| offset >= next)
    }

    /// The offsets between the resume position and `duplicates`' version: records whose
    /// duplicate decision already landed (rule 4). Empty unless a crash fell between the
    /// `duplicates` and `events` commits.
    pub(crate) fn decided_range(&self) -> Option<std::ops::Range<i64>> {
        let from = self.events.unwrap_or(0);
        self.duplicates
            .filter(|&until| until > from)
            .map(|until| from..until)
    }
}

/// Where a partition should be read from, given what the lake and the log say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resume {
    /// The offset to seek to.
    pub offset: u64,
    /// Set when retention deleted records the lake never received: the lake's position.
    pub lost_from: Option<u64>,
}

/// Why a partition cannot be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AheadOfLog {
    /// The lake's position.
    pub lake_next: i64,
    /// The log's end offset.
    pub log_end: u64,
}

/// Rule 2: where a partition of `feed` resumes, given the log's retained range
/// `log_start..log_end`. Refuses when the lake is ahead of the log: the log lost
/// acknowledged records (power loss under `fsync = "interval"`) or belongs to another
/// lake, and reading on would skip new records that reuse those offsets.
pub(crate) fn resume_offset(
    positions: &Positions,
    feed: Feed,
    log_start: u64,
    log_end: u64,
) -> Result<Resume, AheadOfLog> {
    let Some(next) = positions.get(feed.resume_table()) else {
        return Ok(Resume {
            offset: log_start,
            lost_from: None,
        });
    };
    let next_offset = next.max(0) as u64;
    if next_offset > log_end {
        return Err(AheadOfLog {
            lake_next: next,
            log_end,
        });
    }
    Ok(Resume {
        offset: next_offset.max(log_start),
        lost_from: (next_offset < log_start).then_some(next_offset),
    })
}

/// What becomes of one raw record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Already where it belongs: write nothing.
    Skip,
    /// A row of `events` (and a latest-topic record and unique-user candidate).
    Event,
    /// A row of `duplicates`.
    Duplicate,
    /// A row of `dead_letters`.
    DeadLetter,
}

/// A raw record as far as routing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawRecord {
    /// It decodes to an event.
    Event,
    /// It cannot be decoded.
    Undecodable,
}

/// Rules 3 and 4 for a raw record at `offset` of a partition standing at `positions`.
///
/// `decided` is the committed decision for records in [`Positions::decided_range`]: `true`
/// when `duplicates` holds the offset. `is_duplicate` asks the duplicate state (and records
/// the sighting); it is called for every event not already in `events`, so the state sees
/// each event once per run, including those whose decision was already committed.
pub(crate) fn route_raw(
    positions: &Positions,
    offset: i64,
    record: RawRecord,
    decided: impl FnOnce() -> bool,
    is_duplicate: impl FnOnce() -> bool,
) -> Route {
    if !positions.lands(Table::Events, offset) {
        // Everything fed from a raw partition commits before `events`.
        return Route::Skip;
    }
    match record {
        RawRecord::Undecodable if positions.lands(Table::DeadLetters, offset) => Route::DeadLetter,
        RawRecord::Undecodable => Route::Skip,
        RawRecord::Event => {
            let fresh = is_duplicate();
            let committed = positions
                .decided_range()
                .filter(|range| range.contains(&offset))
                .map(|_| decided());
            match committed {
                Some(true) => Route::Skip,
                Some(false) => Route::Event,
                None if fresh => Route::Duplicate,
                None => Route::Event,
            }
        }
    }
}

/// Rule 5: whether a batch's commit to `table` carries a `txn` for a partition it read up
/// to `next`. Never when the table is already at or past `next` (a replay after a crash
/// between two commits): the version would not advance and Delta would refuse it, batch
/// after batch. Otherwise `events` and `invalid_events` carry one for every partition of
/// their feed; `dead_letters` only where the batch has dead letters (they follow from what
/// a record is, not from state); `duplicates` and `identities` for every raw partition
/// while duplicate detection runs (so their versions move with `events` and a stale
/// writer is refused before it lands decisions, or identity links of records another
/// processor found to be duplicates), else only where they have rows.
pub(crate) fn carries_txn(
    table: Table,
    positions: &Positions,
    next: i64,
    has_rows: bool,
    detects_duplicates: bool,
) -> bool {
    let advances = positions.get(table).is_none_or(|recorded| next > recorded);
    advances
        && match table {
            Table::Events | Table::Invalid => true,
            Table::DeadLetters => has_rows,
            // Which records become events (and so which link identities) follows the
            // duplicate decisions: identities moves with them, for the same reason.
            Table::Duplicates | Table::Identities => has_rows || detects_duplicates,
        }
}

/// What a refused commit turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// The table holds exactly the versions this commit proposed: an earlier attempt whose
    /// answer was lost landed after all. The step is done.
    Landed,
    /// Someone else moved the partitions: re-read positions and read the batch again.
    Moved,
}

/// Rule 6: compares what the table records now with what the refused commit proposed,
/// app id by app id (`recorded[i]` for `proposed[i]`).
pub(crate) fn conflict_outcome(recorded: &[Option<i64>], proposed: &[i64]) -> Conflict {
    let landed = recorded.len() == proposed.len()
        && recorded
            .iter()
            .zip(proposed)
            .all(|(recorded, proposed)| *recorded == Some(*proposed));
    if landed {
        Conflict::Landed
    } else {
        Conflict::Moved
    }
}

#[cfg(test)]
#[path = "exactly_once_model.rs"]
mod model;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(events: Option<i64>, duplicates: Option<i64>, dead: Option<i64>) -> Positions {
        Positions {
            events,
            duplicates,
            dead_letters: dead,
            identities: None,
            invalid: None,
        }
    }

    #[test]
    fn resumes_at_the_last_table_of_the_feed() {
        let mut positions = at(Some(10), Some(14), Some(12));
        positions.set(Table::Invalid, 3);
        let resume = |feed| resume_offset(&positions, feed, 0, 100);
        assert_eq!(resume(Feed::Raw).map(|r| r.offset), Ok(10));
        assert_eq!(resume(Feed::Invalid).map(|r| r.offset), Ok(3));
    }

    #[test]
    fn resume_without_positions_starts_at_the_log_start() {
        let resumed = resume_offset(&Positions::default(), Feed::Raw, 7, 9);
        assert_eq!(
            resumed,
            Ok(Resume {
                offset: 7,
                lost_from: None
            })
        );
    }

    #[test]
    fn resume_past_retention_reports_the_gap() {
        let resumed = resume_offset(&at(Some(5), None, None), Feed::Raw, 20, 30);
        assert_eq!(
            resumed,
            Ok(Resume {
                offset: 20,
                lost_from: Some(5)
            })
        );
    }

    #[test]
    fn resume_refuses_a_lake_ahead_of_the_log() {
        let resumed = resume_offset(&at(Some(31), None, None), Feed::Raw, 0, 30);
        assert_eq!(
            resumed,
            Err(AheadOfLog {
                lake_next: 31,
                log_end: 30
            })
        );
        assert!(resume_offset(&at(Some(30), None, None), Feed::Raw, 0, 30).is_ok());
    }

    #[test]
    fn records_below_events_are_skipped_whatever_they_are() {
        let positions = at(Some(10), Some(10), Some(10));
        for record in [RawRecord::Event, RawRecord::Undecodable] {
            let route = route_raw(&positions, 9, record, || unreachable!(), || unreachable!());
            assert_eq!(route, Route::Skip);
        }
    }

    #[test]
    fn dead_letters_ahead_of_events_are_not_written_twice() {
        let positions = at(Some(10), Some(10), Some(12));
        let route = |offset| {
            route_raw(
                &positions,
                offset,
                RawRecord::Undecodable,
                || false,
                || false,
            )
        };
        assert_eq!(route(11), Route::Skip);
        assert_eq!(route(12), Route::DeadLetter);
    }

    #[test]
    fn a_committed_duplicate_decision_is_kept() {
        // `duplicates` landed up to 14, `events` only up to 10.
        let positions = at(Some(10), Some(14), None);
        let route = |offset, decided, fresh| {
            route_raw(&positions, offset, RawRecord::Event, || decided, || fresh)
        };
        // Held by `duplicates`: stays there even if the state now says first sighting.
        assert_eq!(route(11, true, false), Route::Skip);
        // Passed over as a first sighting: goes to `events` even if the state now says
        // duplicate (it saw the id in this very replay, say).
        assert_eq!(route(12, false, true), Route::Event);
        // Beyond the committed decisions: the state decides.
        assert_eq!(route(14, false, true), Route::Duplicate);
        assert_eq!(route(14, false, false), Route::Event);
    }

    #[test]
    fn the_duplicate_state_sees_every_event_not_in_events() {
        let positions = at(Some(10), Some(14), None);
        for offset in [11, 12, 14] {
            let mut asked = false;
            route_raw(
                &positions,
                offset,
                RawRecord::Event,
                || false,
                || {
                    asked = true;
                    false
                },
            );
            assert!(asked, "offset {offset}");
        }
    }

    #[test]
    fn txns_follow_the_feed() {
        let fresh = Positions::default();
        let carries = |table, has_rows, detects| carries_txn(table, &fresh, 5, has_rows, detects);
        assert!(carries(Table::Events, false, false));
        assert!(carries(Table::Invalid, false, false));
        assert!(!carries(Table::DeadLetters, false, true));
        assert!(carries(Table::DeadLetters, true, false));
        assert!(carries(Table::Duplicates, false, true));
        assert!(!carries(Table::Duplicates, false, false));
        assert!(carries(Table::Duplicates, true, false));
        assert!(carries(Table::Identities, false, true));
        assert!(!carries(Table::Identities, false, false));
        assert!(carries(Table::Identities, true, false));
    }

    #[test]
    fn a_replay_carries_no_txn_for_a_table_already_past_it() {
        // A crash after the `duplicates` commit: it is at 6, `events` at 3. Replaying
        // 3..6 must not propose 6 to `duplicates` again (Delta would refuse it for ever).
        let positions = at(Some(3), Some(6), None);
        assert!(!carries_txn(Table::Duplicates, &positions, 6, false, true));
        assert!(carries_txn(Table::Duplicates, &positions, 7, false, true));
        assert!(carries_txn(Table::Events, &positions, 6, false, true));
    }

    #[test]
    fn a_conflict_landed_only_when_every_version_matches() {
        assert_eq!(
            conflict_outcome(&[Some(5), Some(7)], &[5, 7]),
            Conflict::Landed
        );
        assert_eq!(
            conflict_outcome(&[Some(5), Some(6)], &[5, 7]),
            Conflict::Moved
        );
        assert_eq!(conflict_outcome(&[None], &[5]), Conflict::Moved);
        assert_eq!(conflict_outcome(&[Some(9)], &[5]), Conflict::Moved);
    }
}
