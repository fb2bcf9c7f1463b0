//! Enrichment: what a raw clickstream event says once its fields are interpreted.
//!
//! Two streams are served: the clickstream stream's events ([`EventFields`], enriched by
//! [`Enricher::enrich`]) and tracking calls after Segment's spec ([`CallFields`], enriched
//! by [`Enricher::enrich_call`]), whose user agent and IP may be absent, whose visitors
//! are known by string ids and whose campaign may be explicit.
//!
//! Each enricher is a pure function over an event plus lookup data loaded once:
//! [`UserAgentParser`] (uap-core), [`GeoLocator`] (MaxMind-format databases),
//! [`ReferrerClassifier`], [`Campaign::from_page`], [`BotDetector`] (isbot and
//! crawler-user-agents patterns) and [`Privacy`]. [`Enricher`] chains them for one event,
//! with caches in front of the expensive ones (user-agent parsing and bot matching are
//! cached per user-agent string, geo locations per database record and the record of
//! each recent address).
//!
//! Two enrichers need state across events and are driven by the processor, which also
//! rebuilds them from the lake at start: [`Deduplicator`] (event ids seen within a
//! window; string ids by their [`IdDigest`]) and [`Sessionizer`] (sessions by inactivity
//! gap in event time).

mod bots;
mod campaign;
mod config;
mod dedup;
mod error;
mod geo;
mod privacy;
mod referrer;
mod sessions;
mod uap;
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
pub use dedup::{Deduplicator, IdDigest, Sighting};
pub use error::EnrichError;
pub use geo::{GeoInfo, GeoLocator, GeoRecord};
pub use privacy::{MIN_SECRET_BYTES, Privacy, Protected, anonymize_ip};
pub use referrer::{Medium, ReferrerClassifier, ReferrerInfo};
pub use sessions::{
    RestoredSession, SessionAssignment, SessionInput, Sessionizer, VisitorId, VisitorKey,
};
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

/// The fields of a tracking call the enrichers read (Segment's spec). Server-side
/// libraries send no user agent or IP; visitors are known by string ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallFields<'a> {
    /// `context.userAgent`. `None`: no user-agent, device or bot verdict (an empty string
    /// is analysed as given, and is a bot).
    pub user_agent: Option<&'a str>,
    /// `context.ip`. `None`: no location, and no IP to protect.
    pub ip: Option<&'a str>,
    /// The visitor's ids as the call carries them, in order of preference (see
    /// [`VisitorKey::of_ids`]), e.g. `[Device(anonymous_id), User(user_id)]`. The
    /// enricher pseudonymises them, as privacy says, before keying the visitor.
    pub visitor_ids: &'a [VisitorId<'a>],
    /// `context.page.url`.
    pub page: Option<&'a str>,
    /// `context.page.referrer`.
    pub referrer: Option<&'a str>,
    /// `context.campaign`: wins, parameter by parameter, over the page URL's.
    pub campaign: Option<&'a Campaign>,
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
    /// Campaign parameters of the page URL (under a call's explicit ones).
    pub campaign: Option<Campaign>,
    /// `ip` and `customer_id` as they may be stored, when privacy transformations are on.
    /// For a call: `ip` is empty when there is none to store, `customer_id` is `None`,
    /// and the ids are protected with [`Privacy::protect_id`] (see [`Enricher::privacy`]).
    pub protected: Option<Protected>,
    /// The visitor, from the fields as stored (see [`VisitorKey::of`] and
    /// [`VisitorKey::of_ids`]).
    pub visitor: VisitorKey,
}

/// What the enrichers derive from an event before its visitor and privacy.
struct Derived {
    user_agent: Option<Arc<UserAgentInfo>>,
    bot: Option<BotVerdict>,
    geo: Option<Arc<GeoInfo>>,
    referrer: Option<ReferrerInfo>,
    campaign: Option<Campaign>,
}

impl Derived {
    fn with(self, protected: Option<Protected>, visitor: VisitorKey) -> Enriched {
        Enriched {
            user_agent: self.user_agent,
            bot: self.bot,
            geo: self.geo,
            referrer: self.referrer,
            campaign: self.campaign,
            protected,
            visitor,
        }
    }
}

/// A user agent's parse and bot verdict, cached together.
#[derive(Debug)]
struct UserAgentAnalysis {
    info: Option<Arc<UserAgentInfo>>,
    bot: Option<BotVerdict>,
}

/// The enrichers' lookup data: the user-agent parser, the bot patterns, the geo databases
/// and the referrer lists. Read-only once loaded, so one copy serves every [`Enricher`]
/// of a process (one per stream) made with the same configuration.
pub struct EnricherData {
    user_agents: Option<UserAgentParser>,
    bots: Option<BotDetector>,
    geo: Option<GeoLocator>,
    referrers: Option<ReferrerClassifier>,
}

impl EnricherData {
    /// Loads the data of every enabled enricher. `geo_databases` are the files to use
    /// (the caller resolves the configured list against its data directory); geo lookup
    /// is off when there are none.
    pub fn load(
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
        Ok(EnricherData {
            user_agents,
            bots,
            geo,
            referrers,
        })
    }
}

/// The stateless enrichers, chained, with their caches.
pub struct Enricher {
    data: Arc<EnricherData>,
    /// Whether the user-agent columns are wanted (the parser may run for bots only).
    emit_user_agent: bool,
    ua_cache: LruCache<Box<str>, Arc<UserAgentAnalysis>>,
    geo_cache: LruCache<GeoRecord, Option<Arc<GeoInfo>>>,
    /// The record of each recent address (`None`: in no database), so a visitor's next
    /// events skip the databases' tree walk.
    ip_cache: LruCache<IpAddr, Option<GeoRecord>>,
    campaign: bool,
    privacy: Option<Privacy>,
}

impl Enricher {
    /// Loads the data of every enabled enricher (see [`EnricherData::load`]) for an
    /// enricher of its own.
    pub fn new(
        config: &EnrichConfig,
        geo_databases: &[std::path::PathBuf],
    ) -> Result<Self, EnrichError> {
        Self::with_data(config, Arc::new(EnricherData::load(config, geo_databases)?))
    }

    /// An enricher over `data` loaded for the same `config` (shared with others), with
    /// caches of its own.
    pub fn with_data(config: &EnrichConfig, data: Arc<EnricherData>) -> Result<Self, EnrichError> {
        let capacity = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        Ok(Enricher {
            data,
            emit_user_agent: config.user_agent.enabled,
            ua_cache: LruCache::new(capacity(config.user_agent.cache_entries)),
            geo_cache: LruCache::new(capacity(config.geo.cache_entries)),
            ip_cache: LruCache::new(capacity(config.geo.cache_entries)),
            campaign: config.campaign.enabled,
            privacy: Privacy::new(&config.privacy)?,
        })
    }

    /// uap-core patterns the shared parser has compiled so far (it compiles each the
    /// first time a user agent needs it); `None` when no user agent is parsed.
    pub fn user_agent_patterns_compiled(&self) -> Option<usize> {
        let parser = self.data.user_agents.as_ref()?;
        Some(parser.patterns_compiled().0)
    }

    /// Whether geo lookup is on (enabled and a database is open).
    pub fn has_geo(&self) -> bool {
        self.data.geo.is_some()
    }

    /// Runs every enabled stateless enricher over one event of the clickstream stream.
    pub fn enrich(&mut self, event: &EventFields<'_>) -> Enriched {
        let derived = self.derive(&CallFields {
            user_agent: Some(event.user_agent),
            ip: Some(event.ip),
            visitor_ids: &[],
            page: event.page,
            referrer: event.referrer,
            campaign: None,
        });
        let protected = self.protect(event.ip, event.customer_id);
        let visitor = match &protected {
            Some(p) => VisitorKey::of(p.customer_id, &p.ip, event.user_agent),
            None => VisitorKey::of(event.customer_id, event.ip, event.user_agent),
        };
        derived.with(protected, visitor)
    }

    /// Runs every enabled stateless enricher over one tracking call.
    pub fn enrich_call(&mut self, call: &CallFields<'_>) -> Enriched {
        let derived = self.derive(call);
        let protected = self.privacy.as_ref().map(|p| Protected {
            ip: p.protect_ip(call.ip).unwrap_or_default(),
            customer_id: None,
        });
        let ip = match &protected {
            Some(p) => Some(p.ip.as_str()).filter(|ip| !ip.is_empty()),
            None => call.ip,
        };
        let visitor = self.call_visitor(call.visitor_ids, ip, call.user_agent);
        derived.with(protected, visitor)
    }

    /// `ip` and `customer_id` as they may be stored; `None` when privacy is off.
    pub fn protect(&self, ip: &str, customer_id: Option<i64>) -> Option<Protected> {
        self.privacy.as_ref().map(|p| p.protect(ip, customer_id))
    }

    /// The privacy transformations; `None` when privacy is off (fields are stored as
    /// they come).
    pub fn privacy(&self) -> Option<&Privacy> {
        self.privacy.as_ref()
    }

    /// User agent, bots, geo, referrer and campaign (the visitor ids are not read).
    fn derive(&mut self, call: &CallFields<'_>) -> Derived {
        let analysis = call.user_agent.and_then(|ua| self.analyse_user_agent(ua));
        let geo = call.ip.and_then(|ip| self.locate(ip));
        // Campaign parameters say "paid" even when the campaign columns are off.
        let found = if self.campaign || self.data.referrers.is_some() {
            let from_page = call.page.and_then(Campaign::from_page);
            match call.campaign {
                Some(explicit) => explicit.clone().or(from_page),
                None => from_page,
            }
        } else {
            None
        };
        let paid = found.as_ref().is_some_and(Campaign::is_paid);
        let referrer = self.data.referrers.as_ref().map(|classifier| {
            let mut info = classifier.classify(call.referrer, call.page);
            if paid && info.medium != Medium::Internal {
                info.medium = Medium::Paid;
            }
            info
        });
        Derived {
            user_agent: analysis.as_ref().and_then(|a| a.info.clone()),
            bot: analysis.as_ref().and_then(|a| a.bot.clone()),
            geo,
            referrer,
            campaign: found.filter(|_| self.campaign),
        }
    }

    /// The visitor of a call, from its first present id as stored (its pseudonym when
    /// pseudonymising), else from the stored IP and user agent.
    fn call_visitor(
        &self,
        ids: &[VisitorId<'_>],
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> VisitorKey {
        let first = ids.iter().copied().find(|id| id.value().is_some());
        let pseudonym = first.and_then(|id| {
            let value = id.value()?;
            self.privacy.as_ref()?.pseudonym(id.domain(), value)
        });
        match (first, pseudonym.as_deref()) {
            (Some(id), Some(stored)) => {
                VisitorKey::of_ids(&[id.with(Some(stored))], ip, user_agent)
            }
            _ => VisitorKey::of_ids(ids, ip, user_agent),
        }
    }

    /// Parse and bot verdict of a user agent, from the cache when seen recently.
    fn analyse_user_agent(&mut self, user_agent: &str) -> Option<Arc<UserAgentAnalysis>> {
        let parser = self.data.user_agents.as_ref()?;
        if let Some(hit) = self.ua_cache.get(user_agent) {
            return Some(hit.clone());
        }
        let info = parser.parse(user_agent);
        let bot = self
            .data
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
        let geo = self.data.geo.as_ref()?;
        let ip: IpAddr = ip.trim().parse().ok()?;
        let record = match self.ip_cache.get(&ip) {
            Some(record) => *record,
            None => {
                let record = geo.record(ip);
                self.ip_cache.put(ip, record);
                record
            }
        }?;
        if let Some(hit) = self.geo_cache.get(&record) {
            return hit.clone();
        }
        let info = geo.decode(record, ip).map(Arc::new);
        self.geo_cache.put(record, info.clone());
        info
    }
}
