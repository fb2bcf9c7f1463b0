//! Segment's tracking API end to end, over real HTTP against `clickstream up`: calls land
//! in `segment_events` with their properties, traits and context, enriched; a library's
//! retry of a call (same `messageId`) lands once, the copy in `segment_duplicates`;
//! `identify` and `alias` link ids in `identities`; a refused call is kept in
//! `segment_invalid_events` with its reason; and after a restart nothing lands twice.

use std::sync::atomic::Ordering;
use std::time::Duration;

use clickstream::{Pipeline, Roles};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestPipeline, json_body, seed_events};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  Chrome/120.0.0.0 Safari/537.36";

async fn batch(t: &TestPipeline, calls: Value) -> reqwest::Response {
    t.http
        .post(t.url("/v1/batch"))
        .basic_auth("any-write-key", Some(""))
        .json(&json!({"batch": calls, "sentAt": "2026-12-06T10:00:05.000Z"}))
        .send()
        .await
        .expect("sent")
}

/// A browser visit: a page view, a track, then a login (identify) and an alias.
fn visit(prefix: &str) -> Value {
    let context = json!({
        "ip": "81.2.69.142", "userAgent": UA, "locale": "en-GB",
        "page": {"url": "https://shop.example/boots?utm_source=news&utm_medium=email",
                 "path": "/boots", "referrer": "https://www.google.com/", "title": "Boots"},
        "campaign": {"name": "winter"},
        "library": {"name": "analytics.js", "version": "1.84.3"}
    });
    json!([
        {"type": "page", "messageId": format!("{prefix}-1"), "anonymousId": format!("{prefix}-anon"),
         "name": "Boots", "properties": {"path": "/boots"}, "context": context,
         "timestamp": "2026-12-06T10:00:00.000Z"},
        {"type": "track", "messageId": format!("{prefix}-2"), "anonymousId": format!("{prefix}-anon"),
         "event": "Order Completed", "properties": {"revenue": 42.5, "currency": "EUR", "order id": "o-1"},
         "context": context, "timestamp": "2026-12-06T10:00:01.000Z"},
        {"type": "identify", "messageId": format!("{prefix}-3"), "anonymousId": format!("{prefix}-anon"),
         "userId": format!("{prefix}-user"), "traits": {"email": "ada@example.com", "plan": "pro"},
         "context": context, "timestamp": "2026-12-06T10:00:02.000Z"},
        {"type": "alias", "messageId": format!("{prefix}-4"), "previousId": format!("{prefix}-old"),
         "userId": format!("{prefix}-user"), "timestamp": "2026-12-06T10:00:03.000Z"}
    ])
}

#[tokio::test]
async fn calls_land_enriched_once_with_identities_and_refusals_kept() {
    let t = TestPipeline::start().await;
    let answer = batch(&t, visit("v1")).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(json_body(answer).await, json!({"success": true}));
    // The library retries the track call (its answer was lost): the same messageId.
    let retry = batch(&t, json!([visit("v1")[1].clone()])).await;
    assert_eq!(retry.status(), StatusCode::OK);
    // A call Segment's rules refuse: no ids at all.
    let refused = batch(
        &t,
        json!([{"type": "track", "event": "x", "messageId": "bad-1"}]),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    t.wait_for_count(
        "SELECT count(*) AS n FROM segment_events WHERE message_id LIKE 'v1-%'",
        4,
    )
    .await;
    t.wait_for_count(
        "SELECT count(*) AS n FROM segment_duplicates WHERE message_id = 'v1-2'",
        1,
    )
    .await;
    t.wait_for_count(
        "SELECT count(*) AS n FROM segment_invalid_events WHERE message_id = 'bad-1'",
        1,
    )
    .await;
    t.wait_for_count(
        "SELECT count(*) AS n FROM identities WHERE user_id = 'v1-user'",
        2,
    )
    .await;

    let rows = t
        .sql(
            "SELECT type, event, anonymous_id, user_id, ip, browser_family, geo_country, \
                    referrer_medium, utm_source, utm_campaign, session_id, properties, traits, \
                    context_locale, \"timestamp\" \
             FROM segment_events WHERE message_id LIKE 'v1-%' ORDER BY message_id",
        )
        .await;
    assert_eq!(rows.len(), 4);
    let track = &rows[1];
    assert_eq!(track["type"], "track");
    assert_eq!(track["event"], "Order Completed");
    assert_eq!(track["ip"], "81.2.69.142");
    assert_eq!(track["browser_family"], "Chrome");
    assert_eq!(track["referrer_medium"], "search");
    // The explicit campaign wins over the URL's parameters, field by field.
    assert_eq!(track["utm_campaign"], "winter");
    assert_eq!(track["utm_source"], "news");
    assert_eq!(track["context_locale"], "en-GB");
    let properties: Value =
        serde_json::from_str(track["properties"].as_str().expect("properties text"))
            .expect("properties are JSON");
    assert_eq!(properties["revenue"], 42.5);
    assert_eq!(properties["order id"], "o-1");
    let identify = &rows[2];
    let traits: Value = serde_json::from_str(identify["traits"].as_str().expect("traits text"))
        .expect("traits are JSON");
    assert_eq!(traits["email"], "ada@example.com");
    // A visit before and after the login is one session: keyed by the anonymous id.
    assert!(rows[0]["session_id"].is_string());
    assert_eq!(rows[0]["session_id"], rows[2]["session_id"]);

    let links = t
        .sql(
            "SELECT link, anonymous_id, previous_id FROM identities \
             WHERE user_id = 'v1-user' ORDER BY link",
        )
        .await;
    assert_eq!(links[0]["link"], "alias");
    assert_eq!(links[0]["previous_id"], "v1-old");
    assert_eq!(links[1]["link"], "identify");
    assert_eq!(links[1]["anonymous_id"], "v1-anon");

    // SQL reads the JSON text: the revenue of the order, and the visit's steps stitched
    // to the user the anonymous id turned out to be (the saved funnel question's join).
    let revenue = t
        .sql(
            "SELECT json_get_float(properties, 'revenue') AS revenue, \
                    properties ->> 'currency' AS currency \
             FROM segment_events WHERE message_id = 'v1-2'",
        )
        .await;
    assert_eq!(revenue[0]["revenue"], 42.5);
    assert_eq!(revenue[0]["currency"], "EUR");
    let people = t
        .sql(
            "WITH links AS (SELECT anonymous_id, min(user_id) AS user_id FROM identities \
                            WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id) \
             SELECT DISTINCT coalesce(c.user_id, l.user_id, c.anonymous_id) AS person \
             FROM segment_events c LEFT JOIN links l ON c.anonymous_id = l.anonymous_id \
             WHERE c.message_id LIKE 'v1-%'",
        )
        .await;
    assert_eq!(people, t.sql("SELECT 'v1-user' AS person").await);

    let reason = t
        .sql("SELECT reason FROM segment_invalid_events WHERE message_id = 'bad-1'")
        .await;
    let reason = reason[0]["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("userId") || reason.contains("anonymousId"),
        "{reason}"
    );

    // After a restart the stream resumes where the lake says: nothing twice.
    let t = t.restart().await;
    let answer = batch(&t, visit("v2")).await;
    assert_eq!(answer.status(), StatusCode::OK);
    t.wait_for_count(
        "SELECT count(*) AS n FROM segment_events WHERE message_id LIKE 'v2-%'",
        4,
    )
    .await;
    t.wait_for_count(
        "SELECT count(*) AS n FROM segment_events WHERE message_id LIKE 'v1-%'",
        4,
    )
    .await;
    t.wait_for_count("SELECT count(*) AS n FROM identities", 4)
        .await;
    // The retry across the restart is still a duplicate: the state came back from the lake.
    let again = batch(&t, json!([visit("v1")[0].clone()])).await;
    assert_eq!(again.status(), StatusCode::OK);
    t.wait_for_count(
        "SELECT count(*) AS n FROM segment_duplicates WHERE message_id = 'v1-1'",
        1,
    )
    .await;
    t.wait_for_count(
        "SELECT count(*) AS n FROM segment_events WHERE message_id = 'v1-1'",
        1,
    )
    .await;
    // A later call of the first visitor continues its session: the sessions came back
    // from the lake too.
    let mut late = visit("v1")[1].clone();
    late["messageId"] = json!("v1-late");
    late["timestamp"] = json!("2026-12-06T10:00:04.000Z");
    assert_eq!(batch(&t, json!([late])).await.status(), StatusCode::OK);
    t.wait_for_count(
        "SELECT count(*) AS n FROM segment_events WHERE message_id = 'v1-late'",
        1,
    )
    .await;
    let sessions = t
        .sql(
            "SELECT message_id, session_id, session_index, event_index_in_session \
             FROM segment_events WHERE anonymous_id = 'v1-anon' ORDER BY \"timestamp\"",
        )
        .await;
    let late = sessions.last().expect("the late call");
    assert_eq!(late["message_id"], "v1-late", "{sessions:?}");
    assert_eq!(
        late["session_id"], sessions[0]["session_id"],
        "{sessions:?}"
    );
    assert_eq!(late["session_index"], sessions[0]["session_index"]);
    assert_eq!(
        late["event_index_in_session"].as_i64(),
        Some(sessions.len() as i64),
        "{sessions:?}"
    );
}

/// `process --drain` with the Segment stream on, against a log written while it was off
/// (so its topics were never created): the clickstream backlog lands and the drain ends.
/// The Segment processor has nothing to drain and is not started (it used to fail the
/// drain with "unknown topic" on the embedded log; a Kafka consumer would wait for
/// partitions that never come).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_ends_when_the_segment_topics_were_never_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TestPipeline::start_in(dir.path(), |config| {
        config.segment.enabled = false;
        config.processor.enabled = false;
    })
    .await;
    let answer = t
        .collect(serde_json::to_vec(&seed_events()).expect("json"))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let valid = json_body(answer).await["valid_count"]
        .as_u64()
        .expect("valid_count");
    assert!(valid > 0);
    let topics = t.log().topics().await.expect("topics");
    assert!(
        !topics.iter().any(|topic| topic.name.contains("segment")),
        "the Segment topics exist: {topics:?}"
    );
    let config = t.config.clone();
    t.pipeline.shutdown().await.expect("clean shutdown");

    let registry = Pipeline::start_roles(config.clone(), Roles::registry(), false)
        .await
        .expect("registry starts");
    let mut drain_config = config;
    drain_config.segment.enabled = true;
    drain_config.processor.enabled = true;
    let registry_addr = registry.registry_addr().expect("registry listens");
    drain_config.registry.url = Some(format!("http://{registry_addr}").into());
    let mut drain = Pipeline::start_roles(drain_config, Roles::processor(), true)
        .await
        .expect("processor starts");
    tokio::time::timeout(Duration::from_secs(60), drain.failed())
        .await
        .expect("the drain ends")
        .expect("the drain succeeds");
    let stats = drain.processor_stats().await.expect("stats");
    assert_eq!(stats.events_written.load(Ordering::Relaxed), valid);
    drain.shutdown().await.expect("clean shutdown");
    registry.shutdown().await.expect("clean shutdown");
}

/// Malformed calls over real HTTP: each is answered 400 with Segment's `invalid_calls`
/// code and its reason, and kept in `segment_invalid_events` with that reason; a path
/// that is no endpoint is a 404 with a JSON reason (nothing to keep: it is not a call).
#[tokio::test]
async fn malformed_calls_are_400_with_their_reason_and_kept() {
    let t = TestPipeline::start().await;
    let big = "x".repeat(70_000);
    let cases = [
        (
            "/v1/track",
            json!({"anonymousId": "a", "event": 42}),
            "field 'event'",
        ),
        (
            "/v1/track",
            json!({"anonymousId": "a", "event": "x", "properties": "nope"}),
            "field 'properties'",
        ),
        (
            "/v1/track",
            json!({"anonymousId": "a", "event": "x", "timestamp": "yesterday"}),
            "field 'timestamp'",
        ),
        (
            "/v1/batch",
            json!({"batch": [{"anonymousId": "a", "event": "x"}]}),
            "field 'type': missing",
        ),
        (
            "/v1/batch",
            json!({"batch": [{"type": "bogus", "anonymousId": "a"}]}),
            "is not a call type",
        ),
        (
            "/v1/batch",
            json!({"batch": [{"type": "track", "anonymousId": "a", "event": "x",
                              "properties": {"blob": big}}]}),
            "over the limit of 65536 bytes",
        ),
    ];
    for (path, body, reason) in &cases {
        let answer = t
            .http
            .post(t.url(path))
            .basic_auth("any-write-key", Some(""))
            .json(body)
            .send()
            .await
            .expect("sent");
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{path} {reason}");
        let answer = json_body(answer).await;
        assert_eq!(answer["success"], false);
        assert_eq!(answer["code"], "invalid_calls");
        let said = answer["refused"][0]["reason"].as_str().unwrap_or_default();
        assert!(said.contains(reason), "{reason}: {answer}");
    }
    let unknown = t
        .http
        .post(t.url("/v1/unknown"))
        .json(&json!({"type": "track", "anonymousId": "a", "event": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let unknown = json_body(unknown).await;
    assert!(
        unknown["message"]
            .as_str()
            .is_some_and(|m| m.contains("/v1/unknown")),
        "{unknown}"
    );

    t.wait_for_count(
        "SELECT count(*) AS n FROM segment_invalid_events",
        cases.len() as i64,
    )
    .await;
    let kept = t.sql("SELECT reason FROM segment_invalid_events").await;
    for (_, _, reason) in &cases {
        let matching = kept
            .iter()
            .filter(|row| row["reason"].as_str().is_some_and(|r| r.contains(reason)))
            .count();
        assert_eq!(matching, 1, "{reason}: {kept:?}");
    }
    assert!(
        t.sql("SELECT message_id FROM segment_events")
            .await
            .is_empty()
    );
}
