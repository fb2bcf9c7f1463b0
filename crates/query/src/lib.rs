//! Read-only SQL over the lake's Delta tables, with DataFusion.
//!
//! [`QueryEngine`] registers the lake tables (`events`, `invalid_events`, `dead_letters`,
//! `unique_users_daily`) in one DataFusion session and runs one statement at a time,
//! refreshing the tables it reads to their newest Delta version first. Only queries are
//! accepted: the syntax tree is checked before planning (see `readonly.rs`) and the logical
//! plan again by DataFusion's `SQLOptions`. [`router`] serves the engine as `POST /api/sql`.
//!
//! ```no_run
//! # async fn demo(lake: clickstream_lake::Lake) -> Result<(), clickstream_query::QueryError> {
//! let engine = clickstream_query::QueryEngine::new(lake).await?;
//! let output = engine.sql("SELECT type, count(*) AS n FROM events GROUP BY type").await?;
//! println!("{}", output.to_table_string());
//! # Ok(()) }
//! ```

mod catalog;
mod engine;
mod error;
mod http;
mod output;
mod readonly;

pub use engine::QueryEngine;
pub use error::QueryError;
pub use http::{MAX_BODY_BYTES, SqlRequest, router};
pub use output::{Column, JsonRow, OutputFormat, QueryOutput, QueryResponse, UnknownOutputFormat};
