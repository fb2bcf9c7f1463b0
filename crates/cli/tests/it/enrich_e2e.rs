//! Enrichment end to end: generated traffic with known sessions, bots and duplicates
//! lands in `events` with the enriched columns and in `duplicates`, and the session and
//! duplicate state survives a restart (rebuilt from the lake).

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::{TestPipeline, json_body};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// MaxMind's test database, vendored in the enrich crate.
fn geo_test_database() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../enrich/tests/data/geoip/GeoIP2-City-Test.mmdb")
}

fn event(
    id: i64,
    ua: &str,
    ip: &str,
    customer: Option<i64>,
    minute: i64,
    page: &str,
    referrer: Option<&str>,
) -> Value {
    let mut details = json!({
        "user_agent": ua,
        "ip": ip,
        "customer_id": customer,
        "timestamp": format!("2024-05-01T{:02}:{:02}:00Z", 10 + minute / 60, minute % 60),
        "page": page,
    });
    if let Some(referrer) = referrer {
        details["referrer"] = json!(referrer);
    }
    json!({"id": id, "type": "page_view", "event": details})
}

/// Customer 7001 (Chrome, London): two sessions, at minutes 0, 5, 10 and 60, 65.
/// An anonymous Firefox visitor (Tokyo): one session, minutes 0 and 1. Googlebot
/// (Milton, US): two requests.
fn traffic() -> Vec<Value> {
    let landing =
        "https://xcc-webshop.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring";
    vec![
        event(
            1,
            CHROME,
            "81.2.69.142",
            Some(7001),
            0,
            landing,
            Some("https://www.google.com/search?q=running+shoes"),
        ),
        event(
            2,
            CHROME,
            "81.2.69.142",
            Some(7001),
            5,
            "https://xcc-webshop.com/product/1",
            Some("https://xcc-webshop.com/"),
        ),
        event(
            3,
            CHROME,
            "81.2.69.142",
            Some(7001),
            10,
            "https://xcc-webshop.com/cart",
            Some("https://xcc-webshop.com/product/1"),
        ),
        event(
            4,
            CHROME,
            "81.2.69.142",
            Some(7001),
            60,
            "https://xcc-webshop.com/",
            None,
        ),
        event(
            5,
            CHROME,
            "81.2.69.142",
            Some(7001),
            65,
            "https://xcc-webshop.com/product/2",
            Some("https://l.facebook.com/"),
        ),
        event(
            6,
            FIREFOX,
            "2001:218::1",
            None,
            0,
            "https://xcc-webshop.com/",
            Some("https://t.co/x"),
        ),
        event(
            7,
            FIREFOX,
            "2001:218::1",
            None,
            1,
            "https://xcc-webshop.com/product/3",
            Some("https://xcc-webshop.com/"),
        ),
        event(
            8,
            GOOGLEBOT,
            "216.160.83.56",
            None,
            2,
            "https://xcc-webshop.com/",
            None,
        ),
        event(
            9,
            GOOGLEBOT,
            "216.160.83.56",
            None,
            3,
            "https://xcc-webshop.com/product/1",
            None,
        ),
    ]
}

async fn post(t: &TestPipeline, events: &[Value]) {
    let answer = json_body(t.collect(serde_json::to_vec(events).expect("json")).await).await;
    assert_eq!(answer["valid_count"], json!(events.len()), "{answer}");
}

async fn start() -> TestPipeline {
    TestPipeline::start_with(|config| {
        config.enrich.geo.databases = vec![geo_test_database()];
        config.enrich.referrer.internal_domains = vec!["xcc-webshop.com".into()];
    })
    .await
}

fn text<'a>(row: &'a serde_json::Map<String, Value>, column: &str) -> Option<&'a str> {
    row.get(column).and_then(Value::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_lands_enriched_with_sessions_bots_and_duplicates() {
    let t = start().await;
    let traffic = traffic();
    post(&t, &traffic).await;
    // A client retrying part of the batch: same ids, another request.
    post(&t, &traffic[..3]).await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 9)
        .await;
    t.wait_for_count("SELECT count(*) AS n FROM duplicates", 3)
        .await;

    let rows = t
        .sql(
            "SELECT id, browser_family, os_family, device_type, geo_country, geo_city, \
             geo_latitude, referrer_medium, referrer_source, referrer_term, utm_source, \
             utm_medium, utm_campaign, is_bot, bot_reason, session_id, session_index, \
             event_index_in_session FROM events ORDER BY id",
        )
        .await;
    assert_eq!(rows.len(), 9);
    let first = &rows[0];
    assert_eq!(text(first, "browser_family"), Some("Chrome"));
    assert_eq!(text(first, "os_family"), Some("Windows"));
    assert_eq!(text(first, "device_type"), Some("desktop"));
    assert_eq!(text(first, "geo_country"), Some("GB"));
    assert_eq!(text(first, "geo_city"), Some("London"));
    assert_eq!(first["geo_latitude"], json!(51.5142));
    assert_eq!(text(first, "referrer_medium"), Some("search"));
    assert_eq!(text(first, "referrer_source"), Some("Google"));
    assert_eq!(text(first, "referrer_term"), Some("running shoes"));
    assert_eq!(text(first, "utm_source"), Some("newsletter"));
    assert_eq!(text(first, "utm_campaign"), Some("spring"));
    assert_eq!(first["is_bot"], json!(false));
    assert_eq!(text(&rows[1], "referrer_medium"), Some("internal"));
    assert_eq!(text(&rows[3], "referrer_medium"), Some("direct"));
    assert_eq!(text(&rows[4], "referrer_source"), Some("Facebook"));
    assert_eq!(text(&rows[5], "geo_country"), Some("JP"));
    assert_eq!(text(&rows[5], "browser_family"), Some("Firefox"));
    assert_eq!(text(&rows[5], "referrer_medium"), Some("social"));
    for bot in &rows[7..] {
        assert_eq!(bot["is_bot"], json!(true), "{bot:?}");
        assert!(text(bot, "bot_reason").is_some_and(|r| !r.is_empty()));
        assert_eq!(text(bot, "geo_city"), Some("Milton"));
    }

    // Sessions: (session_index, event_index_in_session) per event, and which share ids.
    let sessions: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["session_index"].as_i64().expect("session_index"),
                r["event_index_in_session"].as_i64().expect("event index"),
            )
        })
        .collect();
    assert_eq!(
        sessions,
        vec![
            (1, 1),
            (1, 2),
            (1, 3),
            (2, 1),
            (2, 2),
            (1, 1),
            (1, 2),
            (1, 1),
            (1, 2)
        ]
    );
    let id = |i: usize| text(&rows[i], "session_id").expect("session_id");
    assert_eq!(id(0), id(2));
    assert_ne!(id(2), id(3));
    assert_eq!(id(3), id(4));
    assert_eq!(id(5), id(6));
    assert_ne!(id(0), id(5));
    assert_eq!(id(7), id(8));

    let dups = t
        .sql("SELECT id, first_seen_at <= log_timestamp AS ordered FROM duplicates ORDER BY id")
        .await;
    let dup_ids: Vec<i64> = dups.iter().map(|r| r["id"].as_i64().expect("id")).collect();
    assert_eq!(dup_ids, vec![1, 2, 3]);
    assert!(dups.iter().all(|r| r["ordered"] == json!(true)));

    // After a restart the state comes back from the lake: customer 7001's next event
    // continues session 2, and a resent id is still a duplicate.
    let t = t.restart().await;
    post(
        &t,
        &[
            event(
                10,
                CHROME,
                "81.2.69.142",
                Some(7001),
                80,
                "https://xcc-webshop.com/",
                None,
            ),
            traffic[4].clone(),
        ],
    )
    .await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 10)
        .await;
    t.wait_for_count("SELECT count(*) AS n FROM duplicates", 4)
        .await;
    let continued = t
        .sql("SELECT session_id, session_index, event_index_in_session FROM events WHERE id = 10")
        .await;
    assert_eq!(text(&continued[0], "session_id"), Some(id(4)));
    assert_eq!(continued[0]["session_index"], json!(2));
    assert_eq!(continued[0]["event_index_in_session"], json!(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_and_switched_off_enrichers() {
    let t = TestPipeline::start_with(|config| {
        config.enrich.geo.databases = vec![geo_test_database()];
        config.enrich.privacy.anonymize_ip = true;
        config.enrich.duplicates.enabled = false;
        config.enrich.sessions.enabled = false;
        config.enrich.user_agent.enabled = false;
    })
    .await;
    let traffic = traffic();
    post(&t, &traffic[..2]).await;
    post(&t, &traffic[..1]).await;
    // Duplicates off: the resent event lands twice.
    t.wait_for_count("SELECT count(*) AS n FROM events", 3)
        .await;
    let rows = t
        .sql("SELECT ip, geo_city, browser_family, is_bot, session_id FROM events ORDER BY id")
        .await;
    for row in &rows {
        // Located before the IP was anonymised.
        assert_eq!(text(row, "ip"), Some("81.2.69.0"));
        assert_eq!(text(row, "geo_city"), Some("London"));
        assert_eq!(row["browser_family"], Value::Null);
        assert_eq!(row["is_bot"], json!(false));
        assert_eq!(row["session_id"], Value::Null);
    }
    let n = t.sql("SELECT count(*) AS n FROM duplicates").await;
    assert_eq!(n[0]["n"], json!(0));
}
