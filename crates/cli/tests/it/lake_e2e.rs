//! Ingest to lake over real sockets: what is posted is what the tables hold, the latest
//! topic carries the request's correlation id, and unique users per day are exact.

use std::collections::{BTreeMap, HashMap};

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use clickstream_event::{LATEST_TOPIC, UNIQUE_USERS_TOPIC};
use serde_json::{Value, json};

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::{
    EVENT_DETAIL_FIELDS, TestPipeline, decode_via_registry, json_body, read_topic, seed_events,
};

/// `n` valid events of the seed's shapes with ids from `first_id`, plus the seed's three
/// invalid ones.
fn mixed_events(first_id: i64, n: usize) -> Vec<Value> {
    let seed = seed_events();
    let valid: Vec<&Value> = seed.iter().take(12).collect();
    let mut events: Vec<Value> = (0..n)
        .map(|i| {
            let mut event = valid[i % valid.len()].clone();
            event["id"] = json!(first_id + i as i64);
            event
        })
        .collect();
    events.extend(seed[12..].iter().cloned());
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_events_land_column_for_column_embedded_log_file_lake() {
    posted_events_land_in_the_lake_column_for_column(Backend::new(
        LogBackend::Embedded,
        LakeBackend::File,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_events_land_column_for_column_embedded_log_s3_lake() {
    posted_events_land_in_the_lake_column_for_column(Backend::new(
        LogBackend::Embedded,
        LakeBackend::s3(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_events_land_column_for_column_kafka_log_file_lake() {
    posted_events_land_in_the_lake_column_for_column(Backend::new(
        LogBackend::kafka(),
        LakeBackend::File,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_events_land_column_for_column_kafka_log_s3_lake() {
    posted_events_land_in_the_lake_column_for_column(Backend::new(
        LogBackend::kafka(),
        LakeBackend::s3(),
    ))
    .await;
}

async fn posted_events_land_in_the_lake_column_for_column(backend: Backend) {
    let t = TestPipeline::start_on(&backend).await;
    let mut posted: HashMap<i64, (Value, String)> = HashMap::new();
    let (mut valid, mut invalid) = (0, 0);
    for round in 0..4 {
        let events = mixed_events(1_000 + round * 100, 60);
        let answer = json_body(t.collect(serde_json::to_vec(&events).expect("json")).await).await;
        valid += answer["valid_count"].as_i64().expect("n");
        invalid += answer["invalid_count"].as_i64().expect("n");
        let correlation_id = answer["correlation_id"].as_str().expect("id").to_string();
        for event in events.iter().take(60) {
            posted.insert(
                event["id"].as_i64().expect("id"),
                (event.clone(), correlation_id.clone()),
            );
        }
    }
    assert_eq!((valid, invalid), (240, 12));
    t.wait_for_count("SELECT count(*) AS n FROM events", valid)
        .await;
    t.wait_for_count("SELECT count(*) AS n FROM invalid_events", invalid)
        .await;

    let rows = t
        .sql(
            "SELECT id, type, package_id, user_agent, ip, customer_id, timestamp, page, query, \
             product, referrer, position, correlation_id, event_time_valid, event_date \
             FROM events ORDER BY id",
        )
        .await;
    assert_eq!(rows.len(), posted.len());
    for row in &rows {
        let id = row["id"].as_i64().expect("id");
        let (event, correlation_id) = &posted[&id];
        assert_eq!(row["type"], event["type"], "type of {id}");
        assert_eq!(
            row.get("package_id").cloned().unwrap_or(Value::Null),
            Value::Null
        );
        for field in EVENT_DETAIL_FIELDS {
            let sent = event["event"].get(field).cloned().unwrap_or(Value::Null);
            let stored = row.get(field).cloned().unwrap_or(Value::Null);
            assert_eq!(stored, sent, "{field} of event {id}");
        }
        assert_eq!(
            row["correlation_id"],
            json!(correlation_id),
            "correlation id of {id}"
        );
        assert_eq!(row["event_time_valid"], json!(true));
        let day = &event["event"]["timestamp"].as_str().expect("ts")[..10];
        assert_eq!(row["event_date"], json!(day), "event_date of {id}");
    }

    let rejects = t
        .sql("SELECT reason, correlation_id FROM invalid_events ORDER BY reason")
        .await;
    assert!(rejects.iter().any(|r| {
        r["reason"]
            .as_str()
            .is_some_and(|s| s.contains("field 'id'"))
    }));

    // The latest topic: one record per event, metadata carrying the request's id.
    let latest = read_topic(t.log().as_ref(), LATEST_TOPIC).await;
    assert_eq!(latest.len() as i64, valid);
    let mut schemas: HashMap<u32, Schema> = HashMap::new();
    for record in &latest {
        let Avro::Record(fields) = decode_via_registry(&t, &mut schemas, &record.value).await
        else {
            panic!("not a record")
        };
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let Some(Avro::Long(event_id)) = get("id") else {
            panic!("id")
        };
        let Some(Avro::Record(metadata)) = get("metadata") else {
            panic!("metadata")
        };
        let correlation = metadata
            .iter()
            .find(|(n, _)| n == "correlation_id")
            .map(|(_, v)| v.clone());
        assert_eq!(correlation, Some(Avro::String(posted[&event_id].1.clone())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_users_per_day_are_exact_and_survive_a_restart() {
    let t = TestPipeline::start().await;
    // Known answers: day -> distinct customers. Null customers and repeats don't count.
    let visits: &[(&str, Option<i64>)] = &[
        ("2024-03-01T08:00:00", Some(1)),
        ("2024-03-01T09:00:00Z", Some(2)),
        ("2024-03-01T10:00:00.5", Some(1)),
        ("2024-03-01T11:00:00", None),
        ("2024-03-01T23:59:59+05:00", Some(3)),
        ("2024-03-02T00:00:00", Some(1)),
        ("2024-03-02T01:00:00", Some(4)),
        ("2024-03-02T02:00:00", Some(4)),
        ("2024-03-03T12:00:00", Some(5)),
        ("2024-03-03T13:00:00", None),
    ];
    let events = |visits: &[(&str, Option<i64>)], first: i64| -> Vec<Value> {
        visits
            .iter()
            .enumerate()
            .map(|(i, (ts, customer))| {
                json!({"id": first + i as i64, "type": "page_view", "event": {
                    "user_agent": "UA", "ip": "10.0.0.1", "customer_id": customer, "timestamp": ts}})
            })
            .collect()
    };
    let answer = t
        .collect(serde_json::to_vec(&events(visits, 1)).expect("json"))
        .await;
    assert_eq!(answer.status(), 200);
    let expected = BTreeMap::from([("2024-03-01", 3), ("2024-03-02", 2), ("2024-03-03", 1)]);
    wait_for_unique_users(&t, &expected).await;
    assert_topic_holds(&t, &expected).await;

    let t = t.restart().await;
    wait_for_unique_users(&t, &expected).await;
    // After the restart, the rebuilt state neither forgets nor double counts.
    let more: &[(&str, Option<i64>)] = &[
        ("2024-03-01T12:00:00", Some(3)),
        ("2024-03-01T12:30:00", Some(6)),
        ("2024-03-04T00:00:00", Some(1)),
    ];
    let answer = t
        .collect(serde_json::to_vec(&events(more, 100)).expect("json"))
        .await;
    assert_eq!(answer.status(), 200);
    let expected = BTreeMap::from([
        ("2024-03-01", 4),
        ("2024-03-02", 2),
        ("2024-03-03", 1),
        ("2024-03-04", 1),
    ]);
    wait_for_unique_users(&t, &expected).await;
    assert_topic_holds(&t, &expected).await;
}

async fn wait_for_unique_users(t: &TestPipeline, expected: &BTreeMap<&str, i64>) {
    let want: BTreeMap<String, i64> = expected.iter().map(|(d, n)| (d.to_string(), *n)).collect();
    let want = &want;
    let within = std::time::Duration::from_secs(30);
    crate::eventually::eventually("unique_users_daily", within, || async move {
        let rows = t
            .sql("SELECT day, unique_users FROM unique_users_daily ORDER BY day")
            .await;
        let got: BTreeMap<String, i64> = rows
            .iter()
            .map(|r| {
                (
                    r["day"].as_str().expect("day").to_string(),
                    r["unique_users"].as_i64().expect("n"),
                )
            })
            .collect();
        crate::eventually::check(&got == want, || format!("{got:?}, expected {want:?}"))
    })
    .await;
}

/// The latest value per day on the unique users topic, as ksqlDB's changelog would show.
async fn assert_topic_holds(t: &TestPipeline, expected: &BTreeMap<&str, i64>) {
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    let mut records = read_topic(t.log().as_ref(), UNIQUE_USERS_TOPIC).await;
    records.sort_by_key(|r| (r.timestamp_ms, r.offset));
    for record in records {
        let key = String::from_utf8(record.key.expect("keyed by day").to_vec()).expect("utf8");
        let value: Value = serde_json::from_slice(&record.value).expect("json value");
        if let Some(previous) = latest.get(&key) {
            assert!(
                value["UNIQUE_USERS"].as_i64() >= previous["UNIQUE_USERS"].as_i64(),
                "counts never decrease"
            );
        }
        latest.insert(key, value);
    }
    for (day, n) in expected {
        assert_eq!(latest[*day], json!({"TIMESTAMP": day, "UNIQUE_USERS": n}));
    }
}

/// `lake.flush_max_bytes` commits a batch by the size of the records it was made from,
/// before the row count or the interval would: here both are out of reach within the test.
#[tokio::test]
async fn a_batch_commits_once_its_records_reach_flush_max_bytes() {
    let t = TestPipeline::start_with(|config| {
        config.lake.flush_max_rows = 1_000_000;
        config.lake.flush_interval_ms = 600_000;
        config.lake.flush_max_bytes = 1;
    })
    .await;
    let events = crate::common::seed_events();
    let answer =
        crate::common::json_body(t.collect(serde_json::to_vec(&events).expect("json")).await).await;
    let valid = answer["valid_count"].as_i64().expect("valid_count");
    t.wait_for_count("SELECT count(*) AS n FROM events", valid)
        .await;
}
