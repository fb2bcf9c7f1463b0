//! How a statement reads a table version's data files: every column in the place the table
//! declares it (partition columns included), a filter on a partition column skipping the
//! other partitions' files, the null partition, tables without files.

use clickstream_lake::TableKind;
use clickstream_query::QueryEngine;

use crate::fixture::{engine, scalar};

#[tokio::test]
async fn select_star_returns_the_columns_in_the_tables_declared_order() {
    let (fixture, engine) = engine().await;
    for kind in TableKind::ALL {
        let table = fixture.lake.table(kind).await.expect("table");
        let declared: Vec<String> = table
            .columns()
            .expect("columns")
            .into_iter()
            .map(|c| c.name)
            .collect();
        let sql = format!("SELECT * FROM {}", kind.name());
        let output = engine.sql(&sql).await.expect("query");
        let returned: Vec<&String> = output.schema.fields().iter().map(|f| f.name()).collect();
        assert_eq!(returned, declared.iter().collect::<Vec<_>>(), "{sql}");
        // Every row's partition value is where the schema says it is, not shifted.
        if kind == TableKind::Events {
            let rows = output.to_json_rows().expect("json");
            assert_eq!(rows.len(), 32);
            assert!(rows.iter().any(|row| row["event_date"] == "2024-03-03"));
        }
    }
}

#[tokio::test]
async fn a_filter_on_the_partition_column_reads_only_that_partitions_files() {
    let (fixture, engine) = engine().await;
    let files = fixture
        .lake
        .table(TableKind::Events)
        .await
        .expect("table")
        .files()
        .expect("files");
    let of_day = files
        .iter()
        .filter(|f| f.partition_values["event_date"].as_deref() == Some("2024-03-02"))
        .count();
    assert!(of_day > 0 && of_day < files.len(), "{files:?}");

    let filtered = "SELECT count(*) FROM events WHERE event_date = DATE '2024-03-02'";
    // The same count with no filter to push: every file read, the day decided per row.
    let unfiltered = "SELECT sum(CASE WHEN event_date = DATE '2024-03-02' THEN 1 ELSE 0 END) \
                      FROM events";
    assert_eq!(
        scalar(&engine, filtered).await,
        scalar(&engine, unfiltered).await
    );
    assert_eq!(scalar(&engine, filtered).await, 11);

    let plan = analyzed(&engine, filtered).await;
    // The other days' files are not even opened.
    let pruned = format!("files_opened={of_day},");
    assert!(plan.contains(&pruned), "expected {pruned} in\n{plan}");

    // A day with no file: nothing to read, still an answer.
    let none = "SELECT count(*) FROM events WHERE event_date = DATE '1999-01-01'";
    assert_eq!(scalar(&engine, none).await, 0);
    let rows = engine
        .sql("SELECT id FROM events WHERE event_date > DATE '2024-03-03'")
        .await
        .expect("query");
    assert_eq!(rows.row_count(), 0);
}

#[tokio::test]
async fn rows_of_the_null_partition_are_read_with_a_null_partition_value() {
    let (_fixture, engine) = engine().await;
    // Event 32's timestamp does not parse: its `event_date` is null, its file in the
    // null partition.
    let sql = "SELECT id FROM events WHERE event_date IS NULL";
    assert_eq!(scalar(&engine, sql).await, 32);
    let sql = "SELECT count(*) FROM events WHERE event_date IS NOT NULL";
    assert_eq!(scalar(&engine, sql).await, 31);
}

#[tokio::test]
async fn a_table_without_files_reads_as_empty_with_its_columns() {
    let (fixture, engine) = engine().await;
    let table = fixture
        .lake
        .table(TableKind::Duplicates)
        .await
        .expect("table");
    assert!(table.files().expect("files").is_empty());
    let output = engine.sql("SELECT * FROM duplicates").await.expect("query");
    assert_eq!(output.row_count(), 0);
    assert_eq!(
        output.schema.fields().len(),
        table.columns().expect("columns").len()
    );
    assert_eq!(scalar(&engine, "SELECT count(*) FROM duplicates").await, 0);
}

#[tokio::test]
async fn strings_are_read_as_views_as_delta_rs_declared_them() {
    let (_fixture, engine) = engine().await;
    // The types `/api/sql` reports for a table's columns stay those of delta-rs's provider.
    let sql = "SELECT arrow_typeof(type) FROM events LIMIT 1";
    assert_eq!(scalar(&engine, sql).await, "Utf8View");
    let sql = "SELECT arrow_typeof(raw) FROM dead_letters LIMIT 1";
    assert_eq!(scalar(&engine, sql).await, "BinaryView");
}

#[tokio::test]
async fn a_local_tables_files_are_read_directly_and_counted() {
    let (_fixture, engine) = engine().await;
    let plan = analyzed(&engine, "SELECT count(DISTINCT page) FROM events").await;
    // The metric's value as `EXPLAIN ANALYZE` prints it (`bytes_read_directly=1.2 KB`).
    let value = |name: &str| {
        let at = plan.find(&format!("{name}=")).map(|at| at + name.len() + 1);
        at.map(|at| {
            plan[at..]
                .split([',', ']'])
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
    };
    let direct =
        value("bytes_read_directly").unwrap_or_else(|| panic!("no direct reads in\n{plan}"));
    let scanned = value("bytes_scanned").unwrap_or_else(|| panic!("no bytes_scanned in\n{plan}"));
    assert!(!direct.starts_with('0'), "{direct} in\n{plan}");
    // Every byte the scan read was read directly, and DataFusion's count says so too.
    assert_eq!(direct, scanned, "{plan}");
    // `12.5% (1.2 K/9.8 K)`: some of each file was read, and counted against its size.
    let efficiency = value("scan_efficiency_ratio").unwrap_or_default();
    assert!(
        efficiency.contains('%') && !efficiency.starts_with("0%"),
        "{efficiency} in\n{plan}"
    );
}

/// The plan of `sql` as `EXPLAIN ANALYZE` prints it, with the metrics of the run.
async fn analyzed(engine: &QueryEngine, sql: &str) -> String {
    engine
        .sql(&format!("EXPLAIN ANALYZE {sql}"))
        .await
        .expect("explain")
        .to_json_rows()
        .expect("json")
        .iter()
        .map(|row| row["plan"].as_str().unwrap_or_default().to_string())
        .collect()
}
