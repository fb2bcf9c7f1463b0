//! The stream processor (the original Spark job's intent, plus ksqlDB's unique users and
//! Kafka Connect's S3 sinks): consumes the raw and invalid topics in a consumer group,
//! decodes each raw record by its schema id, emits the event plus `metadata` to the latest
//! topic, enriches it (`clickstream-enrich`: user agent, bots, geo, referrer, campaign,
//! privacy, sessions), keeps duplicate ids out of `events` (into `duplicates`), and lands
//! events, duplicates, rejects and dead letters in the Delta lake exactly once.
//!
//! Exactly once: every lake commit carries, as Delta `txn` actions, the next offset of each
//! log partition it covers (app id per group, topic and partition). On start and on every
//! assignment the processor reads those versions back and seeks there; the consumer
//! group's own committed offsets are written for lag tools only. See ARCHITECTURE.md.

mod batch;
#[doc(hidden)]
pub mod bench_api;
mod commit;
mod committer;
mod compaction;
mod compiled;
mod decode;
mod enrichment;
mod error;
mod events_files;
mod exactly_once;
mod fault;
mod flush;
mod health;
mod latest;
mod latest_emit;
pub mod metrics;
mod publish_users;
mod records;
mod roles;
mod segment;
mod segment_state;
mod stream;
mod unique_users;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::watch;

use clickstream_enrich::{EnrichConfig, EnrichError, EnricherData};
use clickstream_event::schemas::{LATEST_EVENT_SCHEMA, latest_event_schema};
use clickstream_event::{LATEST_TOPIC, value_subject};
use clickstream_lake::{Lake, LakeConfig, txn_app_id};
use clickstream_log::{ConsumerEvent, EventLog, GroupConsumer, TopicPartition};
use clickstream_query::QueryEngine;
use clickstream_registry::RegistryClient;
use serde::{Deserialize, Serialize};

pub use compaction::run_compactor;
pub use error::ProcessError;
pub use health::{HealthReport, ProcessorHealth, Verdict};
pub use roles::FieldRoles;
pub use stream::Stream;

use batch::PendingBatch;
use committer::{Committer, Tables};
use decode::SchemaCache;
use enrichment::Enrichment;
use exactly_once::{Feed, Positions, Table};
use unique_users::UniqueUsers;

/// Settings of the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
    /// Consumer group of the processor; also part of the lake's `txn` app ids, so changing
    /// it starts the lake's positions afresh.
    pub group: String,
    /// Most records taken from the log per poll. What one poll read (its records, their
    /// enriched latest-topic records until appended) is live at once: 10,000 caught up
    /// as fast as 20,000 with a peak ~20 MB lower (bench/README.md "What the catch-up
    /// peak is made of").
    pub poll_max_records: usize,
    /// Whether `clickstream up` runs the processor (false: ingest only, e.g. to build a
    /// backlog for `clickstream process --drain`).
    pub enabled: bool,
    /// Port on which `clickstream process` serves `/metrics` and `/health/*` (on the
    /// ingest host address); 0: any free port, logged at start like every other port.
    /// `up` and `ingest` serve them on the ingest port.
    pub metrics_port: u16,
    /// A processor whose loop has not polled the log for this long, or that has held a
    /// batch this long without committing it, is reported stuck (not ready).
    pub stuck_after_ms: u64,
    /// Where the fields the seed columns and the enrichers need are in the raw schema
    /// (`[processor.fields]`); the seed's fields by default.
    pub fields: FieldRoles,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            group: "clickstream-processor".into(),
            poll_max_records: 10_000,
            enabled: true,
            metrics_port: 9464,
            stuck_after_ms: 60_000,
            fields: FieldRoles::default(),
        }
    }
}

/// Counters the processor shares with its compactor and with observers.
#[derive(Debug, Default)]
pub struct ProcessorStats {
    /// Commits to the `events` table since start.
    pub event_commits: AtomicU64,
    /// Rows written to the `events` table since start.
    pub events_written: AtomicU64,
    /// Rows written to `invalid_events` since start.
    pub invalid_written: AtomicU64,
    /// Rows written to `dead_letters` since start.
    pub dead_letters_written: AtomicU64,
    /// Rows written to `duplicates` since start.
    pub duplicates_written: AtomicU64,
    /// Rows written to `identities` since start.
    pub identities_written: AtomicU64,
}

impl ProcessorStats {
    /// The rows-written counter of `table`.
    pub(crate) fn rows_written(&self, table: Table) -> &AtomicU64 {
        match table {
            Table::DeadLetters => &self.dead_letters_written,
            Table::Duplicates => &self.duplicates_written,
            Table::Identities => &self.identities_written,
            Table::Events => &self.events_written,
            Table::Invalid => &self.invalid_written,
        }
    }
}

/// What the processor enriches events with: the `[enrich]` settings and the geo-IP
/// databases they resolve to. Clones share the lookup data once loaded: the processors of
/// a process (one per stream) hold one copy of the parsers and one map of each geo file.
#[derive(Debug, Clone, Default)]
pub struct EnrichSetup {
    /// Which enrichers run.
    pub config: EnrichConfig,
    /// The geo-IP databases to open (geo is off when empty).
    pub geo_databases: Vec<PathBuf>,
    /// The data, once the first processor loaded it.
    pub loaded: LoadedEnricherData,
}

/// The enrichers' data loaded once for every clone of an [`EnrichSetup`].
#[derive(Clone, Default)]
pub struct LoadedEnricherData(Arc<std::sync::Mutex<Option<Arc<EnricherData>>>>);

impl std::fmt::Debug for LoadedEnricherData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadedEnricherData")
    }
}

impl EnrichSetup {
    /// The enrichers' data, loaded by the first caller (blocking: it compiles patterns
    /// and opens files for seconds) and shared with every later one.
    pub fn data(&self) -> Result<Arc<EnricherData>, EnrichError> {
        let mut loaded = self
            .loaded
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(data) = loaded.as_ref() {
            return Ok(data.clone());
        }
        let data = Arc::new(EnricherData::load(&self.config, &self.geo_databases)?);
        *loaded = Some(data.clone());
        Ok(data)
    }
}

/// A running processor; see the crate docs.
pub struct Processor {
    /// The stream it carries.
    stream: Stream,
    config: ProcessorConfig,
    lake_config: LakeConfig,
    log: Arc<dyn EventLog>,
    consumer: Box<dyn GroupConsumer>,
    schemas: SchemaCache,
    /// The committer's positions as of the last batch that landed: what records are
    /// routed by while the next batch commits ([`flush`] says why that is the same).
    positions: HashMap<TopicPartition, Positions>,
    /// Per raw partition: the offsets in its [`Positions::decided_range`] that
    /// `duplicates` holds (decided by an earlier run; rule 4 of [`exactly_once`]).
    replayed_duplicates: HashMap<u32, HashSet<i64>>,
    pending: PendingBatch,
    enrichment: Enrichment,
    query: QueryEngine,
    stats: Arc<ProcessorStats>,
    health: Arc<ProcessorHealth>,
    /// Becomes true when shutdown is requested.
    stop: watch::Receiver<bool>,
    /// Stop once the log has nothing more to give (`clickstream process --drain`).
    drain: bool,
    /// The commit side, while no batch is in flight.
    home: Option<Committer>,
    /// The commit of the last sealed batch, while it runs.
    in_flight: Option<flush::InFlight>,
    /// Where commits run.
    commit_thread: flush::CommitThread,
    /// Where `events`' files go, as the table stood when the commit side was last home.
    events_target: clickstream_lake::FileTarget,
    /// Appends the latest-topic records of the batch being built.
    latest: latest_emit::LatestEmitter,
    /// What those records are written into.
    latest_bytes: latest::LatestBytes,
}

impl Processor {
    /// Connects the parts for `stream` (whose consumer group is `config.group`): registers
    /// the latest schema, loads the tables and the enrichers' data, rebuilds the
    /// unique-users state from the lake (the latest topic and unique users are the
    /// clickstream stream's only) and joins the consumer group. (Duplicate and session
    /// state is rebuilt at each assignment.)
    pub async fn start(
        stream: Stream,
        config: ProcessorConfig,
        lake_config: LakeConfig,
        enrich: &EnrichSetup,
        log: Arc<dyn EventLog>,
        registry: RegistryClient,
        lake: Lake,
    ) -> Result<Processor, ProcessError> {
        if stream.has_derived_outputs() {
            // The latest subject exists for consumers before the first record; each writer
            // schema registers its own derived version when first seen (the bundled one's
            // is this one).
            let latest_schema_id = registry
                .register(&value_subject(LATEST_TOPIC), LATEST_EVENT_SCHEMA)
                .await?;
            tracing::debug!(latest_schema_id, "latest schema registered");
        }
        let latest_schema =
            latest_event_schema().map_err(|e| ProcessError::Internal(e.to_string()))?;
        latest::check_metadata(&latest_schema)?;
        let tables = Tables::load(&lake, stream).await?;
        // Compiling the user-agent and bot patterns and reading the geo databases takes
        // seconds of CPU: off the async workers, which serve ingest meanwhile (two streams'
        // processors starting at once would otherwise hold both workers of a 2-core host).
        let setup = enrich.clone();
        let enrichment = tokio::task::spawn_blocking(move || Enrichment::new(stream, &setup))
            .await
            .map_err(|e| ProcessError::Internal(format!("loading the enrichers: {e}")))??;
        let query = QueryEngine::new(lake.clone())
            .await
            .map_err(|e| ProcessError::State(format!("query engine: {e}")))?;
        let users = if stream.has_derived_outputs() {
            UniqueUsers::load(&tables.events).await?
        } else {
            UniqueUsers::default()
        };
        let consumer = log
            .subscribe(&config.group, &stream.topics().map(String::from))
            .await?;
        let mut schemas = SchemaCache::new(registry, stream, config.fields.clone());
        // Known before the first record, so an outage of the registry later does not stop
        // records written with any version of the raw subject.
        let warmed = schemas.warm(&tables.events).await?;
        tracing::debug!(versions = warmed, "raw schemas loaded");
        let stats = Arc::<ProcessorStats>::default();
        let health = Arc::<ProcessorHealth>::default();
        let mut committer = Committer {
            stream,
            group: config.group.clone(),
            log: log.clone(),
            tables,
            users,
            query: query.clone(),
            committed: HashMap::new(),
            stats: stats.clone(),
            health: health.clone(),
            stop: watch::channel(false).1,
            users_followed: None,
            users_unemitted: std::collections::BTreeSet::new(),
            users_written: None,
            unwritten_backoff: committer::FIRST_BACKOFF,
        };
        committer.reconcile_unique_users().await?;
        let events_target = committer.tables.events.file_target()?;
        Ok(Processor {
            stream,
            config,
            lake_config,
            log: log.clone(),
            consumer,
            schemas,
            positions: HashMap::new(),
            replayed_duplicates: HashMap::new(),
            pending: PendingBatch::new(stream)?,
            enrichment,
            query,
            stats,
            health,
            stop: watch::channel(false).1,
            drain: false,
            home: Some(committer),
            in_flight: None,
            commit_thread: flush::CommitThread::start(stream)?,
            events_target,
            latest: latest_emit::LatestEmitter::start(log.clone()),
            latest_bytes: latest::LatestBytes::default(),
        })
    }

    /// Makes `run` return once every assigned partition is read to its end and committed,
    /// instead of waiting for more (for draining a backlog, and benchmarks).
    pub fn drain(mut self) -> Self {
        self.drain = true;
        self
    }

    /// Counters, shared with whoever wants to watch.
    pub fn stats(&self) -> Arc<ProcessorStats> {
        self.stats.clone()
    }

    /// Reports how the processor is doing into `health` (for readiness), which whoever
    /// started it may already hold.
    pub fn with_health(mut self, health: Arc<ProcessorHealth>) -> Self {
        if let Some(committer) = self.home.as_mut() {
            committer.health = health.clone();
        }
        self.health = health;
        self
    }

    /// Consumes until `shutdown` completes, then commits what it holds and returns.
    /// Transient failures (log, registry or lake unavailable) are retried with backoff;
    /// the stream waits meanwhile. Other failures stop the processor.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ProcessError> {
        let health = self.health.clone();
        let result = self.run_loop(shutdown).await;
        match &result {
            Ok(()) => health.stopped("shut down"),
            Err(e) => {
                tracing::error!(error = %e, "the processor stopped");
                health.stopped(e.to_string())
            }
        }
        result
    }

    async fn run_loop(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ProcessError> {
        self.health.started();
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        if let Some(committer) = self.home.as_mut() {
            committer.stop = stop.clone();
        }
        self.stop = stop;
        let interval = Duration::from_millis(self.lake_config.flush_interval_ms.max(1));
        loop {
            // Takes in a commit that finished meanwhile (its positions, its outcome).
            self.settle_if_done().await?;
            let wait = match self.pending.started() {
                Some(started) => interval.saturating_sub(started.elapsed()),
                None => interval.max(Duration::from_millis(200)),
            };
            let mut stop = self.stop.clone();
            self.health.polled();
            let event = tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                event = self.consumer.poll(self.config.poll_max_records, wait) => event,
            };
            self.health.polled();
            if event.is_ok() && self.in_flight.is_none() {
                // Waits inside one turn (commit, registry, positions) clear their own.
                self.health.waiting_on(None);
            }
            match event {
                Ok(ConsumerEvent::Assigned(partitions)) => {
                    self.flush().await?;
                    self.assign(&partitions).await?;
                }
                Ok(ConsumerEvent::Revoked(partitions)) => {
                    self.flush().await?;
                    for tp in &partitions {
                        self.at_home()?.committed.remove(tp);
                        self.positions.remove(tp);
                    }
                }
                Ok(ConsumerEvent::Records(records)) => {
                    self.process_records(records).await?;
                    self.latest.append(self.pending.take_latest());
                }
                Ok(ConsumerEvent::Idle) => {
                    if self.drain && self.pending.is_empty() && !self.positions.is_empty() {
                        break;
                    }
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "polling the log failed; retrying");
                    self.health.waiting_on(Some(format!("log: {e}")));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e.into()),
            }
            let followed = match self.home.as_mut() {
                Some(committer) => committer.follow_unique_users(false).await,
                None => Ok(()),
            };
            if let Err(e) = followed {
                if !e.is_transient() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "updating unique users failed; retrying later");
            }
            self.health
                .pending_since(self.pending.started().map_or(0, |started| {
                    chrono::Utc::now().timestamp_millis()
                        - i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
                }));
            let due = self.pending.rows() >= self.lake_config.flush_max_rows
                || self.pending.record_bytes() >= self.lake_config.flush_max_bytes
                || self
                    .pending
                    .started()
                    .is_some_and(|s| s.elapsed() >= interval);
            if due {
                self.flush_behind().await?;
            }
        }
        // What cannot be committed now is read again from the log at the next start.
        self.flush().await?;
        // Best effort: the next start reconciles the table with the events anyway.
        if let Err(e) = self.at_home()?.follow_unique_users(true).await {
            tracing::warn!(error = %e, "unique_users_daily not rewritten at shutdown");
        }
        Ok(())
    }

    /// Seeks newly assigned partitions to where the lake says they stand, waiting out
    /// transient lake or log failures (until shutdown).
    async fn assign(&mut self, partitions: &[TopicPartition]) -> Result<(), ProcessError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.assign_once(partitions).await {
                Err(e) if e.is_transient() && !*self.stop.borrow() => {
                    tracing::warn!(error = %e, "reading where to resume (the lake's positions, the log's offsets) failed; retrying");
                    self.health
                        .waiting_on(Some(format!("reading where to resume: {e}")));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                other => {
                    self.health.waiting_on(None);
                    return other;
                }
            }
        }
    }

    async fn assign_once(&mut self, partitions: &[TopicPartition]) -> Result<(), ProcessError> {
        let stream = self.stream;
        let committer = self.at_home()?;
        for table in stream.tables() {
            committer.tables.get_mut(*table).refresh().await?;
        }
        let mut found = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let Some(feed) = stream.feed_of(&tp.topic) else {
                continue;
            };
            let app_id = txn_app_id(&committer.group, &tp.topic, tp.partition);
            let mut positions = Positions::default();
            for table in stream.feed_tables(feed) {
                if let Some(next) = committer.tables.get_mut(table).txn_version(&app_id).await? {
                    positions.set(table, next);
                }
            }
            found.push((tp, feed, positions));
        }
        for (tp, feed, positions) in found {
            let offsets = self.log.offsets(tp).await?;
            let resume = exactly_once::resume_offset(&positions, feed, offsets.start, offsets.end)
                .map_err(|ahead| {
                    ProcessError::State(format!(
                        "{tp}: the lake has consumed up to offset {} but the log ends at {}; \
                         refusing to continue (the log lost data or belongs to another lake)",
                        ahead.lake_next, ahead.log_end
                    ))
                })?;
            if let Some(lake_next) = resume.lost_from {
                tracing::error!(
                    partition = %tp, lake_next, log_start = offsets.start,
                    "log retention deleted records the lake never received; resuming at the log start"
                );
            }
            if feed == Feed::Raw {
                self.load_decided(tp.partition, &positions).await?;
            }
            self.consumer.seek(tp, resume.offset)?;
            tracing::info!(partition = %tp, offset = resume.offset, "resuming from the lake's committed offset");
            self.at_home()?.committed.insert(tp.clone(), positions);
            self.positions.insert(tp.clone(), positions);
        }
        // The partitions resume where `events` ends: the duplicate and session state must
        // be what those rows say, not what this process saw of batches since dropped. Only
        // the raw partitions this processor owns: repeats of an event and a customer's
        // events share a partition (the record key); other partitions are other
        // processors' state.
        let owned = self
            .positions
            .keys()
            .filter(|tp| self.stream.feed_of(&tp.topic) == Some(Feed::Raw))
            .map(|tp| tp.partition)
            .collect();
        self.enrichment.rebuild(&self.query, &owned).await?;
        Ok(())
    }

    /// Reads which offsets of a raw partition's decided range (a crash between the
    /// `duplicates` and `events` commits) `duplicates` holds: a replay decides them so.
    async fn load_decided(
        &mut self,
        partition: u32,
        positions: &Positions,
    ) -> Result<(), ProcessError> {
        let Some(range) = positions.decided_range() else {
            self.replayed_duplicates.remove(&partition);
            return Ok(());
        };
        let offsets = crate::enrichment::committed_duplicate_offsets(
            &self.query,
            self.stream.kind(Table::Duplicates).name(),
            partition,
            range.start,
            range.end,
        )
        .await?;
        tracing::info!(
            partition,
            from = range.start,
            until = range.end,
            duplicates = offsets.len(),
            "replaying records whose duplicate decisions are already committed"
        );
        self.replayed_duplicates.insert(partition, offsets);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_of_a_setup_share_the_data_loaded_once() {
        let setup = EnrichSetup::default();
        let first = setup.clone().data().expect("data");
        assert!(Arc::ptr_eq(&first, &setup.data().expect("data")));
        let other = EnrichSetup::default().data().expect("data");
        assert!(!Arc::ptr_eq(&first, &other));
    }
}
