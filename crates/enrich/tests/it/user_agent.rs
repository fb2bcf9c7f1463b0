//! uap-core's own test cases (a sample of `test_ua.yaml`, `test_os.yaml` and
//! `test_device.yaml` from the same snapshot as the bundled regexes).

use clickstream_enrich::UserAgentParser;
use serde::Deserialize;

#[derive(Deserialize)]
struct Sample {
    test_ua: Vec<Case>,
    test_os: Vec<Case>,
    test_device: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    user_agent_string: String,
    family: String,
    major: Option<String>,
    minor: Option<String>,
    patch: Option<String>,
    patch_minor: Option<String>,
    brand: Option<String>,
    model: Option<String>,
}

fn sample() -> Sample {
    serde_yaml_ng::from_str(include_str!("../data/uap_sample.yaml")).expect("sample parses")
}

/// What uap-core's expected version parts join to, the way the enricher joins them.
fn version(case: &Case) -> Option<String> {
    let parts: Vec<&str> = [&case.major, &case.minor, &case.patch, &case.patch_minor]
        .into_iter()
        .map_while(|p| p.as_deref().filter(|p| !p.is_empty()))
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

#[test]
fn browsers_match_uap_core_test_cases() {
    let parser = UserAgentParser::bundled().expect("regexes");
    let sample = sample();
    assert!(sample.test_ua.len() > 100);
    for case in &sample.test_ua {
        let info = parser.parse(&case.user_agent_string);
        assert_eq!(
            info.browser_family, case.family,
            "{}",
            case.user_agent_string
        );
        assert_eq!(
            info.browser_version,
            version(case),
            "{}",
            case.user_agent_string
        );
    }
}

#[test]
fn operating_systems_match_uap_core_test_cases() {
    let parser = UserAgentParser::bundled().expect("regexes");
    let sample = sample();
    assert!(sample.test_os.len() > 50);
    for case in &sample.test_os {
        let info = parser.parse(&case.user_agent_string);
        assert_eq!(info.os_family, case.family, "{}", case.user_agent_string);
        assert_eq!(info.os_version, version(case), "{}", case.user_agent_string);
    }
}

#[test]
fn devices_match_uap_core_test_cases() {
    let parser = UserAgentParser::bundled().expect("regexes");
    let sample = sample();
    assert!(sample.test_device.len() > 50);
    for case in &sample.test_device {
        let info = parser.parse(&case.user_agent_string);
        assert_eq!(
            info.device_family, case.family,
            "{}",
            case.user_agent_string
        );
        assert_eq!(info.device_brand, case.brand, "{}", case.user_agent_string);
        assert_eq!(info.device_model, case.model, "{}", case.user_agent_string);
    }
}

#[test]
fn a_regexes_file_can_replace_the_bundled_one() {
    let dir = std::env::temp_dir().join(format!("enrich-uap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("regexes.yaml");
    std::fs::write(
        &path,
        "user_agent_parsers:\n  - regex: '(Acme)Browser/(\\d+)'\nos_parsers: []\ndevice_parsers: []\n",
    )
    .expect("write");
    let parser = UserAgentParser::from_file(&path).expect("custom regexes");
    let info = parser.parse("AcmeBrowser/7");
    assert_eq!(info.browser_family, "Acme");
    assert_eq!(info.browser_version.as_deref(), Some("7"));
    assert_eq!(info.os_family, "Other");
    std::fs::remove_dir_all(&dir).expect("cleanup");
    assert!(UserAgentParser::from_file(&dir.join("missing.yaml")).is_err());
}

/// The `ua-parser` crate's answer, joined the way the enricher joins ours: the reference
/// our lazily compiled rules must agree with.
fn reference(extractor: &ua_parser::Extractor<'_>, ua: &str) -> [Option<String>; 7] {
    let (browser, os, device) = extractor.extract(ua);
    let join = |parts: [Option<&str>; 4]| {
        let parts: Vec<&str> = parts
            .into_iter()
            .map_while(|p| p.filter(|p| !p.is_empty()))
            .collect();
        (!parts.is_empty()).then(|| parts.join("."))
    };
    let other = || Some("Other".to_string());
    [
        browser
            .as_ref()
            .map_or_else(other, |b| Some(b.family.to_string())),
        browser.and_then(|b| join([b.major, b.minor, b.patch, b.patch_minor])),
        os.as_ref().map_or_else(other, |o| Some(o.os.to_string())),
        os.and_then(|o| {
            join([
                o.major.as_deref(),
                o.minor.as_deref(),
                o.patch.as_deref(),
                o.patch_minor.as_deref(),
            ])
        }),
        device
            .as_ref()
            .map_or_else(other, |d| Some(d.device.to_string())),
        device
            .as_ref()
            .and_then(|d| d.brand.as_ref().map(|b| b.to_string())),
        device.and_then(|d| d.model.map(|m| m.to_string())),
    ]
}

fn ours(parser: &UserAgentParser, ua: &str) -> [Option<String>; 7] {
    let info = parser.parse(ua);
    [
        Some(info.browser_family),
        info.browser_version,
        Some(info.os_family),
        info.os_version,
        Some(info.device_family),
        info.device_brand,
        info.device_model,
    ]
}

/// Every user agent we have test data for, and variants of each that reach other rules
/// and other branches of the same rules: lower-cased (case-insensitive device rules and
/// the prefilter's case folding), cut short, and with its version digits changed.
fn user_agents() -> Vec<String> {
    let sample = sample();
    let crawlers = include_str!("../data/crawler_sample.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string);
    let originals: Vec<String> = [sample.test_ua, sample.test_os, sample.test_device]
        .into_iter()
        .flatten()
        .map(|c| c.user_agent_string)
        .chain(crawlers)
        .collect();
    let mut all = Vec::new();
    for ua in originals {
        let half: String = ua.chars().take(ua.chars().count() / 2).collect();
        let digits: String = ua
            .chars()
            .map(|c| match c.to_digit(10) {
                Some(d) => char::from_digit((d * 7 + 3) % 10, 10).expect("digit"),
                None => c,
            })
            .collect();
        all.extend([ua.to_lowercase(), half, digits, ua]);
    }
    all
}

#[test]
fn answers_match_the_ua_parser_crate_on_every_user_agent_we_have() {
    let regexes: ua_parser::Regexes<'_> =
        serde_yaml_ng::from_str(include_str!("../../data/uap-core/regexes.yaml")).expect("yaml");
    let extractor = ua_parser::Extractor::try_from(regexes).expect("reference compiles");
    let parser = UserAgentParser::bundled().expect("regexes");
    let user_agents = user_agents();
    assert!(user_agents.len() > 2_000, "{}", user_agents.len());
    for ua in &user_agents {
        assert_eq!(ours(&parser, ua), reference(&extractor, ua), "{ua:?}");
    }
}

#[test]
fn only_the_patterns_a_user_agent_can_match_are_compiled() {
    let parser = UserAgentParser::bundled().expect("regexes");
    let (compiled, total) = parser.patterns_compiled();
    assert_eq!(compiled, 0, "nothing is compiled at load");
    assert!(total > 1_000, "{total}");
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                  (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    assert_eq!(parser.parse(chrome).browser_family, "Chrome");
    let (after_one, _) = parser.patterns_compiled();
    assert!(
        after_one > 0 && after_one < total / 5,
        "{after_one} of {total}"
    );
    parser.parse(chrome);
    assert_eq!(
        parser.patterns_compiled().0,
        after_one,
        "a pattern compiles once"
    );
}
