//! The gate in front of the planner: one statement, and that statement only reads.
//!
//! DataFusion's `SQLOptions` (no DDL, no DML, no session statements) checks the logical plan
//! afterwards; this check works on the syntax tree so that refusals name the offending
//! statement and happen before any table is touched.

use std::ops::ControlFlow;

use deltalake::datafusion::sql::parser::Statement as DfStatement;
use deltalake::datafusion::sql::sqlparser::ast::{Select, Statement, Visit, Visitor};

use crate::{QueryError, limits};

const PREFIX: &str = "only read-only queries are allowed";

/// Parses `sql` into exactly one statement within the shape limits (`limits.rs`) and
/// checks that it only reads.
pub(crate) fn parse_read_only(sql: &str) -> Result<DfStatement, QueryError> {
    let mut statements = limits::parse(sql)?;
    let statement = match statements.len() {
        0 => return Err(QueryError::Invalid("empty statement".into())),
        1 => statements.pop_front(),
        n => {
            return Err(QueryError::Rejected(format!(
                "{PREFIX}, one statement at a time: found {n} statements"
            )));
        }
    };
    let statement = statement.ok_or_else(|| QueryError::Invalid("empty statement".into()))?;
    limits::check_tree(&statement)?;
    check(&statement)?;
    Ok(statement)
}

/// Refuses any DataFusion statement that could write, define objects or change the session.
fn check(statement: &DfStatement) -> Result<(), QueryError> {
    let refuse = |why: &str| Err(QueryError::Rejected(format!("{PREFIX}: {why}")));
    match statement {
        DfStatement::Statement(inner) => check_sql(inner),
        DfStatement::Explain(explain) => check(&explain.statement),
        DfStatement::CopyTo(_) => refuse("COPY writes files"),
        DfStatement::CreateExternalTable(_) => refuse("CREATE EXTERNAL TABLE defines a table"),
        DfStatement::Reset(_) => refuse("RESET changes session settings"),
    }
}

/// Walks the whole tree, so that statements nested in `EXPLAIN` or in a data-modifying CTE
/// are seen, and so is `SELECT … INTO`.
fn check_sql(statement: &Statement) -> Result<(), QueryError> {
    match statement.visit(&mut ReadOnlyVisitor) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(why) => Err(QueryError::Rejected(format!("{PREFIX}: {why}"))),
    }
}

struct ReadOnlyVisitor;

impl Visitor for ReadOnlyVisitor {
    type Break = String;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<String> {
        match refusal(statement) {
            Some(why) => ControlFlow::Break(why),
            None => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<String> {
        match select.into {
            Some(_) => ControlFlow::Break("SELECT … INTO creates a table".into()),
            None => ControlFlow::Continue(()),
        }
    }
}

/// `None` for the statements that only read; otherwise what the statement would do.
fn refusal(statement: &Statement) -> Option<String> {
    let why = match statement {
        Statement::Query(_)
        | Statement::Explain { .. }
        | Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowVariable { .. } => return None,
        Statement::Insert(_) => "INSERT writes to a table",
        Statement::Update { .. } => "UPDATE writes to a table",
        Statement::Delete(_) => "DELETE writes to a table",
        Statement::Merge { .. } => "MERGE writes to a table",
        Statement::Truncate { .. } => "TRUNCATE deletes rows",
        Statement::Copy { .. } | Statement::CopyIntoSnowflake { .. } => "COPY writes files",
        Statement::Unload { .. } | Statement::ExportData(_) => "exporting data writes files",
        Statement::CreateTable(_) => "CREATE TABLE defines a table",
        Statement::CreateView { .. } => "CREATE VIEW defines a view",
        Statement::Drop { .. } => "DROP removes objects",
        Statement::Set(_) => "SET changes session settings",
        Statement::Reset(_) => "RESET changes session settings",
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => "transactions are not supported",
        Statement::Prepare { .. } | Statement::Execute { .. } | Statement::Deallocate { .. } => {
            "prepared statements are not supported"
        }
        other => return Some(format!("{} is not a query", leading_keywords(other))),
    };
    Some(why.to_string())
}

/// The first two words of the statement, upper-cased (`CREATE SCHEMA`, `ALTER TABLE`).
fn leading_keywords(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(sql: &str) -> String {
        match parse_read_only(sql) {
            Err(QueryError::Rejected(message)) => message,
            other => panic!("expected {sql:?} to be rejected, got {other:?}"),
        }
    }

    #[test]
    fn accepts_queries() {
        for sql in [
            "SELECT 1",
            "SELECT type, count(*) FROM events GROUP BY type",
            "WITH t AS (SELECT 1 AS x) SELECT x FROM t",
            "VALUES (1, 'a'), (2, 'b')",
            "SELECT 1 UNION ALL SELECT 2",
            "EXPLAIN SELECT * FROM events",
            "EXPLAIN ANALYZE SELECT * FROM events",
            "DESCRIBE events",
            "SHOW TABLES",
            "SHOW COLUMNS FROM events",
            "SELECT 1;",
        ] {
            assert!(parse_read_only(sql).is_ok(), "{sql}");
        }
    }

    #[test]
    fn rejects_writes_with_a_reason() {
        assert!(rejection("INSERT INTO events VALUES (1)").ends_with("INSERT writes to a table"));
        assert!(rejection("UPDATE events SET ip = 'x'").contains("UPDATE"));
        assert!(rejection("DELETE FROM events").contains("DELETE"));
        assert!(rejection("CREATE TABLE t (x INT)").contains("CREATE TABLE"));
        assert!(rejection("CREATE VIEW v AS SELECT 1").contains("CREATE VIEW"));
        assert!(
            rejection("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/tmp/x.csv'")
                .contains("CREATE EXTERNAL TABLE")
        );
        assert!(rejection("DROP TABLE events").contains("DROP"));
        assert_eq!(
            rejection("COPY (SELECT 1) TO '/tmp/out.csv'"),
            "only read-only queries are allowed: COPY writes files"
        );
        assert!(rejection("SET datafusion.execution.batch_size = 1").contains("SET"));
        assert!(rejection("SELECT * INTO t2 FROM events").contains("INTO"));
    }

    #[test]
    fn rejects_writes_hidden_in_explain() {
        assert!(rejection("EXPLAIN COPY (SELECT 1) TO '/tmp/out.csv'").contains("COPY"));
        assert!(rejection("EXPLAIN ANALYZE INSERT INTO events VALUES (1)").contains("INSERT"));
    }

    #[test]
    fn rejects_several_statements() {
        assert!(rejection("SELECT 1; SELECT 2").contains("found 2 statements"));
        assert!(rejection("SELECT 1; DROP TABLE events").contains("one statement at a time"));
    }

    #[test]
    fn syntax_errors_are_invalid_not_rejected() {
        assert!(matches!(
            parse_read_only("SELEC 1"),
            Err(QueryError::Invalid(_))
        ));
        assert!(matches!(
            parse_read_only("  ;"),
            Err(QueryError::Invalid(_))
        ));
    }
}
