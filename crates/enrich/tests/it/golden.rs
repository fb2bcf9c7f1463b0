//! The clickstream stream's outputs, pinned: every enricher's result, the visitor keys,
//! the session ids, the privacy transformations and the duplicate verdicts for a fixed
//! set of events, compared byte for byte with `tests/data/clickstream_golden.txt`.
//!
//! The file was written by the code before the Segment stream was added, so this test
//! shows that serving another stream changed nothing for this one. Regenerate it only for
//! an intended change of the clickstream outputs:
//! `CLICKSTREAM_WRITE_GOLDEN=1 cargo test -p clickstream-enrich golden`.

use std::fmt::Write as _;
use std::path::PathBuf;

use clickstream_enrich::{
    Deduplicator, DuplicatesConfig, EnrichConfig, Enricher, EventFields, PrivacyConfig, Secret,
    SessionInput, Sessionizer, SessionsConfig, VisitorKey,
};

use crate::geo::test_database;

const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "",
];

const IPS: [&str; 6] = [
    "81.2.69.142",
    "2001:218::1",
    "216.160.83.56",
    "10.0.0.1",
    "not an ip",
    "",
];

const PAGES: [Option<&str>; 4] = [
    None,
    Some("https://xcc-webshop.com/product/3221"),
    Some("https://xcc-webshop.com/?utm_source=google&utm_medium=cpc&gclid=abc"),
    Some("https://xcc-webshop.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring"),
];

const REFERRERS: [Option<&str>; 4] = [
    None,
    Some("https://www.google.com/search?q=shoes"),
    Some("https://xcc-webshop.com/cart"),
    Some("https://l.facebook.com/l.php?u=x"),
];

/// (id, user agent, ip, customer, page, referrer, minute)
type Sample = (i64, usize, usize, Option<i64>, usize, usize, i64);

fn samples() -> Vec<Sample> {
    let mut out = Vec::new();
    let mut id = 0;
    for ua in 0..USER_AGENTS.len() {
        for ip in 0..IPS.len() {
            id += 1;
            let customer = (id % 3 == 0).then_some(1400 + id % 4);
            let minute = (id * 7) % 50 + if id % 5 == 0 { 90 } else { 0 };
            out.push((
                id,
                ua,
                ip,
                customer,
                id as usize % 4,
                (id / 2) as usize % 4,
                minute,
            ));
        }
    }
    out
}

fn configs() -> Vec<(&'static str, EnrichConfig)> {
    let mut off = EnrichConfig::default();
    off.user_agent.enabled = false;
    off.bots.enabled = false;
    off.geo.enabled = false;
    off.referrer.enabled = false;
    off.campaign.enabled = false;
    let privacy = |anonymize_ip, secret: Option<&str>| EnrichConfig {
        privacy: PrivacyConfig {
            anonymize_ip,
            pseudonymize: secret.is_some(),
            secret: secret.map(Secret::new),
        },
        ..EnrichConfig::default()
    };
    let mut bots_only = EnrichConfig::default();
    bots_only.user_agent.enabled = false;
    vec![
        ("default", EnrichConfig::default()),
        ("anonymize", privacy(true, None)),
        (
            "pseudonymize",
            privacy(false, Some("a secret of at least sixteen bytes")),
        ),
        (
            "both",
            privacy(true, Some("a secret of at least sixteen bytes")),
        ),
        ("bots_only", bots_only),
        ("off", off),
    ]
}

/// Everything the clickstream stream derives from the samples, as text.
fn outputs() -> String {
    let mut out = String::new();
    for (name, config) in configs() {
        let mut enricher = Enricher::new(&config, &[test_database()]).expect("enricher");
        let mut inputs = Vec::new();
        for (id, ua, ip, customer_id, page, referrer, minute) in samples() {
            let fields = EventFields {
                user_agent: USER_AGENTS[ua],
                ip: IPS[ip],
                customer_id,
                page: PAGES[page],
                referrer: REFERRERS[referrer],
            };
            let enriched = enricher.enrich(&fields);
            writeln!(out, "[{name}] event {id}: {enriched:?}").expect("write");
            writeln!(
                out,
                "[{name}] event {id} protect: {:?}",
                enricher.protect(fields.ip, fields.customer_id)
            )
            .expect("write");
            inputs.push(SessionInput {
                visitor: enriched.visitor,
                time_us: minute * 60_000_000,
                event_id: id,
            });
        }
        let mut sessions = Sessionizer::new(&SessionsConfig::default());
        for (input, a) in inputs.iter().zip(sessions.assign(&inputs, i64::MAX / 2)) {
            writeln!(out, "[{name}] session {}: {a:?}", input.event_id).expect("write");
        }
    }
    for (customer, ip, ua) in [
        (Some(1404), "81.2.69.142", USER_AGENTS[0]),
        (Some(-1), "", ""),
        (None, "81.2.69.142", USER_AGENTS[0]),
        (None, "", ""),
    ] {
        writeln!(
            out,
            "visitor {customer:?} {ip:?} {ua:?}: {:?}",
            VisitorKey::of(customer, ip, ua)
        )
        .expect("write");
    }
    let mut dedup = Deduplicator::new(&DuplicatesConfig {
        enabled: true,
        window_ms: 1000,
        max_ids: 4,
    });
    for (id, at) in [
        (1, 0),
        (2, 10),
        (1, 500),
        (3, 600),
        (4, 700),
        (5, 800),
        (1, 1001),
        (2, 1200),
    ] {
        writeln!(out, "dedup {id} at {at}: {:?}", dedup.check(id, at)).expect("write");
    }
    writeln!(
        out,
        "dedup len {} forgotten early {}",
        dedup.len(),
        dedup.forgotten_early()
    )
    .expect("write");
    out
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/clickstream_golden.txt")
}

#[test]
fn clickstream_outputs_are_unchanged() {
    let actual = outputs();
    if std::env::var_os("CLICKSTREAM_WRITE_GOLDEN").is_some() {
        std::fs::write(golden_path(), &actual).expect("write golden file");
    }
    let expected = std::fs::read_to_string(golden_path()).expect("golden file");
    for (n, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(a, e, "line {} of {}", n + 1, golden_path().display());
    }
    assert_eq!(actual.lines().count(), expected.lines().count());
    assert_eq!(actual, expected);
}
