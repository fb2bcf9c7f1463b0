//! The registry's in-memory model: schemas by id, subjects with their versions, and
//! compatibility levels.
//!
//! Every change is an [`Event`]. A `plan_*` method validates a request against the current
//! state and returns the event to make durable; [`State::apply`] then performs it. Replaying
//! the journal calls `apply` only, so live changes and recovery share one code path.

mod queries;
mod references;

use std::collections::{BTreeMap, HashMap};

use super::event::Event;
use crate::compat::{CompatibilityLevel, PreviousVersion};
use crate::error::RegistryError;
use crate::model::{RegisteredSchema, SchemaReference, VersionSpec, Visibility};
use crate::schema::ParsedSchema;

/// What makes two registrations the same schema: the normalised text and the references,
/// in order (Confluent hashes both).
type Identity = (String, Vec<SchemaReference>);

fn identity(schema: &ParsedSchema) -> Identity {
    (schema.normalized.clone(), schema.references.clone())
}

/// What registering a schema under a subject amounts to.
#[derive(Debug)]
pub(crate) enum RegisterPlan {
    /// The schema is already a live version of the subject: nothing to write.
    Existing { id: u32, version: u32 },
    /// A new version must be written.
    New { id: u32, version: u32, event: Event },
}

/// Against what `POST /compatibility/...` checks a candidate.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CheckTarget {
    /// All versions the subject's level looks at (as a registration would).
    Level,
    /// One version, in the direction(s) of the subject's level.
    Version(VersionSpec),
}

#[derive(Debug, Clone, Copy)]
struct VersionState {
    id: u32,
    deleted: bool,
}

#[derive(Debug, Default)]
struct SubjectState {
    versions: BTreeMap<u32, VersionState>,
    level: Option<CompatibilityLevel>,
}

impl SubjectState {
    fn visible(&self, visibility: Visibility) -> impl DoubleEndedIterator<Item = (u32, u32)> + '_ {
        self.versions
            .iter()
            .filter(move |(_, v)| visibility.shows(v.deleted))
            .map(|(n, v)| (*n, v.id))
    }

    fn has_live(&self) -> bool {
        self.versions.values().any(|v| !v.deleted)
    }

    fn is_empty(&self) -> bool {
        self.versions.is_empty() && self.level.is_none()
    }
}

/// The whole registry state.
#[derive(Debug, Default)]
pub(crate) struct State {
    schemas: BTreeMap<u32, ParsedSchema>,
    ids_by_identity: HashMap<Identity, u32>,
    subjects: BTreeMap<String, SubjectState>,
    global_level: Option<CompatibilityLevel>,
}

impl State {
    // ----- planning changes -----

    /// Plans registering `candidate` under `subject`: same schema as a live version returns
    /// that version; otherwise the subject's level is enforced and a new version planned,
    /// reusing the schema's id if any subject already has it.
    pub(crate) fn plan_register(
        &self,
        subject: &str,
        candidate: &ParsedSchema,
    ) -> Result<RegisterPlan, RegistryError> {
        let existing_id = self.ids_by_identity.get(&identity(candidate)).copied();
        let state = self.subjects.get(subject);
        if let (Some(id), Some(state)) = (existing_id, state)
            && let Some((version, _)) = state
                .visible(Visibility::Live)
                .rev()
                .find(|(_, used)| *used == id)
        {
            return Ok(RegisterPlan::Existing { id, version });
        }
        // Confluent matches the resolved form only when the schema as sent has no id yet.
        if existing_id.is_none()
            && let Some((version, id)) = self.resolved_match(subject, candidate, Visibility::Live)
        {
            return Ok(RegisterPlan::Existing { id, version });
        }
        let problems = self.compatibility_problems(subject, candidate, CheckTarget::Level)?;
        if !problems.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_owned(),
                reason: problems.join("; "),
            });
        }
        let id = match existing_id {
            Some(id) => id,
            None => self.next_id()?,
        };
        // Soft-deleted versions keep their numbers, so numbering continues after them.
        let version = match state.and_then(|s| s.versions.keys().next_back()) {
            Some(last) => last.checked_add(1).ok_or_else(|| {
                RegistryError::StoreUnavailable(format!(
                    "subject '{subject}' has no version numbers left"
                ))
            })?,
            None => 1,
        };
        Ok(RegisterPlan::New {
            id,
            version,
            event: Event::Register {
                subject: subject.to_owned(),
                version,
                id,
                schema: candidate.normalized.clone(),
                references: candidate.references.clone(),
            },
        })
    }

    /// Plans a subject delete; returns the event and the versions it deletes.
    pub(crate) fn plan_delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<(Event, Vec<u32>), RegistryError> {
        let state = self
            .subjects
            .get(subject)
            .filter(|s| !s.versions.is_empty())
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))?;
        let versions: Vec<u32> = if permanent {
            state.versions.keys().copied().collect()
        } else {
            if !state.has_live() {
                return Err(RegistryError::SubjectSoftDeleted(subject.to_owned()));
            }
            state.visible(Visibility::Live).map(|(n, _)| n).collect()
        };
        // Version by version, as Confluent: references from other subjects (soft-deleted
        // ones too for a permanent delete), then whether the version was soft-deleted first.
        for &version in &versions {
            if self.referenced_from_other_subjects(subject, version, visibility_of(permanent)) {
                return Err(RegistryError::ReferenceExists {
                    subject: subject.to_owned(),
                    version,
                });
            }
            if permanent && state.versions.get(&version).is_some_and(|v| !v.deleted) {
                return Err(RegistryError::SubjectNotSoftDeleted(subject.to_owned()));
            }
        }
        let event = Event::DeleteSubject {
            subject: subject.to_owned(),
            permanent,
        };
        Ok((event, versions))
    }

    /// Plans a version delete; returns the event and the version number it deletes.
    /// `latest` means the latest live version for a soft delete and the latest version of
    /// any state for a permanent one (which must already be soft-deleted).
    pub(crate) fn plan_delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<(Event, u32), RegistryError> {
        // A numbered version is found whatever its state, so a second soft delete gets
        // 40406 rather than 40402.
        let include_deleted = permanent || matches!(spec, VersionSpec::Number(_));
        let (version, _) = self.resolve(subject, spec, include_deleted)?;
        let deleted = self
            .subjects
            .get(subject)
            .and_then(|s| s.versions.get(&version))
            .is_some_and(|v| v.deleted);
        // Confluent's order: a second soft delete, then references (only from live schemas
        // for a soft delete), then a permanent delete that was not preceded by a soft one.
        if !permanent && deleted {
            return Err(RegistryError::VersionSoftDeleted {
                subject: subject.to_owned(),
                version,
            });
        }
        if !self
            .referencing_ids(subject, version, visibility_of(permanent))
            .is_empty()
        {
            return Err(RegistryError::ReferenceExists {
                subject: subject.to_owned(),
                version,
            });
        }
        match (permanent, deleted) {
            (true, false) => Err(RegistryError::VersionNotSoftDeleted {
                subject: subject.to_owned(),
                version,
            }),
            _ => Ok((
                Event::DeleteVersion {
                    subject: subject.to_owned(),
                    version,
                    permanent,
                },
                version,
            )),
        }
    }

    /// Plans removing a level; returns the event and the level that was set.
    pub(crate) fn plan_clear_level(
        &self,
        subject: Option<&str>,
    ) -> Result<(Event, CompatibilityLevel), RegistryError> {
        let previous = match subject {
            None => self.global_level(),
            Some(name) => match self.subjects.get(name) {
                Some(state) => state
                    .level
                    .ok_or_else(|| RegistryError::SubjectLevelNotConfigured(name.to_owned()))?,
                None => return Err(RegistryError::SubjectNotFound(name.to_owned())),
            },
        };
        let event = Event::ClearLevel {
            subject: subject.map(str::to_owned),
        };
        Ok((event, previous))
    }

    // ----- applying changes -----

    /// Performs `event`. Fails (without changing anything) when the event does not fit the
    /// state, which during replay means the journal is corrupt.
    pub(crate) fn apply(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Register {
                subject,
                version,
                id,
                schema,
                references,
            } => self.apply_register(subject, version, id, schema, references),
            Event::DeleteVersion {
                subject,
                version,
                permanent,
            } => {
                let state = self
                    .subjects
                    .get_mut(&subject)
                    .ok_or_else(|| format!("delete of unknown subject '{subject}'"))?;
                if !state.versions.contains_key(&version) {
                    return Err(format!(
                        "delete of unknown version {version} of '{subject}'"
                    ));
                }
                if permanent {
                    state.versions.remove(&version);
                } else if let Some(v) = state.versions.get_mut(&version) {
                    v.deleted = true;
                }
                self.drop_if_empty(&subject);
                Ok(())
            }
            Event::DeleteSubject { subject, permanent } => {
                if permanent {
                    self.subjects
                        .remove(&subject)
                        .ok_or_else(|| format!("delete of unknown subject '{subject}'"))?;
                } else {
                    let state = self
                        .subjects
                        .get_mut(&subject)
                        .ok_or_else(|| format!("delete of unknown subject '{subject}'"))?;
                    state.versions.values_mut().for_each(|v| v.deleted = true);
                }
                Ok(())
            }
            Event::SetLevel { subject, level } => {
                match subject {
                    None => self.global_level = Some(level),
                    Some(name) => self.subjects.entry(name).or_default().level = Some(level),
                }
                Ok(())
            }
            Event::ClearLevel { subject } => {
                match subject {
                    None => self.global_level = None,
                    Some(name) => {
                        if let Some(state) = self.subjects.get_mut(&name) {
                            state.level = None;
                        }
                        self.drop_if_empty(&name);
                    }
                }
                Ok(())
            }
        }
    }

    fn apply_register(
        &mut self,
        subject: String,
        version: u32,
        id: u32,
        schema: String,
        references: Vec<SchemaReference>,
    ) -> Result<(), String> {
        if self
            .subjects
            .get(&subject)
            .is_some_and(|s| s.versions.contains_key(&version))
        {
            return Err(format!("version {version} of '{subject}' registered twice"));
        }
        match self.schemas.get(&id) {
            Some(known) if known.normalized != schema || known.references != references => {
                return Err(format!("id {id} registered again with a different schema"));
            }
            Some(_) => {}
            None => {
                let key = (schema, references);
                if self.ids_by_identity.contains_key(&key) {
                    return Err(format!("schema of id {id} already has another id"));
                }
                let (schema, references) = key;
                // The referenced versions were live when this was planned, and replay
                // rebuilds the same state in the same order.
                let referenced = self
                    .referenced_texts(&references, Visibility::IncludeDeleted)
                    .map_err(|e| format!("references of schema {id}: {e}"))?;
                let mut parsed =
                    ParsedSchema::parse_with_references(&schema, references, &referenced)
                        .map_err(|e| format!("schema of id {id} does not parse: {e}"))?;
                // Key by the journaled text so lookups match what was planned.
                parsed.normalized = schema;
                self.ids_by_identity.insert(identity(&parsed), id);
                self.schemas.insert(id, parsed);
            }
        }
        let state = self.subjects.entry(subject).or_default();
        state
            .versions
            .insert(version, VersionState { id, deleted: false });
        Ok(())
    }

    // ----- helpers -----

    /// `subject`'s versions seen with or without the soft-deleted ones; `SubjectNotFound`
    /// when none is visible.
    fn visible_subject(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<(&SubjectState, Visibility), RegistryError> {
        let visibility = visibility_of(include_deleted);
        let state = self
            .subjects
            .get(subject)
            .filter(|s| s.visible(visibility).next().is_some())
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))?;
        Ok((state, visibility))
    }

    fn resolve(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<(u32, u32), RegistryError> {
        let (state, visibility) = self.visible_subject(subject, include_deleted)?;
        let found = match spec {
            VersionSpec::Latest => state.visible(visibility).next_back(),
            VersionSpec::Number(n) => state
                .versions
                .get(&n)
                .filter(|v| visibility.shows(v.deleted))
                .map(|v| (n, v.id)),
        };
        found.ok_or_else(|| version_not_found(subject, spec))
    }

    fn registered(
        &self,
        subject: &str,
        version: u32,
        id: u32,
    ) -> Result<RegisteredSchema, RegistryError> {
        let parsed = self.schema(id)?;
        Ok(RegisteredSchema {
            subject: subject.to_owned(),
            id,
            version,
            schema: parsed.normalized.clone(),
            references: parsed.references.clone(),
        })
    }

    /// Live versions of `subject`, oldest first, with their parsed schemas.
    fn live_history(&self, subject: &str) -> Vec<PreviousVersion<'_>> {
        let Some(state) = self.subjects.get(subject) else {
            return Vec::new();
        };
        state
            .visible(Visibility::Live)
            .filter_map(|(version, id)| {
                self.schemas.get(&id).map(|parsed| PreviousVersion {
                    version,
                    id,
                    schema: &parsed.schema,
                })
            })
            .collect()
    }

    fn next_id(&self) -> Result<u32, RegistryError> {
        match self.schemas.keys().next_back() {
            None => Ok(1),
            Some(last) => last
                .checked_add(1)
                .ok_or_else(|| RegistryError::StoreUnavailable("schema ids exhausted".to_owned())),
        }
    }

    fn drop_if_empty(&mut self, subject: &str) {
        if self
            .subjects
            .get(subject)
            .is_some_and(SubjectState::is_empty)
        {
            self.subjects.remove(subject);
        }
    }
}

/// Live versions only, or soft-deleted ones too.
fn visibility_of(include_deleted: bool) -> Visibility {
    if include_deleted {
        Visibility::IncludeDeleted
    } else {
        Visibility::Live
    }
}

/// Confluent's 40402, which prints `latest` as `-1`.
fn version_not_found(subject: &str, spec: VersionSpec) -> RegistryError {
    RegistryError::VersionNotFound {
        subject: subject.to_owned(),
        version: match spec {
            VersionSpec::Latest => "-1".to_owned(),
            VersionSpec::Number(n) => n.to_string(),
        },
    }
}
