//! Schema references in the state: the texts a schema with references is parsed with, the
//! schemas referencing a version (Confluent's `referencedby`, which keeps the version from
//! being deleted), and finding a version with references from its resolved form.

use std::collections::HashSet;

use super::{State, Visibility, visibility_of};
use crate::error::RegistryError;
use crate::model::{SchemaReference, VersionSpec};
use crate::schema::ParsedSchema;

impl State {
    /// The texts of the versions `references` names and of those they reference,
    /// transitively, each after the ones it references, as Confluent's
    /// `AbstractSchemaProvider.resolveReferences`: a reference name seen before is skipped.
    /// Versions count when `visibility` shows them: a new schema (registration,
    /// compatibility check) may only reference live versions, a stored one is read with
    /// soft-deleted ones too.
    pub(crate) fn referenced_texts(
        &self,
        references: &[SchemaReference],
        visibility: Visibility,
    ) -> Result<Vec<String>, RegistryError> {
        let mut seen = HashSet::new();
        let mut texts = Vec::new();
        self.collect_referenced(references, visibility, &mut seen, &mut texts)?;
        Ok(texts)
    }

    fn collect_referenced(
        &self,
        references: &[SchemaReference],
        visibility: Visibility,
        seen: &mut HashSet<String>,
        texts: &mut Vec<String>,
    ) -> Result<(), RegistryError> {
        for reference in references {
            let referenced = self.referenced(reference, visibility)?;
            // Names are marked before descending, so this ends whatever the graph.
            if !seen.insert(reference.name.clone()) {
                continue;
            }
            self.collect_referenced(&referenced.references, visibility, seen, texts)?;
            texts.push(referenced.normalized.clone());
        }
        Ok(())
    }

    /// The schema of the version `reference` names; Confluent's 42201 text when there is
    /// none.
    fn referenced(
        &self,
        reference: &SchemaReference,
        visibility: Visibility,
    ) -> Result<&ParsedSchema, RegistryError> {
        self.subjects
            .get(&reference.subject)
            .and_then(|s| s.versions.get(&reference.version))
            .filter(|v| visibility.shows(v.deleted))
            .and_then(|v| self.schemas.get(&v.id))
            .ok_or_else(|| {
                RegistryError::InvalidSchema(format!(
                    "No schema reference found for subject \"{}\" and version {}",
                    reference.subject, reference.version
                ))
            })
    }

    /// Ids of the schemas that reference `subject`'s `version` and are used by a version
    /// `visibility` shows, ascending.
    pub(crate) fn referencing_ids(
        &self,
        subject: &str,
        version: u32,
        visibility: Visibility,
    ) -> Vec<u32> {
        self.referencing(subject, version)
            .filter(|id| self.subjects_using(*id, visibility).next().is_some())
            .collect()
    }

    /// Whether a subject other than `subject` has a version (shown by `visibility`) whose
    /// schema references `subject`'s `version`. Confluent lets a subject be deleted with
    /// references between its own versions.
    pub(crate) fn referenced_from_other_subjects(
        &self,
        subject: &str,
        version: u32,
        visibility: Visibility,
    ) -> bool {
        self.referencing(subject, version)
            .any(|id| self.subjects_using(id, visibility).any(|s| s != subject))
    }

    /// `GET /subjects/{subject}/versions/{version}/referencedby`: the version is found even
    /// when soft-deleted, as Confluent; the referrers counted depend on `include_deleted`.
    pub(crate) fn referenced_by(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let (version, _) = self.resolve(subject, spec, true)?;
        Ok(self.referencing_ids(subject, version, visibility_of(include_deleted)))
    }

    /// The latest version of `subject` shown by `visibility` whose schema has references
    /// and is, resolved, the schema `candidate` (which has none) spells out: Confluent's
    /// `canLookup`, so that a schema sent with its references resolved finds its version.
    pub(crate) fn resolved_match(
        &self,
        subject: &str,
        candidate: &ParsedSchema,
        visibility: Visibility,
    ) -> Option<(u32, u32)> {
        if !candidate.references.is_empty() {
            return None;
        }
        let state = self.subjects.get(subject)?;
        let wanted = candidate.resolved_text()?;
        state.visible(visibility).rev().find(|(_, id)| {
            self.schemas.get(id).is_some_and(|parsed| {
                !parsed.references.is_empty()
                    && parsed.resolved_text().as_deref() == Some(wanted.as_str())
            })
        })
    }

    /// Ids of the schemas whose references name `subject`'s `version`, ascending.
    fn referencing<'a>(&'a self, subject: &'a str, version: u32) -> impl Iterator<Item = u32> + 'a {
        self.schemas
            .iter()
            .filter(move |(_, parsed)| {
                parsed
                    .references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version)
            })
            .map(|(id, _)| *id)
    }

    /// Subjects with a version shown by `visibility` that uses schema `id`.
    fn subjects_using(&self, id: u32, visibility: Visibility) -> impl Iterator<Item = &str> {
        self.subjects
            .iter()
            .filter(move |(_, s)| s.visible(visibility).any(|(_, used)| used == id))
            .map(|(name, _)| name.as_str())
    }
}
