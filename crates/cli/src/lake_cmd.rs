//! Subcommands over the lake: `sql`, `lake optimize`, `lake vacuum`.

use std::time::Duration;

use anyhow::Context;
use clickstream_lake::{Lake, TableKind};
use clickstream_query::QueryEngine;

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
    // Time and memory bounded as on the server (this process may share the machine with
    // the pipeline); the output is whatever was asked for.
    let limits = config.query.clone().without_result_limits();
    let engine = QueryEngine::with_config(open_lake(&config).await?, &limits).await?;
    let output = engine.sql(query).await?;
    match format {
        SqlOutput::Table => println!("{}", output.to_table_string()),
        SqlOutput::Json => println!("{}", serde_json::to_string(&output.to_json_rows()?)?),
        SqlOutput::Csv => print!("{}", output.to_csv()?),
    }
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
