//! The full enrichment chain on a realistic mix, with warm caches: user agent, bots, geo,
//! referrer, campaign, privacy, duplicates and sessions.
//!
//! `cargo bench -p clickstream-enrich --bench chain`
//!
//! Geo uses MaxMind's tiny test database unless `CLICKSTREAM_BENCH_GEOIP` names real
//! databases (colon-separated, e.g. DB-IP's from `scripts/setup-geoip`), whose larger
//! trees and per-network records are the realistic case.
//!
//! The mix: 5,000 visitors (60% customers, 40% anonymous) over two hours, each with one
//! user agent drawn from ~300 real ones (browsers from uap-core's tests, about 10% bots
//! from crawler-user-agents' examples) and one IP; referrers from search, social, email,
//! internal pages and none; 10% of pages with campaign parameters; 2% duplicate ids.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use clickstream_enrich::{
    Deduplicator, EnrichConfig, Enricher, EventFields, PrivacyConfig, SessionInput, Sessionizer,
    Sighting, UserAgentParser,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const EVENTS: usize = 20_000;
const VISITORS: u64 = 5_000;

struct Event {
    id: i64,
    user_agent: String,
    ip: String,
    customer_id: Option<i64>,
    page: Option<String>,
    referrer: Option<String>,
    time_us: i64,
    arrival_ms: i64,
}

/// A small deterministic generator (no dependency on `rand` for a bench).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn user_agents() -> Vec<String> {
    let sample: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../tests/data/uap_sample.yaml")).expect("sample");
    let mut out: Vec<String> = sample["test_ua"]
        .as_sequence()
        .expect("test_ua")
        .iter()
        .filter_map(|case| case["user_agent_string"].as_str().map(str::to_string))
        .collect();
    let bots: Vec<String> = include_str!("../tests/data/crawler_sample.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .take(out.len() / 9)
        .map(str::to_string)
        .collect();
    out.extend(bots);
    out
}

fn mix() -> Vec<Event> {
    let mut rng = Lcg(7);
    let agents = user_agents();
    let referrers = [
        None,
        None,
        Some("https://www.google.com/search?q=running+shoes"),
        Some("https://www.google.co.uk/"),
        Some("https://www.bing.com/search?q=trail+shoes"),
        Some("https://l.facebook.com/l.php?u=x"),
        Some("https://t.co/AbC123"),
        Some("https://mail.google.com/mail/u/0/"),
        Some("https://xcc-webshop.com/cart"),
        Some("https://xcc-webshop.com/product/3221"),
        Some("https://some-blog.example.org/best-shoes"),
    ];
    let visitors: Vec<(String, String, Option<i64>)> = (0..VISITORS)
        .map(|v| {
            // Skewed towards the first agents, as real traffic is towards a few browsers.
            let a = rng.below(agents.len() as u64) * rng.below(agents.len() as u64)
                / agents.len() as u64;
            let ip = format!(
                "{}.{}.{}.{}",
                1 + rng.below(222),
                rng.below(256),
                rng.below(256),
                1 + rng.below(254)
            );
            let customer = (rng.below(10) < 6).then_some(1000 + v as i64);
            (agents[a as usize].clone(), ip, customer)
        })
        .collect();
    let two_hours_us = 2 * 3600 * 1_000_000i64;
    let mut events: Vec<Event> = (0..EVENTS)
        .map(|i| {
            let (user_agent, ip, customer_id) = &visitors[rng.below(VISITORS) as usize];
            let page = match rng.below(10) {
                0 => format!(
                    "https://xcc-webshop.com/?utm_source=newsletter&utm_medium=email&utm_campaign=c{}",
                    rng.below(20)
                ),
                1..=5 => format!("https://xcc-webshop.com/product/{}", rng.below(5000)),
                _ => "https://xcc-webshop.com/".to_string(),
            };
            let time_us = 1_700_000_000_000_000 + (rng.below(two_hours_us as u64) as i64);
            Event {
                id: i as i64,
                user_agent: user_agent.clone(),
                ip: ip.clone(),
                customer_id: *customer_id,
                page: Some(page),
                referrer: referrers[rng.below(referrers.len() as u64) as usize].map(str::to_string),
                time_us,
                arrival_ms: time_us / 1000,
            }
        })
        .collect();
    events.sort_by_key(|e| e.arrival_ms);
    // 2% duplicates: a later event repeats an earlier id.
    for i in (50..events.len()).step_by(50) {
        events[i].id = events[i - 17].id;
    }
    events
}

fn geo_databases() -> Vec<PathBuf> {
    match std::env::var("CLICKSTREAM_BENCH_GEOIP") {
        Ok(paths) => paths.split(':').map(PathBuf::from).collect(),
        Err(_) => vec![
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/geoip/GeoIP2-City-Test.mmdb"),
        ],
    }
}

/// The whole chain over one batch; `shift` makes ids and times new on every iteration
/// (as a live stream's are), so duplicates and sessions do real work.
fn run_chain(
    enricher: &mut Enricher,
    dedup: &mut Deduplicator,
    sessions: &mut Sessionizer,
    events: &[Event],
    shift: i64,
) -> usize {
    let mut inputs = Vec::with_capacity(events.len());
    let mut kept = 0;
    for event in events {
        let id = event.id + shift * EVENTS as i64;
        let arrival_ms = event.arrival_ms + shift * 7_200_000;
        if let Sighting::Duplicate { .. } = dedup.check(id, arrival_ms) {
            continue;
        }
        let enriched = enricher.enrich(&EventFields {
            user_agent: &event.user_agent,
            ip: &event.ip,
            customer_id: event.customer_id,
            page: event.page.as_deref(),
            referrer: event.referrer.as_deref(),
        });
        inputs.push(SessionInput {
            visitor: enriched.visitor,
            time_us: event.time_us + shift * 7_200_000_000,
            event_id: id,
        });
        kept += black_box(&enriched).bot.is_some() as usize;
    }
    let assigned = sessions.assign(&inputs, i64::MAX / 2);
    kept + black_box(assigned).len()
}

fn bench(c: &mut Criterion) {
    let events = mix();
    let databases = geo_databases();
    eprintln!("geo databases: {databases:?}");
    let mut group = c.benchmark_group("enrich");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(20);
    for (name, config) in [
        ("full_chain", EnrichConfig::default()),
        (
            "full_chain_with_privacy",
            EnrichConfig {
                privacy: PrivacyConfig {
                    anonymize_ip: true,
                    pseudonymize: true,
                    secret: Some(clickstream_enrich::Secret::new(
                        "bench secret of enough bytes",
                    )),
                },
                ..EnrichConfig::default()
            },
        ),
    ] {
        let mut enricher = Enricher::new(&config, &databases).expect("enricher");
        let mut dedup = Deduplicator::new(&config.duplicates);
        let mut sessions = Sessionizer::new(&config.sessions);
        let mut shift = 0;
        // Warm the caches: every user agent and record seen once.
        run_chain(&mut enricher, &mut dedup, &mut sessions, &events, shift);
        group.bench_function(name, |b| {
            b.iter(|| {
                shift += 1;
                run_chain(&mut enricher, &mut dedup, &mut sessions, &events, shift)
            })
        });
    }
    group.finish();

    // Why the cache exists: one parse of a user agent, uncached.
    let parser = UserAgentParser::bundled().expect("regexes");
    let agents = user_agents();
    let mut group = c.benchmark_group("user_agent");
    group.throughput(Throughput::Elements(agents.len() as u64));
    group.sample_size(10);
    group.bench_function("cold_parse", |b| {
        b.iter(|| {
            for ua in &agents {
                black_box(parser.parse(black_box(ua)));
            }
        })
    });
    // The same through the `ua-parser` crate (the old path), its patterns all compiled.
    let regexes: ua_parser::Regexes<'_> =
        serde_yaml_ng::from_str(include_str!("../data/uap-core/regexes.yaml")).expect("yaml");
    let extractor = ua_parser::Extractor::try_from(regexes).expect("compiles");
    group.bench_function("cold_parse_ua_parser_crate", |b| {
        b.iter(|| {
            for ua in &agents {
                black_box(extractor.extract(black_box(ua)));
            }
        })
    });
    // Loading the rules and a first sighting of each agent: ours compiles a pattern when
    // a user agent first needs it; the `ua-parser` crate (the old path) compiles all.
    group.bench_function("load_and_first_parse", |b| {
        b.iter(|| {
            let parser = UserAgentParser::bundled().expect("regexes");
            for ua in &agents {
                black_box(parser.parse(black_box(ua)));
            }
        })
    });
    group.bench_function("load_and_first_parse_ua_parser_crate", |b| {
        b.iter(|| {
            let regexes: ua_parser::Regexes<'_> =
                serde_yaml_ng::from_str(include_str!("../data/uap-core/regexes.yaml"))
                    .expect("yaml");
            let extractor = ua_parser::Extractor::try_from(regexes).expect("compiles");
            for ua in &agents {
                black_box(extractor.extract(black_box(ua)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
