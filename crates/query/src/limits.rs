//! Bounds on the shape of a statement, so that parsing, planning and running it fit the
//! stack of the query threads (`runtime.rs`).
//!
//! sqlparser and DataFusion recurse over syntax trees, expressions and plans. Some of that
//! recursion grows the stack on demand (the `recursive` crate), much does not (data types in
//! the parser, `to_field`, `Display`, optimizer rules, `Drop`), so a statement of a few
//! kilobytes such as `SELECT 1+1+…` could overflow any fixed stack and abort the process.
//! Each limit closes one way of building depth, and is checked before anything that
//! recurses without protection runs:
//!
//! | limit | closes | checked on |
//! |---|---|---|
//! | [`MAX_SQL_BYTES`] | the size of any tree the parser can build | the text |
//! | [`MAX_NESTING_DEPTH`] | brackets, `<…>` of types, runs like `x[1][2]`, `EXPLAIN` | the tokens, before parsing |
//! | [`MAX_NESTING_DEPTH`] | everything the parser recurses into | the parser's own counter |
//! | [`MAX_NESTING_DEPTH`] | operator chains (`1+1+…`, `a OR b OR …`), built without recursion | the syntax tree |
//! | [`MAX_QUERY_DEPTH`] | subqueries, derived tables and CTEs (the optimizer's work doubles per level) | the syntax tree |
//! | [`MAX_RELATIONS`] | joins, unions and chains of CTEs, which make deep plans from a flat tree | the syntax tree |
//!
//! The syntax tree is walked with sqlparser's visitor, which grows its stack on demand, so
//! the walk itself is safe at any depth.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use deltalake::datafusion::sql::sqlparser::ast::{
    Expr, Query, Select, TableFactor, Visit, Visitor,
};
use deltalake::datafusion::sql::sqlparser::dialect::GenericDialect;
use deltalake::datafusion::sql::sqlparser::keywords::Keyword;
use deltalake::datafusion::sql::sqlparser::parser::ParserError;
use deltalake::datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::QueryError;

/// Longest statement accepted, in bytes: as much as `POST /api/sql` can carry.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// Deepest nesting accepted: of brackets, of the parser's recursion and of expressions.
/// Leaves room for an `OR` chain of 250 terms; at this depth the shape measured to need the
/// most stack (nested `STRUCT<…>` types, in the parser) takes about 7 MiB in a debug build.
pub const MAX_NESTING_DEPTH: usize = 256;

/// Deepest nesting of queries below the statement's own: subqueries, derived tables, CTEs.
/// DataFusion's optimizer does about twice the work per level of nested scalar or `IN`
/// subqueries (12 levels take about a second in a debug build, 16 levels 13 s).
pub const MAX_QUERY_DEPTH: usize = 12;

/// Most `SELECT`s plus `FROM` items (tables, derived tables, joined tables) in a statement.
pub const MAX_RELATIONS: usize = 256;

/// Which bound a statement exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementLimit {
    /// [`MAX_SQL_BYTES`].
    Length,
    /// [`MAX_NESTING_DEPTH`].
    Nesting,
    /// [`MAX_QUERY_DEPTH`].
    QueryDepth,
    /// [`MAX_RELATIONS`].
    Relations,
}

impl StatementLimit {
    /// The bound itself.
    pub fn max(self) -> usize {
        match self {
            StatementLimit::Length => MAX_SQL_BYTES,
            StatementLimit::Nesting => MAX_NESTING_DEPTH,
            StatementLimit::QueryDepth => MAX_QUERY_DEPTH,
            StatementLimit::Relations => MAX_RELATIONS,
        }
    }
}

impl std::fmt::Display for StatementLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StatementLimit::Length => "length in bytes",
            StatementLimit::Nesting => "nesting depth of expressions and brackets",
            StatementLimit::QueryDepth => "nesting depth of subqueries, derived tables and CTEs",
            StatementLimit::Relations => "number of SELECTs and FROM items",
        })
    }
}

fn exceeded(limit: StatementLimit) -> QueryError {
    QueryError::TooComplex {
        limit,
        max: limit.max(),
    }
}

/// Parses `sql` into statements, refusing text too long or nested too deeply to parse safely.
pub(crate) fn parse(sql: &str) -> Result<VecDeque<DfStatement>, QueryError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(exceeded(StatementLimit::Length));
    }
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| QueryError::from_datafusion(&ParserError::from(e).into()))?;
    check_tokens(&tokens)?;
    DFParserBuilder::new(tokens)
        .with_dialect(&dialect)
        .with_recursion_limit(MAX_NESTING_DEPTH)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| parse_error(&e))
}

fn parse_error(error: &DataFusionError) -> QueryError {
    match error.find_root() {
        DataFusionError::SQL(inner, _)
            if matches!(**inner, ParserError::RecursionLimitExceeded) =>
        {
            exceeded(StatementLimit::Nesting)
        }
        _ => QueryError::from_datafusion(error),
    }
}

/// Bounds what the parser would recurse into without counting: brackets (data types nest
/// with `(` and with `<` after `ARRAY`, `STRUCT`, `MAP`), runs of adjacent brackets
/// (`INT[][]`, `x[1][2]`, deep trees built in a loop) and `EXPLAIN EXPLAIN …`. An upper
/// bound, not a parse: a comparison `array < 1` counts as an opening bracket.
fn check_tokens(tokens: &[TokenWithSpan]) -> Result<(), QueryError> {
    let mut depth = 0usize;
    let mut angles = 0usize;
    let mut run = 0usize;
    let mut explains = 0usize;
    let mut previous = &Token::EOF;
    let significant = tokens
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)));
    for token in significant {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::Lt if opens_type(previous) => {
                depth += 1;
                angles += 1;
            }
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Gt | Token::ShiftRight if angles > 0 => {
                let closed = match token {
                    Token::ShiftRight => angles.min(2),
                    _ => 1,
                };
                depth = depth.saturating_sub(closed);
                angles -= closed;
            }
            Token::Word(word) if word.keyword == Keyword::EXPLAIN => explains += 1,
            _ => {}
        }
        run = match (closes(previous), opens(token)) {
            (true, true) => run + 1,
            (true, false) => 0,
            _ => run,
        };
        if depth + run + explains > MAX_NESTING_DEPTH {
            return Err(exceeded(StatementLimit::Nesting));
        }
        previous = token;
    }
    Ok(())
}

fn opens_type(token: &Token) -> bool {
    matches!(token, Token::Word(word)
        if matches!(word.keyword, Keyword::ARRAY | Keyword::STRUCT | Keyword::MAP))
}

fn opens(token: &Token) -> bool {
    matches!(token, Token::LParen | Token::LBracket | Token::LBrace)
}

fn closes(token: &Token) -> bool {
    matches!(token, Token::RParen | Token::RBracket | Token::RBrace)
}

/// Refuses a parsed statement whose expressions, query nesting or number of relations
/// exceed the limits. `COPY` and `CREATE EXTERNAL TABLE` are refused by the read-only check.
pub(crate) fn check_tree(statement: &DfStatement) -> Result<(), QueryError> {
    let inner = match statement {
        DfStatement::Statement(inner) => inner,
        DfStatement::Explain(explain) => return check_tree(&explain.statement),
        DfStatement::CopyTo(_) | DfStatement::CreateExternalTable(_) | DfStatement::Reset(_) => {
            return Ok(());
        }
    };
    match inner.visit(&mut ShapeVisitor::default()) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(limit) => Err(exceeded(limit)),
    }
}

/// Depth of the expression and query being visited, and relations seen so far.
#[derive(Default)]
struct ShapeVisitor {
    expressions: usize,
    queries: usize,
    relations: usize,
}

impl ShapeVisitor {
    fn count_relation(&mut self) -> ControlFlow<StatementLimit> {
        self.relations += 1;
        within(self.relations, StatementLimit::Relations)
    }
}

fn within(value: usize, limit: StatementLimit) -> ControlFlow<StatementLimit> {
    match value > limit.max() {
        true => ControlFlow::Break(limit),
        false => ControlFlow::Continue(()),
    }
}

impl Visitor for ShapeVisitor {
    type Break = StatementLimit;

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<StatementLimit> {
        self.expressions += expression_weight(expr);
        within(self.expressions, StatementLimit::Nesting)
    }

    fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<StatementLimit> {
        self.expressions -= expression_weight(expr);
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<StatementLimit> {
        self.queries += 1;
        // The statement's own query is not nested.
        within(self.queries.saturating_sub(1), StatementLimit::QueryDepth)
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<StatementLimit> {
        self.queries -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, _select: &Select) -> ControlFlow<StatementLimit> {
        self.count_relation()
    }

    fn pre_visit_table_factor(&mut self, _factor: &TableFactor) -> ControlFlow<StatementLimit> {
        self.count_relation()
    }
}

/// How much nesting an expression node adds: one, plus the accessors DataFusion plans as
/// one nested expression each (`a.b.c`, `x[1][2]`), which the syntax tree keeps flat.
fn expression_weight(expr: &Expr) -> usize {
    match expr {
        Expr::CompoundIdentifier(parts) => parts.len(),
        Expr::CompoundFieldAccess { access_chain, .. } => 1 + access_chain.len(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and checks `sql` on a thread with the query threads' stack, as the engine does.
    fn limit_of(sql: &str) -> Option<StatementLimit> {
        let sql = sql.to_owned();
        let check = move || {
            let statements = parse(&sql)?;
            statements.iter().try_for_each(check_tree)
        };
        let result = std::thread::Builder::new()
            .stack_size(crate::runtime::STACK_BYTES)
            .spawn(check)
            .expect("thread")
            .join()
            .expect("no panic");
        match result {
            Err(QueryError::TooComplex { limit, .. }) => Some(limit),
            _ => None,
        }
    }

    fn chain(term: &str, separator: &str, n: usize) -> String {
        vec![term; n].join(separator)
    }

    #[test]
    fn accepts_nesting_up_to_the_limits() {
        let or_chain = chain("id = 1", " OR ", 250);
        let parens = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        let types = format!(
            "CAST(NULL AS {}INT{})",
            "ARRAY<".repeat(100),
            ">".repeat(100)
        );
        let mut nested = "SELECT 1 AS x".to_string();
        for _ in 0..MAX_QUERY_DEPTH {
            nested = format!("SELECT x FROM ({nested}) AS t");
        }
        for sql in [
            format!("SELECT * FROM events WHERE {or_chain}"),
            format!("SELECT {parens}"),
            format!("SELECT {types}"),
            format!("SELECT make_array(1){}", "[1]".repeat(100)),
            nested,
            chain("SELECT 1", " UNION ALL ", MAX_RELATIONS),
        ] {
            assert_eq!(limit_of(&sql), None, "{}", &sql[..80.min(sql.len())]);
        }
    }

    #[test]
    fn refuses_each_way_of_nesting_deeper() {
        let mut nested = "SELECT 1 AS x".to_string();
        for _ in 0..=MAX_QUERY_DEPTH {
            nested = format!("SELECT x FROM ({nested}) AS t");
        }
        let cases = [
            (
                format!("SELECT {}", chain("1", "+", 2_000)),
                StatementLimit::Nesting,
            ),
            (
                format!("SELECT {}1{}", "(".repeat(300), ")".repeat(300)),
                StatementLimit::Nesting,
            ),
            (
                format!("SELECT {}1", "- ".repeat(300)),
                StatementLimit::Nesting,
            ),
            (
                format!(
                    "SELECT CAST(NULL AS {}INT{})",
                    "ARRAY<".repeat(300),
                    ">".repeat(300)
                ),
                StatementLimit::Nesting,
            ),
            (
                format!("SELECT CAST(NULL AS INT{})", "[]".repeat(300)),
                StatementLimit::Nesting,
            ),
            (
                format!("{}SELECT 1", "EXPLAIN ".repeat(300)),
                StatementLimit::Nesting,
            ),
            (nested, StatementLimit::QueryDepth),
            (
                chain("SELECT 1", " UNION ALL ", MAX_RELATIONS + 1),
                StatementLimit::Relations,
            ),
            (
                format!("SELECT 1 {}", " ".repeat(MAX_SQL_BYTES)),
                StatementLimit::Length,
            ),
        ];
        for (sql, limit) in cases {
            assert_eq!(limit_of(&sql), Some(limit), "{}", &sql[..80]);
        }
    }

    #[test]
    fn counts_type_brackets_closed_by_a_shift_token() {
        let sql = format!(
            "SELECT CAST(NULL AS {}INT{})",
            "ARRAY<".repeat(200),
            ">".repeat(200)
        );
        assert_eq!(limit_of(&sql), None);
        let twice = format!("{sql} UNION ALL {sql}");
        assert_eq!(limit_of(&twice), None, "closing `>>` must close two levels");
    }

    #[test]
    fn names_the_limit_in_the_message() {
        let error = parse(&format!("SELECT {}1{}", "[".repeat(300), "]".repeat(300)))
            .expect_err("refused before parsing");
        assert_eq!(
            error.to_string(),
            "statement too complex: nesting depth of expressions and brackets exceeds the \
             limit of 256"
        );
        assert!(error.is_client_error());
    }
}
