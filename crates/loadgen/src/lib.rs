//! Load generation against the ingest API: realistic events in batches from many
//! connections, with acknowledgement latency recorded in an HDR histogram.

mod ingest_load;
mod synthetic;
mod visibility;

pub use ingest_load::{IngestLoad, LoadError, LoadReport, run_ingest_load};
pub use synthetic::synthetic_event;
pub use visibility::{VisibilityLoad, VisibilityReport, run_visibility};
