//! The edge of every listener (ingest, registry, UI and SQL): what a request meets before
//! a handler sees it, written once and applied to each router.
//!
//! - [`error`]: JSON errors (`{"status": "error", "message": ...}`) and the 404/405
//!   fallbacks every router shares.

pub mod error;
