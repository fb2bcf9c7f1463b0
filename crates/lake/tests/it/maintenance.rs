//! Compaction and vacuum.

use std::time::Duration;

use clickstream_lake::{AppTxn, DataFileInfo, TableKind};
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};

use crate::common::{count_and_sum, data_files_on_disk, events, sum, temp_lake};

#[tokio::test]
async fn optimize_compacts_small_files_then_vacuum_deletes_the_replaced_ones() {
    let (dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    for round in 0..8_i64 {
        let first = round * 10;
        table
            .append(
                vec![
                    events(first..first + 5, "2022-05-25T10:00:00"),
                    events(1_000 + first..1_000 + first + 5, "2022-05-26T10:00:00Z"),
                ],
                &[AppTxn::new("g:t:0", round + 1)],
            )
            .await
            .expect("append");
    }
    let before = count_and_sum(&table, "id").await;
    assert_eq!(before.0, 80);
    let events_dir = dir.path().join("clickstream-data/events");
    let committed = table.files().expect("files");
    assert_eq!(committed.len(), 16);
    // Small files as committed are snappy (no codec context per column chunk); what
    // compaction writes, to stay, is zstd.
    let committed_codecs = codecs(&events_dir, &committed);
    assert!(
        !committed_codecs.is_empty()
            && committed_codecs
                .iter()
                .all(|c| matches!(c, Compression::SNAPPY)),
        "{committed_codecs:?}"
    );

    let summary = table.optimize(128 * 1024 * 1024).await.expect("optimize");
    assert_eq!(summary.files_removed, 16);
    assert_eq!(summary.files_added, 2, "one file per partition");
    assert_eq!(summary.partitions_optimized, 2);
    assert_eq!(summary.version, 9);
    assert_eq!(table.version(), 9);
    let files = table.files().expect("files");
    assert_eq!(files.len(), 2);
    assert_eq!(files.iter().filter_map(|f| f.num_records).sum::<u64>(), 80);
    let compacted_codecs = codecs(&events_dir, &files);
    assert!(
        !compacted_codecs.is_empty()
            && compacted_codecs
                .iter()
                .all(|c| matches!(c, Compression::ZSTD(_))),
        "{compacted_codecs:?}"
    );
    assert_eq!(count_and_sum(&table, "id").await, before);
    // Compaction keeps the recorded positions.
    assert_eq!(table.txn_version("g:t:0").await.expect("txn"), Some(8));

    assert_eq!(data_files_on_disk(&events_dir).len(), 18);
    let dry = table.vacuum(Duration::ZERO, true).await.expect("dry run");
    assert!(dry.dry_run);
    assert_eq!(dry.files_deleted, 16);
    assert_eq!(data_files_on_disk(&events_dir).len(), 18);

    let done = table.vacuum(Duration::ZERO, false).await.expect("vacuum");
    assert_eq!(done.files_deleted, 16);
    assert_eq!(data_files_on_disk(&events_dir).len(), 2);
    assert_eq!(count_and_sum(&table, "id").await, before);
    let reloaded = lake.table(TableKind::Events).await.expect("load");
    assert_eq!(count_and_sum(&reloaded, "id").await, before);
    let expected: i64 = (0..8)
        .map(|r| sum(r * 10..r * 10 + 5) + sum(1_000 + r * 10..1_000 + r * 10 + 5))
        .sum();
    assert_eq!(before.1, expected);
}

#[tokio::test]
async fn optimize_of_a_compact_table_changes_nothing() {
    let (_dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    table
        .append(vec![events(0..5, "2022-05-25")], &[AppTxn::new("g:t:0", 5)])
        .await
        .expect("append");
    let summary = table.optimize(128 * 1024 * 1024).await.expect("optimize");
    assert_eq!(summary.files_added, 0);
    assert_eq!(summary.files_removed, 0);
    assert_eq!(table.version(), 1);
    let vacuum = table
        .vacuum(Duration::from_secs(168 * 3600), false)
        .await
        .expect("vacuum");
    assert_eq!(vacuum.files_deleted, 0);
    assert_eq!(count_and_sum(&table, "id").await, (5, sum(0..5)));
}

/// The codec of every column chunk of `files`.
fn codecs(table_dir: &std::path::Path, files: &[DataFileInfo]) -> Vec<Compression> {
    files
        .iter()
        .flat_map(|f| {
            let file = std::fs::File::open(table_dir.join(&f.path)).expect("open data file");
            let reader = SerializedFileReader::new(file).expect("read parquet footer");
            reader
                .metadata()
                .row_groups()
                .iter()
                .flat_map(|group| group.columns().iter().map(|c| c.compression()))
                .collect::<Vec<_>>()
        })
        .collect()
}
