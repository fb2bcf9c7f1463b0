//! From a raw-topic record to a typed event: wire header, schema by id, Avro decoding
//! resolved to the bundled raw schema, and field access.
//!
//! Resolving every writer schema to the bundled raw schema (Avro schema resolution) means
//! the rest of the processor sees one shape, whatever compatible version wrote the record.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use clickstream_event::wire;
use clickstream_registry::{RegistryClient, RegistryError};

use crate::ProcessError;

/// Why a record cannot become an event: kept in `dead_letters` with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undecodable {
    pub reason: String,
    pub schema_id: Option<u32>,
}

/// A ready decoder for one writer schema id.
struct Decoder {
    reader: GenericDatumReader<'static>,
    /// The writer schema is the raw schema itself: no resolution, and the Avro bytes are
    /// already the latest schema's prefix.
    is_raw_schema: bool,
}

/// A decoded raw record.
pub(crate) struct Decoded {
    pub schema_id: u32,
    pub value: Value,
    /// Written with exactly the raw schema (see [`Decoder::is_raw_schema`]).
    pub is_raw_schema: bool,
}

/// Decoders by writer schema id, each built once from the registry's schema.
///
/// Schemas are leaked to `'static` so that decoders (which borrow them) can be cached:
/// one schema per id ever seen, immutable, a few kilobytes each, for the process' life.
pub(crate) struct SchemaCache {
    registry: RegistryClient,
    reader: &'static Schema,
    reader_form: String,
    decoders: HashMap<u32, Result<Decoder, String>>,
}

impl SchemaCache {
    pub fn new(registry: RegistryClient, reader: Schema) -> Self {
        let reader_form = reader.canonical_form();
        Self {
            registry,
            reader: Box::leak(Box::new(reader)),
            reader_form,
            decoders: HashMap::new(),
        }
    }

    /// Loads the decoders of every live version of `subject`, so that records written with
    /// them decode even while the registry is unreachable later.
    pub async fn warm(&mut self, subject: &str) -> Result<usize, ProcessError> {
        let versions = match self.registry.versions(subject).await {
            Ok(versions) => versions,
            // Nothing registered yet (no ingest has started): nothing to load.
            Err(RegistryError::SubjectNotFound(_)) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        for version in &versions {
            let registered = self
                .registry
                .version(subject, clickstream_registry::VersionSpec::Number(*version))
                .await?;
            self.load(registered.id).await?;
        }
        Ok(versions.len())
    }

    /// Makes sure the decoder of `id` is known. An unusable schema is remembered as the
    /// reason its records are dead letters; `Err` when the registry cannot be asked
    /// (transient: the caller retries).
    async fn load(&mut self, id: u32) -> Result<(), ProcessError> {
        if self.decoders.contains_key(&id) {
            return Ok(());
        }
        let decoder = match self.registry.schema_by_id(id).await {
            Ok(schema) => {
                let schema: &'static Schema = Box::leak(Box::new((*schema).clone()));
                let is_raw_schema = schema.canonical_form() == self.reader_form;
                let built = if is_raw_schema {
                    GenericDatumReader::builder(schema).build()
                } else {
                    GenericDatumReader::builder(schema)
                        .reader_schema(self.reader)
                        .build()
                };
                built
                    .map(|reader| Decoder {
                        reader,
                        is_raw_schema,
                    })
                    .map_err(|e| {
                        format!("writer schema {id} does not resolve to the raw event schema: {e}")
                    })
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
        self.decoders.insert(id, decoder);
        Ok(())
    }

    /// Decodes one framed record into an Avro record of the raw schema's shape.
    pub async fn decode(
        &mut self,
        bytes: &[u8],
    ) -> Result<Result<Decoded, Undecodable>, ProcessError> {
        let (id, payload) = match wire::split(bytes) {
            Ok(split) => split,
            Err(e) => {
                return Ok(Err(Undecodable {
                    reason: e.to_string(),
                    schema_id: None,
                }));
            }
        };
        self.load(id).await?;
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
        match wire::read_datum(&decoder.reader, id, payload) {
            Ok(value) => Ok(Ok(Decoded {
                schema_id: id,
                value,
                is_raw_schema: decoder.is_raw_schema,
            })),
            Err(e) => undecodable(e.to_string()),
        }
    }
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
    pub timestamp: &'v str,
    pub page: Option<&'v str>,
    pub query: Option<&'v str>,
    pub product: Option<i64>,
    pub referrer: Option<&'v str>,
    pub position: Option<i64>,
}

impl<'v> RawEvent<'v> {
    /// Reads the fields out of a value of the raw schema's shape.
    pub fn from_value(value: &'v Value) -> Result<Self, String> {
        let Value::Record(top) = value else {
            return Err("decoded value is not a record".into());
        };
        let Some(Value::Record(event)) = field(top, "event") else {
            return Err("field 'event' is missing or not a record".into());
        };
        Ok(RawEvent {
            id: long(top, "id")?.ok_or("field 'id' is null")?,
            event_type: string(top, "type")?.ok_or("field 'type' is null")?,
            package_id: string(top, "package_id")?,
            user_agent: string(event, "user_agent")?.ok_or("field 'event.user_agent' is null")?,
            ip: string(event, "ip")?.ok_or("field 'event.ip' is null")?,
            customer_id: long(event, "customer_id")?,
            timestamp: string(event, "timestamp")?.ok_or("field 'event.timestamp' is null")?,
            page: string(event, "page")?,
            query: string(event, "query")?,
            product: long(event, "product")?,
            referrer: string(event, "referrer")?,
            position: long(event, "position")?,
        })
    }
}

/// A record field, with a union unwrapped to its branch.
fn field<'v>(record: &'v [(String, Value)], name: &str) -> Option<&'v Value> {
    let value = record.iter().find(|(n, _)| n == name).map(|(_, v)| v)?;
    match value {
        Value::Union(_, inner) => Some(inner),
        other => Some(other),
    }
}

fn string<'v>(record: &'v [(String, Value)], name: &str) -> Result<Option<&'v str>, String> {
    match field(record, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("field '{name}' is {other:?}, expected a string")),
    }
}

fn long(record: &[(String, Value)], name: &str) -> Result<Option<i64>, String> {
    match field(record, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Long(v)) => Ok(Some(*v)),
        Some(Value::Int(v)) => Ok(Some(i64::from(*v))),
        Some(other) => Err(format!("field '{name}' is {other:?}, expected a long")),
    }
}
