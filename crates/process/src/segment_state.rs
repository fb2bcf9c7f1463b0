//! The Segment stream's duplicate and session state, rebuilt from `segment_events` the way
//! the clickstream stream's is from `events` (see [`crate::enrichment`] for why the lake
//! rather than a checkpoint): message ids with their arrival times, and each recent
//! session with the ids, address and user agent its visitor key is made of.

use clickstream_enrich::{IdDigest, Privacy, RestoredSession, VisitorKey};
use clickstream_query::QueryEngine;
use deltalake::arrow::array::{Array, StringArray};

use crate::ProcessError;
use crate::enrichment::{SessionSource, int64, newest, restore_sessions_of, sql, utf8};
use crate::segment::visitor_ids;

const TABLE: &str = "segment_events";

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
    let source = SessionSource {
        what: "Segment session state",
        table: TABLE,
        time: "CAST(\"timestamp\" AS BIGINT)",
        visitor_columns: "anonymous_id, user_id, ip, user_agent",
        // Every call of a session had the same visitor key, which is what the key is
        // rebuilt from: the ids of one of its calls.
        visitor_select: "first_value(anonymous_id ORDER BY t), first_value(user_id ORDER BY t), \
                         first_value(ip ORDER BY t), first_value(user_agent ORDER BY t)",
    };
    restore_sessions_of(query, ttl_ms, owned, &source, |batch| {
        let anonymous = utf8(batch.column(0), source.what)?;
        let users = utf8(batch.column(1), source.what)?;
        let ips = utf8(batch.column(2), source.what)?;
        let agents = utf8(batch.column(3), source.what)?;
        Ok((0..batch.num_rows())
            .map(|row| {
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
                VisitorKey::of_ids(&keys, text(&ips, row), text(&agents, row))
            })
            .collect())
    })
    .await
}
