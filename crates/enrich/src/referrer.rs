//! Referrer classification: medium (search, social, email, paid, internal, direct,
//! unknown), source (`Google`, `Facebook`...) and search term, from our own list of major
//! search engines, social networks, webmail and ad networks (`data/referrers.txt`) and the
//! site's own domains.

use std::collections::HashMap;
use std::sync::Arc;

use crate::EnrichError;
use crate::url_parts::{host_of, query_and_fragment};

const BUNDLED_REFERRERS: &str = include_str!("../data/referrers.txt");

/// How a visitor came to the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Medium {
    /// A search engine.
    Search,
    /// A social network or messenger.
    Social,
    /// A webmail client.
    Email,
    /// An ad (ad network referrer, click id or paid `utm_medium` on the page URL).
    Paid,
    /// The site itself.
    Internal,
    /// No referrer.
    Direct,
    /// Another site, or a referrer that is not a web URL.
    Unknown,
}

impl Medium {
    /// The lowercase name stored in the lake.
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Search => "search",
            Medium::Social => "social",
            Medium::Email => "email",
            Medium::Paid => "paid",
            Medium::Internal => "internal",
            Medium::Direct => "direct",
            Medium::Unknown => "unknown",
        }
    }

    fn parse(name: &str) -> Option<Medium> {
        Some(match name {
            "search" => Medium::Search,
            "social" => Medium::Social,
            "email" => Medium::Email,
            "paid" => Medium::Paid,
            _ => return None,
        })
    }
}

/// What a referrer says about where the visitor came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerInfo {
    /// The kind of place.
    pub medium: Medium,
    /// Which one: `Google`, `Facebook`, `Gmail` (known places only).
    pub source: Option<Arc<str>>,
    /// What was searched for, when a search engine still says.
    pub term: Option<String>,
}

struct Place {
    medium: Medium,
    source: Arc<str>,
    term_params: Vec<String>,
}

/// The classification data, loaded once.
pub struct ReferrerClassifier {
    /// Exact domains (matched with their subdomains).
    domains: HashMap<String, Arc<Place>>,
    /// `name.*` entries, by `name`.
    wildcards: HashMap<String, Arc<Place>>,
    internal: Vec<String>,
}

impl ReferrerClassifier {
    /// The bundled data, with the site's own domains.
    pub fn bundled(internal_domains: &[String]) -> Result<Self, EnrichError> {
        Self::from_data(BUNDLED_REFERRERS, internal_domains)
    }

    fn from_data(data: &str, internal_domains: &[String]) -> Result<Self, EnrichError> {
        let mut domains = HashMap::new();
        let mut wildcards = HashMap::new();
        for (number, line) in data.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |detail: String| EnrichError::ReferrerData {
                line: number + 1,
                detail,
            };
            let fields: Vec<&str> = line.split('|').map(str::trim).collect();
            let [medium, source, params, hosts] = fields[..] else {
                return Err(error(format!("expected 4 fields, found {}", fields.len())));
            };
            let medium =
                Medium::parse(medium).ok_or_else(|| error(format!("medium {medium:?}")))?;
            let place = Arc::new(Place {
                medium,
                source: Arc::from(source),
                term_params: match params {
                    "-" => Vec::new(),
                    list => list.split(',').map(|p| p.trim().to_string()).collect(),
                },
            });
            for host in hosts.split_whitespace() {
                let host = host.to_ascii_lowercase();
                let target = match host.strip_suffix(".*") {
                    Some(name) => wildcards.insert(name.to_string(), place.clone()),
                    None => domains.insert(host.clone(), place.clone()),
                };
                if target.is_some() {
                    return Err(error(format!("domain {host} listed twice")));
                }
            }
        }
        let internal = internal_domains
            .iter()
            .map(|d| d.trim().trim_start_matches("*.").to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        Ok(ReferrerClassifier {
            domains,
            wildcards,
            internal,
        })
    }

    /// Classifies `referrer` for a visit to `page`.
    pub fn classify(&self, referrer: Option<&str>, page: Option<&str>) -> ReferrerInfo {
        let unsourced = |medium| ReferrerInfo {
            medium,
            source: None,
            term: None,
        };
        let Some(referrer) = referrer.map(str::trim).filter(|r| !r.is_empty()) else {
            return unsourced(Medium::Direct);
        };
        let Some(host) = host_of(referrer) else {
            return unsourced(Medium::Unknown);
        };
        let page_host = page.and_then(host_of);
        if page_host.as_deref() == Some(host.as_ref())
            || self.internal.iter().any(|d| is_same_or_subdomain(&host, d))
        {
            return unsourced(Medium::Internal);
        }
        let Some(place) = self.place(&host) else {
            return unsourced(Medium::Unknown);
        };
        let term = if place.term_params.is_empty() {
            None
        } else {
            search_term(referrer, &place.term_params)
        };
        ReferrerInfo {
            medium: place.medium,
            source: Some(place.source.clone()),
            term,
        }
    }

    /// The most specific entry for `host`: exact domains from the longest suffix, then
    /// `name.*` entries.
    fn place(&self, host: &str) -> Option<&Arc<Place>> {
        let mut suffix = host;
        loop {
            if let Some(place) = self.domains.get(suffix) {
                return Some(place);
            }
            match suffix.split_once('.') {
                Some((_, rest)) => suffix = rest,
                None => break,
            }
        }
        let labels: Vec<&str> = host.split('.').collect();
        for (i, label) in labels.iter().enumerate() {
            let rest = &labels[i + 1..];
            // `name.*` is a name followed by a TLD or a two-part public suffix (co.uk).
            let tld_like = matches!(rest.len(), 1 | 2)
                && rest.iter().all(|l| (2..=3).contains(&l.len()))
                && rest.last().is_some_and(|l| l.len() == 2 || rest.len() == 1);
            if tld_like && let Some(place) = self.wildcards.get(*label) {
                return Some(place);
            }
        }
        None
    }
}

fn is_same_or_subdomain(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// The first non-empty value of one of `params` in the referrer's query or fragment.
fn search_term(referrer: &str, params: &[String]) -> Option<String> {
    let (query, fragment) = query_and_fragment(referrer);
    for part in [query, fragment].into_iter().flatten() {
        for wanted in params {
            let found = url::form_urlencoded::parse(part.as_bytes())
                .find(|(name, value)| name == wanted.as_str() && !value.trim().is_empty());
            if let Some((_, value)) = found {
                return Some(value.trim().to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_data_loads() {
        let classifier = ReferrerClassifier::bundled(&[]).expect("bundled data");
        assert!(
            classifier.domains.len() > 100,
            "{}",
            classifier.domains.len()
        );
    }

    #[test]
    fn wildcards_only_match_tld_like_suffixes() {
        let classifier = ReferrerClassifier::bundled(&[]).expect("bundled data");
        assert!(classifier.place("www.google.co.uk").is_some());
        assert!(classifier.place("google.de").is_some());
        assert!(classifier.place("www.google.com.br").is_some());
        assert!(classifier.place("google.example.org").is_none());
        assert!(classifier.place("notgoogle.com").is_none());
    }

    #[test]
    fn malformed_data_is_an_error_with_its_line() {
        let err = ReferrerClassifier::from_data("# c\nsearch | X | q\n", &[])
            .err()
            .expect("error");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(ReferrerClassifier::from_data("bogus | X | - | x.com\n", &[]).is_err());
    }
}
