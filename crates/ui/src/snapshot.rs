//! What the sampler publishes: cumulative counts, rates, lag, component health and table
//! sizes, as the overview and lake pages receive them.

use std::collections::VecDeque;

use serde::Serialize;

/// Cumulative counts at one instant; rates are differences of consecutive points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Point {
    /// When, in milliseconds since the epoch.
    pub t_ms: i64,
    /// Valid events acknowledged (end offsets of the raw topic).
    pub valid: u64,
    /// Invalid events acknowledged (end offsets of the invalid topic).
    pub invalid: u64,
    /// Rows in `dead_letters`.
    pub dead_letters: u64,
    /// Rows in `events`.
    pub lake_events: u64,
}

/// One per-second rate of the overview chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Rate {
    /// End of the interval, milliseconds since the epoch.
    pub t_ms: i64,
    /// Valid events acknowledged per second.
    pub valid: f64,
    /// Invalid events acknowledged per second.
    pub invalid: f64,
    /// Dead letters landed per second.
    pub dead_letters: f64,
    /// Events landed in the lake per second.
    pub lake_events: f64,
}

/// Rates between consecutive points.
pub(crate) fn rates(points: &VecDeque<Point>) -> Vec<Rate> {
    let pairs = points.iter().zip(points.iter().skip(1));
    pairs
        .map(|(a, b)| {
            let seconds = ((b.t_ms - a.t_ms) as f64 / 1000.0).max(0.001);
            let per_second = |x: u64, y: u64| y.saturating_sub(x) as f64 / seconds;
            Rate {
                t_ms: b.t_ms,
                valid: per_second(a.valid, b.valid),
                invalid: per_second(a.invalid, b.invalid),
                dead_letters: per_second(a.dead_letters, b.dead_letters),
                lake_events: per_second(a.lake_events, b.lake_events),
            }
        })
        .collect()
}

/// A part of the pipeline and how it is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Component {
    /// `log`, `registry`, `lake`, `processor`.
    pub name: &'static str,
    /// `ok`, `warning`, `error` or `off`.
    pub status: &'static str,
    /// What was seen.
    pub detail: String,
}

/// How far the lake is behind the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Lag {
    /// Acknowledged records not yet in the lake.
    pub records: u64,
    /// Age of the oldest acknowledged record not yet in the lake (0 when caught up).
    pub seconds: f64,
    /// Log timestamp of the newest acknowledged record.
    pub newest_acknowledged_ms: Option<i64>,
    /// Log timestamp of the newest record the lake has.
    pub newest_in_lake_ms: Option<i64>,
    /// Per source partition.
    pub partitions: Vec<PartitionLag>,
}

/// One source partition against the table it feeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// Next offset to be written (acknowledged records end here).
    pub end: u64,
    /// Next offset the lake will take (from the table's `txn` action).
    pub in_lake: u64,
    /// `end - in_lake`.
    pub lag: u64,
}

/// A table's size and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TableStats {
    /// Table name.
    pub name: &'static str,
    /// Loaded Delta version.
    pub version: i64,
    /// Active data files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Their rows (from the file statistics).
    pub rows: u64,
    /// Distinct partitions.
    pub partitions: u64,
    /// Newest file's modification time.
    pub last_write_ms: Option<i64>,
    /// The newest `OPTIMIZE` commit seen, if any.
    pub last_compaction: Option<Compaction>,
}

/// A compaction commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Compaction {
    /// Version it created.
    pub version: i64,
    /// When.
    pub timestamp_ms: Option<i64>,
    /// Files it removed (the small ones).
    pub files_removed: usize,
    /// Files it added (the large ones).
    pub files_added: usize,
}

/// Totals since the log and the lake began.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Totals {
    /// Valid events acknowledged.
    pub valid_acknowledged: u64,
    /// Invalid events acknowledged.
    pub invalid_acknowledged: u64,
    /// Rows in `events`.
    pub events_in_lake: u64,
    /// Rows in `invalid_events`.
    pub invalid_in_lake: u64,
    /// Rows in `duplicates`: events whose id was already in `events`.
    pub duplicates_in_lake: u64,
    /// Rows in `dead_letters`.
    pub dead_letters: u64,
    /// Ingest requests refused by a rate limit (429, or 413 for a batch over a bucket)
    /// since ingest started; `None` when ingest runs in another process.
    pub throttled_requests: Option<u64>,
    /// Ingest requests shed (503) for too much in flight; `None` as above.
    pub shed_requests: Option<u64>,
    /// Segment calls acknowledged (the Segment topic's records).
    pub segment_acknowledged: u64,
    /// Segment calls refused and kept (the Segment invalid topic's records).
    pub segment_invalid_acknowledged: u64,
    /// Rows in `segment_events`.
    pub segment_in_lake: u64,
    /// Rows in `segment_duplicates`: retries of calls already landed.
    pub segment_duplicates_in_lake: u64,
    /// Rows in `identities`.
    pub identities: u64,
}

/// The latest sample, as the overview serves it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Snapshot {
    /// When it was taken.
    pub taken_ms: i64,
    /// Totals.
    pub totals: Totals,
    /// End-to-end lag.
    pub lag: Lag,
    /// Health of each part.
    pub components: Vec<Component>,
    /// The lake's tables.
    pub tables: Vec<TableStats>,
}
