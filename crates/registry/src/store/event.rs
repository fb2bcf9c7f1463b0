//! The vocabulary of durable changes: one [`Event`] per journal line. The journal format is
//! this enum's JSON (`{"op": "register", ...}`), so changing a variant changes the format.

use serde::{Deserialize, Serialize};

use crate::compat::CompatibilityLevel;

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
