//! Ingest follows the registry: the raw subject's latest version is the schema events are
//! validated with, at start and while running, without a restart.
//!
//! - **At start** ([`ensure_raw_subject`]) the bundled schema is registered only when the
//!   raw subject has no version; otherwise its latest version is used as it is. Two
//!   processes starting at once both register the same text, and so get the same id.
//! - **Registry in this process**: every request compares the store's generation (one
//!   atomic load) with the one the validator was built at, and when it moved rebuilds the
//!   validator from the store before validating. The store moves its generation before the
//!   registry answers, so a version registered here applies from the very next request.
//! - **Registry elsewhere** (`registry.url`, or our registry in another process): a task
//!   polls the subject's latest version every `registry.poll_interval_ms` and swaps the
//!   validator when the id changes.
//!
//! A latest version that cannot be used (not Avro, not a record) keeps the
//! validator in force; the problem is logged once and shown by readiness until a usable
//! version is the latest again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use clickstream_event::schemas::RAW_EVENT_SCHEMA;
use clickstream_event::{
    EventError, EventValidator, RAW_TOPIC, ValidatorCell, ValidatorSource, value_subject,
};
use clickstream_registry::{RegisteredSchema, RegistryClient, SchemaStore, VersionSpec};
use serde::Serialize;

/// Which stream's subject is followed.
#[derive(Debug, Clone, Copy)]
pub struct Followed {
    /// The stream's topic; its subject is `<topic>-value`.
    pub topic: &'static str,
    /// The bundled first version, registered when the subject has none.
    pub bundled: &'static str,
    /// The stream's name in logs ("raw", "segment").
    pub stream: &'static str,
}

/// The raw stream: `/collect` and the REST Proxy validate against its subject.
pub const RAW: Followed = Followed {
    topic: RAW_TOPIC,
    bundled: RAW_EVENT_SCHEMA,
    stream: "raw",
};

/// The Segment stream: Segment's tracking API validates against its subject.
pub const SEGMENT: Followed = Followed {
    topic: clickstream_event::SEGMENT_TOPIC,
    bundled: clickstream_segment::SEGMENT_SCHEMA,
    stream: "segment",
};

/// The schema a stream's ingest validates with: its subject's latest usable version.
pub struct RawSchema {
    stream: &'static str,
    subject: String,
    cell: ValidatorCell,
    state: Mutex<FollowState>,
    /// Set when the registry runs in this process.
    local: Option<LocalStore>,
    /// How often a registry in another process is asked (zero: never).
    poll_interval: Duration,
    /// How new versions are noticed, for readiness.
    following: String,
}

/// The registry's store, when it is in this process.
struct LocalStore {
    store: Arc<SchemaStore>,
    /// The store's generation the validator in force was checked against.
    seen: AtomicU64,
    /// One rebuild at a time; the others wait and then find it done.
    refreshing: Mutex<()>,
}

/// What following found, beside the validator itself.
#[derive(Debug, Default)]
struct FollowState {
    /// Version of the subject the validator in force comes from.
    version: u32,
    /// Why the latest version is not the one in force, while that is so.
    problem: Option<String>,
    /// Whether the last poll could not reach the registry (logged once per outage).
    unreachable: bool,
}

/// Which raw schema ingest validates with, as readiness shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawSchemaStatus {
    /// The raw subject.
    pub subject: String,
    /// Registry id of the schema in force (the id in every record's wire header).
    pub schema_id: u32,
    /// Version of the subject it is.
    pub version: u32,
    /// How ingest learns of new versions.
    pub following: String,
    /// Why the subject's latest version is not in force, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The latest version of the raw subject, registering the bundled schema first when the
/// subject has no version (only then: an existing subject is the contract).
pub async fn ensure_raw_subject(registry: &RegistryClient) -> anyhow::Result<RegisteredSchema> {
    ensure_subject(registry, RAW).await
}

/// The latest version of `followed`'s subject, registering its bundled schema first when
/// the subject has no version.
pub async fn ensure_subject(
    registry: &RegistryClient,
    followed: Followed,
) -> anyhow::Result<RegisteredSchema> {
    let subject = value_subject(followed.topic);
    match registry.latest(&subject).await {
        Ok(latest) => return Ok(latest),
        // 40401: no such subject; 40402: every version deleted (some registries).
        Err(e) if matches!(e.remote_error_code(), Some(40401 | 40402)) => {}
        Err(e) => {
            return Err(e).with_context(|| format!("reading the latest version of {subject}"));
        }
    }
    let id = registry
        .register(&subject, followed.bundled)
        .await
        .with_context(|| format!("registering the bundled {} schema", followed.stream))?;
    tracing::info!(%subject, id, stream = followed.stream, "the subject had no version: bundled schema registered");
    registry
        .latest(&subject)
        .await
        .with_context(|| format!("reading the latest version of {subject}"))
}

impl RawSchema {
    /// The raw schema in force at start ([`ensure_raw_subject`]), followed from `store`
    /// when the registry runs in this process, else by [`RawSchema::poll`]. Fails when the
    /// latest version cannot be used: the registry says what events look like, and an
    /// older version is not silently preferred.
    pub async fn start(
        registry: &RegistryClient,
        store: Option<Arc<SchemaStore>>,
        poll_interval: Duration,
    ) -> anyhow::Result<Arc<RawSchema>> {
        Self::start_for(RAW, registry, store, poll_interval).await
    }

    /// Like [`RawSchema::start`], for `followed`'s subject.
    pub async fn start_for(
        followed: Followed,
        registry: &RegistryClient,
        store: Option<Arc<SchemaStore>>,
        poll_interval: Duration,
    ) -> anyhow::Result<Arc<RawSchema>> {
        // Read before the latest version: a change made in between is then seen as one.
        let generation = store.as_ref().map(|s| s.generation());
        let latest = ensure_subject(registry, followed).await?;
        let unusable = || {
            format!(
                "version {} of {} (schema id {}) is the {} schema in force and cannot be \
                 used; register a usable version or delete this one",
                latest.version, latest.subject, latest.id, followed.stream
            )
        };
        let schema = registry
            .schema_by_id(latest.id)
            .await
            .with_context(unusable)?;
        let validator =
            EventValidator::for_events((*schema).clone(), latest.id).with_context(unusable)?;
        let following = match (&store, poll_interval.is_zero()) {
            (Some(_), _) => "every request checks the registry of this process".to_owned(),
            (None, false) => format!(
                "polling the registry every {} ms",
                poll_interval.as_millis()
            ),
            (None, true) => "not following (registry.poll_interval_ms = 0)".to_owned(),
        };
        tracing::info!(
            subject = %latest.subject,
            schema_id = latest.id,
            version = latest.version,
            %following,
            stream = followed.stream,
            "validating events with the subject's latest version"
        );
        let local = store.zip(generation).map(|(store, generation)| LocalStore {
            store,
            seen: AtomicU64::new(generation),
            refreshing: Mutex::new(()),
        });
        Ok(Arc::new(RawSchema {
            stream: followed.stream,
            subject: latest.subject,
            cell: ValidatorCell::new(validator),
            state: Mutex::new(FollowState {
                version: latest.version,
                ..FollowState::default()
            }),
            local,
            poll_interval,
            following,
        }))
    }

    /// Whether versions are learnt by polling (the registry is not in this process).
    pub fn polls(&self) -> bool {
        self.local.is_none()
    }

    /// The task that keeps the schema current by polling `registry` until `stop`, when
    /// one is needed (the registry is elsewhere and the interval is not zero).
    pub fn poller(
        self: &Arc<Self>,
        registry: &RegistryClient,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Option<impl Future<Output = anyhow::Result<()>> + Send + 'static> {
        (self.polls() && !self.poll_interval.is_zero()).then(|| {
            let poll = Arc::clone(self).poll(registry.clone(), stop);
            async move {
                poll.await;
                Ok(())
            }
        })
    }

    /// Which schema is in force and whether following works.
    pub fn status(&self) -> RawSchemaStatus {
        // What the next request would use: a version registered in our own store since
        // the last request is put in force first.
        if let Some(local) = &self.local {
            self.refresh_from_store(local);
        }
        // Under the state lock, which a switch holds while it replaces the validator, so
        // the id and the version belong together.
        let state = self.lock_state();
        let schema_id = self.cell.schema_id();
        RawSchemaStatus {
            subject: self.subject.clone(),
            schema_id,
            version: state.version,
            following: self.following.clone(),
            problem: state.problem.clone(),
        }
    }

    /// Asks `registry` for the subject's latest version every `registry.poll_interval_ms`
    /// and puts it in force when its id changes, until `stop`. (The interval must not be
    /// zero.)
    pub async fn poll(self: Arc<Self>, registry: RegistryClient, stop: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval(self.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; the version was just read at start.
        ticks.tick().await;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticks.tick() => {}
            }
            tokio::select! {
                () = &mut stop => return,
                () = self.poll_once(&registry) => {}
            }
        }
    }

    /// One look at the registry's latest version.
    pub async fn poll_once(&self, registry: &RegistryClient) {
        let latest = match registry.latest(&self.subject).await {
            Ok(latest) => latest,
            Err(e) if e.is_transient() => return self.unreachable(&e),
            Err(e) => {
                self.reachable();
                return self.refuse(format!(
                    "cannot read the latest version of {}: {e}",
                    self.subject
                ));
            }
        };
        self.reachable();
        if latest.id == self.cell.schema_id() {
            return self.keep(latest.version);
        }
        match registry.schema_by_id(latest.id).await {
            Ok(schema) => self.switch(
                &latest,
                EventValidator::for_events((*schema).clone(), latest.id),
            ),
            Err(e) if e.is_transient() => self.unreachable(&e),
            Err(e) => self.refuse(unusable(&latest, &e)),
        }
    }

    /// Rebuilds from the store of this process when it changed since the last look.
    fn refresh_from_store(&self, local: &LocalStore) {
        if local.seen.load(Ordering::Acquire) == local.store.generation() {
            return;
        }
        let _one = local
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Read before the state: a change committed after this is seen by a later request.
        let generation = local.store.generation();
        if local.seen.load(Ordering::Acquire) == generation {
            return;
        }
        match local
            .store
            .version(&self.subject, VersionSpec::Latest, false)
        {
            Ok(latest) if latest.id == self.cell.schema_id() => self.keep(latest.version),
            Ok(latest) => match local.store.schema(latest.id) {
                Ok(schema) => self.switch(
                    &latest,
                    EventValidator::for_events((*schema).clone(), latest.id),
                ),
                Err(e) => self.refuse(unusable(&latest, &e)),
            },
            Err(e) => self.refuse(format!(
                "cannot read the latest version of {}: {e}",
                self.subject
            )),
        }
        local.seen.store(generation, Ordering::Release);
    }

    /// The latest version is the one in force.
    fn keep(&self, version: u32) {
        let mut state = self.lock_state();
        state.version = version;
        if state.problem.take().is_some() {
            tracing::info!(
                subject = %self.subject,
                schema_id = self.cell.schema_id(),
                version,
                stream = self.stream,
                "the subject's latest version is the one in force again"
            );
        }
    }

    /// Puts a new latest version in force, or keeps the old one when it cannot be used.
    fn switch(&self, latest: &RegisteredSchema, built: Result<EventValidator, EventError>) {
        let validator = match built {
            Ok(validator) => validator,
            Err(e) => return self.refuse(unusable(latest, &e)),
        };
        let mut state = self.lock_state();
        let previous = self.cell.replace(validator);
        state.version = latest.version;
        state.problem = None;
        tracing::info!(
            subject = %self.subject,
            schema_id = latest.id,
            version = latest.version,
            previous_schema_id = previous.schema_id(),
            stream = self.stream,
            "validating events with a new version of the subject's schema"
        );
    }

    /// The latest version cannot be used: the one in force stays.
    fn refuse(&self, problem: String) {
        let mut state = self.lock_state();
        if state.problem.as_deref() != Some(problem.as_str()) {
            tracing::warn!(
                subject = %self.subject,
                schema_id = self.cell.schema_id(),
                %problem,
                stream = self.stream,
                "the subject's latest version cannot be used; keeping the schema in force"
            );
        }
        state.problem = Some(problem);
    }

    fn unreachable(&self, error: &clickstream_registry::RegistryError) {
        let mut state = self.lock_state();
        if !state.unreachable {
            tracing::warn!(
                subject = %self.subject,
                schema_id = self.cell.schema_id(),
                %error,
                stream = self.stream,
                "cannot ask the registry for new versions of the subject; keeping the one in force"
            );
        }
        state.unreachable = true;
    }

    fn reachable(&self) {
        let mut state = self.lock_state();
        if state.unreachable {
            tracing::info!(subject = %self.subject, "the registry answers again");
        }
        state.unreachable = false;
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, FollowState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ValidatorSource for RawSchema {
    fn current(&self) -> Arc<EventValidator> {
        if let Some(local) = &self.local {
            self.refresh_from_store(local);
        }
        self.cell.current()
    }
}

fn unusable(latest: &RegisteredSchema, error: &dyn std::fmt::Display) -> String {
    format!(
        "version {} of {} (schema id {}) cannot be used: {error}",
        latest.version, latest.subject, latest.id
    )
}

#[cfg(test)]
mod tests;
