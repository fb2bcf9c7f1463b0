//! Load generation against the ingest API: replay of JSON Lines files the way the original
//! generator did, realistic synthetic traffic at a rate, and closed-loop load runs with
//! acknowledgement latency in HDR histograms.

mod error;
mod generate;
mod ingest_load;
mod object;
mod replay;
mod sender;
mod summary;
mod traffic;
mod units;
mod visibility;
pub mod wide;

pub use error::GenerateError;
pub use generate::{GenerateConfig, Source, WriteSummary, run_generate, write_jsonl};
pub use ingest_load::{Endpoint, IngestLoad, LoadError, LoadReport, Shape, run_ingest_load};
pub use object::{Field, Object};
pub use replay::ReplayConfig;
pub use summary::{GenerateSummary, ReplayPosition};
pub use traffic::{GeneratedEvent, Traffic, TrafficConfig, default_start};
pub use units::{parse_duration, parse_rate};
pub use visibility::{VisibilityLoad, VisibilityReport, run_visibility};
