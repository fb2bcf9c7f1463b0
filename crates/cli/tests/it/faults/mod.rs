//! The fault matrix: each scenario written once and run on every backend it applies to
//! (embedded or Kafka log, file or S3 lake), with exact counts at the end: every event a
//! client was told was accepted is in `events` exactly once, every acknowledged invalid
//! one in `invalid_events` exactly once, and the lake holds exactly the raw records of the
//! log. Each test records its row of the matrix (see [`report`]); `scripts/test` prints
//! the table.

pub mod child;
pub mod ledger;
pub mod proxy;
pub mod report;

mod brokers;
mod disk_full;
mod kill;
mod registry;
mod segment_kill;
mod store;
mod zombie;

use std::time::Duration;

use clickstream_event::RAW_TOPIC;
use clickstream_log::EventLog;
use serde_json::Value;

use crate::backends::Backend;
use crate::common::read_topic;
use crate::eventually::eventually;
use ledger::{Ledger, Outcome};

/// Sends the in-process pipeline's logs (the processor's at debug) to the test's output,
/// which the runner shows when a fault test fails. `RUST_LOG` overrides the filter.
pub fn capture_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,clickstream_process=debug,clickstream_lake=debug")
    });
    let spans = match std::env::var_os("CLICKSTREAM_TEST_SPANS") {
        Some(_) => {
            tracing_subscriber::fmt::format::FmtSpan::NEW
                | tracing_subscriber::fmt::format::FmtSpan::CLOSE
        }
        None => tracing_subscriber::fmt::format::FmtSpan::NONE,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// Rows of a query sent to `base`'s `/api/sql`.
pub async fn http_sql(base: &str, sql: &str) -> Vec<Value> {
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/sql"))
        .json(&serde_json::json!({ "sql": sql }))
        .send()
        .await
        .expect("sql request")
        .json()
        .await
        .expect("sql answer");
    answer["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{sql}: no rows in {answer}"))
        .clone()
}

/// GET `url`: its status and JSON body.
pub async fn http_get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

/// Waits until every acknowledged event is in the lake (the processor catches up after
/// the last fault) and the lake holds everything the log does (records written but not
/// acknowledged before a fault land too, and the checks after compare lake and log), then
/// returns the comparison.
pub async fn settle(ledger: &Ledger, base: &str) -> Outcome {
    let outcome = eventually(
        "every acknowledged event lands",
        Duration::from_secs(180),
        || async {
            let outcome = ledger.verify(|sql| http_sql(base, sql)).await;
            if outcome.lost > 0 || outcome.invalid_wrong > 0 {
                return Err(format!("{outcome:?}"));
            }
            Ok(outcome)
        },
    )
    .await;
    caught_up(base).await;
    outcome
}

/// Waits until the pipeline at `base` says (its `/metrics`, from the sampler that compares
/// each partition's end offset with the lake's `txn` version) that nothing acknowledged
/// waits to land. Only meaningful once the senders have stopped.
pub async fn caught_up(base: &str) {
    eventually(
        "the lake catches up with the log",
        Duration::from_secs(180),
        || async {
            let text = reqwest::get(format!("{base}/metrics"))
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            let metrics = crate::prometheus::parse(&text)?;
            let lag = metrics.all("clickstream_pipeline_lag_records");
            crate::eventually::check(lag.len() == 1 && lag[0].value == 0.0, || {
                format!("pipeline lag {lag:?}")
            })
        },
    )
    .await;
}

/// Waits until the pipeline at `base` is ready (every role, the processor started).
pub async fn wait_ready(base: &str) {
    eventually("the pipeline is ready", Duration::from_secs(60), || async {
        let (status, ready) = http_get_json(&format!("{base}/health/ready")).await;
        crate::eventually::check(status == 200 && ready["status"] == "ready", || {
            ready.to_string()
        })
    })
    .await;
}

/// Waits until every one of `ids` is in `events`.
pub async fn wait_landed(base: &str, ids: &[i64]) {
    let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
    eventually("the events land", Duration::from_secs(120), || {
        let wanted = &wanted;
        async move {
            let rows = http_sql(base, "SELECT id FROM events").await;
            let seen: std::collections::HashSet<i64> =
                rows.iter().filter_map(|r| r["id"].as_i64()).collect();
            let missing = wanted.difference(&seen).count();
            crate::eventually::check(missing == 0, || format!("{missing} missing"))
        }
    })
    .await;
}

/// Asserts that the lake holds each raw record of the log exactly once: as an event, a
/// duplicate or a dead letter.
pub async fn lake_matches_log(log: &dyn EventLog, base: &str) {
    let raw = read_topic(log, RAW_TOPIC).await.len() as i64;
    let count = |table: &'static str| async move {
        let rows = http_sql(base, &format!("SELECT count(*) AS n FROM {table}")).await;
        rows[0]["n"].as_i64().expect("count")
    };
    let lake = count("events").await + count("duplicates").await + count("dead_letters").await;
    assert_eq!(raw, lake, "raw records in the log vs rows in the lake");
}

/// [`lake_matches_log`] for a data dir no process holds any more: opens its log and its
/// lake here.
pub async fn lake_matches_log_in(backend: &Backend, dir: &std::path::Path) {
    let log = backend.open_log(dir).await;
    let mut config = crate::common::test_config(dir);
    backend.configure(&mut config);
    let lake = clickstream::lake_cmd::open_lake(&config)
        .await
        .expect("lake");
    let engine = clickstream_query::QueryEngine::new(lake)
        .await
        .expect("engine");
    let mut rows = 0;
    for table in ["events", "duplicates", "dead_letters"] {
        let output = engine
            .sql(&format!("SELECT count(*) AS n FROM {table}"))
            .await
            .expect("count");
        rows += output.to_json_rows().expect("rows")[0]["n"]
            .as_i64()
            .expect("n");
    }
    let raw = read_topic(log.as_ref(), RAW_TOPIC).await.len() as i64;
    assert_eq!(raw, rows, "raw records in the log vs rows in the lake");
}
