//! Closed-loop load: each connection POSTs a batch, waits for the answer, repeats.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use rand::SeedableRng;

use crate::wide::fill_wide_fields;
use crate::{Traffic, TrafficConfig};

/// Which route the load goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /collect` with batches of synthetic events.
    #[default]
    Collect,
    /// `GET /ping`: the same HTTP path with no work behind it, the loopback ceiling.
    Ping,
}

/// The shape of the events a load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// The seed's events (the bundled raw schema's nine fields in `event`).
    #[default]
    Seed,
    /// The seed's events with the wide version's seventeen fields filled
    /// ([`crate::wide`]); that version must be registered before the load starts.
    Wide,
}

/// What load to offer.
#[derive(Debug, Clone)]
pub struct IngestLoad {
    /// Base URL of the server (`http://127.0.0.1:60000`).
    pub url: String,
    /// The route to load.
    pub endpoint: Endpoint,
    /// Events per request.
    pub batch_size: usize,
    /// Concurrent connections, each with one request in flight.
    pub connections: usize,
    /// How long to keep sending.
    pub duration: Duration,
    /// Seed of the event generator.
    pub seed: u64,
    /// The events' shape.
    pub shape: Shape,
    /// Sent as `X-Write-Key` with every request when set.
    pub write_key: Option<String>,
}

/// What the load achieved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// The route loaded.
    pub endpoint: Endpoint,
    /// Events per request.
    pub batch_size: usize,
    /// The events' shape.
    pub shape: Shape,
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
    /// Acknowledged events per second (for `/ping`, answered requests per second).
    pub events_per_sec: f64,
    /// Requests answered 200 per second.
    pub requests_per_sec: f64,
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
    /// The request bodies could not be made.
    #[error("request body: {0}")]
    Body(String),
    /// Every request failed to connect.
    #[error("the server at {0} was unreachable throughout the run")]
    Unreachable(String),
}

#[derive(Deserialize)]
struct Ack {
    processed_count: u64,
}

/// Runs the load and reports. Bodies are generated before the clock starts, so the client
/// spends its CPU on HTTP, not on making events; each send stamps fresh event ids into a
/// copy of one, so the pipeline sees new events rather than retries (which duplicate
/// detection would keep out of `events`).
pub async fn run_ingest_load(load: IngestLoad) -> Result<LoadReport, LoadError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(load.connections)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| LoadError::Client(e.to_string()))?;
    let bodies = Arc::new(match load.endpoint {
        Endpoint::Collect => make_bodies(&load, 64)?,
        Endpoint::Ping => vec![BodyTemplate::default()],
    });
    let next_id = Arc::new(AtomicU64::new(first_id_of_run()));
    let base = load.url.trim_end_matches('/');
    let url = match load.endpoint {
        Endpoint::Collect => format!("{base}/collect"),
        Endpoint::Ping => format!("{base}/ping"),
    };
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..load.connections {
        let client = client.clone();
        let bodies = bodies.clone();
        let next_id = next_id.clone();
        let url = url.clone();
        let endpoint = load.endpoint;
        let write_key = load.write_key.clone();
        workers.spawn(async move {
            let mut stats = WorkerStats::new();
            let mut i = worker;
            while Instant::now() < deadline {
                let template = &bodies[i % bodies.len()];
                let body = template
                    .render(next_id.fetch_add(template.id_offsets.len() as u64, Ordering::Relaxed));
                i += 1;
                let sent = Instant::now();
                let mut request = match endpoint {
                    Endpoint::Collect => client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body),
                    Endpoint::Ping => client.get(&url),
                };
                if let Some(key) = &write_key {
                    request = request.header("x-write-key", key);
                }
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        let acked = match endpoint {
                            Endpoint::Collect => {
                                response.json::<Ack>().await.map(|a| a.processed_count)
                            }
                            Endpoint::Ping => response.bytes().await.map(|_| 1),
                        };
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
        return Err(LoadError::Unreachable(url));
    }
    let ms = |v: u64| v as f64 / 1000.0;
    Ok(LoadReport {
        endpoint: load.endpoint,
        batch_size: load.batch_size,
        shape: load.shape,
        connections: load.connections,
        requests_ok: total.ok,
        requests_failed: total.failed,
        transport_errors: total.transport,
        events_acked: total.events,
        elapsed_secs: elapsed,
        events_per_sec: total.events as f64 / elapsed,
        requests_per_sec: total.ok as f64 / elapsed,
        latency_p50_ms: ms(total.latency.value_at_quantile(0.50)),
        latency_p99_ms: ms(total.latency.value_at_quantile(0.99)),
        latency_max_ms: ms(total.latency.max()),
    })
}

/// A request body whose events' ids are rewritten on every send.
#[derive(Default)]
struct BodyTemplate {
    bytes: Vec<u8>,
    /// Where each event's id digits start ([`ID_WIDTH`] of them).
    id_offsets: Vec<usize>,
}

/// Event ids of the load all have this many digits, so a fresh id fits in place.
const ID_WIDTH: usize = 16;
/// The smallest id with [`ID_WIDTH`] digits.
const ID_FLOOR: u64 = 1_000_000_000_000_000;

impl BodyTemplate {
    /// The body with ids `first_id`, `first_id + 1`, ...
    fn render(&self, first_id: u64) -> bytes::Bytes {
        let mut bytes = self.bytes.clone();
        for (index, &at) in self.id_offsets.iter().enumerate() {
            let mut id = first_id + index as u64;
            for digit in bytes[at..at + ID_WIDTH].iter_mut().rev() {
                *digit = b'0' + (id % 10) as u8;
                id /= 10;
            }
        }
        bytes::Bytes::from(bytes)
    }
}

/// The first id of a run: from the clock, a billion ids apart per second and wrapping
/// after about three months, so runs against the same lake do not repeat each other's
/// ids, and always [`ID_WIDTH`] digits for up to 10^15 events.
pub(crate) fn first_id_of_run() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    ID_FLOOR + ((ms * 1_000_000) % 8_000_000_000_000_000) as u64
}

fn make_bodies(load: &IngestLoad, count: usize) -> Result<Vec<BodyTemplate>, LoadError> {
    let mut traffic = Traffic::new(TrafficConfig {
        seed: load.seed,
        first_id: ID_FLOOR as i64,
        ..TrafficConfig::default()
    });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(load.seed);
    let prefix = br#"{"id":"#;
    (0..count)
        .map(|_| {
            let mut template = BodyTemplate {
                bytes: vec![b'['],
                id_offsets: Vec::with_capacity(load.batch_size),
            };
            for (index, mut generated) in traffic.by_ref().take(load.batch_size).enumerate() {
                if index > 0 {
                    template.bytes.push(b',');
                }
                if load.shape == Shape::Wide
                    && let Some(details) = generated.event.object_mut("event")
                {
                    fill_wide_fields(details, &mut rng);
                }
                let event = serde_json::to_vec(&generated.event)
                    .map_err(|e| LoadError::Body(e.to_string()))?;
                let digits = event.get(prefix.len()..prefix.len() + ID_WIDTH);
                if !event.starts_with(prefix)
                    || !digits.is_some_and(|d| d.iter().all(u8::is_ascii_digit))
                {
                    return Err(LoadError::Body(format!(
                        "a generated event does not start with a {ID_WIDTH}-digit id: {}",
                        String::from_utf8_lossy(&event[..event.len().min(60)])
                    )));
                }
                template
                    .id_offsets
                    .push(template.bytes.len() + prefix.len());
                template.bytes.extend_from_slice(&event);
            }
            template.bytes.push(b']');
            Ok(template)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_render_stamps_fresh_ids_into_valid_json() {
        let load = IngestLoad {
            url: String::new(),
            endpoint: Endpoint::Collect,
            batch_size: 5,
            connections: 1,
            duration: Duration::ZERO,
            seed: 7,
            shape: Shape::Wide,
            write_key: None,
        };
        let templates = make_bodies(&load, 2).expect("bodies");
        let ids = |body: bytes::Bytes| -> Vec<i64> {
            let events: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("json");
            events
                .iter()
                .map(|e| e["id"].as_i64().expect("id"))
                .collect()
        };
        let first = ids(templates[0].render(ID_FLOOR + 40));
        let again = ids(templates[0].render(ID_FLOOR + 45));
        assert_eq!(
            first,
            (40..45).map(|i| (ID_FLOOR + i) as i64).collect::<Vec<_>>()
        );
        assert_eq!(
            again,
            (45..50).map(|i| (ID_FLOOR + i) as i64).collect::<Vec<_>>()
        );
        let start = first_id_of_run();
        assert!((ID_FLOOR..9 * ID_FLOOR).contains(&start));
    }
}
