//! Statements nested too deeply are refused with a reason instead of overflowing a stack
//! (which aborts the whole process, and this test binary with it); deep but reasonable ones
//! still run.

use clickstream_query::{
    MAX_NESTING_DEPTH, MAX_QUERY_DEPTH, MAX_SQL_BYTES, QueryError, StatementLimit,
};

use crate::fixture::{engine, scalar};

/// `n` copies of `term` joined by `separator`.
pub fn chain(term: &str, separator: &str, n: usize) -> String {
    vec![term; n].join(separator)
}

/// `SELECT x FROM (…) AS t`, `levels` times around `SELECT 1 AS x`.
pub fn nested_derived_tables(levels: usize) -> String {
    (0..levels).fold("SELECT 1 AS x".to_string(), |inner, _| {
        format!("SELECT x FROM ({inner}) AS t")
    })
}

/// `SELECT (SELECT (… SELECT 1))`, `levels` subqueries deep.
pub fn nested_scalar_subqueries(levels: usize) -> String {
    (0..levels).fold("SELECT 1".to_string(), |inner, _| {
        format!("SELECT ({inner})")
    })
}

/// `prefix` and `suffix` repeated around `middle`, as many times as fit in `MAX_SQL_BYTES`.
fn wrapped(head: &str, prefix: &str, middle: &str, suffix: &str) -> String {
    let n = (MAX_SQL_BYTES - head.len() - middle.len()) / (prefix.len() + suffix.len());
    format!("{head}{}{middle}{}", prefix.repeat(n), suffix.repeat(n))
}

/// `term` repeated with `separator` after `head`, as many times as fit in `MAX_SQL_BYTES`.
fn filled(head: &str, term: &str, separator: &str) -> String {
    let n = (MAX_SQL_BYTES - head.len()) / (term.len() + separator.len());
    format!("{head}{}", chain(term, separator, n))
}

/// One statement of at most `MAX_SQL_BYTES` per way of building depth that was found to
/// overflow a stack in the parser, the planner, the optimizer or `Drop`.
fn hostile_statements() -> Vec<String> {
    let mut ctes = vec!["c0 AS (SELECT 1 AS x)".to_string()];
    ctes.extend((1..2_000).map(|i| format!("c{i} AS (SELECT x FROM c{})", i - 1)));
    let joins: String = (1..1_500)
        .map(|i| format!(" JOIN events e{i} ON e{i}.id = e0.id"))
        .collect();
    vec![
        filled("SELECT ", "1", "+"),
        filled("SELECT * FROM events WHERE ", "id = 0", " OR "),
        filled("SELECT * FROM events WHERE ", "id <> 0", " AND "),
        filled("SELECT ", "'a'", " || "),
        filled("SELECT 1", "", "::int"),
        filled("SELECT 1", "", " IS NULL"),
        filled("SELECT 'x'", "", "->'a'"),
        wrapped("SELECT ", "- ", "1", ""),
        wrapped("SELECT ", "+", "1", ""),
        filled("SELECT 1 ORDER BY ", "1", "+"),
        filled("", "SELECT 1", " UNION ALL "),
        wrapped("", "EXPLAIN ", "SELECT 1", ""),
        wrapped("SELECT ", "(", "1", ")"),
        wrapped("SELECT ", "[", "1", "]"),
        wrapped("SELECT ", "abs(", "1", ")"),
        wrapped("SELECT ", "ROW(", "1", ")"),
        wrapped("SELECT ", "CASE WHEN true THEN ", "1", " END"),
        wrapped("SELECT ", "CASE WHEN true THEN ", "1", " ELSE 0 END"),
        wrapped("SELECT 1 FROM ", "(", "events", ")"),
        wrapped("SELECT ", "EXISTS(SELECT ", "1", ")"),
        wrapped("SELECT CAST(NULL AS ", "ARRAY<", "INT", ">"),
        wrapped("SELECT CAST(NULL AS ", "STRUCT<a ", "INT", ">"),
        wrapped("SELECT CAST(NULL AS ", "Nullable(", "INT", ")"),
        format!("SELECT CAST(NULL AS INT{})", "[]".repeat(30_000)),
        format!("SELECT make_array(1){}", "[1]".repeat(20_000)),
        nested_derived_tables(1_000),
        nested_scalar_subqueries(1_000),
        format!("WITH {} SELECT x FROM c1999", ctes.join(", ")),
        format!("SELECT count(*) FROM events e0{joins}"),
    ]
}

#[tokio::test]
async fn refuses_the_reported_statements_naming_the_limit() {
    let (_fixture, engine) = engine().await;
    let cases = [
        (
            format!("SELECT {}", chain("1", "+", 2_000)),
            StatementLimit::Nesting,
        ),
        (
            format!(
                "SELECT * FROM events WHERE {}",
                (0..3_000)
                    .map(|i| format!("id = {i}"))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
            StatementLimit::Nesting,
        ),
        (
            format!("SELECT {}1{}", "(".repeat(3_000), ")".repeat(3_000)),
            StatementLimit::Nesting,
        ),
        (nested_derived_tables(100), StatementLimit::QueryDepth),
        (
            nested_scalar_subqueries(MAX_QUERY_DEPTH + 1),
            StatementLimit::QueryDepth,
        ),
    ];
    for (sql, expected) in cases {
        let error = engine.sql(&sql).await.expect_err("too deep");
        match &error {
            QueryError::TooComplex { limit, max } => {
                assert_eq!((*limit, *max), (expected, expected.max()), "{}", &sql[..60]);
            }
            other => panic!("{}: expected TooComplex, got {other:?}", &sql[..60]),
        }
        assert!(error.is_client_error());
        let message = error.to_string();
        assert!(
            message.starts_with("statement too complex: ")
                && message.ends_with(&format!("exceeds the limit of {}", expected.max())),
            "{message}"
        );
    }
}

#[tokio::test]
async fn refuses_every_way_of_nesting_deeply_as_a_client_error() {
    let (_fixture, engine) = engine().await;
    for sql in hostile_statements() {
        assert!(sql.len() <= MAX_SQL_BYTES, "{}", &sql[..60]);
        match engine.sql(&sql).await {
            Err(error) => assert!(error.is_client_error(), "{}: {error:?}", &sql[..60]),
            Ok(_) => panic!("{}: accepted", &sql[..60]),
        }
    }
    let too_long = format!("SELECT 1{}", " ".repeat(MAX_SQL_BYTES));
    assert!(matches!(
        engine.sql(&too_long).await,
        Err(QueryError::TooComplex {
            limit: StatementLimit::Length,
            ..
        })
    ));
    let rows = engine
        .sql("SELECT count(*) AS n FROM events")
        .await
        .expect("the engine still answers")
        .to_json_rows()
        .expect("json");
    assert_eq!(rows[0]["n"], 32);
}

#[tokio::test]
async fn runs_deep_but_reasonable_statements() {
    let (_fixture, engine) = engine().await;
    let or_chain = (1..=200)
        .map(|i| format!("id = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let ctes: Vec<String> = std::iter::once("c0 AS (SELECT count(*) AS x FROM events)".into())
        .chain((1..100).map(|i| format!("c{i} AS (SELECT x + 1 AS x FROM c{})", i - 1)))
        .collect();
    let cases = [
        (format!("SELECT count(*) FROM events WHERE {or_chain}"), 32),
        (format!("SELECT {}", chain("1", "+", 200)), 200),
        (format!("SELECT {}1{}", "(".repeat(50), ")".repeat(50)), 1),
        (
            format!("SELECT {}-1{}", "abs(".repeat(50), ")".repeat(50)),
            1,
        ),
        (nested_derived_tables(MAX_QUERY_DEPTH), 1),
        (nested_scalar_subqueries(8), 1),
        (format!("WITH {} SELECT x FROM c99", ctes.join(", ")), 131),
        (
            format!(
                "SELECT sum(x) FROM ({}) AS u",
                chain("SELECT 1 AS x", " UNION ALL ", 100)
            ),
            100,
        ),
    ];
    for (sql, expected) in cases {
        assert_eq!(scalar(&engine, &sql).await, expected, "{}", &sql[..60]);
    }
}

/// Statements just within the limits, in the shapes that need the most stack per level
/// (nested types and functions, `CASE`): they must run on the engine's threads. A
/// DataFusion upgrade that makes frames bigger shows here as an abort.
#[tokio::test]
async fn runs_the_deepest_statements_the_limits_allow() {
    let (_fixture, engine) = engine().await;
    let depth = MAX_NESTING_DEPTH - 6;
    let nested_type = format!(
        "CAST(NULL AS {}INT{})",
        "STRUCT<a ".repeat(depth),
        ">".repeat(depth)
    );
    let cases = [
        format!("SELECT {nested_type} IS NULL"),
        format!(
            "SELECT count(*) FROM events WHERE {} OR {nested_type} IS NULL",
            chain("id = 0", " OR ", depth / 2)
        ),
        format!("SELECT {}-1{}", "abs(".repeat(depth), ")".repeat(depth)),
        format!(
            "SELECT {}1{} FROM events",
            "CASE WHEN id > 0 THEN ".repeat(depth),
            " ELSE 0 END".repeat(depth)
        ),
        format!("SELECT CAST(NULL AS INT{}) IS NULL", "[]".repeat(depth)),
        format!("SELECT {}", chain("1", "+", depth)),
    ];
    for sql in cases {
        let result = engine.sql(&sql).await;
        assert!(result.is_ok(), "{}: {:?}", &sql[..60], result.err());
    }
}
