//! Starting and stopping the in-process pipeline: log, registry, ingest, processor, lake,
//! SQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clickstream_event::schemas::{LATEST_EVENT_SCHEMA, RAW_EVENT_SCHEMA, raw_event_schema};
use clickstream_event::{EventValidator, LATEST_TOPIC, RAW_TOPIC, value_subject};
use clickstream_ingest::IngestState;
use clickstream_lake::Lake;
use clickstream_log::EventLog;
use clickstream_process::{Processor, run_compactor};
use clickstream_query::QueryEngine;
use clickstream_registry::{RegistryClient, RegistryServerConfig, SchemaStore};
use clickstream_secret::SecretUrl;
use clickstream_ui::{Ui, UiSources};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::OpenedLog;
use crate::config::Config;
use crate::topics::topic_specs;

/// A running pipeline. Dropping it without [`Pipeline::shutdown`] aborts its servers.
pub struct Pipeline {
    ingest_addr: SocketAddr,
    ui_addr: Option<SocketAddr>,
    registry_url: String,
    registry_addr: Option<SocketAddr>,
    log: OpenedLog,
    lake: Lake,
    query: QueryEngine,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Pipeline {
    /// Opens the log, creates the topics, serves (or connects to) the registry, registers
    /// the schemas and serves the ingest API. Returns once every part accepts requests.
    pub async fn start(config: Config) -> anyhow::Result<Pipeline> {
        crate::telemetry::prometheus();
        let opened = crate::backend::open_log(&config).await?;
        let log = opened.log.clone();
        let specs = topic_specs(
            config.topics.partitions_csv.as_deref(),
            config.topics.default_partitions,
        )?;
        log.create_topics(&specs).await.context("creating topics")?;

        let (stop, stopped) = watch::channel(false);
        let shutdown = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let mut tasks = JoinSet::new();

        let (registry_url, registry_addr) = match &config.registry.url {
            Some(url) => (url.clone(), None),
            None => {
                let dir = config.data_dir.join("registry");
                let store = Arc::new(
                    SchemaStore::open(&dir)
                        .with_context(|| format!("opening the registry in {}", dir.display()))?,
                );
                let listener =
                    bind(&config.registry.host, config.registry.port, "registry").await?;
                let addr = listener.local_addr()?;
                let stop = shutdown();
                let server_config = RegistryServerConfig {
                    port: config.registry.port,
                    max_body_bytes: config.registry.max_body_bytes,
                };
                tasks.spawn(async move {
                    clickstream_registry::serve_with_config(listener, store, &server_config, stop)
                        .await
                        .context("schema registry server")
                });
                let url = format!("http://127.0.0.1:{}", addr.port());
                (SecretUrl::new(url), Some(addr))
            }
        };

        let client = RegistryClient::new(registry_url.expose())?;
        // Logs, errors and the UI show the URL without its password.
        let registry_url = registry_url.redacted().to_owned();
        client
            .wait_ready(Duration::from_secs(30))
            .await
            .with_context(|| format!("schema registry at {registry_url} is not answering"))?;
        let raw_id = client
            .register(&value_subject(RAW_TOPIC), RAW_EVENT_SCHEMA)
            .await
            .context("registering the raw event schema")?;
        let latest_id = client
            .register(&value_subject(LATEST_TOPIC), LATEST_EVENT_SCHEMA)
            .await
            .context("registering the latest event schema")?;
        tracing::info!(raw_id, latest_id, registry = %registry_url, "schemas registered");
        let validator = Arc::new(EventValidator::new(raw_event_schema()?, raw_id)?);

        let lake = crate::lake_cmd::open_lake(&config).await?;
        let query = QueryEngine::new(lake.clone())
            .await
            .context("starting the SQL engine")?;
        let enrich = config.enrich_setup()?;
        let enrichment = config
            .processor
            .enabled
            .then(|| crate::enrichment_summary::enrichment_summary(&enrich));
        if config.processor.enabled {
            // Started in its own task: rebuilding state from the lake can take a while on a
            // large lake, and ingest should not wait for it.
            let (processor_config, lake_config) = (config.processor.clone(), config.lake.clone());
            let (log, client, lake) = (
                log.clone() as Arc<dyn EventLog>,
                client.clone(),
                lake.clone(),
            );
            let (stop_processor, stop_compactor) = (shutdown(), shutdown());
            tasks.spawn(async move {
                let processor = Processor::start(
                    processor_config,
                    lake_config.clone(),
                    &enrich,
                    log,
                    client,
                    lake.clone(),
                )
                .await
                .context("starting the processor")?;
                tracing::info!(lake = %lake.root(), "processor started");
                let stats = processor.stats();
                let compactor =
                    tokio::spawn(run_compactor(lake, lake_config, stats, stop_compactor));
                let result = processor.run(stop_processor).await.context("processor");
                let _ = compactor.await;
                result
            });
        }

        let listener = bind(&config.ingest.host, config.ingest.port, "ingest").await?;
        let ingest_addr = listener.local_addr()?;
        let state = Arc::new(IngestState {
            log: log.clone(),
            validator,
            config: config.ingest.clone(),
        });
        let health = Arc::new(crate::telemetry::HealthState {
            log: log.clone(),
            registry: client.clone(),
            lake: lake.clone(),
        });
        let extra = clickstream_query::router(query.clone())
            .merge(crate::telemetry::router(health.clone()));
        let router = clickstream_ingest::router_with(state, extra);
        let stop_ingest = shutdown();
        tasks.spawn(async move {
            clickstream_ingest::serve(listener, router, stop_ingest)
                .await
                .context("ingest server")
        });

        let ui_addr = if config.ui.enabled {
            let listener = bind(&config.ui.host, config.ui.port, "web UI").await?;
            let ui_addr = listener.local_addr()?;
            let ui = Ui::new(UiSources {
                log: log.clone() as Arc<dyn EventLog>,
                registry: client.clone(),
                lake: lake.clone(),
                query: query.clone(),
                processor_group: Some(config.processor.group.clone()),
                ingest_url: display_url(ingest_addr),
                registry_url: registry_url.clone(),
                enrichment,
            });
            let router = ui
                .router()
                .merge(clickstream_query::router(query.clone()))
                .merge(crate::telemetry::router(health));
            let (stop_ui, stop_sampler) = (shutdown(), shutdown());
            tasks.spawn(async move {
                clickstream_ingest::serve(listener, router, stop_ui)
                    .await
                    .context("web UI server")
            });
            tasks.spawn(async move {
                ui.run_sampler(stop_sampler).await;
                Ok(())
            });
            Some(ui_addr)
        } else {
            None
        };

        Ok(Pipeline {
            ingest_addr,
            ui_addr,
            registry_url,
            registry_addr,
            log: opened,
            lake,
            query,
            stop,
            tasks,
        })
    }

    /// Where the ingest API listens.
    pub fn ingest_addr(&self) -> SocketAddr {
        self.ingest_addr
    }

    /// Where the web UI listens, when it is enabled.
    pub fn ui_addr(&self) -> Option<SocketAddr> {
        self.ui_addr
    }

    /// Base URL of the registry in use (ours or external).
    pub fn registry_url(&self) -> &str {
        &self.registry_url
    }

    /// Where our registry listens, when we serve one.
    pub fn registry_addr(&self) -> Option<SocketAddr> {
        self.registry_addr
    }

    /// The log, for inspection.
    pub fn log(&self) -> Arc<dyn EventLog> {
        self.log.log.clone()
    }

    /// The lake.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The SQL engine over the lake.
    pub fn query(&self) -> &QueryEngine {
        &self.query
    }

    /// Waits until a server stops on its own (an error): the pipeline cannot go on.
    pub async fn failed(&mut self) -> anyhow::Error {
        match self.tasks.join_next().await {
            Some(Ok(Err(e))) => e,
            Some(Ok(Ok(()))) => anyhow::anyhow!("a server stopped unexpectedly"),
            Some(Err(e)) => anyhow::anyhow!("a server task panicked: {e}"),
            None => std::future::pending().await,
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
                let result = joined.context("task panicked").and_then(|r| r);
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
        self.log.close().await;
        first_error.map_or(Ok(()), Err)
    }
}

/// How long a graceful shutdown may take before the remaining parts are aborted.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// `http://host:port`, with `localhost` for an any-address bind (what a person can open).
pub fn display_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

async fn bind(host: &str, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("{what}: cannot listen on {host}:{port}"))
}
