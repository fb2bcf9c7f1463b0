//! The web UI's pages and JSON API over a real socket, against a real pipeline.

use std::collections::HashMap;
use std::time::Duration;

use clickstream_event::{INVALID_TOPIC, RAW_TOPIC};
use serde_json::{Value, json};

use crate::common::{TestPipeline, json_body, seed_events};

async fn get(t: &TestPipeline, path: &str) -> (u16, Value) {
    let response = t.http.get(t.ui_url(path)).send().await.expect("sent");
    let status = response.status().as_u16();
    (status, json_body(response).await)
}

async fn get_ok(t: &TestPipeline, path: &str) -> Value {
    let (status, body) = get(t, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Polls `path` until `done` holds, for up to 30 s.
async fn settled(t: &TestPipeline, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let what = format!("{path} settles");
    let done = &done;
    crate::eventually::eventually(&what, Duration::from_secs(30), || async move {
        let body = get_ok(t, path).await;
        if done(&body) {
            Ok(body)
        } else {
            Err(body.to_string())
        }
    })
    .await
}

fn messages_path(topic: &str, query: &str) -> String {
    format!("/api/ui/topics/{topic}/messages?{query}")
}

#[tokio::test]
async fn pages_and_assets_are_served_from_the_binary() {
    let t = TestPipeline::start().await;
    let page = t.http.get(t.ui_url("/")).send().await.expect("sent");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("text");
    assert!(html.contains("/assets/app.js"), "{html}");
    for (asset, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let response = t
            .http
            .get(t.ui_url(&format!("/assets/{asset}")))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = response.headers()["content-type"].to_str().expect("ascii");
        assert!(content_type.starts_with(kind), "{asset}: {content_type}");
        assert!(!response.text().await.expect("text").is_empty());
    }
    let missing = t
        .http
        .get(t.ui_url("/assets/nope.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 404);
    let (status, body) = get(&t, "/api/ui/nope").await;
    assert_eq!((status, body["status"].as_str()), (404, Some("error")));
    let post = t
        .http
        .post(t.ui_url("/api/ui/topics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(post.status(), 405);
}

#[tokio::test]
async fn the_message_browser_decodes_avro_through_the_registry_and_pages_by_offset() {
    let t = TestPipeline::start().await;
    let events = seed_events();
    let answer = json_body(t.collect(serde_json::to_vec(&events).expect("json")).await).await;
    let correlation_id = answer["correlation_id"].as_str().expect("id").to_string();
    let posted: HashMap<i64, &Value> = events
        .iter()
        .filter_map(|e| e["id"].as_i64().map(|id| (id, e)))
        .collect();

    let topics = get_ok(&t, "/api/ui/topics").await;
    let records = |name: &str| {
        topics
            .as_array()
            .expect("list")
            .iter()
            .find(|topic| topic["name"] == name)
            .map(|topic| topic["records"].clone())
    };
    assert_eq!(records(RAW_TOPIC), Some(json!(12)));
    assert_eq!(records(INVALID_TOPIC), Some(json!(3)));

    let page = get_ok(&t, &messages_path(RAW_TOPIC, "limit=50")).await;
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 12);
    for message in messages {
        let value = &message["value"];
        assert_eq!(value["format"], "avro", "{message}");
        assert!(value["schema_id"].as_u64().is_some());
        let decoded = &value["json"];
        let sent = posted[&decoded["id"].as_i64().expect("id")];
        assert_eq!(decoded["type"], sent["type"]);
        assert_eq!(decoded["event"]["timestamp"], sent["event"]["timestamp"]);
        let header = message["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .find(|h| h["key"] == "X-Correlation-ID")
            .expect("correlation header");
        assert_eq!(header["value"], correlation_id.as_str());
    }

    // Seek: one partition from offset 0, one record at a time, following next_offset.
    let partition = messages[0]["partition"].as_u64().expect("partition");
    let whole = get_ok(
        &t,
        &messages_path(
            RAW_TOPIC,
            &format!("partition={partition}&offset=0&limit=500"),
        ),
    )
    .await;
    let end = whole["end"].as_u64().expect("end");
    assert_eq!(
        whole["messages"].as_array().expect("list").len() as u64,
        end
    );
    let mut offset = 0;
    while offset < end {
        let one = get_ok(
            &t,
            &messages_path(
                RAW_TOPIC,
                &format!("partition={partition}&offset={offset}&limit=1"),
            ),
        )
        .await;
        assert_eq!(one["messages"][0]["offset"], offset);
        assert_eq!(one["next_offset"], offset + 1);
        offset += 1;
    }
    let tail = get_ok(
        &t,
        &messages_path(RAW_TOPIC, &format!("partition={partition}&offset={end}")),
    )
    .await;
    assert_eq!(tail["messages"], json!([]), "nothing past the end yet");
    assert_eq!(tail["next_offset"], end);

    // Rejects are the JSON as sent, with the reason header.
    let invalid = get_ok(&t, &messages_path(INVALID_TOPIC, "limit=10")).await;
    for message in invalid["messages"].as_array().expect("list") {
        assert_eq!(message["value"]["format"], "json");
        assert!(
            message["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .any(|h| h["key"] == "X-Error-Message")
        );
    }

    for (query, status) in [
        ("limit=0", 400),
        ("limit=501", 400),
        ("offset=3", 400),
        ("partition=99", 404),
        ("bogus=1", 400),
    ] {
        let (got, body) = get(&t, &messages_path(RAW_TOPIC, query)).await;
        assert_eq!(got, status, "{query}: {body}");
    }
    let (status, _) = get(&t, &messages_path("no.such.topic", "limit=1")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn schemas_show_versions_compatibility_and_a_diff() {
    let t = TestPipeline::start().await;
    let list = get_ok(&t, "/api/ui/schemas").await;
    assert_eq!(list["global_compatibility"], "BACKWARD");
    let subjects = list["subjects"].as_array().expect("subjects");
    // The raw, latest and Segment streams' subjects.
    assert_eq!(subjects.len(), 3);
    let subject = "acme.clickstream.raw.events-value";
    let raw = subjects
        .iter()
        .find(|s| s["subject"] == subject)
        .expect("raw subject");
    assert_eq!(raw["versions"], json!([1]));
    assert_eq!(raw["compatibility"], "BACKWARD");

    // Evolve the schema through the registry's own API: one optional field more.
    let v1 = get_ok(&t, &format!("/api/ui/schemas/{subject}/versions/1")).await;
    let mut schema: Value =
        serde_json::from_str(clickstream_event::schemas::RAW_EVENT_SCHEMA).expect("schema json");
    schema["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "campaign", "type": ["null", "string"], "default": null}));
    let registered = t
        .http
        .post(format!(
            "{}/subjects/{subject}/versions",
            t.pipeline.registry_url()
        ))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(json!({"schema": schema.to_string()}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(registered.status(), 200);

    let diff = get_ok(&t, &format!("/api/ui/schemas/{subject}/diff?from=1&to=2")).await;
    assert_eq!(diff["from"]["schema"], v1["schema"]);
    let lines = diff["lines"].as_array().expect("lines");
    let added: Vec<&str> = lines
        .iter()
        .filter(|l| l["op"] == "added")
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert!(
        added.iter().any(|l| l.contains("\"campaign\"")),
        "{added:?}"
    );
    assert!(
        lines.iter().all(|l| l["op"] != "removed"
            || l["text"]
                .as_str()
                .is_some_and(|t| t.trim() == "}" || t.trim() == "},")),
        "only closing braces may move when a field is appended: {lines:?}"
    );
    let (status, _) = get(&t, &format!("/api/ui/schemas/{subject}/versions/9")).await;
    assert_eq!(status, 404);
    let (status, _) = get(&t, &format!("/api/ui/schemas/{subject}/versions/zero")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn lake_invalid_events_and_overview_follow_the_pipeline() {
    let t = TestPipeline::start().await;
    // A rate is the difference between two samples: the first one must predate the events.
    settled(&t, "/api/ui/overview", |o| o["latest"].is_object()).await;
    let body = serde_json::to_vec(&seed_events()).expect("json");
    assert_eq!(t.collect(body).await.status(), 200);

    let overview = settled(&t, "/api/ui/overview", |o| {
        let totals = &o["latest"]["totals"];
        totals["events_in_lake"] == 12
            && totals["invalid_in_lake"] == 3
            && o["latest"]["lag"]["records"] == 0
    })
    .await;
    let latest = &overview["latest"];
    assert_eq!(latest["totals"]["valid_acknowledged"], 12);
    assert_eq!(latest["totals"]["invalid_acknowledged"], 3);
    assert_eq!(latest["totals"]["dead_letters"], 0);
    let statuses: HashMap<String, String> = latest["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").into(),
                c["status"].as_str().expect("status").into(),
            )
        })
        .collect();
    for part in ["log", "registry", "lake", "processor", "segment_processor"] {
        assert_eq!(
            statuses.get(part).map(String::as_str),
            Some("ok"),
            "{part}: {latest}"
        );
    }
    let rates = overview["rates"].as_array().expect("rates");
    let valid: f64 = rates
        .iter()
        .map(|r| r["valid"].as_f64().expect("rate") * 1.0)
        .sum();
    assert!(valid > 0.0, "the 12 events show up as a rate: {rates:?}");

    let lake = get_ok(&t, "/api/ui/lake").await;
    let events = lake["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|table| table["name"] == "events")
        .expect("events table")
        .clone();
    assert_eq!(events["rows"], 12);
    let table = get_ok(&t, "/api/ui/lake/events").await;
    assert_eq!(table["rows"], 12);
    assert_eq!(table["partition_columns"], json!(["event_date"]));
    let partition_rows: u64 = table["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["rows"].as_u64().expect("rows"))
        .sum();
    assert_eq!(partition_rows, 12);
    // The newest position recorded per raw partition adds up to every record of the topic.
    let mut next: HashMap<u64, i64> = HashMap::new();
    for commit in table["commits"].as_array().expect("commits") {
        for txn in commit["offsets"].as_array().expect("offsets") {
            assert_eq!(txn["topic"], RAW_TOPIC);
            assert_eq!(txn["group"], "clickstream-processor");
            let entry = next
                .entry(txn["partition"].as_u64().expect("p"))
                .or_default();
            *entry = (*entry).max(txn["next_offset"].as_i64().expect("offset"));
        }
    }
    assert_eq!(next.values().sum::<i64>(), 12);
    let (status, _) = get(&t, "/api/ui/lake/nope").await;
    assert_eq!(status, 404);

    let invalid = get_ok(&t, "/api/ui/invalid").await;
    assert_eq!(invalid["total"], 3);
    let latest = invalid["latest"].as_array().expect("latest");
    assert_eq!(latest.len(), 3);
    let grouped: i64 = invalid["by_reason"]
        .as_array()
        .expect("by reason")
        .iter()
        .map(|r| r["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(grouped, 3);
    for reject in latest {
        let reason = reject["reason"].as_str().expect("reason");
        assert!(reason.starts_with("field '"), "{reason}");
        serde_json::from_str::<Value>(reject["raw_json"].as_str().expect("raw")).expect("json");
    }
    let (status, _) = get(&t, "/api/ui/invalid?limit=0").await;
    assert_eq!(status, 400);
}
