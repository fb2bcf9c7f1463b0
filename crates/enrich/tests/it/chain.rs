//! The whole stateless chain over the seed's sample events.

use clickstream_enrich::{
    DeviceType, EnrichConfig, Enricher, EventFields, GeoConfig, Medium, PrivacyConfig, Secret,
    VisitorKey,
};

use crate::geo::test_database;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn event<'a>(ip: &'a str, page: Option<&'a str>, referrer: Option<&'a str>) -> EventFields<'a> {
    EventFields {
        user_agent: CHROME,
        ip,
        customer_id: Some(1404),
        page,
        referrer,
    }
}

#[test]
fn every_enricher_contributes() {
    let mut enricher =
        Enricher::new(&EnrichConfig::default(), &[test_database()]).expect("enricher");
    let out = enricher.enrich(&event(
        "81.2.69.142",
        Some("https://xcc-webshop.com/?utm_source=google&utm_medium=cpc&gclid=abc"),
        Some("https://www.google.com/search?q=shoes"),
    ));
    let ua = out.user_agent.expect("user agent");
    assert_eq!(ua.browser_family, "Chrome");
    assert_eq!(ua.browser_version.as_deref(), Some("131.0.0.0"));
    assert_eq!(ua.os_family, "Windows");
    assert_eq!(ua.device_type, DeviceType::Desktop);
    assert!(!out.bot.expect("bot verdict").is_bot);
    let geo = out.geo.expect("geo");
    assert_eq!(geo.city.as_deref(), Some("London"));
    let referrer = out.referrer.expect("referrer");
    // A gclid on the page makes the visit paid, from Google.
    assert_eq!(referrer.medium, Medium::Paid);
    assert_eq!(referrer.source.as_deref(), Some("Google"));
    assert_eq!(referrer.term.as_deref(), Some("shoes"));
    assert_eq!(
        out.campaign.expect("campaign").gclid.as_deref(),
        Some("abc")
    );
    assert_eq!(out.protected, None);
    assert_eq!(out.visitor, VisitorKey::Customer(1404));
}

#[test]
fn switched_off_enrichers_say_nothing() {
    let mut config = EnrichConfig::default();
    config.user_agent.enabled = false;
    config.bots.enabled = false;
    config.geo.enabled = false;
    config.referrer.enabled = false;
    config.campaign.enabled = false;
    let mut enricher = Enricher::new(&config, &[test_database()]).expect("enricher");
    assert!(!enricher.has_geo());
    let out = enricher.enrich(&event(
        "81.2.69.142",
        Some("https://xcc-webshop.com/?utm_source=x"),
        Some("https://www.google.com/"),
    ));
    assert_eq!(out.user_agent, None);
    assert_eq!(out.bot, None);
    assert_eq!(out.geo, None);
    assert_eq!(out.referrer, None);
    assert_eq!(out.campaign, None);
}

#[test]
fn bots_without_user_agent_columns_still_use_the_parser() {
    let mut config = EnrichConfig::default();
    config.user_agent.enabled = false;
    let mut enricher = Enricher::new(&config, &[]).expect("enricher");
    let mut e = event("81.2.69.142", None, None);
    e.user_agent = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let out = enricher.enrich(&e);
    assert_eq!(out.user_agent, None);
    assert!(out.bot.expect("verdict").is_bot);
}

#[test]
fn geo_is_looked_up_before_the_ip_is_anonymised() {
    let config = EnrichConfig {
        geo: GeoConfig::default(),
        privacy: PrivacyConfig {
            anonymize_ip: true,
            pseudonymize: false,
            secret: None,
        },
        ..EnrichConfig::default()
    };
    let mut enricher = Enricher::new(&config, &[test_database()]).expect("enricher");
    let mut e = event("2001:218::1", None, None);
    e.customer_id = None;
    let out = enricher.enrich(&e);
    assert_eq!(out.geo.expect("geo").country_code.as_deref(), Some("JP"));
    let protected = out.protected.expect("protected");
    assert_eq!(protected.ip, "2001:218::");
    // The visitor is keyed by what is stored.
    assert_eq!(out.visitor, VisitorKey::of(None, "2001:218::", CHROME));
}

#[test]
fn pseudonymised_customers_keep_their_sessions_apart() {
    let config = EnrichConfig {
        privacy: PrivacyConfig {
            anonymize_ip: true,
            pseudonymize: true,
            secret: Some(Secret::new("a secret of at least sixteen bytes")),
        },
        ..EnrichConfig::default()
    };
    let mut enricher = Enricher::new(&config, &[]).expect("enricher");
    let a = enricher.enrich(&event("81.2.69.142", None, None));
    let mut other = event("81.2.69.142", None, None);
    other.customer_id = Some(1405);
    let b = enricher.enrich(&other);
    let (pa, pb) = (a.protected.expect("a"), b.protected.expect("b"));
    assert_ne!(pa.customer_id, Some(1404));
    assert_ne!(pa.customer_id, pb.customer_id);
    assert_eq!(pa.ip, pb.ip);
    assert_ne!(pa.ip, "81.2.69.0");
    assert_ne!(a.visitor, b.visitor);
}
