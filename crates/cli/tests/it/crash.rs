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

use crate::backends::{Backend, LakeBackend, LogBackend, free_port};
use crate::common::{read_topic, seed_events};

async fn wait_until_up(http: &reqwest::Client, base: &str, child: &mut tokio::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = http.get(format!("{base}/ping")).send().await
            && response.status().is_success()
        {
            return;
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
            .args([
                "--registry-port",
                &free_port().to_string(),
                "--ui-port",
                "0",
            ])
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

fn spawn_up(dir: &std::path::Path, api_port: u16, backend: &Backend) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .envs(backend.env())
        .arg("--data-dir")
        .arg(dir)
        .args(["up", "--api-port", &api_port.to_string()])
        .args([
            "--registry-port",
            &free_port().to_string(),
            "--ui-port",
            "0",
        ])
        .env("CLICKSTREAM_INGEST__HOST", "127.0.0.1")
        .env("CLICKSTREAM_REGISTRY__HOST", "127.0.0.1")
        // Short flushes: many commits, so kills land in every phase of a commit.
        .env("CLICKSTREAM_LAKE__FLUSH_INTERVAL_MS", "50")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn clickstream up")
}

async fn count_events(http: &reqwest::Client, base: &str) -> Option<(i64, i64)> {
    let answer: Value = http
        .post(format!("{base}/api/sql"))
        .json(&serde_json::json!({"sql": "SELECT count(*) AS n, count(DISTINCT id) AS d FROM events"}))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let row = &answer["rows"][0];
    Some((row["n"].as_i64()?, row["d"].as_i64()?))
}

/// The processor dies with the whole process at random moments (mid-batch, mid-commit)
/// while events keep coming; at the end the lake holds every event of the log exactly
/// once, and every acknowledged event is among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_across_kill_9_embedded_log_file_lake() {
    lake_holds_every_acknowledged_event_exactly_once_across_kill_9(Backend::new(
        LogBackend::Embedded,
        LakeBackend::File,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_across_kill_9_embedded_log_s3_lake() {
    lake_holds_every_acknowledged_event_exactly_once_across_kill_9(Backend::new(
        LogBackend::Embedded,
        LakeBackend::s3(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_across_kill_9_kafka_log_file_lake() {
    lake_holds_every_acknowledged_event_exactly_once_across_kill_9(Backend::new(
        LogBackend::kafka(),
        LakeBackend::File,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_across_kill_9_kafka_log_s3_lake() {
    lake_holds_every_acknowledged_event_exactly_once_across_kill_9(Backend::new(
        LogBackend::kafka(),
        LakeBackend::s3(),
    ))
    .await;
}

async fn lake_holds_every_acknowledged_event_exactly_once_across_kill_9(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();
    let acked_ids: Arc<Mutex<Vec<i64>>> = Arc::default();
    let template = seed_events()[0].clone();
    let mut rng = rand::rng();
    let mut next_id = Arc::new(std::sync::atomic::AtomicI64::new(1));

    for _round in 0..5 {
        let api_port = free_port();
        let base = format!("http://127.0.0.1:{api_port}");
        let mut child = spawn_up(dir.path(), api_port, &backend);
        wait_until_up(&http, &base, &mut child).await;
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let (http, url, acked_ids, template) = (
                http.clone(),
                format!("{base}/collect"),
                acked_ids.clone(),
                template.clone(),
            );
            let next_id = next_id.clone();
            senders.spawn(async move {
                loop {
                    let first = next_id.fetch_add(25, std::sync::atomic::Ordering::Relaxed);
                    let batch: Vec<Value> = (first..first + 25)
                        .map(|id| {
                            let mut event = template.clone();
                            event["id"] = id.into();
                            event
                        })
                        .collect();
                    let sent = http.post(&url).json(&batch).send().await;
                    let Ok(response) = sent else { return };
                    if !response.status().is_success() {
                        return;
                    }
                    acked_ids.lock().expect("lock").extend(first..first + 25);
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(400..2000))).await;
        child.kill().await.expect("SIGKILL");
        while senders.join_next().await.is_some() {}
    }
    let _ = &mut next_id;

    // A last, clean run drains the log into the lake.
    let acked = acked_ids.lock().expect("lock").clone();
    assert!(
        acked.len() > 500,
        "only {} events acknowledged",
        acked.len()
    );
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let mut child = spawn_up(dir.path(), api_port, &backend);
    wait_until_up(&http, &base, &mut child).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stable_since: Option<(i64, Instant)> = None;
    loop {
        let counted = count_events(&http, &base).await;
        if let Some((n, _)) = counted {
            match stable_since {
                Some((m, since)) if m == n && n >= acked.len() as i64 => {
                    if since.elapsed() > Duration::from_secs(2) {
                        break;
                    }
                }
                _ => stable_since = Some((n, Instant::now())),
            }
        }
        assert!(
            Instant::now() < deadline,
            "lake did not settle: {counted:?}, {} acked",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows: Value = http
        .post(format!("{base}/api/sql"))
        .json(&serde_json::json!({"sql": "SELECT id FROM events"}))
        .send()
        .await
        .expect("sql")
        .json()
        .await
        .expect("json");
    child.kill().await.expect("stop");

    let ids: Vec<i64> = rows["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    let distinct: std::collections::HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), distinct.len(), "an event landed twice");
    let missing: Vec<i64> = acked
        .iter()
        .filter(|id| !distinct.contains(id))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    // And the lake holds exactly what the log holds: every raw record once.
    let log = backend.open_log(dir.path()).await;
    let raw = read_topic(log.as_ref(), RAW_TOPIC).await;
    assert_eq!(raw.len(), ids.len(), "lake rows vs raw log records");
}
