//! Read-only questions to the [`State`]: listings, versions, schemas, lookups, levels and
//! compatibility checks.

use super::{CheckTarget, State, Visibility, identity, version_not_found};
use crate::compat::{self, CompatibilityLevel, PreviousVersion};
use crate::error::RegistryError;
use crate::model::{RegisteredSchema, SubjectVersion, VersionSpec};
use crate::schema::ParsedSchema;

impl State {
    /// Subjects with at least one version shown by `visibility`, sorted, optionally
    /// filtered by prefix. `DeletedOnly` lists subjects whose versions are all soft-deleted.
    pub(crate) fn subject_names(
        &self,
        visibility: Visibility,
        prefix: Option<&str>,
    ) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)))
            .filter(|(_, s)| match visibility {
                Visibility::Live => s.has_live(),
                Visibility::IncludeDeleted => !s.versions.is_empty(),
                Visibility::DeletedOnly => !s.versions.is_empty() && !s.has_live(),
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Every version shown by `visibility` of the subjects starting with `prefix`, ordered by
    /// subject then version; with `latest_only`, the highest shown version of each subject.
    /// This is Confluent's `GET /schemas` (`getVersionsWithSubjectPrefix`).
    pub(crate) fn versions_with_prefix(
        &self,
        prefix: &str,
        visibility: Visibility,
        latest_only: bool,
    ) -> Result<Vec<RegisteredSchema>, RegistryError> {
        let mut found = Vec::new();
        for (name, state) in self.subjects.range(prefix.to_owned()..) {
            if !name.starts_with(prefix) {
                break;
            }
            let shown: Vec<(u32, u32)> = if latest_only {
                state.visible(visibility).next_back().into_iter().collect()
            } else {
                state.visible(visibility).collect()
            };
            for (version, id) in shown {
                found.push(self.registered(name, version, id)?);
            }
        }
        Ok(found)
    }

    /// Version numbers of a subject shown by `visibility`; `SubjectNotFound` when none.
    pub(crate) fn version_numbers(
        &self,
        subject: &str,
        visibility: Visibility,
    ) -> Result<Vec<u32>, RegistryError> {
        let versions: Vec<u32> = self
            .subjects
            .get(subject)
            .map(|s| s.visible(visibility).map(|(n, _)| n).collect())
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        Ok(versions)
    }

    /// One version of a subject; soft-deleted versions only with `include_deleted`.
    pub(crate) fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<RegisteredSchema, RegistryError> {
        let (version, id) = self.resolve(subject, spec, include_deleted)?;
        self.registered(subject, version, id)
    }

    /// The schema with this id (kept even when every version using it was deleted: data
    /// written with it may still be in the log, and ids are never reused).
    pub(crate) fn schema(&self, id: u32) -> Result<&ParsedSchema, RegistryError> {
        self.schemas
            .get(&id)
            .ok_or(RegistryError::SchemaIdNotFound(id))
    }

    /// The subject versions that use schema `id`.
    pub(crate) fn id_usages(
        &self,
        id: u32,
        visibility: Visibility,
    ) -> Result<Vec<SubjectVersion>, RegistryError> {
        self.schema(id)?;
        Ok(self
            .subjects
            .iter()
            .flat_map(|(name, s)| {
                s.visible(visibility)
                    .filter(move |(_, used)| *used == id)
                    .map(move |(version, _)| SubjectVersion {
                        subject: name.clone(),
                        version,
                    })
            })
            .collect())
    }

    /// The latest version of `subject` whose schema equals `candidate`.
    pub(crate) fn lookup(
        &self,
        subject: &str,
        candidate: &ParsedSchema,
        include_deleted: bool,
    ) -> Result<RegisteredSchema, RegistryError> {
        let (state, visibility) = self.visible_subject(subject, include_deleted)?;
        let id = self.ids_by_identity.get(&identity(candidate)).copied();
        let found = state
            .visible(visibility)
            .rev()
            .find(|(_, used)| Some(*used) == id)
            .or_else(|| self.resolved_match(subject, candidate, visibility))
            .ok_or_else(|| RegistryError::SchemaNotInSubject(subject.to_owned()))?;
        self.registered(subject, found.0, found.1)
    }

    /// The global level (BACKWARD unless set).
    pub(crate) fn global_level(&self) -> CompatibilityLevel {
        self.global_level.unwrap_or_default()
    }

    /// The subject's own level, if set.
    pub(crate) fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.subjects.get(subject).and_then(|s| s.level)
    }

    /// The level that applies to `subject`: its own, else the global one.
    pub(crate) fn effective_level(&self, subject: &str) -> CompatibilityLevel {
        self.subject_level(subject)
            .unwrap_or_else(|| self.global_level())
    }

    /// Every compatibility violation of `candidate` for `subject` (empty: compatible).
    pub(crate) fn compatibility_problems(
        &self,
        subject: &str,
        candidate: &ParsedSchema,
        target: CheckTarget,
    ) -> Result<Vec<String>, RegistryError> {
        let level = self.effective_level(subject);
        let previous = match target {
            CheckTarget::Level => self.live_history(subject),
            CheckTarget::Version(spec) => self.check_target(subject, spec)?,
        };
        Ok(compat::check(level, &candidate.schema, &previous))
    }

    /// The one live version a check against `spec` compares with. As Confluent's
    /// CompatibilityResource: a missing numbered version is 40402 even when the subject does
    /// not exist, and `latest` of a subject without live versions is nothing to compare with.
    fn check_target(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<Vec<PreviousVersion<'_>>, RegistryError> {
        let state = self.subjects.get(subject);
        let found = match spec {
            VersionSpec::Latest => state.and_then(|s| s.visible(Visibility::Live).next_back()),
            VersionSpec::Number(n) => {
                let live = state
                    .and_then(|s| s.versions.get(&n))
                    .filter(|v| !v.deleted)
                    .map(|v| (n, v.id));
                Some(live.ok_or_else(|| version_not_found(subject, spec))?)
            }
        };
        found
            .map(|(version, id)| {
                Ok(PreviousVersion {
                    version,
                    id,
                    schema: &self.schema(id)?.schema,
                })
            })
            .into_iter()
            .collect()
    }
}
