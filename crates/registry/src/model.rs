//! Value types shared by the server, the store and the client, shaped like Confluent's JSON.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::RegistryError;

/// One version of a subject: Confluent's `{subject, id, version, schema[, references]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredSchema {
    /// Subject name.
    pub subject: String,
    /// Global schema id.
    pub id: u32,
    /// Version within the subject, from 1.
    pub version: u32,
    /// Schema text (normalised JSON when served by this registry). Types it takes from its
    /// references appear by name only.
    pub schema: String,
    /// The versions whose named types the schema uses; absent from the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
}

/// Confluent's schema reference: the named types of `subject`'s `version` are available to
/// the referencing schema. `name` is the name the referencing schema uses (for Avro, the
/// full name of the referenced type); schemas are parsed with every referenced schema,
/// transitively, whatever the names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// Reference name, e.g. `acme.Context`.
    pub name: String,
    /// Subject of the referenced schema.
    pub subject: String,
    /// Version of the referenced schema within its subject.
    pub version: u32,
}

/// A `(subject, version)` pair, as in `GET /schemas/ids/{id}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectVersion {
    /// Subject name.
    pub subject: String,
    /// Version within the subject.
    pub version: u32,
}

/// A version as addressed in URLs: a number, or the latest one (`latest` or `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The highest (visible) version.
    Latest,
    /// A specific version number.
    Number(u32),
}

impl FromStr for VersionSpec {
    type Err = RegistryError;

    /// Accepts `latest` (any case), `-1`, or a number in `[1, 2^31-1]`, as Confluent does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("latest") || s == "-1" {
            return Ok(Self::Latest);
        }
        match s.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(Self::Number(n.unsigned_abs())),
            _ => Err(RegistryError::InvalidVersion(s.to_owned())),
        }
    }
}

impl std::fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

/// Which versions (or subjects) a listing shows, from the `deleted` / `deleted_only` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Visibility {
    /// Only live (not soft-deleted) entries.
    #[default]
    Live,
    /// Live and soft-deleted entries.
    IncludeDeleted,
    /// Only soft-deleted entries.
    DeletedOnly,
}

impl Visibility {
    /// Builds the visibility from Confluent's two query flags (`deleted_only` wins).
    pub fn from_flags(deleted: bool, deleted_only: bool) -> Self {
        match (deleted, deleted_only) {
            (_, true) => Self::DeletedOnly,
            (true, false) => Self::IncludeDeleted,
            (false, false) => Self::Live,
        }
    }

    /// Whether an entry with this deletion state is shown.
    pub fn shows(self, deleted: bool) -> bool {
        match self {
            Self::Live => !deleted,
            Self::IncludeDeleted => true,
            Self::DeletedOnly => deleted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_specs_like_confluent() {
        assert_eq!(
            "latest".parse::<VersionSpec>().ok(),
            Some(VersionSpec::Latest)
        );
        assert_eq!("-1".parse::<VersionSpec>().ok(), Some(VersionSpec::Latest));
        assert_eq!(
            "7".parse::<VersionSpec>().ok(),
            Some(VersionSpec::Number(7))
        );
        for bad in ["0", "-2", "abc", "2147483648", ""] {
            assert!(
                matches!(
                    bad.parse::<VersionSpec>(),
                    Err(RegistryError::InvalidVersion(_))
                ),
                "{bad}"
            );
        }
    }
}
