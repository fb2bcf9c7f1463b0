//! uap-core's matching rules (its `regexes.yaml` format and specification) over patterns
//! that are compiled the first time a user agent needs them.
//!
//! uap-core has ~1,200 patterns. Compiled up front they hold ~22 MB, the largest single
//! item of an idle process, yet a site's traffic reaches a small share of them: a user
//! agent is tried against the rules in order and the first match wins. Each pattern's
//! required literals (regex-filtered's atom model, the approach of RE2's `FilteredRE2`) feed
//! one Aho-Corasick prefilter that names, for a user agent, the patterns that can match
//! it; only those are compiled, once, and kept. Memory then grows with the variety of the
//! traffic, up to what compiling everything costs.
//!
//! The answers are the `ua-parser` crate's (a differential test holds them equal): the
//! same rewriting of `\d`, `\w` and long bounded repetitions to ASCII and unbounded forms,
//! and the same reading of the replacement fields.

use std::borrow::Cow;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::{Captures, Regex, RegexBuilder};
use regex_filtered::mapper::{Builder as MapperBuilder, Mapper};
use regex_filtered::model::Model;
use serde::Deserialize;

/// A `regexes.yaml` file: three ordered rule lists.
#[derive(Deserialize)]
pub(crate) struct RegexesFile {
    user_agent_parsers: Vec<BrowserRule>,
    os_parsers: Vec<OsRule>,
    device_parsers: Vec<DeviceRule>,
}

#[derive(Deserialize)]
struct BrowserRule {
    regex: String,
    family_replacement: Option<String>,
    v1_replacement: Option<String>,
    v2_replacement: Option<String>,
    v3_replacement: Option<String>,
    v4_replacement: Option<String>,
}

#[derive(Deserialize)]
struct OsRule {
    regex: String,
    os_replacement: Option<String>,
    os_v1_replacement: Option<String>,
    os_v2_replacement: Option<String>,
    os_v3_replacement: Option<String>,
    os_v4_replacement: Option<String>,
}

#[derive(Deserialize)]
struct DeviceRule {
    regex: String,
    regex_flag: Option<Flag>,
    device_replacement: Option<String>,
    brand_replacement: Option<String>,
    model_replacement: Option<String>,
}

/// The only flag uap-core defines.
#[derive(Deserialize, PartialEq, Eq)]
enum Flag {
    #[serde(rename = "i")]
    IgnoreCase,
}

/// What a matched rule says: the name (family) first, then up to four parts (version
/// numbers; a device's brand and model).
pub(crate) type Fields<'a> = [Option<Cow<'a, str>>; 5];

/// The three rule lists, ready to match.
pub(crate) struct Uap {
    browsers: RuleSet,
    os: RuleSet,
    devices: RuleSet,
}

impl Uap {
    /// Reads the rules, checks every pattern's syntax and builds the prefilters; compiles
    /// nothing.
    pub(crate) fn new(file: RegexesFile) -> Result<Self, String> {
        let browsers = file.user_agent_parsers.into_iter().map(|r| {
            let pattern = rewrite(&r.regex).into_owned();
            (pattern, false, move |groups| {
                Ok([
                    Field::browser_family(r.family_replacement, groups)?,
                    Field::browser_version(r.v1_replacement, groups, 2),
                    Field::browser_version(r.v2_replacement, groups, 3),
                    Field::browser_version(r.v3_replacement, groups, 4),
                    Field::browser_version(r.v4_replacement, groups, 5),
                ])
            })
        });
        let os = file.os_parsers.into_iter().map(|r| {
            let pattern = rewrite(&r.regex).into_owned();
            (pattern, false, move |groups| {
                Ok([
                    Field::templated(r.os_replacement, groups, 1),
                    Field::templated(r.os_v1_replacement, groups, 2),
                    Field::templated(r.os_v2_replacement, groups, 3),
                    Field::templated(r.os_v3_replacement, groups, 4),
                    Field::templated(r.os_v4_replacement, groups, 5),
                ])
            })
        });
        let devices = file.device_parsers.into_iter().map(|r| {
            let pattern = rewrite(&r.regex).into_owned();
            let ignore_case = r.regex_flag == Some(Flag::IgnoreCase);
            (pattern, ignore_case, move |groups| {
                Ok([
                    Field::templated(r.device_replacement, groups, 1),
                    // A brand is never read from a group, only from its replacement.
                    Field::templated(r.brand_replacement, 0, 1),
                    Field::templated(r.model_replacement, groups, 1),
                    Field::Absent,
                    Field::Absent,
                ])
            })
        });
        Ok(Uap {
            browsers: RuleSet::new(browsers, 3).map_err(|e| format!("user_agent_parsers: {e}"))?,
            os: RuleSet::new(os, 3).map_err(|e| format!("os_parsers: {e}"))?,
            devices: RuleSet::new(devices, 2).map_err(|e| format!("device_parsers: {e}"))?,
        })
    }

    /// The first browser rule that matches: family, major, minor, patch, patch minor.
    pub(crate) fn browser<'a>(&'a self, ua: &'a str) -> Option<Fields<'a>> {
        self.browsers.extract(ua)
    }

    /// The first OS rule that matches: family, major, minor, patch, patch minor.
    pub(crate) fn os<'a>(&'a self, ua: &'a str) -> Option<Fields<'a>> {
        self.os.extract(ua)
    }

    /// The first device rule that matches: family, brand, model.
    pub(crate) fn device<'a>(&'a self, ua: &'a str) -> Option<Fields<'a>> {
        self.devices.extract(ua)
    }

    /// Patterns compiled so far, and patterns in all.
    pub(crate) fn compiled(&self) -> (usize, usize) {
        [&self.browsers, &self.os, &self.devices]
            .into_iter()
            .map(|set| set.patterns.compiled())
            .fold((0, 0), |(c, t), (c2, t2)| (c + c2, t + t2))
    }
}

/// One rule list: its patterns and, per rule, how to read its fields.
struct RuleSet {
    patterns: LazyPatterns,
    fields: Vec<[Field; 5]>,
}

impl RuleSet {
    /// `rules` gives each rule's pattern, whether it ignores case, and how to read its
    /// fields given the pattern's number of groups.
    fn new<F>(
        rules: impl Iterator<Item = (String, bool, F)>,
        min_atom_len: usize,
    ) -> Result<Self, String>
    where
        F: FnOnce(usize) -> Result<[Field; 5], String>,
    {
        let mut builder = LazyPatterns::builder(min_atom_len);
        let mut fields = Vec::new();
        for (index, (pattern, ignore_case, read)) in rules.enumerate() {
            let groups = builder
                .push(pattern, ignore_case)
                .map_err(|e| format!("rule {index}: {e}"))?;
            fields.push(read(groups).map_err(|e| format!("rule {index}: {e}"))?);
        }
        Ok(RuleSet {
            patterns: builder.build()?,
            fields,
        })
    }

    fn extract<'a>(&'a self, ua: &'a str) -> Option<Fields<'a>> {
        let (index, captures) = self.patterns.first_match(ua)?;
        Some(self.fields[index].each_ref().map(|f| f.read(&captures)))
    }
}

/// How one field of a matched rule is read.
enum Field {
    /// Not given and no group to fall back on.
    Absent,
    /// A fixed replacement.
    Literal(Box<str>),
    /// A capture group, when it matched something.
    Group(usize),
    /// A replacement with `$n` references, expanded and trimmed.
    Template(Box<str>),
    /// A browser family's replacement, in which only `$1` is substituted.
    FirstGroupIn(Box<str>),
}

impl Field {
    /// An OS or device field: the replacement if it has any non-blank text (a template
    /// when it holds `$` and a digit), else group `index` if the pattern has it.
    fn templated(replacement: Option<String>, groups: usize, index: usize) -> Self {
        match replacement {
            Some(r) if !r.trim().is_empty() => {
                let templated = r
                    .as_bytes()
                    .windows(2)
                    .any(|w| w[0] == b'$' && w[1].is_ascii_digit());
                if templated {
                    Field::Template(r.into())
                } else {
                    Field::Literal(r.into())
                }
            }
            _ if groups >= index => Field::Group(index),
            _ => Field::Absent,
        }
    }

    /// A browser family: the replacement (with `$1` substituted), else group 1.
    fn browser_family(replacement: Option<String>, groups: usize) -> Result<Self, String> {
        match replacement {
            Some(r) if r.contains("$1") && groups < 1 => Err(format!(
                "family_replacement {r:?} refers to $1 but the regex has no group"
            )),
            Some(r) if r.contains("$1") => Ok(Field::FirstGroupIn(r.into())),
            Some(r) if !r.is_empty() => Ok(Field::Literal(r.into())),
            _ if groups >= 1 => Ok(Field::Group(1)),
            _ => Ok(Field::Absent),
        }
    }

    /// A browser version part: the replacement as written, else group `index`.
    fn browser_version(replacement: Option<String>, groups: usize, index: usize) -> Self {
        match replacement {
            Some(r) if !r.is_empty() => Field::Literal(r.into()),
            _ if groups >= index => Field::Group(index),
            _ => Field::Absent,
        }
    }

    fn read<'a>(&'a self, captures: &Captures<'a>) -> Option<Cow<'a, str>> {
        let group = |i: usize| {
            captures
                .get(i)
                .map(|m| m.as_str())
                .filter(|s| !s.is_empty())
        };
        match self {
            Field::Absent => None,
            Field::Literal(s) => Some(Cow::Borrowed(s)),
            Field::Group(i) => group(*i).map(Cow::Borrowed),
            Field::Template(t) => {
                let mut out = String::new();
                captures.expand(t, &mut out);
                let trimmed = out.trim();
                if trimmed.is_empty() {
                    None
                } else if trimmed.len() == out.len() {
                    Some(Cow::Owned(out))
                } else {
                    Some(Cow::Owned(trimmed.to_string()))
                }
            }
            Field::FirstGroupIn(t) => Some(Cow::Owned(t.replace("$1", group(1).unwrap_or("")))),
        }
    }
}

/// Patterns behind a literal prefilter, each compiled on first use.
struct LazyPatterns {
    patterns: Vec<LazyPattern>,
    mapper: Mapper,
    prefilter: AhoCorasick,
}

struct LazyPattern {
    source: Box<str>,
    ignore_case: bool,
    compiled: OnceLock<Option<Regex>>,
}

struct LazyPatternsBuilder {
    patterns: Vec<LazyPattern>,
    mapper: MapperBuilder,
}

impl LazyPatterns {
    fn builder(min_atom_len: usize) -> LazyPatternsBuilder {
        LazyPatternsBuilder {
            patterns: Vec::new(),
            mapper: MapperBuilder::new(min_atom_len),
        }
    }

    /// The first pattern, in rule order, that matches, with its groups.
    fn first_match<'h>(&self, haystack: &'h str) -> Option<(usize, Captures<'h>)> {
        let atoms = self
            .prefilter
            .find_overlapping_iter(haystack)
            .map(|m| m.pattern().as_usize());
        // Candidates come back in ascending order: rule order.
        self.mapper
            .atom_to_re(atoms)
            .into_iter()
            .find_map(|i| Some((i, self.patterns[i].regex()?.captures(haystack)?)))
    }

    fn compiled(&self) -> (usize, usize) {
        let compiled = self
            .patterns
            .iter()
            .filter(|p| p.compiled.get().is_some())
            .count();
        (compiled, self.patterns.len())
    }
}

impl LazyPatternsBuilder {
    /// Adds a pattern; returns its number of groups. Parsing checks the syntax now, so
    /// compiling later can only fail on size (see [`LazyPattern::regex`]).
    fn push(&mut self, source: String, ignore_case: bool) -> Result<usize, String> {
        let hir = regex_syntax::ParserBuilder::new()
            .case_insensitive(ignore_case)
            .build()
            .parse(&source)
            .map_err(|e| format!("regex {source:?}: {e}"))?;
        let model = Model::new(&hir).map_err(|e| format!("regex {source:?}: {e}"))?;
        self.mapper.push(model);
        let groups = hir.properties().explicit_captures_len();
        self.patterns.push(LazyPattern {
            source: source.into(),
            ignore_case,
            compiled: OnceLock::new(),
        });
        Ok(groups)
    }

    fn build(self) -> Result<LazyPatterns, String> {
        let (mapper, atoms) = self.mapper.build();
        let prefilter = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .prefilter(true)
            .build(atoms)
            .map_err(|e| format!("prefilter: {e}"))?;
        Ok(LazyPatterns {
            patterns: self.patterns,
            mapper,
            prefilter,
        })
    }
}

impl LazyPattern {
    /// The compiled pattern, compiling it on first use. A pattern too large to compile
    /// (its syntax was checked at load) is reported once and never matches.
    fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| {
                RegexBuilder::new(&self.source)
                    .case_insensitive(self.ignore_case)
                    .build()
                    .inspect_err(|e| {
                        tracing::error!(
                            pattern = %self.source,
                            error = %e,
                            "a user-agent pattern does not compile; it will never match"
                        );
                    })
                    .ok()
            })
            .as_ref()
    }
}

/// uap-core's patterns are written for engines whose `\d` and `\w` are ASCII and whose
/// bounded repetitions are cheap; in the `regex` crate `\d` is every Unicode digit and
/// `{0,100}` compiles to a hundred states. Outside character classes, `{0,N}` and `{1,N}`
/// with N of three digits or more become `*` and `+`; everywhere, `\d`, `\D`, `\w` and
/// `\W` become their ASCII classes.
fn rewrite(pattern: &str) -> Cow<'_, str> {
    let bytes = pattern.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    // Signed, as in the `ua-parser` crate: a literal `]` outside a class (which `regex`
    // allows) takes the depth below zero, and no repetition is rewritten until a `[`
    // brings it back. Keeping that quirk keeps the answers identical.
    let mut class_depth = 0isize;
    let mut i = 0;
    while i < bytes.len() {
        let replacement: Option<(&str, usize)> = match bytes[i] {
            b'\\' => match bytes.get(i + 1) {
                Some(b'd') => Some(("[0-9]", 2)),
                Some(b'D') => Some(("[^0-9]", 2)),
                Some(b'w') => Some(("[A-Za-z0-9_]", 2)),
                Some(b'W') => Some(("[^A-Za-z0-9_]", 2)),
                // Any other escape, and the character it escapes, stays.
                _ => {
                    i += 2;
                    continue;
                }
            },
            b'[' => {
                class_depth += 1;
                None
            }
            b']' => {
                class_depth -= 1;
                None
            }
            b'{' if class_depth == 0 && i > 0 => long_repetition(&bytes[i..]),
            _ => None,
        };
        match replacement {
            Some((with, len)) => {
                out.push_str(&pattern[copied..i]);
                out.push_str(with);
                i += len;
                copied = i;
            }
            None => i += 1,
        }
    }
    if copied == 0 {
        Cow::Borrowed(pattern)
    } else {
        out.push_str(&pattern[copied..]);
        Cow::Owned(out)
    }
}

/// `{0,N}` or `{1,N}` with N of three digits or more, at the start of `bytes`: its
/// unbounded form and its length.
fn long_repetition(bytes: &[u8]) -> Option<(&'static str, usize)> {
    let unbounded = match bytes.get(1..3)? {
        b"0," => "*",
        b"1," => "+",
        _ => return None,
    };
    let digits = bytes[3..].iter().take_while(|b| b.is_ascii_digit()).count();
    (digits >= 3 && bytes.get(3 + digits) == Some(&b'}')).then_some((unbounded, 4 + digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bounded_repetitions_become_unbounded() {
        assert_eq!(rewrite(".{0,20}x"), ".{0,20}x");
        assert_eq!(rewrite("(.{0,100})"), "(.*)");
        assert_eq!(rewrite(".{1,300}?x"), ".+?x");
        assert_eq!(rewrite(".{0,}x{2,100}"), ".{0,}x{2,100}");
        assert_eq!(rewrite(r"\{1,200}"), r"\{1,200}", "an escaped brace");
        assert_eq!(rewrite("[.{1,100}]"), "[.{1,100}]", "inside a class");
        assert_eq!(rewrite("{0,100}"), "{0,100}", "nothing to repeat");
    }

    #[test]
    fn digit_and_word_classes_become_ascii() {
        assert_eq!(rewrite(r"\dx\D"), "[0-9]x[^0-9]");
        assert_eq!(rewrite(r"[\w]\W"), "[[A-Za-z0-9_]][^A-Za-z0-9_]");
        assert_eq!(rewrite(r"\\d"), r"\\d", "an escaped backslash, then a d");
        assert_eq!(
            rewrite("Chrome/(\\d+)\\.(\\d+)"),
            "Chrome/([0-9]+)\\.([0-9]+)"
        );
    }

    #[test]
    fn every_bundled_pattern_compiles() {
        let file: RegexesFile =
            serde_yaml_ng::from_str(crate::user_agent::BUNDLED_REGEXES).expect("yaml");
        let uap = Uap::new(file).expect("rules");
        for set in [&uap.browsers, &uap.os, &uap.devices] {
            for pattern in &set.patterns.patterns {
                assert!(pattern.regex().is_some(), "{}", pattern.source);
            }
        }
        let (compiled, total) = uap.compiled();
        assert_eq!(compiled, total);
        assert!(total > 1000, "{total}");
    }

    #[test]
    fn a_family_template_needs_a_group() {
        let file: RegexesFile = serde_yaml_ng::from_str(
            "user_agent_parsers:\n  - regex: 'Acme'\n    family_replacement: 'X $1'\nos_parsers: []\ndevice_parsers: []\n",
        )
        .expect("yaml");
        let error = Uap::new(file).err().expect("rejected");
        assert!(error.contains("rule 0") && error.contains("$1"), "{error}");
    }
}
