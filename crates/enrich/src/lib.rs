//! Enrichment: what a raw clickstream event says once its fields are interpreted.
//!
//! Each enricher is a pure function over an event plus lookup data loaded once:
//! [`UserAgentParser`] (uap-core), [`GeoLocator`] (MaxMind-format databases),
//! [`ReferrerClassifier`], [`Campaign::from_page`], [`BotDetector`] (isbot and
//! crawler-user-agents patterns) and [`Privacy`]. [`Enricher`] chains them for one event,
//! with caches in front of the expensive ones (user-agent parsing and bot matching are
//! cached per user-agent string, geo locations per database record).
//!
//! Two enrichers need state across events and are driven by the processor, which also
//! rebuilds them from the lake at start: [`Deduplicator`] (event ids seen within a
//! window) and [`Sessionizer`] (sessions by inactivity gap in event time).

mod bots;
mod campaign;
mod config;
mod dedup;
mod error;
mod geo;
mod privacy;
mod referrer;
mod sessions;
mod url_parts;
mod user_agent;

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;

pub use bots::{BotDetector, BotVerdict};
pub use campaign::Campaign;
pub use config::{
    BotsConfig, CampaignConfig, DuplicatesConfig, EnrichConfig, GeoConfig, PrivacyConfig,
    ReferrerConfig, Secret, SessionsConfig, UserAgentConfig,
};
pub use dedup::{Deduplicator, Sighting};
pub use error::EnrichError;
pub use geo::{GeoInfo, GeoLocator, GeoRecord};
pub use privacy::{MIN_SECRET_BYTES, Privacy, Protected, anonymize_ip};
pub use referrer::{Medium, ReferrerClassifier, ReferrerInfo};
pub use sessions::{RestoredSession, SessionAssignment, SessionInput, Sessionizer, VisitorKey};
pub use user_agent::{DeviceType, UserAgentInfo, UserAgentParser};

/// The fields of an event the enrichers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFields<'a> {
    /// `event.user_agent`.
    pub user_agent: &'a str,
    /// `event.ip`.
    pub ip: &'a str,
    /// `event.customer_id`.
    pub customer_id: Option<i64>,
    /// `event.page`.
    pub page: Option<&'a str>,
    /// `event.referrer`.
    pub referrer: Option<&'a str>,
}

/// What the stateless enrichers derived from one event. `None` where an enricher is off
/// or had nothing to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Enriched {
    /// Browser, OS and device.
    pub user_agent: Option<Arc<UserAgentInfo>>,
    /// Bot verdict.
    pub bot: Option<BotVerdict>,
    /// Location of the IP (looked up before any privacy transformation).
    pub geo: Option<Arc<GeoInfo>>,
    /// Referrer medium, source and term.
    pub referrer: Option<ReferrerInfo>,
    /// Campaign parameters of the page URL.
    pub campaign: Option<Campaign>,
    /// `ip` and `customer_id` as they may be stored, when privacy transformations are on.
    pub protected: Option<Protected>,
    /// The visitor, from the fields as stored (see [`VisitorKey::of`]).
    pub visitor: VisitorKey,
}

/// A user agent's parse and bot verdict, cached together.
#[derive(Debug)]
struct UserAgentAnalysis {
    info: Option<Arc<UserAgentInfo>>,
    bot: Option<BotVerdict>,
}

/// The stateless enrichers, chained, with their caches.
pub struct Enricher {
    user_agents: Option<UserAgentParser>,
    /// Whether the user-agent columns are wanted (the parser may run for bots only).
    emit_user_agent: bool,
    bots: Option<BotDetector>,
    ua_cache: LruCache<Box<str>, Arc<UserAgentAnalysis>>,
    geo: Option<GeoLocator>,
    geo_cache: LruCache<GeoRecord, Option<Arc<GeoInfo>>>,
    referrers: Option<ReferrerClassifier>,
    campaign: bool,
    privacy: Option<Privacy>,
}

impl Enricher {
    /// Loads the data of every enabled enricher. `geo_databases` are the files to use
    /// (the caller resolves the configured list against its data directory); geo lookup
    /// is off when there are none.
    pub fn new(
        config: &EnrichConfig,
        geo_databases: &[std::path::PathBuf],
    ) -> Result<Self, EnrichError> {
        // Bots need the parser's device family even when the user-agent columns are off.
        let user_agents = if config.user_agent.enabled || config.bots.enabled {
            Some(match &config.user_agent.regexes_path {
                Some(path) => UserAgentParser::from_file(path)?,
                None => UserAgentParser::bundled()?,
            })
        } else {
            None
        };
        let bots = if config.bots.enabled {
            Some(BotDetector::bundled()?)
        } else {
            None
        };
        let geo = if config.geo.enabled && !geo_databases.is_empty() {
            Some(GeoLocator::open(geo_databases)?)
        } else {
            None
        };
        let referrers = if config.referrer.enabled {
            Some(ReferrerClassifier::bundled(
                &config.referrer.internal_domains,
            )?)
        } else {
            None
        };
        let capacity = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        Ok(Enricher {
            user_agents,
            emit_user_agent: config.user_agent.enabled,
            bots,
            ua_cache: LruCache::new(capacity(config.user_agent.cache_entries)),
            geo,
            geo_cache: LruCache::new(capacity(config.geo.cache_entries)),
            referrers,
            campaign: config.campaign.enabled,
            privacy: Privacy::new(&config.privacy)?,
        })
    }

    /// Whether geo lookup is on (enabled and a database is open).
    pub fn has_geo(&self) -> bool {
        self.geo.is_some()
    }

    /// Runs every enabled stateless enricher over one event.
    pub fn enrich(&mut self, event: &EventFields<'_>) -> Enriched {
        let analysis = self.analyse_user_agent(event.user_agent);
        let geo = self.locate(event.ip);
        let campaign = if self.campaign {
            event.page.and_then(Campaign::from_page)
        } else {
            None
        };
        let referrer = self.referrers.as_ref().map(|classifier| {
            let mut info = classifier.classify(event.referrer, event.page);
            // Campaign parameters say "paid" even when the campaign columns are off.
            let paid = match &campaign {
                Some(c) => c.is_paid(),
                None if !self.campaign => event
                    .page
                    .and_then(Campaign::from_page)
                    .is_some_and(|c| c.is_paid()),
                None => false,
            };
            if paid && info.medium != Medium::Internal {
                info.medium = Medium::Paid;
            }
            info
        });
        let protected = self.protect(event.ip, event.customer_id);
        let visitor = match &protected {
            Some(p) => VisitorKey::of(p.customer_id, &p.ip, event.user_agent),
            None => VisitorKey::of(event.customer_id, event.ip, event.user_agent),
        };
        Enriched {
            user_agent: analysis.as_ref().and_then(|a| a.info.clone()),
            bot: analysis.as_ref().and_then(|a| a.bot.clone()),
            geo,
            referrer,
            campaign,
            protected,
            visitor,
        }
    }

    /// `ip` and `customer_id` as they may be stored; `None` when privacy is off.
    pub fn protect(&self, ip: &str, customer_id: Option<i64>) -> Option<Protected> {
        self.privacy.as_ref().map(|p| p.protect(ip, customer_id))
    }

    /// Parse and bot verdict of a user agent, from the cache when seen recently.
    fn analyse_user_agent(&mut self, user_agent: &str) -> Option<Arc<UserAgentAnalysis>> {
        let parser = self.user_agents.as_ref()?;
        if let Some(hit) = self.ua_cache.get(user_agent) {
            return Some(hit.clone());
        }
        let info = parser.parse(user_agent);
        let bot = self
            .bots
            .as_ref()
            .map(|b| b.detect(user_agent, Some(&info.device_family)));
        let analysis = Arc::new(UserAgentAnalysis {
            info: self.emit_user_agent.then(|| Arc::new(info)),
            bot,
        });
        self.ua_cache.put(user_agent.into(), analysis.clone());
        Some(analysis)
    }

    /// Location of an IP, decoded once per database record.
    fn locate(&mut self, ip: &str) -> Option<Arc<GeoInfo>> {
        let geo = self.geo.as_ref()?;
        let ip: IpAddr = ip.trim().parse().ok()?;
        let record = geo.record(ip)?;
        if let Some(hit) = self.geo_cache.get(&record) {
            return hit.clone();
        }
        let info = geo.decode(record, ip).map(Arc::new);
        self.geo_cache.put(record, info.clone());
        info
    }
}
