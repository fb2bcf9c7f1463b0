//! The processor's commit side: everything a sealed batch needs to land (the log for the
//! latest and unique-users topics, the tables, the unique-users state, the positions the
//! lake holds). The run loop owns it between batches and lends it to a commit task while a
//! batch is in flight ([`crate::flush`]), so the next batch is read, decoded and enriched
//! while the last one commits; the steps themselves are in [`crate::commit`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_lake::{Lake, LakeError, LakeTable, TableKind};
use clickstream_log::{EventLog, TopicPartition};
use clickstream_query::QueryEngine;
use tokio::sync::watch;

use crate::batch::SealedBatch;
use crate::exactly_once::{Conflict, Feed, Positions, Table};
use crate::metrics::Handles;
use crate::unique_users::UniqueUsers;
use crate::{ProcessError, ProcessorHealth, ProcessorStats, Stream};

/// How long a shutting-down processor keeps trying to commit before leaving the batch to
/// be read again at the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The first wait before a failed step is tried again; each failure in a row doubles it.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What commits batches, and the state only commits change.
pub(crate) struct Committer {
    pub stream: Stream,
    /// The consumer group (part of every `txn` app id).
    pub group: String,
    pub log: Arc<dyn EventLog>,
    pub tables: Tables,
    pub users: UniqueUsers,
    pub query: QueryEngine,
    /// Where each assigned partition stands in the tables it feeds.
    pub committed: HashMap<TopicPartition, Positions>,
    pub stats: Arc<ProcessorStats>,
    pub health: Arc<ProcessorHealth>,
    /// Becomes true when shutdown is requested.
    pub stop: watch::Receiver<bool>,
    /// When the unique-users state last looked for other processors' commits.
    pub users_followed: Option<Instant>,
    /// Days whose count changed but could not be emitted yet (the log's disk at its
    /// reserve); emitted with the next emit.
    pub users_unemitted: BTreeSet<String>,
    /// When `unique_users_daily` was last checked or rewritten, and the `events` version
    /// the table was then known to hold (or pass).
    pub users_written: Option<(Instant, i64)>,
    /// The wait before reading a batch again after its files could not be written: it
    /// grows with each such batch in a row, so a store that is down is not hammered by
    /// re-reads.
    pub unwritten_backoff: Duration,
}

/// How a batch's commit ended.
#[derive(Debug)]
pub(crate) enum Landed {
    /// Every step is done; the group's offsets (informational) can move to these.
    Committed(Vec<(TopicPartition, u64)>),
    /// Another processor moved the batch's partitions on: the batch is dropped and the
    /// positions must be read from the lake again.
    Moved,
    /// The batch's `events` files could not be written: it is dropped and its partitions
    /// read again from the lake's positions, as for `Moved`.
    Unwritten,
    /// Shutdown came while the lake was unavailable: the batch is left to be read again
    /// at the next start.
    Abandoned,
}

impl Committer {
    /// Commits `sealed`, retrying transient failures with backoff (the stream waits);
    /// during shutdown, for at most [`SHUTDOWN_GRACE`].
    pub async fn land(&mut self, mut sealed: SealedBatch) -> Result<Landed, ProcessError> {
        let mut backoff = FIRST_BACKOFF;
        let mut stopping_since: Option<Instant> = None;
        loop {
            let started = Instant::now();
            match self.commit(&mut sealed).await {
                Ok(()) => {
                    self.health.committed();
                    self.health.waiting_on(None);
                    self.unwritten_backoff = FIRST_BACKOFF;
                    Handles::get()
                        .commit_duration
                        .record(started.elapsed().as_secs_f64());
                    tracing::debug!(
                        rows = sealed.rows,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "batch committed"
                    );
                    return Ok(Landed::Committed(self.group_offsets(&sealed)));
                }
                Err(ProcessError::Lake(
                    e @ (LakeError::TxnConflict { .. }
                    | LakeError::TxnNotAdvancing { .. }
                    | LakeError::TxnMoved { .. }),
                )) => {
                    // An earlier attempt may have landed after all (an ambiguous failure),
                    // or another processor moved these partitions on: ask the tables.
                    match self.landed_already(&mut sealed).await {
                        Ok(Conflict::Landed) => {
                            tracing::info!(error = %e, "a commit step had landed on an earlier attempt");
                            continue;
                        }
                        Ok(Conflict::Moved) => {}
                        Err(e) if e.is_transient() => {
                            tracing::warn!(error = %e, "checking a conflicting commit failed; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                    tracing::warn!(error = %e, "partitions moved on under us; re-reading positions from the lake");
                    if sealed.table_mut(Table::Events).done {
                        self.apply_unique_users(&mut sealed).await?;
                    }
                    return Ok(Landed::Moved);
                }
                Err(ProcessError::EventsUnwritten(e)) if e.is_transient() => {
                    // Nothing of `events` landed: what the steps before it committed is
                    // where the re-read resumes (rule 3 of `exactly_once`).
                    let wait = self.unwritten_backoff;
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "the batch's events files could not be written; reading it again from the log");
                    self.health
                        .waiting_on(Some(format!("writing a batch's files: {e}")));
                    Handles::get().batches_unwritten.increment(1);
                    tokio::time::sleep(wait).await;
                    self.unwritten_backoff = (wait * 2).min(MAX_BACKOFF);
                    return Ok(Landed::Unwritten);
                }
                Err(e) if e.is_transient() => {
                    if *self.stop.borrow() {
                        let since = *stopping_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > SHUTDOWN_GRACE {
                            tracing::warn!(error = %e, "shutting down without committing the last batch; it will be read again from the log");
                            return Ok(Landed::Abandoned);
                        }
                    }
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "commit failed; retrying");
                    self.health
                        .waiting_on(Some(format!("committing a batch: {e}")));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next offsets of the partitions `batch` covers, for the group's offsets.
    fn group_offsets(&self, batch: &SealedBatch) -> Vec<(TopicPartition, u64)> {
        let topic = |feed| self.stream.topic(feed);
        batch
            .raw_next
            .iter()
            .map(|(p, o)| (TopicPartition::new(topic(Feed::Raw), *p), *o))
            .chain(
                batch
                    .invalid_next
                    .iter()
                    .map(|(p, o)| (TopicPartition::new(topic(Feed::Invalid), *p), *o)),
            )
            .collect()
    }
}

/// A stream's tables, loaded. (Every lake has every table; a stream writes only its own,
/// and `unique_users_daily` only from the clickstream stream.)
pub(crate) struct Tables {
    pub events: LakeTable,
    pub invalid: LakeTable,
    pub dead: LakeTable,
    pub unique: LakeTable,
    pub duplicates: LakeTable,
    pub identities: LakeTable,
}

impl Tables {
    /// The handle of a table fed from log partitions.
    pub fn get_mut(&mut self, table: Table) -> &mut LakeTable {
        match table {
            Table::DeadLetters => &mut self.dead,
            Table::Duplicates => &mut self.duplicates,
            Table::Identities => &mut self.identities,
            Table::Events => &mut self.events,
            Table::Invalid => &mut self.invalid,
        }
    }

    /// Loads `stream`'s tables.
    pub async fn load(lake: &Lake, stream: Stream) -> Result<Tables, ProcessError> {
        let table = |table: Table| lake.table(stream.kind(table));
        Ok(Tables {
            events: table(Table::Events).await?,
            invalid: table(Table::Invalid).await?,
            dead: table(Table::DeadLetters).await?,
            unique: lake.table(TableKind::UniqueUsersDaily).await?,
            duplicates: table(Table::Duplicates).await?,
            identities: table(Table::Identities).await?,
        })
    }
}
