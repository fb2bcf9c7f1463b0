//! Validation + Avro encoding of a realistic batch: the CPU work `/collect` does per request.
//!
//! `cargo bench -p clickstream-event --bench validate_encode`
//!
//! Three legs over the same body, in one run:
//! - `parse_only`: parsing it into JSON values, the floor of the value path;
//! - `parse_validate_encode`: the value path (JSON value tree, Avro value tree, apache-avro's
//!   encoder), what `/collect` did before the validator was compiled;
//! - `compiled`: splitting the body into each event's text and reading each once into Avro
//!   binary with the compiled plan (`validate_texts`), what `/collect` does now.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;

use clickstream_event::EventValidator;
use clickstream_event::schemas::raw_event_schema;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::value::RawValue;

/// The seed's sample lines (valid and invalid JSON events), repeated to `n` events.
fn batch_body(n: usize) -> String {
    let seed = include_str!("../tests/data/seed_events.jsonl");
    let lines: Vec<&str> = seed
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .collect();
    let events: Vec<&str> = lines.iter().cycle().take(n).copied().collect();
    format!("[{}]", events.join(","))
}

fn parse(body: &str) -> Vec<(Box<RawValue>, serde_json::Value)> {
    let raws: Vec<Box<RawValue>> = serde_json::from_str(body).expect("array");
    raws.into_iter()
        .map(|raw| {
            let value = serde_json::from_str(raw.get()).expect("json");
            (raw, value)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let validator = EventValidator::new(raw_event_schema().expect("schema"), 1).expect("validator");
    let body = batch_body(100);
    let mut group = c.benchmark_group("batch_of_100");
    group.throughput(Throughput::Elements(100));
    group.bench_function("parse_only", |b| {
        b.iter(|| black_box(parse(black_box(&body))))
    });
    group.bench_function("parse_validate_encode", |b| {
        b.iter(|| {
            let events = parse(black_box(&body));
            let results = validator
                .validate_batch(events.iter().map(|(_, v)| v))
                .expect("encoder");
            black_box(results)
        })
    });
    group.bench_function("compiled", |b| {
        b.iter(|| {
            let texts: Vec<&RawValue> = serde_json::from_str(black_box(&body)).expect("array");
            let results = validator
                .validate_texts(texts.iter().map(|raw| raw.get()))
                .expect("encoder");
            black_box(results)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
