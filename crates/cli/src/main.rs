//! `clickstream`: a clickstream event pipeline in one binary.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use clickstream::config::{self, Config, LogFormat};
use clickstream::serve::serve;
use clickstream::{Roles, bench, generate, lake_cmd, progress};
use tracing_subscriber::EnvFilter;

/// jemalloc instead of glibc's malloc: measured faster on every path of the pipeline and
/// with a lower catch-up peak (bench/README.md "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at its start (the `_RJEM_MALLOC_CONF` environment variable
/// still overrides them). One arena instead of four per core: each arena keeps the pages
/// its threads freed for up to ten seconds, and the processor builds a batch on one thread
/// and commits and frees it on another: with the default arenas a drain's peak held
/// ~150 MB more, for no measurable speed (bench/README.md "Memory of a catch-up").
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a `'static` C string literal, never written.
#[allow(unsafe_code)]
unsafe impl Sync for MallocConf {}

// SAFETY: jemalloc (built with the `_rjem_` prefix by tikv-jemalloc-sys) reads this
// symbol as its `malloc_conf`: a `const char *` to a NUL-terminated option string, which
// `MallocConf` is, by `repr(transparent)`.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf = MallocConf(c"narenas:1".as_ptr());

/// Clickstream event pipeline: HTTP ingest with Avro validation, a Confluent-compatible
/// Schema Registry, a durable partitioned log, a stream processor landing events exactly
/// once in a Delta lake, and SQL over it, in one process.
///
/// Configuration is read from built-in defaults, then the TOML file given with --config,
/// then the environment (API_PORT, SCHEMA_REGISTRY_URL, KAFKA_BOOTSTRAP_SERVERS, and
/// CLICKSTREAM_<SECTION>__<KEY> for any setting), then flags.
#[derive(Debug, Parser)]
#[command(name = "clickstream", version, propagate_version = true)]
struct Cli {
    /// TOML configuration file (see config/clickstream.example.toml).
    #[arg(long, global = true, value_name = "FILE", env = "CLICKSTREAM_CONFIG")]
    config: Option<PathBuf>,

    /// Directory for the log and the registry's state [default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Log line format.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole pipeline in this process: durable log, Schema Registry (port 8085),
    /// ingest and SQL API (port 60000), processor and Delta lake, and the web UI (port
    /// 8080), on embedded defaults with data under ./data.
    Up(UpArgs),
    /// Serve only the ingest API (and SQL over the lake), for running roles separately:
    /// with Kafka as the log (KAFKA_BOOTSTRAP_SERVERS) and an external registry
    /// (SCHEMA_REGISTRY_URL); `clickstream process` instances do the rest.
    Ingest(IngestArgs),
    /// Serve only the Confluent-compatible Schema Registry, with its state in
    /// <data-dir>/registry.
    Registry(RegistryArgs),
    /// Run only the stream processor: raw and invalid topics to the latest topic and the
    /// Delta lake. With the embedded log, only while no `up` holds the same data dir
    /// (e.g. to drain a backlog); the registry must be reachable.
    Process(ProcessArgs),
    /// Run one read-only SQL query over the lake's tables (events, invalid_events,
    /// dead_letters, unique_users_daily) and print the result.
    Sql(SqlArgs),
    /// Lake maintenance: compact small files, delete files no version needs.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Send events to /collect: replay a JSON Lines file as the original generator did
    /// (`generate [hostname] [filename] [--reset]`, resuming from read_state.txt), or
    /// realistic synthetic traffic at a rate (`--synthetic --rate 5000/s --duration 60s`).
    Generate(Box<generate::GenerateArgs>),
    /// Drive load against a running ingest API and report throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print the effective configuration (after file, environment and flags) as JSON.
    Config,
}

#[derive(Debug, Args)]
struct UpArgs {
    /// Port of the ingest API (0 picks a free port).
    #[arg(long)]
    api_port: Option<u16>,
    /// Port of the embedded Schema Registry (0 picks a free port).
    #[arg(long)]
    registry_port: Option<u16>,
    /// Use the registry at this URL instead of serving one.
    #[arg(long, value_name = "URL")]
    registry_url: Option<String>,
    #[command(flatten)]
    ui: UiFlags,
    #[command(flatten)]
    rest_proxy: RestProxyFlags,
}

/// The REST Proxy's flags, on every role that serves ingest.
#[derive(Debug, Args)]
struct RestProxyFlags {
    /// Port of the REST Proxy's produce API (0 picks a free port).
    #[arg(long)]
    rest_proxy_port: Option<u16>,
    /// Do not serve the REST Proxy's produce API.
    #[arg(long)]
    no_rest_proxy: bool,
}

impl RestProxyFlags {
    fn apply(&self, config: &mut Config) {
        if let Some(port) = self.rest_proxy_port {
            config.rest_proxy.port = port;
        }
        if self.no_rest_proxy {
            config.rest_proxy.enabled = false;
        }
    }
}

/// The web UI's flags, on every role that serves it.
#[derive(Debug, Args)]
struct UiFlags {
    /// Port of the web UI (0 picks a free port).
    #[arg(long)]
    ui_port: Option<u16>,
    /// Do not serve the web UI.
    #[arg(long)]
    no_ui: bool,
}

impl UiFlags {
    fn apply(&self, config: &mut Config) {
        if let Some(port) = self.ui_port {
            config.ui.port = port;
        }
        if self.no_ui {
            config.ui.enabled = false;
        }
    }
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Port of the ingest API (0 picks a free port).
    #[arg(long)]
    api_port: Option<u16>,
    /// The registry to use [default: SCHEMA_REGISTRY_URL].
    #[arg(long, value_name = "URL")]
    registry_url: Option<String>,
    #[command(flatten)]
    ui: UiFlags,
    #[command(flatten)]
    rest_proxy: RestProxyFlags,
}

#[derive(Debug, Args)]
struct RegistryArgs {
    /// Port to listen on (0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
}

#[derive(Debug, Args)]
struct ProcessArgs {
    /// Stop once the log is read to its end and committed, and print the throughput.
    #[arg(long)]
    drain: bool,
}

#[derive(Debug, Args)]
struct SqlArgs {
    /// The query, e.g. "SELECT type, count(*) FROM events GROUP BY type".
    query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    format: SqlFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SqlFormat {
    /// An aligned text table.
    Table,
    /// One JSON array of row objects.
    Json,
    /// CSV with a header line.
    Csv,
}

#[derive(Debug, Subcommand)]
enum LakeCommand {
    /// Rewrite small files into files of about `lake.target_file_bytes`.
    Optimize {
        /// Only this table (default: all).
        #[arg(long)]
        table: Option<String>,
    },
    /// Delete data files that no table version newer than the retention needs.
    Vacuum {
        /// Keep files needed by versions younger than this many hours
        /// [default: lake.vacuum_retention_hours].
        #[arg(long)]
        retention_hours: Option<u64>,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// POST batches of realistic events to /collect from many connections for a while,
    /// then print events/s and acknowledgement latency percentiles.
    Ingest(bench::IngestBenchArgs),
    /// Offer events at a fixed rate and measure how long after its acknowledgement each
    /// request's events become visible to SQL.
    Visibility(bench::VisibilityBenchArgs),
    /// Host librdkafka's mock Kafka cluster with the pipeline's topics and print its
    /// bootstrap servers (for the Kafka mode of the benchmarks; data stays in memory).
    MockKafka(bench::MockKafkaArgs),
}

/// jemalloc's own counts, refreshed (its statistics are cached until the epoch advances):
/// for `/metrics` ([`clickstream::memory`]).
fn jemalloc_stats() -> Option<clickstream::memory::AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(clickstream::memory::AllocatorStats {
        allocated: stats::allocated::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = config::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        if config.log.dir == config.data_dir.join("log") {
            config.log.dir = dir.join("log");
        }
        config.data_dir = dir.clone();
    }
    if let Some(format) = cli.log_format {
        config.logging.format = format;
    }
    init_tracing(&config);
    clickstream::memory::report_allocator(jemalloc_stats);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    match command {
        Command::Up(args) => {
            if let Some(port) = args.api_port {
                config.ingest.port = port;
            }
            if let Some(port) = args.registry_port {
                config.registry.port = port;
            }
            if let Some(url) = args.registry_url {
                config.registry.url = Some(url.into());
            }
            args.ui.apply(&mut config);
            args.rest_proxy.apply(&mut config);
            let roles = Roles::all(&config);
            serve(config, roles, false, shutdown_signal()).await
        }
        Command::Ingest(args) => {
            if let Some(port) = args.api_port {
                config.ingest.port = port;
            }
            if let Some(url) = args.registry_url {
                config.registry.url = Some(url.into());
            }
            anyhow::ensure!(
                config.registry.url.is_some(),
                "the ingest role uses an external registry: set SCHEMA_REGISTRY_URL or \
                 --registry-url (or run `clickstream up` for everything in one process)"
            );
            config.processor.enabled = false;
            args.ui.apply(&mut config);
            args.rest_proxy.apply(&mut config);
            let roles = Roles::ingest(&config);
            serve(config, roles, false, shutdown_signal()).await
        }
        Command::Registry(args) => {
            if let Some(port) = args.port {
                config.registry.port = port;
            }
            serve(config, Roles::registry(), false, shutdown_signal()).await
        }
        Command::Process(args) => {
            serve(config, Roles::processor(), args.drain, shutdown_signal()).await
        }
        Command::Sql(args) => {
            let format = match args.format {
                SqlFormat::Table => lake_cmd::SqlOutput::Table,
                SqlFormat::Json => lake_cmd::SqlOutput::Json,
                SqlFormat::Csv => lake_cmd::SqlOutput::Csv,
            };
            lake_cmd::sql(config, &args.query, format).await
        }
        Command::Lake(LakeCommand::Optimize { table }) => {
            lake_cmd::optimize(config, table.as_deref()).await
        }
        Command::Lake(LakeCommand::Vacuum {
            retention_hours,
            dry_run,
        }) => lake_cmd::vacuum(config, retention_hours, dry_run).await,
        Command::Generate(args) => generate::run(*args, shutdown_signal()).await,
        Command::Bench(BenchCommand::Ingest(args)) => bench::run_ingest(args).await,
        Command::Bench(BenchCommand::Visibility(args)) => bench::run_visibility_bench(args).await,
        Command::Bench(BenchCommand::MockKafka(args)) => {
            bench::run_mock_kafka(args, shutdown_signal()).await
        }
        Command::Config => {
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// Dependencies too chatty at info, and the level they are kept at by default.
const QUIET_DEPENDENCIES: &[(&str, &str)] = &[("buoyant_kernel", "buoyant_kernel=warn")];

fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let mut filter = EnvFilter::new(&config.logging.filter);
        // Delta's kernel logs every snapshot load at info: once per table per second with
        // the UI open. Keep it at warn unless the filter says otherwise.
        for (target, directive) in QUIET_DEPENDENCIES {
            if !config.logging.filter.contains(target)
                && let Ok(directive) = directive.parse()
            {
                filter = filter.add_directive(directive);
            }
        }
        filter
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(progress::StderrBelowBars);
    match config.logging.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
