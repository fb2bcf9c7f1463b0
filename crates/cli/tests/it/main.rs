//! Integration tests of the `clickstream` binary's pipeline, over real sockets. One test
//! binary (fast to link), one module per area.

mod bad_input;
mod common;
mod crash;
mod enrich_e2e;
mod http_api;
mod lake_e2e;
mod startup;
