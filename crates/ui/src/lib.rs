//! The web UI: one place to watch the whole pipeline, served by `clickstream up` on port
//! 8080 (replacing Kafka UI and a notebook).
//!
//! [`Ui::router`] serves the pages (HTML, CSS and JavaScript embedded in the binary: no
//! CDN, no build step, works offline) and a read-only JSON API under `/api/ui/` built on
//! the handles the pipeline already holds: the [`EventLog`], the [`RegistryClient`], the
//! [`Lake`] and the [`QueryEngine`]. [`Ui::run_sampler`] samples counters once a second
//! into a ring buffer (the overview's live rates and end-to-end lag) and publishes the
//! processor's lag per partition and the lake's file sizes as Prometheus gauges.
//!
//! Every handler is bounded: messages are read by offset a page at a time (never a whole
//! topic), lake listings are capped, and the overview answers from the last sample.

mod api;
mod assets;
mod avro_json;
mod config;
mod diff;
mod error;
pub mod health;
mod invalid;
mod lake_view;
mod messages;
pub mod metrics;
mod pretty;
mod sampler;
mod schemas;
mod snapshot;
mod topics;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use clickstream_edge::AdminAuth;
use clickstream_lake::{Lake, SchemaHistory, TableKind};
use clickstream_log::EventLog;
use clickstream_query::QueryEngine;
use clickstream_registry::RegistryClient;

pub use config::UiConfig;
pub use error::UiError;

use sampler::Sampler;

/// What the UI reads from: the pipeline's own handles, shared, never copied.
#[derive(Clone)]
pub struct UiSources {
    /// The log: topics, offsets, records, consumer groups.
    pub log: Arc<dyn EventLog>,
    /// The schema registry (ours or an external one).
    pub registry: RegistryClient,
    /// The lake's tables, their files and history.
    pub lake: Lake,
    /// SQL over the lake.
    pub query: QueryEngine,
    /// The processor's consumer group (part of the lake's `txn` app ids), or `None` when
    /// no processor runs against this log.
    pub processor_group: Option<String>,
    /// Consumer group of the Segment stream's processor (its lag), when it runs.
    pub segment_group: Option<String>,
    /// Where the ingest API listens, as a URL shown to people.
    pub ingest_url: String,
    /// The registry's URL, shown to people.
    pub registry_url: String,
    /// What the processor enriches events with, or `None` when no processor runs here.
    pub enrichment: Option<EnrichmentSummary>,
    /// Ingest's rate limits and load bounds (their refusal counts are shown), or `None`
    /// when ingest runs in another process.
    pub ingest_limits: Option<Arc<clickstream_edge::Limits>>,
}

/// The enrichers a processor runs and the lookup data it uses, as shown on the overview
/// page (`/api/ui/overview`, field `enrichment`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EnrichmentSummary {
    /// Every enricher, in chain order, with whether it runs.
    pub enrichers: Vec<EnricherState>,
    /// The geo-IP database files, in lookup order (empty: geo columns stay null).
    pub geo_databases: Vec<String>,
    /// Credits the data's licences ask for wherever results are shown (DB-IP's CC BY 4.0).
    pub attributions: Vec<Attribution>,
}

/// One enricher and whether it runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnricherState {
    /// `user_agent`, `geo`, `referrer`, ...
    pub name: String,
    /// Whether it runs.
    pub enabled: bool,
    /// A short note, e.g. the session gap or why geo has no data.
    pub detail: String,
}

/// A credit line with a link.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attribution {
    /// The words shown.
    pub text: String,
    /// Where they link to.
    pub url: String,
}

/// The web UI. Cheap to clone.
#[derive(Clone)]
pub struct Ui {
    state: Arc<UiState>,
}

/// What the handlers share.
pub(crate) struct UiState {
    pub(crate) sources: UiSources,
    pub(crate) sampler: Sampler,
    /// Each table's schema history as far as its log was read, read on by each request
    /// (a table's log can hold many thousands of commits).
    pub(crate) schema_histories:
        tokio::sync::Mutex<std::collections::BTreeMap<TableKind, SchemaHistory>>,
}

impl Ui {
    /// A UI over `sources`. Nothing runs until [`Ui::run_sampler`] is spawned and
    /// [`Ui::router`] served.
    pub fn new(sources: UiSources) -> Ui {
        Ui {
            state: Arc::new(UiState {
                sources,
                sampler: Sampler::default(),
                schema_histories: tokio::sync::Mutex::default(),
            }),
        }
    }

    /// The pages (`/`, `/assets/...`, open: they hold no data), the login routes, and the
    /// JSON API (`/api/ui/...`, which needs `auth`'s admin token). Has no fallback, so it
    /// can be merged with other routers (the SQL API, `/metrics`).
    pub fn router(&self, auth: &AdminAuth) -> Router {
        assets::router()
            .merge(auth.login_router())
            .merge(auth.protect(api::router(self.state.clone())))
    }

    /// Samples the log and the lake once a second until `shutdown` completes: the
    /// overview's rates, totals and lag, and the gauges `clickstream_process_lag_records`,
    /// `clickstream_lake_table_bytes`, `clickstream_lake_table_files` and
    /// `clickstream_lake_table_rows`.
    pub fn run_sampler(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        sampler::run(self.state.clone(), shutdown)
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
