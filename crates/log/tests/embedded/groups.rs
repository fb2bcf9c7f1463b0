//! Consumer groups: committed offsets and membership.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_log::{
    ConsumerEvent, EventLog, GroupConsumer, LogError, LogRecord, TopicPartition,
};

use crate::common::{config, create, open, record, wait_until};

fn tps(topic: &str, partitions: &[u32]) -> Vec<TopicPartition> {
    partitions
        .iter()
        .map(|&p| TopicPartition::new(topic, p))
        .collect()
}

/// Polls until an event other than `Records`/`Idle` arrives, collecting records meanwhile.
async fn next_assignment_event(
    consumer: &mut dyn GroupConsumer,
    seen: &mut Vec<LogRecord>,
) -> ConsumerEvent {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match consumer
            .poll(100, Duration::from_millis(50))
            .await
            .expect("poll")
        {
            ConsumerEvent::Records(records) => seen.extend(records),
            ConsumerEvent::Idle => {}
            event => return event,
        }
    }
    panic!("no assignment event within 10 s");
}

/// Polls until `n` records were returned.
async fn poll_records(consumer: &mut dyn GroupConsumer, n: usize) -> Vec<LogRecord> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        match consumer
            .poll(100, Duration::from_millis(50))
            .await
            .expect("poll")
        {
            ConsumerEvent::Records(records) => out.extend(records),
            ConsumerEvent::Idle => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

/// Polls until a poll comes back idle: everything already appended has been returned.
async fn drain(consumer: &mut dyn GroupConsumer) -> Vec<LogRecord> {
    let mut out = Vec::new();
    loop {
        match consumer
            .poll(100, Duration::from_millis(100))
            .await
            .expect("poll")
        {
            ConsumerEvent::Records(records) => out.extend(records),
            ConsumerEvent::Idle => return out,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn committed_offsets_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(config(dir.path())).await;
        create(&log, "t", 3).await;
        log.commit(
            "g1",
            &[
                (TopicPartition::new("t", 0), 5),
                (TopicPartition::new("t", 2), 7),
            ],
        )
        .await
        .expect("commit");
        log.commit("g1", &[(TopicPartition::new("t", 0), 6)])
            .await
            .expect("commit");
        let mut member = log.subscribe("g2", &["t".into()]).await.expect("subscribe");
        member
            .commit(&[(TopicPartition::new("t", 1), 3)])
            .await
            .expect("member commit");
        log.close().await;
    }
    let log = open(config(dir.path())).await;
    assert_eq!(
        log.committed("g1", "t").await.expect("committed"),
        BTreeMap::from([(0, 6), (2, 7)])
    );
    assert_eq!(
        log.committed("g2", "t").await.expect("committed"),
        BTreeMap::from([(1, 3)])
    );
    assert!(
        log.committed("unknown", "t")
            .await
            .expect("committed")
            .is_empty()
    );
    assert_eq!(log.groups().await.expect("groups"), ["g1", "g2"]);
    assert!(dir.path().join("groups").join("g1.json").is_file());
}

#[tokio::test]
async fn two_members_split_partitions_and_a_dropped_members_partitions_move() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(config(dir.path())).await;
    create(&log, "t", 6).await;
    for p in 0..6 {
        let batch = (0..4)
            .map(|i| record("t", p, &format!("p{p}-{i}")))
            .collect();
        log.append(batch).await.expect("append");
    }
    // Partition 1 was consumed up to offset 2 by an earlier run.
    log.commit("g", &[(TopicPartition::new("t", 1), 2)])
        .await
        .expect("commit");

    let topics = ["t".to_owned()];
    let mut first = log.subscribe("g", &topics).await.expect("subscribe");
    let mut seen_first = Vec::new();
    assert_eq!(
        next_assignment_event(first.as_mut(), &mut seen_first).await,
        ConsumerEvent::Assigned(tps("t", &[0, 1, 2, 3, 4, 5]))
    );

    let mut second = log.subscribe("g", &topics).await.expect("subscribe");
    let mut seen_second = Vec::new();
    assert_eq!(
        next_assignment_event(second.as_mut(), &mut seen_second).await,
        ConsumerEvent::Assigned(tps("t", &[1, 3, 5]))
    );
    // The first member learns it lost half its partitions before any other record.
    let event = first.poll(100, Duration::from_secs(5)).await.expect("poll");
    assert_eq!(event, ConsumerEvent::Revoked(tps("t", &[1, 3, 5])));
    assert_eq!(first.assignment(), tps("t", &[0, 2, 4]));
    assert_eq!(second.assignment(), tps("t", &[1, 3, 5]));

    // The second member reads its partitions: partition 1 from the committed offset.
    let records = poll_records(second.as_mut(), 10).await;
    let mut got: Vec<(u32, u64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
    got.sort_unstable();
    let mut want: Vec<(u32, u64)> = vec![(1, 2), (1, 3)];
    want.extend([3, 5].iter().flat_map(|&p| (0..4).map(move |o| (p, o))));
    want.sort_unstable();
    assert_eq!(got, want);
    second
        .commit(&[(TopicPartition::new("t", 3), 4)])
        .await
        .expect("commit");

    // Dropping the second member hands its partitions back to the first.
    drop(second);
    let mut seen = Vec::new();
    assert_eq!(
        next_assignment_event(first.as_mut(), &mut seen).await,
        ConsumerEvent::Assigned(tps("t", &[1, 3, 5]))
    );
    assert!(seen.iter().all(|r| [0, 2, 4].contains(&r.partition)));
    assert_eq!(first.assignment(), tps("t", &[0, 1, 2, 3, 4, 5]));
    // Partition 3 resumes at the offset the second member committed (nothing left), partition
    // 1 at the group's committed 2, partition 5 from the start.
    let records = drain(first.as_mut()).await;
    let from_moved: Vec<(u32, u64)> = records
        .iter()
        .filter(|r| [1, 3, 5].contains(&r.partition))
        .map(|r| (r.partition, r.offset))
        .collect();
    assert!(from_moved.contains(&(1, 2)) && !from_moved.contains(&(1, 1)));
    assert!(!from_moved.iter().any(|&(p, _)| p == 3));
    assert_eq!(from_moved.iter().filter(|&&(p, _)| p == 5).count(), 4);
}

#[tokio::test]
async fn poll_returns_idle_after_the_timeout_without_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(config(dir.path())).await;
    create(&log, "t", 2).await;
    let mut member = log.subscribe("g", &["t".into()]).await.expect("subscribe");
    let first = member
        .poll(10, Duration::from_millis(10))
        .await
        .expect("poll");
    assert_eq!(first, ConsumerEvent::Assigned(tps("t", &[0, 1])));
    let started = Instant::now();
    let idle = member
        .poll(10, Duration::from_millis(200))
        .await
        .expect("poll");
    assert_eq!(idle, ConsumerEvent::Idle);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_record_wakes_a_waiting_poll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(open(config(dir.path())).await);
    create(log.as_ref(), "t", 3).await;
    let mut member = log.subscribe("g", &["t".into()]).await.expect("subscribe");
    assert!(matches!(
        member.poll(10, Duration::ZERO).await.expect("poll"),
        ConsumerEvent::Assigned(_)
    ));
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let event = member
            .poll(10, Duration::from_secs(30))
            .await
            .expect("poll");
        (event, started.elapsed())
    });
    // The poll is parked before the record comes: the wake-up is what is tested.
    wait_until("the poll waits", || log.parked_polls() == 1).await;
    log.append(vec![record("t", 2, "wake")])
        .await
        .expect("append");
    let (event, waited) = waiting.await.expect("join");
    let ConsumerEvent::Records(records) = event else {
        panic!("expected records, got {event:?}");
    };
    assert_eq!(records[0].value.as_ref(), b"wake");
    assert!(waited < Duration::from_secs(10), "woke after {waited:?}");
}

#[tokio::test]
async fn seek_moves_an_assigned_partition_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(config(dir.path())).await;
    create(&log, "t", 1).await;
    let batch = (0..5).map(|i| record("t", 0, &format!("v{i}"))).collect();
    log.append(batch).await.expect("append");
    let mut member = log.subscribe("g", &["t".into()]).await.expect("subscribe");
    let tp = TopicPartition::new("t", 0);
    assert!(
        matches!(member.seek(&tp, 3), Err(LogError::InvalidRequest(_))),
        "not assigned yet"
    );
    assert!(matches!(
        member.poll(10, Duration::ZERO).await.expect("poll"),
        ConsumerEvent::Assigned(_)
    ));
    member.seek(&tp, 3).expect("seek");
    let records = poll_records(member.as_mut(), 2).await;
    assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), [3, 4]);
    assert!(matches!(
        member.seek(&TopicPartition::new("t", 9), 0),
        Err(LogError::InvalidRequest(_))
    ));
    assert!(matches!(
        log.subscribe("g", &["missing".into()]).await,
        Err(LogError::UnknownTopic(_))
    ));
}
