//! Golden SQL tests: every `tests/sql/<name>.sql` runs against the fixture lake and its
//! rendering must equal `tests/sql/<name>.expected` byte for byte.
//!
//! A result renders as the text table of `QueryOutput::to_table_string`; a refused statement
//! as `rejected: <message>`, an invalid one as `invalid: <message>`. Run with
//! `UPDATE_EXPECT=1` to rewrite the expected files, then review the diff by hand.

use std::path::{Path, PathBuf};

use clickstream_query::{QueryEngine, QueryError};

use crate::fixture;

fn sql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("sql")
}

fn render(result: Result<clickstream_query::QueryOutput, QueryError>) -> String {
    match result {
        Ok(output) => output.to_table_string() + "\n",
        Err(QueryError::Rejected(message)) => format!("rejected: {message}\n"),
        Err(QueryError::Invalid(message)) => format!("invalid: {message}\n"),
        Err(other) => panic!("unexpected failure: {other}"),
    }
}

#[tokio::test]
async fn sql_files_match_their_expected_output() {
    let fixture = fixture::build().await;
    let engine = QueryEngine::new(fixture.lake.clone())
        .await
        .expect("engine");
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v != "0");

    let mut files: Vec<PathBuf> = std::fs::read_dir(sql_dir())
        .expect("tests/sql")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "golden files missing: {files:?}");

    let mut failures = Vec::new();
    for sql_path in &files {
        let sql = std::fs::read_to_string(sql_path).expect("read .sql");
        let actual = render(engine.sql(&sql).await);
        let expected_path = sql_path.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &actual).expect("write .expected");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "--- {}\n{sql}\n--- expected\n{expected}--- actual\n{actual}",
                sql_path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden file(s) differ (UPDATE_EXPECT=1 rewrites them):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
