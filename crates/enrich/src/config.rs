//! `[enrich]`: which enrichers run and with what data. Every enricher can be switched off.

use std::path::PathBuf;

pub use clickstream_secret::Secret;
use serde::{Deserialize, Serialize};

/// Settings of every enricher (the `[enrich]` section of the configuration).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichConfig {
    /// Browser, OS and device from the user agent (uap-core regexes).
    pub user_agent: UserAgentConfig,
    /// Country, region, city and coordinates from the IP address (MaxMind-format files).
    pub geo: GeoConfig,
    /// Medium, source and search term from the referrer URL.
    pub referrer: ReferrerConfig,
    /// `utm_*` parameters and ad click ids from the page URL.
    pub campaign: CampaignConfig,
    /// Whether the user agent is a bot, and why.
    pub bots: BotsConfig,
    /// Sessions by inactivity gap in event time.
    pub sessions: SessionsConfig,
    /// Events whose `id` was already seen are kept out of `events`.
    pub duplicates: DuplicatesConfig,
    /// IP anonymisation and keyed pseudonymisation.
    pub privacy: PrivacyConfig,
}

/// User-agent parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserAgentConfig {
    /// Parse user agents.
    pub enabled: bool,
    /// A uap-core `regexes.yaml` to use instead of the bundled one.
    pub regexes_path: Option<PathBuf>,
    /// Distinct user agents whose parse (and bot verdict) is kept in memory.
    pub cache_entries: usize,
}

impl Default for UserAgentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            regexes_path: None,
            cache_entries: 20_000,
        }
    }
}

/// Geo-IP lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoConfig {
    /// Look IP addresses up.
    pub enabled: bool,
    /// MaxMind-format databases, asked in order until one knows the address: GeoIP2 or
    /// GeoLite2 City (nested layout), or DB-IP City Lite (nested, or the flat layout of
    /// the ip-location-db packages, which ships separate IPv4 and IPv6 files). Empty: the
    /// `*.mmdb` files in `<data_dir>/geoip/`, where `scripts/setup-geoip` puts DB-IP's.
    pub databases: Vec<PathBuf>,
    /// Database records whose decoded location is kept in memory, and recent addresses
    /// whose record is (as many of each).
    pub cache_entries: usize,
}

impl Default for GeoConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            databases: Vec::new(),
            cache_entries: 50_000,
        }
    }
}

/// Referrer classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReferrerConfig {
    /// Classify referrers.
    pub enabled: bool,
    /// The site's own domains: a referrer on one of them (or a subdomain) is `internal`.
    /// A referrer on the page's own host is always internal.
    pub internal_domains: Vec<String>,
}

impl Default for ReferrerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            internal_domains: Vec::new(),
        }
    }
}

/// Campaign parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignConfig {
    /// Read `utm_*`, `gclid`, `fbclid` and `msclkid` from the page URL.
    pub enabled: bool,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Bot detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotsConfig {
    /// Flag bots (isbot and crawler-user-agents patterns, uap-core's `Spider` device).
    pub enabled: bool,
}

impl Default for BotsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Sessionization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Assign sessions.
    pub enabled: bool,
    /// A session ends after this long without an event of its visitor, in event time.
    pub inactivity_gap_ms: u64,
    /// A visitor not seen for this long (in event time) is forgotten: their next session
    /// is numbered from 1 again. Also how far back the state is rebuilt from the lake.
    pub state_ttl_ms: u64,
    /// Most visitors kept in memory; beyond it the longest idle are forgotten first.
    pub max_visitors: usize,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            inactivity_gap_ms: 30 * 60 * 1000,
            state_ttl_ms: 24 * 60 * 60 * 1000,
            max_visitors: 1_000_000,
        }
    }
}

/// Duplicate detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DuplicatesConfig {
    /// Keep events whose `id` was already seen out of `events` (into `duplicates`).
    pub enabled: bool,
    /// How long an `id` is remembered, in log (arrival) time.
    pub window_ms: u64,
    /// Most ids remembered; beyond it the oldest are forgotten early.
    pub max_ids: usize,
}

impl Default for DuplicatesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_ms: 60 * 60 * 1000,
            max_ids: 5_000_000,
        }
    }
}

/// Privacy transformations, applied after the geo lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Zero the last octet of IPv4 addresses and the last 80 bits of IPv6 addresses.
    pub anonymize_ip: bool,
    /// Replace `customer_id` and `ip` by keyed HMAC-SHA256 pseudonyms (needs `secret`).
    pub pseudonymize: bool,
    /// Key of the pseudonyms, at least 16 bytes. Keep it out of files:
    /// `CLICKSTREAM_ENRICH__PRIVACY__SECRET`.
    pub secret: Option<Secret>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let config = PrivacyConfig {
            pseudonymize: true,
            secret: Some(Secret::new("hunter2-hunter2-hunter2")),
            ..PrivacyConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
        let json = serde_json::to_string(&config).expect("json");
        assert!(!json.contains("hunter2"), "{json}");
    }
}
