//! SQL cannot starve the pipeline: against `clickstream up` as a child process, a statement
//! past the timeout is cancelled with a clear error and one over the memory limit fails
//! alone, while a concurrent client's `/collect` p99 stays under [`COLLECT_P99_BOUND`] and
//! the pipeline keeps serving. Before the limits, the same statements ran for 40 s (a
//! cross join) and took 1.8 GB of memory (an aggregation) in a debug build.
//!
//! The child's log syncs on an interval rather than per request: this measures what SQL
//! takes from ingest (CPU, memory), and a per-request `fdatasync` on a disk shared with
//! other builds adds latency spikes SQL has no part in.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::eventually::{check, eventually};
use crate::faults::child::{Child, UP_ON_FREE_PORTS, field};

/// The bound on `/collect` p99 while a statement runs.
const COLLECT_P99_BOUND: Duration = Duration::from_millis(50);

const TIMEOUT_MS: u64 = 3000;
const MEMORY_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// A nested loop join that would run for hours (each batch of `b` against the 500 rows of
/// `a`, nothing matching).
const ENDLESS_JOIN: &str =
    "SELECT count(*) AS n FROM range(500) a, range(100000000) b WHERE a.value + b.value = 7";

/// 80 million values in one array: 1.8 GB more resident memory without a limit.
const HUNGRY_AGGREGATE: &str = "SELECT cardinality(array_agg(value)) AS n FROM range(80000000)";

/// One small event per request, as a tracker sends them.
fn event_body(id: u64) -> String {
    json!([{
        "id": id,
        "type": "page_view",
        "event": {
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            "ip": "10.0.0.1",
            "customer_id": 7,
            "timestamp": "2024-06-03T10:00:00Z",
            "page": "/pricing"
        }
    }])
    .to_string()
}

/// A client posting one event at a time to `/collect`, recording each request's latency.
struct CollectProbe {
    samples: Arc<Mutex<Vec<(Instant, Duration)>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl CollectProbe {
    fn start(base: &str) -> CollectProbe {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("{base}/collect");
        let (recorded, stopped) = (samples.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sent = 0;
            while !stopped.load(Ordering::Relaxed) {
                let started = Instant::now();
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(event_body(sent + 1))
                    .send()
                    .await
                    .expect("collect answers");
                let status = response.status();
                let body = response.text().await.expect("collect body");
                assert_eq!(status, 200, "{body}");
                recorded
                    .lock()
                    .expect("samples")
                    .push((started, started.elapsed()));
                sent += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            sent
        });
        CollectProbe {
            samples,
            stop,
            task,
        }
    }

    /// Latencies of the requests sent between `from` and `to`, sorted.
    fn between(&self, from: Instant, to: Instant) -> Vec<Duration> {
        let mut latencies: Vec<Duration> = (self.samples.lock().expect("samples").iter())
            .filter(|(sent, _)| (from..to).contains(sent))
            .map(|(_, latency)| *latency)
            .collect();
        latencies.sort();
        latencies
    }

    /// Stops the client; the number of events it had acknowledged.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the collect client ran")
    }
}

/// `p99=… max=… n=…` of sorted latencies, and the p99.
fn summary(latencies: &[Duration]) -> (Duration, String) {
    assert!(!latencies.is_empty(), "no samples");
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    let p50 = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    let text = format!(
        "n={} p50={p50:.1?} p99={p99:.1?} max={max:.1?}",
        latencies.len()
    );
    (p99, text)
}

/// Resident memory of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

async fn post_sql(url: &str, sql: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .expect("the SQL endpoint answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

/// What happened while one statement ran.
struct Run {
    /// Latencies of the `/collect` requests sent meanwhile.
    collect: Vec<Duration>,
    /// The child's peak resident memory, in bytes.
    peak_rss: u64,
    /// How long the statement took to be answered.
    answered_after: Duration,
}

/// Runs `sql` at `url` while the probe runs and asserts that it fails with 400 and a
/// message starting with `message_start`.
async fn run_over_a_limit(
    child: &Child,
    probe: &CollectProbe,
    url: &str,
    sql: &str,
    message_start: &str,
) -> Run {
    let pid = child.pid();
    let peak = Arc::new(AtomicU64::new(rss_bytes(pid)));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let (status, body) = post_sql(url, sql).await;
    let ended = Instant::now();
    sampling.store(false, Ordering::Relaxed);
    sampler.await.expect("sampler");

    assert_eq!(status, 400, "{sql}: {body}");
    assert_eq!(body["status"], "error");
    let message = body["message"].as_str().expect("a reason");
    assert!(message.starts_with(message_start), "{message}");
    Run {
        collect: probe.between(started, ended),
        peak_rss: peak.load(Ordering::Relaxed),
        answered_after: ended - started,
    }
}

/// Asserts the `/collect` p99 over `latencies`, measured while `what` ran.
fn assert_collect_stayed_fast(what: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let (p99, text) = summary(latencies);
    eprintln!("/collect while {what}: {text}");
    assert!(
        latencies.len() >= 300,
        "too few samples for a p99 while {what}: {text}"
    );
    assert!(p99 < COLLECT_P99_BOUND, "/collect p99 while {what}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_past_the_timeout_or_the_memory_limit_fail_alone_and_collect_stays_fast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        (
            "CLICKSTREAM_QUERY__STATEMENT_TIMEOUT_MS",
            TIMEOUT_MS.to_string(),
        ),
        (
            "CLICKSTREAM_QUERY__MEMORY_LIMIT_BYTES",
            MEMORY_LIMIT_BYTES.to_string(),
        ),
        ("CLICKSTREAM_LOG__FSYNC", "interval".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let mut child = Child::spawn("up", dir.path(), &UP_ON_FREE_PORTS, env);
    let line = child.wait_for_line("clickstream is up").await;
    let base = field(&line, "ingest").to_string();
    let ui = field(&line, "ui").to_string();
    let count = "SELECT count(*) AS n FROM events";

    let probe = CollectProbe::start(&base);
    // Warm up, then a baseline for the record.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let from = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, baseline) = summary(&probe.between(from, Instant::now()));
    eprintln!("/collect with no statement running: {baseline}");

    // Past the timeout, on the ingest port: cancelled with the reason, on time.
    let mut timed_out = run_over_a_limit(
        &child,
        &probe,
        &format!("{base}/api/sql"),
        ENDLESS_JOIN,
        "statement timeout: cancelled after 3 s (query.statement_timeout_ms)",
    )
    .await;
    assert!(
        timed_out.answered_after < Duration::from_millis(TIMEOUT_MS) + Duration::from_secs(2),
        "the timeout answered after {:?}",
        timed_out.answered_after
    );
    assert_collect_stayed_fast("a statement ran into its timeout", &mut timed_out.collect);
    // The join stopped: the next statement gets the query thread within its own timeout.
    let (status, body) = post_sql(&format!("{base}/api/sql"), count).await;
    assert_eq!(status, 200, "{body}");

    // Over the memory limit, through the UI's port, a few times (each fails within a
    // second): it fails, the next statement runs, and the resident memory stays far below
    // the gigabytes it takes without the limit.
    let before = rss_bytes(child.pid());
    let (mut latencies, mut peak) = (Vec::new(), 0);
    for _ in 0..4 {
        let run = run_over_a_limit(
            &child,
            &probe,
            &format!("{ui}/api/sql"),
            HUNGRY_AGGREGATE,
            "memory limit exceeded: the statement needed more than 64 MiB \
             (query.memory_limit_bytes)",
        )
        .await;
        latencies.extend(run.collect);
        peak = peak.max(run.peak_rss);
        let (status, body) = post_sql(&format!("{ui}/api/sql"), count).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_collect_stayed_fast("statements ran out of memory", &mut latencies);
    let grown = peak.saturating_sub(before);
    eprintln!("resident memory grew by {} MiB", grown >> 20);
    assert!(
        grown < 4 * MEMORY_LIMIT_BYTES,
        "resident memory grew by {} MiB",
        grown >> 20
    );

    // Every acknowledged event lands: the processor was not starved either.
    let acknowledged = probe.stop().await;
    eventually("the events land", Duration::from_secs(60), || async {
        let (_, body) = post_sql(&format!("{base}/api/sql"), count).await;
        let n = body["rows"][0]["n"].as_u64().unwrap_or(0);
        check(n == acknowledged, || format!("{n} of {acknowledged}"))
    })
    .await;
    child.kill().await;
}
