//! Compatibility levels and the checks behind them, done with real Avro schema resolution
//! (apache-avro's `SchemaCompatibility`).
//!
//! `can_read(writer, reader)` answers `Full`, `Partial` or an error. `Partial` means that
//! *some* data written with the writer schema cannot be resolved by the reader (a writer
//! enum symbol or union branch has no counterpart in the reader). Confluent's registry uses
//! Avro Java's checker, which reports exactly those cases as incompatible, so `Partial` is
//! treated as **incompatible** here: a producer using the new schema could write a record
//! that some consumer cannot decode, which is what the levels exist to prevent.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::error::CompatibilityError;
use apache_avro::schema::RecordSchema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;

/// A subject's (or the registry's) compatibility rule, as named by Confluent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// Any schema is accepted.
    None,
    /// The new schema can read data written with the latest one (the default).
    #[default]
    Backward,
    /// The new schema can read data written with every earlier live version.
    BackwardTransitive,
    /// The latest schema can read data written with the new one.
    Forward,
    /// Every earlier live version can read data written with the new one.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every earlier live version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level, in Confluent's documentation order.
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    /// Confluent's name, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether the check runs against every live version rather than only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = RegistryError;

    /// Parses a level case-insensitively, as Confluent does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| RegistryError::InvalidCompatibilityLevel(s.to_owned()))
    }
}

/// An earlier version the candidate is checked against.
#[derive(Debug, Clone, Copy)]
pub struct PreviousVersion<'a> {
    /// Version number within the subject.
    pub version: u32,
    /// Global schema id.
    pub id: u32,
    /// The parsed schema.
    pub schema: &'a Schema,
}

/// Checks `candidate` against `previous` (oldest first) under `level`; returns every
/// violation as a readable sentence, empty when compatible. Non-transitive levels look only
/// at the last entry of `previous`.
pub fn check(
    level: CompatibilityLevel,
    candidate: &Schema,
    previous: &[PreviousVersion<'_>],
) -> Vec<String> {
    let against: &[PreviousVersion<'_>] = if level.is_transitive() {
        previous
    } else {
        match previous.split_last() {
            Some((last, _)) => std::slice::from_ref(last),
            None => &[],
        }
    };
    let mut problems = Vec::new();
    for old in against.iter().rev() {
        if level.checks_backward()
            && let Some(why) = reader_problem(old.schema, candidate)
        {
            problems.push(format!(
                "{level}: the new schema cannot read data written with version {} (id {}): {why}",
                old.version, old.id
            ));
        }
        if level.checks_forward()
            && let Some(why) = reader_problem(candidate, old.schema)
        {
            problems.push(format!(
                "{level}: version {} (id {}) cannot read data written with the new schema: {why}",
                old.version, old.id
            ));
        }
    }
    problems
}

/// Why `reader` cannot read everything written with `writer`, or `None` if it can.
fn reader_problem(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(Compatibility::Partial) => {
            let place = match partial_field_path(writer, reader) {
                Some(path) => format!("at field '{path}': "),
                None => String::new(),
            };
            Some(format!(
                "{place}only partially compatible: some values the writer can produce \
                 (enum symbols or union branches) have no counterpart in the reader"
            ))
        }
        Err(err) => Some(explain(&err)),
    }
}

/// Turns apache-avro's nested error into "at field 'a.b': <terminal reason>".
fn explain(err: &CompatibilityError) -> String {
    let mut path: Vec<&str> = Vec::new();
    let mut current = err;
    while let CompatibilityError::FieldTypeMismatch(field, inner) = current {
        path.push(field);
        current = inner;
    }
    let terminal = match current {
        CompatibilityError::MissingDefaultValue(field) => {
            path.push(field);
            "the field has no default value in the reader's schema and is missing from the writer's schema"
                .to_owned()
        }
        CompatibilityError::WrongType {
            writer_schema_type,
            reader_schema_type,
        } => format!(
            "the writer's type {} cannot be read as the reader's type {}",
            kind_name(writer_schema_type),
            kind_name(reader_schema_type)
        ),
        other => other.to_string(),
    };
    if path.is_empty() {
        terminal
    } else {
        format!("at field '{}': {terminal}", path.join("."))
    }
}

/// apache-avro reports types as pretty `Debug` dumps; keep the variant name only
/// (`Long`, `Record`, ...).
fn kind_name(debug_dump: &str) -> String {
    let name: String = debug_dump
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        "?".to_owned()
    } else {
        name.to_lowercase()
    }
}

/// For a `Partial` result between two records, finds the dotted path of the first field
/// whose own check is partial (descending into nested records).
fn partial_field_path(writer: &Schema, reader: &Schema) -> Option<String> {
    let (Schema::Record(w), Schema::Record(r)) = (writer, reader) else {
        return None;
    };
    for r_field in &r.fields {
        let Some(w_field) = writer_field(w, &r_field.name, &r_field.aliases) else {
            continue;
        };
        if let Ok(Compatibility::Partial) =
            SchemaCompatibility::can_read(&w_field.schema, &r_field.schema)
        {
            return Some(match partial_field_path(&w_field.schema, &r_field.schema) {
                Some(inner) => format!("{}.{inner}", r_field.name),
                None => r_field.name.clone(),
            });
        }
    }
    None
}

fn writer_field<'a>(
    writer: &'a RecordSchema,
    name: &str,
    aliases: &[String],
) -> Option<&'a apache_avro::schema::RecordField> {
    std::iter::once(name)
        .chain(aliases.iter().map(String::as_str))
        .find_map(|candidate| writer.fields.iter().find(|f| f.name == candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Schema {
        Schema::parse_str(text).expect("test schema parses")
    }

    fn record(fields: &str) -> Schema {
        parse(&format!(
            r#"{{"type":"record","name":"R","fields":[{fields}]}}"#
        ))
    }

    fn prev(version: u32, schema: &Schema) -> PreviousVersion<'_> {
        PreviousVersion {
            version,
            id: version,
            schema,
        }
    }

    #[test]
    fn parses_levels_case_insensitively() {
        assert_eq!(
            "full_transitive".parse::<CompatibilityLevel>().ok(),
            Some(CompatibilityLevel::FullTransitive)
        );
        assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
        let json = serde_json::to_string(&CompatibilityLevel::BackwardTransitive).ok();
        assert_eq!(json.as_deref(), Some("\"BACKWARD_TRANSITIVE\""));
    }

    #[test]
    fn backward_names_the_field_without_default() {
        let old = record(r#"{"name":"a","type":"long"}"#);
        let new = record(r#"{"name":"a","type":"long"},{"name":"b","type":"string"}"#);
        let problems = check(CompatibilityLevel::Backward, &new, &[prev(1, &old)]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("field 'b'"), "{problems:?}");
        assert!(problems[0].contains("default"), "{problems:?}");
    }

    #[test]
    fn nested_field_path_is_reported() {
        let old = record(
            r#"{"name":"e","type":{"type":"record","name":"E","fields":[{"name":"x","type":"long"}]}}"#,
        );
        let new = record(
            r#"{"name":"e","type":{"type":"record","name":"E","fields":[{"name":"x","type":"int"}]}}"#,
        );
        let problems = check(CompatibilityLevel::Backward, &new, &[prev(1, &old)]);
        assert!(problems[0].contains("field 'e.x'"), "{problems:?}");
        assert!(problems[0].contains("long"), "{problems:?}");
    }

    #[test]
    fn partial_enum_is_incompatible() {
        let old = record(r#"{"name":"k","type":{"type":"enum","name":"K","symbols":["A","B"]}}"#);
        let new = record(r#"{"name":"k","type":{"type":"enum","name":"K","symbols":["A"]}}"#);
        let problems = check(CompatibilityLevel::Backward, &new, &[prev(1, &old)]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("field 'k'"), "{problems:?}");
        assert!(check(CompatibilityLevel::Forward, &new, &[prev(1, &old)]).is_empty());
    }

    #[test]
    fn non_transitive_levels_only_look_at_latest() {
        let v1 = record(r#"{"name":"a","type":"long"}"#);
        let v2 = record(r#"{"name":"a","type":"long","default":0}"#);
        let v3 = record(r#"{"name":"b","type":"long","default":0}"#);
        let history = [prev(1, &v1), prev(2, &v2)];
        // v3 drops `a`: fine backward against v1 and v2 (b has a default); forward against
        // v2 works (v2's `a` has a default) but not against v1.
        assert!(check(CompatibilityLevel::Forward, &v3, &history).is_empty());
        let problems = check(CompatibilityLevel::ForwardTransitive, &v3, &history);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("version 1"), "{problems:?}");
    }

    #[test]
    fn none_accepts_anything() {
        let old = record(r#"{"name":"a","type":"long"}"#);
        let new = parse(r#""string""#);
        assert!(check(CompatibilityLevel::None, &new, &[prev(1, &old)]).is_empty());
        assert!(!check(CompatibilityLevel::Full, &new, &[prev(1, &old)]).is_empty());
    }
}
