//! The `clickstream` binary's library half: configuration, the in-process pipeline and the
//! subcommands' `run` functions, so integration tests drive exactly what the binary runs.

pub mod backend;
pub mod bench;
pub mod config;
mod enrichment_summary;
pub mod generate;
pub mod health;
pub mod lake_cmd;
mod listeners;
pub mod memory;
pub mod pipeline;
mod processors;
pub mod progress;
pub mod schema_follow;
pub mod serve;
pub mod telemetry;
pub mod topics;

pub use config::Config;
pub use listeners::display_url;
pub use pipeline::{Pipeline, Roles};
