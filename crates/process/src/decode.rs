//! From a raw-topic record to a typed event: wire header, schema by id, Avro decoding
//! resolved to the bundled raw schema, and field access.
//!
//! Resolving every writer schema to the bundled raw schema (Avro schema resolution) means
//! the rest of the processor sees one shape, whatever compatible version wrote the record.

use std::collections::HashMap;
use std::sync::Arc;

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

/// Writer schemas by id, fetched from the registry once each.
pub(crate) struct SchemaCache {
    registry: RegistryClient,
    reader: Arc<Schema>,
    schemas: HashMap<u32, Result<Arc<Schema>, String>>,
}

impl SchemaCache {
    pub fn new(registry: RegistryClient, reader: Schema) -> Self {
        Self {
            registry,
            reader: Arc::new(reader),
            schemas: HashMap::new(),
        }
    }

    /// The writer schema of `id`. `Ok(Err(reason))` when the registry says there is no such
    /// schema or it does not resolve to the raw schema (the record is a dead letter);
    /// `Err` when the registry cannot be asked (transient: the caller retries).
    async fn writer(&mut self, id: u32) -> Result<Result<Arc<Schema>, String>, ProcessError> {
        if let Some(known) = self.schemas.get(&id) {
            return Ok(known.clone());
        }
        let answer = match self.registry.schema_by_id(id).await {
            Ok(schema) => match GenericDatumReader::builder(&schema)
                .reader_schema(&self.reader)
                .build()
            {
                Ok(_) => Ok(schema),
                Err(e) => Err(format!(
                    "writer schema {id} does not resolve to the raw event schema: {e}"
                )),
            },
            // Ids are assigned before any record uses them: a 404 now is a 404 forever, and
            // a schema that does not parse will not parse later either. Anything else
            // (outage, credentials, wrong URL) is the registry's problem, not the record's.
            Err(
                e @ RegistryError::Http {
                    error_code: 40403, ..
                },
            )
            | Err(e @ RegistryError::InvalidSchema(_)) => {
                Err(format!("schema id {id} could not be used: {e}"))
            }
            Err(e) => return Err(ProcessError::Registry(e)),
        };
        self.schemas.insert(id, answer.clone());
        Ok(answer)
    }

    /// Decodes one framed record into an Avro record of the raw schema's shape.
    pub async fn decode(
        &mut self,
        bytes: &[u8],
    ) -> Result<Result<(u32, Value), Undecodable>, ProcessError> {
        let (id, payload) = match wire::split(bytes) {
            Ok(split) => split,
            Err(e) => {
                return Ok(Err(Undecodable {
                    reason: e.to_string(),
                    schema_id: None,
                }));
            }
        };
        let undecodable = |reason: String| {
            Ok(Err(Undecodable {
                reason,
                schema_id: Some(id),
            }))
        };
        let writer = match self.writer(id).await? {
            Ok(writer) => writer,
            Err(reason) => return undecodable(reason),
        };
        let reader = match GenericDatumReader::builder(&writer)
            .reader_schema(&self.reader)
            .build()
        {
            Ok(reader) => reader,
            Err(e) => return undecodable(format!("schema {id}: {e}")),
        };
        let mut rest = payload;
        match reader.read_value(&mut rest) {
            Ok(value) if rest.is_empty() => Ok(Ok((id, value))),
            Ok(_) => undecodable(format!(
                "{} trailing bytes after the Avro record (schema id {id})",
                rest.len()
            )),
            Err(e) => undecodable(format!("avro decoding with schema id {id} failed: {e}")),
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
