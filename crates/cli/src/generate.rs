//! `clickstream generate`: the original generator's command line (`[hostname] [filename]
//! [--reset]`) plus synthetic traffic, wired to `clickstream_loadgen`.

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use clickstream_loadgen::{
    GenerateConfig, ReplayConfig, Source, TrafficConfig, default_start, parse_duration, parse_rate,
    run_generate, write_jsonl,
};
use clickstream_secret::Secret;

use crate::progress;

/// Flags of `clickstream generate`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  clickstream generate                                   replay data/events.json to localhost:60000
  clickstream generate http://127.0.0.1:60000 events.json --reset --pause 6s
  clickstream generate --synthetic --rate 5000/s --duration 60s
  clickstream generate --synthetic --count 100000 --seed 7 --out events.jsonl")]
pub struct GenerateArgs {
    /// Base URL of the ingest API; events go to <hostname>/collect.
    #[arg(default_value = "http://localhost:60000")]
    pub hostname: String,
    /// JSON Lines file to replay, one event per line (not with --synthetic).
    #[arg(default_value = "data/events.json", conflicts_with = "synthetic")]
    pub filename: PathBuf,
    /// Replay from line 0 instead of the position saved in the state file.
    #[arg(long, conflicts_with = "synthetic")]
    pub reset: bool,
    /// Where a replay keeps its position: the index of the first line not yet
    /// acknowledged, written after each acknowledged batch.
    #[arg(long, default_value = "read_state.txt", value_name = "FILE")]
    pub state_file: PathBuf,

    /// Simulate realistic traffic instead of replaying a file.
    #[arg(long)]
    pub synthetic: bool,
    /// Events per second to offer: 5000/s, 300/min, 2k/s, or max (as fast as answers come)
    /// [default: 1000/s with --synthetic, max for a replay].
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Stop after this long: 60s, 2m, 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many events (--synthetic).
    #[arg(long, requires = "synthetic")]
    pub count: Option<u64>,
    /// Seed of the synthetic traffic: the same seed and flags give the same events
    /// [default: random, printed in the summary].
    #[arg(long, requires = "synthetic")]
    pub seed: Option<u64>,
    /// Share of synthetic events broken on purpose, as a buggy client would (0 to 1).
    #[arg(long, default_value_t = 0.01, requires = "synthetic")]
    pub invalid_share: f64,
    /// Write the synthetic events to this JSON Lines file instead of sending them (needs
    /// --count, or --rate and --duration).
    #[arg(long, value_name = "FILE", requires = "synthetic")]
    pub out: Option<PathBuf>,
    /// Timestamp of the simulated clock's start: RFC 3339, a date, or `now` (then output
    /// depends on when it runs) [default: 2024-06-03T00:00:00Z].
    #[arg(long, value_name = "TIME", requires = "synthetic")]
    pub start_time: Option<String>,
    /// Known customers who come back across days.
    #[arg(long, default_value_t = 5_000, requires = "synthetic")]
    pub customers: usize,
    /// Sessions per simulated day (about six events each): how fast the simulated clock
    /// runs relative to the event count.
    #[arg(long, default_value_t = 2_000.0, requires = "synthetic")]
    pub sessions_per_day: f64,
    /// The first event id; ids count up from it.
    #[arg(long, default_value_t = 1, requires = "synthetic")]
    pub first_id: i64,

    /// Events per request [default: 987 for a replay, as the original; 100 synthetic].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Wait between two batches (the original generator waited 6s).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub pause: Duration,
    /// Requests in flight at once [default: 1 for a replay, keeping the file's order; 4
    /// synthetic].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Times to retry a batch answered 408, 429 or 5xx, or not answered, with backoff.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// How long one request may take before it counts as unanswered.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// A write key to send with every batch (`X-Write-Key`), for an ingest that requires
    /// one. Also read from `CLICKSTREAM_GENERATE_WRITE_KEY`, which keeps it out of the
    /// process list.
    #[arg(
        long,
        env = "CLICKSTREAM_GENERATE_WRITE_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub write_key: Option<Secret>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs `clickstream generate`; `stop` ends it early (Ctrl-C), still printing the summary.
pub async fn run(
    args: GenerateArgs,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let url = base_url(&args.hostname);
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let rate = match args.rate.as_deref() {
        None if args.synthetic => Some(1000.0),
        None | Some("max" | "unlimited") => None,
        Some(text) => Some(parse_rate(text).map_err(anyhow::Error::msg)?),
    };
    if !(0.0..=1.0).contains(&args.invalid_share) {
        bail!(
            "--invalid-share must be between 0 and 1, not {}",
            args.invalid_share
        );
    }

    if let Some(out) = &args.out {
        let count = match (args.count, rate, args.duration) {
            (Some(count), _, _) => count,
            (None, Some(rate), Some(duration)) => (rate * duration.as_secs_f64()).round() as u64,
            _ => bail!(
                "--out needs --count, or --rate and --duration, to know how many events to write"
            ),
        };
        let progress = progress::bar(show_progress);
        let written = write_jsonl(traffic_config(&args)?, count, out, &progress)?;
        if args.json {
            println!("{}", serde_json::to_string(&written)?);
        } else {
            println!(
                "wrote {} events ({} broken on purpose) to {}; seed {} (--seed {} writes the same file)",
                written.events,
                written.events_generated_invalid,
                written.path.display(),
                written.seed,
                written.seed
            );
        }
        return Ok(());
    }

    let source = if args.synthetic {
        Source::Synthetic(traffic_config(&args)?)
    } else {
        anyhow::ensure!(
            args.filename.is_file(),
            "{} is not a file (give the JSON Lines file to replay, or --synthetic)",
            args.filename.display()
        );
        Source::Replay(ReplayConfig {
            file: args.filename.clone(),
            state_file: args.state_file.clone(),
            reset: args.reset,
        })
    };
    let config = GenerateConfig {
        url: url.clone(),
        batch_size: args
            .batch_size
            .unwrap_or(if args.synthetic { 100 } else { 987 }),
        concurrency: args
            .concurrency
            .unwrap_or(if args.synthetic { 4 } else { 1 }),
        pause: args.pause,
        rate,
        count: args.count,
        duration: args.duration,
        retries: args.retries,
        request_timeout: args.timeout,
        write_key: args.write_key.clone(),
    };
    let summary = run_generate(config, source, progress::bar(show_progress), stop)
        .await
        .context("generate")?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{summary}");
    }
    if summary.server_unreachable {
        bail!("the server at {url} never answered");
    }
    Ok(())
}

fn traffic_config(args: &GenerateArgs) -> anyhow::Result<TrafficConfig> {
    Ok(TrafficConfig {
        seed: args.seed.unwrap_or_else(rand::random),
        start: start_time(args.start_time.as_deref())?,
        customers: args.customers,
        sessions_per_day: args.sessions_per_day,
        invalid_share: args.invalid_share,
        first_id: args.first_id,
        ..TrafficConfig::default()
    })
}

/// `now`, an RFC 3339 timestamp, or a date (midnight UTC).
fn start_time(text: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    let Some(text) = text else {
        return Ok(default_start());
    };
    if text == "now" {
        return Ok(Utc::now());
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    bail!(
        "--start-time {text:?}: use `now`, a date (2024-06-03) or RFC 3339 (2024-06-03T08:00:00Z)"
    )
}

/// The original took a URL with its scheme; a bare `host:port` gets `http://`.
fn base_url(hostname: &str) -> String {
    let trimmed = hostname.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_become_base_urls() {
        assert_eq!(
            base_url("http://localhost:60000/"),
            "http://localhost:60000"
        );
        assert_eq!(base_url("127.0.0.1:60000"), "http://127.0.0.1:60000");
    }

    #[test]
    fn start_times_parse() {
        assert_eq!(start_time(None).expect("default"), default_start());
        assert_eq!(
            start_time(Some("2024-06-03")).expect("date"),
            start_time(Some("2024-06-03T00:00:00Z")).expect("rfc 3339")
        );
        assert!(start_time(Some("yesterday")).is_err());
    }
}
