//! Writing each table: partition layout, file listing, overwrite, checkpoints.

use clickstream_lake::{
    AppTxn, DeadLetterRow, DeadLettersBuilder, InvalidEventRow, InvalidEventsBuilder, TableKind,
    UniqueUsersBuilder, UniqueUsersRow,
};

use crate::common::{count_and_sum, events, sum, temp_lake};

#[tokio::test]
async fn events_are_partitioned_by_event_date_on_disk() {
    let (dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    table
        .append(
            vec![
                events(0..5, "2022-05-25T05:41:33.648681"),
                events(5..8, "2022-05-26T00:00:01+02:00"),
                events(8..10, "garbage"),
            ],
            &[AppTxn::new("g:t:0", 10)],
        )
        .await
        .expect("append");
    let events_dir = dir.path().join("clickstream-data/events");
    assert!(events_dir.join("event_date=2022-05-25").is_dir());
    // 2022-05-26T00:00:01+02:00 is 2022-05-25T22:00:01Z: same UTC day.
    assert!(!events_dir.join("event_date=2022-05-26").exists());
    assert!(
        events_dir
            .join("event_date=__HIVE_DEFAULT_PARTITION__")
            .is_dir()
    );

    let files = table.files().expect("files");
    assert_eq!(files.len(), 2);
    let mut by_date: Vec<_> = files
        .iter()
        .map(|f| {
            assert!(f.size_bytes > 0);
            assert!(f.path.ends_with(".parquet"), "{}", f.path);
            (
                f.partition_values.get("event_date").cloned().flatten(),
                f.num_records,
            )
        })
        .collect();
    by_date.sort();
    assert_eq!(
        by_date,
        vec![(None, Some(2)), (Some("2022-05-25".to_string()), Some(8))]
    );
    assert_eq!(count_and_sum(&table, "id").await, (10, sum(0..10)));
}

#[tokio::test]
async fn invalid_events_and_dead_letters_round_trip() {
    let (dir, lake) = temp_lake().await;
    let mut invalid = InvalidEventsBuilder::new();
    for (offset, raw) in [r#"{"id": 7, "type": "click"}"#, "not json"]
        .iter()
        .enumerate()
    {
        invalid.push(&InvalidEventRow {
            raw_json: raw,
            reason: "event: expected object",
            correlation_id: Some("c"),
            source: Some("web"),
            received_at_ms: 1_653_457_293_000,
            source_partition: 0,
            source_offset: i64::try_from(offset).expect("small"),
        });
    }
    let mut table = lake.table(TableKind::InvalidEvents).await.expect("load");
    table
        .append(vec![invalid.finish()], &[AppTxn::new("g:invalid:0", 2)])
        .await
        .expect("append invalid");
    assert!(
        dir.path()
            .join("clickstream-data/invalid_events/received_date=2022-05-25")
            .is_dir()
    );
    assert_eq!(count_and_sum(&table, "event_id").await, (2, 7));

    let mut dead = DeadLettersBuilder::new();
    dead.push(&DeadLetterRow {
        reason: "unknown schema id 42",
        source_topic: "acme.clickstream.raw.events",
        source_partition: 1,
        source_offset: 99,
        raw: &[0, 0, 0, 0, 42, 1, 2, 3],
        correlation_id: None,
        schema_id: Some(42),
        received_at_ms: 1,
        failed_at_ms: 2,
    });
    let mut table = lake.table(TableKind::DeadLetters).await.expect("load");
    table
        .append(vec![dead.finish()], &[AppTxn::new("g:raw:1", 100)])
        .await
        .expect("append dead letter");
    assert_eq!(count_and_sum(&table, "source_offset").await, (1, 99));
}

#[tokio::test]
async fn overwrite_replaces_every_row() {
    let (_dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::UniqueUsersDaily).await.expect("load");
    let counts = |rows: &[(&str, i64)]| {
        let mut builder = UniqueUsersBuilder::new();
        for (day, n) in rows {
            builder.push(&UniqueUsersRow {
                day,
                unique_users: *n,
                updated_at_ms: 1_000,
            });
        }
        builder.finish()
    };
    table
        .overwrite(
            counts(&[("2022-05-25", 3), ("2022-05-26", 4)]),
            &[AppTxn::new("g:t:0", 1)],
        )
        .await
        .expect("first overwrite");
    assert_eq!(count_and_sum(&table, "unique_users").await, (2, 7));
    let version = table
        .overwrite(
            counts(&[("2022-05-25", 5), ("2022-05-26", 6), ("2022-05-27", 1)]),
            &[AppTxn::new("g:t:0", 2)],
        )
        .await
        .expect("second overwrite");
    assert_eq!(version, 2);
    assert_eq!(count_and_sum(&table, "unique_users").await, (3, 12));
    assert_eq!(table.txn_version("g:t:0").await.expect("txn"), Some(2));
    let reloaded = lake.table(TableKind::UniqueUsersDaily).await.expect("load");
    assert_eq!(count_and_sum(&reloaded, "unique_users").await, (3, 12));
    assert_eq!(reloaded.txn_version("g:t:0").await.expect("txn"), Some(2));
}

#[tokio::test]
async fn many_commits_write_a_checkpoint_and_the_table_still_loads() {
    let (dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    let commits = 130_i64;
    for i in 1..=commits {
        // Every tenth commit carries data; the rest only move a position.
        let batches = if i % 10 == 0 {
            vec![events(i * 100..i * 100 + 3, "2022-05-25")]
        } else {
            Vec::new()
        };
        let mut txns = vec![AppTxn::new("g:t:0", i)];
        if i == 7 {
            // Only ever written before the checkpoint: must be read back from it.
            txns.push(AppTxn::new("g:t:early", 7));
        }
        table.append(batches, &txns).await.expect("append");
    }
    assert_eq!(table.version(), commits);
    let log = dir.path().join("clickstream-data/events/_delta_log");
    assert!(
        log.join("00000000000000000099.checkpoint.parquet")
            .is_file(),
        "checkpoint after 100 commits"
    );
    assert!(log.join("_last_checkpoint").is_file());

    let reloaded = lake.table(TableKind::Events).await.expect("load");
    assert_eq!(reloaded.version(), commits);
    assert_eq!(
        reloaded.txn_version("g:t:0").await.expect("txn"),
        Some(commits)
    );
    assert_eq!(
        reloaded.txn_version("g:t:early").await.expect("txn"),
        Some(7)
    );
    let expected: i64 = (1..=commits)
        .filter(|i| i % 10 == 0)
        .map(|i| sum(i * 100..i * 100 + 3))
        .sum();
    assert_eq!(count_and_sum(&reloaded, "id").await, (13 * 3, expected));
}

/// Two writers overwriting the same table: the one whose snapshot is stale is refused
/// (delta-rs alone would rebase it and keep both writers' rows), and lands after a refresh.
#[tokio::test]
async fn a_stale_overwrite_is_refused_then_lands_after_a_refresh() {
    let (_dir, lake) = temp_lake().await;
    let counts = |day: &str, n: i64| {
        let mut builder = UniqueUsersBuilder::new();
        builder.push(&UniqueUsersRow {
            day,
            unique_users: n,
            updated_at_ms: 1_000,
        });
        builder.finish()
    };
    let mut first = lake.table(TableKind::UniqueUsersDaily).await.expect("load");
    let mut second = lake.table(TableKind::UniqueUsersDaily).await.expect("load");
    first
        .overwrite(counts("2022-05-25", 3), &[])
        .await
        .expect("first writer");
    let refused = second
        .overwrite(counts("2022-05-25", 4), &[])
        .await
        .expect_err("a stale overwrite must not land");
    assert!(refused.is_transient(), "{refused}");
    assert_eq!(count_and_sum(&first, "unique_users").await, (1, 3));

    second.refresh().await.expect("refresh");
    second
        .overwrite(counts("2022-05-25", 4), &[])
        .await
        .expect("after a refresh");
    let reloaded = lake.table(TableKind::UniqueUsersDaily).await.expect("load");
    assert_eq!(count_and_sum(&reloaded, "unique_users").await, (1, 4));
}
