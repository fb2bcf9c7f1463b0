//! Background compaction: small files are the price of low latency (a commit every
//! `flush_interval_ms`); the compactor rewrites them into large ones once enough commits
//! piled up, and vacuums files no version needs any more.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clickstream_lake::{Lake, LakeConfig, TableKind};

use crate::exactly_once::Table;
use crate::{ProcessError, ProcessorStats, Stream};

/// How often the compactor looks at the commit counters.
const CHECK_EVERY: Duration = Duration::from_secs(10);
/// How often it vacuums.
const VACUUM_EVERY: Duration = Duration::from_secs(3600);

/// Runs until `shutdown`: optimizes `stream`'s tables that take many small commits
/// (events, invalid events, identities) after every `optimize_after_commits` commits of
/// its processor, and vacuums the stream's tables hourly. Failures are logged and retried
/// at the next round: compaction is never worth stopping ingestion for.
pub async fn run_compactor(
    stream: Stream,
    lake: Lake,
    config: LakeConfig,
    stats: Arc<ProcessorStats>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut optimized_at_commit = 0;
    let mut last_vacuum = Instant::now();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        let commits = stats.event_commits.load(Ordering::Relaxed);
        if config.optimize_after_commits > 0
            && commits - optimized_at_commit >= config.optimize_after_commits
        {
            optimized_at_commit = commits;
            let busy = [Table::Events, Table::Invalid, Table::Identities];
            for kind in busy
                .into_iter()
                .filter(|t| stream.tables().contains(t))
                .map(|t| stream.kind(t))
            {
                if let Err(e) = optimize(&lake, kind, config.target_file_bytes).await {
                    tracing::warn!(table = kind.name(), error = %e, "background optimize failed");
                }
            }
        }
        if last_vacuum.elapsed() >= VACUUM_EVERY {
            last_vacuum = Instant::now();
            let retention = config.vacuum_retention();
            let derived = stream
                .has_derived_outputs()
                .then_some(TableKind::UniqueUsersDaily);
            for kind in stream
                .tables()
                .iter()
                .map(|t| stream.kind(*t))
                .chain(derived)
            {
                if let Err(e) = vacuum(&lake, kind, retention).await {
                    tracing::warn!(table = kind.name(), error = %e, "background vacuum failed");
                }
            }
        }
    }
}

async fn optimize(lake: &Lake, kind: TableKind, target: u64) -> Result<(), ProcessError> {
    let started = Instant::now();
    let mut table = lake.table(kind).await?;
    let summary = table.optimize(target).await?;
    tracing::info!(
        table = kind.name(),
        ?summary,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compacted small files"
    );
    Ok(())
}

async fn vacuum(lake: &Lake, kind: TableKind, retention: Duration) -> Result<(), ProcessError> {
    let mut table = lake.table(kind).await?;
    let summary = table.vacuum(retention, false).await?;
    tracing::info!(table = kind.name(), ?summary, "vacuumed");
    Ok(())
}
