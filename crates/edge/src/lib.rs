//! The edge of every listener (ingest, registry, UI and SQL): what a request meets before
//! a handler sees it, written once and applied to each router.
//!
//! - [`body`]: request bodies read as a stream with a cap, decoded from their
//!   `Content-Encoding` (gzip, deflate, br, zstd) with caps on the size and the ratio.
//! - [`error`]: JSON errors (`{"status": "error", "message": ...}`) and the 404/405
//!   fallbacks every router shares.

pub mod body;
pub mod error;
