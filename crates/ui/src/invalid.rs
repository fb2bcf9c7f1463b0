//! Invalid events: the latest rejects with their reasons, and the reasons grouped with
//! counts, from the lake's `invalid_events` table.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use clickstream_query::JsonRow;
use serde::{Deserialize, Serialize};

use crate::api::ApiQuery;
use crate::{UiError, UiState};

/// Most rejects one page may ask for.
const MAX_LATEST: usize = 500;

/// Query of `GET /api/ui/invalid`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvalidQuery {
    /// How many of the latest rejects (default 50).
    limit: Option<usize>,
}

/// `GET /api/ui/invalid`
#[derive(Debug, Serialize)]
pub(crate) struct InvalidView {
    total: i64,
    /// Reasons with the offending value left out (`…, found string "x"` → `…`), so that
    /// one mistake made with many values is one line; most frequent first.
    by_reason: Vec<JsonRow>,
    /// The latest rejects, newest first.
    latest: Vec<JsonRow>,
}

/// Groups reasons by what was expected, not by the value found.
const BY_REASON: &str = "SELECT regexp_replace(reason, ', found .*$', '') AS reason, \
     count(*) AS count, max(received_at) AS last_seen \
     FROM invalid_events GROUP BY 1 ORDER BY count DESC, reason LIMIT 100";

/// `GET /api/ui/invalid?limit=50`
pub(crate) async fn list(
    State(state): State<Arc<UiState>>,
    ApiQuery(query): ApiQuery<InvalidQuery>,
) -> Result<Json<InvalidView>, UiError> {
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LATEST {
        return Err(UiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LATEST}"
        )));
    }
    let engine = &state.sources.query;
    let latest_sql = format!(
        "SELECT received_at, reason, event_id, event_type, correlation_id, \
         source_partition, source_offset, raw_json FROM invalid_events \
         ORDER BY received_at DESC, source_partition, source_offset DESC LIMIT {limit}"
    );
    let (total, by_reason, latest) = tokio::try_join!(
        engine.sql("SELECT count(*) AS n FROM invalid_events"),
        engine.sql(BY_REASON),
        engine.sql(&latest_sql),
    )?;
    let total = total
        .to_json_rows()?
        .first()
        .and_then(|row| row.get("n"))
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    Ok(Json(InvalidView {
        total,
        by_reason: by_reason.to_json_rows()?,
        latest: latest.to_json_rows()?,
    }))
}
