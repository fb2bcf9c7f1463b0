//! What a generator run did: counts from the server's answers, errors, rate and
//! acknowledgement latency, printed at the end (as text or JSON).

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::sender::{Outcome, Sent};

/// Where a replay started and stopped in its file.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayPosition {
    /// The replayed file.
    pub file: String,
    /// The state file.
    pub state_file: String,
    /// Line the run started at.
    pub started_at_line: u64,
    /// Line saved in the state file at the end (the next run starts there).
    pub saved_line: u64,
    /// Lines in the file.
    pub total_lines: u64,
}

/// The end-of-run report.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateSummary {
    /// `replay` or `synthetic`.
    pub mode: String,
    /// Where batches went.
    pub url: String,
    /// Seed of the synthetic traffic (rerun with it to get the same events).
    pub seed: Option<u64>,
    /// Batches POSTed (whatever their answer).
    pub batches_sent: u64,
    /// Events in those batches.
    pub events_sent: u64,
    /// Events the server took as valid (`valid_count` of its answers).
    pub events_accepted_valid: u64,
    /// Events the server took as invalid (`invalid_count`), kept with their reason.
    pub events_accepted_invalid: u64,
    /// Synthetic: events broken on purpose among those sent.
    pub events_generated_invalid: u64,
    /// Replay: lines that were not a JSON object, skipped.
    pub lines_skipped: u64,
    /// Batches answered with an HTTP error (after retries, if it was transient).
    pub http_errors: u64,
    /// Batches that got no HTTP answer (after retries).
    pub transport_errors: u64,
    /// Attempts repeated after a transient failure.
    pub retries: u64,
    /// Wall-clock seconds from the first batch to the last answer.
    pub elapsed_secs: f64,
    /// Events acknowledged per second.
    pub achieved_rate: f64,
    /// The rate asked for, events per second (none: as fast as answers come).
    pub offered_rate: Option<f64>,
    /// Median time from request to acknowledgement, milliseconds.
    pub ack_latency_p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub ack_latency_p99_ms: f64,
    /// Slowest acknowledgement, milliseconds.
    pub ack_latency_max_ms: f64,
    /// Replay: the resume position.
    pub replay: Option<ReplayPosition>,
    /// No batch got any HTTP answer.
    pub server_unreachable: bool,
    /// Stopped early by Ctrl-C or SIGTERM.
    pub interrupted: bool,
    /// The first HTTP or transport error, to say why.
    pub first_error: Option<String>,
}

/// Running totals, fed with each batch's outcome in order.
#[derive(Debug)]
pub(crate) struct Tally {
    pub batches_sent: u64,
    pub events_sent: u64,
    pub valid: u64,
    pub invalid: u64,
    pub generated_invalid: u64,
    pub lines_skipped: u64,
    pub http_errors: u64,
    pub transport_errors: u64,
    pub retries: u64,
    pub answered: u64,
    pub consecutive_unanswered: u64,
    pub first_error: Option<String>,
    /// Microseconds.
    latency: Histogram<u64>,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            batches_sent: 0,
            events_sent: 0,
            valid: 0,
            invalid: 0,
            generated_invalid: 0,
            lines_skipped: 0,
            http_errors: 0,
            transport_errors: 0,
            retries: 0,
            answered: 0,
            consecutive_unanswered: 0,
            first_error: None,
            // invariant: constant, valid bounds (1 µs to 10 min, 3 significant figures).
            latency: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        }
    }

    /// Counts one batch; logs its error if it had one.
    pub fn record(&mut self, sent: &Sent) {
        self.lines_skipped += sent.batch.lines_skipped;
        self.retries += u64::from(sent.retries);
        if sent.outcome == Outcome::Empty {
            return;
        }
        self.batches_sent += 1;
        self.events_sent += sent.batch.events;
        self.generated_invalid += sent.batch.invalid_generated;
        if let Some(latency) = sent.latency {
            let _ = self
                .latency
                .record((latency.as_micros() as u64).clamp(1, 600_000_000));
        }
        if sent.answered {
            self.answered += 1;
            self.consecutive_unanswered = 0;
        } else {
            self.consecutive_unanswered += 1;
        }
        let error = match &sent.outcome {
            Outcome::Acked { valid, invalid } => {
                self.valid += valid;
                self.invalid += invalid;
                None
            }
            Outcome::Rejected { status, message } | Outcome::Failed { status, message } => {
                self.http_errors += 1;
                Some(format!("HTTP {status}: {message}"))
            }
            Outcome::Unreachable { error } => {
                self.transport_errors += 1;
                Some(error.clone())
            }
            Outcome::Empty => None,
        };
        if let Some(error) = error {
            tracing::error!(
                batch = sent.batch.sequence,
                events = sent.batch.events,
                retries = sent.retries,
                %error,
                "batch not accepted; going on"
            );
            self.first_error.get_or_insert(error);
        }
    }

    pub fn summary(&self, mode: &str, url: &str, elapsed: Duration) -> GenerateSummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let secs = elapsed.as_secs_f64().max(1e-9);
        let has_latency = !self.latency.is_empty();
        GenerateSummary {
            mode: mode.to_string(),
            url: url.to_string(),
            seed: None,
            batches_sent: self.batches_sent,
            events_sent: self.events_sent,
            events_accepted_valid: self.valid,
            events_accepted_invalid: self.invalid,
            events_generated_invalid: self.generated_invalid,
            lines_skipped: self.lines_skipped,
            http_errors: self.http_errors,
            transport_errors: self.transport_errors,
            retries: self.retries,
            elapsed_secs: elapsed.as_secs_f64(),
            achieved_rate: (self.valid + self.invalid) as f64 / secs,
            offered_rate: None,
            ack_latency_p50_ms: if has_latency {
                ms(self.latency.value_at_quantile(0.5))
            } else {
                0.0
            },
            ack_latency_p99_ms: if has_latency {
                ms(self.latency.value_at_quantile(0.99))
            } else {
                0.0
            },
            ack_latency_max_ms: if has_latency {
                ms(self.latency.max())
            } else {
                0.0
            },
            replay: None,
            server_unreachable: self.batches_sent > 0 && self.answered == 0,
            interrupted: false,
            first_error: self.first_error.clone(),
        }
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offered = match self.offered_rate {
            Some(rate) => format!("; offered {}/s", thousands(rate.round() as u64)),
            None => String::new(),
        };
        writeln!(
            f,
            "sent      {} events in {} batches to {} in {:.1} s: {} events/s acknowledged{offered}",
            thousands(self.events_sent),
            thousands(self.batches_sent),
            self.url,
            self.elapsed_secs,
            thousands(self.achieved_rate.round() as u64),
        )?;
        let generated = match self.mode.as_str() {
            "synthetic" => format!(
                " ({} sent broken on purpose)",
                thousands(self.events_generated_invalid)
            ),
            _ => String::new(),
        };
        writeln!(
            f,
            "accepted  {} valid, {} invalid{generated}",
            thousands(self.events_accepted_valid),
            thousands(self.events_accepted_invalid),
        )?;
        writeln!(
            f,
            "errors    {} HTTP, {} without answer, {} retries{}",
            self.http_errors,
            self.transport_errors,
            self.retries,
            match &self.first_error {
                Some(error) => format!(" (first: {error})"),
                None => String::new(),
            }
        )?;
        write!(
            f,
            "ack       p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.ack_latency_p50_ms, self.ack_latency_p99_ms, self.ack_latency_max_ms
        )?;
        if let Some(replay) = &self.replay {
            write!(
                f,
                "\nreplay    {}: lines {} to {} of {} done, {} unparsable skipped; {} now says {}",
                replay.file,
                replay.started_at_line,
                replay.saved_line,
                replay.total_lines,
                self.lines_skipped,
                replay.state_file,
                replay.saved_line,
            )?;
        }
        if let Some(seed) = self.seed {
            write!(
                f,
                "\nseed      {seed} (--seed {seed} generates the same events)"
            )?;
        }
        if self.interrupted {
            write!(f, "\nstopped   early, on a signal")?;
        }
        if self.server_unreachable {
            write!(f, "\nFAILED    the server at {} never answered", self.url)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
