//! Subcommands over the lake: `process`, `sql`, `lake optimize`, `lake vacuum`.

use std::future::Future;

use std::time::Duration;

use anyhow::Context;
use clickstream_lake::{Lake, TableKind};

use clickstream_process::{Processor, run_compactor};
use clickstream_query::QueryEngine;
use clickstream_registry::RegistryClient;
use clickstream_secret::SecretUrl;

use crate::config::Config;

/// How `sql` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlOutput {
    /// Aligned text table.
    Table,
    /// JSON array of row objects.
    Json,
    /// CSV with a header.
    Csv,
}

/// Opens the configured lake: creates its bucket first when it lives on an S3 endpoint
/// and `lake.s3.create_bucket` is on, then its tables.
pub async fn open_lake(config: &Config) -> anyhow::Result<Lake> {
    let url = config.lake_url()?;
    let options = config.lake.effective_storage_options();
    if config.lake.s3.create_bucket && config.lake.s3.is_configured() {
        clickstream_lake::create_bucket_if_missing(&url, &options)
            .await
            .with_context(|| format!("creating the bucket of the lake at {url}"))?;
    }
    Lake::open(&url, &options)
        .await
        .with_context(|| format!("opening the lake at {url}"))
}

/// `clickstream sql`: runs one read-only query and prints it.
pub async fn sql(config: Config, query: &str, format: SqlOutput) -> anyhow::Result<()> {
    let engine = QueryEngine::new(open_lake(&config).await?).await?;
    let output = engine.sql(query).await?;
    match format {
        SqlOutput::Table => println!("{}", output.to_table_string()),
        SqlOutput::Json => println!("{}", serde_json::to_string(&output.to_json_rows()?)?),
        SqlOutput::Csv => print!("{}", output.to_csv()?),
    }
    Ok(())
}

/// `clickstream process`: the processor alone, until `shutdown`.
pub async fn process(
    config: Config,
    drain: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let opened = crate::backend::open_log(&config).await?;
    let log = opened.log.clone();
    let registry_url =
        config.registry.url.clone().unwrap_or_else(|| {
            SecretUrl::new(format!("http://127.0.0.1:{}", config.registry.port))
        });
    let registry = RegistryClient::new(registry_url.expose())?;
    registry
        .wait_ready(Duration::from_secs(30))
        .await
        .with_context(|| format!("schema registry at {registry_url} is not answering"))?;
    let lake = open_lake(&config).await?;
    if config.processor.metrics_port != 0 {
        crate::telemetry::prometheus();
        let health = std::sync::Arc::new(crate::telemetry::HealthState {
            log: log.clone(),
            registry: registry.clone(),
            lake: lake.clone(),
        });
        let addr = (config.ingest.host.as_str(), config.processor.metrics_port);
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("processor metrics: cannot listen on {}:{}", addr.0, addr.1)
        })?;
        tracing::info!(addr = %listener.local_addr()?, "processor metrics and health");
        let router = crate::telemetry::router(health);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "processor metrics server stopped");
            }
        });
    }
    let mut processor = Processor::start(
        config.processor.clone(),
        config.lake.clone(),
        &config.enrich_setup()?,
        log,
        registry,
        lake.clone(),
    )
    .await?;
    if drain {
        processor = processor.drain();
    }
    let stats = processor.stats();
    let started = std::time::Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let compactor = tokio::spawn(run_compactor(
        lake,
        config.lake.clone(),
        processor.stats(),
        stopped(),
    ));
    let mut run = tokio::spawn(processor.run(stopped()));
    tracing::info!(drain, "processor running; Ctrl-C stops");
    tokio::select! {
        _ = shutdown => {
            let _ = stop_tx.send(true);
            (&mut run).await.context("processor task")??;
        }
        finished = &mut run => {
            finished.context("processor task")??;
            let _ = stop_tx.send(true);
        }
    }
    compactor.await.context("compactor task")?;
    if drain {
        let secs = started.elapsed().as_secs_f64();
        let events = stats
            .events_written
            .load(std::sync::atomic::Ordering::Relaxed);
        let invalid = stats
            .invalid_written
            .load(std::sync::atomic::Ordering::Relaxed);
        let duplicates = stats
            .duplicates_written
            .load(std::sync::atomic::Ordering::Relaxed);
        if duplicates > 0 {
            println!("kept {duplicates} duplicates out of events (counted in the rate below)");
        }
        println!(
            "drained {events} events and {invalid} invalid events in {secs:.2} s: {:.0} events/s",
            (events + invalid + duplicates) as f64 / secs
        );
    }
    opened.close().await;
    Ok(())
}

fn tables(only: Option<&str>) -> anyhow::Result<Vec<TableKind>> {
    match only {
        None => Ok(TableKind::ALL.to_vec()),
        Some(name) => TableKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .map(|k| vec![k])
            .with_context(|| format!("no table called {name}")),
    }
}

/// `clickstream lake optimize`.
pub async fn optimize(config: Config, only: Option<&str>) -> anyhow::Result<()> {
    let lake = open_lake(&config).await?;
    for kind in tables(only)? {
        let mut table = lake.table(kind).await?;
        let summary = table.optimize(config.lake.target_file_bytes).await?;
        println!("{}: {summary:?}", kind.name());
    }
    Ok(())
}

/// `clickstream lake vacuum`.
pub async fn vacuum(config: Config, hours: Option<u64>, dry_run: bool) -> anyhow::Result<()> {
    let lake = open_lake(&config).await?;
    let retention = match hours {
        Some(hours) => Duration::from_secs(hours.saturating_mul(3600)),
        None => config.lake.vacuum_retention(),
    };
    for kind in TableKind::ALL {
        let mut table = lake.table(kind).await?;
        let summary = table.vacuum(retention, dry_run).await?;
        println!("{}: {summary:?}", kind.name());
    }
    Ok(())
}
