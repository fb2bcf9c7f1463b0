//! Consumed positions committed with the data: `txn` actions.

use clickstream_lake::{AppTxn, Lake, LakeError, TableKind, txn_app_id};
use clickstream_secret::Settings;

use crate::common::{count_and_sum, events, root_of, sum, temp_lake};

const DAY: &str = "2022-05-25T05:41:33.648681";

#[tokio::test]
async fn append_records_txn_versions_readable_from_a_new_handle() {
    let (dir, lake) = temp_lake().await;
    let a = txn_app_id("processor", "acme.clickstream.raw.events", 0);
    let b = txn_app_id("processor", "acme.clickstream.raw.events", 1);
    let mut table = lake.table(TableKind::Events).await.expect("load");
    let version = table
        .append(
            vec![events(0..10, DAY)],
            &[AppTxn::new(&a, 10), AppTxn::new(&b, 20)],
        )
        .await
        .expect("append");
    assert_eq!(version, 1);
    assert_eq!(table.version(), 1);

    let other = Lake::open(&root_of(dir.path()), &Settings::new())
        .await
        .expect("reopen");
    let mut fresh = other.table(TableKind::Events).await.expect("load");
    fresh.refresh().await.expect("refresh");
    assert_eq!(fresh.txn_version(&a).await.expect("txn"), Some(10));
    assert_eq!(fresh.txn_version(&b).await.expect("txn"), Some(20));
    assert_eq!(
        fresh.txn_version("processor:other:0").await.expect("txn"),
        None
    );
    assert_eq!(count_and_sum(&fresh, "id").await, (10, sum(0..10)));
}

#[tokio::test]
async fn offset_only_commit_moves_the_position_without_files() {
    let (_dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    let version = table
        .append(Vec::new(), &[AppTxn::new("g:t:0", 5)])
        .await
        .expect("offset-only commit");
    assert_eq!(version, 1);
    assert!(table.files().expect("files").is_empty());
    assert_eq!(table.txn_version("g:t:0").await.expect("txn"), Some(5));
    // An empty batch counts as no rows: still an offset-only commit.
    let version = table
        .append(vec![events(0..0, DAY)], &[AppTxn::new("g:t:0", 6)])
        .await
        .expect("empty batch commit");
    assert_eq!(version, 2);
    // Nothing at all: no commit.
    assert_eq!(table.append(Vec::new(), &[]).await.expect("no-op"), 2);

    let reloaded = lake.table(TableKind::Events).await.expect("load");
    assert_eq!(reloaded.version(), 2);
    assert_eq!(reloaded.txn_version("g:t:0").await.expect("txn"), Some(6));
    assert_eq!(count_and_sum(&reloaded, "id").await, (0, 0));
}

#[tokio::test]
async fn refuses_a_txn_version_that_does_not_advance() {
    let (_dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    table
        .append(vec![events(0..3, DAY)], &[AppTxn::new("g:t:0", 3)])
        .await
        .expect("append");
    for stale in [3, 2] {
        let err = table
            .append(vec![events(0..3, DAY)], &[AppTxn::new("g:t:0", stale)])
            .await
            .expect_err("stale position");
        assert!(
            matches!(err, LakeError::TxnNotAdvancing { recorded: 3, .. }),
            "{err}"
        );
        assert!(!err.is_transient());
    }
    let err = table
        .append(
            Vec::new(),
            &[AppTxn::new("g:t:1", 1), AppTxn::new("g:t:1", 2)],
        )
        .await
        .expect_err("duplicate app id");
    assert!(matches!(err, LakeError::DuplicateAppId { .. }), "{err}");
    assert_eq!(table.version(), 1);
    assert_eq!(count_and_sum(&table, "id").await, (3, sum(0..3)));
}

/// A follower's cached `txn` versions, carried through other writers' commits by reading
/// only those commits, answer exactly what a full lookup on a fresh handle answers.
#[tokio::test]
async fn a_refresh_follows_cached_txns_through_other_writers_commits() {
    let (_dir, lake) = temp_lake().await;
    let mut writer = lake.table(TableKind::Events).await.expect("load");
    let mut follower = lake.table(TableKind::Events).await.expect("load");
    writer
        .append(vec![events(0..10, DAY)], &[AppTxn::new("g:t:0", 10)])
        .await
        .expect("append");
    follower.refresh().await.expect("refresh");
    // Cached: one app id with a position, two without.
    assert_eq!(follower.txn_version("g:t:0").await.expect("txn"), Some(10));
    assert_eq!(follower.txn_version("g:t:1").await.expect("txn"), None);
    assert_eq!(follower.txn_version("g:t:2").await.expect("txn"), None);

    writer
        .append(vec![events(10..20, DAY)], &[AppTxn::new("g:t:0", 20)])
        .await
        .expect("append");
    writer
        .append(vec![events(20..30, DAY)], &[AppTxn::new("g:t:1", 5)])
        .await
        .expect("append");
    writer
        .append(
            vec![events(30..40, DAY)],
            &[AppTxn::new("g:t:0", 30), AppTxn::new("g:t:1", 7)],
        )
        .await
        .expect("append");
    follower.refresh().await.expect("refresh");
    assert_eq!(follower.version(), 4);

    let fresh = lake.table(TableKind::Events).await.expect("load");
    for app_id in ["g:t:0", "g:t:1", "g:t:2"] {
        let expected = fresh.txn_version(app_id).await.expect("txn");
        assert_eq!(
            follower.txn_version(app_id).await.expect("txn"),
            expected,
            "{app_id}"
        );
    }
    assert_eq!(follower.txn_version("g:t:0").await.expect("txn"), Some(30));
    assert_eq!(follower.txn_version("g:t:1").await.expect("txn"), Some(7));
}

#[tokio::test]
async fn a_stale_writer_for_the_same_app_id_fails_instead_of_double_committing() {
    let (_dir, lake) = temp_lake().await;
    let mut owner = lake.table(TableKind::Events).await.expect("load");
    let mut zombie = lake.table(TableKind::Events).await.expect("load");
    owner
        .append(vec![events(0..10, DAY)], &[AppTxn::new("g:t:0", 10)])
        .await
        .expect("owner commits");
    // The zombie read the same records from the same partition and tries to commit them.
    let err = zombie
        .append(vec![events(0..10, DAY)], &[AppTxn::new("g:t:0", 10)])
        .await
        .expect_err("conflict on the same app id");
    assert!(matches!(err, LakeError::TxnConflict { .. }), "{err}");
    assert!(!err.is_transient());

    // After a refresh the zombie sees the position and refuses to go back.
    zombie.refresh().await.expect("refresh");
    assert_eq!(zombie.txn_version("g:t:0").await.expect("txn"), Some(10));
    let err = zombie
        .append(vec![events(0..10, DAY)], &[AppTxn::new("g:t:0", 10)])
        .await
        .expect_err("not advancing");
    assert!(matches!(err, LakeError::TxnNotAdvancing { .. }), "{err}");

    let table = lake.table(TableKind::Events).await.expect("load");
    assert_eq!(count_and_sum(&table, "id").await, (10, sum(0..10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_with_different_app_ids_all_land() {
    let (_dir, lake) = temp_lake().await;
    let rounds = 8_i64;
    let mut tasks = Vec::new();
    for writer in 0..3_i64 {
        let lake = lake.clone();
        tasks.push(tokio::spawn(async move {
            let mut table = lake.table(TableKind::Events).await.expect("load");
            let app_id = format!("g:t:{writer}");
            for round in 0..rounds {
                let first = writer * 1_000 + round * 10;
                table
                    .append(
                        vec![events(first..first + 10, DAY)],
                        &[AppTxn::new(&app_id, round + 1)],
                    )
                    .await
                    .expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let table = lake.table(TableKind::Events).await.expect("load");
    assert_eq!(table.version(), 3 * rounds);
    let expected_sum: i64 = (0..3)
        .flat_map(|w| (0..rounds).map(move |r| sum(w * 1_000 + r * 10..w * 1_000 + r * 10 + 10)))
        .sum();
    assert_eq!(
        count_and_sum(&table, "id").await,
        (3 * rounds * 10, expected_sum)
    );
    for writer in 0..3 {
        assert_eq!(
            table
                .txn_version(&format!("g:t:{writer}"))
                .await
                .expect("txn"),
            Some(rounds)
        );
    }
}

#[tokio::test]
async fn history_lists_commits_with_their_txns() {
    let (_dir, lake) = temp_lake().await;
    let mut table = lake.table(TableKind::Events).await.expect("load");
    table
        .append(vec![events(0..4, DAY)], &[AppTxn::new("g:t:0", 4)])
        .await
        .expect("append");
    table
        .append(Vec::new(), &[AppTxn::new("g:t:0", 9)])
        .await
        .expect("offset only");
    let history = table.history(10).await.expect("history");
    assert_eq!(
        history.iter().map(|c| c.version).collect::<Vec<_>>(),
        vec![2, 1, 0]
    );
    assert_eq!(history[0].txns, vec![AppTxn::new("g:t:0", 9)]);
    assert_eq!(history[0].files_added, 0);
    assert_eq!(history[1].txns, vec![AppTxn::new("g:t:0", 4)]);
    assert_eq!(history[1].files_added, 1);
    assert!(history[1].bytes_added > 0);
    assert_eq!(history[1].operation.as_deref(), Some("WRITE"));
    assert_eq!(history[2].operation.as_deref(), Some("CREATE TABLE"));
    assert!(history[0].timestamp_ms.is_some());
    assert_eq!(table.history(1).await.expect("history").len(), 1);
}
