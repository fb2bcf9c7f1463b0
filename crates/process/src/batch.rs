//! What the processor accumulates between two lake commits, and the positions it covers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use clickstream_enrich::{SessionAssignment, SessionInput};
use clickstream_lake::{
    AppTxn, DeadLetterRow, DeadLettersBuilder, DuplicateRow, DuplicatesBuilder, EventRow,
    EventsBuilder, InvalidEventRow, InvalidEventsBuilder, SessionColumns, txn_app_id,
};
use clickstream_log::OutgoingRecord;
use deltalake::arrow::record_batch::RecordBatch;

/// Rows and records gathered since the last commit.
pub(crate) struct PendingBatch {
    events: EventsBuilder,
    invalid: InvalidEventsBuilder,
    dead: DeadLettersBuilder,
    duplicates: DuplicatesBuilder,
    /// The sessionizer's input, one per event row (when sessions are on).
    session_inputs: Vec<SessionInput>,
    latest: Vec<OutgoingRecord>,
    new_users: Vec<(String, i64)>,
    raw_next: BTreeMap<u32, u64>,
    invalid_next: BTreeMap<u32, u64>,
    dead_partitions: BTreeSet<u32>,
    duplicate_partitions: BTreeSet<u32>,
    started: Option<Instant>,
    rows: usize,
    /// Bytes of the log records consumed into this batch (keys and values).
    record_bytes: u64,
}

impl PendingBatch {
    pub fn new() -> Self {
        Self {
            events: EventsBuilder::new(),
            invalid: InvalidEventsBuilder::new(),
            dead: DeadLettersBuilder::new(),
            duplicates: DuplicatesBuilder::new(),
            session_inputs: Vec::new(),
            latest: Vec::new(),
            new_users: Vec::new(),
            raw_next: BTreeMap::new(),
            invalid_next: BTreeMap::new(),
            dead_partitions: BTreeSet::new(),
            duplicate_partitions: BTreeSet::new(),
            started: None,
            rows: 0,
            record_bytes: 0,
        }
    }

    /// Rows gathered (events, invalid events, dead letters and duplicates).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes of the log records consumed into the batch (keys and values).
    pub fn record_bytes(&self) -> u64 {
        self.record_bytes
    }

    /// Whether any position advanced since the last commit.
    pub fn is_empty(&self) -> bool {
        self.raw_next.is_empty() && self.invalid_next.is_empty()
    }

    /// When the first record of this batch arrived.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    fn touch(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    /// Marks a raw-topic record of `bytes` bytes as consumed, whatever became of it.
    pub fn consumed_raw(&mut self, partition: u32, offset: u64, bytes: usize) {
        self.touch();
        self.raw_next.insert(partition, offset + 1);
        self.record_bytes += bytes as u64;
    }

    /// Marks an invalid-topic record of `bytes` bytes as consumed.
    pub fn consumed_invalid(&mut self, partition: u32, offset: u64, bytes: usize) {
        self.touch();
        self.invalid_next.insert(partition, offset + 1);
        self.record_bytes += bytes as u64;
    }

    /// An event for `events` (with its sessionizer input when sessions are on) and its
    /// latest-topic record.
    pub fn push_event(
        &mut self,
        row: &EventRow<'_>,
        session: Option<SessionInput>,
        latest: OutgoingRecord,
    ) {
        self.events.push(row);
        self.session_inputs.extend(session);
        self.latest.push(latest);
        self.rows += 1;
    }

    /// The sessionizer's input for the events gathered so far, in row order.
    pub fn session_inputs(&self) -> &[SessionInput] {
        &self.session_inputs
    }

    pub fn push_duplicate(&mut self, partition: u32, row: &DuplicateRow<'_>) {
        self.duplicates.push(row);
        self.duplicate_partitions.insert(partition);
        self.rows += 1;
    }

    pub fn push_new_user(&mut self, day: &str, customer: i64) {
        self.new_users.push((day.to_string(), customer));
    }

    pub fn push_invalid(&mut self, row: &InvalidEventRow<'_>) {
        self.invalid.push(row);
        self.rows += 1;
    }

    pub fn push_dead_letter(&mut self, partition: u32, row: &DeadLetterRow<'_>) {
        self.dead.push(row);
        self.dead_partitions.insert(partition);
        self.rows += 1;
    }

    /// Turns the gathered rows into Arrow batches and the offsets to commit with them;
    /// `sessions` are the events' sessions, in row order. With `every_duplicates_commit`
    /// (duplicate detection on) `duplicates` is committed for every raw partition of the
    /// batch, rows or not: its versions then move with every batch, so a processor that
    /// lost a partition cannot land duplicate decisions over offsets the new owner
    /// already decided (its commit is refused as `TxnMoved`).
    pub fn seal(
        &mut self,
        group: &str,
        raw_topic: &str,
        invalid_topic: &str,
        previous: &Previous<'_>,
        sessions: Option<&[SessionAssignment]>,
        every_duplicates_commit: bool,
    ) -> SealedBatch {
        let track_duplicates = every_duplicates_commit && !self.raw_next.is_empty();
        let txns = |next: &BTreeMap<u32, u64>,
                    topic: &str,
                    table: TableStep,
                    only: Option<&BTreeSet<u32>>| {
            next.iter()
                .filter(|(p, _)| only.is_none_or(|set| set.contains(p)))
                .map(|(p, offset)| {
                    AppTxn::continuing(
                        txn_app_id(group, topic, *p),
                        previous(topic, *p, table),
                        *offset as i64,
                    )
                })
                .collect::<Vec<_>>()
        };
        let sealed = SealedBatch {
            latest: std::mem::take(&mut self.latest),
            dead_letters: (!self.dead_partitions.is_empty()).then(|| self.dead.finish()),
            dead_txns: txns(
                &self.raw_next,
                raw_topic,
                TableStep::DeadLetters,
                Some(&self.dead_partitions),
            ),
            duplicates: (track_duplicates || !self.duplicate_partitions.is_empty())
                .then(|| self.duplicates.finish()),
            duplicates_txns: txns(
                &self.raw_next,
                raw_topic,
                TableStep::Duplicates,
                (!track_duplicates).then_some(&self.duplicate_partitions),
            ),
            events: {
                let columns: Option<Vec<SessionColumns<'_>>> = sessions.map(|assigned| {
                    assigned
                        .iter()
                        .map(|a| SessionColumns {
                            session_id: &a.session_id,
                            session_index: a.session_index,
                            event_index: a.event_index,
                        })
                        .collect()
                });
                self.events.finish_with_sessions(columns.as_deref())
            },
            events_txns: txns(&self.raw_next, raw_topic, TableStep::Events, None),
            invalid: self.invalid.finish(),
            invalid_txns: txns(&self.invalid_next, invalid_topic, TableStep::Invalid, None),
            new_users: std::mem::take(&mut self.new_users),
            changed_days: BTreeSet::new(),
            raw_next: std::mem::take(&mut self.raw_next),
            invalid_next: std::mem::take(&mut self.invalid_next),
            rows: self.rows,
            done: Steps::default(),
        };
        self.dead_partitions.clear();
        self.duplicate_partitions.clear();
        self.session_inputs.clear();
        self.started = None;
        self.rows = 0;
        self.record_bytes = 0;
        sealed
    }
}

/// The table a commit step writes to, for looking up where a partition stood in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableStep {
    DeadLetters,
    Duplicates,
    Events,
    Invalid,
}

/// The version a table records for a topic partition when this processor last read or
/// wrote it: what the next commit must continue from.
pub(crate) type Previous<'a> = dyn Fn(&str, u32, TableStep) -> Option<i64> + 'a;

/// A batch ready to commit. Steps that succeeded are remembered so that a retry after a
/// transient failure does not repeat them.
pub(crate) struct SealedBatch {
    pub latest: Vec<OutgoingRecord>,
    pub dead_letters: Option<RecordBatch>,
    pub dead_txns: Vec<AppTxn>,
    pub duplicates: Option<RecordBatch>,
    pub duplicates_txns: Vec<AppTxn>,
    pub events: RecordBatch,
    pub events_txns: Vec<AppTxn>,
    pub invalid: RecordBatch,
    pub invalid_txns: Vec<AppTxn>,
    pub new_users: Vec<(String, i64)>,
    /// Days whose count changed but was not yet published (a retry publishes them).
    pub changed_days: BTreeSet<String>,
    pub raw_next: BTreeMap<u32, u64>,
    pub invalid_next: BTreeMap<u32, u64>,
    pub rows: usize,
    pub done: Steps,
}

/// Which commit steps of a sealed batch are done.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Steps {
    pub latest: bool,
    pub dead_letters: bool,
    pub duplicates: bool,
    pub events: bool,
    pub invalid: bool,
}
