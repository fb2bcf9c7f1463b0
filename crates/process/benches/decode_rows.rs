//! The processor's decode → Arrow path: framed Avro records of the raw topic decoded with
//! their writer schema, the fields with a role read out, the latest-topic record made and
//! the `events` row appended, then the Arrow batch finished (no enrichment: the enrich
//! crate's `chain` bench has that).
//!
//! `cargo bench -p clickstream-process --bench decode_rows`
//!
//! Three legs over the same 1,000 seed records, in one run:
//! - `by_name`: what the processor did before: every record's fields searched by name,
//!   the latest record's `metadata` through an Avro value tree and apache-avro's encoder;
//! - `resolved`: field positions resolved once per writer schema, `metadata` written
//!   directly;
//! - `compiled`: what it does now: the fields read straight from the record by a reader
//!   compiled per writer schema, with no Avro value tree (`src/compiled.rs`).

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;

use clickstream_event::EventValidator;
use clickstream_event::schemas::raw_event_schema;
use clickstream_process::bench_api::{DecodeToRows, Path};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The seed's valid sample events, repeated to `n`, framed as ingest writes them.
fn payloads(n: usize) -> Vec<Vec<u8>> {
    let validator = EventValidator::new(raw_event_schema().expect("schema"), 1).expect("validator");
    let seed = include_str!("../../event/tests/data/seed_events.jsonl");
    let texts: Vec<&str> = seed.lines().collect();
    let valid: Vec<Vec<u8>> = validator
        .validate_texts(texts.iter().copied())
        .expect("encoder")
        .into_iter()
        .filter_map(Result::ok)
        .map(|event| event.payload)
        .collect();
    valid.iter().cycle().take(n).cloned().collect()
}

fn bench(c: &mut Criterion) {
    let path = DecodeToRows::new(&raw_event_schema().expect("schema")).expect("decoder");
    let records = DecodeToRows::records(&payloads(1000));
    let mut group = c.benchmark_group("records_1000");
    group.throughput(Throughput::Elements(records.len() as u64));
    for (name, how) in [
        ("by_name", Path::ByName),
        ("resolved", Path::Resolved),
        ("compiled", Path::Compiled),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(path.rows(black_box(&records), how)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
