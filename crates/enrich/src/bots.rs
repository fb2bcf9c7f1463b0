//! Bot detection: the pattern lists of isbot (Unlicense) and crawler-user-agents (MIT),
//! vendored under `data/bots/`, compiled into one [`RegexSet`], plus uap-core's `Spider`
//! device family.
//!
//! isbot's patterns are JavaScript regexes; six of them use look-around, which Rust's
//! `regex` does not have. Those are split into a core regex (in the set) and literal
//! guards checked around each match of the core, which is what the look-arounds say.
//!
//! The patterns are compiled over bytes with Unicode off, as JavaScript reads them (no
//! `u` flag): `\w`, `\d` and `\b` are ASCII, `i` folds ASCII letters only. Every pattern
//! is ASCII. Unicode classes also made the set several times larger in memory.

use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::EnrichError;

const ISBOT_PATTERNS: &str = include_str!("../data/bots/isbot-patterns.txt");
const CRAWLER_PATTERNS: &str = include_str!("../data/bots/crawler-user-agents-patterns.txt");

/// Whether a user agent is a bot, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotVerdict {
    /// The user agent is a crawler, monitor, library or other non-human client.
    pub is_bot: bool,
    /// What matched: `isbot:<pattern>`, `crawler-user-agents:<pattern>` or
    /// `uap-core:Spider`.
    pub reason: Option<Arc<str>>,
}

impl BotVerdict {
    /// Not a bot.
    pub fn human() -> Self {
        BotVerdict {
            is_bot: false,
            reason: None,
        }
    }
}

/// One pattern of the set.
struct Pattern {
    reason: Arc<str>,
    guard: Option<Guard>,
}

/// A look-around pattern: `core` must match somewhere not preceded by any of
/// `not_after` and not followed by any of `not_before` (ASCII case-insensitively).
struct Guard {
    core: Regex,
    not_after: Vec<String>,
    not_before: Vec<String>,
}

impl Guard {
    fn accepts(&self, ua: &str) -> bool {
        self.core.find_iter(ua.as_bytes()).any(|m| {
            let before = &ua.as_bytes()[..m.start()];
            let after = &ua.as_bytes()[m.end()..];
            !self
                .not_after
                .iter()
                .any(|s| ends_with_ignore_case(before, s.as_bytes()))
                && !self
                    .not_before
                    .iter()
                    .any(|s| starts_with_ignore_case(after, s.as_bytes()))
        })
    }
}

fn ends_with_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len()
        && haystack[haystack.len() - needle.len()..].eq_ignore_ascii_case(needle)
}

fn starts_with_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len() && haystack[..needle.len()].eq_ignore_ascii_case(needle)
}

/// The compiled pattern lists.
pub struct BotDetector {
    set: RegexSet,
    patterns: Vec<Pattern>,
    spider: Arc<str>,
}

impl BotDetector {
    /// The detector with the bundled lists.
    pub fn bundled() -> Result<Self, EnrichError> {
        let mut sources = Vec::new();
        let mut patterns = Vec::new();
        for line in lines(ISBOT_PATTERNS) {
            let (source, guard) =
                split_lookaround(line).map_err(|detail| pattern_error("isbot", line, detail))?;
            let source = format!("(?i:{})", from_javascript(&source));
            let guard = match guard {
                Some((not_after, not_before)) => Some(Guard {
                    core: RegexBuilder::new(&source)
                        .unicode(false)
                        .build()
                        .map_err(|e| pattern_error("isbot", line, e.to_string()))?,
                    not_after,
                    not_before,
                }),
                None => None,
            };
            sources.push(source);
            patterns.push(Pattern {
                reason: format!("isbot:{line}").into(),
                guard,
            });
        }
        for line in lines(CRAWLER_PATTERNS) {
            sources.push(from_javascript(line));
            patterns.push(Pattern {
                reason: format!("crawler-user-agents:{line}").into(),
                guard: None,
            });
        }
        // Find which pattern is at fault when the set does not build.
        for (source, line) in sources.iter().zip(patterns.iter()) {
            if let Err(e) = RegexBuilder::new(source).unicode(false).build() {
                return Err(EnrichError::BotPattern {
                    list: "bot lists",
                    pattern: line.reason.to_string(),
                    detail: e.to_string(),
                });
            }
        }
        let set = RegexSetBuilder::new(&sources)
            .unicode(false)
            .size_limit(256 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|e| EnrichError::BotPattern {
                list: "bot lists",
                pattern: "(the whole set)".into(),
                detail: e.to_string(),
            })?;
        Ok(BotDetector {
            set,
            patterns,
            spider: Arc::from("uap-core:Spider"),
        })
    }

    /// Number of patterns in the set.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether the set is empty (never, with the bundled lists).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Classifies a user agent. `device_family` is uap-core's, when the user agent was
    /// parsed: `Spider` marks a bot even when no pattern matches. An empty user agent is
    /// a bot (no browser sends none).
    pub fn detect(&self, user_agent: &str, device_family: Option<&str>) -> BotVerdict {
        if user_agent.trim().is_empty() {
            return BotVerdict {
                is_bot: true,
                reason: Some(Arc::from("empty user agent")),
            };
        }
        for index in self.set.matches(user_agent.as_bytes()).iter() {
            let pattern = &self.patterns[index];
            if pattern.guard.as_ref().is_none_or(|g| g.accepts(user_agent)) {
                return BotVerdict {
                    is_bot: true,
                    reason: Some(pattern.reason.clone()),
                };
            }
        }
        if device_family == Some("Spider") {
            return BotVerdict {
                is_bot: true,
                reason: Some(self.spider.clone()),
            };
        }
        BotVerdict::human()
    }
}

fn pattern_error(list: &'static str, pattern: &str, detail: String) -> EnrichError {
    EnrichError::BotPattern {
        list,
        pattern: pattern.to_string(),
        detail,
    }
}

/// Non-empty lines that are not `#` comments.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// JavaScript reads a `-` next to a class escape in brackets (`[\\w\\d-.]`) as a literal
/// dash; Rust's `regex` rejects it as a range. Escapes such dashes; the rest of the
/// patterns' syntax means the same in both.
fn from_javascript(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut in_class = false;
    let mut previous_was_class_escape = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let escaped = chars[i + 1];
            out.push(c);
            out.push(escaped);
            previous_was_class_escape = in_class && "dDwWsS".contains(escaped);
            i += 2;
            continue;
        }
        let next_is_class_escape = chars.get(i + 1) == Some(&'\\')
            && chars.get(i + 2).is_some_and(|e| "dDwWsS".contains(*e));
        match c {
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '-' if in_class && (previous_was_class_escape || next_is_class_escape) => {
                out.push_str("\\-");
                previous_was_class_escape = false;
                i += 1;
                continue;
            }
            _ => {}
        }
        out.push(c);
        previous_was_class_escape = false;
        i += 1;
    }
    out
}

type Guards = (Vec<String>, Vec<String>);

/// Splits a leading negative look-behind `(?<!a|b)` and a trailing negative look-ahead
/// `(?!c|d)` or `(?!(?:c|d))` off a pattern. Their alternatives must be literals. Returns
/// the core and, if there were look-arounds, the guards.
fn split_lookaround(pattern: &str) -> Result<(String, Option<Guards>), String> {
    let mut core = pattern;
    let mut not_after = Vec::new();
    let mut not_before = Vec::new();
    if let Some(rest) = core.strip_prefix("(?<!") {
        let end = rest
            .find(')')
            .ok_or("unterminated look-behind".to_string())?;
        not_after = literals(&rest[..end])?;
        core = &rest[end + 1..];
    }
    if let Some(start) = core.rfind("(?!")
        && core.ends_with(')')
    {
        let inner = &core[start + 3..core.len() - 1];
        let inner = inner
            .strip_prefix("(?:")
            .and_then(|i| i.strip_suffix(')'))
            .unwrap_or(inner);
        not_before = literals(inner)?;
        core = &core[..start];
    }
    if core.contains("(?<") || core.contains("(?!") || core.contains("(?=") {
        return Err("look-around other than a leading (?<!…) or a trailing (?!…)".into());
    }
    let guards =
        (!not_after.is_empty() || !not_before.is_empty()).then_some((not_after, not_before));
    Ok((core.to_string(), guards))
}

/// The alternatives of a look-around, which must be plain text (`\/` allowed).
fn literals(alternatives: &str) -> Result<Vec<String>, String> {
    alternatives
        .split('|')
        .map(|alt| {
            let text = alt.replace("\\/", "/");
            if text.is_empty() || text.contains(['\\', '(', ')', '[', ']', '.', '*', '+', '?']) {
                Err(format!("look-around alternative {alt:?} is not a literal"))
            } else {
                Ok(text.to_ascii_lowercase())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javascript_dashes_next_to_class_escapes_are_literal() {
        assert_eq!(from_javascript(r"[\w\d-.]+"), r"[\w\d\-.]+");
        assert_eq!(from_javascript(r"[.-\w]"), r"[.\-\w]");
        assert_eq!(from_javascript(r"[a-z]-\d"), r"[a-z]-\d");
        assert_eq!(from_javascript(r"\[\w-x"), r"\[\w-x");
    }

    #[test]
    fn look_arounds_become_guards() {
        let (core, guards) =
            split_lookaround("(?<! channel/|google/)google(?!(?:wv|app|/google| pixel))")
                .expect("split");
        assert_eq!(core, "google");
        let (after, before) = guards.expect("guards");
        assert_eq!(after, vec![" channel/", "google/"]);
        assert_eq!(before, vec!["wv", "app", "/google", " pixel"]);
        let (core, guards) = split_lookaround("java(?!;)").expect("split");
        assert_eq!(core, "java");
        assert_eq!(guards, Some((vec![], vec![";".to_string()])));
        assert_eq!(
            split_lookaround("^python").expect("split"),
            ("^python".to_string(), None)
        );
        assert!(split_lookaround("a(?=b)c").is_err());
    }

    #[test]
    fn guards_check_every_match() {
        let detector = BotDetector::bundled().expect("bundled lists");
        // `(?<!cam)scan`: a camera scanner app is not a bot, a scanner is.
        let phone = "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
        assert!(
            !detector
                .detect(&format!("{phone} CamScanner/6.0"), None)
                .is_bot
        );
        assert!(
            detector
                .detect(&format!("{phone} NetScan/1.0"), None)
                .is_bot
        );
        // `java(?!;)`
        assert!(detector.detect("Java/1.8.0_151", None).is_bot);
    }

    #[test]
    fn spider_family_is_a_bot_reason_of_last_resort() {
        let detector = BotDetector::bundled().expect("bundled lists");
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/120.0";
        assert!(!detector.detect(ua, Some("Other")).is_bot);
        let verdict = detector.detect(ua, Some("Spider"));
        assert!(verdict.is_bot);
        assert_eq!(verdict.reason.as_deref(), Some("uap-core:Spider"));
        assert!(detector.detect("", None).is_bot);
    }
}
