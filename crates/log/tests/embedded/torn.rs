//! Recovery from a damaged tail (what a crash mid-write leaves) and from real corruption.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use clickstream_log::{EmbeddedLog, EventLog, LogError, TopicPartition};

use crate::common::{config, create, open, read_all, record, segment_files, values};

/// Ten records of equal size in partition 0 of topic `t`; returns the record size.
async fn ten_records(dir: &Path) -> u64 {
    let log = open(config(dir)).await;
    create(&log, "t", 1).await;
    let batch = (0..10)
        .map(|i| record("t", 0, &format!("value-{i}")))
        .collect();
    log.append(batch).await.expect("append");
    log.close().await;
    let files = segment_files(dir, "t", 0);
    let len = std::fs::metadata(&files[0]).expect("metadata").len();
    assert_eq!(len % 10, 0);
    len / 10
}

fn expected(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("value-{i}")).collect()
}

/// Reopens, checks that `n` records survived and that appends continue at offset `n`.
async fn check_recovered(dir: &Path, n: u64, record_size: u64) {
    let log = open(config(dir)).await;
    let tp = TopicPartition::new("t", 0);
    assert_eq!(values(&read_all(&log, &tp).await), expected(n as usize));
    assert_eq!(log.offsets(&tp).await.expect("offsets").end, n);
    let segment = &segment_files(dir, "t", 0)[0];
    assert_eq!(
        std::fs::metadata(segment).expect("metadata").len(),
        n * record_size,
        "tail truncated"
    );
    let positions = log
        .append(vec![record("t", 0, "after")])
        .await
        .expect("append");
    assert_eq!(positions[0].offset, n);
    let read = log
        .read(&tp, n, 10, std::time::Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(values(&read), ["after"]);
    log.close().await;
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open segment");
    file.write_all(bytes).expect("append bytes");
}

#[tokio::test]
async fn partial_record_at_the_tail_is_discarded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = ten_records(dir.path()).await;
    let segment = segment_files(dir.path(), "t", 0)[0].clone();
    let bytes = std::fs::read(&segment).expect("read segment");
    // The start of a real record: a write cut short by a crash.
    append_bytes(&segment, &bytes[..size as usize / 2]);
    check_recovered(dir.path(), 10, size).await;
}

#[tokio::test]
async fn garbage_at_the_tail_is_discarded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = ten_records(dir.path()).await;
    let segment = segment_files(dir.path(), "t", 0)[0].clone();
    append_bytes(&segment, &[0u8; 4096]);
    append_bytes(&segment, b"\xff\xff\xff\x7fnot a record at all");
    check_recovered(dir.path(), 10, size).await;
}

#[tokio::test]
async fn flipped_byte_in_the_last_record_discards_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = ten_records(dir.path()).await;
    let segment = segment_files(dir.path(), "t", 0)[0].clone();
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let at = bytes.len() - 3; // inside the last record's value
    bytes[at] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write segment");
    check_recovered(dir.path(), 9, size).await;
}

#[tokio::test]
async fn corruption_before_the_last_segment_fails_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 200;
    {
        let log = open(cfg.clone()).await;
        create(&log, "t", 1).await;
        for i in 0..10 {
            log.append(vec![record("t", 0, &format!("value-{i}"))])
                .await
                .expect("append");
        }
        log.close().await;
    }
    let files = segment_files(dir.path(), "t", 0);
    assert!(files.len() > 2);
    let mut bytes = std::fs::read(&files[0]).expect("read segment");
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    std::fs::write(&files[0], &bytes).expect("write segment");
    let result = EmbeddedLog::open(cfg).await;
    assert!(
        matches!(result, Err(LogError::Corrupt { .. })),
        "{:?}",
        result.err()
    );
}

#[tokio::test]
async fn torn_tail_followed_by_an_empty_segment_is_recovered() {
    // A crash between syncing a rolled segment's successor into existence and writing to
    // it cannot tear the old segment (it is synced first), but an empty new segment after a
    // torn one is still the shape of an interrupted roll: recover, do not refuse.
    let dir = tempfile::tempdir().expect("tempdir");
    let size = ten_records(dir.path()).await;
    let segment = segment_files(dir.path(), "t", 0)[0].clone();
    append_bytes(&segment, &[1, 2, 3]);
    let empty = segment.with_file_name(format!("{:020}.log", 11));
    std::fs::File::create(&empty).expect("create empty segment");
    check_recovered(dir.path(), 10, size).await;
    assert!(!empty.exists());
}
