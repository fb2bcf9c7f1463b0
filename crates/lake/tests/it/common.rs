//! Helpers shared by the lake's integration tests.

use std::path::Path;

use clickstream_lake::{EventRow, EventsBuilder, Lake, LakeTable, RecordBatch};
use clickstream_secret::Settings;
use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::Int64Type;
use deltalake::datafusion::prelude::SessionContext;

/// A fresh lake in a temporary directory (kept alive by the returned guard).
pub async fn temp_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::open(&root_of(dir.path()), &Settings::new())
        .await
        .expect("open lake");
    (dir, lake)
}

/// The `file://` root URL of a directory.
pub fn root_of(path: &Path) -> String {
    url::Url::from_directory_path(path)
        .expect("absolute path")
        .to_string()
}

/// A batch of events with ids `ids`, all at `timestamp`.
pub fn events(ids: std::ops::Range<i64>, timestamp: &str) -> RecordBatch {
    let mut builder = EventsBuilder::new();
    for id in ids {
        builder.push(&EventRow {
            id,
            event_type: "page_view",
            package_id: Some("pkg"),
            user_agent: "Mozilla/5.0",
            ip: "10.0.0.1",
            customer_id: Some(id % 7),
            timestamp,
            page: Some("/"),
            query: None,
            product: None,
            referrer: None,
            position: None,
            correlation_id: "corr",
            source: Some("web"),
            schema_id: 1,
            log_timestamp_ms: 1_653_457_293_000,
            source_partition: 0,
            source_offset: id,
            ingested_at_ms: 1_653_457_294_000,
            enrichment: Default::default(),
            user: None,
        });
    }
    builder.finish()
}

/// `SELECT count(*), sum(<column>)` over the loaded version of a table, through DataFusion.
pub async fn count_and_sum(table: &LakeTable, column: &str) -> (i64, i64) {
    let ctx = SessionContext::new();
    let delta = table.delta_table();
    delta
        .update_datafusion_session(&ctx.state())
        .expect("register store");
    let provider = delta.table_provider().await.expect("table provider");
    ctx.register_table("t", provider).expect("register table");
    let batches = ctx
        .sql(&format!(
            "SELECT count(*) AS n, coalesce(sum({column}), 0) AS s FROM t"
        ))
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let batch = &batches[0];
    let n = batch.column(0).as_primitive::<Int64Type>().value(0);
    let s = batch.column(1);
    let s = if s.is_null(0) {
        0
    } else {
        s.as_primitive::<Int64Type>().value(0)
    };
    (n, s)
}

/// Sum of `lo..hi`.
pub fn sum(range: std::ops::Range<i64>) -> i64 {
    range.sum()
}

/// Files (not directories) under `dir`, recursively, skipping `_delta_log`.
pub fn data_files_on_disk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == "_delta_log") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found
}
