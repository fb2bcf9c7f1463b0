//! Integration tests of the lake against real Delta tables in temporary directories.

mod common;
mod evolution;
mod files;
mod maintenance;
mod open;
mod segment;
mod tables;
mod txn;
