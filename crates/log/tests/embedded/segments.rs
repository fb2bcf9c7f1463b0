//! Segment rolling and retention.

use std::time::Duration;

use clickstream_log::{EventLog, LogError, TopicPartition};

use crate::common::{config, create, eventually, open, read_all, record, segment_files, values};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[tokio::test]
async fn rolls_segments_and_reads_across_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 1000;
    let log = open(cfg.clone()).await;
    create(&log, "t", 2).await;
    let names: Vec<String> = (0..100)
        .map(|i| format!("value-{i:04}-{}", "x".repeat(60)))
        .collect();
    for chunk in names.chunks(7) {
        let batch = chunk.iter().map(|v| record("t", 0, v)).collect();
        log.append(batch).await.expect("append");
    }
    let files = segment_files(dir.path(), "t", 0);
    assert!(files.len() >= 8, "{} segments", files.len());
    let first_name = files[0].file_name().and_then(|n| n.to_str()).expect("name");
    assert_eq!(first_name, "00000000000000000000.log");
    for file in &files[..files.len() - 1] {
        let len = std::fs::metadata(file).expect("metadata").len();
        assert!(len <= 1000, "{} is {len} bytes", file.display());
    }

    let tp = TopicPartition::new("t", 0);
    assert_eq!(values(&read_all(&log, &tp).await), names);
    // One read spans several segments.
    let many = log.read(&tp, 3, 40, Duration::ZERO).await.expect("read");
    assert_eq!(many.len(), 40);
    assert_eq!(many.first().map(|r| r.offset), Some(3));
    for from in [0, 13, 14, 15, 57, 99] {
        let one = log.read(&tp, from, 1, Duration::ZERO).await.expect("read");
        assert_eq!(values(&one), [names[from as usize].clone()]);
    }
    log.close().await;
    drop(log);

    let log = open(cfg).await;
    assert_eq!(values(&read_all(&log, &tp).await), names);
    let next = log
        .append(vec![record("t", 0, "after")])
        .await
        .expect("append");
    assert_eq!(next[0].offset, 100);
}

#[tokio::test]
async fn retention_by_bytes_deletes_oldest_segments_and_advances_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 1000;
    cfg.retention_bytes = Some(3000);
    let log = open(cfg.clone()).await;
    create(&log, "t", 1).await;
    let tp = TopicPartition::new("t", 0);
    for i in 0..100 {
        log.append(vec![record("t", 0, &format!("{i:03}-{}", "y".repeat(80)))])
            .await
            .expect("append");
    }
    let files_before = segment_files(dir.path(), "t", 0);
    let deleted = log.enforce_retention().await.expect("retention");
    assert!(deleted > 0);
    let files_after = segment_files(dir.path(), "t", 0);
    assert_eq!(files_after.len(), files_before.len() - deleted);
    assert_eq!(
        files_after.last(),
        files_before.last(),
        "the active segment stays"
    );

    let offsets = log.offsets(&tp).await.expect("offsets");
    assert!(offsets.start > 0);
    assert_eq!(offsets.end, 100);
    let info = log.topics().await.expect("topics");
    let size = info[0].partitions[0].size_bytes;
    assert!(size <= 3000, "partition holds {size} bytes");

    let below = log.read(&tp, offsets.start - 1, 10, Duration::ZERO).await;
    assert!(
        matches!(below, Err(LogError::OffsetOutOfRange { .. })),
        "{below:?}"
    );
    let first = log
        .read(&tp, offsets.start, 1, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(first[0].offset, offsets.start);
    log.close().await;
    drop(log);

    let log = open(cfg).await;
    assert_eq!(log.offsets(&tp).await.expect("offsets"), offsets);
}

#[tokio::test]
async fn retention_by_age_deletes_old_segments_but_never_the_active_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 1000;
    cfg.retention_ms = Some(60 * 60 * 1000);
    let log = open(cfg).await;
    create(&log, "t", 1).await;
    let tp = TopicPartition::new("t", 0);
    let old = now_ms() - 2 * DAY_MS;
    for i in 0..40 {
        let mut rec = record("t", 0, &format!("old-{i:03}-{}", "z".repeat(80)));
        rec.timestamp_ms = Some(old);
        log.append(vec![rec]).await.expect("append");
    }
    let old_segments = segment_files(dir.path(), "t", 0).len();
    assert!(old_segments > 2);
    // Everything is expired, but the active segment is kept.
    let deleted = log.enforce_retention().await.expect("retention");
    assert_eq!(deleted, old_segments - 1);
    assert_eq!(segment_files(dir.path(), "t", 0).len(), 1);

    // Fresh records in new segments survive.
    for i in 0..30 {
        let mut rec = record("t", 0, &format!("new-{i:03}-{}", "z".repeat(80)));
        rec.timestamp_ms = None;
        log.append(vec![rec]).await.expect("append");
    }
    log.enforce_retention().await.expect("retention");
    let offsets = log.offsets(&tp).await.expect("offsets");
    let remaining = read_all(&log, &tp).await;
    assert_eq!(offsets.end, 70);
    assert_eq!(offsets.start, 70 - remaining.len() as u64);
    let is_new =
        |r: &&clickstream_log::LogRecord| String::from_utf8_lossy(&r.value).starts_with("new-");
    assert_eq!(remaining.iter().filter(is_new).count(), 30);
    // Only old records sharing a segment with new ones remain (3 records fit a segment).
    assert!(
        remaining.len() - 30 < 3,
        "{} old records kept",
        remaining.len() - 30
    );
}

#[tokio::test]
async fn background_retention_runs_on_its_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 500;
    cfg.retention_ms = Some(1000);
    cfg.retention_check_interval_ms = 20;
    let log = open(cfg).await;
    create(&log, "t", 1).await;
    for i in 0..20 {
        let mut rec = record("t", 0, &format!("{i:03}-{}", "w".repeat(80)));
        rec.timestamp_ms = Some(now_ms() - DAY_MS);
        log.append(vec![rec]).await.expect("append");
    }
    let tp = TopicPartition::new("t", 0);
    let advanced = eventually(Duration::from_secs(10), async || {
        log.offsets(&tp).await.expect("offsets").start > 0
    })
    .await;
    assert!(
        advanced,
        "background retention never advanced the start offset"
    );
}
