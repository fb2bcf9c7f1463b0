//! What the clients of a fault scenario were told, and the lake checked against it.
//!
//! A [`Sender`] posts batches to `/collect` the way a well-behaved client does: valid
//! events with fresh ids, plus a few invalid ones carrying a unique marker; a batch that
//! is not acknowledged is sent again with the same valid ids (so a retry of a batch that
//! did land tests duplicate detection) and fresh markers. The [`Ledger`] keeps what was
//! acknowledged; [`Ledger::verify`] reads the lake through SQL and counts what is missing
//! and what is there twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::seed_events;

/// Invalid events per batch: `customer_id` is a string, which the raw schema refuses.
const INVALID_PER_BATCH: i64 = 2;

/// Everything acknowledged so far.
#[derive(Clone, Default)]
pub struct Ledger {
    inner: Arc<Mutex<Acked>>,
    next_id: Arc<AtomicI64>,
    next_marker: Arc<AtomicU64>,
    /// Requests answered other than 200 (then retried).
    pub refused: Arc<AtomicU64>,
    /// Bytes of filler in each valid event's `page`, to make events big.
    padding: usize,
}

#[derive(Default)]
struct Acked {
    valid: Vec<i64>,
    invalid: Vec<String>,
}

/// What the lake holds against what was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Valid events acknowledged.
    pub acked: usize,
    /// Acknowledged valid events not in `events`.
    pub lost: usize,
    /// Ids in `events` more than once.
    pub duplicated: usize,
    /// Invalid events acknowledged.
    pub invalid_acked: usize,
    /// Acknowledged invalid events not in `invalid_events` exactly once.
    pub invalid_wrong: usize,
}

impl Outcome {
    /// Nothing lost, nothing twice.
    pub fn exact(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.invalid_wrong == 0
    }
}

impl Ledger {
    /// A ledger whose ids start at `first` (distinct scenarios on one lake never collide).
    pub fn starting_at(first: i64) -> Ledger {
        let ledger = Ledger::default();
        ledger.next_id.store(first, Ordering::Relaxed);
        ledger
    }

    /// Events about `bytes` bigger (a long page URL), to fill a disk quickly.
    pub fn padded(mut self, bytes: usize) -> Ledger {
        self.padding = bytes;
        self
    }

    /// The ids of the valid events acknowledged so far.
    pub fn acked_ids(&self) -> Vec<i64> {
        self.inner.lock().expect("ledger").valid.clone()
    }

    /// Valid events acknowledged so far.
    pub fn acked(&self) -> usize {
        self.inner.lock().expect("ledger").valid.len()
    }

    /// Waits until `n` more valid events are acknowledged than now, for up to `within`.
    pub async fn acked_more(&self, n: usize, within: Duration) {
        let target = self.acked() + n;
        crate::eventually::eventually("events acknowledged", within, || async {
            crate::eventually::check(self.acked() >= target, || format!("{} acked", self.acked()))
        })
        .await;
    }

    /// A batch of `n` valid events with fresh ids and [`INVALID_PER_BATCH`] invalid ones.
    fn batch(&self, n: i64) -> (Vec<i64>, Vec<Value>) {
        let first = self.next_id.fetch_add(n, Ordering::Relaxed);
        let ids: Vec<i64> = (first..first + n).collect();
        (ids.clone(), self.body(&ids))
    }

    /// The request body for `ids`, with fresh invalid markers.
    fn body(&self, ids: &[i64]) -> Vec<Value> {
        let template = seed_events()[0].clone();
        let mut events: Vec<Value> = ids
            .iter()
            .map(|id| {
                let mut event = template.clone();
                event["id"] = json!(id);
                event["event"]["customer_id"] = json!(id % 997);
                if self.padding > 0 {
                    let page = format!("https://shop.example/{}", "p".repeat(self.padding));
                    event["event"]["page"] = json!(page);
                }
                event
            })
            .collect();
        for _ in 0..INVALID_PER_BATCH {
            let marker = self.next_marker.fetch_add(1, Ordering::Relaxed);
            let mut event = template.clone();
            event["id"] = json!(-1);
            event["event"]["customer_id"] = json!(format!("fault-marker-{marker}"));
            events.push(event);
        }
        events
    }

    fn record(&self, ids: &[i64], body: &[Value]) {
        let mut acked = self.inner.lock().expect("ledger");
        acked.valid.extend_from_slice(ids);
        acked.invalid.extend(
            body.iter()
                .filter_map(|e| e["event"]["customer_id"].as_str().map(str::to_string)),
        );
    }

    /// Reads `events` and `invalid_events` through `sql` and compares.
    pub async fn verify<F, Fut>(&self, sql: F) -> Outcome
    where
        F: Fn(&'static str) -> Fut,
        Fut: std::future::Future<Output = Vec<Value>>,
    {
        let acked = {
            let acked = self.inner.lock().expect("ledger");
            (acked.valid.clone(), acked.invalid.clone())
        };
        let mut seen: HashMap<i64, usize> = HashMap::new();
        for row in sql("SELECT id FROM events").await {
            *seen.entry(row["id"].as_i64().expect("id")).or_default() += 1;
        }
        let mut markers: HashMap<String, usize> = HashMap::new();
        for row in sql("SELECT raw_json FROM invalid_events").await {
            let text = row["raw_json"].as_str().unwrap_or_default();
            if let Some(at) = text.find("fault-marker-") {
                let marker: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                *markers.entry(marker).or_default() += 1;
            }
        }
        Outcome {
            acked: acked.0.len(),
            lost: acked.0.iter().filter(|id| !seen.contains_key(id)).count(),
            duplicated: seen.values().filter(|n| **n > 1).count(),
            invalid_acked: acked.1.len(),
            invalid_wrong: acked
                .1
                .iter()
                .filter(|m| markers.get(*m).copied() != Some(1))
                .count(),
        }
    }
}

/// Clients posting batches until stopped.
pub struct Sender {
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Sender {
    /// `clients` concurrent clients posting batches of `size` to `url` (which may change
    /// between restarts: `url()` is asked before each request).
    pub fn start(
        ledger: &Ledger,
        clients: usize,
        size: i64,
        url: impl Fn() -> String + Send + Sync + Clone + 'static,
    ) -> Sender {
        Sender::paced(ledger, clients, size, Duration::ZERO, url)
    }

    /// [`Sender::start`] with each client waiting `pause` after every acknowledged batch:
    /// a steady load whose volume does not grow with the machine's speed.
    pub fn paced(
        ledger: &Ledger,
        clients: usize,
        size: i64,
        pause: Duration,
        url: impl Fn() -> String + Send + Sync + Clone + 'static,
    ) -> Sender {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        for _ in 0..clients {
            let (ledger, stop, url, http) =
                (ledger.clone(), stop.clone(), url.clone(), http.clone());
            tasks.spawn(async move {
                let (mut ids, mut body) = ledger.batch(size);
                while !stop.load(Ordering::Relaxed) {
                    let sent = http.post(url()).json(&body).send().await;
                    match sent {
                        Ok(response) if response.status() == 200 => {
                            ledger.record(&ids, &body);
                            (ids, body) = ledger.batch(size);
                            if !pause.is_zero() {
                                tokio::time::sleep(pause).await;
                            }
                        }
                        _ => {
                            // Not acknowledged: send the same events again, as a client
                            // honouring Retry-After would, with fresh invalid markers.
                            ledger.refused.fetch_add(1, Ordering::Relaxed);
                            body = ledger.body(&ids);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        Sender { stop, tasks }
    }

    /// Stops the clients after their request in flight.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        while self.tasks.join_next().await.is_some() {}
    }
}
