//! Campaign attribution from the page URL: the `utm_*` parameters and the click ids of
//! Google (`gclid`), Meta (`fbclid`) and Microsoft (`msclkid`) ads; and from an explicit
//! campaign an event may carry (Segment's `context.campaign`), which wins over the URL's.

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

    /// `self`'s parameters, each falling back to `fallback`'s where `self` has none (an
    /// explicit campaign over the page URL's: `explicit.or(from_page)`). Values are trimmed
    /// and a blank one counts as none, as in a URL. `None` when neither has a parameter.
    pub fn or(self, fallback: Option<Campaign>) -> Option<Campaign> {
        let fallback = fallback.unwrap_or_default();
        let pick = |own: Option<String>, other: Option<String>| {
            own.map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .or(other)
        };
        let merged = Campaign {
            source: pick(self.source, fallback.source),
            medium: pick(self.medium, fallback.medium),
            name: pick(self.name, fallback.name),
            term: pick(self.term, fallback.term),
            content: pick(self.content, fallback.content),
            gclid: pick(self.gclid, fallback.gclid),
            fbclid: pick(self.fbclid, fallback.fbclid),
            msclkid: pick(self.msclkid, fallback.msclkid),
        };
        (merged != Campaign::default()).then_some(merged)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Option<String> {
        Some(value.to_string())
    }

    #[test]
    fn explicit_parameters_win_field_by_field() {
        let page = Campaign::from_page(
            "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=url&gclid=g1",
        );
        let explicit = Campaign {
            name: text(" spring "),
            medium: text("email"),
            source: text("  "),
            ..Campaign::default()
        };
        let merged = explicit.or(page).expect("campaign");
        assert_eq!(merged.name.as_deref(), Some("spring"));
        assert_eq!(merged.medium.as_deref(), Some("email"));
        // Blank explicit values do not hide the URL's.
        assert_eq!(merged.source.as_deref(), Some("google"));
        assert_eq!(merged.gclid.as_deref(), Some("g1"));
        assert_eq!(merged.term, None);
    }

    #[test]
    fn either_side_alone_is_kept_and_nothing_is_none() {
        let explicit = Campaign {
            source: text("newsletter"),
            ..Campaign::default()
        };
        assert_eq!(explicit.clone().or(None), Some(explicit.clone()));
        let page = Campaign::from_page("https://shop.example/?utm_term=shoes");
        assert_eq!(Campaign::default().or(page.clone()), page);
        assert_eq!(Campaign::default().or(None), None);
        let blank = Campaign {
            name: text(""),
            ..Campaign::default()
        };
        assert_eq!(blank.or(None), None);
    }
}
