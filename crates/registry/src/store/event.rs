//! The vocabulary of durable changes: one [`Event`] per journal line. The journal format is
//! this enum's JSON (`{"op": "register", ...}`), so changing a variant changes the format.

use serde::{Deserialize, Serialize};

use crate::compat::CompatibilityLevel;
use crate::model::SchemaReference;

/// One durable change of the registry; one journal line each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A new version of a subject (and, when `id` is new, a new schema).
    Register {
        subject: String,
        version: u32,
        id: u32,
        schema: String,
        /// Absent when empty, so lines written before references existed read back as
        /// they were written, and a schema without references is journaled as before.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        references: Vec<SchemaReference>,
    },
    /// Soft (`permanent: false`) or hard delete of one version.
    DeleteVersion {
        subject: String,
        version: u32,
        permanent: bool,
    },
    /// Soft delete of every live version, or hard delete of the whole subject.
    DeleteSubject { subject: String, permanent: bool },
    /// Sets the global (`subject: None`) or a subject's compatibility level.
    SetLevel {
        subject: Option<String>,
        level: CompatibilityLevel,
    },
    /// Removes the global or a subject's compatibility level.
    ClearLevel { subject: Option<String> },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line of a journal written before references existed.
    const OLD_LINE: &str =
        r#"{"op":"register","subject":"s","version":1,"id":7,"schema":"\"string\""}"#;

    #[test]
    fn a_line_without_references_reads_back_and_is_written_unchanged() {
        let event: Event = serde_json::from_str(OLD_LINE).expect("old line parses");
        assert_eq!(
            event,
            Event::Register {
                subject: "s".to_owned(),
                version: 1,
                id: 7,
                schema: "\"string\"".to_owned(),
                references: Vec::new(),
            }
        );
        assert_eq!(
            serde_json::to_string(&event).ok().as_deref(),
            Some(OLD_LINE)
        );
    }

    #[test]
    fn references_are_journaled() {
        let event = Event::Register {
            subject: "page-view-value".to_owned(),
            version: 1,
            id: 2,
            schema: "\"acme.Context\"".to_owned(),
            references: vec![SchemaReference {
                name: "acme.Context".to_owned(),
                subject: "context-value".to_owned(),
                version: 1,
            }],
        };
        let line = serde_json::to_string(&event).expect("serialises");
        assert!(
            line.ends_with(
                r#""references":[{"name":"acme.Context","subject":"context-value","version":1}]}"#
            ),
            "{line}"
        );
        let back: Event = serde_json::from_str(&line).expect("parses");
        assert_eq!(back, event);
    }
}
