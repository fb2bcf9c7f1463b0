//! Read-only SQL over the lake's Delta tables, with DataFusion.
//!
//! [`QueryEngine`] registers the lake tables (every `TableKind`: the clickstream stream's,
//! the Segment stream's and `identities`) in one DataFusion session and runs one statement at a time,
//! refreshing the tables it reads to their newest Delta version first. Only queries are
//! accepted: the syntax tree is checked before planning (see `readonly.rs`) and the logical
//! plan again by DataFusion's `SQLOptions`. A statement too long or nested too deeply to plan
//! within the stack of the engine's own threads is refused ([`StatementLimit`]), so no input
//! can overflow a stack. Statements run on threads of their own at a low CPU priority, and
//! within the time, memory and result limits of a [`QueryConfig`], so SQL cannot starve
//! ingest or the processor. A common table expression used more than once is evaluated
//! once (`shared_subplans.rs`). [`router`] serves the engine as `POST /api/sql`.
//!
//! ```no_run
//! # async fn demo(lake: clickstream_lake::Lake) -> Result<(), clickstream_query::QueryError> {
//! let engine = clickstream_query::QueryEngine::new(lake).await?;
//! let output = engine.sql("SELECT type, count(*) AS n FROM events GROUP BY type").await?;
//! println!("{}", output.to_table_string());
//! # Ok(()) }
//! ```

mod cancel;
mod catalog;
mod config;
mod engine;
mod error;
mod http;
mod limits;
mod local_files;
mod output;
mod readonly;
mod runtime;
mod scan;
mod shared_subplans;

pub use config::QueryConfig;
pub use engine::QueryEngine;
pub use error::{QueryError, ResultLimit};
pub use http::{MAX_BODY_BYTES, SqlRequest, router};
pub use limits::{
    MAX_NESTING_DEPTH, MAX_QUERY_DEPTH, MAX_RELATIONS, MAX_SQL_BYTES, StatementLimit,
};
pub use output::{Column, JsonRow, OutputFormat, QueryOutput, QueryResponse, UnknownOutputFormat};
