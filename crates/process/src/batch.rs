//! What the processor accumulates between two lake commits, and the positions it covers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use clickstream_enrich::{SessionAssignment, SessionInput};

use crate::events_files::{EventFiles, EventsEncoder};
use crate::exactly_once::{Feed, Positions, Table, carries_txn};
use crate::stream::Stream;
use clickstream_lake::{
    AppTxn, DeadLetterRow, DeadLettersBuilder, DuplicateRow, DuplicatesBuilder, EventRow,
    EventsBuilder, IdentitiesBuilder, IdentityRow, InvalidEventRow, InvalidEventsBuilder,
    LakeError, SegmentDuplicateRow, SegmentDuplicatesBuilder, SegmentEventRow,
    SegmentEventsBuilder, SessionColumns, txn_app_id,
};
use clickstream_log::OutgoingRecord;
use deltalake::arrow::record_batch::RecordBatch;

/// Rows and records gathered since the last commit.
pub(crate) struct PendingBatch {
    stream: Stream,
    /// The clickstream stream's events since the last slice sent to `encoder` (empty for
    /// the Segment stream).
    events: EventsBuilder,
    /// Where the clickstream stream's events go as they are built, from the batch's first
    /// slice on ([`crate::events_files`]).
    encoder: Option<EventsEncoder>,
    /// The Segment stream's calls (empty for the clickstream stream).
    calls: SegmentEventsBuilder,
    invalid: InvalidEventsBuilder,
    dead: DeadLettersBuilder,
    duplicates: DuplicatesBuilder,
    duplicate_calls: SegmentDuplicatesBuilder,
    identities: IdentitiesBuilder,
    identity_partitions: BTreeSet<u32>,
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
    /// An empty batch of `stream`'s tables.
    pub fn new(stream: Stream) -> Result<Self, LakeError> {
        Ok(Self {
            stream,
            events: EventsBuilder::new(),
            encoder: None,
            calls: SegmentEventsBuilder::new(),
            invalid: InvalidEventsBuilder::for_kind(stream.kind(Table::Invalid))?,
            dead: DeadLettersBuilder::for_kind(stream.kind(Table::DeadLetters))?,
            duplicates: DuplicatesBuilder::new(),
            duplicate_calls: SegmentDuplicatesBuilder::new(),
            identities: IdentitiesBuilder::new(),
            identity_partitions: BTreeSet::new(),
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
        })
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
        latest: Option<OutgoingRecord>,
    ) {
        self.events.push(row);
        self.session_inputs.extend(session);
        self.latest.extend(latest);
        self.rows += 1;
    }

    /// Events built since the last slice.
    pub fn events_len(&self) -> usize {
        self.events.len()
    }

    /// The events built since the last slice, as one slice with `sessions` (one per event,
    /// in row order); the sessionizer's input starts afresh.
    pub fn finish_events(&mut self, sessions: Option<&[SessionAssignment]>) -> RecordBatch {
        let columns = sessions.map(session_columns);
        self.session_inputs.clear();
        self.events.finish_with_sessions(columns.as_deref())
    }

    /// Whether the batch's events encoder is running.
    pub fn encoding(&self) -> bool {
        self.encoder.is_some()
    }

    /// Starts sending the batch's events to `encoder`.
    pub fn start_encoding(&mut self, encoder: EventsEncoder) {
        self.encoder = Some(encoder);
    }

    /// Hands a slice of events to the batch's encoder.
    pub async fn send_events(&mut self, slice: RecordBatch) {
        if let Some(encoder) = self.encoder.as_mut() {
            encoder.send(slice).await;
        }
    }

    /// The latest-topic records gathered since the last call (appended as the batch is
    /// built: `latest_emit.rs`).
    pub fn take_latest(&mut self) -> Vec<OutgoingRecord> {
        // The next poll's records start with room for as many as this one's.
        let room = self.latest.len();
        std::mem::replace(&mut self.latest, Vec::with_capacity(room))
    }

    /// The sessionizer's input for the events gathered so far, in row order.
    pub fn session_inputs(&self) -> &[SessionInput] {
        &self.session_inputs
    }

    /// A Segment call for `segment_events` (with its sessionizer input when sessions are
    /// on) and the identity link it carries, if any.
    pub fn push_call(
        &mut self,
        row: &SegmentEventRow<'_>,
        session: Option<SessionInput>,
        identity: Option<(u32, IdentityRow<'_>)>,
    ) {
        self.calls.push(row);
        self.session_inputs.extend(session);
        self.rows += 1;
        if let Some((partition, identity)) = identity {
            self.identities.push(&identity);
            self.identity_partitions.insert(partition);
            self.rows += 1;
        }
    }

    /// A Segment call whose message id was seen within the dedup window.
    pub fn push_duplicate_call(&mut self, partition: u32, row: &SegmentDuplicateRow<'_>) {
        self.duplicate_calls.push(row);
        self.duplicate_partitions.insert(partition);
        self.rows += 1;
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

    /// Turns the gathered rows into Arrow batches and the positions to commit with them
    /// (which tables carry a `txn` for which partition: [`carries_txn`]); `sessions` are
    /// the events' sessions, in row order; `positions` says where each partition stood in
    /// each table when this processor last read or wrote it, which each `txn` names as the
    /// version it continues from.
    pub fn seal(
        &mut self,
        group: &str,
        positions: &dyn Fn(Feed, u32) -> Positions,
        sessions: Option<&[SessionAssignment]>,
        detects_duplicates: bool,
    ) -> SealedBatch {
        let columns = sessions.map(session_columns);
        let stream = self.stream;
        // The clickstream stream's events went to the encoder slice by slice (the last one
        // just before sealing): its builder is empty.
        let (events, duplicates) = match stream {
            Stream::Clickstream => (
                self.events.finish_with_sessions(None),
                self.duplicates.finish(),
            ),
            Stream::Segment => (
                self.calls.finish_with_sessions(columns.as_deref()),
                self.duplicate_calls.finish(),
            ),
        };
        let rows = [
            (
                Table::DeadLetters,
                Some(self.dead.finish()),
                &self.dead_partitions,
            ),
            (
                Table::Duplicates,
                Some(duplicates),
                &self.duplicate_partitions,
            ),
            (
                Table::Identities,
                Some(self.identities.finish()),
                &self.identity_partitions,
            ),
            (Table::Events, Some(events), &BTreeSet::new()),
            (
                Table::Invalid,
                Some(self.invalid.finish()),
                &BTreeSet::new(),
            ),
        ];
        let mut tables = rows.map(|(table, rows, with_rows)| {
            let next = match table.feed() {
                Feed::Raw => &self.raw_next,
                Feed::Invalid => &self.invalid_next,
            };
            // A table of another stream (identities, for the clickstream stream) is not
            // this processor's to move.
            let ours = stream.tables().contains(&table);
            let (partitions, txns) = next
                .iter()
                .filter(|_| ours)
                .filter(|(p, next)| {
                    let at = positions(table.feed(), **p);
                    carries_txn(
                        table,
                        &at,
                        **next as i64,
                        with_rows.contains(p),
                        detects_duplicates,
                    )
                })
                .map(|(p, offset)| {
                    let app_id = txn_app_id(group, stream.topic(table.feed()), *p);
                    let previous = positions(table.feed(), *p).get(table);
                    (*p, AppTxn::continuing(app_id, previous, *offset as i64))
                })
                .unzip();
            TableCommit {
                table,
                rows: rows.filter(|rows| rows.num_rows() > 0),
                files: None,
                partitions,
                txns,
                done: false,
            }
        });
        if let Some(encoder) = self.encoder.take()
            && let Some(commit) = tables.iter_mut().find(|c| c.table == Table::Events)
        {
            commit.files = Some(encoder.seal());
        }
        let sealed = SealedBatch {
            latest: std::mem::take(&mut self.latest),
            latest_unplaced: None,
            latest_done: false,
            tables,
            new_users: std::mem::take(&mut self.new_users),
            events_moved: None,
            users_applied: false,
            changed_days: BTreeSet::new(),
            raw_next: std::mem::take(&mut self.raw_next),
            invalid_next: std::mem::take(&mut self.invalid_next),
            rows: self.rows,
        };
        self.dead_partitions.clear();
        self.duplicate_partitions.clear();
        self.identity_partitions.clear();
        self.session_inputs.clear();
        self.started = None;
        self.rows = 0;
        self.record_bytes = 0;
        sealed
    }
}

/// A batch ready to commit. Steps that succeeded are remembered so that a retry after a
/// transient failure does not repeat them.
pub(crate) struct SealedBatch {
    pub latest: Vec<OutgoingRecord>,
    /// What the appends made while the batch was built could not place (step 1 waits).
    pub latest_unplaced: Option<crate::latest_emit::Unplaced>,
    pub latest_done: bool,
    /// One commit per table, in commit order.
    pub tables: [TableCommit; 5],
    pub new_users: Vec<(String, i64)>,
    /// `events`' version before and after this batch's commit, once this processor made it.
    pub events_moved: Option<(i64, i64)>,
    /// Whether the unique-users state took the batch.
    pub users_applied: bool,
    /// Days whose count changed but was not yet published (a retry publishes them).
    pub changed_days: BTreeSet<String>,
    pub raw_next: BTreeMap<u32, u64>,
    pub invalid_next: BTreeMap<u32, u64>,
    pub rows: usize,
}

impl SealedBatch {
    /// The commit to `table`.
    pub fn table_mut(&mut self, table: Table) -> &mut TableCommit {
        let index = self.tables.iter().position(|c| c.table == table);
        // Every table has a slot: `seal` builds the five in order.
        &mut self.tables[index.unwrap_or_default()]
    }
}

/// One table's part of a batch: its rows and the `txn` actions committed with them.
pub(crate) struct TableCommit {
    pub table: Table,
    /// `None` when the batch has no rows for the table (a commit may still carry txns).
    pub rows: Option<RecordBatch>,
    /// The files the batch's rows were encoded into as it was built (the clickstream
    /// stream's `events`), instead of `rows`.
    pub files: Option<EventFiles>,
    /// The partition of each `txn`, in the same order.
    pub partitions: Vec<u32>,
    pub txns: Vec<AppTxn>,
    pub done: bool,
}

impl TableCommit {
    /// Whether there is anything to commit: positions move even when no row is written.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Rows written by the commit.
    pub fn row_count(&self) -> usize {
        self.rows.as_ref().map_or(0, RecordBatch::num_rows)
            + self.files.as_ref().map_or(0, EventFiles::rows)
    }
}

/// The session columns of assigned sessions, in the same order.
fn session_columns(assigned: &[SessionAssignment]) -> Vec<SessionColumns<'_>> {
    assigned
        .iter()
        .map(|a| SessionColumns {
            session_id: &a.session_id,
            session_index: a.session_index,
            event_index: a.event_index,
        })
        .collect()
}
