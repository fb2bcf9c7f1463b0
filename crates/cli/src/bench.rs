//! `clickstream bench`: load runs against a running pipeline.

use std::time::Duration;

use clap::Args;
use clickstream_loadgen::{
    Endpoint, IngestLoad, Shape, VisibilityLoad, run_ingest_load, run_visibility, wide,
};

/// Flags of `clickstream bench ingest`.
#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Base URL of the ingest API (loopback only: this is a load test).
    #[arg(long, default_value = "http://127.0.0.1:60000")]
    pub url: String,
    /// The route to load: `collect` POSTs batches of events; `ping` GETs /ping, the same
    /// HTTP path with no work behind it (the loopback ceiling). Any server with these
    /// routes will do, e.g. the Flask baseline in bench/baseline/.
    #[arg(long, value_enum, default_value_t = BenchEndpoint::Collect)]
    pub endpoint: BenchEndpoint,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Seed of the synthetic events.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The events' shape: `seed` (the bundled schema's fields) or `wide` (a 30-field
    /// version of the raw schema, registered at `--registry-url` before the load starts).
    #[arg(long, value_enum, default_value_t = BenchShape::Seed)]
    pub shape: BenchShape,
    /// Base URL of the Schema Registry where `--shape wide` registers its version.
    #[arg(long, default_value = "http://127.0.0.1:8085")]
    pub registry_url: String,
    /// A write key to send with every request (`X-Write-Key`), for a pipeline that
    /// requires one. Also read from `CLICKSTREAM_BENCH_WRITE_KEY`, which keeps it out of
    /// the process list.
    #[arg(long, env = "CLICKSTREAM_BENCH_WRITE_KEY", hide_env_values = true)]
    pub write_key: Option<String>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The event shapes `bench ingest` can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchShape {
    /// The seed's events.
    Seed,
    /// The seed's events plus seventeen fields of every Avro kind (30 fields in all).
    Wide,
}

/// The routes `bench ingest` can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchEndpoint {
    /// POST /collect.
    Collect,
    /// GET /ping.
    Ping,
}

/// Runs the load and prints the report.
pub async fn run_ingest(args: IngestBenchArgs) -> anyhow::Result<()> {
    let shape = match args.shape {
        BenchShape::Seed => Shape::Seed,
        BenchShape::Wide => {
            let id = wide::register_wide(&args.registry_url).await?;
            tracing::info!(id, "the wide version of the raw schema is registered");
            Shape::Wide
        }
    };
    let report = run_ingest_load(IngestLoad {
        url: args.url.clone(),
        endpoint: match args.endpoint {
            BenchEndpoint::Collect => Endpoint::Collect,
            BenchEndpoint::Ping => Endpoint::Ping,
        },
        batch_size: args.batch_size,
        connections: args.connections,
        duration: Duration::from_secs(args.duration_secs),
        seed: args.seed,
        shape,
        write_key: args.write_key.clone(),
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{:?} batch {:>5}  conns {:>3}  {:>10.0} events/s  {:>8.0} requests/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ok {}  failed {}  transport errors {}",
            report.endpoint,
            report.batch_size,
            report.connections,
            report.events_per_sec,
            report.requests_per_sec,
            report.latency_p50_ms,
            report.latency_p99_ms,
            report.latency_max_ms,
            report.requests_ok,
            report.requests_failed,
            report.transport_errors
        );
    }
    Ok(())
}

/// Flags of `clickstream bench visibility`.
#[derive(Debug, Args)]
pub struct VisibilityBenchArgs {
    /// Base URL of the ingest and SQL API (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:60000")]
    pub url: String,
    /// Events per second to offer (open loop).
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Seconds to offer load for.
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Milliseconds between two polls of the SQL API.
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Offers events at a fixed rate and reports acknowledgement-to-queryable latency.
pub async fn run_visibility_bench(args: VisibilityBenchArgs) -> anyhow::Result<()> {
    let report = run_visibility(VisibilityLoad {
        base_url: args.url.trim_end_matches('/').to_string(),
        rate: args.rate,
        batch_size: args.batch_size,
        duration: Duration::from_secs(args.duration_secs),
        poll_interval: Duration::from_millis(args.poll_ms),
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "offered {} events/s: ack to queryable p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} requests seen, {} missing; poll query p50 {:.0} ms)",
            report.offered_rate,
            report.visible_p50_ms,
            report.visible_p99_ms,
            report.visible_max_ms,
            report.requests_seen,
            report.requests_missing,
            report.poll_p50_ms
        );
    }
    Ok(())
}

/// Flags of `clickstream bench mock-kafka`.
#[derive(Debug, Args)]
pub struct MockKafkaArgs {
    /// Number of brokers.
    #[arg(long, default_value_t = 3)]
    pub brokers: i32,
    /// Partitions of each of the pipeline's topics.
    #[arg(long, default_value_t = 6)]
    pub partitions: u32,
}

/// `clickstream bench mock-kafka`: hosts librdkafka's mock cluster (real Kafka-protocol
/// brokers on loopback ports, data in memory) with the pipeline's topics, prints its
/// bootstrap servers and serves until `shutdown`. For benchmarks and for trying the Kafka
/// backend without a cluster; not a Kafka to keep data in.
pub async fn run_mock_kafka(
    args: MockKafkaArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    // The mock cluster is not Send: it lives on this thread until shutdown.
    let cluster = rdkafka::mocking::MockCluster::new(args.brokers)
        .context("starting the mock Kafka cluster")?;
    for spec in crate::topics::topic_specs(None, args.partitions)? {
        cluster
            .create_topic(&spec.name, spec.partitions as i32, 1)
            .with_context(|| format!("creating topic {}", spec.name))?;
    }
    println!("{}", cluster.bootstrap_servers());
    shutdown.await;
    drop(cluster);
    Ok(())
}
