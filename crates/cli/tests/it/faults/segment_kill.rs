//! kill -9 of `up` while Segment calls flow, sent the way Segment's libraries send them: a
//! batch that got no answer is sent again with the same `messageId`s until one comes. After
//! the last kill a clean run catches up, and every acknowledged call is in `segment_events`
//! exactly once, every identity link once, and no call more than once. Now and then a call
//! Segment's rules refuse is sent (once: a refused call is not retried, as the libraries
//! do not retry a 400); each one answered is in `segment_invalid_events` exactly once.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use crate::eventually::eventually;
use crate::faults::child::{Child, UP_ON_FREE_PORTS, field};
use crate::faults::{http_sql, report};

/// Kills per test.
const ROUNDS: usize = 8;
/// Calls per batch; every third is an `identify` (an identity link).
const BATCH: u64 = 20;

/// A library's batch: `track`s and `identify`s with message ids `k-<first + i>`.
fn batch(first: u64) -> Value {
    let calls: Vec<Value> = (first..first + BATCH)
        .map(|n| {
            let anonymous = format!("anon-{}", n % 50);
            if n % 3 == 0 {
                json!({"type": "identify", "messageId": format!("k-{n}"), "anonymousId": anonymous,
                       "userId": format!("user-{}", n % 50), "traits": {"n": n}})
            } else {
                json!({"type": "track", "messageId": format!("k-{n}"), "anonymousId": anonymous,
                       "event": "Step", "properties": {"n": n}})
            }
        })
        .collect();
    json!({ "batch": calls })
}

/// What the sender was told.
#[derive(Debug, Default)]
struct Told {
    /// The first message number of every batch answered 200.
    batches: Vec<u64>,
    /// The numbers of the refused calls answered 400.
    refused: Vec<u64>,
}

/// Posts batches to whatever `url` says until stopped, retrying each until answered 200
/// (same message ids), and every fifth turn one refused call (no ids), sent once.
fn start_sender(url: Arc<Mutex<String>>, stop: Arc<Mutex<bool>>) -> tokio::task::JoinHandle<Told> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let (mut told, mut next) = (Told::default(), 0u64);
        for turn in 0u64.. {
            if *stop.lock().expect("stop") {
                break;
            }
            let target = url.lock().expect("url").clone();
            if turn % 5 == 4 {
                let refused = json!({"batch": [{"type": "track", "event": "x", "messageId": format!("bad-{turn}")}]});
                let sent = http.post(&target).json(&refused).send().await;
                if sent.is_ok_and(|answer| answer.status() == 400) {
                    told.refused.push(turn);
                }
                continue;
            }
            let sent = http.post(&target).json(&batch(next)).send().await;
            match sent {
                Ok(answer) if answer.status().is_success() => {
                    told.batches.push(next);
                    next += BATCH;
                }
                // No answer, or not yet one we can count on: the same batch again.
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        told
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_segment_calls_land_once_across_kill_9_and_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![(
        "CLICKSTREAM_LAKE__FLUSH_INTERVAL_MS".to_string(),
        "50".to_string(),
    )];
    let url = Arc::new(Mutex::new(String::from("http://127.0.0.1:9/v1/batch")));
    let stop = Arc::new(Mutex::new(false));
    let sender = start_sender(url.clone(), stop.clone());
    for _ in 0..ROUNDS {
        let mut child = Child::spawn("up", dir.path(), &UP_ON_FREE_PORTS, env.clone());
        let line = child.wait_for_line("clickstream is up").await;
        *url.lock().expect("url") = format!("{}/v1/batch", field(&line, "ingest"));
        let pause = rand::rng().random_range(200..900);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().await;
    }
    *stop.lock().expect("stop") = true;
    let told = sender.await.expect("sender");
    assert!(
        told.batches.len() >= ROUNDS,
        "too few acknowledged batches: {}",
        told.batches.len()
    );
    let expected: HashSet<String> = told
        .batches
        .iter()
        .flat_map(|first| (*first..first + BATCH).map(|n| format!("k-{n}")))
        .collect();

    let mut child = Child::spawn("up", dir.path(), &UP_ON_FREE_PORTS, env.clone());
    let line = child.wait_for_line("clickstream is up").await;
    let base = field(&line, "ingest").to_string();
    let landed = eventually(
        "every acknowledged call lands",
        Duration::from_secs(180),
        || async {
            let rows = http_sql(&base, "SELECT message_id FROM segment_events").await;
            let ids: Vec<String> = rows
                .iter()
                .filter_map(|r| r["message_id"].as_str().map(str::to_owned))
                .collect();
            let missing = expected.iter().filter(|id| !ids.contains(id)).count();
            crate::eventually::check(missing == 0, || format!("{missing} missing"))?;
            let kept = http_sql(&base, "SELECT message_id FROM segment_invalid_events").await;
            let refused_missing = told
                .refused
                .iter()
                .filter(|turn| {
                    !kept
                        .iter()
                        .any(|r| r["message_id"] == format!("bad-{turn}").as_str())
                })
                .count();
            crate::eventually::check(refused_missing == 0, || {
                format!("{refused_missing} refused calls not kept yet")
            })?;
            Ok(ids)
        },
    )
    .await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &landed {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "calls landed more than once: {twice:?}");
    let links = http_sql(
        &base,
        "SELECT message_id, count(*) AS n FROM identities GROUP BY message_id HAVING count(*) > 1",
    )
    .await;
    assert!(
        links.is_empty(),
        "identity links landed more than once: {links:?}"
    );
    let linked = http_sql(&base, "SELECT count(*) AS n FROM identities").await;
    let identifies = landed
        .iter()
        .filter(|id| id[2..].parse::<u64>().is_ok_and(|n| n % 3 == 0))
        .count();
    assert_eq!(linked[0]["n"].as_u64(), Some(identifies as u64));
    let kept = http_sql(
        &base,
        "SELECT message_id, count(*) AS n FROM segment_invalid_events GROUP BY message_id",
    )
    .await;
    let invalid_wrong = told
        .refused
        .iter()
        .filter(|turn| {
            let id = format!("bad-{turn}");
            !kept
                .iter()
                .any(|row| row["message_id"] == id.as_str() && row["n"] == 1)
        })
        .count();
    child.kill().await;
    report::record(
        "kill -9 of up, Segment calls retried",
        "embedded, file",
        ROUNDS,
        crate::faults::ledger::Outcome {
            acked: expected.len(),
            lost: 0,
            duplicated: twice.len(),
            invalid_acked: told.refused.len(),
            invalid_wrong,
        },
    );
}
