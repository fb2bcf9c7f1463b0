//! One batch to `/collect`: the POST, the answer read as the ingest API's JSON, and
//! retries with backoff for answers that say "try again" (408, 429, 5xx) or no answer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;

/// A batch ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    /// Position in the run, from 0.
    pub sequence: u64,
    /// The JSON array.
    pub body: Bytes,
    /// Events in the body.
    pub events: u64,
    /// Of those, broken on purpose (synthetic traffic).
    pub invalid_generated: u64,
    /// Replay: unparsable lines passed over while filling this batch.
    pub lines_skipped: u64,
    /// Replay: the line after the last one this batch covers (the resume position once
    /// the batch is acknowledged).
    pub lines_end: Option<u64>,
}

/// How a batch ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Nothing to send (a replay batch of unparsable lines only).
    Empty,
    /// 2xx with the ingest API's counts.
    Acked { valid: u64, invalid: u64 },
    /// An HTTP error that retrying will not fix (4xx other than 408/429), or a 2xx that
    /// is not the ingest API's answer.
    Rejected { status: u16, message: String },
    /// Still failing after the retries: 408, 429 or 5xx.
    Failed { status: u16, message: String },
    /// No HTTP answer at all after the retries.
    Unreachable { error: String },
}

impl Outcome {
    /// Whether the server has dealt with the batch for good: a replay may move past it.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Outcome::Empty | Outcome::Acked { .. } | Outcome::Rejected { .. }
        )
    }
}

/// A batch's outcome, how long its answer took and how many retries it needed.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub batch: Batch,
    pub outcome: Outcome,
    /// From the last attempt's request to its answer.
    pub latency: Option<Duration>,
    pub retries: u32,
    /// Whether any attempt got an HTTP answer (the server is reachable).
    pub answered: bool,
}

#[derive(Deserialize)]
struct CollectAnswer {
    valid_count: u64,
    invalid_count: u64,
}

/// Posts batches to `<base>/collect`.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    client: reqwest::Client,
    url: String,
    retries: u32,
}

/// Longest wait a `Retry-After` is allowed to impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

impl Sender {
    pub fn new(client: reqwest::Client, base_url: &str, retries: u32) -> Sender {
        Sender {
            client,
            url: format!("{}/collect", base_url.trim_end_matches('/')),
            retries,
        }
    }

    /// The URL batches go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `batch`, retrying transient failures with exponential backoff (250 ms,
    /// 500 ms, 1 s, …, or the server's `Retry-After`, at most 10 s).
    pub async fn send(&self, batch: Batch) -> Sent {
        if batch.events == 0 {
            return Sent {
                batch,
                outcome: Outcome::Empty,
                latency: None,
                retries: 0,
                answered: false,
            };
        }
        let mut retries = 0;
        let mut answered = false;
        loop {
            let started = Instant::now();
            let (outcome, retry_after) = self.attempt(&batch.body).await;
            let latency = started.elapsed();
            answered |= !matches!(outcome, Outcome::Unreachable { .. });
            let transient = matches!(
                outcome,
                Outcome::Failed { .. } | Outcome::Unreachable { .. }
            );
            if !transient || retries >= self.retries {
                let latency = (!matches!(outcome, Outcome::Unreachable { .. })).then_some(latency);
                return Sent {
                    batch,
                    outcome,
                    latency,
                    retries,
                    answered,
                };
            }
            let backoff =
                retry_after.unwrap_or(Duration::from_millis(250) * 2u32.saturating_pow(retries));
            tracing::debug!(batch = batch.sequence, ?outcome, ?backoff, "retrying batch");
            tokio::time::sleep(backoff.min(MAX_RETRY_AFTER)).await;
            retries += 1;
        }
    }

    async fn attempt(&self, body: &Bytes) -> (Outcome, Option<Duration>) {
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                return (
                    Outcome::Unreachable {
                        error: error_chain(&error),
                    },
                    None,
                );
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => {
                return (
                    Outcome::Unreachable {
                        error: error_chain(&error),
                    },
                    None,
                );
            }
        };
        if status.is_success() {
            return match serde_json::from_str::<CollectAnswer>(&text) {
                Ok(answer) => (
                    Outcome::Acked {
                        valid: answer.valid_count,
                        invalid: answer.invalid_count,
                    },
                    None,
                ),
                Err(_) => (
                    Outcome::Rejected {
                        status: status.as_u16(),
                        message: format!("the answer is not the ingest API's: {}", snippet(&text)),
                    },
                    None,
                ),
            };
        }
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| snippet(&text));
        let code = status.as_u16();
        let transient = code == 408 || code == 429 || status.is_server_error();
        let outcome = if transient {
            Outcome::Failed {
                status: code,
                message,
            }
        } else {
            Outcome::Rejected {
                status: code,
                message,
            }
        };
        (outcome, retry_after)
    }
}

/// The error and its causes on one line ("error sending request: … : connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn snippet(text: &str) -> String {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
