//! Browser, OS and device from a user-agent string, with uap-core's regexes
//! (`data/uap-core/regexes.yaml`, Apache-2.0) compiled as traffic needs them (see
//! [`crate::uap`]), plus a device type of our own derived from them.

use std::borrow::Cow;
use std::path::Path;

use crate::EnrichError;
use crate::uap::{RegexesFile, Uap};

/// The bundled uap-core regexes.
pub(crate) const BUNDLED_REGEXES: &str = include_str!("../data/uap-core/regexes.yaml");

/// What uap-core calls a user agent, OS or device it does not recognise.
pub const OTHER: &str = "Other";

/// What a user agent says about the browser, OS and device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgentInfo {
    /// Browser (or app, or crawler) family: `Chrome`, `Mobile Safari`, `Googlebot`, `Other`.
    pub browser_family: String,
    /// Browser version, `major[.minor[.patch[.patch_minor]]]`.
    pub browser_version: Option<String>,
    /// Operating system family: `Windows`, `Mac OS X`, `Android`, `iOS`, `Other`.
    pub os_family: String,
    /// Operating system version.
    pub os_version: Option<String>,
    /// Device family: `iPhone`, `Samsung SM-G991B`, `Spider`, `Other`.
    pub device_family: String,
    /// Device brand: `Apple`, `Samsung`.
    pub device_brand: Option<String>,
    /// Device model: `iPhone`, `SM-G991B`.
    pub device_model: Option<String>,
    /// Kind of device, derived from the above and the user agent.
    pub device_type: DeviceType,
}

/// Kind of device. uap-core has no such notion; this is our own classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// Desktop or laptop computer.
    Desktop,
    /// Phone.
    Mobile,
    /// Tablet or e-reader.
    Tablet,
    /// Television, set-top box or streaming stick.
    Tv,
    /// Games console.
    Console,
    /// Watch or other wearable.
    Wearable,
    /// uap-core's `Spider` device: a crawler.
    Bot,
    /// Nothing to tell.
    Unknown,
}

impl DeviceType {
    /// The lowercase name stored in the lake.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Tv => "tv",
            DeviceType::Console => "console",
            DeviceType::Wearable => "wearable",
            DeviceType::Bot => "bot",
            DeviceType::Unknown => "unknown",
        }
    }
}

/// The uap-core rules. Parsing is pure apart from compiling, once, the patterns a user
/// agent is the first to need; callers cache (see [`crate::Enricher`]).
pub struct UserAgentParser {
    uap: Uap,
}

impl UserAgentParser {
    /// The parser with the bundled regexes.
    pub fn bundled() -> Result<Self, EnrichError> {
        Self::from_yaml(BUNDLED_REGEXES, "the bundled uap-core regexes")
    }

    /// The parser with a uap-core `regexes.yaml` file.
    pub fn from_file(path: &Path) -> Result<Self, EnrichError> {
        let origin = path.display().to_string();
        let yaml = std::fs::read_to_string(path).map_err(|e| EnrichError::UserAgentRegexes {
            origin: origin.clone(),
            detail: e.to_string(),
        })?;
        Self::from_yaml(&yaml, &origin)
    }

    fn from_yaml(yaml: &str, origin: &str) -> Result<Self, EnrichError> {
        let error = |detail: String| EnrichError::UserAgentRegexes {
            origin: origin.to_string(),
            detail,
        };
        let file: RegexesFile = serde_yaml_ng::from_str(yaml).map_err(|e| error(e.to_string()))?;
        let uap = Uap::new(file).map_err(error)?;
        Ok(Self { uap })
    }

    /// Parses one user agent (tens of microseconds once its patterns are compiled: cache
    /// the result).
    pub fn parse(&self, user_agent: &str) -> UserAgentInfo {
        let (browser_family, browser_version) = match self.uap.browser(user_agent) {
            Some([family, parts @ ..]) => (name(family), version(parts)),
            None => (OTHER.to_string(), None),
        };
        let (os_family, os_version) = match self.uap.os(user_agent) {
            Some([family, parts @ ..]) => (name(family), version(parts)),
            None => (OTHER.to_string(), None),
        };
        let (device_family, device_brand, device_model) = match self.uap.device(user_agent) {
            Some([family, brand, model, ..]) => (
                name(family),
                brand.map(Cow::into_owned),
                model.map(Cow::into_owned),
            ),
            None => (OTHER.to_string(), None, None),
        };
        let device_type = device_type(user_agent, &os_family, &device_family);
        UserAgentInfo {
            browser_family,
            browser_version,
            os_family,
            os_version,
            device_family,
            device_brand,
            device_model,
            device_type,
        }
    }

    /// How many of the rules' patterns have been compiled, and how many there are.
    pub fn patterns_compiled(&self) -> (usize, usize) {
        self.uap.compiled()
    }
}

/// A matched rule's family: empty when the rule gives none.
fn name(family: Option<Cow<'_, str>>) -> String {
    family.map(Cow::into_owned).unwrap_or_default()
}

/// `major.minor.patch.patch_minor`, stopping at the first missing or empty part.
fn version(parts: [Option<Cow<'_, str>>; 4]) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part.as_deref() {
            Some(p) if !p.is_empty() => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(p);
            }
            _ => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

fn contains_any(haystack: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| haystack.contains(n))
}

/// Our device classification: the first rule that applies, from the most specific kind
/// of device to the most generic.
fn device_type(ua: &str, os_family: &str, device_family: &str) -> DeviceType {
    if device_family == "Spider" {
        return DeviceType::Bot;
    }
    if contains_any(
        ua,
        &[
            "SmartTV",
            "SMART-TV",
            "Smart-TV",
            "SmartTv",
            "AppleTV",
            "Apple TV",
            "GoogleTV",
            "Android TV",
            "AndroidTV",
            "HbbTV",
            "CrKey",
            "Roku",
            "BRAVIA",
            "Tizen TV",
            "WebOS TV",
            "Web0S",
            "NetCast",
            "AFTB",
            "AFTM",
            "AFTS",
            "AFTT",
        ],
    ) || device_family == "AppleTV"
    {
        return DeviceType::Tv;
    }
    if contains_any(ua, &["PlayStation", "Xbox", "Nintendo"]) {
        return DeviceType::Console;
    }
    if contains_any(ua, &["watchOS", "Watch OS", "Wear OS", "SmartWatch"])
        || device_family.contains("Apple Watch")
    {
        return DeviceType::Wearable;
    }
    let android = os_family == "Android" || ua.contains("Android");
    if device_family.contains("iPad")
        || device_family.contains("Kindle")
        || contains_any(ua, &["iPad", "Tablet", "Kindle", "Silk/"])
        || (android && !ua.contains("Mobile"))
    {
        return DeviceType::Tablet;
    }
    if android
        || contains_any(
            ua,
            &[
                "Mobile",
                "iPhone",
                "iPod",
                "Windows Phone",
                "Opera Mini",
                "KAIOS",
                "KaiOS",
                "BlackBerry",
                "BB10",
                "Symbian",
            ],
        )
        || matches!(
            os_family,
            "iOS" | "Windows Phone" | "KaiOS" | "BlackBerry OS"
        )
    {
        return DeviceType::Mobile;
    }
    if matches!(
        os_family,
        "Windows"
            | "Mac OS X"
            | "Mac OS"
            | "Linux"
            | "Ubuntu"
            | "Fedora"
            | "Debian"
            | "Chrome OS"
            | "ChromeOS"
            | "FreeBSD"
            | "OpenBSD"
            | "NetBSD"
            | "Solaris"
    ) || contains_any(ua, &["Windows NT", "Macintosh", "X11;", "CrOS"])
    {
        return DeviceType::Desktop;
    }
    DeviceType::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_stop_at_the_first_missing_part() {
        let some = |s: &'static str| Some(Cow::Borrowed(s));
        assert_eq!(
            version([some("1"), some("2"), None, some("4")]),
            Some("1.2".into())
        );
        assert_eq!(version([some(""), some("2"), None, None]), None);
        assert_eq!(version([None, None, None, None]), None);
    }

    #[test]
    fn device_types_of_common_user_agents() {
        let parser = UserAgentParser::bundled().expect("bundled regexes");
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                DeviceType::Desktop,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                DeviceType::Mobile,
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
                DeviceType::Tablet,
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                DeviceType::Tablet,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
                DeviceType::Mobile,
            ),
            (
                "Mozilla/5.0 (PlayStation 5 3.20) AppleWebKit/605.1.15 (KHTML, like Gecko)",
                DeviceType::Console,
            ),
            (
                "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
                DeviceType::Tv,
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                DeviceType::Bot,
            ),
            ("curl/8.5.0", DeviceType::Unknown),
        ];
        for (ua, expected) in cases {
            assert_eq!(parser.parse(ua).device_type, expected, "{ua}");
        }
    }
}
