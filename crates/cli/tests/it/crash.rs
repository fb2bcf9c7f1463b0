//! Crash safety: every event acknowledged before a `kill -9` of `clickstream up` is in the
//! log after restart, exactly once.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clickstream_event::{INVALID_TOPIC, RAW_TOPIC};
use clickstream_log::{EmbeddedLog, EmbeddedLogConfig, EventLog};
use rand::Rng;
use serde_json::Value;

use crate::common::{read_topic, seed_events};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn wait_until_up(http: &reqwest::Client, base: &str, child: &mut tokio::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = http.get(format!("{base}/ping")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("clickstream up exited early: {status}");
        }
        assert!(Instant::now() < deadline, "clickstream up did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_of_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let events = seed_events();
    let mut rng = rand::rng();

    for round in 0..4u64 {
        let api_port = free_port();
        let base = format!("http://127.0.0.1:{api_port}");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_clickstream"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["up", "--api-port", &api_port.to_string()])
            .args(["--registry-port", &free_port().to_string()])
            .env("CLICKSTREAM_INGEST__HOST", "127.0.0.1")
            .env("CLICKSTREAM_REGISTRY__HOST", "127.0.0.1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn clickstream up");
        wait_until_up(&http, &base, &mut child).await;

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
        child.kill().await.expect("SIGKILL");
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
