//! `clickstream generate`: batches from a replayed file or from synthetic traffic, paced
//! (a rate, a pause between batches), sent by a bounded number of concurrent requests,
//! counted from the server's answers, with a progress bar and a summary at the end.
//!
//! Batches are made on a thread of their own (file reading and event generation are
//! blocking work) and handed over through a small channel, so making never runs far
//! ahead of sending. Answers are taken in batch order, which is what lets a replay save
//! its position only up to the last batch acknowledged without a gap.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clickstream_secret::Secret;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::replay::{ReadState, ReplayConfig, ReplayReader, count_lines};
use crate::sender::{Batch, Sender};
use crate::summary::{ReplayPosition, Tally};
use crate::{GenerateError, GenerateSummary, Traffic, TrafficConfig};

/// How to send.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Base URL of the ingest API; batches go to `<url>/collect`.
    pub url: String,
    /// Events per request.
    pub batch_size: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Wait between two batches (the original generator waited 6 s).
    pub pause: Duration,
    /// Events per second to offer; `None` sends as fast as answers come back.
    pub rate: Option<f64>,
    /// Stop after this many events (synthetic).
    pub count: Option<u64>,
    /// Stop sending after this long.
    pub duration: Option<Duration>,
    /// Attempts repeated after a 408, 429, 5xx or a connection failure.
    pub retries: u32,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// Write key sent with every batch as `X-Write-Key`, for an ingest that requires one.
    pub write_key: Option<Secret>,
}

/// The `X-Write-Key` header of `key`, marked sensitive (never shown in logs by the HTTP
/// stack), or no header.
fn key_headers(key: Option<&Secret>) -> Result<HeaderMap, GenerateError> {
    let mut headers = HeaderMap::new();
    if let Some(key) = key {
        let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
            GenerateError::Invalid("the write key is not a valid header value".into())
        })?;
        value.set_sensitive(true);
        headers.insert("x-write-key", value);
    }
    Ok(headers)
}

/// Where events come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A JSON Lines file, resumed from its state file.
    Replay(ReplayConfig),
    /// Simulated traffic.
    Synthetic(TrafficConfig),
}

/// Makes batches, on the producer thread.
enum Producer {
    Replay(ReplayReader),
    Synthetic(Box<SyntheticBatches>),
}

/// Batches of simulated traffic.
struct SyntheticBatches {
    traffic: Traffic,
    /// Package ids, from the seed too, so a run's bodies are reproducible.
    package_ids: ChaCha8Rng,
    remaining: Option<u64>,
    sequence: u64,
}

impl Producer {
    fn next_batch(&mut self, size: usize) -> Result<Option<Batch>, GenerateError> {
        match self {
            Producer::Replay(reader) => reader.next_batch(size, &uuid::Uuid::new_v4().to_string()),
            Producer::Synthetic(batches) => {
                let SyntheticBatches {
                    traffic,
                    package_ids,
                    remaining,
                    sequence,
                } = batches.as_mut();
                let take = remaining.map_or(size as u64, |left| left.min(size as u64));
                if take == 0 {
                    return Ok(None);
                }
                let package_id = uuid::Builder::from_random_bytes(package_ids.random())
                    .into_uuid()
                    .to_string();
                let mut body = Vec::with_capacity(take as usize * 400);
                body.push(b'[');
                let mut invalid = 0;
                for (i, generated) in traffic.by_ref().take(take as usize).enumerate() {
                    let mut event = generated.event;
                    event.set("package_id", serde_json::Value::from(package_id.as_str()));
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(event.to_json_string().as_bytes());
                    invalid += u64::from(!generated.valid);
                }
                body.push(b']');
                if let Some(left) = remaining {
                    *left -= take;
                }
                let batch = Batch {
                    sequence: *sequence,
                    body: body.into(),
                    events: take,
                    invalid_generated: invalid,
                    lines_skipped: 0,
                    lines_end: None,
                };
                *sequence += 1;
                Ok(Some(batch))
            }
        }
    }
}

/// The progress bar's look, for a known total of `unit`s.
fn bar_style(unit: &str) -> ProgressStyle {
    let template =
        String::from("{spinner} [{elapsed_precise}] [{bar:24}] {human_pos}/{human_len} ")
            + unit
            + " ({per_sec:0}, eta {eta}) {msg}";
    ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn spinner_style(unit: &str) -> ProgressStyle {
    let template =
        String::from("{spinner} [{elapsed_precise}] {human_pos} ") + unit + " ({per_sec:0}) {msg}";
    ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// Runs the generator until the source is exhausted, the count or duration is reached,
/// or `stop` completes (Ctrl-C), and reports. An unreachable server is reported in the
/// summary (`server_unreachable`), not as an error, so the caller can print it.
pub async fn run_generate(
    config: GenerateConfig,
    source: Source,
    progress: ProgressBar,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<GenerateSummary, GenerateError> {
    if config.batch_size == 0 || config.concurrency == 0 {
        return Err(GenerateError::Invalid(
            "batch size and concurrency must be at least 1".into(),
        ));
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.concurrency)
        .timeout(config.request_timeout)
        .default_headers(key_headers(config.write_key.as_ref())?)
        .no_proxy()
        .build()
        .map_err(|e| GenerateError::Client(e.to_string()))?;
    let sender = Sender::new(client, &config.url, config.retries);

    let (mode, seed, producer, mut replay) = match &source {
        Source::Replay(replay) => {
            let state = ReadState::new(&replay.state_file);
            let start = if replay.reset {
                state.save(0)?;
                0
            } else {
                state.load()?
            };
            let total_lines = count_lines(&replay.file)?;
            if start > total_lines {
                tracing::warn!(
                    state_file = %replay.state_file.display(),
                    start,
                    total_lines,
                    "the saved position is past the end of the file: nothing to send (--reset starts over)"
                );
            }
            let reader = ReplayReader::open(&replay.file, start)?;
            progress.set_style(bar_style("lines"));
            progress.set_length(total_lines.saturating_sub(start));
            let position = ReplayPosition {
                file: replay.file.display().to_string(),
                state_file: replay.state_file.display().to_string(),
                started_at_line: start.min(total_lines),
                saved_line: start,
                total_lines,
            };
            (
                "replay",
                None,
                Producer::Replay(reader),
                Some((state, position)),
            )
        }
        Source::Synthetic(traffic) => {
            let mut package_ids = ChaCha8Rng::seed_from_u64(traffic.seed);
            package_ids.set_stream(2);
            let total = config.count.or_else(|| {
                let (rate, duration) = (config.rate?, config.duration?);
                Some((rate * duration.as_secs_f64()).round() as u64)
            });
            match total {
                Some(total) => {
                    progress.set_style(bar_style("events"));
                    progress.set_length(total);
                }
                None => progress.set_style(spinner_style("events")),
            }
            let producer = Producer::Synthetic(Box::new(SyntheticBatches {
                traffic: Traffic::new(traffic.clone()),
                package_ids,
                remaining: config.count,
                sequence: 0,
            }));
            ("synthetic", Some(traffic.seed), producer, None)
        }
    };

    // The producer thread: batches into a channel a little deeper than the requests in
    // flight; it ends when the channel closes.
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<Batch, GenerateError>>(config.concurrency + 2);
    let batch_size = config.batch_size;
    let mut producer = producer;
    std::thread::Builder::new()
        .name("generate-batches".into())
        .spawn(move || {
            loop {
                match producer.next_batch(batch_size) {
                    Ok(Some(batch)) => {
                        if tx.blocking_send(Ok(batch)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(error) => {
                        let _ = tx.blocking_send(Err(error));
                        return;
                    }
                }
            }
        })
        .map_err(|e| GenerateError::Invalid(format!("cannot start the batch thread: {e}")))?;

    let started = Instant::now();
    let interrupted = Arc::new(AtomicBool::new(false));
    let end = {
        let interrupted = interrupted.clone();
        let deadline = config
            .duration
            .map(|d| tokio::time::Instant::from_std(started + d));
        async move {
            let deadline = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop => interrupted.store(true, Ordering::SeqCst),
                _ = deadline => {}
            }
        }
    };
    let producer_error: Arc<std::sync::Mutex<Option<GenerateError>>> = Arc::default();
    let (pause, rate) = (config.pause, config.rate);
    let paced = {
        let producer_error = producer_error.clone();
        futures::stream::unfold((rx, 0u64, true), move |(mut rx, events, first)| {
            let producer_error = producer_error.clone();
            async move {
                let batch = match rx.recv().await? {
                    Ok(batch) => batch,
                    Err(error) => {
                        *producer_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                        return None;
                    }
                };
                if !first && !pause.is_zero() && batch.events > 0 {
                    tokio::time::sleep(pause).await;
                }
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(events as f64 / rate);
                    tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                }
                let events = events + batch.events;
                let first = first && batch.events == 0;
                Some((batch, (rx, events, first)))
            }
        })
    };
    let mut answers = Box::pin(
        paced
            .take_until(end)
            .map(|batch| {
                let sender = sender.clone();
                async move { sender.send(batch).await }
            })
            .buffered(config.concurrency),
    );

    let mut tally = Tally::new();
    let mut held_at: Option<u64> = None;
    let mut last_line = replay.as_ref().map(|(_, p)| p.started_at_line).unwrap_or(0);
    while let Some(sent) = answers.next().await {
        tally.record(&sent);
        if let (Some((state, position)), Some(lines_end)) = (replay.as_mut(), sent.batch.lines_end)
        {
            if held_at.is_none() && sent.outcome.is_final() {
                state.save(lines_end)?;
                position.saved_line = lines_end;
            } else if held_at.is_none() {
                tracing::warn!(
                    line = position.saved_line,
                    state_file = %position.state_file,
                    "a batch got no acknowledgement: the saved position stays here for this run, so a rerun resends from it"
                );
                held_at = Some(position.saved_line);
            }
            progress.inc(lines_end.saturating_sub(last_line));
            last_line = lines_end;
        } else {
            progress.inc(sent.batch.events);
        }
        progress.set_message(format!(
            "{} valid, {} invalid, {} errors",
            tally.valid,
            tally.invalid,
            tally.http_errors + tally.transport_errors
        ));
        if tally.answered == 0 && tally.consecutive_unanswered >= 3 {
            tracing::error!(url = sender.url(), "the server does not answer; giving up");
            break;
        }
    }
    drop(answers);
    progress.finish_and_clear();
    if let Some(error) = producer_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(error);
    }

    let mut summary = tally.summary(mode, sender.url(), started.elapsed());
    summary.seed = seed;
    summary.offered_rate = config.rate;
    summary.interrupted = interrupted.load(Ordering::SeqCst);
    summary.replay = replay.map(|(_, position)| position);
    Ok(summary)
}

/// What `write_jsonl` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WriteSummary {
    /// The output file.
    pub path: PathBuf,
    /// Events written.
    pub events: u64,
    /// Of those, broken on purpose.
    pub events_generated_invalid: u64,
    /// The seed (the same seed and settings write the same bytes).
    pub seed: u64,
}

/// Writes `count` synthetic events to `path` as JSON Lines (no `package_id`: a replay of
/// the file adds one per batch).
pub fn write_jsonl(
    traffic: TrafficConfig,
    count: u64,
    path: &Path,
    progress: &ProgressBar,
) -> Result<WriteSummary, GenerateError> {
    let io = |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    progress.set_style(bar_style("events"));
    progress.set_length(count);
    let seed = traffic.seed;
    let mut invalid = 0;
    for (i, generated) in Traffic::new(traffic).take(count as usize).enumerate() {
        out.write_all(generated.event.to_json_string().as_bytes())
            .map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        invalid += u64::from(!generated.valid);
        if i % 4096 == 0 {
            progress.set_position(i as u64);
        }
    }
    out.flush().map_err(io)?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    progress.finish_and_clear();
    Ok(WriteSummary {
        path: path.to_path_buf(),
        events: count,
        events_generated_invalid: invalid,
        seed,
    })
}
