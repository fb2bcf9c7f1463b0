//! What the edge adds to one ingest request of 100 events when write keys and rate limits
//! are on: the write-key check (three keys configured, each compared in constant time),
//! the place among requests in flight, the hold on the body's bytes, and the batch's tokens
//! from the per-address and per-key buckets. Compare with the request's own cost, e.g.
//! `validate_encode`'s batch of 100 (crates/event/benches).
//!
//! `cargo bench -p clickstream-edge --bench guard`
// `criterion_group!` defines an undocumented function.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use clickstream_edge::limit::Client;
use clickstream_edge::{Limits, LimitsConfig, WriteKeys};
use clickstream_event::EventValidator;
use clickstream_event::schemas::raw_event_schema;
use clickstream_secret::Secret;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Uri};

const KEY: &str = "bench-write-key-0123456789abcdef";

fn write_keys() -> WriteKeys {
    let keys: BTreeMap<String, Secret> = [
        ("web", "web-write-key-0123456789abcdefgh"),
        ("ios", "ios-write-key-0123456789abcdefgh"),
        ("bench", KEY),
    ]
    .into_iter()
    .map(|(name, key)| (name.to_string(), Secret::new(key)))
    .collect();
    WriteKeys::new(&keys, None).expect("keys")
}

/// Buckets that never run dry: one iteration takes 100 tokens in well under a
/// microsecond, so any rate a deployment would set would drain in the loop.
fn limits() -> Limits {
    let config = LimitsConfig {
        key_events_per_sec: u32::MAX,
        key_burst: u32::MAX,
        ip_events_per_sec: u32::MAX,
        ip_burst: u32::MAX,
        ..LimitsConfig::default()
    };
    Limits::new(&config, Duration::from_secs(1)).expect("limits")
}

/// The seed's sample events that parse, repeated to 100, as one JSON array.
fn batch_of_100() -> String {
    let seed = include_str!("../../event/tests/data/seed_events.jsonl");
    let lines: Vec<&str> = seed
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .collect();
    let events: Vec<&str> = lines.iter().cycle().take(100).copied().collect();
    format!("[{}]", events.join(","))
}

fn guard(c: &mut Criterion) {
    let keys = write_keys();
    let limits = limits();
    let mut headers = HeaderMap::new();
    headers.insert("x-write-key", HeaderValue::from_static(KEY));
    let uri: Uri = "/collect".parse().expect("uri");
    let client = Client {
        ip: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        key: Some("bench".into()),
    };
    let mut group = c.benchmark_group("edge_guard");
    let validator = EventValidator::new(raw_event_schema().expect("schema"), 1).expect("validator");
    let body = batch_of_100();
    group.bench_function("validate_100_events", |b| {
        b.iter(|| {
            let events: Vec<serde_json::Value> =
                serde_json::from_str(black_box(&body)).expect("array");
            black_box(validator.validate_batch(events.iter()).expect("encoder"))
        })
    });
    group.bench_function("write_key_check", |b| {
        b.iter(|| black_box(keys.check(black_box(&headers), black_box(&uri))))
    });
    group.bench_function("request_of_100_events", |b| {
        b.iter(|| {
            let source = keys.check(&headers, &uri).expect("known key");
            let in_flight = limits.admit().expect("admitted");
            let held = limits.hold(black_box(30_000)).expect("held");
            limits.take(&client, 100).expect("tokens");
            black_box((source, in_flight, held))
        })
    });
    group.finish();
}

criterion_group!(benches, guard);
criterion_main!(benches);
