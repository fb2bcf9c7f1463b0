//! Properties of the simulated traffic: reproducible, valid where meant to be, and shaped
//! like a shop's traffic (funnels thin out, customers return, bots and IPv6 are present).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDateTime;
use clickstream_event::EventValidator;
use clickstream_event::schemas::raw_event_schema;
use serde_json::Value;

use super::*;

fn events(config: TrafficConfig, n: usize) -> Vec<GeneratedEvent> {
    Traffic::new(config).take(n).collect()
}

fn text(events: &[GeneratedEvent]) -> Vec<String> {
    events.iter().map(|e| e.event.to_json_string()).collect()
}

fn validator() -> EventValidator {
    EventValidator::new(raw_event_schema().expect("schema"), 1).expect("validator")
}

#[test]
fn the_same_seed_gives_the_same_events_and_another_seed_others() {
    let config = TrafficConfig {
        seed: 7,
        invalid_share: 0.05,
        ..TrafficConfig::default()
    };
    let a = text(&events(config.clone(), 3_000));
    let b = text(&events(config.clone(), 3_000));
    assert_eq!(a, b);
    let c = text(&events(TrafficConfig { seed: 8, ..config }, 3_000));
    assert_ne!(a, c);
}

#[test]
fn the_invalid_share_does_not_change_the_rest_of_the_traffic() {
    let clean = events(
        TrafficConfig {
            seed: 3,
            ..TrafficConfig::default()
        },
        2_000,
    );
    let broken = events(
        TrafficConfig {
            seed: 3,
            invalid_share: 0.2,
            ..TrafficConfig::default()
        },
        2_000,
    );
    let mut compared = 0;
    for (c, b) in clean.iter().zip(&broken) {
        if b.valid {
            assert_eq!(c.event.to_json_string(), b.event.to_json_string());
            compared += 1;
        }
    }
    assert!(compared > 1_400, "{compared}");
}

#[test]
fn valid_events_pass_the_raw_schema_and_broken_ones_fail_it() {
    let validator = validator();
    let generated = events(
        TrafficConfig {
            seed: 11,
            invalid_share: 0.1,
            ..TrafficConfig::default()
        },
        5_000,
    );
    let mut invalid = 0;
    for event in &generated {
        let value = event.event.to_value();
        let result = validator.to_avro(&value);
        assert_eq!(
            result.is_ok(),
            event.valid,
            "{} -> {result:?}",
            event.event.to_json_string()
        );
        invalid += usize::from(!event.valid);
    }
    // 10 % of 5,000 is 500 with a standard deviation of about 21.
    assert!((400..600).contains(&invalid), "{invalid} invalid");
}

#[test]
fn events_come_in_timestamp_order_with_unique_increasing_ids() {
    let generated = events(
        TrafficConfig {
            first_id: 367_851,
            ..TrafficConfig::default()
        },
        5_000,
    );
    let mut last: Option<NaiveDateTime> = None;
    for (i, event) in generated.iter().enumerate() {
        let value = event.event.to_value();
        assert_eq!(value["id"], Value::from(367_851 + i as i64));
        let ts = value["event"]["timestamp"].as_str().expect("timestamp");
        let parsed =
            NaiveDateTime::parse_from_str(ts.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .unwrap_or_else(|e| panic!("{ts}: {e}"));
        // App timestamps are truncated to the second: allow that much.
        if let Some(last) = last {
            assert!(
                parsed >= last - chrono::Duration::seconds(1),
                "{ts} before {last}"
            );
        }
        last = Some(last.map_or(parsed, |l| l.max(parsed)));
    }
}

#[test]
fn funnels_thin_out_step_by_step() {
    let generated = events(TrafficConfig::default(), 30_000);
    let mut per_type: HashMap<String, usize> = HashMap::new();
    for event in &generated {
        let value = event.event.to_value();
        *per_type
            .entry(value["type"].as_str().expect("type").to_string())
            .or_default() += 1;
    }
    let n = |t: &str| per_type.get(t).copied().unwrap_or(0);
    let views = n("page_view") + n("view") + n("click");
    let orders = n("placed_order") + n("purchase");
    assert!(views > n("search"), "{per_type:?}");
    assert!(n("search") > n("add_to_cart"), "{per_type:?}");
    assert!(n("visit_personal_recommendation") > 0, "{per_type:?}");
    assert!(n("add_to_cart") > orders, "{per_type:?}");
    assert!(orders > 0, "{per_type:?}");
    // Plausible e-commerce conversion: orders are 0.5 % to 5 % of events.
    let share = orders as f64 / generated.len() as f64;
    assert!(
        (0.005..0.05).contains(&share),
        "orders {share:.4} of events: {per_type:?}"
    );
}

#[test]
fn customers_return_across_days_in_separate_sessions() {
    let generated = events(TrafficConfig::default(), 40_000);
    let mut days: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    let mut times: BTreeMap<i64, Vec<NaiveDateTime>> = BTreeMap::new();
    for event in &generated {
        let value = event.event.to_value();
        let Some(customer) = value["event"]["customer_id"].as_i64() else {
            continue;
        };
        let ts = value["event"]["timestamp"].as_str().expect("timestamp");
        days.entry(customer)
            .or_default()
            .insert(ts[..10].to_string());
        let parsed =
            NaiveDateTime::parse_from_str(ts.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .expect("parses");
        times.entry(customer).or_default().push(parsed);
    }
    let all_days: BTreeSet<&String> = days.values().flatten().collect();
    assert!(
        all_days.len() >= 3,
        "40,000 events span {} days",
        all_days.len()
    );
    let returning = days.values().filter(|d| d.len() >= 2).count();
    assert!(
        returning >= 100,
        "{returning} customers on two days or more"
    );
    // Sessions: gaps inside a session stay under 25 minutes, and customers do come back
    // after gaps longer than 30 minutes.
    let long_gaps = times
        .values()
        .flat_map(|t| t.windows(2).map(|w| w[1] - w[0]))
        .filter(|gap| *gap > chrono::Duration::minutes(30))
        .count();
    assert!(
        long_gaps >= 100,
        "{long_gaps} returns after 30 minutes of inactivity"
    );
}

#[test]
fn traffic_has_bots_mobiles_ipv6_and_all_kinds_of_referrers() {
    let generated = events(TrafficConfig::default(), 20_000);
    let (mut bots, mut mobile, mut v6, mut email, mut search, mut social, mut anonymous) =
        (0, 0, 0, 0, 0, 0, 0);
    for event in &generated {
        let value = event.event.to_value();
        let details = &value["event"];
        let ua = details["user_agent"].as_str().expect("ua");
        bots += usize::from(
            ua.contains("bot")
                || ua.contains("Bot")
                || ua.contains("externalhit")
                || ua.starts_with("python-requests"),
        );
        mobile +=
            usize::from(ua.contains("Mobile") || ua.contains("Android") || ua.contains("iPhone"));
        v6 += usize::from(details["ip"].as_str().expect("ip").contains(':'));
        anonymous += usize::from(details["customer_id"].is_null());
        let page = details["page"].as_str().unwrap_or_default();
        email += usize::from(page.contains("utm_medium=email"));
        let referrer = details["referrer"].as_str().unwrap_or_default();
        search += usize::from(
            referrer.contains("google.")
                || referrer.contains("bing.")
                || referrer.contains("duckduckgo."),
        );
        social += usize::from(
            referrer.contains("facebook.")
                || referrer.contains("instagram.")
                || referrer.contains("t.co/"),
        );
    }
    let share = |n: usize| n as f64 / generated.len() as f64;
    assert!((0.03..0.4).contains(&share(bots)), "bots {}", share(bots));
    assert!(
        (0.2..0.8).contains(&share(mobile)),
        "mobile {}",
        share(mobile)
    );
    assert!((0.05..0.6).contains(&share(v6)), "ipv6 {}", share(v6));
    assert!(
        (0.1..0.7).contains(&share(anonymous)),
        "anonymous {}",
        share(anonymous)
    );
    assert!(
        email > 50 && search > 50 && social > 50,
        "email {email}, search {search}, social {social}"
    );
}
