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
