//! Bot detection on real user agents: crawler-user-agents' own examples, well-known bots,
//! and browsers from uap-core's test cases that must not be flagged.

use clickstream_enrich::{BotDetector, UserAgentParser};

#[test]
fn crawler_user_agents_examples_are_bots() {
    let detector = BotDetector::bundled().expect("lists");
    let examples: Vec<&str> = include_str!("../data/crawler_sample.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(examples.len() > 100, "{}", examples.len());
    for ua in examples {
        let verdict = detector.detect(ua, None);
        assert!(verdict.is_bot, "{ua}");
        assert!(verdict.reason.is_some(), "{ua}");
    }
}

#[test]
fn well_known_bots_and_their_reasons() {
    let detector = BotDetector::bundled().expect("lists");
    let parser = UserAgentParser::bundled().expect("regexes");
    let cases = [
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "isbot:",
        ),
        (
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "isbot:",
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            "isbot:",
        ),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "isbot:",
        ),
        ("curl/8.5.0", "isbot:"),
        ("python-requests/2.31.0", "isbot:"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.71 Safari/537.36",
            "isbot:",
        ),
        (
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            "isbot:",
        ),
    ];
    for (ua, reason) in cases {
        let info = parser.parse(ua);
        let verdict = detector.detect(ua, Some(&info.device_family));
        assert!(verdict.is_bot, "{ua}");
        let why = verdict.reason.expect("reason");
        assert!(why.starts_with(reason), "{ua}: {why}");
    }
}

#[test]
fn browsers_are_not_bots() {
    let detector = BotDetector::bundled().expect("lists");
    let parser = UserAgentParser::bundled().expect("regexes");
    let browsers = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/445.0.0.34.118;]",
    ];
    for ua in browsers {
        let info = parser.parse(ua);
        let verdict = detector.detect(ua, Some(&info.device_family));
        assert!(!verdict.is_bot, "{ua}: {:?}", verdict.reason);
    }
}

/// The patterns read as JavaScript reads isbot's (no `u` flag): case folds ASCII letters
/// only, so a long s (U+017F) is not an `s`, and a bot's name in capitals still is.
#[test]
fn patterns_fold_case_as_javascript_does() {
    let detector = BotDetector::bundled().expect("lists");
    assert!(detector.detect("SomeSPIDER/1.0", None).is_bot);
    let long_s = "Mozilla/5.0 (X11; Linux x86_64) \u{17f}pider-like Gecko/20100101 Firefox/133.0";
    assert!(!detector.detect(long_s, None).is_bot, "{long_s}");
}
