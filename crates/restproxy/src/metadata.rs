//! The listings scripts read before producing: v2 topics and partitions, v3 clusters and
//! topics, in Confluent's shapes. One broker (id 0) leads every partition.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use clickstream_ingest::IngestError;
use clickstream_log::LogError;
use http::{HeaderValue, header};
use serde_json::{Value, json};

use crate::{CLUSTER_ID, ProxyError, ProxyState, V2_CONTENT_TYPE};

/// The one broker of the listings.
const BROKER: u32 = 0;

fn log_failed(e: LogError) -> ProxyError {
    ProxyError::Ingest(IngestError::Internal(format!("listing topics: {e}")))
}

/// Topic names with their partition counts, sorted by name.
async fn topics(state: &ProxyState) -> Result<Vec<(String, u32)>, ProxyError> {
    let mut topics: Vec<(String, u32)> = state
        .ingest
        .log
        .topics()
        .await
        .map_err(log_failed)?
        .into_iter()
        .map(|t| {
            let count = u32::try_from(t.partitions.len()).unwrap_or(u32::MAX);
            (t.name, count)
        })
        .collect();
    topics.sort();
    Ok(topics)
}

/// Partitions of `topic`, 404 when there is no such topic.
async fn partitions(state: &ProxyState, topic: &str) -> Result<u32, ProxyError> {
    topics(state)
        .await?
        .into_iter()
        .find_map(|(name, count)| (name == topic).then_some(count))
        .ok_or_else(|| ProxyError::UnknownTopic(topic.to_string()))
}

fn v2(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(V2_CONTENT_TYPE),
    );
    response
}

fn v2_partition(partition: u32) -> Value {
    json!({
        "partition": partition,
        "leader": BROKER,
        "replicas": [{"broker": BROKER, "leader": true, "in_sync": true}],
    })
}

/// `GET /topics`: the names.
pub(crate) async fn v2_topics(
    State(state): State<Arc<ProxyState>>,
) -> Result<Response, ProxyError> {
    let names: Vec<String> = topics(&state).await?.into_iter().map(|(n, _)| n).collect();
    Ok(v2(json!(names)))
}

/// `GET /topics/<topic>`.
pub(crate) async fn v2_topic(
    State(state): State<Arc<ProxyState>>,
    Path(topic): Path<String>,
) -> Result<Response, ProxyError> {
    let count = partitions(&state, &topic).await?;
    let partitions: Vec<Value> = (0..count).map(v2_partition).collect();
    Ok(v2(
        json!({"name": topic, "configs": {}, "partitions": partitions}),
    ))
}

/// `GET /topics/<topic>/partitions`.
pub(crate) async fn v2_partitions(
    State(state): State<Arc<ProxyState>>,
    Path(topic): Path<String>,
) -> Result<Response, ProxyError> {
    let count = partitions(&state, &topic).await?;
    Ok(v2(json!((0..count).map(v2_partition).collect::<Vec<_>>())))
}

fn list_metadata(path: &str) -> Value {
    json!({"self": path, "next": null})
}

fn cluster() -> Value {
    let base = format!("/v3/clusters/{CLUSTER_ID}");
    json!({
        "kind": "KafkaCluster",
        "metadata": {"self": base, "resource_name": format!("crn:///kafka={CLUSTER_ID}")},
        "cluster_id": CLUSTER_ID,
        "controller": {"related": format!("{base}/brokers/{BROKER}")},
        "acls": {"related": format!("{base}/acls")},
        "brokers": {"related": format!("{base}/brokers")},
        "broker_configs": {"related": format!("{base}/broker-configs")},
        "consumer_groups": {"related": format!("{base}/consumer-groups")},
        "topics": {"related": format!("{base}/topics")},
        "partition_reassignments": {"related": format!("{base}/topics/-/partitions/-/reassignment")},
    })
}

/// `GET /v3/clusters`: the one cluster.
pub(crate) async fn v3_clusters() -> Json<Value> {
    Json(json!({
        "kind": "KafkaClusterList",
        "metadata": list_metadata("/v3/clusters"),
        "data": [cluster()],
    }))
}

/// `GET /v3/clusters/<id>`.
pub(crate) async fn v3_cluster(Path(id): Path<String>) -> Result<Json<Value>, ProxyError> {
    known_cluster(&id)?;
    Ok(Json(cluster()))
}

fn known_cluster(id: &str) -> Result<(), ProxyError> {
    match id == CLUSTER_ID {
        true => Ok(()),
        false => Err(ProxyError::UnknownCluster(id.to_string())),
    }
}

/// `GET /v3/clusters/<id>/topics`, sorted by name.
pub(crate) async fn v3_topics(
    State(state): State<Arc<ProxyState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ProxyError> {
    known_cluster(&id)?;
    let base = format!("/v3/clusters/{CLUSTER_ID}/topics");
    let mut data = Vec::new();
    for (name, count) in topics(&state).await? {
        data.push(json!({
            "kind": "KafkaTopic",
            "metadata": {
                "self": format!("{base}/{name}"),
                "resource_name": format!("crn:///kafka={CLUSTER_ID}/topic={name}"),
            },
            "cluster_id": CLUSTER_ID,
            "topic_name": name,
            "is_internal": false,
            "replication_factor": 1,
            "partitions_count": count,
            "partitions": {"related": format!("{base}/{name}/partitions")},
            "configs": {"related": format!("{base}/{name}/configs")},
            "partition_reassignments": {"related": format!("{base}/{name}/partitions/-/reassignment")},
            "authorized_operations": [],
        }));
    }
    Ok(Json(json!({
        "kind": "KafkaTopicList",
        "metadata": list_metadata(&base),
        "data": data,
    })))
}
