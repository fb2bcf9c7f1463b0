//! Committing a batch, in the order [`crate::exactly_once::STEPS`] gives (why that order
//! makes the lake exactly-once is stated there):
//!
//! 1. latest-topic records are appended to the log (at-least-once);
//! 2. `dead_letters`, `duplicates`, `events` and `invalid_events` are committed, each
//!    with the next offsets of the partitions it covers as `txn` actions;
//! 3. unique users: the state takes the batch's customers, changed days are emitted to
//!    the unique users topic and `unique_users_daily` is rewritten.
//!
//! A step that succeeded is not repeated when a later one fails and the batch is retried;
//! a refused commit is checked against its table ([`crate::exactly_once::conflict_outcome`]).

use clickstream_log::{LogError, TopicPartition};
use deltalake::arrow::datatypes::SchemaRef;

use crate::ProcessError;
use crate::batch::{SealedBatch, TableCommit};
use crate::committer::Committer;
use crate::exactly_once::{Conflict, STEPS, Step, Table, conflict_outcome};
use crate::metrics::Handles;

impl Committer {
    /// The steps of a batch not yet done, in order.
    pub(crate) async fn commit(&mut self, batch: &mut SealedBatch) -> Result<(), ProcessError> {
        for step in STEPS {
            tracing::trace!(?step, "commit step");
            match step {
                Step::Latest => self.emit_latest(batch).await?,
                Step::Commit(table) => {
                    let moved = self.commit_table(batch.table_mut(table)).await?;
                    if table == Table::Events {
                        batch.events_moved = batch.events_moved.or(moved);
                    }
                }
                Step::UniqueUsers => self.apply_unique_users(batch).await?,
            }
        }
        Ok(())
    }

    /// Appends the batch's latest-topic records, once: waits for those appended while it
    /// was built and appends what they could not place.
    async fn emit_latest(&mut self, batch: &mut SealedBatch) -> Result<(), ProcessError> {
        if let Some(unplaced) = batch.latest_unplaced.take() {
            let mut records = unplaced.wait().await?;
            records.append(&mut batch.latest);
            batch.latest = records;
        }
        if batch.latest_done || batch.latest.is_empty() {
            batch.latest_done = true;
            return Ok(());
        }
        match self.log.append(batch.latest.clone()).await {
            Err(LogError::RecordTooLarge { .. } | LogError::RecordsTooLarge(_)) => {
                self.append_latest_one_by_one(batch).await?
            }
            Err(e @ LogError::DiskFull { .. }) => self.append_latest_while_space(batch, &e).await?,
            other => {
                other?;
            }
        }
        batch.latest_done = true;
        // Emitted once for good: a retry of a later step does not need them, and the next
        // batch is being built meanwhile.
        batch.latest = Vec::new();
        Ok(())
    }

    /// The log's disk is at its reserve: the lake comes first. The latest topic (derived,
    /// at-least-once output: every event is in the lake all the same) gets what fits, in
    /// chunks, and the rest of the batch is not emitted there, with a warning and a metric,
    /// rather than stalling the lake behind it.
    async fn append_latest_while_space(
        &mut self,
        batch: &SealedBatch,
        first: &LogError,
    ) -> Result<(), ProcessError> {
        const CHUNK: usize = 256;
        let mut emitted = 0;
        for chunk in batch.latest.chunks(CHUNK) {
            match self.log.append(chunk.to_vec()).await {
                Ok(_) => emitted += chunk.len(),
                Err(LogError::DiskFull { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
        let skipped = batch.latest.len() - emitted;
        if skipped > 0 {
            Handles::get().latest_skipped.increment(skipped as u64);
            tracing::warn!(
                skipped, emitted, reason = %first,
                "disk at its reserve: latest-topic records not emitted so the lake can catch up"
            );
        }
        Ok(())
    }

    /// The latest topic is derived, at-least-once output: an event whose latest record is
    /// beyond the log's record limit, ours or the broker's (it is in the lake all the
    /// same), is skipped there, with a warning and a metric, rather than stopping the
    /// stream.
    async fn append_latest_one_by_one(&mut self, batch: &SealedBatch) -> Result<(), ProcessError> {
        for record in &batch.latest {
            match self.log.append(vec![record.clone()]).await {
                Err(e @ (LogError::RecordTooLarge { .. } | LogError::RecordsTooLarge(_))) => {
                    Handles::get().latest_skipped.increment(1);
                    tracing::warn!(
                        error = %e,
                        bytes = record.value.len(),
                        "latest-topic record too large for the log; not emitted"
                    )
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// Commits one table's rows with its `txn` positions, once. Returns the table's
    /// version before and after the commit, when this call made it.
    async fn commit_table(
        &mut self,
        commit: &mut TableCommit,
    ) -> Result<Option<(i64, i64)>, ProcessError> {
        if commit.done || commit.is_empty() {
            commit.done = true;
            return Ok(None);
        }
        let table = self.tables.get_mut(commit.table);
        let before = table.version();
        let files = match commit.files.as_mut() {
            Some(files) => Some(files.written().await?),
            None => None,
        };
        let schemas: Vec<SchemaRef> = match files {
            Some(files) => vec![files.schema().clone()],
            None => commit.rows.iter().map(|rows| rows.schema()).collect(),
        };
        let evolving = crate::fault::armed() && adds_columns(table, &schemas)?;
        if evolving {
            crate::fault::abort_at(crate::fault::AbortPoint::BeforeEvolvingEvents);
        }
        let after = match files {
            Some(files) => table.append_files(files, &commit.txns).await?,
            None => {
                table
                    .append(commit.rows.iter().cloned().collect(), &commit.txns)
                    .await?
            }
        };
        if evolving {
            crate::fault::abort_at(crate::fault::AbortPoint::AfterEvolvingEvents);
        }
        if commit.table == Table::Events {
            self.stats.event_commits.fetch_add(1, RELAXED);
        }
        let rows = commit.row_count() as u64;
        self.stats
            .rows_written(commit.table)
            .fetch_add(rows, RELAXED);
        Handles::get()
            .rows(self.stream.kind(commit.table))
            .increment(rows);
        commit.done = true;
        // Landed: a retry of a later step never rewrites them.
        commit.rows = None;
        commit.files = None;
        self.set_positions(commit);
        Ok(Some((before, after)))
    }

    /// After a refused commit, for the first table step not yet done: whether the table
    /// already holds exactly its positions (an earlier attempt landed: the step is marked
    /// done) or the partitions moved on.
    pub(crate) async fn landed_already(
        &mut self,
        batch: &mut SealedBatch,
    ) -> Result<Conflict, ProcessError> {
        let Some(commit) = batch.tables.iter_mut().find(|c| !c.done && !c.is_empty()) else {
            return Ok(Conflict::Landed);
        };
        let table = self.tables.get_mut(commit.table);
        table.refresh().await?;
        let mut recorded = Vec::with_capacity(commit.txns.len());
        for txn in &commit.txns {
            recorded.push(table.txn_version(&txn.app_id).await?);
        }
        let proposed: Vec<i64> = commit.txns.iter().map(|txn| txn.version).collect();
        let outcome = conflict_outcome(&recorded, &proposed);
        if outcome == Conflict::Landed {
            commit.done = true;
            // Where the table now stands is what the next commit must continue from.
            self.set_positions(commit);
        }
        Ok(outcome)
    }

    /// Records that a committed (or found landed) table step moved its partitions.
    fn set_positions(&mut self, commit: &TableCommit) {
        let topic = self.stream.topic(commit.table.feed());
        for (partition, txn) in commit.partitions.iter().zip(&commit.txns) {
            if let Some(positions) = self
                .committed
                .get_mut(&TopicPartition::new(topic, *partition))
            {
                positions.set(commit.table, txn.version);
            }
        }
    }
}

/// Whether rows or files of `schemas` bring columns `table` does not have yet.
fn adds_columns(
    table: &clickstream_lake::LakeTable,
    schemas: &[SchemaRef],
) -> Result<bool, ProcessError> {
    let schema = table.arrow_schema()?;
    Ok(schemas.iter().any(|batch| {
        batch
            .fields()
            .iter()
            .any(|f| schema.field_with_name(f.name()).is_err())
    }))
}

const RELAXED: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Relaxed;
