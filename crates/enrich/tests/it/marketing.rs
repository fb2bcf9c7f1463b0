//! Referrer classification and campaign parameters on real URLs.
#![allow(clippy::type_complexity)] // tables of expected values read best inline

use clickstream_enrich::{Campaign, Medium, ReferrerClassifier};

#[test]
fn referrers_are_classified() {
    let classifier =
        ReferrerClassifier::bundled(&["xcc-webshop.com".to_string(), "*.acme.example".to_string()])
            .expect("data");
    let page = Some("https://shop.example.net/product/3221");
    // (referrer, medium, source, term)
    let cases: &[(Option<&str>, Medium, Option<&str>, Option<&str>)] = &[
        (
            Some("https://www.google.com/search?q=running+shoes&hl=en"),
            Medium::Search,
            Some("Google"),
            Some("running shoes"),
        ),
        (
            Some("https://www.google.co.uk/"),
            Medium::Search,
            Some("Google"),
            None,
        ),
        (
            Some("https://www.google.com.br/url?sa=t&q=t%C3%AAnis"),
            Medium::Search,
            Some("Google"),
            Some("tênis"),
        ),
        (
            Some("https://www.bing.com/search?q=trail+shoes&form=QBLH"),
            Medium::Search,
            Some("Bing"),
            Some("trail shoes"),
        ),
        (
            Some("https://duckduckgo.com/?q=shoes&t=h_"),
            Medium::Search,
            Some("DuckDuckGo"),
            Some("shoes"),
        ),
        (
            Some("https://search.yahoo.com/search?p=sneakers"),
            Medium::Search,
            Some("Yahoo!"),
            Some("sneakers"),
        ),
        (
            Some("https://www.baidu.com/s?wd=%E9%9E%8B"),
            Medium::Search,
            Some("Baidu"),
            Some("鞋"),
        ),
        (
            Some("https://yandex.ru/search/?text=кроссовки"),
            Medium::Search,
            Some("Yandex"),
            Some("кроссовки"),
        ),
        (
            Some("https://www.ecosia.org/search?method=index&q=boots"),
            Medium::Search,
            Some("Ecosia"),
            Some("boots"),
        ),
        (
            Some("https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example.net%2F"),
            Medium::Social,
            Some("Facebook"),
            None,
        ),
        (
            Some("https://t.co/AbC123"),
            Medium::Social,
            Some("X (Twitter)"),
            None,
        ),
        (
            Some("https://www.linkedin.com/feed/"),
            Medium::Social,
            Some("LinkedIn"),
            None,
        ),
        (
            Some("https://out.reddit.com/t3_abc"),
            Medium::Social,
            Some("Reddit"),
            None,
        ),
        (
            Some("https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
            Medium::Social,
            Some("YouTube"),
            None,
        ),
        (
            Some("https://mail.google.com/mail/u/0/"),
            Medium::Email,
            Some("Gmail"),
            None,
        ),
        (
            Some("https://outlook.live.com/mail/0/inbox"),
            Medium::Email,
            Some("Outlook.com"),
            None,
        ),
        (
            Some("https://mail.yahoo.com/d/folders/1"),
            Medium::Email,
            Some("Yahoo! Mail"),
            None,
        ),
        (
            Some("https://googleads.g.doubleclick.net/pagead/ads"),
            Medium::Paid,
            Some("Google Ads"),
            None,
        ),
        (
            Some("https://xcc-webshop.com/cart"),
            Medium::Internal,
            None,
            None,
        ),
        (
            Some("https://www.xcc-webshop.com/"),
            Medium::Internal,
            None,
            None,
        ),
        (
            Some("https://blog.acme.example/post"),
            Medium::Internal,
            None,
            None,
        ),
        (
            Some("https://shop.example.net/"),
            Medium::Internal,
            None,
            None,
        ),
        (
            Some("https://news.ycombinator.com/item?id=1"),
            Medium::Social,
            Some("Hacker News"),
            None,
        ),
        (
            Some("https://some-blog.example.org/best-shoes"),
            Medium::Unknown,
            None,
            None,
        ),
        (
            Some("android-app://com.google.android.gm/"),
            Medium::Unknown,
            None,
            None,
        ),
        (Some(""), Medium::Direct, None, None),
        (None, Medium::Direct, None, None),
    ];
    for (referrer, medium, source, term) in cases {
        let info = classifier.classify(*referrer, page);
        assert_eq!(info.medium, *medium, "{referrer:?}");
        assert_eq!(info.source.as_deref(), *source, "{referrer:?}");
        assert_eq!(info.term.as_deref(), *term, "{referrer:?}");
    }
}

#[test]
fn campaign_parameters_come_from_the_page_url() {
    let page = "https://xcc-webshop.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring%20sale&utm_term=shoes&utm_content=hero+banner";
    let campaign = Campaign::from_page(page).expect("campaign");
    assert_eq!(campaign.source.as_deref(), Some("newsletter"));
    assert_eq!(campaign.medium.as_deref(), Some("email"));
    assert_eq!(campaign.name.as_deref(), Some("spring sale"));
    assert_eq!(campaign.term.as_deref(), Some("shoes"));
    assert_eq!(campaign.content.as_deref(), Some("hero banner"));
    assert!(!campaign.is_paid());

    let cases: &[(&str, Option<(&str, &str)>, bool)] = &[
        (
            "https://xcc-webshop.com/p/1?gclid=EAIaIQobChMI",
            Some(("gclid", "EAIaIQobChMI")),
            true,
        ),
        (
            "https://xcc-webshop.com/p/1?fbclid=IwAR2x&utm_source=facebook",
            Some(("fbclid", "IwAR2x")),
            false,
        ),
        (
            "https://xcc-webshop.com/p/1?msclkid=5f1c&UTM_MEDIUM=cpc",
            Some(("msclkid", "5f1c")),
            true,
        ),
        (
            "https://xcc-webshop.com/p/1?utm_source=google&utm_medium=paid_search",
            None,
            true,
        ),
        (
            "https://xcc-webshop.com/p/1?utm_source=&utm_medium=",
            None,
            false,
        ),
        (
            "https://xcc-webshop.com/p/1#utm_source=fragment",
            None,
            false,
        ),
        ("https://xcc-webshop.com/search?q=shoes", None, false),
    ];
    for (page, click_id, paid) in cases {
        let campaign = Campaign::from_page(page);
        let found = campaign.as_ref().and_then(|c| {
            [
                ("gclid", &c.gclid),
                ("fbclid", &c.fbclid),
                ("msclkid", &c.msclkid),
            ]
            .into_iter()
            .find_map(|(name, v)| v.as_deref().map(|v| (name, v)))
        });
        assert_eq!(found, *click_id, "{page}");
        assert_eq!(
            campaign.as_ref().is_some_and(Campaign::is_paid),
            *paid,
            "{page}"
        );
    }
    assert_eq!(Campaign::from_page("https://xcc-webshop.com/"), None);
}
