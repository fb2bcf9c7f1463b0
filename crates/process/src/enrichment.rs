//! The enrichers as the processor runs them: the stateless chain per event, duplicates
//! per event, sessions per batch, and the state of the last two rebuilt from the lake.
//!
//! Why rebuilt from the lake rather than checkpointed: `events` is exactly-once and holds
//! everything the state is a function of (ids with their arrival times; sessions with
//! their visitor, times and indices), so after a restart, a rebalance or a dropped batch
//! the state is recomputed from exactly the rows the committed offsets cover — the same
//! argument as for unique users. A separate checkpoint would need its own commit,
//! ordered against the `events` commit, for no gain in correctness. The cost is two
//! queries over the recent part of `events` whenever positions are (re)read.

use clickstream_enrich::{
    CallFields, Deduplicator, Enriched, Enricher, EventFields, IdDigest, RestoredSession,
    SessionAssignment, SessionInput, Sessionizer, Sighting, VisitorKey,
};
use clickstream_lake::EventEnrichment;
use clickstream_query::QueryEngine;
use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type};

use crate::ProcessError;
use crate::decode::DedupKey;
use crate::exactly_once::Table;
use crate::stream::Stream;

/// Event times this far past the wall clock are ignored when finding where to rebuild
/// sessions from (as the sessionizer ignores them for its watermark).
const MAX_CLOCK_SKEW_US: i64 = 3_600_000_000;

/// The enrichers and their state.
pub(crate) struct Enrichment {
    /// Whose tables the state is rebuilt from.
    stream: Stream,
    enricher: Enricher,
    /// Event ids seen (the clickstream stream).
    dedup: Option<Deduplicator>,
    /// Message ids seen, digested (the Segment stream).
    messages: Option<Deduplicator<IdDigest>>,
    sessions: Option<Sessionizer>,
    dedup_window_ms: u64,
    session_ttl_ms: u64,
}

impl Enrichment {
    /// Loads the enrichers' data, for `stream`.
    pub fn new(stream: Stream, setup: &crate::EnrichSetup) -> Result<Self, ProcessError> {
        let config = &setup.config;
        let enricher = setup
            .data()
            .and_then(|data| Enricher::with_data(config, data))
            .map_err(|e| ProcessError::State(format!("enrichment: {e}")))?;
        if config.geo.enabled && !enricher.has_geo() {
            tracing::warn!(
                "geo enrichment is on but no database is configured or found; geo columns stay \
                 empty (scripts/setup-geoip fetches DB-IP City Lite)"
            );
        }
        let dedup = config.duplicates.enabled;
        Ok(Enrichment {
            stream,
            enricher,
            dedup: (dedup && stream == Stream::Clickstream)
                .then(|| Deduplicator::new(&config.duplicates)),
            messages: (dedup && stream == Stream::Segment)
                .then(|| Deduplicator::new(&config.duplicates)),
            sessions: config
                .sessions
                .enabled
                .then(|| Sessionizer::new(&config.sessions)),
            dedup_window_ms: config.duplicates.window_ms,
            session_ttl_ms: config.sessions.state_ttl_ms,
        })
    }

    /// Whether duplicate detection runs.
    pub fn detects_duplicates(&self) -> bool {
        self.dedup.is_some() || self.messages.is_some()
    }

    /// The arrival time of the first copy when `key` is a duplicate.
    pub fn duplicate_of(&mut self, key: DedupKey, arrival_ms: i64) -> Option<i64> {
        let sighting = match key {
            DedupKey::Id(id) => self.dedup.as_mut()?.check(id, arrival_ms),
            DedupKey::Message(digest) => self.messages.as_mut()?.check(digest, arrival_ms),
        };
        match sighting {
            Sighting::First => None,
            Sighting::Duplicate { first_seen_ms } => Some(first_seen_ms),
        }
    }

    /// uap-core patterns compiled so far; `None` when no user agent is parsed.
    pub fn user_agent_patterns_compiled(&self) -> Option<usize> {
        self.enricher.user_agent_patterns_compiled()
    }

    /// Runs the stateless enrichers over a raw event.
    pub fn enrich(&mut self, fields: &EventFields<'_>) -> Enriched {
        self.enricher.enrich(fields)
    }

    /// Runs the stateless enrichers over a Segment call.
    pub fn enrich_call(&mut self, fields: &CallFields<'_>) -> Enriched {
        self.enricher.enrich_call(fields)
    }

    /// `customer_id` as it may be stored (pseudonymised when privacy says so).
    pub fn stored_customer_id(&self, ip: &str, customer_id: Option<i64>) -> Option<i64> {
        self.enricher
            .protect(ip, customer_id)
            .map_or(customer_id, |p| p.customer_id)
    }

    /// Whether sessions are assigned.
    pub fn sessions_enabled(&self) -> bool {
        self.sessions.is_some()
    }

    /// Sessions of a batch about to be committed; `None` when sessions are off.
    pub fn assign_sessions(&mut self, inputs: &[SessionInput]) -> Option<Vec<SessionAssignment>> {
        let now_us = chrono::Utc::now().timestamp_micros();
        Some(self.sessions.as_mut()?.assign(inputs, now_us))
    }

    /// Replaces the duplicate and session state by what the committed `events` rows of
    /// the raw `partitions` this processor owns say. Repeats of an event and a customer's
    /// events share a partition (the record key), so other partitions' rows are other
    /// processors' state.
    pub async fn rebuild(
        &mut self,
        query: &QueryEngine,
        partitions: &std::collections::BTreeSet<u32>,
    ) -> Result<(), ProcessError> {
        let owned = if partitions.is_empty() {
            "false".to_string()
        } else {
            let list: Vec<String> = partitions.iter().map(u32::to_string).collect();
            format!("source_partition IN ({})", list.join(", "))
        };
        let events = self.stream.kind(Table::Events).name();
        if let Some(dedup) = self.dedup.as_mut() {
            dedup.clear();
            let ids = restore_ids(query, self.dedup_window_ms, &owned).await?;
            let n = ids.len();
            for (id, first_seen_ms) in ids {
                dedup.restore(id, first_seen_ms);
            }
            tracing::info!(ids = n, "duplicate detection state rebuilt from events");
        }
        if let Some(messages) = self.messages.as_mut() {
            messages.clear();
            let ids =
                crate::segment_state::restore_messages(query, self.dedup_window_ms, &owned).await?;
            let n = ids.len();
            for (digest, first_seen_ms) in ids {
                messages.restore(digest, first_seen_ms);
            }
            tracing::info!(ids = n, table = events, "duplicate detection state rebuilt");
        }
        if let Some(sessions) = self.sessions.as_mut() {
            sessions.clear();
            let restored = match self.stream {
                Stream::Clickstream => restore_sessions(query, self.session_ttl_ms, &owned).await?,
                Stream::Segment => {
                    let privacy = self.enricher.privacy();
                    let ttl = self.session_ttl_ms;
                    crate::segment_state::restore_sessions(query, ttl, &owned, privacy).await?
                }
            };
            let n = restored.len();
            for session in restored {
                sessions.restore(session);
            }
            tracing::info!(sessions = n, table = events, "session state rebuilt");
        }
        Ok(())
    }
}

/// The lake's columns for what the stateless enrichers derived.
pub(crate) fn columns(enriched: &Enriched) -> EventEnrichment<'_> {
    let ua = enriched.user_agent.as_deref();
    let geo = enriched.geo.as_deref();
    let referrer = enriched.referrer.as_ref();
    let campaign = enriched.campaign.as_ref();
    let bot = enriched.bot.as_ref();
    EventEnrichment {
        browser_family: ua.map(|u| u.browser_family.as_str()),
        browser_version: ua.and_then(|u| u.browser_version.as_deref()),
        os_family: ua.map(|u| u.os_family.as_str()),
        os_version: ua.and_then(|u| u.os_version.as_deref()),
        device_family: ua.map(|u| u.device_family.as_str()),
        device_brand: ua.and_then(|u| u.device_brand.as_deref()),
        device_model: ua.and_then(|u| u.device_model.as_deref()),
        device_type: ua.map(|u| u.device_type.as_str()),
        geo_country: geo.and_then(|g| g.country_code.as_deref()),
        geo_region: geo.and_then(|g| g.region.as_deref()),
        geo_city: geo.and_then(|g| g.city.as_deref()),
        geo_latitude: geo.and_then(|g| g.latitude),
        geo_longitude: geo.and_then(|g| g.longitude),
        referrer_medium: referrer.map(|r| r.medium.as_str()),
        referrer_source: referrer.and_then(|r| r.source.as_deref()),
        referrer_term: referrer.and_then(|r| r.term.as_deref()),
        utm_source: campaign.and_then(|c| c.source.as_deref()),
        utm_medium: campaign.and_then(|c| c.medium.as_deref()),
        utm_campaign: campaign.and_then(|c| c.name.as_deref()),
        utm_term: campaign.and_then(|c| c.term.as_deref()),
        utm_content: campaign.and_then(|c| c.content.as_deref()),
        gclid: campaign.and_then(|c| c.gclid.as_deref()),
        fbclid: campaign.and_then(|c| c.fbclid.as_deref()),
        msclkid: campaign.and_then(|c| c.msclkid.as_deref()),
        is_bot: bot.map(|b| b.is_bot),
        bot_reason: bot.and_then(|b| b.reason.as_deref()),
    }
}

fn state_error(what: &str) -> impl Fn(String) -> ProcessError + '_ {
    move |e| ProcessError::State(format!("rebuilding {what} from events: {e}"))
}

pub(crate) async fn sql(
    query: &QueryEngine,
    what: &str,
    statement: &str,
) -> Result<Vec<RecordBatch>, ProcessError> {
    query
        .sql(statement)
        .await
        .map(|output| output.batches)
        .map_err(|e| ProcessError::state_query(&format!("rebuilding {what} from events"), &e))
}

/// A column as Int64, whatever integer or timestamp type the engine chose.
pub(crate) fn int64(
    column: &ArrayRef,
    what: &str,
) -> Result<deltalake::arrow::array::Int64Array, ProcessError> {
    let cast = cast(column, &DataType::Int64).map_err(|e| state_error(what)(e.to_string()))?;
    Ok(cast.as_primitive::<Int64Type>().clone())
}

/// A column as Utf8, whatever string representation the engine chose.
pub(crate) fn utf8(
    column: &ArrayRef,
    what: &str,
) -> Result<deltalake::arrow::array::StringArray, ProcessError> {
    let cast = cast(column, &DataType::Utf8).map_err(|e| state_error(what)(e.to_string()))?;
    Ok(cast.as_string::<i32>().clone())
}

/// The newest value of an integer expression over `table`, if any row has one.
pub(crate) async fn newest(
    query: &QueryEngine,
    what: &str,
    table: &str,
    expression: &str,
    filter: &str,
) -> Result<Option<i64>, ProcessError> {
    let batches = sql(
        query,
        what,
        &format!("SELECT max({expression}) AS newest FROM {table} WHERE {filter}"),
    )
    .await?;
    let Some(batch) = batches.first().filter(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let values = int64(batch.column(0), what)?;
    Ok((!values.is_null(0)).then(|| values.value(0)))
}

/// Offsets of raw partition `partition` in `from..until` that the stream's duplicates
/// table (`duplicates`) holds: what an earlier run decided for records it committed to
/// `duplicates` but not yet to `events`. A replay must decide the same, whatever the
/// duplicate state says now.
pub(crate) async fn committed_duplicate_offsets(
    query: &QueryEngine,
    duplicates: &str,
    partition: u32,
    from: i64,
    until: i64,
) -> Result<std::collections::HashSet<i64>, ProcessError> {
    const WHAT: &str = "duplicates being replayed";
    let batches = query
        .sql(&format!(
            "SELECT source_offset FROM {duplicates} WHERE source_partition = {partition} \
             AND source_offset >= {from} AND source_offset < {until}"
        ))
        .await
        .map(|output| output.batches)
        .map_err(|e| ProcessError::state_query(&format!("reading {WHAT}"), &e))?;
    let mut offsets = std::collections::HashSet::new();
    for batch in &batches {
        let column = int64(batch.column(0), WHAT)?;
        offsets.extend(column.iter().flatten());
    }
    Ok(offsets)
}

/// (id, log time in ms) of the events that arrived within the window before the newest.
async fn restore_ids(
    query: &QueryEngine,
    window_ms: u64,
    owned: &str,
) -> Result<Vec<(i64, i64)>, ProcessError> {
    const WHAT: &str = "duplicate detection state";
    let arrival = "CAST(log_timestamp AS BIGINT)";
    let Some(newest_us) = newest(query, WHAT, "events", arrival, owned).await? else {
        return Ok(Vec::new());
    };
    let cutoff_us =
        newest_us.saturating_sub(i64::try_from(window_ms.saturating_mul(1000)).unwrap_or(i64::MAX));
    let batches = sql(
        query,
        WHAT,
        &format!(
            "SELECT id, {arrival} AS arrival_us FROM events \
             WHERE {owned} AND {arrival} >= {cutoff_us} ORDER BY arrival_us"
        ),
    )
    .await?;
    let mut out = Vec::new();
    for batch in &batches {
        let ids = int64(batch.column(0), WHAT)?;
        let arrivals = int64(batch.column(1), WHAT)?;
        for row in 0..batch.num_rows() {
            if !ids.is_null(row) && !arrivals.is_null(row) {
                out.push((ids.value(row), arrivals.value(row).div_euclid(1000)));
            }
        }
    }
    Ok(out)
}

/// The sessions whose latest event is within the TTL before the newest event time.
async fn restore_sessions(
    query: &QueryEngine,
    ttl_ms: u64,
    owned: &str,
) -> Result<Vec<RestoredSession>, ProcessError> {
    let source = SessionSource {
        what: "session state",
        table: "events",
        // The time the sessionizer used: the event's own, else its arrival.
        time: "CAST(COALESCE(event_time, log_timestamp) AS BIGINT)",
        visitor_columns: "customer_id, ip, user_agent",
        // A customer's session may span several addresses and user agents, which do not
        // identify a customer's sessions.
        visitor_select: "min(customer_id), min(ip), min(user_agent)",
    };
    restore_sessions_of(query, ttl_ms, owned, &source, |batch| {
        let customers = int64(batch.column(0), source.what)?;
        let ips = utf8(batch.column(1), source.what)?;
        let agents = utf8(batch.column(2), source.what)?;
        Ok((0..batch.num_rows())
            .map(|row| {
                let customer = (!customers.is_null(row)).then(|| customers.value(row));
                VisitorKey::of(customer, ips.value(row), agents.value(row))
            })
            .collect())
    })
    .await
}

/// Where a stream's sessions are rebuilt from.
pub(crate) struct SessionSource<'a> {
    /// What the state is, for errors.
    pub what: &'static str,
    /// The table the sessionizer's output landed in.
    pub table: &'a str,
    /// The time the sessionizer used, in microseconds, as SQL.
    pub time: &'a str,
    /// The table's columns the visitor key is made of.
    pub visitor_columns: &'a str,
    /// Aggregates of `visitor_columns`, one value each per session.
    pub visitor_select: &'a str,
}

/// The sessions of `source` whose latest event is within the TTL before its newest
/// event time (event times past the clock-skew limit are left out, as the live
/// sessionizer's watermark ignores them), oldest first so that each visitor keeps its most
/// recent sessions. `visitors` makes the key of each row of a batch whose first columns
/// are `visitor_select`'s.
pub(crate) async fn restore_sessions_of(
    query: &QueryEngine,
    ttl_ms: u64,
    owned: &str,
    source: &SessionSource<'_>,
    visitors: impl Fn(&RecordBatch) -> Result<Vec<VisitorKey>, ProcessError>,
) -> Result<Vec<RestoredSession>, ProcessError> {
    let SessionSource {
        what, table, time, ..
    } = *source;
    let skew_limit = chrono::Utc::now()
        .timestamp_micros()
        .saturating_add(MAX_CLOCK_SKEW_US);
    let filter = format!("session_id IS NOT NULL AND {owned} AND {time} <= {skew_limit}");
    let Some(newest_us) = newest(query, what, table, time, &filter).await? else {
        return Ok(Vec::new());
    };
    let cutoff_us =
        newest_us.saturating_sub(i64::try_from(ttl_ms.saturating_mul(1000)).unwrap_or(i64::MAX));
    let statement = format!(
        "SELECT {}, session_id, max(session_index) AS session_index, min(t) AS start_us, \
                max(t) AS last_us, max(event_index_in_session) AS events \
         FROM (SELECT {}, session_id, session_index, event_index_in_session, {time} AS t \
               FROM {table} WHERE session_id IS NOT NULL AND {owned}) recent \
         WHERE t >= {cutoff_us} AND t <= {skew_limit} \
         GROUP BY session_id",
        source.visitor_select, source.visitor_columns
    );
    let mut out = Vec::new();
    for batch in &sql(query, what, &statement).await? {
        let keys = visitors(batch)?;
        let first = batch.num_columns().saturating_sub(5);
        let ids = utf8(batch.column(first), what)?;
        let indices = int64(batch.column(first + 1), what)?;
        let starts = int64(batch.column(first + 2), what)?;
        let lasts = int64(batch.column(first + 3), what)?;
        let events = int64(batch.column(first + 4), what)?;
        for (row, visitor) in keys.into_iter().enumerate() {
            if ids.is_null(row) || indices.is_null(row) || starts.is_null(row) {
                continue;
            }
            out.push(RestoredSession {
                visitor,
                session_id: ids.value(row).to_string(),
                session_index: indices.value(row),
                start_us: starts.value(row),
                last_us: lasts.value(row),
                events: if events.is_null(row) {
                    1
                } else {
                    events.value(row)
                },
            });
        }
    }
    out.sort_by_key(|s| (s.last_us, s.session_index));
    Ok(out)
}
