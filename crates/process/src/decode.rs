//! From a raw-topic record to a typed event: wire header, schema by id, Avro decoding
//! with the writer's own schema, and field access.
//!
//! Every record is decoded with the schema it was written with, so fields of later
//! versions reach the lake. Per writer schema the cache holds the plan of its user columns
//! (see `clickstream_lake::avro`, planned against the raw subject's versions) and the id
//! of its latest-topic schema.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use clickstream_event::schemas::derive_latest;
use clickstream_event::{LATEST_TOPIC, value_subject, wire};
use clickstream_lake::LakeTable;
use clickstream_lake::avro::{SubjectVersion, WriterPlan};
use clickstream_registry::{RegistryClient, RegistryError, VersionSpec};

use crate::ProcessError;
use crate::compiled::CompiledReader;
use crate::roles::{EventPaths, FieldPath, FieldRoles, long_at, string_at, timestamp_at};
use crate::segment::SegmentCall;
use crate::stream::Stream;
use clickstream_enrich::IdDigest;

/// Why a record cannot become an event: kept in `dead_letters` with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undecodable {
    pub reason: String,
    pub schema_id: Option<u32>,
}

/// A ready decoder for one writer schema id.
struct Decoder {
    reader: GenericDatumReader<'static>,
    /// Where its fields land in `events`; `Err`: why its records cannot land there.
    plan: Result<Arc<WriterPlan>, String>,
    /// Id of its latest-topic schema; `None` when that schema was refused.
    latest_id: Option<u32>,
    /// Where its records keep the fields a raw event is read from.
    paths: Arc<EventPaths>,
    /// Its raw events read straight from the record, when the schema allows
    /// (`compiled.rs`): a clickstream schema with no user columns.
    compiled: Option<CompiledReader>,
}

/// A decoded raw record (`'r`: the record's bytes).
pub(crate) struct Decoded<'r> {
    pub schema_id: u32,
    /// The record.
    pub body: Body<'r>,
    /// Where its fields beyond the seed's land.
    pub plan: Arc<WriterPlan>,
    /// Id of the latest-topic schema for it (`None`: not emitted there).
    pub latest_id: Option<u32>,
    /// Where it keeps the fields a raw event is read from.
    pub paths: Arc<EventPaths>,
}

/// A decoded record: its value tree, or the raw event read straight from its bytes.
pub(crate) enum Body<'r> {
    /// In its writer schema's shape.
    Value(Value),
    /// Read by the schema's [`CompiledReader`].
    Event(RawEvent<'r>),
}

impl<'r> Decoded<'r> {
    /// The record read the way `stream` reads it. `Err` is why it cannot land: a dead
    /// letter.
    pub fn parsed(&self, stream: Stream) -> Result<Parsed<'_>, String> {
        match &self.body {
            Body::Event(event) => Ok(Parsed::Event(event.clone())),
            Body::Value(value) => Parsed::from_value(stream, value, &self.paths),
        }
    }

    /// Its value and plan, when it has user columns to fill.
    pub fn user_columns(&self) -> Option<(&WriterPlan, &Value)> {
        match &self.body {
            Body::Value(value) if !self.plan.columns().is_empty() => {
                Some((self.plan.as_ref(), value))
            }
            _ => None,
        }
    }
}

/// Decoders by writer schema id, each built once from the registry's schema.
///
/// Schemas are leaked to `'static` so that decoders (which borrow them) can be cached:
/// one schema per id ever seen, immutable, a few kilobytes each, for the process' life.
pub(crate) struct SchemaCache {
    registry: RegistryClient,
    /// The stream whose subject this follows.
    stream: Stream,
    /// Where the fields with a role are, to say at load which a schema lacks.
    roles: FieldRoles,
    /// Versions of the raw subject known so far.
    history: Vec<SubjectVersion>,
    decoders: HashMap<u32, Result<Decoder, String>>,
}

impl SchemaCache {
    pub fn new(registry: RegistryClient, stream: Stream, roles: FieldRoles) -> Self {
        Self {
            registry,
            stream,
            roles,
            history: Vec::new(),
            decoders: HashMap::new(),
        }
    }

    /// Loads the decoders of every live version of the raw subject, so that records
    /// written with them decode even while the registry is unreachable later.
    pub async fn warm(&mut self, events: &LakeTable) -> Result<usize, ProcessError> {
        self.refresh_history().await?;
        let ids: Vec<u32> = self.history.iter().map(|v| v.id).collect();
        for id in &ids {
            self.load(*id, events).await?;
        }
        Ok(ids.len())
    }

    /// Reads the stream subject's versions not known yet.
    async fn refresh_history(&mut self) -> Result<(), ProcessError> {
        let subject = self.stream.subject();
        let versions = match self.registry.versions(&subject).await {
            Ok(versions) => versions,
            // Nothing registered yet (no ingest has started): nothing to load.
            Err(RegistryError::SubjectNotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for version in versions {
            if self.history.iter().any(|v| v.version == version) {
                continue;
            }
            let registered = self
                .registry
                .version(&subject, VersionSpec::Number(version))
                .await?;
            let schema = self.registry.schema_by_id(registered.id).await?;
            self.history.push(SubjectVersion {
                version,
                id: registered.id,
                schema,
            });
        }
        Ok(())
    }

    /// Makes sure the decoder of `id` is known. An unusable schema is remembered as the
    /// reason its records are dead letters; `Err` when the registry cannot be asked
    /// (transient: the caller retries).
    async fn load(&mut self, id: u32, events: &LakeTable) -> Result<(), ProcessError> {
        if self.decoders.contains_key(&id) {
            return Ok(());
        }
        if !self.history.iter().any(|v| v.id == id) {
            // A version registered since: its columns are planned in subject order.
            self.refresh_history().await?;
        }
        let decoder = match self.registry.schema_by_id(id).await {
            Ok(schema) => {
                if self.stream == Stream::Clickstream {
                    warn_missing_roles(id, &schema, &self.roles);
                }
                let schema: &'static Schema = Box::leak(Box::new((*schema).clone()));
                let table = events.arrow_schema()?;
                match GenericDatumReader::builder(schema).build() {
                    Ok(reader) => {
                        let plan = WriterPlan::for_layout(
                            self.stream.layout(),
                            &table,
                            &self.history,
                            id,
                            schema,
                        )
                        .map(Arc::new);
                        let paths = Arc::new(EventPaths::new(&self.roles, schema));
                        let compiled = (self.stream == Stream::Clickstream
                            && plan.as_ref().is_ok_and(|p| p.columns().is_empty()))
                        .then(|| CompiledReader::new(schema, &paths))
                        .flatten();
                        Ok(Decoder {
                            reader,
                            plan,
                            latest_id: self.latest_id(id, schema).await?,
                            paths,
                            compiled,
                        })
                    }
                    Err(e) => Err(format!("schema id {id} cannot decode: {e}")),
                }
            }
            // Ids are assigned before any record uses them: a 404 now is a 404 forever, and
            // a schema that does not parse will not parse later either. Anything else
            // (outage, credentials, wrong URL) is the registry's problem, not the record's.
            Err(
                e @ (RegistryError::Http {
                    error_code: 40403, ..
                }
                | RegistryError::InvalidSchema(_)),
            ) => Err(format!("schema id {id} could not be used: {e}")),
            Err(e) => return Err(ProcessError::Registry(e)),
        };
        if let Ok(Decoder {
            plan: Err(reason), ..
        }) = &decoder
        {
            tracing::warn!(schema_id = id, %reason, "records of this schema cannot land in events; they are kept in dead_letters");
        }
        self.decoders.insert(id, decoder);
        Ok(())
    }

    /// Registers the latest-topic schema derived from writer schema `id` (idempotent) and
    /// returns its id; `None`, with a warning, when it cannot be (the latest topic is
    /// derived, at-least-once output; the lake has every event all the same).
    async fn latest_id(&self, id: u32, schema: &Schema) -> Result<Option<u32>, ProcessError> {
        if !self.stream.has_derived_outputs() {
            return Ok(None);
        }
        let derived = serde_json::to_string(schema)
            .map_err(|e| e.to_string())
            .and_then(|raw| derive_latest(&raw).map_err(|e| e.to_string()));
        let text = match derived {
            Ok(text) => text,
            Err(reason) => {
                tracing::warn!(schema_id = id, %reason, "no latest-topic schema for this writer schema; its records are not emitted to the latest topic");
                return Ok(None);
            }
        };
        match self
            .registry
            .register(&value_subject(LATEST_TOPIC), &text)
            .await
        {
            Ok(latest) => Ok(Some(latest)),
            Err(e) if e.is_transient() => Err(ProcessError::Registry(e)),
            Err(e) => {
                tracing::warn!(schema_id = id, error = %e, "the latest topic's subject refused the schema derived from this writer schema; its records are not emitted to the latest topic");
                Ok(None)
            }
        }
    }

    /// Whether decoding `bytes` would load a schema (its id seen for the first time),
    /// which needs `events`.
    pub fn needs_loading(&self, bytes: &[u8]) -> bool {
        wire::split(bytes).is_ok_and(|(id, _)| !self.decoders.contains_key(&id))
    }

    /// Decodes one framed record with its writer schema; `events` is needed when the
    /// record's schema is seen for the first time ([`Self::needs_loading`]).
    pub async fn decode<'r>(
        &mut self,
        bytes: &'r [u8],
        events: Option<&LakeTable>,
    ) -> Result<Result<Decoded<'r>, Undecodable>, ProcessError> {
        let (id, payload) = match wire::split(bytes) {
            Ok(split) => split,
            Err(e) => {
                return Ok(Err(Undecodable {
                    reason: e.to_string(),
                    schema_id: None,
                }));
            }
        };
        if !self.decoders.contains_key(&id) {
            let events = events.ok_or_else(|| {
                ProcessError::Internal(format!("schema id {id} is new and `events` is not at hand"))
            })?;
            self.load(id, events).await?;
        }
        let undecodable = |reason: String| {
            Ok(Err(Undecodable {
                reason,
                schema_id: Some(id),
            }))
        };
        let decoder = match self.decoders.get(&id) {
            Some(Ok(decoder)) => decoder,
            Some(Err(reason)) => return undecodable(reason.clone()),
            None => return undecodable(format!("schema id {id} could not be loaded")),
        };
        let plan = match &decoder.plan {
            Ok(plan) => plan.clone(),
            Err(reason) => return undecodable(reason.clone()),
        };
        let decoded = |body| Decoded {
            schema_id: id,
            body,
            plan: plan.clone(),
            latest_id: decoder.latest_id,
            paths: decoder.paths.clone(),
        };
        if let Some(event) = decoder.compiled.as_ref().and_then(|c| c.event(payload)) {
            #[cfg(debug_assertions)]
            assert_value_path_agrees(decoder, id, payload, &event);
            return Ok(Ok(decoded(Body::Event(event))));
        }
        let value = match wire::read_datum(&decoder.reader, id, payload) {
            Ok(value) => value,
            Err(e) => return undecodable(e.to_string()),
        };
        if let Err(reason) = plan.check(&value) {
            return undecodable(reason);
        }
        Ok(Ok(decoded(Body::Value(value))))
    }
}

/// Debug builds: what the compiled reader read is what the value path reads, so every
/// test that processes records compares the two.
#[cfg(debug_assertions)]
fn assert_value_path_agrees(decoder: &Decoder, id: u32, payload: &[u8], event: &RawEvent<'_>) {
    let value = wire::read_datum(&decoder.reader, id, payload);
    let from_value = value
        .as_ref()
        .map_err(ToString::to_string)
        .and_then(|value| RawEvent::from_value(value, &decoder.paths));
    assert_eq!(
        from_value.as_ref(),
        Ok(event),
        "schema {id}: the compiled reader and the value path disagree on {payload:?}"
    );
}

/// A decoded record read the way its stream reads it.
pub(crate) enum Parsed<'v> {
    /// A raw event of the clickstream stream.
    Event(RawEvent<'v>),
    /// A call of the Segment stream.
    Call(SegmentCall<'v>),
}

impl<'v> Parsed<'v> {
    /// Reads `value` as a record of `stream` (`paths`: where its writer schema keeps the
    /// clickstream stream's fields). `Err` is why it cannot land: a dead letter.
    pub fn from_value(
        stream: Stream,
        value: &'v Value,
        paths: &EventPaths,
    ) -> Result<Self, String> {
        match stream {
            Stream::Clickstream => RawEvent::from_value(value, paths).map(Parsed::Event),
            Stream::Segment => SegmentCall::from_value(value).map(Parsed::Call),
        }
    }

    /// What duplicates are recognised by: the event id, or a digest of the message id.
    pub fn dedup_key(&self) -> DedupKey {
        match self {
            Parsed::Event(event) => DedupKey::Id(event.id),
            Parsed::Call(call) => DedupKey::Message(IdDigest::of(call.message_id)),
        }
    }
}

/// The key of the duplicate state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DedupKey {
    /// A raw event's `id`.
    Id(i64),
    /// A Segment call's `messageId`, digested.
    Message(IdDigest),
}

/// The fields of a raw event, borrowed from its decoded Avro value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawEvent<'v> {
    pub id: i64,
    pub event_type: &'v str,
    pub package_id: Option<&'v str>,
    pub user_agent: &'v str,
    pub ip: &'v str,
    pub customer_id: Option<i64>,
    /// As sent, or a timestamp-millis/-micros in RFC 3339.
    pub timestamp: Cow<'v, str>,
    pub page: Option<&'v str>,
    pub query: Option<&'v str>,
    pub product: Option<i64>,
    pub referrer: Option<&'v str>,
    pub position: Option<i64>,
}

impl<'v> RawEvent<'v> {
    /// Reads the fields out of a decoded record: the roles where `roles` says, the seed's
    /// other fields (`package_id`, `event.query`, `event.product`, `event.position`) by
    /// their seed paths. A required role missing or null is the reason the record is a
    /// dead letter.
    pub fn from_value(value: &'v Value, paths: &EventPaths) -> Result<Self, String> {
        if !matches!(value, Value::Record(_)) {
            return Err("decoded value is not a record".into());
        }
        let required = |path: &dyn FieldPath, role: &str| {
            format!(
                "field '{}' (the {role} role) is missing or null",
                path.text()
            )
        };
        Ok(RawEvent {
            id: long_at(value, &paths.id)?.ok_or_else(|| required(&paths.id, "id"))?,
            event_type: string_at(value, &paths.event_type)?
                .ok_or_else(|| required(&paths.event_type, "type"))?,
            package_id: string_at(value, &paths.package_id)?,
            user_agent: string_at(value, &paths.user_agent)?
                .ok_or_else(|| required(&paths.user_agent, "user_agent"))?,
            ip: string_at(value, &paths.ip)?.ok_or_else(|| required(&paths.ip, "ip"))?,
            customer_id: long_at(value, &paths.customer_id)?,
            timestamp: timestamp_at(value, &paths.timestamp)?
                .ok_or_else(|| required(&paths.timestamp, "timestamp"))?,
            page: string_at(value, &paths.page)?,
            query: string_at(value, &paths.query)?,
            product: long_at(value, &paths.product)?,
            referrer: string_at(value, &paths.referrer)?,
            position: long_at(value, &paths.position)?,
        })
    }
}

/// Says, once per writer schema, which roles it has no field for and what that leaves
/// null (or, for a required role, that its records are dead letters).
fn warn_missing_roles(id: u32, schema: &Schema, roles: &FieldRoles) {
    for missing in roles.missing_in(schema) {
        if missing.required {
            tracing::warn!(
                schema_id = id, role = missing.role, path = %missing.path,
                "schema has no field for a required role: its records are kept in dead_letters (set processor.fields.{} to where the schema keeps it)",
                missing.role
            );
        } else {
            tracing::warn!(
                schema_id = id, role = missing.role, path = %missing.path, stays_null = missing.effect,
                "schema has no field for this role: what it feeds stays null for its events"
            );
        }
    }
}
