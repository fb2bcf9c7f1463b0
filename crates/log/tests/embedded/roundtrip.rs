//! Appending and reading back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clickstream_log::{
    EventLog, Header, LogError, OutgoingRecord, TopicPartition, TopicSpec, partition_for_key,
};

use crate::common::{config, create, open, read_all, record, values, wait_until};

#[tokio::test]
async fn append_and_read_round_trip_across_topics_and_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(config(dir.path())).await;
    create(&log, "alpha", 3).await;
    create(&log, "beta", 2).await;

    let before = clickstream_log_now();
    let mut input = vec![
        record("alpha", 2, "a0"),
        record("beta", 1, "b0"),
        OutgoingRecord {
            topic: "alpha".into(),
            partition: None,
            key: Some(Bytes::from_static(b"user-42")),
            value: Bytes::from_static(b"keyed"),
            headers: vec![Header::new("h1", "v1"), Header::new("h2", Bytes::new())],
            timestamp_ms: None,
        },
        record("alpha", 2, "a1"),
        OutgoingRecord {
            topic: "beta".into(),
            partition: None,
            key: None,
            value: Bytes::from_static(b"no key, no headers"),
            headers: Vec::new(),
            timestamp_ms: Some(-1),
        },
    ];
    input.push(record("alpha", 2, "a2"));
    let positions = log.append(input.clone()).await.expect("append");
    assert_eq!(positions.len(), input.len());

    let keyed_partition = partition_for_key(b"user-42", 3);
    assert_eq!(positions[2].partition, keyed_partition);
    // Offsets are consecutive per partition, in input order.
    assert_eq!((positions[0].partition, positions[0].offset), (2, 0));
    assert_eq!(
        (positions[3].partition, positions[3].offset),
        (2, u64::from(keyed_partition == 2) + 1)
    );
    assert_eq!(positions[5].offset, positions[3].offset + 1);
    assert_eq!((positions[1].partition, positions[1].offset), (1, 0));

    for (rec, pos) in input.iter().zip(&positions) {
        let tp = TopicPartition::new(rec.topic.clone(), pos.partition);
        let read = log
            .read(&tp, pos.offset, 1, Duration::ZERO)
            .await
            .expect("read");
        let got = &read[0];
        assert_eq!(got.offset, pos.offset);
        assert_eq!(
            (got.topic.as_str(), got.partition),
            (rec.topic.as_ref(), pos.partition)
        );
        assert_eq!(got.key, rec.key);
        assert_eq!(got.value, rec.value);
        assert_eq!(got.headers, rec.headers);
        match rec.timestamp_ms {
            Some(ts) => assert_eq!(got.timestamp_ms, ts),
            None => {
                assert!(got.timestamp_ms >= before && got.timestamp_ms <= clickstream_log_now())
            }
        }
    }
    let alpha2 = read_all(&log, &TopicPartition::new("alpha", 2)).await;
    let expected: Vec<u64> = (0..alpha2.len() as u64).collect();
    assert_eq!(
        alpha2.iter().map(|r| r.offset).collect::<Vec<_>>(),
        expected
    );

    let topics = log.topics().await.expect("topics");
    assert_eq!(
        topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["alpha", "beta"]
    );
    assert_eq!(topics[0].partitions.len(), 3);
    assert!(topics[0].partitions[2].size_bytes > 0);
    assert_eq!(topics[0].partitions[2].offsets.end, alpha2.len() as u64);
    assert_eq!(log.partition_count("beta").await.expect("count"), 2);
    log.close().await;
}

fn clickstream_log_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[tokio::test]
async fn keyless_records_go_round_robin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(config(dir.path())).await;
    create(&log, "t", 4).await;
    let records = (0..8)
        .map(|i| OutgoingRecord {
            topic: "t".into(),
            partition: None,
            key: None,
            value: format!("v{i}").into(),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect();
    let positions = log.append(records).await.expect("append");
    let mut per_partition = BTreeMap::new();
    for p in &positions {
        *per_partition.entry(p.partition).or_insert(0) += 1;
    }
    assert_eq!(
        per_partition,
        BTreeMap::from([(0, 2), (1, 2), (2, 2), (3, 2)])
    );
}

#[tokio::test]
async fn invalid_appends_are_rejected_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.max_record_bytes = 1024;
    let log = open(cfg).await;
    create(&log, "t", 2).await;

    let unknown_topic = log.append(vec![record("nope", 0, "x")]).await;
    assert!(
        matches!(unknown_topic, Err(LogError::UnknownTopic(_))),
        "{unknown_topic:?}"
    );
    let unknown_partition = log
        .append(vec![record("t", 0, "ok"), record("t", 7, "x")])
        .await;
    assert!(matches!(
        unknown_partition,
        Err(LogError::UnknownPartition { partition: 7, .. })
    ));
    let mut big = record("t", 0, "x");
    big.value = vec![0u8; 2000].into();
    let too_large = log.append(vec![record("t", 0, "ok"), big]).await;
    assert!(
        matches!(too_large, Err(LogError::RecordTooLarge { max: 1024, .. })),
        "{too_large:?}"
    );
    assert!(!too_large.expect_err("error").is_transient());
    assert_eq!(
        log.offsets(&TopicPartition::new("t", 0))
            .await
            .expect("offsets")
            .end,
        0
    );

    for bad in ["", "a/b", "..", "white space"] {
        let spec = TopicSpec {
            name: bad.into(),
            partitions: 1,
            replication: 1,
        };
        let result = log.create_topics(&[spec]).await;
        assert!(
            matches!(result, Err(LogError::InvalidRequest(_))),
            "{bad:?}: {result:?}"
        );
    }
    let zero = TopicSpec {
        name: "zero".into(),
        partitions: 0,
        replication: 1,
    };
    assert!(matches!(
        log.create_topics(&[zero]).await,
        Err(LogError::InvalidRequest(_))
    ));
    assert!(matches!(
        log.commit("bad/group", &[]).await,
        Err(LogError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn create_topics_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(config(dir.path())).await;
    create(&log, "t", 3).await;
    log.append(vec![record("t", 1, "kept")])
        .await
        .expect("append");
    create(&log, "t", 8).await;
    assert_eq!(log.partition_count("t").await.expect("count"), 3);
    assert_eq!(
        values(&read_all(&log, &TopicPartition::new("t", 1)).await),
        ["kept"]
    );
}

#[tokio::test]
async fn read_at_the_end_waits_for_a_new_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(open(config(dir.path())).await);
    create(log.as_ref(), "t", 1).await;
    let tp = TopicPartition::new("t", 0);

    let started = Instant::now();
    let empty = log
        .read(&tp, 0, 10, Duration::from_millis(100))
        .await
        .expect("read");
    assert!(empty.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(100));

    let reader = {
        let (log, tp) = (log.clone(), tp.clone());
        tokio::spawn(async move { log.read(&tp, 0, 10, Duration::from_secs(30)).await })
    };
    // The reader is parked at the end before the record comes: the wake-up is what is tested.
    wait_until("the reader waits at the end", || {
        log.parked_reads(&tp).expect("partition") == 1
    })
    .await;
    let started = Instant::now();
    log.append(vec![record("t", 0, "wake")])
        .await
        .expect("append");
    let woke = reader.await.expect("join").expect("read");
    assert_eq!(values(&woke), ["wake"]);
    assert_eq!(log.parked_reads(&tp).expect("partition"), 0);
    assert!(started.elapsed() < Duration::from_secs(10));

    let beyond = log.read(&tp, 5, 10, Duration::ZERO).await;
    assert!(matches!(
        beyond,
        Err(LogError::OffsetOutOfRange {
            offset: 5,
            start: 0,
            end: 1,
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_unique_consecutive_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(open(config(dir.path())).await);
    create(log.as_ref(), "t", 4).await;
    let mut tasks = Vec::new();
    for task in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for batch in 0..20 {
                let records: Vec<_> = (0..10)
                    .map(|i| record("t", (task + i) % 4, &format!("{task}-{batch}-{i}")))
                    .collect();
                let names: Vec<String> = records
                    .iter()
                    .map(|r| String::from_utf8_lossy(&r.value).into_owned())
                    .collect();
                let positions = log.append(records).await.expect("append");
                acked.extend(names.into_iter().zip(positions));
            }
            acked
        }));
    }
    let mut expected: BTreeMap<(u32, u64), String> = BTreeMap::new();
    for task in tasks {
        for (name, pos) in task.await.expect("join") {
            assert!(
                expected.insert((pos.partition, pos.offset), name).is_none(),
                "duplicate position"
            );
        }
    }
    assert_eq!(expected.len(), 16 * 20 * 10);
    for p in 0..4 {
        let records = read_all(log.as_ref(), &TopicPartition::new("t", p)).await;
        assert_eq!(records.len(), 800);
        for r in records {
            assert_eq!(expected[&(p, r.offset)], String::from_utf8_lossy(&r.value));
        }
    }
}
