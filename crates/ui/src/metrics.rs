//! The metrics the sampler sets, declared once: each one's name, kind, label keys and help
//! text, and the functions that set them. The sampler runs once a second and names
//! consumer groups, topics and partitions, so the gauges are set by name here rather than
//! through kept handles.

use clickstream_lake::TableKind;
use metrics::{describe_gauge, gauge};

use crate::snapshot::{Lag, TableStats};

/// Gauge: acknowledged records not yet in the lake.
pub const PIPELINE_LAG_RECORDS: &str = "clickstream_pipeline_lag_records";
/// Gauge: age in seconds of the oldest acknowledged record not yet in the lake.
pub const PIPELINE_LAG_SECONDS: &str = "clickstream_pipeline_lag_seconds";
/// Gauge: bytes of a lake table's active data files, by [`TABLE`].
pub const LAKE_TABLE_BYTES: &str = "clickstream_lake_table_bytes";
/// Gauge: a lake table's active data files, by [`TABLE`].
pub const LAKE_TABLE_FILES: &str = "clickstream_lake_table_files";
/// Gauge: a lake table's rows (from the file statistics), by [`TABLE`].
pub const LAKE_TABLE_ROWS: &str = "clickstream_lake_table_rows";
/// Gauge: a lake table's latest Delta version, by [`TABLE`].
pub const LAKE_TABLE_VERSION: &str = "clickstream_lake_table_version";
/// Gauge: end offset minus a consumer group's committed offset, by [`GROUP`], [`TOPIC`]
/// and [`PARTITION`].
pub const PROCESS_LAG_RECORDS: &str = "clickstream_process_lag_records";

/// Label key: the lake table's name ([`TableKind::name`]).
pub const TABLE: &str = "table";
/// Label key: a consumer group.
pub const GROUP: &str = "group";
/// Label key: a topic.
pub const TOPIC: &str = "topic";
/// Label key: a partition's number.
pub const PARTITION: &str = "partition";

/// Help texts of the sampler's metrics, shown as `# HELP` lines.
pub fn describe() {
    describe_gauge!(
        PROCESS_LAG_RECORDS,
        "end offset minus the consumer group's committed offset, per partition"
    );
    describe_gauge!(
        PIPELINE_LAG_RECORDS,
        "acknowledged records not yet in the lake"
    );
    describe_gauge!(
        PIPELINE_LAG_SECONDS,
        "age of the oldest acknowledged record not yet in the lake"
    );
    describe_gauge!(
        LAKE_TABLE_BYTES,
        "bytes of the active data files of a lake table"
    );
    describe_gauge!(LAKE_TABLE_FILES, "active data files of a lake table");
    describe_gauge!(LAKE_TABLE_ROWS, "rows of a lake table");
    describe_gauge!(LAKE_TABLE_VERSION, "latest Delta version of a lake table");
}

/// Sets the end-to-end lag gauges.
pub(crate) fn pipeline_lag(lag: &Lag) {
    gauge!(PIPELINE_LAG_RECORDS).set(lag.records as f64);
    gauge!(PIPELINE_LAG_SECONDS).set(lag.seconds);
}

/// Sets the size gauges of the lake table `kind`.
pub(crate) fn lake_table(kind: TableKind, table: &TableStats) {
    let labels = [(TABLE, kind.name())];
    gauge!(LAKE_TABLE_BYTES, &labels).set(table.bytes as f64);
    gauge!(LAKE_TABLE_FILES, &labels).set(table.files as f64);
    gauge!(LAKE_TABLE_ROWS, &labels).set(table.rows as f64);
    gauge!(LAKE_TABLE_VERSION, &labels).set(table.version as f64);
}

/// Sets the lag of `group` on one partition of `topic`.
pub(crate) fn group_lag(group: &str, topic: &str, partition: u32, lag: u64) {
    gauge!(
        PROCESS_LAG_RECORDS,
        GROUP => group.to_owned(),
        TOPIC => topic.to_owned(),
        PARTITION => partition.to_string()
    )
    .set(lag as f64);
}
