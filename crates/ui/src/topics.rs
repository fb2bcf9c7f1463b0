//! Topics with their partitions and consumer groups, and the message browser: a page of
//! records from an offset, or the newest ones, never a scan of the whole topic.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use clickstream_log::{TopicInfo, TopicPartition};
use serde::{Deserialize, Serialize};

use crate::api::ApiQuery;
use crate::messages::{Message, decode};
use crate::{UiError, UiState};

/// Most records one page may ask for.
pub(crate) const MAX_PAGE: usize = 500;
/// Records per page when not asked.
const DEFAULT_PAGE: usize = 50;

/// A topic for the topics page.
#[derive(Debug, Serialize)]
pub(crate) struct TopicView {
    name: String,
    /// Records retained (sum of end − start).
    records: u64,
    /// Bytes on disk (0 when the backend cannot tell).
    size_bytes: u64,
    partitions: Vec<PartitionView>,
    /// Consumer groups that committed offsets for this topic.
    groups: Vec<GroupView>,
}

#[derive(Debug, Serialize)]
struct PartitionView {
    partition: u32,
    start: u64,
    end: u64,
    size_bytes: u64,
}

#[derive(Debug, Serialize)]
struct GroupView {
    group: String,
    /// Sum of the partitions' lag.
    lag: u64,
    partitions: Vec<GroupPartition>,
}

#[derive(Debug, Serialize)]
struct GroupPartition {
    partition: u32,
    /// Committed offset (next to read), if the group committed this partition.
    committed: Option<u64>,
    /// End offset minus the committed one (or minus the start, before any commit).
    lag: u64,
}

/// `GET /api/ui/topics`
pub(crate) async fn list(
    State(state): State<Arc<UiState>>,
) -> Result<Json<Vec<TopicView>>, UiError> {
    let log = &state.sources.log;
    let topics = log.topics().await?;
    let groups = log.groups().await?;
    let mut views = Vec::with_capacity(topics.len());
    for topic in topics {
        let mut group_views = Vec::new();
        for group in &groups {
            let committed = log.committed(group, &topic.name).await?;
            if committed.is_empty() {
                continue;
            }
            let partitions: Vec<GroupPartition> = topic
                .partitions
                .iter()
                .map(|p| {
                    let position = committed.get(&p.partition).copied();
                    GroupPartition {
                        partition: p.partition,
                        committed: position,
                        lag: p
                            .offsets
                            .end
                            .saturating_sub(position.unwrap_or(p.offsets.start)),
                    }
                })
                .collect();
            group_views.push(GroupView {
                group: group.clone(),
                lag: partitions.iter().map(|p| p.lag).sum(),
                partitions,
            });
        }
        views.push(view(topic, group_views));
    }
    Ok(Json(views))
}

fn view(topic: TopicInfo, groups: Vec<GroupView>) -> TopicView {
    TopicView {
        records: topic
            .partitions
            .iter()
            .map(|p| p.offsets.end - p.offsets.start)
            .sum(),
        size_bytes: topic.partitions.iter().map(|p| p.size_bytes).sum(),
        partitions: topic
            .partitions
            .iter()
            .map(|p| PartitionView {
                partition: p.partition,
                start: p.offsets.start,
                end: p.offsets.end,
                size_bytes: p.size_bytes,
            })
            .collect(),
        name: topic.name,
        groups,
    }
}

/// Query of `GET /api/ui/topics/{topic}/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessagesQuery {
    /// One partition; absent: the newest records of every partition.
    partition: Option<u32>,
    /// First offset to read (with `partition`); absent: the newest `limit` records.
    offset: Option<u64>,
    /// Records wanted (at most [`MAX_PAGE`]).
    limit: Option<usize>,
}

/// A page of the message browser.
#[derive(Debug, Serialize)]
pub(crate) struct MessagePage {
    topic: String,
    partition: Option<u32>,
    /// The partition's start and end offsets (with `partition`).
    start: Option<u64>,
    end: Option<u64>,
    /// Where the next page (or the live tail's next poll) starts (with `partition`).
    next_offset: Option<u64>,
    /// Records, in offset order for one partition, newest first across partitions.
    messages: Vec<Message>,
}

/// `GET /api/ui/topics/{topic}/messages?partition=&offset=&limit=`
pub(crate) async fn messages(
    State(state): State<Arc<UiState>>,
    Path(topic): Path<String>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> Result<Json<MessagePage>, UiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(UiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let log = &state.sources.log;
    let partitions = log.partition_count(&topic).await?;
    let Some(partition) = query.partition else {
        if query.offset.is_some() {
            return Err(UiError::BadRequest(
                "offset needs a partition: offsets are per partition".into(),
            ));
        }
        return newest_across_partitions(&state, topic, partitions, limit).await;
    };
    if partition >= partitions {
        return Err(UiError::NotFound(format!(
            "topic {topic} has partitions 0 to {}, not {partition}",
            partitions.saturating_sub(1)
        )));
    }
    let tp = TopicPartition::new(topic.clone(), partition);
    let offsets = log.offsets(&tp).await?;
    let from = match query.offset {
        Some(offset) => offset.clamp(offsets.start, offsets.end),
        None => offsets.end.saturating_sub(limit as u64).max(offsets.start),
    };
    let records = read_page(&state, &tp, from, offsets.end, limit).await?;
    let next_offset = records.last().map_or(from, |r| r.offset + 1);
    let mut messages = Vec::with_capacity(records.len());
    for record in &records {
        messages.push(decode(&state.sources.registry, record).await);
    }
    Ok(Json(MessagePage {
        topic,
        partition: Some(partition),
        start: Some(offsets.start),
        end: Some(offsets.end),
        next_offset: Some(next_offset),
        messages,
    }))
}

/// Up to `limit` records of one partition from `from`, stopping at `end`.
async fn read_page(
    state: &UiState,
    tp: &TopicPartition,
    from: u64,
    end: u64,
    limit: usize,
) -> Result<Vec<clickstream_log::LogRecord>, UiError> {
    let mut records = Vec::new();
    let mut next = from;
    while records.len() < limit && next < end {
        let batch = state
            .sources
            .log
            .read(tp, next, limit - records.len(), Duration::ZERO)
            .await?;
        let Some(last) = batch.last() else { break };
        next = last.offset + 1;
        records.extend(batch);
    }
    records.truncate(limit);
    Ok(records)
}

/// The newest `limit` records over all partitions, newest first: each partition's last
/// `limit` records, merged by timestamp.
async fn newest_across_partitions(
    state: &UiState,
    topic: String,
    partitions: u32,
    limit: usize,
) -> Result<Json<MessagePage>, UiError> {
    let mut records = Vec::new();
    for partition in 0..partitions {
        let tp = TopicPartition::new(topic.clone(), partition);
        let offsets = state.sources.log.offsets(&tp).await?;
        let from = offsets.end.saturating_sub(limit as u64).max(offsets.start);
        records.extend(read_page(state, &tp, from, offsets.end, limit).await?);
    }
    records.sort_by(|a, b| {
        (b.timestamp_ms, b.offset, b.partition).cmp(&(a.timestamp_ms, a.offset, a.partition))
    });
    records.truncate(limit);
    let mut messages = Vec::with_capacity(records.len());
    for record in &records {
        messages.push(decode(&state.sources.registry, record).await);
    }
    Ok(Json(MessagePage {
        topic,
        partition: None,
        start: None,
        end: None,
        next_offset: None,
        messages,
    }))
}
