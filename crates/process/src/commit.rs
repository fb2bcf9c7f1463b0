//! Committing a batch: the order of the steps is what makes the lake exactly-once.
//!
//! 1. latest-topic records are appended to the log (at-least-once: a crash before step 3
//!    sends them again);
//! 2. dead letters are committed to `dead_letters` with their partitions' next offsets,
//!    then duplicates to `duplicates` likewise;
//! 3. events are committed to `events` with every raw partition's next offset: from here
//!    on, a restart resumes after this batch;
//! 4. invalid events are committed to `invalid_events` with the invalid partitions' next
//!    offsets;
//! 5. unique users: the state takes the batch's customers, changed days are emitted to the
//!    unique users topic and `unique_users_daily` is rewritten.
//!
//! A restart resumes each raw partition at the `events` version and skips, per table, the
//! records below that table's version, so a crash between any two steps neither loses nor
//! duplicates rows.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clickstream_event::{INVALID_TOPIC, RAW_TOPIC, UNIQUE_USERS_TOPIC};
use clickstream_lake::{LakeError, UniqueUsersBuilder, UniqueUsersRow};
use clickstream_log::{LogError, OutgoingRecord, TopicPartition};
use deltalake::arrow::array::Array;

use crate::batch::{SealedBatch, TableStep};
use crate::{ProcessError, Processor};

/// How long a shutting-down processor keeps trying to commit before leaving the batch to
/// be read again at the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Least time between two rebuilds of the unique-users state from `events` when other
/// processors write to it too.
const UNIQUE_USERS_RELOAD_EVERY: Duration = Duration::from_secs(5);

/// Least time between two rewrites of `unique_users_daily`.
const UNIQUE_USERS_TABLE_EVERY: Duration = Duration::from_secs(2);

impl Processor {
    /// Commits everything pending. Transient failures are retried with backoff (the stream
    /// waits); during shutdown, for at most [`SHUTDOWN_GRACE`].
    pub(crate) async fn flush(&mut self) -> Result<(), ProcessError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let group = self.config.group.clone();
        let committed = &self.committed;
        let previous = |topic: &str, partition: u32, table: TableStep| {
            let at = committed.get(&TopicPartition::new(topic, partition))?;
            match table {
                TableStep::DeadLetters => at.dead_letters,
                TableStep::Duplicates => at.duplicates,
                TableStep::Events => at.events,
                TableStep::Invalid => at.invalid,
            }
        };
        let sessions = self
            .enrichment
            .assign_sessions(self.pending.session_inputs());
        let mut sealed = self.pending.seal(
            &group,
            RAW_TOPIC,
            INVALID_TOPIC,
            &previous,
            sessions.as_deref(),
            self.enrichment.detects_duplicates(),
        );
        let mut backoff = Duration::from_millis(100);
        let mut stopping_since: Option<Instant> = None;
        loop {
            let started = Instant::now();
            match self.commit(&mut sealed).await {
                Ok(()) => {
                    metrics::histogram!("clickstream_process_commit_duration_seconds")
                        .record(started.elapsed().as_secs_f64());
                    tracing::debug!(
                        rows = sealed.rows,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "batch committed"
                    );
                    return Ok(());
                }
                Err(ProcessError::Lake(
                    e @ (LakeError::TxnConflict { .. }
                    | LakeError::TxnNotAdvancing { .. }
                    | LakeError::TxnMoved { .. }),
                )) => {
                    // An earlier attempt may have landed after all (an ambiguous failure),
                    // or another processor moved these partitions on: ask the tables.
                    match self.landed_already(&mut sealed).await {
                        Ok(true) => {
                            tracing::info!(error = %e, "a commit step had landed on an earlier attempt");
                            continue;
                        }
                        Ok(false) => {}
                        Err(e) if e.is_transient() => {
                            tracing::warn!(error = %e, "checking a conflicting commit failed; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                    tracing::warn!(error = %e, "partitions moved on under us; re-reading positions from the lake");
                    if sealed.done.events {
                        self.apply_unique_users(&mut sealed).await?;
                    }
                    self.pending = crate::batch::PendingBatch::new();
                    let assigned = self.consumer.assignment();
                    self.assign(&assigned).await?;
                    return Ok(());
                }
                Err(e) if e.is_transient() => {
                    if *self.stop.borrow() {
                        let since = *stopping_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > SHUTDOWN_GRACE {
                            tracing::warn!(error = %e, "shutting down without committing the last batch; it will be read again from the log");
                            return Ok(());
                        }
                    }
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "commit failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The latest topic is derived, at-least-once output: an event whose latest record is
    /// beyond the log's record limit (it is in the lake all the same) is skipped there
    /// rather than stopping the stream.
    async fn append_latest_one_by_one(&mut self, batch: &SealedBatch) -> Result<(), ProcessError> {
        for record in &batch.latest {
            match self.log.append(vec![record.clone()]).await {
                Err(LogError::RecordTooLarge { size, max }) => tracing::warn!(
                    size,
                    max,
                    "latest-topic record too large for the log; not emitted"
                ),
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// After a txn conflict on the first table step not yet done: true, and the step
    /// marked done, when the table already holds exactly this batch's offsets (an earlier
    /// attempt landed after all).
    async fn landed_already(&mut self, batch: &mut SealedBatch) -> Result<bool, ProcessError> {
        let mut found = None;
        for (step, done, table, txns) in [
            (
                TableStep::DeadLetters,
                &mut batch.done.dead_letters,
                &mut self.tables.dead,
                &batch.dead_txns,
            ),
            (
                TableStep::Duplicates,
                &mut batch.done.duplicates,
                &mut self.tables.duplicates,
                &batch.duplicates_txns,
            ),
            (
                TableStep::Events,
                &mut batch.done.events,
                &mut self.tables.events,
                &batch.events_txns,
            ),
            (
                TableStep::Invalid,
                &mut batch.done.invalid,
                &mut self.tables.invalid,
                &batch.invalid_txns,
            ),
        ] {
            if *done || txns.is_empty() {
                continue;
            }
            table.refresh().await?;
            let mut landed = true;
            for txn in txns {
                let recorded = table.txn_version(&txn.app_id).await?;
                landed &= recorded == Some(txn.version);
            }
            *done = landed;
            found = Some((step, landed, txns.clone()));
            break;
        }
        let Some((step, landed, txns)) = found else {
            return Ok(true);
        };
        if landed {
            // Where the table now stands is what the next commit must continue from.
            for txn in &txns {
                match step {
                    TableStep::DeadLetters => {
                        self.set_committed(RAW_TOPIC, txn, |c, v| c.dead_letters = Some(v))
                    }
                    TableStep::Duplicates => {
                        self.set_committed(RAW_TOPIC, txn, |c, v| c.duplicates = Some(v))
                    }
                    TableStep::Events => {
                        self.set_committed(RAW_TOPIC, txn, |c, v| c.events = Some(v))
                    }
                    TableStep::Invalid => {
                        self.set_committed(INVALID_TOPIC, txn, |c, v| c.invalid = Some(v))
                    }
                }
            }
        }
        Ok(landed)
    }

    /// Applies a batch's customers to the unique-users state once its events are in the
    /// lake, and publishes the days that changed.
    async fn apply_unique_users(&mut self, batch: &mut SealedBatch) -> Result<(), ProcessError> {
        let mut changed = BTreeSet::new();
        for (day, customer) in batch.new_users.drain(..) {
            if self.users.add(&day, customer) {
                changed.insert(day);
            }
        }
        batch.changed_days.extend(changed);
        if !batch.changed_days.is_empty() {
            self.publish_unique_users(&batch.changed_days).await?;
            batch.changed_days.clear();
        }
        Ok(())
    }

    async fn commit(&mut self, batch: &mut SealedBatch) -> Result<(), ProcessError> {
        if !batch.done.latest {
            if !batch.latest.is_empty() {
                match self.log.append(batch.latest.clone()).await {
                    Err(LogError::RecordTooLarge { .. }) => {
                        self.append_latest_one_by_one(batch).await?
                    }
                    other => {
                        other?;
                    }
                }
            }
            batch.done.latest = true;
        }
        if !batch.done.dead_letters {
            if let Some(dead) = &batch.dead_letters {
                self.tables
                    .dead
                    .append(vec![dead.clone()], &batch.dead_txns)
                    .await?;
                self.stats
                    .dead_letters_written
                    .fetch_add(dead.num_rows() as u64, RELAXED);
                metrics::counter!("clickstream_process_rows_total", "table" => "dead_letters")
                    .increment(dead.num_rows() as u64);
                for txn in &batch.dead_txns {
                    self.set_committed(RAW_TOPIC, txn, |c, v| c.dead_letters = Some(v));
                }
            }
            batch.done.dead_letters = true;
        }
        if !batch.done.duplicates {
            if let Some(duplicates) = &batch.duplicates {
                self.tables
                    .duplicates
                    .append(vec![duplicates.clone()], &batch.duplicates_txns)
                    .await?;
                self.stats
                    .duplicates_written
                    .fetch_add(duplicates.num_rows() as u64, RELAXED);
                metrics::counter!("clickstream_process_rows_total", "table" => "duplicates")
                    .increment(duplicates.num_rows() as u64);
                for txn in &batch.duplicates_txns {
                    self.set_committed(RAW_TOPIC, txn, |c, v| c.duplicates = Some(v));
                }
            }
            batch.done.duplicates = true;
        }
        if !batch.done.events {
            if !batch.events_txns.is_empty() {
                let rows = batch.events.num_rows();
                let batches = if rows > 0 {
                    vec![batch.events.clone()]
                } else {
                    vec![]
                };
                let before = self.tables.events.version();
                let after = self
                    .tables
                    .events
                    .append(batches, &batch.events_txns)
                    .await?;
                if after != before + 1 {
                    self.foreign_events = true;
                }
                self.stats.event_commits.fetch_add(1, RELAXED);
                self.stats.events_written.fetch_add(rows as u64, RELAXED);
                metrics::counter!("clickstream_process_rows_total", "table" => "events")
                    .increment(rows as u64);
                for txn in &batch.events_txns {
                    self.set_committed(RAW_TOPIC, txn, |c, v| c.events = Some(v));
                }
            }
            batch.done.events = true;
        }
        if !batch.done.invalid {
            if !batch.invalid_txns.is_empty() {
                let rows = batch.invalid.num_rows();
                let batches = if rows > 0 {
                    vec![batch.invalid.clone()]
                } else {
                    vec![]
                };
                self.tables
                    .invalid
                    .append(batches, &batch.invalid_txns)
                    .await?;
                self.stats.invalid_written.fetch_add(rows as u64, RELAXED);
                metrics::counter!("clickstream_process_rows_total", "table" => "invalid_events")
                    .increment(rows as u64);
                for txn in &batch.invalid_txns {
                    self.set_committed(INVALID_TOPIC, txn, |c, v| c.invalid = Some(v));
                }
            }
            batch.done.invalid = true;
        }
        self.apply_unique_users(batch).await?;
        self.commit_group_offsets(batch).await;
        Ok(())
    }

    fn set_committed(
        &mut self,
        topic: &str,
        txn: &clickstream_lake::AppTxn,
        set: impl Fn(&mut crate::Committed, i64),
    ) {
        for (tp, committed) in self.committed.iter_mut() {
            if tp.topic == topic
                && clickstream_lake::txn_app_id(&self.config.group, topic, tp.partition)
                    == txn.app_id
            {
                set(committed, txn.version);
            }
        }
    }

    /// Emits the counts of `days` to the unique users topic and marks the table for a
    /// rewrite.
    async fn publish_unique_users(&mut self, days: &BTreeSet<String>) -> Result<(), ProcessError> {
        self.emit_unique_users(days).await?;
        self.unique_table_dirty = true;
        self.write_unique_users_table(false).await
    }

    /// Emits the counts of `days` to the unique users topic.
    async fn emit_unique_users(&mut self, days: &BTreeSet<String>) -> Result<(), ProcessError> {
        let records = days
            .iter()
            .map(|day| {
                let value =
                    serde_json::json!({"TIMESTAMP": day, "UNIQUE_USERS": self.users.count(day)});
                OutgoingRecord {
                    topic: UNIQUE_USERS_TOPIC.to_string(),
                    partition: None,
                    key: Some(Bytes::copy_from_slice(day.as_bytes())),
                    value: Bytes::from(value.to_string()),
                    headers: Vec::new(),
                    timestamp_ms: None,
                }
            })
            .collect();
        self.log.append(records).await?;
        Ok(())
    }

    /// Rewrites `unique_users_daily` from the state when it changed, at most every
    /// [`UNIQUE_USERS_TABLE_EVERY`] unless `force`d: one small overwrite per flush would
    /// leave two files a second behind for vacuum.
    pub(crate) async fn write_unique_users_table(
        &mut self,
        force: bool,
    ) -> Result<(), ProcessError> {
        if self.foreign_events && self.users_loaded.0.elapsed() >= UNIQUE_USERS_RELOAD_EVERY {
            self.tables.events.refresh().await?;
            let version = self.tables.events.version();
            if version != self.users_loaded.1 {
                self.reload_unique_users(version).await?;
            } else {
                self.users_loaded.0 = Instant::now();
            }
        }
        let due = self
            .unique_table_written
            .is_none_or(|at| at.elapsed() >= UNIQUE_USERS_TABLE_EVERY);
        if !self.unique_table_dirty || !(due || force) {
            return Ok(());
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut builder = UniqueUsersBuilder::new();
        for (day, unique_users) in self.users.counts() {
            builder.push(&UniqueUsersRow {
                day: &day,
                unique_users,
                updated_at_ms: now_ms,
            });
        }
        let counts = builder.finish();
        // Other processors rewrite this table too: an overwrite lands only on the version
        // it read (see `LakeTable::overwrite`), so a lost race is retried on a fresh one.
        let mut attempt = 0;
        loop {
            self.tables.unique.refresh().await?;
            match self.tables.unique.overwrite(counts.clone(), &[]).await {
                Ok(_) => break,
                Err(e) if e.is_transient() && attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "unique_users_daily moved; rewriting again");
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.unique_table_dirty = false;
        self.unique_table_written = Some(Instant::now());
        Ok(())
    }

    /// With several processors each sees only its own batches: rebuilds the state from
    /// `events` (every processor's commits), publishes the days whose count moved and
    /// marks the table for rewriting.
    async fn reload_unique_users(&mut self, version: i64) -> Result<(), ProcessError> {
        let before = self.users.counts();
        self.users = crate::unique_users::UniqueUsers::load(&self.query).await?;
        self.users_loaded = (Instant::now(), version);
        let changed: BTreeSet<String> = self
            .users
            .counts()
            .into_iter()
            .filter(|(day, n)| before.get(day) != Some(n))
            .map(|(day, _)| day)
            .collect();
        if !changed.is_empty() {
            // The table is rewritten from the state whatever becomes of the topic update:
            // marked first, so a failed emit cannot leave it stale until the next change.
            self.unique_table_dirty = true;
            self.emit_unique_users(&changed).await?;
        }
        Ok(())
    }

    /// Brings `unique_users_daily` and the topic in line with the state rebuilt from
    /// `events`, after a crash between an events commit and step 5.
    pub(crate) async fn reconcile_unique_users(&mut self) -> Result<(), ProcessError> {
        let output = self
            .query
            .sql("SELECT day, unique_users FROM unique_users_daily")
            .await
            .map_err(|e| ProcessError::State(format!("reading unique_users_daily: {e}")))?;
        let mut stored = std::collections::BTreeMap::new();
        for batch in &output.batches {
            let (days, counts) =
                crate::unique_users::day_count_columns(batch.column(0), batch.column(1))?;
            for row in 0..batch.num_rows() {
                if !days.is_null(row) {
                    stored.insert(days.value(row).to_string(), counts.value(row));
                }
            }
        }
        let changed: BTreeSet<String> = self
            .users
            .counts()
            .into_iter()
            .filter(|(day, count)| stored.get(day) != Some(count))
            .map(|(day, _)| day)
            .collect();
        if !changed.is_empty() {
            tracing::info!(
                days = changed.len(),
                "unique users behind the events table; catching up"
            );
            self.publish_unique_users(&changed).await?;
        }
        Ok(())
    }

    /// Informational: lets lag tools see the processor's position. Positions that count
    /// are the lake's.
    async fn commit_group_offsets(&mut self, batch: &SealedBatch) {
        let offsets: Vec<(TopicPartition, u64)> = batch
            .raw_next
            .iter()
            .map(|(p, o)| (TopicPartition::new(RAW_TOPIC, *p), *o))
            .chain(
                batch
                    .invalid_next
                    .iter()
                    .map(|(p, o)| (TopicPartition::new(INVALID_TOPIC, *p), *o)),
            )
            .collect();
        if let Err(e) = self.consumer.commit(&offsets).await {
            tracing::debug!(error = %e, "committing group offsets failed (informational only)");
        }
    }
}

const RELAXED: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Relaxed;
