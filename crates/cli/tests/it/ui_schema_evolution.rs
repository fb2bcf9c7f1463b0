//! Schemas are data, as the UI shows them: after records of later raw versions land, the
//! schemas API says which `events` columns each version added or grew, the lake API lists
//! the table's columns with their Avro paths and the commits that added or grew them, and
//! `clickstream sql --format csv` prints the new nested columns.

use std::process::Stdio;
use std::time::Duration;

use clickstream_event::{RAW_TOPIC, value_subject};
use serde_json::{Value, json};

use crate::common::{TestPipeline, json_body};
use crate::schema_evolution::{V2_FIELDS, event_with, raw_with, register, v2_values};

/// The columns the tests' v2 adds, with their Avro paths and Delta types, in field order.
const V2_COLUMNS: [(&str, &str); 7] = [
    ("price", "double"),
    ("experiment", "struct<name: string, variant: long>"),
    ("cart", "array<string>"),
    ("labels", "map<string, string>"),
    ("tier", "string"),
    ("amount", "decimal(10,2)"),
    ("placed_at", "timestamp"),
];

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

/// The tests' v2 with a field more inside the `experiment` record.
fn v3_grown() -> String {
    let variant = r#"{"name": "variant", "type": "int"}"#;
    let fields = V2_FIELDS.replace(
        variant,
        &format!(r#"{variant}, {{"name": "bucket", "type": ["null", "long"], "default": null}}"#),
    );
    assert_ne!(fields, V2_FIELDS);
    raw_with(&fields)
}

const EXPERIMENT_V2: &str = "struct<name: string, variant: long>";
const EXPERIMENT_V3: &str = "struct<name: string, variant: long, bucket: long>";

async fn post_events(t: &TestPipeline, events: &[Value]) {
    let answer = json_body(t.collect(serde_json::to_vec(events).expect("json")).await).await;
    assert_eq!(answer["valid_count"], json!(events.len()), "{answer}");
}

/// A pipeline whose `events` table holds v1 rows (ids 1-3) and v2 rows (ids 10-12), posted
/// through `/collect`; returns it with v2's schema id.
async fn evolved_pipeline() -> (TestPipeline, u32) {
    let t = TestPipeline::start().await;
    let v1: Vec<Value> = (1..=3).map(|id| event_with(id, json!({}))).collect();
    post_events(&t, &v1).await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 3)
        .await;
    let v2_id = register(&t, &raw_with(V2_FIELDS))
        .await
        .expect("v2 is backward compatible");
    // Ingest follows the registry: the next request validates and frames with v2.
    let v2: Vec<Value> = (10..=12).map(|id| event_with(id, v2_values(id))).collect();
    post_events(&t, &v2).await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 6)
        .await;
    (t, v2_id)
}

#[tokio::test]
async fn the_schemas_api_says_which_events_columns_each_version_added() {
    let (t, v2_id) = evolved_pipeline().await;
    let subject = value_subject(RAW_TOPIC);
    let list = get_ok(&t, "/api/ui/schemas").await;
    let feeds: Vec<(&str, &Value)> = list["subjects"]
        .as_array()
        .expect("subjects")
        .iter()
        .map(|s| (s["subject"].as_str().expect("name"), &s["feeds_table"]))
        .collect();
    assert!(
        feeds
            .iter()
            .all(|(name, table)| (*name == subject) == (**table == json!("events"))),
        "only the raw subject feeds events: {feeds:?}"
    );

    let columns = get_ok(&t, &format!("/api/ui/schemas/{subject}/columns")).await;
    assert_eq!(columns["table"], "events");
    let versions = columns["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{columns}");
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(
        versions[0]["columns_added"],
        json!([]),
        "the seed's fields have columns of their own"
    );
    assert_eq!(versions[1]["id"], v2_id);
    assert_eq!(versions[1]["error"], Value::Null);
    let expected: Vec<Value> = V2_COLUMNS
        .iter()
        .map(|(column, kind)| json!({"column": column, "path": format!("event.{column}"), "type": kind}))
        .collect();
    assert_eq!(versions[1]["columns_added"], json!(expected));
    assert_eq!(versions[1]["columns_widened"], json!([]));

    // A field inside the record grows its column.
    let v3_id = register(&t, &v3_grown())
        .await
        .expect("v3 is backward compatible");
    let columns = get_ok(&t, &format!("/api/ui/schemas/{subject}/columns")).await;
    let v3 = &columns["versions"][2];
    assert_eq!(v3["id"], v3_id);
    assert_eq!(v3["columns_added"], json!([]));
    assert_eq!(
        v3["columns_widened"],
        json!([{"column": "experiment", "path": "event.experiment", "type": EXPERIMENT_V3, "was": EXPERIMENT_V2}])
    );

    // A version whose `price` is a string cannot share the double column: the page says
    // why its records cannot land, and that it adds nothing.
    let set = t
        .http
        .put(format!("{}/config/{subject}", t.pipeline.registry_url()))
        .json(&json!({"compatibility": "NONE"}))
        .send()
        .await
        .expect("config");
    assert!(set.status().is_success());
    let v4 = raw_with(r#"{"name": "price", "type": ["null", "string"], "default": null}"#);
    register(&t, &v4).await.expect("NONE accepts anything");
    let columns = get_ok(&t, &format!("/api/ui/schemas/{subject}/columns")).await;
    let v4 = &columns["versions"][3];
    assert_eq!(v4["columns_added"], json!([]));
    let reason = v4["error"].as_str().expect("a reason");
    assert!(reason.contains("field 'event.price'"), "{reason}");

    let (status, body) = get(
        &t,
        "/api/ui/schemas/acme.clickstream.latest.events-value/columns",
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = get(&t, "/api/ui/schemas/no.such.subject/columns").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_lake_api_shows_the_schema_and_the_commits_that_added_and_grew_columns() {
    let (t, v2_id) = evolved_pipeline().await;
    // Look once before v3: a later look reads on from there.
    let before = get_ok(&t, "/api/ui/lake/events").await;
    assert_eq!(
        before["schema_history"]["changes"].as_array().map(Vec::len),
        Some(2),
        "{before}"
    );
    register(&t, &v3_grown())
        .await
        .expect("v3 is backward compatible");
    let mut grown = event_with(20, v2_values(20));
    grown["event"]["experiment"]["bucket"] = json!(7);
    post_events(&t, &[grown]).await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 7)
        .await;
    let table = get_ok(&t, "/api/ui/lake/events").await;
    let columns = table["columns"].as_array().expect("columns");
    let column = |name: &str| -> &Value {
        columns
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("column {name} in {columns:?}"))
    };
    assert_eq!(
        column("id"),
        &json!({"name": "id", "type": "long", "nullable": false, "avro_path": null, "schema_id": null})
    );
    for (name, kind) in V2_COLUMNS {
        let kind = if name == "experiment" {
            EXPERIMENT_V3
        } else {
            kind
        };
        assert_eq!(
            column(name),
            &json!({"name": name, "type": kind, "nullable": true,
                    "avro_path": format!("event.{name}"), "schema_id": v2_id}),
        );
    }

    let history = &table["schema_history"];
    assert_eq!(history["read_from"], 0, "{history}");
    assert_eq!(history["read_to"], table["version"]);
    assert_eq!(
        history["columns_before"],
        json!([]),
        "every column has its commit"
    );
    let changes = history["changes"].as_array().expect("changes");
    assert_eq!(
        changes.len(),
        3,
        "the creation and the appends that evolved it: {changes:?}"
    );
    assert_eq!(
        (&changes[0]["version"], &changes[0]["operation"]),
        (&json!(0), &json!("CREATE TABLE"))
    );
    let created: Vec<&str> = changes[0]["columns_added"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(created.starts_with(&["id", "type"]), "{created:?}");
    assert_eq!(
        changes[0]["columns_added"][0],
        json!({"name": "id", "type": "long"})
    );
    assert!(!created.contains(&"price"));
    let evolved = &changes[1];
    assert_eq!(evolved["operation"], "WRITE");
    // Each with its type then: experiment before v3 grew it.
    let expected: Vec<Value> = V2_COLUMNS
        .iter()
        .map(|(name, kind)| json!({"name": name, "type": kind}))
        .collect();
    assert_eq!(evolved["columns_added"], json!(expected));
    assert_eq!(evolved["columns_widened"], json!([]));
    assert!(evolved["timestamp_ms"].as_i64().is_some());
    let widened = &changes[2];
    assert_eq!(
        (
            &widened["operation"],
            &widened["columns_added"],
            &widened["columns_widened"]
        ),
        (
            &json!("WRITE"),
            &json!([]),
            &json!([{"name": "experiment", "type": EXPERIMENT_V3}])
        )
    );
    assert!(widened["version"].as_i64() > evolved["version"].as_i64());
    // It is one of the table's commits, the one that carried the first v2 rows.
    let commit = table["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .find(|c| c["version"] == evolved["version"])
        .expect("the evolving commit is among the recent ones");
    assert!(commit["files_added"].as_u64() > Some(0), "{commit}");

    // A later look reads only the commits since and finds the same history.
    let again = get_ok(&t, "/api/ui/lake/events").await;
    assert_eq!(again["schema_history"]["changes"], history["changes"]);
    let other = get_ok(&t, "/api/ui/lake/dead_letters").await;
    assert_eq!(
        other["schema_history"]["changes"][0]["operation"],
        "CREATE TABLE"
    );
}

#[tokio::test]
async fn sql_prints_nested_columns_of_an_evolved_table_as_csv() {
    let (t, _) = evolved_pipeline().await;
    let dir = t.config.data_dir.clone();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["sql", "--format", "csv", "SELECT * FROM events ORDER BY id"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn clickstream sql");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("sql finishes within a minute")
        .expect("sql ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    for (name, _) in V2_COLUMNS {
        assert!(header.contains(&name), "{header:?}");
    }
    assert_eq!(lines.clone().count(), 6, "{stdout}");
    let v2_row = lines
        .find(|line| line.starts_with("10,"))
        .expect("the row of event 10");
    for cell in [
        r#""{""name"":""checkout-button"",""variant"":0}""#,
        r#""[""sku-1"",""sku-10""]""#,
        r#""{""channel"":""web""}""#,
    ] {
        assert!(v2_row.contains(cell), "{cell} in {v2_row}");
    }
}
