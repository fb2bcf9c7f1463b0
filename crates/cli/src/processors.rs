//! Running one stream's processor and its compactor as a part of the pipeline.

use std::sync::Arc;

use anyhow::Context;
use clickstream_lake::Lake;
use clickstream_log::EventLog;
use clickstream_process::{
    EnrichSetup, Processor, ProcessorConfig, ProcessorHealth, ProcessorStats, Stream, run_compactor,
};
use clickstream_registry::RegistryClient;
use tokio::sync::{oneshot, watch};

use crate::config::Config;

/// Whether a drain of `stream` has nothing to read: none of its topics is among
/// `existing` (a log written while the stream was off). Such a processor is not started:
/// it would fail on the unknown topic (embedded log) or wait for partitions that never
/// come (Kafka), and the drain would not end.
pub(crate) fn nothing_to_drain(
    stream: Stream,
    existing: &[String],
    health: &ProcessorHealth,
) -> bool {
    let absent = !stream
        .topics()
        .iter()
        .any(|t| existing.iter().any(|e| e == t));
    if absent {
        tracing::info!(%stream, "no topics of this stream in the log: nothing to drain");
        health.stopped("nothing to drain: its topics are not in the log");
    }
    absent
}

/// The processor settings of `stream`: `[processor]`, with the Segment stream's own
/// consumer group.
pub(crate) fn processor_config(config: &Config, stream: Stream) -> ProcessorConfig {
    let mut processor = config.processor.clone();
    if stream != Stream::Clickstream {
        processor.group = config.segment.group.clone();
    }
    processor
}

/// Starts `stream`'s processor and its compactor and runs them until `stop`.
pub(crate) async fn run_processor(
    stream: Stream,
    (config, enrich): (Config, EnrichSetup),
    log: Arc<dyn EventLog>,
    registry: RegistryClient,
    lake: Lake,
    (health, stats, drain): (
        Arc<ProcessorHealth>,
        oneshot::Sender<Arc<ProcessorStats>>,
        bool,
    ),
    (stop_starting, stop): (
        impl Future<Output = ()> + Send + 'static,
        impl Future<Output = ()> + Send + 'static,
    ),
) -> anyhow::Result<()> {
    let starting = Processor::start(
        stream,
        processor_config(&config, stream),
        config.lake.clone(),
        &enrich,
        log,
        registry,
        lake.clone(),
    );
    // A shutdown while the processor is still starting (loading its state takes a while)
    // is not its failure: it has nothing to commit yet, and the registry or the log may
    // already be going away under it.
    let started = tokio::select! {
        started = starting => started,
        () = stop_starting => {
            health.stopped("shut down while starting");
            return Ok(());
        }
    }
    .with_context(|| format!("starting the {stream} stream's processor"));
    let mut processor = match started {
        Ok(processor) => processor.with_health(health),
        Err(e) => {
            health.stopped(format!("{e:#}"));
            return Err(e);
        }
    };
    if drain {
        processor = processor.drain();
    }
    let _ = stats.send(processor.stats());
    tracing::info!(lake = %lake.root(), drain, %stream, "processor running");
    let (stop_compactor, compactor_stopped) = watch::channel(false);
    let compactor = tokio::spawn(run_compactor(
        stream,
        lake,
        config.lake.clone(),
        processor.stats(),
        async move {
            let mut stopped = compactor_stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    let result = processor
        .run(stop)
        .await
        .with_context(|| format!("the {stream} stream's processor"));
    let _ = stop_compactor.send(true);
    let _ = compactor.await;
    result
}
