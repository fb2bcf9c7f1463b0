//! Running a process until it is told to stop: what `up`, `ingest`, `process` and
//! `registry` all do, with one start-up, one announcement and one shutdown path.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::config::Config;
use crate::listeners::display_url;
use crate::pipeline::{Pipeline, Roles};

/// Starts `roles` and runs them until `shutdown` completes or a part fails (or, with
/// `drain`, the processor has read the log to its end), then stops them all.
pub async fn serve(
    config: Config,
    roles: Roles,
    drain: bool,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut pipeline = Pipeline::start_roles(config, roles, drain).await?;
    announce(&pipeline, roles);
    let outcome = tokio::select! {
        _ = shutdown => {
            tracing::info!("shutting down: finishing requests in flight");
            Ok(())
        }
        ended = pipeline.failed() => ended,
    };
    let stats = if drain {
        pipeline.processor_stats().await
    } else {
        None
    };
    let stopped = pipeline.shutdown().await;
    outcome?;
    stopped?;
    if let Some(stats) = stats {
        let secs = started.elapsed().as_secs_f64();
        let events = stats.events_written.load(Ordering::Relaxed);
        let invalid = stats.invalid_written.load(Ordering::Relaxed);
        let duplicates = stats.duplicates_written.load(Ordering::Relaxed);
        if duplicates > 0 {
            println!("kept {duplicates} duplicates out of events (counted in the rate below)");
        }
        println!(
            "drained {events} events and {invalid} invalid events in {secs:.2} s: {:.0} events/s",
            (events + invalid + duplicates) as f64 / secs
        );
    }
    Ok(())
}

/// One line saying where each part of this process can be reached.
fn announce(pipeline: &Pipeline, roles: Roles) {
    let tls = pipeline.tls();
    let url = |addr: Option<std::net::SocketAddr>| {
        addr.map_or_else(|| "off".into(), |addr| display_url(addr, tls))
    };
    if roles.ingest {
        tracing::info!(
            ingest = %url(pipeline.ingest_addr()),
            registry = %pipeline.registry_url(),
            ui = %url(pipeline.ui_addr()),
            rest_proxy = %url(pipeline.rest_proxy_addr()),
            "clickstream is up: open the UI, POST events to /collect; Ctrl-C stops"
        );
    } else if roles.processor {
        tracing::info!(
            registry = %pipeline.registry_url(),
            metrics = %url(pipeline.metrics_addr()),
            "processor process is up; Ctrl-C stops"
        );
    } else {
        tracing::info!(registry = %pipeline.registry_url(), "schema registry process is up; Ctrl-C stops");
    }
}
