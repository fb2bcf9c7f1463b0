//! Confluent REST Proxy's produce API, for scripts written against the original stack's
//! proxy (port 8082): v2 `POST /topics/<topic>` with the JSON, Avro and binary embedded
//! formats, v3 `POST /v3/clusters/<id>/topics/<topic>/records`, and the topic and cluster
//! listings those scripts read first.
//!
//! Events produced to the raw topic go through ingest's path ([`clickstream_ingest::land`]):
//! validated against the raw schema in force, valid ones framed for the raw topic, invalid
//! ones kept in the invalid topic with their reason (and reported per record), answered once
//! durable. The other topics are written by clickstream alone (403), unknown topics are 404
//! at once (Confluent's v2 proxy answers them after its producer's 60 s timeout). The
//! consumer API is not served: read topics with a Kafka client or the UI.

mod avro_json;
mod error;
mod metadata;
pub mod metrics;
mod produce;
mod v2;
mod v3;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use clickstream_ingest::IngestState;
use clickstream_registry::RegistryClient;
use serde::{Deserialize, Serialize};

pub use error::ProxyError;

/// The content type of every v2 answer.
pub const V2_CONTENT_TYPE: &str = "application/vnd.kafka.v2+json";

/// The id the proxy gives the one cluster it fronts (not checked on produce, as
/// Confluent's proxy does not check it either).
pub const CLUSTER_ID: &str = "clickstream";

/// Settings of the REST Proxy listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestProxyConfig {
    /// Whether the processes running ingest serve it.
    pub enabled: bool,
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (the original stack's rest-proxy: 8082).
    pub port: u16,
}

impl Default for RestProxyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "127.0.0.1".into(),
            port: 8082,
        }
    }
}

/// What the proxy's handlers share.
pub struct ProxyState {
    /// Ingest's state: the log, the validator in force, body caps, limits, write keys.
    pub ingest: Arc<IngestState>,
    /// The registry, for the schemas Avro produce requests name.
    pub registry: RegistryClient,
}

/// The proxy's routes. Every route takes a write key when write keys are configured (the
/// proxy's clients send it as HTTP Basic credentials); produce calls are counted in the
/// ingest rate limits and load bounds.
pub fn router(state: Arc<ProxyState>) -> Router {
    let guard = axum::middleware::from_fn_with_state(
        state.ingest.limits.clone(),
        clickstream_edge::limit::guard,
    );
    let produce = Router::new()
        .route("/topics/{topic}", post(v2::produce).get(metadata::v2_topic))
        .route(
            "/v3/clusters/{cluster}/topics/{topic}/records",
            post(v3::produce),
        )
        .route_layer(guard);
    let listings = Router::new()
        .route("/topics", get(metadata::v2_topics))
        .route("/topics/{topic}/partitions", get(metadata::v2_partitions))
        .route("/v3/clusters", get(metadata::v3_clusters))
        .route("/v3/clusters/{cluster}", get(metadata::v3_cluster))
        .route("/v3/clusters/{cluster}/topics", get(metadata::v3_topics));
    let routes = state.ingest.write_keys.protect(produce.merge(listings));
    routes
        // Bodies are read with ingest's caps, to answer 413 in JSON.
        .layer(DefaultBodyLimit::disable())
        .fallback(clickstream_edge::error::not_found)
        .method_not_allowed_fallback(clickstream_edge::error::method_not_allowed)
        .with_state(state)
}
