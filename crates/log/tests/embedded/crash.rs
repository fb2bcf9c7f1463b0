//! The point of the log: a record acknowledged by `append` survives `kill -9`.
//!
//! The parent test re-executes this test binary to run [`crash_child`], which appends in a
//! loop and prints every acknowledged batch. The parent kills it with SIGKILL at a random
//! moment, reopens the log and checks that every acknowledged record is there, intact.
//! Several rounds run on the same directory, so each child also recovers from the previous
//! kill.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clickstream_log::{
    EmbeddedLog, EmbeddedLogConfig, EventLog, FsyncPolicy, Header, OutgoingRecord, TopicPartition,
    TopicSpec,
};

const CHILD_DIR_ENV: &str = "CLICKSTREAM_LOG_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "CLICKSTREAM_LOG_CRASH_ROUND";
const TOPIC: &str = "crash";
const PARTITIONS: u32 = 4;
const APPENDERS: usize = 4;
const BATCH: usize = 20;

fn crash_config(dir: &Path) -> EmbeddedLogConfig {
    EmbeddedLogConfig {
        fsync: FsyncPolicy::Always,
        // Small segments, so kills also land around segment rolls.
        segment_bytes: 64 * 1024,
        ..EmbeddedLogConfig::with_dir(dir)
    }
}

fn value_for(key: &str) -> String {
    format!("value-of-{key}-{}", "p".repeat(key.len() * 7 % 200))
}

fn random_below(n: u64) -> u64 {
    RandomState::new().hash_one(Instant::now()) % n
}

/// Appends until killed; prints `ACK <key>=<partition>:<offset> ...` for every acknowledged
/// batch. Runs in the child process: the test binary re-executed by the parent test.
fn crash_child(dir: String) {
    let round = std::env::var(CHILD_ROUND_ENV).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let log = Arc::new(
            EmbeddedLog::open(crash_config(Path::new(&dir)))
                .await
                .expect("open"),
        );
        log.create_topics(&[TopicSpec {
            name: TOPIC.into(),
            partitions: PARTITIONS,
            replication: 1,
        }])
        .await
        .expect("create topic");
        let mut tasks = Vec::new();
        for task in 0..APPENDERS {
            let log = log.clone();
            let round = round.clone();
            tasks.push(tokio::spawn(async move {
                for batch in 0u64.. {
                    let keys: Vec<String> = (0..BATCH)
                        .map(|i| format!("r{round}-t{task}-b{batch}-i{i}"))
                        .collect();
                    let records = keys
                        .iter()
                        .map(|key| OutgoingRecord {
                            topic: TOPIC.into(),
                            partition: None,
                            key: Some(key.clone().into()),
                            value: value_for(key).into(),
                            headers: vec![Header::new("key", key.clone())],
                            timestamp_ms: None,
                        })
                        .collect();
                    let Ok(positions) = log.append(records).await else {
                        continue;
                    };
                    let mut line = String::from("ACK");
                    for (key, pos) in keys.iter().zip(&positions) {
                        line.push_str(&format!(" {key}={}:{}", pos.partition, pos.offset));
                    }
                    line.push('\n');
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(line.as_bytes()).expect("stdout");
                    stdout.flush().expect("flush");
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
}

/// One acknowledged record: key, partition, offset.
type Ack = (String, u32, u64);

fn parse_ack(line: &str) -> Vec<Ack> {
    line.trim_end()
        .split(' ')
        .skip(1)
        .map(|item| {
            let (key, pos) = item.split_once('=').expect("key=pos");
            let (p, o) = pos.split_once(':').expect("p:o");
            (
                key.to_owned(),
                p.parse().expect("partition"),
                o.parse().expect("offset"),
            )
        })
        .collect()
}

/// Runs one child until it has acknowledged some batches, then SIGKILLs it at a random
/// moment; returns every record it acknowledged.
fn run_and_kill(dir: &Path, round: u32) -> Vec<Ack> {
    let exe = std::env::current_exe().expect("current exe");
    let stderr_path = dir.with_extension(format!("child-{round}.stderr"));
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash::kill_9_never_loses_acknowledged_records",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        // A line without its newline was cut by the kill: its batch may not be complete.
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.ends_with('\n') {
            if line.starts_with("ACK ") && lines_tx.send(line.clone()).is_err() {
                break;
            }
            line.clear();
        }
    });

    let kill_after = 10 + random_below(150) as usize;
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.len() < kill_after {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => acks.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!(
                    "child acknowledged only {} batches; stderr:\n{log}",
                    acks.len()
                );
            }
        }
    }
    std::thread::sleep(Duration::from_millis(random_below(20)));
    child.kill().expect("SIGKILL child");
    child.wait().expect("reap child");
    reader.join().expect("reader thread");
    acks.extend(lines_rx.try_iter());
    let _ = std::fs::remove_file(&stderr_path);
    acks.iter().flat_map(|line| parse_ack(line)).collect()
}

async fn verify(dir: &Path, acked: &[Ack]) {
    let log = EmbeddedLog::open(crash_config(dir))
        .await
        .expect("reopen after kill");
    for (key, partition, offset) in acked {
        let tp = TopicPartition::new(TOPIC, *partition);
        let read = log
            .read(&tp, *offset, 1, Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("acknowledged {key} at {tp}@{offset} is gone: {e}"));
        let record = read
            .first()
            .unwrap_or_else(|| panic!("acknowledged {key} at {tp}@{offset} is missing"));
        assert_eq!(record.offset, *offset);
        assert_eq!(
            record.key.as_deref(),
            Some(key.as_bytes()),
            "at {tp}@{offset}"
        );
        assert_eq!(
            record.value.as_ref(),
            value_for(key).as_bytes(),
            "value of {key}"
        );
        assert_eq!(record.header("key"), Some(key.as_bytes()));
    }
    log.close().await;
}

/// The parent: runs a child round by round, killing each at a random moment. The same
/// test function is the child when re-executed with `CHILD_DIR_ENV` set.
#[test]
fn kill_9_never_loses_acknowledged_records() {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        crash_child(dir);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(kill_rounds());
}

async fn kill_rounds() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("log");
    let mut acked: Vec<Ack> = Vec::new();
    for round in 0..5 {
        let dir_for_child = dir.clone();
        let round_acks = tokio::task::spawn_blocking(move || run_and_kill(&dir_for_child, round))
            .await
            .expect("child round");
        assert!(!round_acks.is_empty());
        acked.extend(round_acks);
        // Every record acknowledged so far, in this round or before, must be there.
        verify(&dir, &acked).await;
    }
    let mut positions: Vec<(u32, u64)> = acked.iter().map(|(_, p, o)| (*p, *o)).collect();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(
        positions.len(),
        acked.len(),
        "two acknowledged records share a position"
    );
}
