//! Closing and reopening the log.

use clickstream_log::{EmbeddedLog, EventLog, LogError, TopicPartition};

use crate::common::{config, create, open, read_all, record, values};

#[tokio::test]
async fn reopen_after_clean_close_keeps_everything_and_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut before = Vec::new();
    {
        let log = open(config(dir.path())).await;
        create(&log, "t", 3).await;
        create(&log, "u", 1).await;
        for i in 0..50 {
            log.append(vec![
                record("t", i % 3, &format!("v{i}")),
                record("u", 0, &format!("u{i}")),
            ])
            .await
            .expect("append");
        }
        for p in 0..3 {
            before.push(read_all(&log, &TopicPartition::new("t", p)).await);
        }
        log.close().await;
        assert!(matches!(
            log.append(vec![record("t", 0, "late")]).await,
            Err(LogError::Closed)
        ));
    }
    let log = open(config(dir.path())).await;
    assert_eq!(log.partition_count("t").await.expect("count"), 3);
    for p in 0..3 {
        let tp = TopicPartition::new("t", p);
        assert_eq!(read_all(&log, &tp).await, before[p as usize]);
        assert_eq!(
            log.offsets(&tp).await.expect("offsets").end,
            before[p as usize].len() as u64
        );
    }
    let positions = log
        .append(vec![record("t", 0, "after")])
        .await
        .expect("append");
    assert_eq!(positions[0].offset, before[0].len() as u64);
    let all = read_all(&log, &TopicPartition::new("t", 0)).await;
    assert_eq!(values(&all).last().map(String::as_str), Some("after"));
    assert_eq!(read_all(&log, &TopicPartition::new("u", 0)).await.len(), 50);
}

#[tokio::test]
async fn reopen_after_drop_without_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(config(dir.path())).await;
        create(&log, "t", 1).await;
        log.append(vec![record("t", 0, "a"), record("t", 0, "b")])
            .await
            .expect("append");
    }
    let log = open(config(dir.path())).await;
    assert_eq!(
        values(&read_all(&log, &TopicPartition::new("t", 0)).await),
        ["a", "b"]
    );
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _log = open(config(dir.path())).await;
    let second = EmbeddedLog::open(config(dir.path())).await;
    assert!(
        matches!(second, Err(LogError::Unavailable(_))),
        "{:?}",
        second.err()
    );
}
