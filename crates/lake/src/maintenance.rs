//! Table maintenance: compaction of small files and deletion of unreferenced ones.

use std::num::NonZeroU64;
use std::time::Duration;

use deltalake::operations::vacuum::VacuumMode;

use crate::table::compacted_writer_properties;
use crate::{LakeError, LakeTable};

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptimizeSummary {
    /// Files written (the compacted ones).
    pub files_added: u64,
    /// Small files replaced (still on storage until vacuum deletes them).
    pub files_removed: u64,
    /// Bytes written.
    pub bytes_added: u64,
    /// Bytes of the files replaced.
    pub bytes_removed: u64,
    /// Partitions that were compacted.
    pub partitions_optimized: u64,
    /// Files examined.
    pub files_considered: u64,
    /// Files left alone (already large enough, or alone in their partition).
    pub files_skipped: u64,
    /// Table version after the compaction.
    pub version: i64,
}

/// What a vacuum did (or would do, for a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumSummary {
    /// Number of files deleted (or that would be deleted).
    pub files_deleted: u64,
    /// Their paths.
    pub paths: Vec<String>,
    /// Whether this was a dry run (nothing deleted).
    pub dry_run: bool,
}

impl LakeTable {
    /// Compacts small files into files of about `target_file_bytes`, partition by partition
    /// (bin-packing), in one commit that changes no data. Appends committed concurrently are
    /// not lost: delta-rs checks the commit against them.
    pub async fn optimize(&mut self, target_file_bytes: u64) -> Result<OptimizeSummary, LakeError> {
        let name = self.kind().name();
        let target = NonZeroU64::new(target_file_bytes).unwrap_or(NonZeroU64::MIN);
        let (table, metrics) = self
            .table
            .clone()
            .optimize()
            .with_target_size(target)
            .with_writer_properties(compacted_writer_properties())
            .await
            .map_err(|err| LakeError::op(name, "optimize", err))?;
        self.table = table;
        self.after_foreign_commit();
        let summary = OptimizeSummary {
            files_added: metrics.num_files_added,
            files_removed: metrics.num_files_removed,
            bytes_added: u64::try_from(metrics.files_added.total_size).unwrap_or(0),
            bytes_removed: u64::try_from(metrics.files_removed.total_size).unwrap_or(0),
            partitions_optimized: metrics.partitions_optimized,
            files_considered: u64::try_from(metrics.total_considered_files).unwrap_or(u64::MAX),
            files_skipped: u64::try_from(metrics.total_files_skipped).unwrap_or(u64::MAX),
            version: self.version(),
        };
        tracing::info!(
            table = name,
            files_added = summary.files_added,
            files_removed = summary.files_removed,
            version = summary.version,
            "lake table optimized"
        );
        Ok(summary)
    }

    /// Deletes files no longer referenced by the table (replaced by optimize or overwrite,
    /// or left behind by failed writes) that are older than `retention`.
    ///
    /// The retention is taken as given, even below the table's
    /// `delta.deletedFileRetentionDuration` (7 days): readers of versions older than
    /// `retention`, and writes still in flight, may lose files. Zero is for tests.
    pub async fn vacuum(
        &mut self,
        retention: Duration,
        dry_run: bool,
    ) -> Result<VacuumSummary, LakeError> {
        let name = self.kind().name();
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let (table, metrics) = self
            .table
            .clone()
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .with_mode(VacuumMode::Full)
            .with_dry_run(dry_run)
            .await
            .map_err(|err| LakeError::op(name, "vacuum", err))?;
        self.table = table;
        self.after_foreign_commit();
        let summary = VacuumSummary {
            files_deleted: u64::try_from(metrics.files_deleted.len()).unwrap_or(u64::MAX),
            paths: metrics.files_deleted,
            dry_run,
        };
        tracing::info!(
            table = name,
            files_deleted = summary.files_deleted,
            dry_run,
            "lake table vacuumed"
        );
        Ok(summary)
    }
}
