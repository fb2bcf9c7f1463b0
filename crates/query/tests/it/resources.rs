//! What a statement may cost: it is cancelled past the timeout, fails alone past the memory
//! limit, and is refused past the result limits; each with a reason naming the setting, and
//! the engine answers the next statement as usual.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clickstream_query::{QueryConfig, QueryEngine, QueryError, ResultLimit, router};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::fixture;

/// One query thread, as on a two-core machine, and the limits of `adjust`.
async fn engine(adjust: impl FnOnce(&mut QueryConfig)) -> (fixture::FixtureLake, QueryEngine) {
    let fixture = fixture::build().await;
    let mut config = QueryConfig {
        threads: 1,
        ..QueryConfig::default()
    };
    adjust(&mut config);
    let engine = QueryEngine::with_config(fixture.lake.clone(), &config)
        .await
        .expect("engine");
    (fixture, engine)
}

/// A nested loop join that would run for hours; each batch of `b` is probed against the
/// 500 rows of `a` in one poll, and nothing matches, so it never returns a batch by itself.
const ENDLESS_JOIN: &str =
    "SELECT count(*) AS n FROM range(500) a, range(100000000) b WHERE a.value + b.value = 7";

/// Collects 80 million values into one array: gigabytes without a limit.
const HUNGRY_AGGREGATE: &str = "SELECT cardinality(array_agg(value)) AS n FROM range(80000000)";

const COUNT_EVENTS: &str = "SELECT count(*) AS n FROM events";

async fn count_events(engine: &QueryEngine) -> i64 {
    let rows = engine
        .sql(COUNT_EVENTS)
        .await
        .expect("a normal statement runs")
        .to_json_rows()
        .expect("rows");
    rows[0]["n"].as_i64().expect("a count")
}

#[tokio::test]
async fn a_statement_past_the_timeout_is_cancelled_and_the_next_one_runs() {
    let (_fixture, engine) = engine(|c| c.statement_timeout_ms = 3000).await;
    let expected = count_events(&engine).await;
    let started = Instant::now();
    let error = engine.sql(ENDLESS_JOIN).await.expect_err("times out");
    let waited = started.elapsed();
    assert!(
        matches!(error, QueryError::Timeout { limit } if limit == Duration::from_secs(3)),
        "{error:?}"
    );
    assert!(waited < Duration::from_secs(6), "answered after {waited:?}");
    assert!(error.is_client_error() && error.is_limit());
    assert!(
        error
            .to_string()
            .starts_with("statement timeout: cancelled after 3 s (query.statement_timeout_ms)"),
        "{error}"
    );
    // The only query thread is free again: the join stopped at its next batch, well within
    // this statement's own 3 s.
    assert_eq!(count_events(&engine).await, expected);
}

#[tokio::test]
async fn a_statement_over_the_memory_limit_fails_alone() {
    let (_fixture, engine) = engine(|c| c.memory_limit_bytes = 32 * 1024 * 1024).await;
    let expected = count_events(&engine).await;
    let hungry = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.sql(HUNGRY_AGGREGATE).await })
    };
    // Meanwhile the other slot answers as usual.
    assert_eq!(count_events(&engine).await, expected);
    let error = hungry
        .await
        .expect("joined")
        .expect_err("over the memory limit");
    let QueryError::MemoryLimit { limit_bytes, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*limit_bytes, 32 * 1024 * 1024);
    let message = error.to_string();
    assert!(
        message.starts_with(
            "memory limit exceeded: the statement needed more than 32 MiB \
             (query.memory_limit_bytes) and was stopped"
        ) && message.contains("Failed to allocate"),
        "{message}"
    );
    assert_eq!(count_events(&engine).await, expected);
}

#[tokio::test]
async fn results_over_the_row_or_byte_limit_are_refused() {
    let (_fixture, engine) = engine(|c| {
        c.max_result_rows = 5;
        c.max_result_bytes = 1024;
    })
    .await;
    let rows = engine
        .sql("SELECT value FROM range(5)")
        .await
        .expect("5 rows");
    assert_eq!(rows.row_count(), 5);
    let error = engine
        .sql("SELECT value FROM range(6)")
        .await
        .expect_err("6 rows");
    assert!(
        matches!(
            error,
            QueryError::ResultTooLarge {
                limit: ResultLimit::Rows(5)
            }
        ),
        "{error:?}"
    );
    // 200 bytes of text in one row, five times over the byte limit.
    let error = engine
        .sql(
            "SELECT repeat('x', 200) AS a, repeat('y', 200) AS b, repeat('z', 200) AS c, \
              repeat('w', 200) AS d, repeat('v', 200) AS e, repeat('u', 200) AS f",
        )
        .await
        .expect_err("too many bytes");
    assert!(
        matches!(
            error,
            QueryError::ResultTooLarge {
                limit: ResultLimit::Bytes(1024)
            }
        ),
        "{error:?}"
    );
    // A LIMIT slices a batch of thousands: only the rows kept count.
    let sliced = engine
        .sql("SELECT value FROM range(100000) LIMIT 5")
        .await
        .expect("5 rows of a large batch");
    assert_eq!(sliced.row_count(), 5);
}

#[tokio::test]
async fn the_api_answers_400_at_the_time_and_memory_limits_and_413_past_the_result_limit() {
    // Two engines: on a busy machine the hungry aggregate can take longer than a short
    // timeout before it holds 16 MiB, so only the endless join meets the 1 s timeout.
    let (_fixture, timed) = engine(|c| c.statement_timeout_ms = 1000).await;
    let (_other, bounded) = engine(|c| {
        c.statement_timeout_ms = 300_000;
        c.memory_limit_bytes = 16 * 1024 * 1024;
        c.max_result_rows = 10;
    })
    .await;
    let (timed, bounded) = (router(timed), router(bounded));
    for (app, statement, status, start) in [
        (
            &timed,
            ENDLESS_JOIN,
            StatusCode::BAD_REQUEST,
            "statement timeout: ",
        ),
        (
            &bounded,
            HUNGRY_AGGREGATE,
            StatusCode::BAD_REQUEST,
            "memory limit exceeded: ",
        ),
        (
            &bounded,
            "SELECT value FROM range(11)",
            StatusCode::PAYLOAD_TOO_LARGE,
            "result too large: more than 10 rows (query.max_result_rows)",
        ),
    ] {
        let request = Request::builder()
            .method("POST")
            .uri("/api/sql")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({ "sql": statement }).to_string()))
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("response");
        assert_eq!(response.status(), status, "{statement}");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(body["status"], "error");
        let message = body["message"].as_str().expect("a reason");
        assert!(message.starts_with(start), "{statement}: {message}");
    }
}
