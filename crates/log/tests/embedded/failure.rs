//! A write that fails for real: the append reports a transient error, acknowledges nothing,
//! leaves no partial data, and the log keeps working.

use std::time::Duration;

use clickstream_log::{EventLog, TopicPartition};

use crate::common::{config, create, open, partition_dir, read_all, record, segment_files, values};

/// Partition 0 of topic `t` with its directory replaced by a regular file: creating its
/// next segment fails with ENOTDIR, while the open segment handle keeps working.
struct BlockedPartition {
    dir: std::path::PathBuf,
    moved: std::path::PathBuf,
}

impl BlockedPartition {
    fn new(log_dir: &std::path::Path) -> Self {
        let dir = partition_dir(log_dir, "t", 0);
        let moved = dir.with_file_name("0.moved");
        std::fs::rename(&dir, &moved).expect("move partition dir");
        std::fs::write(&dir, b"not a directory").expect("create blocking file");
        BlockedPartition { dir, moved }
    }

    /// Puts the directory back.
    fn restore(self) {
        std::fs::remove_file(&self.dir).expect("remove blocking file");
        std::fs::rename(&self.moved, &self.dir).expect("restore partition dir");
    }
}

/// Appends `value-0` to partition 0 of `t`; returns its segment and the segment's length.
async fn append_first(
    log: &clickstream_log::EmbeddedLog,
    log_dir: &std::path::Path,
) -> (std::path::PathBuf, u64) {
    log.append(vec![record("t", 0, "value-0")])
        .await
        .expect("append");
    let segment = segment_files(log_dir, "t", 0)[0].clone();
    let len = std::fs::metadata(&segment).expect("metadata").len();
    (segment, len)
}

#[tokio::test]
async fn failed_segment_roll_fails_the_append_and_the_log_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    // Records here are 80 bytes: two fit in a segment, the third rolls.
    cfg.segment_bytes = 200;
    let log = open(cfg.clone()).await;
    create(&log, "t", 2).await;
    let tp = TopicPartition::new("t", 0);
    let (segment, acked_len) = append_first(&log, dir.path()).await;
    assert_eq!(acked_len, 80);

    let blocked = BlockedPartition::new(dir.path());

    // The first record fits in the segment (and is written), the second needs a roll.
    let failed = log
        .append(vec![record("t", 0, "value-1"), record("t", 0, "value-2")])
        .await;
    let error = failed.expect_err("the roll must fail");
    assert!(error.is_transient(), "{error:?}");

    // Nothing acknowledged, nothing visible, the written record truncated away.
    assert_eq!(log.offsets(&tp).await.expect("offsets").end, 1);
    assert_eq!(values(&read_all(&log, &tp).await), ["value-0"]);
    assert!(
        log.read(&tp, 1, 10, Duration::ZERO)
            .await
            .expect("read")
            .is_empty()
    );
    let moved_segment = blocked.moved.join(segment.file_name().expect("file name"));
    assert_eq!(
        std::fs::metadata(&moved_segment).expect("metadata").len(),
        acked_len
    );
    // Other partitions are not affected.
    log.append(vec![record("t", 1, "other")])
        .await
        .expect("append to partition 1");

    // Once the directory is back, the same partition accepts appends at the right offset.
    blocked.restore();
    let positions = log
        .append(vec![record("t", 0, "value-1"), record("t", 0, "value-2")])
        .await
        .expect("append after repair");
    assert_eq!(
        positions.iter().map(|p| p.offset).collect::<Vec<_>>(),
        [1, 2]
    );
    let expected = ["value-0", "value-1", "value-2"];
    assert_eq!(values(&read_all(&log, &tp).await), expected);
    log.close().await;
    drop(log);

    let log = open(cfg).await;
    assert_eq!(values(&read_all(&log, &tp).await), expected);
    assert_eq!(
        values(&read_all(&log, &TopicPartition::new("t", 1)).await),
        ["other"]
    );
}

/// `n` records of ~6 KB each (value, key and header each carry the 2,000-byte value).
fn large_records(topic: &str, partition: u32, n: usize) -> Vec<clickstream_log::OutgoingRecord> {
    (0..n)
        .map(|i| record(topic, partition, &format!("{i:06}{}", "x".repeat(1_994))))
        .collect()
}

/// A group larger than the writer's spill threshold (4 MiB) is written out while it is
/// encoded; it still reads back whole and in order, before and after a reopen.
#[tokio::test]
async fn a_group_written_out_while_encoded_reads_back_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let log = open(cfg.clone()).await;
    create(&log, "t", 1).await;
    let tp = TopicPartition::new("t", 0);
    let input = large_records("t", 0, 1_500);
    let positions = log.append(input.clone()).await.expect("append");
    assert_eq!(
        positions.iter().map(|p| p.offset).collect::<Vec<_>>(),
        (0..1_500).collect::<Vec<u64>>()
    );
    let expected: Vec<String> = input
        .iter()
        .map(|r| String::from_utf8(r.value.to_vec()).expect("utf8"))
        .collect();
    assert_eq!(values(&read_all(&log, &tp).await), expected);
    log.close().await;
    drop(log);
    let log = open(cfg).await;
    assert_eq!(values(&read_all(&log, &tp).await), expected);
}

/// A group that failed after part of it was written out (the segment roll fails past
/// 4 MiB) leaves nothing: the written part is truncated, nothing is acknowledged or
/// visible, and the partition goes on at the same offset once the fault is gone.
#[tokio::test]
async fn a_failed_group_truncates_what_it_wrote_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 5 * 1024 * 1024;
    let log = open(cfg.clone()).await;
    create(&log, "t", 1).await;
    let tp = TopicPartition::new("t", 0);
    let (segment, acked_len) = append_first(&log, dir.path()).await;

    let blocked = BlockedPartition::new(dir.path());
    // ~6 MB: 4 MiB are written out, then the segment is full and the roll fails.
    let failed = log.append(large_records("t", 0, 1_000)).await;
    let error = failed.expect_err("the roll must fail");
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(log.offsets(&tp).await.expect("offsets").end, 1);
    assert_eq!(values(&read_all(&log, &tp).await), ["value-0"]);
    let moved_segment = blocked.moved.join(segment.file_name().expect("file name"));
    assert_eq!(
        std::fs::metadata(&moved_segment).expect("metadata").len(),
        acked_len,
        "the bytes written out before the failure are truncated"
    );

    blocked.restore();
    let positions = log
        .append(vec![record("t", 0, "value-1")])
        .await
        .expect("append after repair");
    assert_eq!(positions[0].offset, 1);
    log.close().await;
    drop(log);
    let log = open(cfg).await;
    assert_eq!(values(&read_all(&log, &tp).await), ["value-0", "value-1"]);
}
