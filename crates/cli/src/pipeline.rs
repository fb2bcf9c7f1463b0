//! One start-up and one shutdown path for every role a clickstream process can run:
//! `up` runs them all, `ingest`, `process` and `registry` one each. Every part runs as a
//! task of one [`Pipeline`], stopped by one signal; the first part to fail stops the
//! process, whichever role it belongs to, and a fault handled for one role (the registry
//! answering late, the lake down at start) is handled the same for all.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clickstream_edge::{AdminAuth, Server, WriteKeys};
use clickstream_event::schemas::LATEST_EVENT_SCHEMA;
use clickstream_event::{LATEST_TOPIC, SEGMENT_INVALID_TOPIC, SEGMENT_TOPIC, value_subject};
use clickstream_ingest::IngestState;
use clickstream_lake::Lake;
use clickstream_log::EventLog;
use clickstream_process::{ProcessorHealth, ProcessorStats, Stream};
use clickstream_query::QueryEngine;
use clickstream_registry::RegistryClient;
use clickstream_ui::{Ui, UiSources};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::backend::OpenedLog;
use crate::config::Config;
use crate::health::HealthState;
use crate::listeners::{bind, check_exposures, display_url, registry_in_use};
use crate::processors::{nothing_to_drain, run_processor};
use crate::schema_follow::{RawSchema, SEGMENT};
use crate::topics::topic_specs;

/// Which parts a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Serves the Schema Registry.
    pub registry: bool,
    /// Serves `/collect` (and `/api/sql`, `/metrics`, `/health/*` on the same port).
    pub ingest: bool,
    /// Runs the processor and the compactor.
    pub processor: bool,
    /// Serves the web UI.
    pub ui: bool,
}

impl Roles {
    /// `clickstream up`: everything, except a registry when an external one is configured
    /// and the processor or UI when they are switched off.
    pub fn all(config: &Config) -> Roles {
        Roles {
            registry: config.registry.url.is_none(),
            ingest: true,
            processor: config.processor.enabled,
            ui: config.ui.enabled,
        }
    }

    /// `clickstream ingest`: the ingest API (and the UI when enabled), on an external
    /// registry.
    pub fn ingest(config: &Config) -> Roles {
        Roles {
            registry: false,
            ingest: true,
            processor: false,
            ui: config.ui.enabled,
        }
    }

    /// `clickstream process`.
    pub fn processor() -> Roles {
        Roles {
            registry: false,
            ingest: false,
            processor: true,
            ui: false,
        }
    }

    /// `clickstream registry`.
    pub fn registry() -> Roles {
        Roles {
            registry: true,
            ingest: false,
            processor: false,
            ui: false,
        }
    }

    /// Whether anything but the registry runs (and so the log and the lake are needed).
    fn uses_data(&self) -> bool {
        self.ingest || self.processor || self.ui
    }
}

/// A running process. Dropping it without [`Pipeline::shutdown`] aborts its parts.
pub struct Pipeline {
    roles: Roles,
    ingest_addr: Option<SocketAddr>,
    ui_addr: Option<SocketAddr>,
    rest_proxy_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    registry_url: String,
    registry_addr: Option<SocketAddr>,
    /// Whether the listeners speak HTTPS.
    tls: bool,
    log: Option<OpenedLog>,
    lake: Option<Lake>,
    query: Option<QueryEngine>,
    processor_stats: Option<oneshot::Receiver<Arc<ProcessorStats>>>,
    /// Processors (one per stream) that have not finished: a drain ends when none is left.
    processors_running: usize,
    /// The processors stop once the log has nothing more to give (`process --drain`).
    draining: bool,
    stop: watch::Sender<bool>,
    tasks: JoinSet<(Part, anyhow::Result<()>)>,
}

/// A task of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Registry,
    Ingest,
    RestProxy,
    Processor,
    Ui,
    Sampler,
    Metrics,
    SchemaFollower,
}

/// What the parts share while starting.
struct Shared {
    /// Who may use the admin routes of every listener.
    auth: AdminAuth,
    /// Who may send events to ingest.
    write_keys: WriteKeys,
    /// How every listener serves (limits, TLS).
    server: Server,
    stop: watch::Receiver<bool>,
    tasks: JoinSet<(Part, anyhow::Result<()>)>,
}

impl Shared {
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    }

    fn spawn(
        &mut self,
        part: Part,
        work: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.tasks.spawn(async move { (part, work.await) });
    }
}

impl Pipeline {
    /// `clickstream up` on `config`: [`Roles::all`].
    pub async fn start(config: Config) -> anyhow::Result<Pipeline> {
        let roles = Roles::all(&config);
        Self::start_roles(config, roles, false).await
    }

    /// Starts `roles`; returns once every server accepts requests (the processor goes on
    /// starting in the background: loading its state can take a while). With `drain`, the
    /// processor stops once the log is read to its end, and [`Pipeline::failed`] then
    /// reports that as the end.
    pub async fn start_roles(
        config: Config,
        roles: Roles,
        drain: bool,
    ) -> anyhow::Result<Pipeline> {
        // First: a metric handle registered before the recorder exists records nothing.
        crate::telemetry::prometheus();
        let auth = AdminAuth::new(config.auth.admin_token.clone())?;
        let write_keys = WriteKeys::new(&config.auth.write_keys, config.auth.admin_token.as_ref())?;
        check_exposures(&config, roles, &auth)?;
        let server = Server::new(&config.http).context("cannot serve HTTP as [http] says")?;
        let (stop, stopped) = watch::channel(false);
        let mut shared = Shared {
            auth,
            write_keys,
            server,
            stop: stopped,
            tasks: JoinSet::new(),
        };
        let serving = (&shared.auth, &shared.server);
        let in_use = registry_in_use(&config, roles, serving, shared.stopped()).await?;
        if let Some(server) = in_use.server {
            shared.spawn(Part::Registry, server);
        }
        let (registry_url, registry_addr, store) = (in_use.url, in_use.addr, in_use.store);
        let registry = in_use.client;
        // Logs, errors and the UI show the URL without its password.
        let registry_url = registry_url.redacted().to_owned();
        registry
            .wait_ready(Duration::from_secs(30))
            .await
            .with_context(|| format!("schema registry at {registry_url} is not answering"))?;

        let mut pipeline = Pipeline {
            roles,
            ingest_addr: None,
            ui_addr: None,
            rest_proxy_addr: None,
            metrics_addr: None,
            registry_url,
            registry_addr,
            tls: shared.server.tls(),
            log: None,
            lake: None,
            query: None,
            processor_stats: None,
            processors_running: 0,
            draining: drain,
            stop,
            tasks: JoinSet::new(),
        };
        let stuck_after = Duration::from_millis(config.processor.stuck_after_ms);
        let healths: Vec<(Stream, Arc<ProcessorHealth>)> = streams(&config)
            .filter(|_| roles.processor)
            .map(|stream| (stream, Arc::new(ProcessorHealth::new(stuck_after))))
            .collect();
        if roles.uses_data() {
            pipeline
                .start_data_roles(&config, &registry, &healths, drain, &mut shared)
                .await?;
        }
        let (raw_schema, segment_schema) = match roles.ingest {
            true => {
                let every = Duration::from_millis(config.registry.poll_interval_ms);
                let raw_schema = RawSchema::start(&registry, store.clone(), every).await?;
                if let Some(poll) = raw_schema.poller(&registry, shared.stopped()) {
                    shared.spawn(Part::SchemaFollower, poll);
                }
                let segment_schema = match config.segment.enabled {
                    true => {
                        let schema = RawSchema::start_for(SEGMENT, &registry, store, every).await?;
                        if let Some(poll) = schema.poller(&registry, shared.stopped()) {
                            shared.spawn(Part::SchemaFollower, poll);
                        }
                        Some(schema)
                    }
                    false => None,
                };
                (Some(raw_schema), segment_schema)
            }
            false => (None, None),
        };
        let health = Arc::new(HealthState {
            roles,
            log: pipeline
                .log
                .as_ref()
                .map(|o| o.log.clone() as Arc<dyn EventLog>),
            registry: registry.clone(),
            lake: pipeline.lake.clone(),
            processors: healths,
            raw_schema: raw_schema.clone(),
        });
        pipeline
            .serve_http(
                &config,
                &registry,
                (raw_schema, segment_schema),
                health,
                &mut shared,
            )
            .await?;
        pipeline.tasks = shared.tasks;
        Ok(pipeline)
    }

    /// The log, the topics, the lake, the SQL engine and the processor.
    async fn start_data_roles(
        &mut self,
        config: &Config,
        registry: &RegistryClient,
        healths: &[(Stream, Arc<ProcessorHealth>)],
        drain: bool,
        shared: &mut Shared,
    ) -> anyhow::Result<()> {
        let opened = crate::backend::open_log(config).await?;
        if self.roles.ingest {
            // The Segment stream's topics only when it is on: a deployment that keeps it
            // off needs neither them nor the right to create them.
            let specs: Vec<_> = topic_specs(
                config.topics.partitions_csv.as_deref(),
                config.topics.default_partitions,
            )?
            .into_iter()
            .filter(|spec| {
                config.segment.enabled
                    || ![SEGMENT_TOPIC, SEGMENT_INVALID_TOPIC].contains(&spec.name.as_str())
            })
            .collect();
            opened
                .log
                .create_topics(&specs)
                .await
                .context("creating topics")?;
        }
        let lake = crate::lake_cmd::open_lake(config).await?;
        let query = QueryEngine::with_config(lake.clone(), &config.query)
            .await
            .context("starting the SQL engine")?;
        let existing = if drain {
            let topics = opened.log.topics().await.context("listing topics")?;
            topics.into_iter().map(|t| t.name).collect()
        } else {
            Vec::new()
        };
        // One copy of the enrichers' data for both streams' processors.
        let enrich = config.enrich_setup()?;
        for (stream, health) in healths {
            if drain && nothing_to_drain(*stream, &existing, health) {
                continue;
            }
            let (stats_tx, stats_rx) = oneshot::channel();
            if *stream == Stream::Clickstream {
                self.processor_stats = Some(stats_rx);
            }
            let work = run_processor(
                *stream,
                (config.clone(), enrich.clone()),
                opened.log.clone(),
                registry.clone(),
                lake.clone(),
                (health.clone(), stats_tx, drain),
                (shared.stopped(), shared.stopped()),
            );
            shared.spawn(Part::Processor, work);
            self.processors_running += 1;
        }
        self.log = Some(opened);
        self.lake = Some(lake);
        self.query = Some(query);
        Ok(())
    }

    /// The ingest port, the UI port, the processor's metrics port, and the sampler.
    async fn serve_http(
        &mut self,
        config: &Config,
        registry: &RegistryClient,
        (raw_schema, segment_schema): (Option<Arc<RawSchema>>, Option<Arc<RawSchema>>),
        health: Arc<HealthState>,
        shared: &mut Shared,
    ) -> anyhow::Result<()> {
        let (Some(opened), Some(lake), Some(query)) = (&self.log, &self.lake, &self.query) else {
            return Ok(());
        };
        let log = opened.log.clone() as Arc<dyn EventLog>;
        let auth = shared.auth.clone();
        let ops = crate::telemetry::router(health, &auth, config.auth.protect_metrics);
        let sql = auth.protect(clickstream_query::router(query.clone()));
        let limits = ingest_limits(config)?;
        let ingest_here = raw_schema.is_some();
        if let Some(raw_schema) = raw_schema {
            // Registered here too (the processor does at its start), so the latest topic's
            // subject exists for consumers and the UI even while no processor runs.
            let latest_id = registry
                .register(&value_subject(LATEST_TOPIC), LATEST_EVENT_SCHEMA)
                .await
                .context("registering the latest event schema")?;
            let raw_id = raw_schema.status().schema_id;
            tracing::info!(raw_id, latest_id, registry = %self.registry_url, "schemas registered");
            let state = Arc::new(IngestState {
                log: log.clone(),
                validator: raw_schema,
                config: config.ingest.clone(),
                limits: limits.clone(),
                write_keys: shared.write_keys.clone(),
            });
            if config.rest_proxy.enabled {
                self.rest_proxy_addr =
                    Some(spawn_rest_proxy(config, &state, registry, shared).await?);
            }
            let mut extra = sql.clone().merge(ops.clone());
            if let Some(validator) = segment_schema {
                extra = extra.merge(segment_router(config, &state, validator));
            }
            let router = clickstream_ingest::router_with(state, extra);
            let listener = bind(&config.ingest.host, config.ingest.port, "ingest").await?;
            self.ingest_addr = Some(listener.local_addr()?);
            let (stop, server) = (shared.stopped(), shared.server.clone());
            shared.spawn(Part::Ingest, async move {
                server
                    .serve(listener, router, stop)
                    .await
                    .context("ingest server")
            });
        }
        // The sampler sets the lag and lake gauges: it runs whenever /metrics is served.
        let ui = Ui::new(UiSources {
            log,
            registry: registry.clone(),
            lake: lake.clone(),
            query: query.clone(),
            processor_group: Some(config.processor.group.clone()),
            segment_group: config.segment.enabled.then(|| config.segment.group.clone()),
            ingest_url: self
                .ingest_addr
                .map(|addr| display_url(addr, self.tls))
                .unwrap_or_default(),
            registry_url: self.registry_url.clone(),
            enrichment: (self.roles.processor)
                .then(|| config.enrich_setup().ok())
                .flatten()
                .map(|enrich| crate::enrichment_summary::enrichment_summary(&enrich)),
            ingest_limits: ingest_here.then_some(limits),
        });
        if self.roles.ui {
            let router = ui.router(&auth).merge(sql).merge(ops.clone());
            let listener = bind(&config.ui.host, config.ui.port, "web UI").await?;
            self.ui_addr = Some(listener.local_addr()?);
            let (stop, server) = (shared.stopped(), shared.server.clone());
            shared.spawn(Part::Ui, async move {
                server
                    .serve(listener, router, stop)
                    .await
                    .context("web UI server")
            });
        }
        if self.roles.processor && !self.roles.ingest {
            let port = config.processor.metrics_port;
            let listener = bind(&config.ingest.host, port, "processor metrics").await?;
            self.metrics_addr = Some(listener.local_addr()?);
            let (stop, server) = (shared.stopped(), shared.server.clone());
            shared.spawn(Part::Metrics, async move {
                server
                    .serve(listener, ops, stop)
                    .await
                    .context("processor metrics server")
            });
        }
        let stop = shared.stopped();
        shared.spawn(Part::Sampler, async move {
            ui.run_sampler(stop).await;
            Ok(())
        });
        Ok(())
    }

    /// Where the ingest API listens, when this process runs ingest.
    pub fn ingest_addr(&self) -> Option<SocketAddr> {
        self.ingest_addr
    }

    /// Where the web UI listens, when it is enabled.
    pub fn ui_addr(&self) -> Option<SocketAddr> {
        self.ui_addr
    }

    /// Where the REST Proxy listens, when this process runs ingest with it.
    pub fn rest_proxy_addr(&self) -> Option<SocketAddr> {
        self.rest_proxy_addr
    }

    /// Where a processor alone serves `/metrics` and `/health/*`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Base URL of the registry in use (ours or external), without a password.
    pub fn registry_url(&self) -> &str {
        &self.registry_url
    }

    /// Where our registry listens, when we serve one.
    pub fn registry_addr(&self) -> Option<SocketAddr> {
        self.registry_addr
    }

    /// Whether the listeners speak HTTPS (`http.tls_cert` and `http.tls_key` are set).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The log, unless this process is a registry alone.
    pub fn log(&self) -> Option<Arc<dyn EventLog>> {
        self.log
            .as_ref()
            .map(|o| o.log.clone() as Arc<dyn EventLog>)
    }

    /// The lake, unless this process is a registry alone.
    pub fn lake(&self) -> Option<&Lake> {
        self.lake.as_ref()
    }

    /// The SQL engine over the lake, unless this process is a registry alone.
    pub fn query(&self) -> Option<&QueryEngine> {
        self.query.as_ref()
    }

    /// The processor's counters once it has started (for `process --drain`'s summary).
    pub async fn processor_stats(&mut self) -> Option<Arc<ProcessorStats>> {
        self.processor_stats.as_mut()?.await.ok()
    }

    /// Waits until a part stops on its own: `Err` when it failed, `Ok` when every
    /// draining processor (one per stream) is done.
    pub async fn failed(&mut self) -> anyhow::Result<()> {
        if self.draining && self.processors_running == 0 {
            return Ok(());
        }
        loop {
            match self.tasks.join_next().await {
                Some(Ok((Part::Processor, Ok(())))) => {
                    self.processors_running = self.processors_running.saturating_sub(1);
                    if self.processors_running == 0 {
                        return Ok(());
                    }
                }
                Some(Ok((_, Err(e)))) => return Err(e),
                Some(Ok((part, Ok(())))) => {
                    return Err(anyhow::anyhow!("{part:?} stopped unexpectedly"));
                }
                Some(Err(e)) => {
                    return Err(anyhow::anyhow!("a part of the pipeline panicked: {e}"));
                }
                None => return std::future::pending().await,
            }
        }
    }

    /// Stops intake, lets requests in flight finish and the processor commit, then closes
    /// the log. Parts still busy after [`SHUTDOWN_TIMEOUT`] are aborted (what they did not
    /// commit is read again from the log at the next start).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut first_error = None;
        let joined = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
            while let Some(joined) = self.tasks.join_next().await {
                let result = joined.context("task panicked").and_then(|(_, r)| r);
                if let Err(e) = result {
                    tracing::error!(error = %format!("{e:#}"), "part failed during shutdown");
                    first_error.get_or_insert(e);
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!("shutdown took too long; aborting what is still running");
            self.tasks.abort_all();
        }
        if let Some(log) = &self.log {
            log.close().await;
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The streams this configuration carries: the clickstream stream always, the Segment
/// stream when `[segment]` is on.
pub(crate) fn streams(config: &Config) -> impl Iterator<Item = Stream> + use<> {
    let segment = config.segment.enabled;
    Stream::ALL
        .into_iter()
        .filter(move |stream| *stream == Stream::Clickstream || segment)
}

/// Segment's tracking API for the ingest port, under ingest's CORS (the browser library
/// posts from the site's pages), write keys, body caps and rate limits.
fn segment_router(
    config: &Config,
    ingest: &Arc<IngestState>,
    validator: Arc<RawSchema>,
) -> axum::Router {
    let state = Arc::new(clickstream_segment::SegmentState {
        ingest: ingest.clone(),
        validator,
    });
    clickstream_segment::router(state)
        .method_not_allowed_fallback(clickstream_edge::error::method_not_allowed)
        .layer(clickstream_ingest::cors(&config.ingest.cors_origins))
}

/// How long a graceful shutdown may take before the remaining parts are aborted.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves Confluent REST Proxy's produce API beside ingest, sharing its state; returns
/// where it listens.
async fn spawn_rest_proxy(
    config: &Config,
    ingest: &Arc<IngestState>,
    registry: &RegistryClient,
    shared: &mut Shared,
) -> anyhow::Result<SocketAddr> {
    let state = Arc::new(clickstream_restproxy::ProxyState {
        ingest: Arc::clone(ingest),
        registry: registry.clone(),
    });
    let router = clickstream_restproxy::router(state);
    let proxy = &config.rest_proxy;
    let listener = bind(&proxy.host, proxy.port, "REST proxy").await?;
    let addr = listener.local_addr()?;
    let (stop, server) = (shared.stopped(), shared.server.clone());
    shared.spawn(Part::RestProxy, async move {
        server
            .serve(listener, router, stop)
            .await
            .context("REST proxy server")
    });
    Ok(addr)
}

/// The rate limits and load bounds of ingest; a 503 tells clients to come back after
/// `ingest.retry_after_secs`, as a log outage does.
fn ingest_limits(config: &Config) -> anyhow::Result<Arc<clickstream_edge::Limits>> {
    let (pending, body) = (
        config.limits.max_pending_bytes,
        config.ingest.max_body_bytes,
    );
    anyhow::ensure!(
        pending >= body,
        "limits.max_pending_bytes ({pending}) is below ingest.max_body_bytes ({body}): \
         a body of the largest size would be refused forever"
    );
    let retry_after = std::time::Duration::from_secs(config.ingest.retry_after_secs.into());
    let limits = clickstream_edge::Limits::new(&config.limits, retry_after)?;
    Ok(Arc::new(limits))
}
