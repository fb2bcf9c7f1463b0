//! Once a second: totals from the log (acknowledged events are the end offsets of the raw
//! and invalid topics) and from the lake (rows per table from the Delta file statistics),
//! kept in a ring buffer for the overview's live rates, plus the end-to-end lag, component
//! health and the gauges Prometheus scrapes.
//!
//! Everything is read from the same places any other process could read it from (the log
//! and the lake), not from counters inside ingest or the processor, so the numbers stay
//! right when those run in other processes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use clickstream_event::{INVALID_TOPIC, RAW_TOPIC, SEGMENT_INVALID_TOPIC, SEGMENT_TOPIC};
use clickstream_lake::{LakeTable, TableKind, txn_app_id};
use clickstream_log::{TopicInfo, TopicPartition};

use crate::{UiState, now_ms};

pub(crate) use crate::snapshot::{
    Compaction, Component, Lag, PartitionLag, Point, Rate, Snapshot, TableStats, Totals, rates,
};

/// Samples kept: ten minutes at one a second.
pub(crate) const HISTORY: usize = 600;
/// Time between samples.
const PERIOD: Duration = Duration::from_secs(1);
/// Longest a sample may take; a slower one is abandoned and the next one tried.
const SAMPLE_DEADLINE: Duration = Duration::from_secs(5);
/// A processor that has not moved the lake on for this long while records wait is stalled.
const STALL_AFTER: Duration = Duration::from_secs(30);
/// At most this many commits are read to find a table's last compaction.
const COMPACTION_SCAN: usize = 100;

/// What the sampler publishes for the handlers.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    published: RwLock<Published>,
}

#[derive(Debug, Default, Clone)]
struct Published {
    points: VecDeque<Point>,
    snapshot: Option<Snapshot>,
}

impl Sampler {
    /// The latest snapshot and the rates of the last [`HISTORY`] seconds.
    pub(crate) fn read(&self) -> (Option<Snapshot>, Vec<Rate>) {
        let published = self
            .published
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        (published.snapshot.clone(), rates(&published.points))
    }

    fn publish(&self, point: Option<Point>, snapshot: Snapshot) {
        let mut published = self
            .published
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(point) = point {
            if published.points.len() == HISTORY {
                published.points.pop_front();
            }
            published.points.push_back(point);
        }
        published.snapshot = Some(snapshot);
    }
}

/// Samples until `shutdown`.
pub(crate) async fn run(state: Arc<UiState>, shutdown: impl Future<Output = ()> + Send + 'static) {
    let mut task = SamplerTask {
        state,
        tables: BTreeMap::new(),
        timestamps: HashMap::new(),
        moved: HashMap::new(),
    };
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        if tokio::time::timeout(SAMPLE_DEADLINE, task.sample())
            .await
            .is_err()
        {
            tracing::warn!("UI sample took longer than 5 s; skipped");
        }
    }
}

/// A table handle kept between samples, with what was learnt about its history.
struct TrackedTable {
    table: LakeTable,
    history_scanned_to: i64,
    last_compaction: Option<Compaction>,
}

struct SamplerTask {
    state: Arc<UiState>,
    tables: BTreeMap<TableKind, TrackedTable>,
    /// Log timestamps of records looked up for the lag, by position (records never change).
    timestamps: HashMap<(TopicPartition, u64), i64>,
    /// Per processor component: the records in the lake at the last sample, and when that
    /// number last changed.
    moved: HashMap<&'static str, (u64, Instant)>,
}

impl SamplerTask {
    async fn sample(&mut self) {
        let sources = self.state.sources.clone();
        let now = now_ms();
        let mut components = Vec::new();
        // The tables before the topics: a record lands only after it was appended, so a
        // snapshot read in this order never shows more landed than acknowledged.
        let (tables, lake_error) = self.sample_tables().await;
        let topics = sources.log.topics().await;
        components.push(match &topics {
            Ok(topics) => Component {
                name: "log",
                status: "ok",
                detail: format!("{} backend, {} topics", sources.log.backend(), topics.len()),
            },
            Err(e) => Component {
                name: "log",
                status: "error",
                detail: e.to_string(),
            },
        });
        let registry =
            tokio::time::timeout(crate::health::CHECK_DEADLINE, sources.registry.subjects()).await;
        components.push(match registry {
            Ok(Ok(subjects)) => Component {
                name: "registry",
                status: "ok",
                detail: format!("{} subjects at {}", subjects.len(), sources.registry_url),
            },
            Ok(Err(e)) => Component {
                name: "registry",
                status: "error",
                detail: e.to_string(),
            },
            Err(_) => Component {
                name: "registry",
                status: "error",
                detail: "no answer within 2 s".into(),
            },
        });
        components.push(match &lake_error {
            None => Component {
                name: "lake",
                status: "ok",
                detail: format!("{} tables at {}", tables.len(), sources.lake.root()),
            },
            Some(e) => Component {
                name: "lake",
                status: "error",
                detail: e.clone(),
            },
        });
        let rows = |name: &str| tables.iter().find(|t| t.name == name).map_or(0, |t| t.rows);
        let topics = topics.unwrap_or_default();
        let end_sum = |name: &str| -> u64 {
            topics
                .iter()
                .filter(|t| t.name == name)
                .flat_map(|t| &t.partitions)
                .map(|p| p.offsets.end)
                .sum()
        };
        let totals = Totals {
            segment_acknowledged: end_sum(SEGMENT_TOPIC),
            segment_invalid_acknowledged: end_sum(SEGMENT_INVALID_TOPIC),
            segment_in_lake: rows(TableKind::SegmentEvents.name()),
            segment_duplicates_in_lake: rows(TableKind::SegmentDuplicates.name()),
            identities: rows(TableKind::Identities.name()),
            valid_acknowledged: end_sum(RAW_TOPIC),
            invalid_acknowledged: end_sum(INVALID_TOPIC),
            events_in_lake: rows(TableKind::Events.name()),
            invalid_in_lake: rows(TableKind::InvalidEvents.name()),
            duplicates_in_lake: rows(TableKind::Duplicates.name()),
            dead_letters: rows(TableKind::DeadLetters.name()),
            throttled_requests: sources.ingest_limits.as_ref().map(|l| l.refused().0),
            shed_requests: sources.ingest_limits.as_ref().map(|l| l.refused().1),
        };
        let mut fed = Vec::new();
        if let Some(group) = &sources.processor_group {
            fed.push((group.clone(), RAW_TOPIC, TableKind::Events));
            fed.push((group.clone(), INVALID_TOPIC, TableKind::InvalidEvents));
        }
        if let Some(group) = &sources.segment_group {
            fed.push((group.clone(), SEGMENT_TOPIC, TableKind::SegmentEvents));
            fed.push((
                group.clone(),
                SEGMENT_INVALID_TOPIC,
                TableKind::SegmentInvalidEvents,
            ));
        }
        let lag = self.end_to_end_lag(&fed, &topics, now).await;
        components.push(self.processor_component(
            "processor",
            sources.processor_group.as_deref(),
            &[RAW_TOPIC, INVALID_TOPIC],
            &lag,
        ));
        if sources.segment_group.is_some() {
            components.push(self.processor_component(
                "segment_processor",
                sources.segment_group.as_deref(),
                &[SEGMENT_TOPIC, SEGMENT_INVALID_TOPIC],
                &lag,
            ));
        }
        self.group_lag_gauges(&topics).await;

        let point = (!topics.is_empty()).then_some(Point {
            t_ms: now,
            valid: totals.valid_acknowledged,
            invalid: totals.invalid_acknowledged,
            dead_letters: totals.dead_letters,
            lake_events: totals.events_in_lake,
        });
        crate::metrics::pipeline_lag(&lag);
        self.state.sampler.publish(
            point,
            Snapshot {
                taken_ms: now,
                totals,
                lag,
                components,
                tables,
            },
        );
    }

    /// The health of the processor consuming `topics` as `group`: ok while caught up or
    /// while its tables move, a warning once records wait and its tables stand still.
    fn processor_component(
        &mut self,
        name: &'static str,
        group: Option<&str>,
        topics: &[&str],
        lag: &Lag,
    ) -> Component {
        let Some(group) = group else {
            return Component {
                name,
                status: "off",
                detail: "no processor runs against this log".into(),
            };
        };
        let ours = || {
            lag.partitions
                .iter()
                .filter(|p| topics.contains(&p.topic.as_str()))
        };
        let in_lake: u64 = ours().map(|p| p.in_lake).sum();
        let waiting: u64 = ours().map(|p| p.lag).sum();
        let (last, moved) = self.moved.entry(name).or_insert((in_lake, Instant::now()));
        if in_lake != *last {
            *last = in_lake;
            *moved = Instant::now();
        }
        let idle = moved.elapsed();
        let (status, detail) = if waiting == 0 {
            ("ok", format!("group {group}: caught up"))
        } else if idle < STALL_AFTER {
            (
                "ok",
                format!("group {group}: {waiting} records on their way"),
            )
        } else {
            let idle = idle.as_secs();
            let detail = format!(
                "group {group}: {waiting} records wait and the lake has not moved for {idle} s"
            );
            ("warning", detail)
        };
        Component {
            name,
            status,
            detail,
        }
    }

    /// Refreshes every table and reads its size from the Delta log.
    async fn sample_tables(&mut self) -> (Vec<TableStats>, Option<String>) {
        let mut stats = Vec::new();
        let mut error = None;
        for kind in TableKind::ALL {
            match self.table_stats(kind).await {
                Ok(table) => {
                    crate::metrics::lake_table(kind, &table);
                    stats.push(table);
                }
                Err(e) => {
                    self.tables.remove(&kind);
                    error.get_or_insert(format!("{}: {e}", kind.name()));
                }
            }
        }
        (stats, error)
    }

    async fn table_stats(
        &mut self,
        kind: TableKind,
    ) -> Result<TableStats, clickstream_lake::LakeError> {
        let tracked = match self.tables.entry(kind) {
            std::collections::btree_map::Entry::Occupied(entry) => {
                let tracked = entry.into_mut();
                tracked.table.refresh().await?;
                tracked
            }
            std::collections::btree_map::Entry::Vacant(entry) => {
                let table = self.state.sources.lake.table(kind).await?;
                entry.insert(TrackedTable {
                    table,
                    history_scanned_to: -1,
                    last_compaction: None,
                })
            }
        };
        let version = tracked.table.version();
        if version > tracked.history_scanned_to {
            let unseen = usize::try_from(version - tracked.history_scanned_to).unwrap_or(0);
            let commits = tracked.table.history(unseen.min(COMPACTION_SCAN)).await?;
            if let Some(optimize) = commits
                .iter()
                .find(|c| c.operation.as_deref() == Some("OPTIMIZE"))
            {
                tracked.last_compaction = Some(Compaction {
                    version: optimize.version,
                    timestamp_ms: optimize.timestamp_ms,
                    files_removed: optimize.files_removed,
                    files_added: optimize.files_added,
                });
            }
            tracked.history_scanned_to = version;
        }
        let files = tracked.table.files()?;
        let partitions: std::collections::BTreeSet<_> =
            files.iter().map(|f| &f.partition_values).collect();
        Ok(TableStats {
            name: kind.name(),
            version,
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.size_bytes).sum(),
            rows: files.iter().filter_map(|f| f.num_records).sum(),
            partitions: partitions.len() as u64,
            last_write_ms: files.iter().map(|f| f.modification_time_ms).max(),
            last_compaction: tracked.last_compaction.clone(),
        })
    }

    /// Each partition's end offset, of every topic a processor reads (`fed`: its group,
    /// the topic and the table whose `txn` versions say how far the lake is), against that
    /// version: what is acknowledged but not yet queryable.
    async fn end_to_end_lag(
        &mut self,
        fed: &[(String, &'static str, TableKind)],
        topics: &[TopicInfo],
        now: i64,
    ) -> Lag {
        let mut positions = Vec::new();
        for (group, topic, kind) in fed {
            let (topic, kind) = (*topic, *kind);
            let Some(info) = topics.iter().find(|t| t.name == topic) else {
                continue;
            };
            let Some(tracked) = self.tables.get(&kind) else {
                continue;
            };
            for partition in &info.partitions {
                let app_id = txn_app_id(group, topic, partition.partition);
                if let Ok(version) = tracked.table.txn_version(&app_id).await {
                    positions.push((topic, partition.partition, partition.offsets, version));
                }
            }
        }
        let mut lag = Lag::default();
        let mut oldest_pending: Option<i64> = None;
        for (topic, partition, offsets, version) in positions {
            let in_lake = version
                .map_or(offsets.start, |v| u64::try_from(v).unwrap_or(0))
                .clamp(offsets.start, offsets.end);
            let behind = offsets.end - in_lake;
            lag.records += behind;
            lag.partitions.push(PartitionLag {
                topic: topic.to_string(),
                partition,
                end: offsets.end,
                in_lake,
                lag: behind,
            });
            let tp = TopicPartition::new(topic, partition);
            if offsets.end > offsets.start {
                let newest = self.timestamp(&tp, offsets.end - 1).await;
                lag.newest_acknowledged_ms = lag.newest_acknowledged_ms.max(newest);
            }
            if in_lake > offsets.start {
                let newest = self.timestamp(&tp, in_lake - 1).await;
                lag.newest_in_lake_ms = lag.newest_in_lake_ms.max(newest);
            }
            if behind > 0
                && let Some(ts) = self.timestamp(&tp, in_lake).await
            {
                oldest_pending = Some(oldest_pending.map_or(ts, |o| o.min(ts)));
            }
        }
        lag.seconds = oldest_pending.map_or(0.0, |ts| (now - ts).max(0) as f64 / 1000.0);
        lag
    }

    /// The log timestamp of one record, remembered.
    async fn timestamp(&mut self, tp: &TopicPartition, offset: u64) -> Option<i64> {
        if let Some(ts) = self.timestamps.get(&(tp.clone(), offset)) {
            return Some(*ts);
        }
        let records = self
            .state
            .sources
            .log
            .read(tp, offset, 1, Duration::ZERO)
            .await
            .ok()?;
        let ts = records.first().filter(|r| r.offset == offset)?.timestamp_ms;
        if self.timestamps.len() > 10_000 {
            self.timestamps.clear();
        }
        self.timestamps.insert((tp.clone(), offset), ts);
        Some(ts)
    }

    /// `clickstream_process_lag_records{group, topic, partition}`: end offset minus the
    /// group's committed offset, for every group and topic it committed.
    async fn group_lag_gauges(&self, topics: &[TopicInfo]) {
        let log = &self.state.sources.log;
        let Ok(groups) = log.groups().await else {
            return;
        };
        for group in groups {
            for topic in topics {
                let Ok(committed) = log.committed(&group, &topic.name).await else {
                    continue;
                };
                if committed.is_empty() {
                    continue;
                }
                for partition in &topic.partitions {
                    let position = committed
                        .get(&partition.partition)
                        .copied()
                        .unwrap_or(partition.offsets.start);
                    let lag = partition.offsets.end.saturating_sub(position);
                    crate::metrics::group_lag(&group, &topic.name, partition.partition, lag);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_ms: i64, valid: u64) -> Point {
        Point {
            t_ms,
            valid,
            invalid: valid / 2,
            dead_letters: 0,
            lake_events: 0,
        }
    }

    #[test]
    fn rates_are_differences_per_second() {
        let points: VecDeque<Point> = [point(0, 0), point(1000, 10), point(3000, 30)].into();
        let rates = rates(&points);
        assert_eq!(rates.len(), 2);
        assert_eq!(rates[0].valid, 10.0);
        assert_eq!(rates[0].invalid, 5.0);
        assert_eq!(rates[1].valid, 10.0, "20 events over two seconds");
        assert_eq!(rates[1].t_ms, 3000);
    }

    #[test]
    fn a_counter_going_down_is_not_a_negative_rate() {
        let points: VecDeque<Point> = [point(0, 10), point(1000, 4)].into();
        assert_eq!(rates(&points)[0].valid, 0.0);
    }

    #[test]
    fn the_ring_buffer_keeps_the_last_ten_minutes() {
        let sampler = Sampler::default();
        let snapshot = Snapshot {
            taken_ms: 0,
            totals: Totals::default(),
            lag: Lag::default(),
            components: Vec::new(),
            tables: Vec::new(),
        };
        for t in 0..(HISTORY as i64 + 50) {
            sampler.publish(Some(point(t * 1000, t as u64)), snapshot.clone());
        }
        let (latest, rates) = sampler.read();
        assert!(latest.is_some());
        assert_eq!(rates.len(), HISTORY - 1);
        assert_eq!(
            rates.last().map(|r| r.t_ms),
            Some((HISTORY as i64 + 49) * 1000)
        );
    }
}
