//! Integration tests of the `clickstream` binary's pipeline, over real sockets. One test
//! binary (fast to link), one module per area.

mod admin_auth;
mod backends;
mod bad_input;
mod common;
mod compressed_bodies;
mod config_cmd;
mod crash;
mod dedup_replay;
mod enrich_e2e;
mod enrich_generated;
mod eventually;
mod faults;
mod generate;
mod http_api;
mod kafka_faults;
mod kafka_groups;
mod kafka_refusals;
mod lake_e2e;
mod observability;
mod prometheus;
mod rate_limits;
mod rest_proxy;
mod schema_crash;
mod schema_evolution;
mod schema_follow;
mod segment_lake;
mod slow_clients;
mod sql_limits;
mod sql_starvation;
mod startup;
mod store_outage;
mod tls;
mod ui_api;
mod ui_schema_evolution;
mod write_keys;
