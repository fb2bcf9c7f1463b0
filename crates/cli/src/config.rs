//! The `clickstream` configuration: built-in defaults, then a TOML file, then environment
//! (the original stack's variable names, and `CLICKSTREAM_SECTION__KEY`), then flags.
//!
//! Every section rejects unknown keys, so a typo in a config file is an error, not a
//! silently ignored setting.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clickstream_edge::{AuthConfig, HttpConfig, LimitsConfig};
use clickstream_enrich::EnrichConfig;
use clickstream_ingest::IngestConfig;
use clickstream_kafka::KafkaConfig;
use clickstream_lake::LakeConfig;
use clickstream_log::EmbeddedLogConfig;
use clickstream_process::ProcessorConfig;
use clickstream_query::QueryConfig;
use clickstream_restproxy::RestProxyConfig;
use clickstream_secret::SecretUrl;
use clickstream_ui::UiConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything `clickstream` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the embedded log and the registry's state.
    pub data_dir: PathBuf,
    /// The HTTP ingest API.
    pub ingest: IngestConfig,
    /// The Schema Registry: served here, or an external one at `url`.
    pub registry: RegistryConfig,
    /// The embedded durable log (`dir` defaults to `<data_dir>/log`).
    pub log: EmbeddedLogConfig,
    /// Which topics exist and how many partitions they have.
    pub topics: TopicsConfig,
    /// The Delta lake (`url` defaults to `file://<data_dir>/lake`) and its flush policy.
    pub lake: LakeConfig,
    /// The stream processor.
    pub processor: ProcessorConfig,
    /// What the processor enriches events with.
    pub enrich: EnrichConfig,
    /// A Kafka cluster to use instead of the embedded log.
    pub kafka: KafkaConfig,
    /// Log output.
    pub logging: LoggingConfig,
    /// The web UI (port 8080).
    pub ui: UiConfig,
    /// Who may use the admin routes: the UI's API, SQL, the registry's writes.
    pub auth: AuthConfig,
    /// Timeouts and the connection cap of every HTTP listener.
    pub http: HttpConfig,
    /// What SQL from `/api/sql`, the web UI and `clickstream sql` may cost.
    pub query: QueryConfig,
    /// Rate limits per write key and per client IP, and the load bounds of ingest.
    pub limits: LimitsConfig,
    /// Confluent REST Proxy's produce API, served beside ingest (port 8082).
    pub rest_proxy: RestProxyConfig,
    /// Segment's tracking API on the ingest port, and the processor of its stream.
    pub segment: SegmentConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            ingest: IngestConfig::default(),
            registry: RegistryConfig::default(),
            log: EmbeddedLogConfig::default(),
            topics: TopicsConfig::default(),
            lake: LakeConfig::default(),
            processor: ProcessorConfig::default(),
            enrich: EnrichConfig::default(),
            kafka: KafkaConfig::default(),
            logging: LoggingConfig::default(),
            ui: UiConfig::default(),
            auth: AuthConfig::default(),
            http: HttpConfig::default(),
            query: QueryConfig::default(),
            limits: LimitsConfig::default(),
            rest_proxy: RestProxyConfig::default(),
            segment: SegmentConfig::default(),
        }
    }
}

/// The Segment stream: Segment's tracking API (`/v1/batch`, `/v1/track`, ...) on the
/// ingest port, its topics and subject, and a processor instance of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentConfig {
    /// Whether ingest serves Segment's API and the processor lands its stream.
    pub enabled: bool,
    /// Consumer group of the Segment stream's processor; also part of its tables' `txn`
    /// app ids.
    pub group: String,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            group: "clickstream-segment-processor".into(),
        }
    }
}

/// Where the Schema Registry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// URL of an external Confluent-compatible registry (`SCHEMA_REGISTRY_URL`). When set,
    /// clickstream uses it and does not serve its own. A password in it
    /// (`https://user:password@host/`) is sent as basic auth and redacted wherever the
    /// config is printed.
    pub url: Option<SecretUrl>,
    /// Address the embedded registry listens on.
    pub host: String,
    /// Port the embedded registry listens on (8085, as in the original stack).
    pub port: u16,
    /// Largest request body the embedded registry accepts.
    pub max_body_bytes: usize,
    /// How often ingest asks a registry outside its process (`url`, or `clickstream
    /// registry`) for the raw subject's latest version, to validate with it from then on
    /// (0: never; new versions then apply at the next start). A registry in the same
    /// process needs no polling: its new versions apply from the next request.
    pub poll_interval_ms: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            url: None,
            host: "127.0.0.1".into(),
            port: 8085,
            max_body_bytes: 4 * 1024 * 1024,
            poll_interval_ms: 2000,
        }
    }
}

/// Topic layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// CSV of `topic,partitions,replication` lines overriding the defaults.
    pub partitions_csv: Option<PathBuf>,
    /// Partitions of every topic the CSV does not name.
    pub default_partitions: u32,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            partitions_csv: None,
            default_partitions: 6,
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `text` for people, `json` for log shippers.
    pub format: LogFormat,
    /// `tracing` filter directives; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Environment variables of the original stack (and a few of ours with names of their own)
/// and the config keys they set.
const SEED_ENV: &[(&str, &str)] = &[
    ("CLICKSTREAM_ADMIN_TOKEN", "auth.admin_token"),
    ("CLICKSTREAM_TLS_CERT", "http.tls_cert"),
    ("CLICKSTREAM_TLS_KEY", "http.tls_key"),
    ("API_PORT", "ingest.port"),
    ("SCHEMA_REGISTRY_URL", "registry.url"),
    ("KAFKA_BOOTSTRAP_SERVERS", "kafka.bootstrap_servers"),
    ("MINIO_ENDPOINT", "lake.s3.endpoint"),
    ("MINIO_ROOT_USER", "lake.s3.access_key_id"),
    ("MINIO_ROOT_PASSWORD", "lake.s3.secret_access_key"),
];

/// Top-level keys of [`Config`], the only ones `CLICKSTREAM_*` variables may set.
const SECTIONS: &[&str] = &[
    "data_dir",
    "ingest",
    "registry",
    "log",
    "topics",
    "lake",
    "processor",
    "enrich",
    "kafka",
    "logging",
    "ui",
    "auth",
    "http",
    "query",
    "limits",
    "rest_proxy",
    "segment",
];

/// Loads defaults, then `file` (if any), then environment variables.
pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(file) = file {
        anyhow::ensure!(
            file.exists(),
            "config file {} does not exist",
            file.display()
        );
        figment = figment.merge(Toml::file_exact(file));
    }
    let seed = Env::raw().filter_map(|key| {
        SEED_ENV
            .iter()
            .find(|(name, _)| key.as_str().eq_ignore_ascii_case(name))
            .map(|(_, path)| (*path).into())
    });
    // Only variables naming a setting: CLICKSTREAM_BIN and friends belong to scripts.
    let ours = Env::prefixed("CLICKSTREAM_").split("__").filter(|key| {
        let key = key.as_str().to_ascii_lowercase();
        let top = key.split('.').next().unwrap_or_default();
        SECTIONS.contains(&top)
    });
    figment = figment.merge(seed).merge(ours);
    let mut config: Config = figment
        .extract()
        .map_err(|e| anyhow::anyhow!(format_errors(e)))
        .context("invalid configuration")?;
    config.http.validate().context("invalid configuration")?;
    if config.log.dir == EmbeddedLogConfig::default().dir {
        config.log.dir = config.data_dir.join("log");
    }
    // An empty variable means "unset", as shells and compose files commonly pass them.
    if config
        .registry
        .url
        .as_ref()
        .is_some_and(|u| u.expose().trim().is_empty())
    {
        config.registry.url = None;
    }
    if config
        .kafka
        .bootstrap_servers
        .as_deref()
        .is_some_and(|s| s.trim().is_empty())
    {
        config.kafka.bootstrap_servers = None;
    }
    // Checked here too, so every command (`clickstream config` included) names a bad key.
    clickstream_edge::WriteKeys::new(&config.auth.write_keys, config.auth.admin_token.as_ref())
        .context("invalid configuration")?;
    Ok(config)
}

impl Config {
    /// The lake's root URL: `lake.url`, else `s3://<lake.s3.bucket>` when an S3 endpoint
    /// is configured, else `file://<data_dir>/lake/` (absolute).
    pub fn lake_url(&self) -> anyhow::Result<String> {
        if self.lake.url.is_none() && !self.lake.s3.is_configured() {
            let dir = self.data_dir.join("lake");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the lake directory {}", dir.display()))?;
        }
        Ok(self.lake.root_url(&self.data_dir)?)
    }
}

impl Config {
    /// What the processor enriches with: `[enrich]` and the geo databases it resolves to
    /// (`enrich.geo.databases`, else the `*.mmdb` files in `<data_dir>/geoip/`, sorted).
    pub fn enrich_setup(&self) -> anyhow::Result<clickstream_process::EnrichSetup> {
        let geo = &self.enrich.geo;
        let geo_databases = if !geo.enabled {
            Vec::new()
        } else if !geo.databases.is_empty() {
            geo.databases.clone()
        } else {
            let dir = self.data_dir.join("geoip");
            let mut found: Vec<PathBuf> = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "mmdb"))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    return Err(e).with_context(|| format!("listing {}", dir.display()));
                }
            };
            found.sort();
            found
        };
        Ok(clickstream_process::EnrichSetup {
            config: self.enrich.clone(),
            geo_databases,
            loaded: Default::default(),
        })
    }
}

/// All errors at once, one per line, rather than the first one only.
fn format_errors(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
// figment::Jail's closures return its own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_then_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "data_dir = \"/tmp/x\"\n[ingest]\nport = 1234\nmax_body_bytes = 99\n",
            )?;
            jail.set_env("API_PORT", "4321");
            jail.set_env("CLICKSTREAM_REGISTRY__PORT", "9999");
            jail.set_env("CLICKSTREAM_BIN", "/usr/bin/true");
            let config = load(Some(Path::new("c.toml"))).expect("loads");
            assert_eq!(config.ingest.port, 4321, "env beats file");
            assert_eq!(config.ingest.max_body_bytes, 99, "file beats default");
            assert_eq!(config.registry.port, 9999);
            assert_eq!(config.log.dir, PathBuf::from("/tmp/x/log"));
            Ok(())
        });
    }

    #[test]
    fn example_config_parses_and_documents_the_defaults() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/clickstream.example.toml"
        );
        figment::Jail::expect_with(|_| {
            let loaded = load(Some(Path::new(example))).expect("example config loads");
            let defaults = load(None).expect("defaults load");
            assert_eq!(
                serde_json::to_value(&loaded).expect("json"),
                serde_json::to_value(&defaults).expect("json"),
                "config/clickstream.example.toml must show the built-in defaults"
            );
            Ok(())
        });
    }

    #[test]
    fn query_limits_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CLICKSTREAM_QUERY__STATEMENT_TIMEOUT_MS", "2500");
            jail.set_env("CLICKSTREAM_QUERY__MEMORY_LIMIT_BYTES", "1048576");
            let config = load(None).expect("loads");
            assert_eq!(config.query.statement_timeout_ms, 2500);
            assert_eq!(config.query.memory_limit_bytes, 1 << 20);
            assert_eq!(
                config.query.max_result_rows,
                QueryConfig::default().max_result_rows
            );
            Ok(())
        });
    }

    #[test]
    fn tls_files_come_from_their_own_variables_and_come_in_pairs() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CLICKSTREAM_TLS_CERT", "/etc/clickstream/cert.pem");
            let refused = load(None).expect_err("a certificate without its key");
            let text = format!("{refused:#}");
            assert!(
                text.contains("http.tls_cert is set but http.tls_key is not"),
                "{text}"
            );
            jail.set_env("CLICKSTREAM_TLS_KEY", "/etc/clickstream/key.pem");
            let config = load(None).expect("loads");
            assert_eq!(
                config.http.tls_cert.as_deref(),
                Some(Path::new("/etc/clickstream/cert.pem"))
            );
            assert_eq!(
                config.http.tls_key.as_deref(),
                Some(Path::new("/etc/clickstream/key.pem"))
            );
            Ok(())
        });
    }

    #[test]
    fn zero_timeouts_are_refused_at_load() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CLICKSTREAM_HTTP__IDLE_TIMEOUT_MS", "0");
            let refused = load(None).expect_err("a zero timeout");
            let text = format!("{refused:#}");
            assert!(text.contains("http.idle_timeout_ms is 0"), "{text}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[ingest]\nprot = 1\n")?;
            let error = load(Some(Path::new("c.toml"))).expect_err("typo rejected");
            assert!(format!("{error:#}").contains("prot"), "{error:#}");
            Ok(())
        });
    }

    #[test]
    fn seed_minio_variables_put_the_lake_on_s3() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MINIO_ENDPOINT", "http://minio:9000");
            jail.set_env("MINIO_ROOT_USER", "minioadmin");
            jail.set_env("MINIO_ROOT_PASSWORD", "minioadmin");
            let config = load(None).expect("loads");
            assert_eq!(
                config.lake_url().expect("url"),
                "s3://acme.eu-west-1.stg.data.lake"
            );
            let options = config.lake.effective_storage_options();
            assert_eq!(options.expose("aws_endpoint"), Some("http://minio:9000"));
            assert_eq!(options.expose("aws_access_key_id"), Some("minioadmin"));
            assert_eq!(options.expose("aws_secret_access_key"), Some("minioadmin"));
            Ok(())
        });
    }

    #[test]
    fn write_keys_come_from_the_file_and_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[auth.write_keys]\nweb = \"web-key-0123456789abcdef\"\n",
            )?;
            jail.set_env(
                "CLICKSTREAM_AUTH__WRITE_KEYS__IOS_APP",
                "ios-key-0123456789abcdef",
            );
            let config = load(Some(Path::new("c.toml"))).expect("loads");
            let keys: Vec<(&str, &str)> = config
                .auth
                .write_keys
                .iter()
                .map(|(name, key)| (name.as_str(), key.expose()))
                .collect();
            assert_eq!(
                keys,
                [
                    ("ios_app", "ios-key-0123456789abcdef"),
                    ("web", "web-key-0123456789abcdef")
                ]
            );
            let printed = serde_json::to_string(&config.auth).expect("json");
            assert!(!printed.contains("key-0123"), "{printed}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_write_key_is_refused_at_load() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CLICKSTREAM_AUTH__WRITE_KEYS__WEB", "short");
            let error = load(None).expect_err("refused");
            assert!(
                format!("{error:#}").contains("the write key of web has 5 characters"),
                "{error:#}"
            );
            Ok(())
        });
    }

    #[test]
    fn seed_registry_url_is_honoured() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SCHEMA_REGISTRY_URL", "http://registry:8085");
            let config = load(None).expect("loads");
            let url = config.registry.url.expect("set");
            assert_eq!(url.expose(), "http://registry:8085");
            Ok(())
        });
    }

    #[test]
    fn every_section_can_be_set_from_the_environment() {
        let defaults = serde_json::to_value(Config::default()).expect("json");
        let keys = defaults.as_object().expect("a table");
        for key in keys.keys() {
            assert!(
                SECTIONS.contains(&key.as_str()),
                "`{key}` is missing from SECTIONS: CLICKSTREAM_{}__* would be ignored",
                key.to_uppercase()
            );
        }
        figment::Jail::expect_with(|jail| {
            jail.set_env("CLICKSTREAM_LIMITS__IP_EVENTS_PER_SEC", "250");
            let config = load(None).expect("loads");
            assert_eq!(config.limits.ip_events_per_sec, 250);
            Ok(())
        });
    }
}
