//! Enrichment end to end on generated traffic: the loadgen model knows which visit each
//! event belongs to and whether a crawler sent it, so sessions, bots and duplicates are
//! checked against ground truth that the enrichers never see.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDateTime};
use clickstream_loadgen::{Traffic, TrafficConfig};
use serde_json::Value;

use crate::common::{TestPipeline, json_body};

const GAP_MS: i64 = 30 * 60 * 1000;

/// A generated event as JSON, with the generator's ground truth.
struct GeneratedEvent {
    json: Value,
    visit: u64,
    bot: bool,
}

fn generated() -> Vec<GeneratedEvent> {
    let config = TrafficConfig {
        seed: 2026,
        customers: 120,
        sessions_per_day: 600.0,
        bot_share: 0.12,
        anonymous_share: 0.35,
        invalid_share: 0.0,
        ..TrafficConfig::default()
    };
    Traffic::new(config)
        .take(1_500)
        .map(|e| GeneratedEvent {
            json: e.event.to_value(),
            visit: e.visit,
            bot: e.bot,
        })
        .collect()
}

fn field<'a>(e: &'a GeneratedEvent, name: &str) -> Option<&'a Value> {
    e.json.get("event").and_then(|d| d.get(name))
}

/// Event time in ms: the web tracker's naive microsecond timestamps and the app's `Z` ones.
fn event_ms(e: &GeneratedEvent) -> i64 {
    let text = field(e, "timestamp")
        .and_then(Value::as_str)
        .expect("timestamp");
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_millis())
        })
        .unwrap_or_else(|err| panic!("timestamp {text}: {err}"))
}

/// Who a session belongs to: the customer when known, else the address and user agent.
fn visitor(e: &GeneratedEvent) -> String {
    match field(e, "customer_id").and_then(Value::as_i64) {
        Some(customer) => format!("customer {customer}"),
        None => format!(
            "{} {}",
            field(e, "ip").and_then(Value::as_str).unwrap_or_default(),
            field(e, "user_agent")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
    }
}

fn id(e: &GeneratedEvent) -> i64 {
    e.json["id"].as_i64().expect("id")
}

async fn post(t: &TestPipeline, events: &[GeneratedEvent]) {
    let body: Vec<&Value> = events.iter().map(|e| &e.json).collect();
    let answer = json_body(t.collect(serde_json::to_vec(&body).expect("json")).await).await;
    assert_eq!(answer["valid_count"], events.len(), "{answer}");
}

/// Per event id: (session_id, session_index, event_index_in_session, is_bot).
type Landed = HashMap<i64, (String, i64, i64, bool)>;

async fn landed(t: &TestPipeline) -> Landed {
    t.sql("SELECT id, session_id, session_index, event_index_in_session, is_bot FROM events")
        .await
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().expect("id"),
                (
                    r["session_id"].as_str().expect("session_id").to_owned(),
                    r["session_index"].as_i64().expect("session_index"),
                    r["event_index_in_session"].as_i64().expect("event index"),
                    r["is_bot"].as_bool().expect("is_bot"),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_traffic_lands_with_its_visits_bots_and_duplicates() {
    let t = TestPipeline::start().await;
    let events = generated();
    let visits: BTreeSet<u64> = events.iter().map(|e| e.visit).collect();
    let bots = events.iter().filter(|e| e.bot).count();
    assert!(
        visits.len() > 150 && bots > 50,
        "{} visits, {bots} bot events",
        visits.len()
    );

    for batch in events.chunks(250) {
        post(&t, batch).await;
    }
    // A client that did not see its answers sends two stretches again.
    post(&t, &events[100..300]).await;
    post(&t, &events[1_000..1_050]).await;
    t.wait_for_count("SELECT count(*) AS n FROM duplicates", 250)
        .await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 1_500)
        .await;
    let rows = landed(&t).await;
    assert_eq!(rows.len(), events.len());

    // Bots: the verdict matches who sent each event.
    let wrong: Vec<String> = events
        .iter()
        .filter(|e| rows[&id(e)].3 != e.bot)
        .map(|e| format!("{} (bot: {})", visitor(e), e.bot))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} wrong bot verdicts: {wrong:?}",
        wrong.len()
    );

    // Sessions, by definition: per visitor in event time, a new session exactly where more
    // than 30 minutes passed, numbered 1, 2, ... with events numbered 1, 2, ... inside.
    let mut by_visitor: BTreeMap<String, Vec<&GeneratedEvent>> = BTreeMap::new();
    for e in &events {
        by_visitor.entry(visitor(e)).or_default().push(e);
    }
    let mut expected_sessions = 0;
    for (who, mut mine) in by_visitor {
        mine.sort_by_key(|e| (event_ms(e), id(e)));
        let (mut session, mut index, mut last_ms) = (0, 0, i64::MIN);
        let mut seen_ids = BTreeSet::new();
        for e in mine {
            let ms = event_ms(e);
            if session == 0 || ms - last_ms > GAP_MS {
                session += 1;
                index = 0;
                expected_sessions += 1;
            }
            index += 1;
            last_ms = ms;
            let (session_id, session_index, event_index, _) = &rows[&id(e)];
            assert_eq!(
                (*session_index, *event_index),
                (session, index),
                "{who}, event {}",
                id(e)
            );
            seen_ids.insert(session_id.clone());
            assert_eq!(
                seen_ids.len(),
                session as usize,
                "{who}: one id per session"
            );
        }
    }
    let distinct: BTreeSet<&String> = rows.values().map(|r| &r.0).collect();
    assert_eq!(
        distinct.len(),
        expected_sessions,
        "session ids are unique per session"
    );

    // Ground truth: a visit (as one visitor: logging in mid-visit makes a new visitor) never
    // spans two sessions, since its think times stay under the gap.
    let mut visit_sessions: HashMap<(u64, String), BTreeSet<&String>> = HashMap::new();
    for e in &events {
        visit_sessions
            .entry((e.visit, visitor(e)))
            .or_default()
            .insert(&rows[&id(e)].0);
    }
    for ((visit, who), sessions) in &visit_sessions {
        assert_eq!(
            sessions.len(),
            1,
            "visit {visit} of {who} split: {sessions:?}"
        );
    }
    assert!(
        expected_sessions <= visit_sessions.len(),
        "{expected_sessions} sessions for {} visits",
        visit_sessions.len()
    );
}
