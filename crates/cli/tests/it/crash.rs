//! Crash safety of the log: every event acknowledged before a `kill -9` of `clickstream
//! up` is in the log after restart, exactly once. (That it then lands in the lake exactly
//! once, on every backend, is the fault matrix's `kill -9 of up`: `faults/kill.rs`.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clickstream_event::{INVALID_TOPIC, RAW_TOPIC};
use clickstream_log::{EmbeddedLog, EmbeddedLogConfig, EventLog};
use rand::Rng;
use serde_json::Value;

use crate::common::{read_topic, seed_events};
use crate::faults::child::{Child, UP_ON_FREE_PORTS, field};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_of_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let events = seed_events();
    let mut rng = rand::rng();

    for round in 0..4u64 {
        let mut child = Child::spawn("up", dir.path(), &UP_ON_FREE_PORTS, []);
        let line = child.wait_for_line("clickstream is up").await;
        let base = field(&line, "ingest").to_string();
        let mut senders = tokio::task::JoinSet::new();
        for sender in 0..4u64 {
            let http = http.clone();
            let url = format!("{base}/collect");
            let acked = acked.clone();
            let mut batch: Vec<Value> = events.iter().cycle().take(40).cloned().collect();
            senders.spawn(async move {
                for i in 0u64.. {
                    for (j, event) in batch.iter_mut().enumerate() {
                        if event["id"].is_i64() {
                            event["id"] =
                                (((round * 10 + sender) << 32) + i * 100 + j as u64).into();
                        }
                    }
                    let response = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .json(&batch)
                        .send()
                        .await;
                    let Ok(response) = response else { return };
                    let Ok(answer) = response.json::<Value>().await else {
                        return;
                    };
                    if let (Some(id), Some(n)) = (
                        answer["correlation_id"].as_str(),
                        answer["processed_count"].as_u64(),
                    ) {
                        acked.lock().expect("lock").push((id.to_string(), n));
                    }
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        child.kill().await;
        while senders.join_next().await.is_some() {}
    }

    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 20,
        "too few acknowledged batches ({}) to mean anything",
        acked.len()
    );
    let log = EmbeddedLog::open(EmbeddedLogConfig::with_dir(dir.path().join("log")))
        .await
        .expect("log reopens after kill -9");
    let mut found: HashMap<Vec<u8>, u64> = HashMap::new();
    for topic in [RAW_TOPIC, INVALID_TOPIC] {
        for record in read_topic(&log as &dyn EventLog, topic).await {
            let id = record
                .header("X-Correlation-ID")
                .expect("correlation header");
            *found.entry(id.to_vec()).or_default() += 1;
        }
    }
    for (correlation_id, n) in &acked {
        assert_eq!(
            found.get(correlation_id.as_bytes()).copied().unwrap_or(0),
            *n,
            "batch {correlation_id} was acknowledged with {n} events"
        );
    }
    log.close().await;
}
