//! How a session arrives: organic search, paid search, social, email campaigns (with UTM
//! parameters), links from other sites, or direct. Decides the landing page's URL
//! parameters and the `referrer` of the first event.

use rand::Rng;

use super::catalog::{CAMPAIGNS, Page};
use super::random::{chance, token, weighted};

/// Where a visit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Organic,
    Paid,
    Social,
    Email,
    Referral,
    Direct,
}

const SOURCES: &[(Source, f64)] = &[
    (Source::Organic, 34.0),
    (Source::Direct, 24.0),
    (Source::Email, 12.0),
    (Source::Paid, 11.0),
    (Source::Social, 13.0),
    (Source::Referral, 6.0),
];

const SEARCH_ENGINES: &[(&str, f64)] = &[
    ("https://www.google.com/", 78.0),
    ("https://www.bing.com/", 8.0),
    ("https://duckduckgo.com/", 5.0),
    ("https://www.ecosia.org/", 3.0),
    ("https://search.yahoo.com/", 2.0),
    ("https://yandex.ru/", 1.0),
];

const SOCIAL: &[(&str, &str, f64)] = &[
    // (referrer, utm_source when the post was tagged)
    ("https://l.facebook.com/", "facebook", 30.0),
    ("https://www.instagram.com/", "instagram", 25.0),
    ("https://t.co/", "twitter", 12.0),
    ("https://www.pinterest.com/", "pinterest", 10.0),
    ("https://www.reddit.com/r/running/", "reddit", 8.0),
    ("https://www.tiktok.com/", "tiktok", 10.0),
    ("https://www.youtube.com/", "youtube", 5.0),
];

const REFERRING_SITES: &[&str] = &[
    "https://www.runnersworld.com/gear/a20865766/best-running-shoes/",
    "https://www.outdoorgearlab.com/topics/shoes-and-boots",
    "https://www.wirecutter.com/reviews/best-rain-jacket/",
    "https://forum.xcc-runners.org/t/which-trail-shoes/1832",
];

/// The landing of a session: the landing page URL and the referrer.
#[derive(Debug, Clone)]
pub(crate) struct Landing {
    pub url: String,
    pub referrer: Option<String>,
}

/// Picks a source and builds the landing URL for `page`, with a query for organic
/// search landings (the seed's `https://www.google.com/search?q=shoes`).
pub(crate) fn landing(rng: &mut impl Rng, page: &Page, query: &str, day: u32) -> Landing {
    let source = *weighted(rng, SOURCES);
    let base = page.url();
    let campaign = CAMPAIGNS[rng.random_range(0..CAMPAIGNS.len())];
    let (url, referrer) = match source {
        Source::Organic => {
            let engine = *weighted(rng, SEARCH_ENGINES);
            // Engines mostly strip the query from the referrer now; some still send it.
            let referrer = if chance(rng, 0.15) {
                format!("{engine}search?q={}", super::catalog::form_encode(query))
            } else {
                engine.to_string()
            };
            (base, Some(referrer))
        }
        Source::Paid => {
            let url = with_params(
                &base,
                &[
                    ("utm_source", "google"),
                    ("utm_medium", "cpc"),
                    ("utm_campaign", campaign),
                    ("gclid", &token(rng, 22)),
                ],
            );
            (url, Some("https://www.google.com/".to_string()))
        }
        Source::Social => {
            let (referrer, network, _) = SOCIAL[weighted_index(rng, SOCIAL.iter().map(|s| s.2))];
            let referrer = if referrer == "https://t.co/" {
                format!("{referrer}{}", token(rng, 10))
            } else {
                referrer.to_string()
            };
            let url = if chance(rng, 0.6) {
                with_params(
                    &base,
                    &[
                        ("utm_source", network),
                        ("utm_medium", "social"),
                        ("utm_campaign", campaign),
                    ],
                )
            } else {
                base
            };
            (url, Some(referrer))
        }
        Source::Email => {
            // Mail clients send no referrer; the campaign is in the URL. Newsletters go out
            // weekly, so the campaign carries the week.
            let edition = format!("{campaign}_w{}", day / 7 + 1);
            let url = with_params(
                &base,
                &[
                    ("utm_source", "newsletter"),
                    ("utm_medium", "email"),
                    ("utm_campaign", &edition),
                ],
            );
            (url, None)
        }
        Source::Referral => (
            base,
            Some(REFERRING_SITES[rng.random_range(0..REFERRING_SITES.len())].to_string()),
        ),
        Source::Direct => (base, None),
    };
    Landing { url, referrer }
}

fn weighted_index(rng: &mut impl Rng, weights: impl Iterator<Item = f64>) -> usize {
    let indexed: Vec<(usize, f64)> = weights.enumerate().collect();
    *weighted(rng, &indexed)
}

/// Appends query parameters to a URL that may already have some.
fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_string();
    for (i, (key, value)) in params.iter().enumerate() {
        let separator = if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        };
        out.push(separator);
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn email_landings_carry_utm_parameters_and_no_referrer() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut seen = 0;
        for _ in 0..500 {
            let landing = landing(&mut rng, &Page::Category(1), "boots", 10);
            if landing.url.contains("utm_medium=email") {
                seen += 1;
                assert!(landing.referrer.is_none());
                assert!(
                    landing
                        .url
                        .contains("?utm_source=newsletter&utm_medium=email&utm_campaign="),
                    "{}",
                    landing.url
                );
                assert!(landing.url.ends_with("_w2"), "{}", landing.url);
            }
        }
        assert!(seen > 20);
    }

    #[test]
    fn params_append_to_an_existing_query() {
        assert_eq!(
            with_params("https://x/search?q=a", &[("utm_source", "s")]),
            "https://x/search?q=a&utm_source=s"
        );
    }
}
