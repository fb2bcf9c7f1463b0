//! Table-driven tests of every enricher on real inputs, and properties of the stateful
//! ones. One test binary (fast to link).

mod bots;
mod chain;
mod dedup;
mod geo;
mod golden;
mod marketing;
mod segment;
mod sessions;
mod user_agent;
