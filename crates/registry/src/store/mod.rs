//! The durable schema store: the in-memory [`state`] behind a lock, and a [`journal`] that
//! makes every change durable before it is applied and acknowledged.
//!
//! Writers are serialised by the journal mutex and plan against the current state while
//! holding it, so a plan cannot go stale before it is applied; readers only take the state's
//! read lock briefly and never wait for an fsync.

mod event;
mod journal;
mod state;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use apache_avro::Schema;

use crate::compat::CompatibilityLevel;
use crate::error::RegistryError;
use crate::model::{RegisteredSchema, SchemaReference, SubjectVersion, VersionSpec, Visibility};
use crate::schema::ParsedSchema;
use event::Event;
use journal::Journal;
use state::{RegisterPlan, State};

pub(crate) use state::CheckTarget;

/// File that one open store holds an exclusive lock on.
const LOCK_FILE: &str = "LOCK";

/// Result of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// Global schema id.
    pub id: u32,
    /// Version within the subject.
    pub version: u32,
    /// False when the schema was already a live version of the subject.
    pub created: bool,
}

/// The registry's subjects, versions, schemas and compatibility levels, persisted in a
/// directory (an fsynced JSON-lines journal, replayed on open).
#[derive(Debug)]
pub struct SchemaStore {
    dir: PathBuf,
    state: RwLock<State>,
    journal: Mutex<Journal>,
    /// Changes applied since open; see [`SchemaStore::generation`].
    generation: AtomicU64,
    _lock: File,
}

impl SchemaStore {
    /// Opens the store in `dir` (created if missing), replaying its journal. Fails if
    /// another store holds the directory or the journal is corrupt.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| RegistryError::io(dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                journal::sync_dir(parent)?;
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| RegistryError::io(&lock_path, e))?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => RegistryError::StoreLocked(dir.to_owned()),
            std::fs::TryLockError::Error(e) => RegistryError::io(&lock_path, e),
        })?;

        let (journal, events) = Journal::open(dir)?;
        let mut state = State::default();
        let count = events.len();
        for (index, event) in events.into_iter().enumerate() {
            state
                .apply(event)
                .map_err(|reason| RegistryError::CorruptJournal {
                    path: dir.join(journal::JOURNAL_FILE),
                    line: index + 1,
                    reason,
                })?;
        }
        tracing::info!(dir = %dir.display(), events = count, "schema store opened");
        Ok(Self {
            dir: dir.to_owned(),
            state: RwLock::new(state),
            journal: Mutex::new(journal),
            generation: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many changes were applied since the store was opened. It moves once a change is
    /// visible to reads and before the call that made it returns (so before the registry's
    /// HTTP answer): a reader in the same process that finds the same number as before knows
    /// nothing changed, without reading the state. Repeated registrations change nothing
    /// and do not move it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    // ----- reads -----

    /// Subjects with versions shown by `visibility`, sorted, optionally filtered by prefix.
    pub fn subjects(&self, visibility: Visibility, prefix: Option<&str>) -> Vec<String> {
        self.read().subject_names(visibility, prefix)
    }

    /// Every version shown by `visibility` of the subjects starting with `prefix`, by
    /// subject then version; only each subject's highest shown version with `latest_only`.
    pub fn versions_with_prefix(
        &self,
        prefix: &str,
        visibility: Visibility,
        latest_only: bool,
    ) -> Result<Vec<RegisteredSchema>, RegistryError> {
        self.read()
            .versions_with_prefix(prefix, visibility, latest_only)
    }

    /// Version numbers of `subject` shown by `visibility`.
    pub fn versions(
        &self,
        subject: &str,
        visibility: Visibility,
    ) -> Result<Vec<u32>, RegistryError> {
        self.read().version_numbers(subject, visibility)
    }

    /// One version of `subject`.
    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<RegisteredSchema, RegistryError> {
        self.read().version(subject, spec, include_deleted)
    }

    /// The schema text of `id`.
    pub fn schema_text(&self, id: u32) -> Result<String, RegistryError> {
        self.read().schema(id).map(|s| s.normalized.clone())
    }

    /// The parsed schema of `id`; with references, its complete form (referenced types
    /// defined where first used), which stands alone.
    pub fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        self.read().schema(id).map(|s| Arc::clone(&s.schema))
    }

    /// The references of schema `id` (empty for most schemas).
    pub fn schema_references(&self, id: u32) -> Result<Vec<SchemaReference>, RegistryError> {
        self.read().schema(id).map(|s| s.references.clone())
    }

    /// Ids of the schemas referencing `subject`'s version `spec` (found even when
    /// soft-deleted), ascending; referrers whose versions are all soft-deleted count only
    /// with `include_deleted`.
    pub fn referenced_by(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        self.read().referenced_by(subject, spec, include_deleted)
    }

    /// The subject versions using schema `id`.
    pub fn id_usages(
        &self,
        id: u32,
        visibility: Visibility,
    ) -> Result<Vec<SubjectVersion>, RegistryError> {
        self.read().id_usages(id, visibility)
    }

    /// The version of `subject` holding `schema` (the latest if several).
    pub fn lookup(
        &self,
        subject: &str,
        schema: &str,
        include_deleted: bool,
    ) -> Result<RegisteredSchema, RegistryError> {
        self.lookup_with_references(subject, schema, &[], include_deleted)
    }

    /// The version of `subject` holding `schema` with `references` (the latest if several).
    /// A schema without references also finds a version with references whose resolved
    /// form it is, as Confluent's lookup does.
    pub fn lookup_with_references(
        &self,
        subject: &str,
        schema: &str,
        references: &[SchemaReference],
        include_deleted: bool,
    ) -> Result<RegisteredSchema, RegistryError> {
        // Confluent parses a looked-up schema as a stored one: soft-deleted references count.
        let candidate = self.candidate(schema, references, Visibility::IncludeDeleted)?;
        self.read().lookup(subject, &candidate, include_deleted)
    }

    /// The global compatibility level.
    pub fn global_level(&self) -> CompatibilityLevel {
        self.read().global_level()
    }

    /// The subject's own level, if one is set.
    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.read().subject_level(subject)
    }

    /// Compatibility violations of `schema` for `subject` (empty: compatible).
    pub(crate) fn compatibility_problems(
        &self,
        subject: &str,
        schema: &str,
        references: &[SchemaReference],
        target: CheckTarget,
    ) -> Result<Vec<String>, RegistryError> {
        let candidate = self.candidate(schema, references, Visibility::Live)?;
        self.read()
            .compatibility_problems(subject, &candidate, target)
    }

    // ----- changes (each durable before it returns) -----

    /// Registers `schema` under `subject`, enforcing the subject's compatibility level.
    pub fn register(&self, subject: &str, schema: &str) -> Result<Registration, RegistryError> {
        self.register_with_references(subject, schema, &[])
    }

    /// Registers `schema`, which may use the named types of the live versions `references`
    /// names (and of theirs, transitively), under `subject`. Compatibility is checked on the
    /// resolved schemas; the same text with other references is another schema.
    pub fn register_with_references(
        &self,
        subject: &str,
        schema: &str,
        references: &[SchemaReference],
    ) -> Result<Registration, RegistryError> {
        // A schema without references is parsed before waiting for the writers' lock; one
        // with references needs the state it is planned against.
        let plain = if references.is_empty() {
            Some(ParsedSchema::parse(schema)?)
        } else {
            None
        };
        let mut journal = self.lock_journal();
        let candidate = match plain {
            Some(candidate) => candidate,
            None => self.candidate(schema, references, Visibility::Live)?,
        };
        let plan = self.read().plan_register(subject, &candidate)?;
        match plan {
            RegisterPlan::Existing { id, version } => Ok(Registration {
                id,
                version,
                created: false,
            }),
            RegisterPlan::New { id, version, event } => {
                self.commit(&mut journal, event)?;
                tracing::info!(subject, id, version, "schema registered");
                Ok(Registration {
                    id,
                    version,
                    created: true,
                })
            }
        }
    }

    /// Deletes every version of `subject` (soft, or permanent after a soft delete); returns
    /// the deleted version numbers.
    pub fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let mut journal = self.lock_journal();
        let (event, versions) = self.read().plan_delete_subject(subject, permanent)?;
        self.commit(&mut journal, event)?;
        tracing::info!(subject, permanent, ?versions, "subject deleted");
        Ok(versions)
    }

    /// Deletes one version (soft, or permanent after a soft delete); returns its number.
    pub fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<u32, RegistryError> {
        let mut journal = self.lock_journal();
        let (event, version) = self.read().plan_delete_version(subject, spec, permanent)?;
        self.commit(&mut journal, event)?;
        tracing::info!(subject, version, permanent, "version deleted");
        Ok(version)
    }

    /// Sets the global level (`subject: None`) or a subject's level.
    pub fn set_level(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        let mut journal = self.lock_journal();
        let event = Event::SetLevel {
            subject: subject.map(str::to_owned),
            level,
        };
        self.commit(&mut journal, event)?;
        tracing::info!(subject = subject.unwrap_or("<global>"), %level, "compatibility level set");
        Ok(())
    }

    /// Removes the global level (back to BACKWARD) or a subject's level; returns the level
    /// that was in force.
    pub fn clear_level(&self, subject: Option<&str>) -> Result<CompatibilityLevel, RegistryError> {
        let mut journal = self.lock_journal();
        let (event, previous) = self.read().plan_clear_level(subject)?;
        self.commit(&mut journal, event)?;
        tracing::info!(
            subject = subject.unwrap_or("<global>"),
            "compatibility level cleared"
        );
        Ok(previous)
    }

    /// `schema` parsed with the texts of the versions `references` names (shown by
    /// `visibility`), transitively.
    fn candidate(
        &self,
        schema: &str,
        references: &[SchemaReference],
        visibility: Visibility,
    ) -> Result<ParsedSchema, RegistryError> {
        if references.is_empty() {
            return ParsedSchema::parse(schema);
        }
        let referenced = self.read().referenced_texts(references, visibility)?;
        ParsedSchema::parse_with_references(schema, references.to_vec(), &referenced)
    }

    fn commit(&self, journal: &mut Journal, event: Event) -> Result<(), RegistryError> {
        journal.append(&event)?;
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(event)
            .map_err(|reason| {
                // Unreachable when plans are right; the journal and memory now disagree,
                // so refuse to go on rather than serve a state that replay would not rebuild.
                tracing::error!(%reason, "journaled event does not apply to the state");
                RegistryError::StoreUnavailable(reason)
            })?;
        // After the state lock is released: whoever sees the new number reads the change.
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic cannot leave State half-changed: `apply` validates before mutating.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaying_an_event_that_does_not_fit_refuses_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let line = r#"{"op":"delete_version","subject":"ghost","version":1,"permanent":false}"#;
        std::fs::write(dir.path().join(journal::JOURNAL_FILE), format!("{line}\n")).expect("write");
        let err = SchemaStore::open(dir.path()).expect_err("corrupt");
        assert!(
            matches!(err, RegistryError::CorruptJournal { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn generation_moves_with_every_change_and_not_for_repeats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SchemaStore::open(dir.path()).expect("open");
        assert_eq!(store.generation(), 0);
        let schema = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#;
        store.register("s", schema).expect("register");
        assert_eq!(store.generation(), 1);
        store.register("s", schema).expect("register again");
        assert_eq!(store.generation(), 1, "nothing changed");
        store
            .set_level(Some("s"), CompatibilityLevel::None)
            .expect("level");
        store.register("s", r#""string""#).expect("v2");
        assert_eq!(store.generation(), 3);
        assert!(store.register("s", "not json").is_err());
        assert_eq!(store.generation(), 3, "a refused change is no change");
        drop(store);
        let reopened = SchemaStore::open(dir.path()).expect("reopen");
        assert_eq!(reopened.generation(), 0, "counted per open, not persisted");
    }

    #[test]
    fn journal_holds_one_line_per_change_and_none_for_repeats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SchemaStore::open(dir.path()).expect("open");
        let schema = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#;
        store.register("s", schema).expect("register");
        store.register("s", schema).expect("register again");
        store.register("t", schema).expect("other subject");
        store
            .set_level(Some("s"), CompatibilityLevel::Full)
            .expect("level");
        let text = std::fs::read_to_string(dir.path().join(journal::JOURNAL_FILE)).expect("read");
        assert_eq!(text.lines().count(), 3, "{text}");
    }
}
