//! The engine's guarantees: read-only, fresh, classified errors.

use std::time::{Duration, Instant};

use clickstream_lake::{TableKind, UniqueUsersBuilder, UniqueUsersRow};
use clickstream_query::QueryError;

use crate::fixture::{self, engine, scalar};

#[tokio::test]
async fn rejects_every_statement_that_is_not_a_single_query() {
    let (_fixture, engine) = engine().await;
    for sql in [
        "INSERT INTO events (id) VALUES (1)",
        "INSERT INTO unique_users_daily SELECT * FROM unique_users_daily",
        "UPDATE events SET ip = '0.0.0.0'",
        "DELETE FROM events",
        "CREATE TABLE t AS SELECT * FROM events",
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/tmp/x'",
        "CREATE VIEW v AS SELECT * FROM events",
        "COPY events TO '/tmp/events.csv'",
        "COPY (SELECT * FROM events) TO '/tmp/events.parquet'",
        "SET datafusion.execution.batch_size = 1",
        "DROP TABLE events",
        "DROP VIEW v",
        "SELECT * INTO copy_of_events FROM events",
        "SELECT 1; SELECT 2",
        "SELECT count(*) FROM events; DROP TABLE events",
        "EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'",
    ] {
        match engine.sql(sql).await {
            Err(QueryError::Rejected(message)) => assert!(
                message.starts_with("only"),
                "{sql}: unexpected message {message}"
            ),
            other => panic!("{sql}: expected a rejection, got {other:?}"),
        }
    }
    // Nothing was written: the tables are as the fixture left them.
    assert_eq!(
        scalar(&engine, "SELECT count(*) FROM events").await,
        serde_json::json!(32)
    );
    assert_eq!(
        scalar(&engine, "SELECT count(*) FROM unique_users_daily").await,
        serde_json::json!(3)
    );
}

#[tokio::test]
async fn names_the_reason_for_a_rejected_copy() {
    let (_fixture, engine) = engine().await;
    let error = engine
        .sql("COPY (SELECT * FROM events) TO '/tmp/out.csv'")
        .await
        .expect_err("COPY must be refused");
    assert_eq!(
        error.to_string(),
        "only read-only queries are allowed: COPY writes files"
    );
    assert!(error.is_client_error());
}

#[tokio::test]
async fn classifies_bad_sql_as_invalid() {
    let (_fixture, engine) = engine().await;
    for sql in [
        "SELEC 1",
        "SELECT nope FROM events",
        "SELECT * FROM no_such_table",
        "SELECT count(*) FROM events GROUP BY",
        "",
        "SELECT CAST('abc' AS BIGINT)",
    ] {
        match engine.sql(sql).await {
            Err(QueryError::Invalid(_)) => {}
            other => panic!("{sql:?}: expected Invalid, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn type_is_usable_as_a_column_name() {
    let (_fixture, engine) = engine().await;
    let output = engine
        .sql("SELECT type, count(*) FROM events GROUP BY type")
        .await
        .expect("query");
    assert_eq!(output.row_count(), 8);
}

#[tokio::test]
async fn sees_an_append_made_after_the_engine_was_created() {
    let (fixture, engine) = engine().await;
    assert_eq!(
        scalar(&engine, "SELECT count(*) FROM events").await,
        serde_json::json!(32)
    );

    let mut events = fixture.lake.table(TableKind::Events).await.expect("table");
    let extra = [fixture::ev(
        33,
        "page_view",
        Some(1006),
        "2024-03-04T08:00:00Z",
        "/",
    )];
    events
        .append(vec![fixture::events_batch(&extra)], &[])
        .await
        .expect("append");
    let committed = Instant::now();

    // The engine refreshes before planning, so the very next query sees the commit; the
    // deadline is the requirement (1 s), not an expected delay.
    let deadline = committed + Duration::from_secs(1);
    loop {
        let count = scalar(&engine, "SELECT count(*) FROM events").await;
        if count == serde_json::json!(33) {
            break;
        }
        assert!(Instant::now() < deadline, "append not visible after 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        scalar(
            &engine,
            "SELECT count(*) FROM events WHERE event_date = DATE '2024-03-04'"
        )
        .await,
        serde_json::json!(1)
    );
}

#[tokio::test]
async fn sees_an_overwrite_made_after_the_engine_was_created() {
    let (fixture, engine) = engine().await;
    let before = engine.table_versions()["unique_users_daily"];
    let mut table = fixture
        .lake
        .table(TableKind::UniqueUsersDaily)
        .await
        .expect("table");
    let mut builder = UniqueUsersBuilder::new();
    builder.push(&UniqueUsersRow {
        day: "2024-03-01",
        unique_users: 7,
        updated_at_ms: 1_709_600_000_000,
    });
    table
        .overwrite(builder.finish(), &[])
        .await
        .expect("overwrite");

    assert_eq!(
        scalar(&engine, "SELECT sum(unique_users) FROM unique_users_daily").await,
        serde_json::json!(7)
    );
    assert!(engine.table_versions()["unique_users_daily"] > before);
}

#[tokio::test]
async fn runs_concurrent_queries_on_clones() {
    let (_fixture, engine) = engine().await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let sql = format!("SELECT count(*) AS n FROM events WHERE id > {i}");
                engine.sql(&sql).await.map(|output| output.row_count())
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task").expect("query"), 1);
    }
}

#[tokio::test]
async fn lists_the_lake_tables() {
    let (_fixture, engine) = engine().await;
    let output = engine
        .sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name")
        .await
        .expect("query");
    let names: Vec<String> = output
        .to_json_rows()
        .expect("json")
        .into_iter()
        .map(|row| row["table_name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "dead_letters",
            "duplicates",
            "events",
            "identities",
            "invalid_events",
            "segment_dead_letters",
            "segment_duplicates",
            "segment_events",
            "segment_invalid_events",
            "unique_users_daily"
        ]
    );
}

#[tokio::test]
async fn allows_read_only_introspection() {
    let (_fixture, engine) = engine().await;
    for (sql, min_rows) in [
        ("SHOW TABLES", 4),
        ("SHOW COLUMNS FROM events", 21),
        ("DESCRIBE invalid_events", 9),
        (
            "EXPLAIN SELECT count(*) FROM events WHERE event_date = DATE '2024-03-02'",
            1,
        ),
        ("EXPLAIN ANALYZE SELECT count(*) FROM dead_letters", 1),
        ("VALUES (1, 'a'), (2, 'b')", 2),
    ] {
        let output = engine
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(
            output.row_count() >= min_rows,
            "{sql}: {}",
            output.row_count()
        );
    }
}
