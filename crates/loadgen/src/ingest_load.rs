//! Closed-loop load: each connection POSTs a batch, waits for the answer, repeats.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::synthetic_event;

/// What load to offer.
#[derive(Debug, Clone)]
pub struct IngestLoad {
    /// `/collect` URL.
    pub url: String,
    /// Events per request.
    pub batch_size: usize,
    /// Concurrent connections, each with one request in flight.
    pub connections: usize,
    /// How long to keep sending.
    pub duration: Duration,
    /// Seed of the event generator.
    pub seed: u64,
}

/// What the load achieved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// Events per request.
    pub batch_size: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// Requests answered 200.
    pub requests_ok: u64,
    /// Requests answered with another status.
    pub requests_failed: u64,
    /// Requests that got no answer (connection errors).
    pub transport_errors: u64,
    /// Events acknowledged (valid + invalid) by 200 answers.
    pub events_acked: u64,
    /// Wall-clock seconds of the run.
    pub elapsed_secs: f64,
    /// Acknowledged events per second.
    pub events_per_sec: f64,
    /// Median request latency, milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile request latency, milliseconds.
    pub latency_p99_ms: f64,
    /// Slowest request, milliseconds.
    pub latency_max_ms: f64,
}

/// Why a load run could not happen at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(String),
    /// Every request failed to connect.
    #[error("the server at {0} was unreachable throughout the run")]
    Unreachable(String),
}

#[derive(Deserialize)]
struct Ack {
    processed_count: u64,
}

/// Runs the load and reports. Bodies are generated before the clock starts, so the client
/// spends its CPU on HTTP, not on making events.
pub async fn run_ingest_load(load: IngestLoad) -> Result<LoadReport, LoadError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(load.connections)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| LoadError::Client(e.to_string()))?;
    let bodies = Arc::new(make_bodies(&load, 64));
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..load.connections {
        let client = client.clone();
        let bodies = bodies.clone();
        let url = load.url.clone();
        workers.spawn(async move {
            let mut stats = WorkerStats::new();
            let mut i = worker;
            while Instant::now() < deadline {
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let sent = Instant::now();
                let result = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match result {
                    Ok(response) if response.status().is_success() => {
                        let acked = response.json::<Ack>().await.map(|a| a.processed_count);
                        stats.record(sent.elapsed());
                        match acked {
                            Ok(n) => {
                                stats.ok += 1;
                                stats.events += n;
                            }
                            Err(_) => stats.failed += 1,
                        }
                    }
                    Ok(_) => stats.failed += 1,
                    Err(_) => {
                        stats.transport += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            stats
        });
    }
    let mut total = WorkerStats::new();
    while let Some(Ok(stats)) = workers.join_next().await {
        total.merge(stats);
    }
    let elapsed = started.elapsed().as_secs_f64();
    if total.ok == 0 && total.failed == 0 && total.transport > 0 {
        return Err(LoadError::Unreachable(load.url));
    }
    let ms = |v: u64| v as f64 / 1000.0;
    Ok(LoadReport {
        batch_size: load.batch_size,
        connections: load.connections,
        requests_ok: total.ok,
        requests_failed: total.failed,
        transport_errors: total.transport,
        events_acked: total.events,
        elapsed_secs: elapsed,
        events_per_sec: total.events as f64 / elapsed,
        latency_p50_ms: ms(total.latency.value_at_quantile(0.50)),
        latency_p99_ms: ms(total.latency.value_at_quantile(0.99)),
        latency_max_ms: ms(total.latency.max()),
    })
}

fn make_bodies(load: &IngestLoad, count: usize) -> Vec<bytes::Bytes> {
    let mut rng = StdRng::seed_from_u64(load.seed);
    let mut id = 1i64;
    (0..count)
        .map(|_| {
            let events: Vec<serde_json::Value> = (0..load.batch_size)
                .map(|_| {
                    id += 1;
                    synthetic_event(&mut rng, id)
                })
                .collect();
            bytes::Bytes::from(serde_json::to_vec(&events).unwrap_or_default())
        })
        .collect()
}

struct WorkerStats {
    ok: u64,
    failed: u64,
    transport: u64,
    events: u64,
    /// Microseconds.
    latency: Histogram<u64>,
}

impl WorkerStats {
    fn new() -> Self {
        Self {
            ok: 0,
            failed: 0,
            transport: 0,
            events: 0,
            // invariant: constant, valid bounds (1 µs to 60 s, 3 significant figures).
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
        }
    }

    fn record(&mut self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self.latency.record(micros);
    }

    fn merge(&mut self, other: WorkerStats) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.transport += other.transport;
        self.events += other.events;
        let _ = self.latency.add(other.latency);
    }
}
