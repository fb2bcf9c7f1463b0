//! Publishing unique users: the state follows `events` ([`crate::unique_users`]), changed
//! days go to the unique users topic, and `unique_users_daily` is rewritten from the
//! state, tagged with the `events` version it was derived from.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clickstream_event::UNIQUE_USERS_TOPIC;
use clickstream_lake::{AppTxn, LakeError, UniqueUsersBuilder, UniqueUsersRow};
use clickstream_log::OutgoingRecord;
use deltalake::arrow::array::Array;

use crate::ProcessError;
use crate::batch::SealedBatch;
use crate::committer::Committer;

/// How often an idle processor reads other processors' `events` commits, and how often
/// `unique_users_daily` is rewritten at most (one small overwrite per flush would leave
/// two files a second behind for vacuum); the first change is written at once.
pub(crate) const UNIQUE_USERS_EVERY: Duration = Duration::from_secs(2);

/// How many times a rewrite of `unique_users_daily` that lost a race with another writer
/// is tried again on a fresh version before the run loop's next turn.
const OVERWRITE_ATTEMPTS: usize = 5;

impl Committer {
    /// The `txn` app id under which `unique_users_daily` records the `events` version its
    /// counts come from.
    fn users_app_id(&self) -> String {
        format!("{}:unique_users_daily", self.group)
    }

    /// The last step of a batch: the state takes the committed events (directly when this
    /// processor's commit was the next version, else by reading what the commits since
    /// added) and the days that changed are emitted to the unique users topic.
    pub(crate) async fn apply_unique_users(
        &mut self,
        batch: &mut SealedBatch,
    ) -> Result<(), ProcessError> {
        if !self.stream.has_derived_outputs() {
            return Ok(());
        }
        if !batch.users_applied {
            let changed = match batch.events_moved {
                Some((before, after)) => {
                    let events = &self.tables.events;
                    self.users
                        .committed(events, before, after, &batch.new_users)
                        .await?
                }
                // Found landed after an ambiguous failure: read it back from the table.
                None => self.users.catch_up(&self.tables.events).await?,
            };
            batch.changed_days.extend(changed);
            batch.new_users.clear();
            batch.users_applied = true;
        }
        if !batch.changed_days.is_empty() {
            self.emit_unique_users(&batch.changed_days).await?;
            batch.changed_days.clear();
        }
        self.write_unique_users_table(false).await
    }

    /// Every [`UNIQUE_USERS_EVERY`]: reads the `events` commits other processors made
    /// since the state's version (only the files they added), emits the days that changed
    /// and rewrites `unique_users_daily` if the state is newer than what it holds.
    pub(crate) async fn follow_unique_users(&mut self, force: bool) -> Result<(), ProcessError> {
        if !self.stream.has_derived_outputs() {
            return Ok(());
        }
        let due = self
            .users_followed
            .is_none_or(|at| at.elapsed() >= UNIQUE_USERS_EVERY);
        if force || due {
            self.users_followed = Some(Instant::now());
            self.tables.events.refresh().await?;
            let changed = self.users.catch_up(&self.tables.events).await?;
            if !changed.is_empty() || !self.users_unemitted.is_empty() {
                self.emit_unique_users(&changed).await?;
            }
        }
        self.write_unique_users_table(force).await
    }

    /// Emits the counts of `days` to the unique users topic.
    /// While the log's disk is at its reserve the days are kept and emitted with the next
    /// emit that gets through: the lake (where the counts are in any case) comes first.
    async fn emit_unique_users(&mut self, days: &BTreeSet<String>) -> Result<(), ProcessError> {
        let mut days = days.clone();
        days.append(&mut self.users_unemitted);
        let records = days
            .iter()
            .map(|day| {
                let value =
                    serde_json::json!({"TIMESTAMP": day, "UNIQUE_USERS": self.users.count(day)});
                OutgoingRecord {
                    topic: UNIQUE_USERS_TOPIC.into(),
                    partition: None,
                    key: Some(Bytes::copy_from_slice(day.as_bytes())),
                    value: Bytes::from(value.to_string()),
                    headers: Vec::new(),
                    timestamp_ms: None,
                }
            })
            .collect();
        match self.log.append(records).await {
            Ok(_) => Ok(()),
            Err(e @ clickstream_log::LogError::DiskFull { .. }) => {
                tracing::warn!(error = %e, days = days.len(), "unique users not emitted yet: disk at its reserve");
                self.users_unemitted = days;
                Ok(())
            }
            Err(e) => {
                self.users_unemitted = days;
                Err(e.into())
            }
        }
    }

    /// Rewrites `unique_users_daily` from the state when the state holds a later `events`
    /// version than the one the table's counts were derived from. The version travels with
    /// the rows as a `txn` action that must advance, and the overwrite commits only on the
    /// table version it read, so a processor that is behind can never replace newer counts.
    /// Nothing to do (and no I/O) while the state has not moved since the table was known
    /// to hold its version; at most every [`UNIQUE_USERS_EVERY`] unless `force`d.
    async fn write_unique_users_table(&mut self, force: bool) -> Result<(), ProcessError> {
        let derived_from = self.users.version();
        match self.users_written {
            Some((_, known)) if known >= derived_from => return Ok(()),
            Some((at, _)) if !force && at.elapsed() < UNIQUE_USERS_EVERY => return Ok(()),
            _ => {}
        }
        let app_id = self.users_app_id();
        let counts = self.unique_users_rows();
        for attempt in 1..=OVERWRITE_ATTEMPTS {
            self.tables.unique.refresh().await?;
            let recorded = self.tables.unique.txn_version(&app_id).await?;
            if let Some(recorded) = recorded.filter(|v| *v >= derived_from) {
                self.users_written = Some((Instant::now(), recorded));
                return Ok(());
            }
            let txn = AppTxn::new(app_id.clone(), derived_from);
            match self.tables.unique.overwrite(counts.clone(), &[txn]).await {
                Ok(_) => {
                    self.users_written = Some((Instant::now(), derived_from));
                    return Ok(());
                }
                // Another processor wrote from a newer version meanwhile: the next turn
                // reads it.
                Err(LakeError::TxnNotAdvancing { .. }) => return Ok(()),
                Err(e) if e.is_transient() && attempt < OVERWRITE_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "unique_users_daily moved; rewriting again");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The state as rows of `unique_users_daily`.
    fn unique_users_rows(&self) -> deltalake::arrow::array::RecordBatch {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut builder = UniqueUsersBuilder::new();
        for (day, unique_users) in self.users.counts() {
            builder.push(&UniqueUsersRow {
                day: &day,
                unique_users,
                updated_at_ms: now_ms,
            });
        }
        builder.finish()
    }

    /// At start: emits the days whose stored count differs from the state rebuilt from
    /// `events` (a crash between an events commit and the unique-users step) and brings
    /// the table in line.
    pub(crate) async fn reconcile_unique_users(&mut self) -> Result<(), ProcessError> {
        if !self.stream.has_derived_outputs() {
            return Ok(());
        }
        let stored = stored_unique_users(&self.query).await?;
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
            self.emit_unique_users(&changed).await?;
        }
        self.write_unique_users_table(true).await
    }
}

/// What `unique_users_daily` holds, by day.
async fn stored_unique_users(
    query: &clickstream_query::QueryEngine,
) -> Result<BTreeMap<String, i64>, ProcessError> {
    let output = query
        .sql("SELECT day, unique_users FROM unique_users_daily")
        .await
        .map_err(|e| ProcessError::State(format!("reading unique_users_daily: {e}")))?;
    let mut stored = BTreeMap::new();
    for batch in &output.batches {
        let (days, counts) =
            crate::unique_users::day_count_columns(batch.column(0), batch.column(1))?;
        for row in 0..batch.num_rows() {
            if !days.is_null(row) {
                stored.insert(days.value(row).to_string(), counts.value(row));
            }
        }
    }
    Ok(stored)
}
