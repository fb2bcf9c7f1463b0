//! The Segment stream's paths: calls without a user agent or IP, explicit campaigns,
//! visitors and duplicates by string ids (also across a restart that rebuilds the state
//! from stored values), and pseudonyms of string ids.

use clickstream_enrich::{
    CallFields, Campaign, Deduplicator, DuplicatesConfig, EnrichConfig, Enricher, EventFields,
    IdDigest, Medium, Privacy, PrivacyConfig, RestoredSession, Secret, SessionInput, Sessionizer,
    SessionsConfig, Sighting, VisitorId, VisitorKey,
};
use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::geo::test_database;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const SECRET: &str = "a secret of at least sixteen bytes";
const MINUTE: i64 = 60_000_000;
const NOW: i64 = 100_000 * MINUTE;

fn call<'a>(ids: &'a [VisitorId<'a>]) -> CallFields<'a> {
    CallFields {
        user_agent: None,
        ip: None,
        visitor_ids: ids,
        page: None,
        referrer: None,
        campaign: None,
    }
}

fn with_privacy(anonymize_ip: bool, secret: Option<&str>) -> EnrichConfig {
    EnrichConfig {
        privacy: PrivacyConfig {
            anonymize_ip,
            pseudonymize: secret.is_some(),
            secret: secret.map(Secret::new),
        },
        ..EnrichConfig::default()
    }
}

#[test]
fn a_call_without_user_agent_or_ip_has_no_user_agent_bot_or_geo() {
    let mut enricher =
        Enricher::new(&EnrichConfig::default(), &[test_database()]).expect("enricher");
    let ids = [VisitorId::Device(Some("anon-1")), VisitorId::User(None)];
    let out = enricher.enrich_call(&call(&ids));
    assert_eq!(out.user_agent, None);
    assert_eq!(out.bot, None, "no user agent is not a bot verdict");
    assert_eq!(out.geo, None);
    assert_eq!(out.protected, None);
    assert!(
        matches!(out.visitor, VisitorKey::Device(_)),
        "{:?}",
        out.visitor
    );
    // Whereas an empty user agent, as the clickstream stream may send, is a bot.
    let event = enricher.enrich(&EventFields {
        user_agent: "",
        ip: "81.2.69.142",
        customer_id: None,
        page: None,
        referrer: None,
    });
    assert!(event.bot.expect("verdict").is_bot);
}

#[test]
fn with_privacy_on_an_absent_ip_stays_absent() {
    let config = with_privacy(true, Some(SECRET));
    let mut enricher = Enricher::new(&config, &[test_database()]).expect("enricher");
    let out = enricher.enrich_call(&call(&[VisitorId::Device(Some("anon-1"))]));
    let protected = out.protected.expect("protected");
    assert_eq!(protected.ip, "");
    assert_eq!(protected.customer_id, None);
    assert_eq!(out.geo, None);
    let privacy = enricher.privacy().expect("privacy");
    assert_eq!(privacy.protect_ip(None), None);
}

#[test]
fn a_call_with_user_agent_and_ip_is_enriched_as_an_event_is() {
    let mut enricher =
        Enricher::new(&EnrichConfig::default(), &[test_database()]).expect("enricher");
    let page = Some("https://xcc-webshop.com/?utm_source=google&utm_medium=cpc&gclid=abc");
    let referrer = Some("https://www.google.com/search?q=shoes");
    let event = enricher.enrich(&EventFields {
        user_agent: CHROME,
        ip: "81.2.69.142",
        customer_id: None,
        page,
        referrer,
    });
    let ids = [VisitorId::Device(None), VisitorId::User(None)];
    let out = enricher.enrich_call(&CallFields {
        user_agent: Some(CHROME),
        ip: Some("81.2.69.142"),
        visitor_ids: &ids,
        page,
        referrer,
        campaign: None,
    });
    assert_eq!(
        out, event,
        "without ids the visitor is IP and user agent, as for events"
    );
    assert_eq!(out.geo.expect("geo").city.as_deref(), Some("London"));
}

#[test]
fn an_explicit_campaign_wins_parameter_by_parameter() {
    let mut enricher = Enricher::new(&EnrichConfig::default(), &[]).expect("enricher");
    let page = "https://xcc-webshop.com/?utm_source=google&utm_medium=cpc&utm_campaign=url";
    let explicit = Campaign {
        name: Some("spring".into()),
        medium: Some("email".into()),
        ..Campaign::default()
    };
    let out = enricher.enrich_call(&CallFields {
        page: Some(page),
        referrer: Some("https://www.google.com/search?q=shoes"),
        campaign: Some(&explicit),
        ..call(&[])
    });
    let campaign = out.campaign.expect("campaign");
    assert_eq!(campaign.name.as_deref(), Some("spring"));
    assert_eq!(campaign.medium.as_deref(), Some("email"));
    assert_eq!(campaign.source.as_deref(), Some("google"));
    // The explicit medium is not paid, so the URL's `cpc` does not make the visit paid.
    assert_eq!(out.referrer.expect("referrer").medium, Medium::Search);

    // An explicit paid medium alone makes it paid, even with the campaign columns off.
    let mut config = EnrichConfig::default();
    config.campaign.enabled = false;
    let mut columns_off = Enricher::new(&config, &[]).expect("enricher");
    let paid = Campaign {
        medium: Some("cpc".into()),
        ..Campaign::default()
    };
    let out = columns_off.enrich_call(&CallFields {
        page: Some("https://xcc-webshop.com/"),
        referrer: Some("https://www.google.com/search?q=shoes"),
        campaign: Some(&paid),
        ..call(&[])
    });
    assert_eq!(out.campaign, None);
    assert_eq!(out.referrer.expect("referrer").medium, Medium::Paid);
}

/// A stored row of the Segment stream: ids as stored, and the session it got.
struct Stored {
    anonymous_id: Option<String>,
    user_id: Option<String>,
    time_us: i64,
    session_id: String,
    session_index: i64,
    event_index: i64,
}

/// Visitor order of the design note: `anonymousId` first, so a login keeps the session.
fn visitor_ids<'a>(anonymous_id: Option<&'a str>, user_id: Option<&'a str>) -> [VisitorId<'a>; 2] {
    [VisitorId::Device(anonymous_id), VisitorId::User(user_id)]
}

/// Enriches and sessionizes one call; returns what the lake would store.
fn track(
    enricher: &mut Enricher,
    sessions: &mut Sessionizer,
    (anonymous_id, user_id, minute, event_id): (&str, Option<&str>, i64, i64),
) -> Stored {
    let ids = visitor_ids(Some(anonymous_id), user_id);
    let out = enricher.enrich_call(&CallFields {
        user_agent: Some(CHROME),
        ip: Some("81.2.69.142"),
        ..call(&ids)
    });
    let assigned = sessions.assign(
        &[SessionInput {
            visitor: out.visitor,
            time_us: minute * MINUTE,
            event_id,
        }],
        NOW,
    );
    let privacy = enricher.privacy().expect("privacy");
    let stored = |id: VisitorId<'_>| id.value().map(|v| privacy.protect_id(id.domain(), v));
    let [device, user] = ids;
    Stored {
        anonymous_id: stored(device),
        user_id: stored(user),
        time_us: minute * MINUTE,
        session_id: assigned[0].session_id.to_string(),
        session_index: assigned[0].session_index,
        event_index: assigned[0].event_index,
    }
}

/// What the restore query gives: one row per session, `min` of each stored id (SQL's
/// `min`, which skips nulls), the visitor key rebuilt from them.
fn restore_query(rows: &[Stored]) -> Vec<RestoredSession> {
    let mut sessions: BTreeMap<&str, Vec<&Stored>> = BTreeMap::new();
    for row in rows {
        sessions.entry(&row.session_id).or_default().push(row);
    }
    let min = |values: &[&Stored], f: fn(&Stored) -> Option<&str>| {
        values.iter().filter_map(|r| f(r)).min().map(str::to_string)
    };
    sessions
        .into_iter()
        .map(|(session_id, rows)| {
            let anonymous_id = min(&rows, |r| r.anonymous_id.as_deref());
            let user_id = min(&rows, |r| r.user_id.as_deref());
            let ids = visitor_ids(anonymous_id.as_deref(), user_id.as_deref());
            RestoredSession {
                visitor: VisitorKey::of_ids(&ids, None, None),
                session_id: session_id.to_string(),
                session_index: rows.iter().map(|r| r.session_index).max().unwrap_or(1),
                start_us: rows.iter().map(|r| r.time_us).min().unwrap_or(0),
                last_us: rows.iter().map(|r| r.time_us).max().unwrap_or(0),
                events: rows.iter().map(|r| r.event_index).max().unwrap_or(1),
            }
        })
        .collect()
}

#[test]
fn anonymous_id_sessions_survive_a_restart() {
    let config = with_privacy(true, Some(SECRET));
    let calls = [
        ("anon-1", None, 0, 1),
        ("anon-1", Some("user-1404"), 10, 2), // logs in: same session
        ("anon-2", None, 12, 3),
    ];
    let mut enricher = Enricher::new(&config, &[]).expect("enricher");
    let mut sessions = Sessionizer::new(&SessionsConfig::default());
    let stored: Vec<Stored> = calls
        .iter()
        .map(|&c| track(&mut enricher, &mut sessions, c))
        .collect();
    assert_eq!(stored[0].session_id, stored[1].session_id);
    assert_eq!(stored[1].event_index, 2);
    assert_ne!(stored[0].session_id, stored[2].session_id);
    assert_ne!(
        stored[0].anonymous_id.as_deref(),
        Some("anon-1"),
        "pseudonymised"
    );

    // A new process: enricher and sessions rebuilt from the stored rows only.
    let mut restarted = Enricher::new(&config, &[]).expect("enricher");
    let mut rebuilt = Sessionizer::new(&SessionsConfig::default());
    for session in restore_query(&stored) {
        rebuilt.restore(session);
    }
    let next = ("anon-1", Some("user-1404"), 20, 4);
    let after_restart = track(&mut restarted, &mut rebuilt, next);
    let uninterrupted = track(&mut enricher, &mut sessions, next);
    assert_eq!(after_restart.session_id, stored[0].session_id);
    assert_eq!(
        (after_restart.session_index, after_restart.event_index),
        (1, 3)
    );
    assert_eq!(after_restart.session_id, uninterrupted.session_id);
    assert_eq!(after_restart.event_index, uninterrupted.event_index);
}

#[test]
fn visitor_keys_are_taken_from_ids_as_stored() {
    // Without privacy the key is the raw id's; with it, the pseudonym's, so that the
    // restore query can rebuild it from the stored columns.
    let ids = visitor_ids(Some("anon-1"), Some("user-1404"));
    let mut plain = Enricher::new(&EnrichConfig::default(), &[]).expect("enricher");
    let raw_key = plain.enrich_call(&call(&ids)).visitor;
    assert_eq!(raw_key, VisitorKey::of_ids(&ids, None, None));

    let mut private = Enricher::new(&with_privacy(false, Some(SECRET)), &[]).expect("enricher");
    let key = private.enrich_call(&call(&ids)).visitor;
    let pseudonym = private
        .privacy()
        .expect("privacy")
        .protect_id("anonymous_id", "anon-1");
    assert_eq!(
        key,
        VisitorKey::of_ids(&[VisitorId::Device(Some(&pseudonym))], None, None)
    );
    assert_ne!(key, raw_key);

    // No id: the stored IP and user agent, as for the clickstream stream.
    let none = visitor_ids(None, Some(""));
    let mut anonymise = Enricher::new(&with_privacy(true, None), &[]).expect("enricher");
    let out = anonymise.enrich_call(&CallFields {
        user_agent: Some(CHROME),
        ip: Some("81.2.69.142"),
        ..call(&none)
    });
    assert_eq!(out.visitor, VisitorKey::of(None, "81.2.69.0", CHROME));
}

#[test]
fn protect_id_is_deterministic_per_secret_and_domain() {
    let privacy = |secret: &str| {
        Privacy::new(&PrivacyConfig {
            anonymize_ip: false,
            pseudonymize: true,
            secret: Some(Secret::new(secret)),
        })
        .expect("config")
        .expect("privacy")
    };
    let (a, again, b) = (
        privacy(SECRET),
        privacy(SECRET),
        privacy("another secret, long enough"),
    );
    let id = "user-1404";
    let pseudonym = a.protect_id("user_id", id);
    assert_eq!(pseudonym, again.protect_id("user_id", id));
    assert_eq!(pseudonym.len(), 32);
    assert!(
        pseudonym
            .chars()
            .all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "{pseudonym}"
    );
    assert_ne!(pseudonym, b.protect_id("user_id", id));
    assert_ne!(pseudonym, a.protect_id("anonymous_id", id));
    assert_ne!(pseudonym, a.protect_id("previous_id", id));
}

const WINDOW_MS: u64 = 60_000;

/// (message id, arrival ms): ids repeat, arrivals within half a window.
fn messages() -> impl Strategy<Value = Vec<(String, i64)>> {
    prop::collection::vec((0..200u32, 0..(WINDOW_MS as i64 / 2)), 0..200).prop_map(|raw| {
        let mut out: Vec<(String, i64)> = raw
            .into_iter()
            .map(|(n, at)| (format!("ajs-next-{n:08x}-message"), at))
            .collect();
        out.sort_by_key(|(_, at)| *at);
        out
    })
}

fn first_sightings(
    dedup: &mut Deduplicator<IdDigest>,
    batch: &[(String, i64)],
) -> Vec<(String, i64)> {
    batch
        .iter()
        .filter(|(id, at)| dedup.check(IdDigest::of(id), *at) == Sighting::First)
        .cloned()
        .collect()
}

fn dedup_config() -> DuplicatesConfig {
    DuplicatesConfig {
        enabled: true,
        window_ms: WINDOW_MS,
        max_ids: 1_000_000,
    }
}

#[test]
fn message_ids_are_deduplicated_after_a_restore() {
    let mut original = Deduplicator::new(&dedup_config());
    assert_eq!(original.check(IdDigest::of("m-1"), 0), Sighting::First);
    assert_eq!(original.check(IdDigest::of("m-2"), 10), Sighting::First);
    // Rebuilt from the stored `message_id`s and their arrival times.
    let mut rebuilt: Deduplicator<IdDigest> = Deduplicator::new(&dedup_config());
    rebuilt.restore(IdDigest::of("m-1"), 0);
    rebuilt.restore(IdDigest::of("m-2"), 10);
    assert_eq!(rebuilt.len(), 2);
    for dedup in [&mut original, &mut rebuilt] {
        assert_eq!(
            dedup.check(IdDigest::of("m-1"), 500),
            Sighting::Duplicate { first_seen_ms: 0 }
        );
        assert_eq!(dedup.check(IdDigest::of("m-3"), 600), Sighting::First);
    }
}

proptest! {
    #[test]
    fn a_message_id_state_rebuilt_from_first_sightings_decides_the_same(
        committed in messages(),
        next in messages(),
    ) {
        let mut original = Deduplicator::new(&dedup_config());
        let stored = first_sightings(&mut original, &committed);
        let mut rebuilt = Deduplicator::new(&dedup_config());
        for (id, at) in &stored {
            rebuilt.restore(IdDigest::of(id), *at);
        }
        let later: Vec<(String, i64)> = next
            .into_iter()
            .map(|(id, at)| (id, at + WINDOW_MS as i64 / 2))
            .collect();
        prop_assert_eq!(
            first_sightings(&mut rebuilt, &later),
            first_sightings(&mut original, &later)
        );
    }
}
