//! A small lake with known answers, written through the lake crate as the processor would.
//!
//! 32 events over 3 days (one commit per day) from 5 customers and some anonymous visitors:
//!
//! | day        | events (ids)  | customers (by the first 10 characters of `timestamp`) |
//! |------------|---------------|-------------------------------------------------------|
//! | 2024-03-01 | 1–10          | 1001 (full funnel), 1002 (search → view)               |
//! | 2024-03-02 | 11–22         | 1003 (view → cart), 1001 (reco → cart → order → purchase), 1004 (search), 1005 |
//! | 2024-03-03 | 23–32         | 1002 (full funnel), 1005 (view), 1003 (cart)           |
//!
//! Traps on purpose: event 22 is `2024-03-02T23:30:00-02:00`, i.e. 2024-03-03 01:30 UTC, so its
//! `event_date` is 2024-03-03 while the ksqlDB rule (first 10 characters) counts it on
//! 2024-03-02; event 32 has an unparsable timestamp (`event_time` and `event_date` null);
//! events 5–8 end in `Z`, event 19 uses a space instead of `T`.

use clickstream_lake::{
    DeadLetterRow, DeadLettersBuilder, EventRow, EventsBuilder, InvalidEventRow,
    InvalidEventsBuilder, Lake, TableKind, UniqueUsersBuilder, UniqueUsersRow,
};
use clickstream_query::QueryEngine;
use tempfile::TempDir;

/// One event of the fixture: the fields that matter to the questions asked of it.
pub struct Event {
    pub id: i64,
    pub event_type: &'static str,
    pub customer_id: Option<i64>,
    pub timestamp: &'static str,
    pub page: Option<&'static str>,
    pub query: Option<&'static str>,
    pub product: Option<i64>,
    pub referrer: Option<&'static str>,
    pub position: Option<i64>,
}

pub const fn ev(
    id: i64,
    event_type: &'static str,
    customer_id: Option<i64>,
    timestamp: &'static str,
    page: &'static str,
) -> Event {
    Event {
        id,
        event_type,
        customer_id,
        timestamp,
        page: Some(page),
        query: None,
        product: None,
        referrer: None,
        position: None,
    }
}

pub const fn product(mut event: Event, product: i64) -> Event {
    event.product = Some(product);
    event
}

const GOOGLE: &str = "https://www.google.com/";

/// The events, one inner list per commit (per day).
pub fn days() -> Vec<Vec<Event>> {
    let c = Some;
    vec![
        vec![
            Event {
                referrer: Some(GOOGLE),
                ..ev(1, "page_view", c(1001), "2024-03-01T09:00:00", "/")
            },
            product(
                ev(2, "view", c(1001), "2024-03-01T09:01:10", "/products/42"),
                42,
            ),
            product(
                ev(
                    3,
                    "add_to_cart",
                    c(1001),
                    "2024-03-01T09:02:00",
                    "/products/42",
                ),
                42,
            ),
            ev(
                4,
                "placed_order",
                c(1001),
                "2024-03-01T09:05:00",
                "/checkout",
            ),
            ev(5, "page_view", c(1002), "2024-03-01T10:00:00Z", "/"),
            Event {
                query: Some("running shoes"),
                ..ev(6, "search", c(1002), "2024-03-01T10:01:00Z", "/search")
            },
            Event {
                position: Some(1),
                ..product(
                    ev(7, "click", c(1002), "2024-03-01T10:02:00Z", "/search"),
                    7,
                )
            },
            product(
                ev(8, "view", c(1002), "2024-03-01T10:03:00Z", "/products/7"),
                7,
            ),
            ev(9, "page_view", None, "2024-03-01T11:00:00", "/"),
            ev(10, "page_view", None, "2024-03-01T11:00:30", "/products/42"),
        ],
        vec![
            Event {
                referrer: Some("https://www.bing.com/"),
                ..ev(11, "page_view", c(1003), "2024-03-02T08:00:00Z", "/")
            },
            product(
                ev(12, "view", c(1003), "2024-03-02T08:01:00Z", "/products/42"),
                42,
            ),
            product(
                ev(
                    13,
                    "add_to_cart",
                    c(1003),
                    "2024-03-02T08:02:00Z",
                    "/products/42",
                ),
                42,
            ),
            ev(14, "page_view", c(1001), "2024-03-02T12:00:00", "/"),
            Event {
                position: Some(2),
                ..product(
                    ev(
                        15,
                        "visit_personal_recommendation",
                        c(1001),
                        "2024-03-02T12:01:00",
                        "/recommendations",
                    ),
                    99,
                )
            },
            product(
                ev(
                    16,
                    "add_to_cart",
                    c(1001),
                    "2024-03-02T12:02:00",
                    "/recommendations",
                ),
                99,
            ),
            ev(
                17,
                "placed_order",
                c(1001),
                "2024-03-02T12:05:00",
                "/checkout",
            ),
            ev(18, "purchase", c(1001), "2024-03-02T12:05:30", "/checkout"),
            ev(19, "page_view", c(1004), "2024-03-02 15:00:00", "/"),
            Event {
                query: Some("hat"),
                ..ev(20, "search", c(1004), "2024-03-02T15:01:00", "/search")
            },
            ev(21, "page_view", None, "2024-03-02T16:00:00", "/"),
            ev(22, "page_view", c(1005), "2024-03-02T23:30:00-02:00", "/"),
        ],
        vec![
            ev(23, "page_view", c(1002), "2024-03-03T09:00:00", "/"),
            product(
                ev(24, "view", c(1002), "2024-03-03T09:01:00", "/products/7"),
                7,
            ),
            product(
                ev(
                    25,
                    "add_to_cart",
                    c(1002),
                    "2024-03-03T09:02:00",
                    "/products/7",
                ),
                7,
            ),
            ev(
                26,
                "placed_order",
                c(1002),
                "2024-03-03T09:10:00",
                "/checkout",
            ),
            Event {
                referrer: Some(GOOGLE),
                ..ev(27, "page_view", c(1005), "2024-03-03T10:00:00", "/")
            },
            product(
                ev(28, "view", c(1005), "2024-03-03T10:01:00", "/products/42"),
                42,
            ),
            ev(29, "page_view", c(1003), "2024-03-03T11:00:00", "/"),
            product(
                ev(
                    30,
                    "add_to_cart",
                    c(1003),
                    "2024-03-03T11:01:00",
                    "/products/13",
                ),
                13,
            ),
            ev(31, "page_view", None, "2024-03-03T23:59:59.999999", "/"),
            ev(32, "page_view", c(1004), "not-a-timestamp", "/"),
        ],
    ]
}

/// 2024-03-01T08:00:00Z in milliseconds: log timestamps are this plus one minute per id.
const BASE_MS: i64 = 1_709_280_000_000;

/// A batch of `events` rows for `events`.
pub fn events_batch(events: &[Event]) -> clickstream_lake::RecordBatch {
    let mut builder = EventsBuilder::new();
    for (index, event) in events.iter().enumerate() {
        let user_agent = match event.customer_id {
            Some(_) => "Mozilla/5.0 (X11; Linux x86_64) Firefox/124.0",
            None => "Googlebot/2.1 (+http://www.google.com/bot.html)",
        };
        let ip = format!("10.0.{}.{}", event.customer_id.unwrap_or(0) % 100, index);
        let log_timestamp_ms = BASE_MS + event.id * 60_000;
        builder.push(&EventRow {
            id: event.id,
            event_type: event.event_type,
            package_id: Some("6f1c2a9e-0000-4000-8000-000000000001"),
            user_agent,
            ip: &ip,
            customer_id: event.customer_id,
            timestamp: event.timestamp,
            page: event.page,
            query: event.query,
            product: event.product,
            referrer: event.referrer,
            position: event.position,
            correlation_id: "6f1c2a9e-0000-4000-8000-000000000001",
            source: None,
            schema_id: 1,
            log_timestamp_ms,
            source_partition: (event.customer_id.unwrap_or(event.id) % 6) as i32,
            source_offset: event.id,
            ingested_at_ms: log_timestamp_ms + 250,
            enrichment: Default::default(),
            user: None,
        });
    }
    builder.finish()
}

/// Events rejected at ingest: two lack an `id`, four other reasons once each.
fn invalid_events_batch() -> clickstream_lake::RecordBatch {
    let day = |d: i64| BASE_MS + (d - 1) * 86_400_000 + 3_600_000;
    let rows: [(&str, &str, i64); 6] = [
        (
            r#"{"type":"page_view","event":{}}"#,
            "missing field: id",
            day(1),
        ),
        (
            r#"{"type":"view","event":{"ip":"1.2.3.4"}}"#,
            "missing field: id",
            day(2),
        ),
        (
            r#"{"id":"abc","type":"click","event":{}}"#,
            "field id: expected long, found string",
            day(2),
        ),
        (
            r#"{"id":77,"type":"search","event":{"user_agent":"x","ip":"1.2.3.4","timestamp":12}}"#,
            "field event.timestamp: expected string, found number",
            day(3),
        ),
        ("[1,2,3]", "event is not a JSON object", day(3)),
        (
            r#"{"id":78,"event":{}}"#,
            "missing field: type",
            day(3) + 60_000,
        ),
    ];
    let mut builder = InvalidEventsBuilder::new();
    for (offset, (raw_json, reason, received_at_ms)) in rows.into_iter().enumerate() {
        builder.push(&InvalidEventRow {
            raw_json,
            reason,
            correlation_id: Some("6f1c2a9e-0000-4000-8000-000000000002"),
            source: None,
            received_at_ms,
            source_partition: 0,
            source_offset: offset as i64,
        });
    }
    builder.finish()
}

/// Two records the processor could not decode.
fn dead_letters_batch() -> clickstream_lake::RecordBatch {
    let mut builder = DeadLettersBuilder::new();
    builder.push(&DeadLetterRow {
        reason: "unknown schema id 42",
        source_topic: "acme.clickstream.raw.events",
        source_partition: 2,
        source_offset: 17,
        raw: &[0x00, 0x00, 0x00, 0x00, 0x2a, 0x02],
        correlation_id: Some("6f1c2a9e-0000-4000-8000-000000000003"),
        schema_id: Some(42),
        received_at_ms: BASE_MS + 86_400_000,
        failed_at_ms: BASE_MS + 86_400_000 + 5,
    });
    builder.push(&DeadLetterRow {
        reason: "missing wire-format magic byte",
        source_topic: "acme.clickstream.raw.events",
        source_partition: 4,
        source_offset: 3,
        raw: b"{}",
        correlation_id: None,
        schema_id: None,
        received_at_ms: BASE_MS + 2 * 86_400_000,
        failed_at_ms: BASE_MS + 2 * 86_400_000 + 5,
    });
    builder.finish()
}

/// What the processor would have written to `unique_users_daily` for these events.
pub fn unique_users_batch() -> clickstream_lake::RecordBatch {
    let mut builder = UniqueUsersBuilder::new();
    for (day, unique_users) in [("2024-03-01", 2), ("2024-03-02", 4), ("2024-03-03", 3)] {
        builder.push(&UniqueUsersRow {
            day,
            unique_users,
            updated_at_ms: BASE_MS + 3 * 86_400_000,
        });
    }
    builder.finish()
}

/// A lake in a temporary directory, removed on drop.
pub struct FixtureLake {
    pub lake: Lake,
    _dir: TempDir,
}

/// Builds the fixture lake: three `events` commits, then the other tables.
pub async fn build() -> FixtureLake {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = format!("file://{}", dir.path().display());
    let lake = Lake::open(&root, &Default::default())
        .await
        .expect("open lake");

    let mut events = lake.table(TableKind::Events).await.expect("events table");
    for day in days() {
        events
            .append(vec![events_batch(&day)], &[])
            .await
            .expect("append events");
    }
    let mut invalid = lake.table(TableKind::InvalidEvents).await.expect("table");
    invalid
        .append(vec![invalid_events_batch()], &[])
        .await
        .expect("append invalid events");
    let mut dead = lake.table(TableKind::DeadLetters).await.expect("table");
    dead.append(vec![dead_letters_batch()], &[])
        .await
        .expect("append dead letters");
    let mut unique = lake
        .table(TableKind::UniqueUsersDaily)
        .await
        .expect("table");
    unique
        .overwrite(unique_users_batch(), &[])
        .await
        .expect("overwrite unique users");
    FixtureLake { lake, _dir: dir }
}

/// The fixture lake and an engine over it, without limits.
pub async fn engine() -> (FixtureLake, QueryEngine) {
    let fixture = build().await;
    let engine = QueryEngine::new(fixture.lake.clone())
        .await
        .expect("engine");
    (fixture, engine)
}

/// The single value of a one-row, one-column result, as JSON.
pub async fn scalar(engine: &QueryEngine, sql: &str) -> serde_json::Value {
    let rows = engine
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", &sql[..60.min(sql.len())]))
        .to_json_rows()
        .expect("json");
    assert_eq!(rows.len(), 1, "{sql}");
    rows[0].values().next().cloned().expect("one column")
}
