//! What the v2 and v3 produce calls share: which topic takes events, reading the body with
//! ingest's caps, taking the batch's rate-limit tokens, the schemas Avro requests name, and
//! landing the events through ingest.

use apache_avro::Schema;
use axum::Extension;
use axum::body::Body;
use clickstream_edge::Source;
use clickstream_edge::body::{BodyLimits, read_body};
use clickstream_edge::limit::Client;
use clickstream_event::{
    INVALID_TOPIC, LATEST_TOPIC, RAW_TOPIC, UNIQUE_USERS_TOPIC, value_subject,
};
use clickstream_ingest::{IngestError, Landed, land};
use clickstream_registry::VersionSpec;
use http::HeaderMap;
use serde_json::value::RawValue;

use crate::{ProxyError, ProxyState};

/// Checks that `topic` takes produced events: the raw topic does; the topics clickstream
/// writes itself do not (403), and no other topic exists here (404).
pub(crate) fn writable(topic: &str) -> Result<(), ProxyError> {
    match topic {
        RAW_TOPIC => Ok(()),
        INVALID_TOPIC | LATEST_TOPIC | UNIQUE_USERS_TOPIC => Err(ProxyError::NotWritable {
            topic: topic.to_string(),
            raw: RAW_TOPIC,
        }),
        other => Err(ProxyError::UnknownTopic(other.to_string())),
    }
}

/// The request body, decompressed and within ingest's caps.
pub(crate) async fn body(
    state: &ProxyState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ProxyError> {
    let config = &state.ingest.config;
    let limits = BodyLimits::new(config.max_body_bytes, config.max_compression_ratio);
    Ok(read_body(headers, body, &limits)
        .await
        .map_err(IngestError::from)?)
}

/// Validates and appends `events`, once the batch's tokens are taken, and returns where
/// each one went once all are durable.
pub(crate) async fn land_events(
    state: &ProxyState,
    (client, source): (Option<Extension<Client>>, Option<Extension<Source>>),
    body_len: usize,
    events: &[Box<RawValue>],
) -> Result<Landed, ProxyError> {
    let ingest = &state.ingest;
    // Held until the log has the events: bodies waiting for the log are bounded.
    let _held = ingest.limits.hold(body_len).map_err(IngestError::from)?;
    let limit = ingest.config.max_events_per_request;
    if events.len() > limit {
        return Err(IngestError::TooManyEvents {
            count: events.len(),
            limit,
        }
        .into());
    }
    if let Some(Extension(client)) = &client {
        let count = u32::try_from(events.len()).unwrap_or(u32::MAX);
        ingest
            .limits
            .take(client, count.max(1))
            .map_err(IngestError::from)?;
    }
    let source = source.map(|Extension(source)| source);
    let refs: Vec<&RawValue> = events.iter().map(AsRef::as_ref).collect();
    let landed = land(ingest, &refs, source.as_ref()).await?;
    crate::metrics::produced(events.len());
    Ok(landed)
}

/// A schema an Avro request names, which must be a version of the topic's subject: the
/// proxy writes with the subject's versions, and registering a new one is the registry's
/// business (its writes take the admin token).
pub(crate) async fn named_schema(
    state: &ProxyState,
    topic: &str,
    schema_id: Option<u32>,
    schema: Option<&str>,
) -> Result<Schema, ProxyError> {
    let subject = value_subject(topic);
    let registry_failed = |e: clickstream_registry::RegistryError| ProxyError::Unprocessable {
        code: 42207,
        message: format!("the schema registry could not answer: {e}"),
    };
    match (schema_id, schema) {
        (Some(_), Some(_)) => Err(ProxyError::BadRequest(
            "send value_schema or value_schema_id, not both".into(),
        )),
        (None, None) => Err(ProxyError::Unprocessable {
            code: 42202,
            message: "an Avro request needs value_schema or value_schema_id".into(),
        }),
        (None, Some(text)) => {
            let parsed = Schema::parse_str(text).map_err(|e| ProxyError::Unprocessable {
                code: 42205,
                message: format!("value_schema does not parse: {e}"),
            })?;
            match state.registry.lookup(&subject, text).await {
                Ok(Some(_)) => Ok(parsed),
                Ok(None) => Err(not_a_version(&subject, "value_schema")),
                Err(e) => Err(registry_failed(e)),
            }
        }
        (Some(id), None) => {
            let schema = state
                .registry
                .schema_by_id(id)
                .await
                .map_err(registry_failed)?;
            match is_version_of(state, &subject, id).await {
                Ok(true) => Ok((*schema).clone()),
                Ok(false) => Err(not_a_version(&subject, &format!("schema {id}"))),
                Err(e) => Err(registry_failed(e)),
            }
        }
    }
}

/// Whether schema `id` is one of the versions of `subject` (newest first: the usual case).
async fn is_version_of(
    state: &ProxyState,
    subject: &str,
    id: u32,
) -> Result<bool, clickstream_registry::RegistryError> {
    let versions = match state.registry.versions(subject).await {
        Ok(versions) => versions,
        Err(e) if matches!(e.remote_error_code(), Some(40401)) => return Ok(false),
        Err(e) => return Err(e),
    };
    for version in versions.into_iter().rev() {
        let found = state
            .registry
            .version(subject, VersionSpec::Number(version))
            .await?;
        if found.id == id {
            return Ok(true);
        }
    }
    Ok(false)
}

fn not_a_version(subject: &str, what: &str) -> ProxyError {
    ProxyError::Unprocessable {
        code: 42207,
        message: format!(
            "{what} is not a version of {subject}; register it in the schema registry first \
             (its writes take the admin token), or produce JSON"
        ),
    }
}
