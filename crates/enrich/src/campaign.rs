//! Campaign attribution from the page URL: the `utm_*` parameters and the click ids of
//! Google (`gclid`), Meta (`fbclid`) and Microsoft (`msclkid`) ads.

use crate::url_parts::query_and_fragment;

/// The campaign parameters of a page URL. Parameter names are matched without regard to
/// case; values are percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Campaign {
    /// `utm_source`: who sent the traffic (`newsletter`, `google`).
    pub source: Option<String>,
    /// `utm_medium`: the channel (`email`, `cpc`).
    pub medium: Option<String>,
    /// `utm_campaign`: the campaign name.
    pub name: Option<String>,
    /// `utm_term`: the paid keyword.
    pub term: Option<String>,
    /// `utm_content`: which link or creative.
    pub content: Option<String>,
    /// Google Ads click id.
    pub gclid: Option<String>,
    /// Meta (Facebook, Instagram) click id.
    pub fbclid: Option<String>,
    /// Microsoft Advertising click id.
    pub msclkid: Option<String>,
}

impl Campaign {
    /// The campaign parameters of `page`; `None` when it has none.
    pub fn from_page(page: &str) -> Option<Campaign> {
        let (query, _) = query_and_fragment(page);
        let query = query?;
        // Most pages carry no campaign: skip decoding their query.
        if !contains_ignore_case(query, "utm_") && !contains_ignore_case(query, "clid") {
            return None;
        }
        let mut campaign = Campaign::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.to_ascii_lowercase().as_str() {
                "utm_source" => &mut campaign.source,
                "utm_medium" => &mut campaign.medium,
                "utm_campaign" => &mut campaign.name,
                "utm_term" => &mut campaign.term,
                "utm_content" => &mut campaign.content,
                "gclid" => &mut campaign.gclid,
                "fbclid" => &mut campaign.fbclid,
                "msclkid" => &mut campaign.msclkid,
                _ => continue,
            };
            let value = value.trim();
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.to_string());
            }
        }
        (campaign != Campaign::default()).then_some(campaign)
    }

    /// Whether the visit came from a paid ad: an ad click id, or a `utm_medium` that
    /// names paid traffic (`cpc`, `ppc`, `paid…`, `display`, `cpm`, `banner`).
    pub fn is_paid(&self) -> bool {
        self.gclid.is_some()
            || self.msclkid.is_some()
            || self.medium.as_deref().is_some_and(|m| {
                let m = m.to_ascii_lowercase();
                matches!(
                    m.as_str(),
                    "cpc" | "ppc" | "cpm" | "cpv" | "display" | "banner"
                ) || m.starts_with("paid")
            })
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}
