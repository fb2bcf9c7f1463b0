//! Statements nested too deeply for the planner are refused with 400 on both ports that
//! serve `/api/sql`, and the pipeline keeps running; `clickstream sql` fails the same way.
//! Before the limits, each of these statements overflowed a stack and aborted the process.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestPipeline, json_body, seed_events};

/// The statements that took `clickstream up` down, plus nested parentheses and subqueries.
fn hostile_statements() -> Vec<String> {
    let or_chain = (0..3_000)
        .map(|i| format!("id = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let subqueries = (0..200).fold("SELECT 1".to_string(), |inner, _| {
        format!("SELECT ({inner})")
    });
    vec![
        format!("SELECT {}", vec!["1"; 2_000].join("+")),
        format!("SELECT * FROM events WHERE {or_chain}"),
        format!("SELECT {}1{}", "(".repeat(3_000), ")".repeat(3_000)),
        subqueries,
    ]
}

async fn post_sql(t: &TestPipeline, url: &str, sql: &str) -> (u16, Value) {
    let response = t
        .http
        .post(url)
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .expect("the server answers");
    (response.status().as_u16(), json_body(response).await)
}

#[tokio::test]
async fn statements_nested_too_deeply_get_400_and_the_pipeline_keeps_running() {
    let t = TestPipeline::start().await;
    for url in [t.url("/api/sql"), t.ui_url("/api/sql")] {
        for sql in hostile_statements() {
            let (status, body) = post_sql(&t, &url, &sql).await;
            assert_eq!(status, 400, "{url} {}: {body}", &sql[..40]);
            assert_eq!(body["status"], "error");
            let message = body["message"].as_str().expect("a reason");
            assert!(
                message.starts_with("statement too complex: ")
                    && message.contains("exceeds the limit of"),
                "{message}"
            );
        }
    }

    let (status, body) = post_sql(&t, &t.url("/api/sql"), "SELECT count(*) AS n FROM events").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([{"n": 0}]));

    let events = seed_events();
    let response = t.collect(serde_json::to_vec(&events).expect("json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_body(response).await["valid_count"], 12);
    t.wait_for_count("SELECT count(*) AS n FROM events", 12)
        .await;
}

#[tokio::test]
async fn sql_command_fails_with_the_reason_for_a_statement_nested_too_deeply() {
    let dir = tempfile::tempdir().expect("tempdir");
    for sql in hostile_statements() {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_clickstream"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["sql", &sql])
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
        let stderr = String::from_utf8_lossy(&output.stderr);
        // An abort is a signal, not an exit code.
        assert_eq!(output.status.code(), Some(1), "{}: {stderr}", &sql[..40]);
        assert!(stderr.contains("statement too complex: "), "{stderr}");
    }
}
