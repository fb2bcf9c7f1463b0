//! Integration tests of the query crate, in one binary: golden SQL files, the engine's
//! guarantees (read-only, fresh), and the HTTP API.

mod api;
mod engine;
mod fixture;
mod golden;
mod limits;
mod resources;
mod scan;
