//! The Segment stream's duplicate and session state, rebuilt from `segment_events` the way
//! the clickstream stream's is from `events` (see [`crate::enrichment`] for why the lake
//! rather than a checkpoint): message ids with their arrival times, and each recent
//! session with the ids, address and user agent its visitor key is made of.

use clickstream_enrich::{IdDigest, Privacy, RestoredSession, VisitorKey};
use clickstream_query::QueryEngine;
use deltalake::arrow::array::{Array, StringArray};

use crate::ProcessError;
use crate::enrichment::{int64, newest, sql, utf8};
use crate::segment::visitor_ids;

const TABLE: &str = "segment_events";

/// Event times this far past the wall clock are ignored when finding where to rebuild
/// sessions from (as the sessionizer ignores them for its watermark).
const MAX_CLOCK_SKEW_US: i64 = 3_600_000_000;

/// A nullable text value.
fn text(column: &StringArray, row: usize) -> Option<&str> {
    (!column.is_null(row)).then(|| column.value(row))
}

/// (digest of the message id, log time in ms) of the calls that arrived within the
/// window before the newest, in the partitions `owned` selects.
pub(crate) async fn restore_messages(
    query: &QueryEngine,
    window_ms: u64,
    owned: &str,
) -> Result<Vec<(IdDigest, i64)>, ProcessError> {
    const WHAT: &str = "Segment duplicate detection state";
    let arrival = "CAST(log_timestamp AS BIGINT)";
    let Some(newest_us) = newest(query, WHAT, TABLE, arrival, owned).await? else {
        return Ok(Vec::new());
    };
    let cutoff_us =
        newest_us.saturating_sub(i64::try_from(window_ms.saturating_mul(1000)).unwrap_or(i64::MAX));
    let batches = sql(
        query,
        WHAT,
        &format!(
            "SELECT message_id, {arrival} AS arrival_us FROM {TABLE} \
             WHERE {owned} AND {arrival} >= {cutoff_us} ORDER BY arrival_us"
        ),
    )
    .await?;
    let mut out = Vec::new();
    for batch in &batches {
        let ids = utf8(batch.column(0), WHAT)?;
        let arrivals = int64(batch.column(1), WHAT)?;
        for row in 0..batch.num_rows() {
            if !ids.is_null(row) && !arrivals.is_null(row) {
                let digest = IdDigest::of(ids.value(row));
                out.push((digest, arrivals.value(row).div_euclid(1000)));
            }
        }
    }
    Ok(out)
}

/// The sessions whose latest call is within the TTL before the newest call time. The
/// ids are stored as sent; with `privacy` pseudonymising, the live visitor keys were made
/// of their pseudonyms, so the rebuilt ones are too.
pub(crate) async fn restore_sessions(
    query: &QueryEngine,
    ttl_ms: u64,
    owned: &str,
    privacy: Option<&Privacy>,
) -> Result<Vec<RestoredSession>, ProcessError> {
    const WHAT: &str = "Segment session state";
    let time = "CAST(\"timestamp\" AS BIGINT)";
    let skew_limit = chrono::Utc::now()
        .timestamp_micros()
        .saturating_add(MAX_CLOCK_SKEW_US);
    let Some(newest_us) = newest(
        query,
        WHAT,
        TABLE,
        time,
        &format!("session_id IS NOT NULL AND {owned} AND {time} <= {skew_limit}"),
    )
    .await?
    else {
        return Ok(Vec::new());
    };
    let cutoff_us =
        newest_us.saturating_sub(i64::try_from(ttl_ms.saturating_mul(1000)).unwrap_or(i64::MAX));
    // One row per session, with the ids of one of its calls: every call of a session had
    // the same visitor key, which is what the key is rebuilt from.
    let batches = sql(
        query,
        WHAT,
        &format!(
            "SELECT first_value(anonymous_id ORDER BY t) AS anonymous_id, \
                    first_value(user_id ORDER BY t) AS user_id, \
                    first_value(ip ORDER BY t) AS ip, \
                    first_value(user_agent ORDER BY t) AS user_agent, session_id, \
                    max(session_index) AS session_index, min(t) AS start_us, \
                    max(t) AS last_us, max(event_index_in_session) AS events \
             FROM (SELECT anonymous_id, user_id, ip, user_agent, session_id, session_index, \
                          event_index_in_session, {time} AS t \
                   FROM {TABLE} WHERE session_id IS NOT NULL AND {owned}) recent \
             WHERE t >= {cutoff_us} AND t <= {skew_limit} \
             GROUP BY session_id"
        ),
    )
    .await?;
    let mut out = Vec::new();
    for batch in &batches {
        let anonymous = utf8(batch.column(0), WHAT)?;
        let users = utf8(batch.column(1), WHAT)?;
        let ips = utf8(batch.column(2), WHAT)?;
        let agents = utf8(batch.column(3), WHAT)?;
        let ids = utf8(batch.column(4), WHAT)?;
        let indices = int64(batch.column(5), WHAT)?;
        let starts = int64(batch.column(6), WHAT)?;
        let lasts = int64(batch.column(7), WHAT)?;
        let events = int64(batch.column(8), WHAT)?;
        for row in 0..batch.num_rows() {
            if ids.is_null(row) || indices.is_null(row) || starts.is_null(row) {
                continue;
            }
            let stored = visitor_ids(text(&anonymous, row), text(&users, row));
            let keyed: Vec<Option<String>> = stored
                .iter()
                .map(|id| {
                    id.value().map(|value| match privacy {
                        Some(privacy) => privacy.protect_id(id.domain(), value),
                        None => value.to_owned(),
                    })
                })
                .collect();
            let keys = visitor_ids(keyed[0].as_deref(), keyed[1].as_deref());
            out.push(RestoredSession {
                visitor: VisitorKey::of_ids(&keys, text(&ips, row), text(&agents, row)),
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
    // Oldest first, so that each visitor keeps its most recent sessions.
    out.sort_by_key(|s| (s.last_us, s.session_index));
    Ok(out)
}
