//! Exactly-once across a schema change: `clickstream up` aborts (as `kill -9` would)
//! right before, or right after, the `events` commit that adds a version's columns. After
//! a restart no row is lost or doubled and the new columns hold what was sent.

use std::time::Duration;

use serde_json::{Value, json};

use crate::eventually::{check, eventually};
use crate::faults::child::{Child, UP_ON_FREE_PORTS, field};
use crate::schema_evolution::{V2_FIELDS, event_with, raw_with, v2_values};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_just_before_the_evolving_commit_loses_and_doubles_nothing() {
    crash_across_a_schema_change("before-evolving-events").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_just_after_the_evolving_commit_loses_and_doubles_nothing() {
    crash_across_a_schema_change("after-evolving-events").await;
}

struct Up {
    child: Child,
    ingest: String,
    registry: String,
    http: reqwest::Client,
}

impl Up {
    async fn start(dir: &std::path::Path, abort_at: Option<&str>) -> Up {
        let mut env = vec![(
            "CLICKSTREAM_LAKE__FLUSH_INTERVAL_MS".to_string(),
            "100".to_string(),
        )];
        if let Some(point) = abort_at {
            env.push(("CLICKSTREAM_FAULT_ABORT_AT".into(), point.into()));
        }
        let mut child = Child::spawn("up", dir, &UP_ON_FREE_PORTS, env);
        let line = child.wait_for_line("clickstream is up").await;
        Up {
            ingest: field(&line, "ingest").to_string(),
            registry: field(&line, "registry").to_string(),
            child,
            http: reqwest::Client::new(),
        }
    }

    /// Posts `events`; all must be accepted.
    async fn post(&self, events: &[Value]) {
        let answer: Value = self
            .http
            .post(format!("{}/collect", self.ingest))
            .json(&events)
            .send()
            .await
            .expect("ingest answers")
            .json()
            .await
            .expect("json");
        assert_eq!(answer["valid_count"], json!(events.len()), "{answer}");
    }

    async fn register(&self, schema: &str) {
        let answer = self
            .http
            .post(format!(
                "{}/subjects/acme.clickstream.raw.events-value/versions",
                self.registry
            ))
            .json(&json!({ "schema": schema }))
            .send()
            .await
            .expect("registry answers");
        assert!(answer.status().is_success(), "{:?}", answer.text().await);
    }

    async fn sql(&self, sql: &str) -> Vec<Value> {
        let answer: Value = self
            .http
            .post(format!("{}/api/sql", self.ingest))
            .json(&json!({ "sql": sql }))
            .send()
            .await
            .expect("sql answers")
            .json()
            .await
            .expect("json");
        answer["rows"].as_array().cloned().unwrap_or_default()
    }
}

async fn crash_across_a_schema_change(abort_at: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut up = Up::start(dir.path(), Some(abort_at)).await;
    let v1: Vec<Value> = (1..=20).map(|id| event_with(id, json!({}))).collect();
    up.post(&v1).await;
    up.register(&raw_with(V2_FIELDS)).await;
    // The first v2 request also resends five v1 ids: the batch that evolves `events`
    // commits `duplicates` first, so the crash falls between two of its commits too.
    let mut v2: Vec<Value> = (100..120).map(|id| event_with(id, v2_values(id))).collect();
    v2.extend(v1[..5].iter().cloned());
    up.post(&v2).await;
    eventually(
        "the processor aborts at the evolving commit",
        Duration::from_secs(60),
        || {
            let exited = up.child.has_exited();
            async move { check(exited.is_some(), || "still running".into()) }
        },
    )
    .await;
    assert!(
        up.child.log_text().contains("aborting at"),
        "{}",
        up.child.log_text()
    );

    let up = Up::start(dir.path(), None).await;
    let more_v1: Vec<Value> = (200..210).map(|id| event_with(id, json!({}))).collect();
    let more_v2: Vec<Value> = (300..310).map(|id| event_with(id, v2_values(id))).collect();
    up.post(&more_v1).await;
    up.post(&more_v2).await;
    let expected: Vec<i64> = (1..=20)
        .chain(100..120)
        .chain(200..210)
        .chain(300..310)
        .collect();
    let rows = eventually(
        "every acknowledged event lands",
        Duration::from_secs(60),
        || {
            let up = &up;
            let expected = expected.len();
            async move {
                let rows = up
                    .sql("SELECT id, price, cart, tier FROM events ORDER BY id")
                    .await;
                check(rows.len() >= expected, || {
                    format!("{} of {expected}", rows.len())
                })?;
                Ok(rows)
            }
        },
    )
    .await;
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, expected, "every event exactly once");
    for row in &rows {
        let id = row["id"].as_i64().expect("id");
        let v2 = (100..120).contains(&id) || (300..310).contains(&id);
        if v2 {
            let sent = v2_values(id);
            assert_eq!(row["price"], sent["price"], "{row}");
            assert_eq!(row["cart"], sent["cart"], "{row}");
            assert_eq!(row["tier"], sent["tier"], "{row}");
        } else {
            assert_eq!(row["price"], Value::Null, "{row}");
        }
    }
    let duplicates = up.sql("SELECT id FROM duplicates ORDER BY id").await;
    let duplicate_ids: Vec<i64> = duplicates
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(duplicate_ids, vec![1, 2, 3, 4, 5]);
}
