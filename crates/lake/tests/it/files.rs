//! Files written slice by slice before their commit (`FileWriter`, `append_files`): the
//! path the processor's `events` take, checked against real Delta tables.

use clickstream_lake::{AppTxn, FileWriter, TableKind};
use deltalake::arrow::array::AsArray;
use deltalake::arrow::datatypes::Int64Type;

use crate::common::{count_and_sum, events, sum, temp_lake};
use crate::evolution::{V2_FIELDS, commit_actions, evolved, rows, v2_batch};

#[tokio::test]
async fn slices_land_in_one_commit_with_their_txns_and_not_before() {
    let (dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    let before = table.version();
    let mut writer = FileWriter::new(table.file_target().expect("target"));
    writer
        .write(events(0..3, "2024-03-01T09:00:00Z"))
        .await
        .expect("slice 1");
    // Another day: another partition's file in the same batch.
    writer
        .write(events(3..8, "2024-03-02T09:00:00Z"))
        .await
        .expect("slice 2");
    assert_eq!(writer.rows(), 8);
    let files = writer.finish().await.expect("finish");
    assert_eq!(files.rows(), 8);

    // Written is not committed: readers see nothing yet.
    table.refresh().await.expect("refresh");
    assert_eq!(table.version(), before);
    assert_eq!(count_and_sum(&table, "id").await, (0, 0));

    let version = table
        .append_files(&files, &[AppTxn::new("g:raw:0", 8)])
        .await
        .expect("commit");
    assert_eq!(version, before + 1);
    let actions = commit_actions(dir.path(), version);
    assert_eq!(
        actions.iter().filter(|a| *a == "add").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.iter().any(|a| a == "txn"), "{actions:?}");
    assert_eq!(count_and_sum(&table, "id").await, (8, sum(0..8)));
    assert_eq!(table.txn_version("g:raw:0").await.expect("txn"), Some(8));

    // A retried commit of the same files does not land them twice.
    let again = table
        .append_files(&files, &[AppTxn::new("g:raw:0", 8)])
        .await;
    assert!(again.is_err(), "{again:?}");
    assert_eq!(count_and_sum(&table, "id").await, (8, sum(0..8)));
}

#[tokio::test]
async fn a_slice_with_new_columns_continues_in_wider_files_and_the_commit_adds_them() {
    let (dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    let schema = table.arrow_schema().expect("schema");
    let mut writer = FileWriter::new(table.file_target().expect("target"));
    writer
        .write(events(0..3, "2024-03-01T09:00:00Z"))
        .await
        .expect("v1 slice");
    writer
        .write(v2_batch(&schema, &evolved(V2_FIELDS), 3..6))
        .await
        .expect("v2 slice");
    writer
        .write(events(6..8, "2024-03-01T09:00:00Z"))
        .await
        .expect("v1 slice after it");
    let files = writer.finish().await.expect("finish");
    assert!(files.schema().field_with_name("price").is_ok());

    let version = table
        .append_files(&files, &[AppTxn::new("g:raw:0", 8)])
        .await
        .expect("commit");
    let actions = commit_actions(dir.path(), version);
    assert!(actions.iter().any(|a| a == "metaData"), "{actions:?}");
    assert!(
        table
            .arrow_schema()
            .expect("schema")
            .field_with_name("cart")
            .is_ok()
    );
    assert_eq!(count_and_sum(&table, "id").await, (8, sum(0..8)));
    let batches = rows(&table, "SELECT count(price) AS n FROM events").await;
    assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 3);
}

#[tokio::test]
async fn files_planned_before_another_writer_evolved_the_table_add_its_columns_once() {
    let (_dir, lake) = temp_lake().await;
    let mut ours = lake.table(TableKind::Events).await.expect("load ours");
    let mut other = lake.table(TableKind::Events).await.expect("load other");
    let schema = ours.arrow_schema().expect("schema");
    let v2 = evolved(V2_FIELDS);
    // Our files are planned on the table as it was...
    let mut writer = FileWriter::new(ours.file_target().expect("target"));
    writer
        .write(v2_batch(&schema, &v2, 0..2))
        .await
        .expect("our slice");
    let files = writer.finish().await.expect("finish");
    // ...while another writer lands the same new columns first.
    other
        .append(
            vec![v2_batch(&schema, &v2, 2..4)],
            &[AppTxn::new("g:raw:1", 4)],
        )
        .await
        .expect("the other writer evolves the table");
    let columns = other.arrow_schema().expect("schema").fields().len();

    ours.append_files(&files, &[AppTxn::new("g:raw:0", 2)])
        .await
        .expect("our commit lands on the evolved table");
    assert_eq!(ours.arrow_schema().expect("schema").fields().len(), columns);
    assert_eq!(count_and_sum(&ours, "id").await, (4, sum(0..4)));
    let batches = rows(&ours, "SELECT count(price) AS n FROM events").await;
    assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 4);
}
