//! Acknowledgement to queryable: events are offered at a fixed rate, and a poller asks the
//! SQL API which requests' events are all in the lake, so each request gets the time from
//! its 200 to the first poll that sees every one of its events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::{LoadError, Traffic, TrafficConfig};

/// What to offer.
#[derive(Debug, Clone)]
pub struct VisibilityLoad {
    /// Base URL of the ingest + SQL API.
    pub base_url: String,
    /// Events per second offered.
    pub rate: u64,
    /// Events per request.
    pub batch_size: usize,
    /// How long to offer load.
    pub duration: Duration,
    /// How often the poller asks.
    pub poll_interval: Duration,
}

/// What was measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisibilityReport {
    /// Offered rate, events/s.
    pub offered_rate: u64,
    /// Events acknowledged.
    pub events_acked: u64,
    /// Requests whose events all became visible.
    pub requests_seen: u64,
    /// Requests acknowledged but not visible 10 s after the load ended.
    pub requests_missing: u64,
    /// Median ack-to-visible, milliseconds.
    pub visible_p50_ms: f64,
    /// 99th percentile ack-to-visible, milliseconds.
    pub visible_p99_ms: f64,
    /// Slowest ack-to-visible, milliseconds.
    pub visible_max_ms: f64,
    /// Median time of one poll query, milliseconds (the measurement's resolution).
    pub poll_p50_ms: f64,
}

#[derive(Deserialize)]
struct Ack {
    correlation_id: String,
    valid_count: i64,
}

#[derive(Deserialize)]
struct SqlAnswer {
    rows: Vec<HashMap<String, serde_json::Value>>,
}

/// Acknowledged requests waiting to be seen: correlation id -> (events, ack time).
type Pending = Arc<Mutex<HashMap<String, (i64, Instant)>>>;

/// Runs the measurement.
pub async fn run_visibility(load: VisibilityLoad) -> Result<VisibilityReport, LoadError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| LoadError::Client(e.to_string()))?;
    let pending: Pending = Arc::default();
    let started_wall = chrono_now_utc();
    let sender = tokio::spawn(send_at_rate(client.clone(), load.clone(), pending.clone()));

    let mut visible = histogram();
    let mut poll_times = histogram();
    let end_of_load = Instant::now() + load.duration;
    let give_up = end_of_load + Duration::from_secs(10);
    let query = format!(
        "SELECT correlation_id, count(*) AS n FROM events \
         WHERE ingested_at >= TIMESTAMP '{started_wall}' GROUP BY correlation_id"
    );
    let mut seen = 0u64;
    loop {
        tokio::time::sleep(load.poll_interval).await;
        let asked = Instant::now();
        let answer = client
            .post(format!("{}/api/sql", load.base_url))
            .json(&serde_json::json!({ "sql": query }))
            .send()
            .await;
        let Ok(answer) = answer else { continue };
        let Ok(answer) = answer.json::<SqlAnswer>().await else {
            continue;
        };
        let answered = Instant::now();
        record(&mut poll_times, answered - asked);
        let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
        for row in answer.rows {
            let id = row
                .get("correlation_id")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let n = row.get("n").and_then(|v| v.as_i64()).unwrap_or(0);
            if let Some((expected, acked_at)) = pending.get(id).copied()
                && n >= expected
            {
                // Seen somewhere between the poll's start and its answer: count the start,
                // the earliest the data could have been read.
                record(&mut visible, asked.saturating_duration_since(acked_at));
                pending.remove(id);
                seen += 1;
            }
        }
        let load_over = Instant::now() >= end_of_load && sender.is_finished();
        if (load_over && pending.is_empty()) || Instant::now() >= give_up {
            break;
        }
    }
    let events_acked = sender.await.unwrap_or(0);
    let missing = pending.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
    let ms = |v: u64| v as f64 / 1000.0;
    Ok(VisibilityReport {
        offered_rate: load.rate,
        events_acked,
        requests_seen: seen,
        requests_missing: missing,
        visible_p50_ms: ms(visible.value_at_quantile(0.5)),
        visible_p99_ms: ms(visible.value_at_quantile(0.99)),
        visible_max_ms: ms(visible.max()),
        poll_p50_ms: ms(poll_times.value_at_quantile(0.5)),
    })
}

/// Sends batches on a fixed schedule (open loop); returns the events acknowledged.
async fn send_at_rate(client: reqwest::Client, load: VisibilityLoad, pending: Pending) -> u64 {
    let mut traffic = Traffic::new(TrafficConfig {
        seed: 11,
        // Fresh ids per run: a repeat of an earlier run's ids would be a duplicate.
        first_id: crate::ingest_load::first_id_of_run() as i64,
        ..TrafficConfig::default()
    });
    let requests_per_sec = (load.rate as f64 / load.batch_size as f64).max(0.001);
    let period = Duration::from_secs_f64(1.0 / requests_per_sec);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + load.duration;
    let mut in_flight = tokio::task::JoinSet::new();
    while Instant::now() < end {
        ticker.tick().await;
        let events: Vec<crate::Object> = traffic
            .by_ref()
            .take(load.batch_size)
            .map(|generated| generated.event)
            .collect();
        let (client, pending) = (client.clone(), pending.clone());
        let url = format!("{}/collect", load.base_url);
        in_flight.spawn(async move {
            let answer = client.post(url).json(&events).send().await.ok()?;
            let ack: Ack = answer.json().await.ok()?;
            let acked_at = Instant::now();
            pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(ack.correlation_id, (ack.valid_count, acked_at));
            Some(ack.valid_count as u64)
        });
    }
    let mut acked = 0;
    while let Some(done) = in_flight.join_next().await {
        acked += done.ok().flatten().unwrap_or(0);
    }
    acked
}

fn histogram() -> Histogram<u64> {
    // invariant: constant, valid bounds (1 µs to 10 min, 3 significant figures).
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let _ = histogram.record((elapsed.as_micros() as u64).clamp(1, 600_000_000));
}

/// Now, UTC, as `YYYY-MM-DD HH:MM:SS`, a second early so clock rounding loses nothing.
fn chrono_now_utc() -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}
