//! JSON to Avro: validates a JSON event against an Avro schema and converts it into an
//! `apache_avro` value, or says precisely which field is wrong and what was expected.
//!
//! The conversion is driven by the schema, so an evolved schema in the registry needs no
//! code change. Extra JSON fields the schema does not name are ignored (SPEC.md: unknown
//! fields do not make an event invalid); missing fields take their schema default, and a
//! missing field without a default is an error.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, RecordSchema, UnionSchema};
use apache_avro::types::Value as Avro;
use apache_avro::writer::datum::GenericDatumWriter;
use serde_json::Value as Json;

use crate::{EventError, TextRefusal, ValidationError, wire};

mod compiled;
mod logical;
use compiled::Plan;
use logical::Unit;

/// Validates JSON events against one writer schema and encodes them in Confluent wire
/// format with that schema's registry id.
pub struct EventValidator {
    schema: Schema,
    /// Named types of the schema, to follow `Ref`s.
    names: HashMap<Name, Schema>,
    schema_id: u32,
    /// The schema compiled for events given as JSON text.
    plan: Plan,
}

impl std::fmt::Debug for EventValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match &self.schema {
            Schema::Record(record) => record.name.fullname(None),
            other => describe_schema(other),
        };
        f.debug_struct("EventValidator")
            .field("schema_id", &self.schema_id)
            .field("schema", &name)
            .finish_non_exhaustive()
    }
}

/// A valid event, ready for the raw topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedEvent {
    /// Record key: `event.customer_id` as a decimal string when present, else `id`.
    pub key: Option<String>,
    /// Confluent wire format: magic byte, schema id, Avro binary.
    pub payload: Vec<u8>,
}

impl EventValidator {
    /// A validator for `schema`, registered in the registry under `schema_id`.
    pub fn new(schema: Schema, schema_id: u32) -> Result<Self, EventError> {
        let mut names = HashMap::new();
        collect_names(&schema, &mut names);
        // Fail now, not on the first request, if the encoder cannot resolve the schema.
        GenericDatumWriter::builder(&schema)
            .build()
            .map_err(|e| EventError::Schema(e.to_string()))?;
        let mut validator = Self {
            schema,
            names,
            schema_id,
            plan: Plan::placeholder(),
        };
        // Compiling follows the validator's names and converts its defaults.
        validator.plan = Plan::compile(&validator);
        Ok(validator)
    }

    /// The writer schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The registry id of the writer schema.
    pub fn schema_id(&self) -> u32 {
        self.schema_id
    }

    /// Checks one JSON event against the schema and converts it to an Avro value.
    pub fn to_avro(&self, json: &Json) -> Result<Avro, ValidationError> {
        let mut path = Vec::new();
        self.convert(self.schema(), json, &mut path)
    }

    /// Validates a batch of JSON events and encodes the valid ones; one result per input,
    /// in order. Building the encoder once per batch keeps name resolution off the
    /// per-event path.
    pub fn validate_batch<'j>(
        &self,
        events: impl IntoIterator<Item = &'j Json>,
    ) -> Result<Vec<Result<ValidatedEvent, ValidationError>>, EventError> {
        let writer = GenericDatumWriter::builder(self.schema())
            .validate(false)
            .build()
            .map_err(|e| EventError::Schema(e.to_string()))?;
        let mut out = Vec::new();
        for json in events {
            let avro = match self.to_avro(json) {
                Ok(avro) => avro,
                Err(invalid) => {
                    out.push(Err(invalid));
                    continue;
                }
            };
            let mut payload = Vec::with_capacity(256);
            wire::write_header(&mut payload, self.schema_id);
            writer
                .write_value_ref(&mut payload, &avro)
                .map_err(|e| EventError::Encode(e.to_string()))?;
            out.push(Ok(ValidatedEvent {
                key: partition_key(json),
                payload,
            }));
        }
        Ok(out)
    }

    /// Validates a batch of events given as their JSON text and encodes the valid ones;
    /// one result per input, in order. The compiled plan reads each text once into Avro
    /// binary; an event it does not take is parsed and converted by the value path
    /// ([`Self::to_avro`]), which decides and says why, so the answers are those of
    /// [`Self::validate_batch`] on the parsed events.
    pub fn validate_texts<'t>(
        &self,
        texts: impl IntoIterator<Item = &'t str>,
    ) -> Result<Vec<Result<ValidatedEvent, TextRefusal>>, EventError> {
        let mut scratch = compiled::Scratch::default();
        let mut writer = None;
        let mut out = Vec::new();
        for text in texts {
            let mut payload = Vec::with_capacity(text.len());
            wire::write_header(&mut payload, self.schema_id);
            if let Some(key) =
                compiled::encode_text(self, &self.plan, text, &mut payload, &mut scratch)
            {
                #[cfg(debug_assertions)]
                self.check_compiled(text, &key, &payload);
                out.push(Ok(ValidatedEvent { key, payload }));
                continue;
            }
            payload.truncate(wire::HEADER_LEN);
            let json: Json = match serde_json::from_str(text) {
                Ok(json) => json,
                Err(e) => {
                    out.push(Err(TextRefusal::Unparsable(e.to_string())));
                    continue;
                }
            };
            let avro = match self.to_avro(&json) {
                Ok(avro) => avro,
                Err(invalid) => {
                    out.push(Err(TextRefusal::Invalid(invalid)));
                    continue;
                }
            };
            let writer = match &mut writer {
                Some(writer) => writer,
                None => writer.insert(
                    GenericDatumWriter::builder(self.schema())
                        .validate(false)
                        .build()
                        .map_err(|e| EventError::Schema(e.to_string()))?,
                ),
            };
            writer
                .write_value_ref(&mut payload, &avro)
                .map_err(|e| EventError::Encode(e.to_string()))?;
            out.push(Ok(ValidatedEvent {
                key: partition_key(&json),
                payload,
            }));
        }
        Ok(out)
    }

    /// Debug builds hold every event the compiled path takes to the value path's answer:
    /// the same key, and bytes that decode to what the value path's bytes decode to.
    #[cfg(debug_assertions)]
    fn check_compiled(&self, text: &str, key: &Option<String>, payload: &[u8]) {
        let json: Json =
            serde_json::from_str(text).expect("the compiled path took unparsable JSON");
        let expected = self
            .validate_batch([&json])
            .expect("encoder")
            .pop()
            .expect("one result")
            .expect("the compiled path took an event the value path refuses");
        assert_eq!(*key, expected.key, "partition keys differ on {text}");
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(self.schema())
            .build()
            .expect("reader");
        let decode = |framed: &[u8]| {
            let (id, payload) = wire::split(framed).expect("framed");
            wire::read_datum(&reader, id, payload).expect("decodable")
        };
        assert_eq!(
            decode(payload),
            decode(&expected.payload),
            "compiled and value paths differ on {text}"
        );
    }

    fn convert<'j>(
        &self,
        schema: &Schema,
        json: &'j Json,
        path: &mut Vec<&'j str>,
    ) -> Result<Avro, ValidationError> {
        let mismatch = |path: &Vec<&str>| ValidationError {
            path: path.join("."),
            expected: describe_schema(schema),
            found: describe_json(json),
        };
        Ok(match (schema, json) {
            (Schema::Null, Json::Null) => Avro::Null,
            (Schema::Boolean, Json::Bool(b)) => Avro::Boolean(*b),
            (Schema::Int, Json::Number(n)) => Avro::Int(
                n.as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| mismatch(path))?,
            ),
            (Schema::Long, Json::Number(n)) => {
                Avro::Long(n.as_i64().ok_or_else(|| mismatch(path))?)
            }
            (Schema::Float, Json::Number(n)) => {
                Avro::Float(n.as_f64().ok_or_else(|| mismatch(path))? as f32)
            }
            (Schema::Double, Json::Number(n)) => {
                Avro::Double(n.as_f64().ok_or_else(|| mismatch(path))?)
            }
            (Schema::String, Json::String(s)) => Avro::String(s.clone()),
            // Parsed here, so that a malformed one is refused at ingest rather than failing
            // to decode in the processor; encoded as the schema says (text or 16 bytes).
            (Schema::Uuid(_), Json::String(s)) => {
                Avro::Uuid(apache_avro::Uuid::parse_str(s).map_err(|_| mismatch(path))?)
            }
            (Schema::Bytes, Json::String(s)) => {
                Avro::Bytes(latin1_bytes(s).ok_or_else(|| mismatch(path))?)
            }
            (Schema::Fixed(fixed), Json::String(s)) => {
                let bytes = latin1_bytes(s).filter(|b| b.len() == fixed.size);
                Avro::Fixed(fixed.size, bytes.ok_or_else(|| mismatch(path))?)
            }
            (Schema::Enum(e), Json::String(s)) => {
                let index = e.symbols.iter().position(|sym| sym == s);
                Avro::Enum(index.ok_or_else(|| mismatch(path))? as u32, s.clone())
            }
            (Schema::Decimal(decimal), _) => {
                logical::decimal(decimal, json).ok_or_else(|| mismatch(path))?
            }
            (Schema::BigDecimal, _) => logical::big_decimal(json).ok_or_else(|| mismatch(path))?,
            (Schema::Date, _) => logical::date(json).ok_or_else(|| mismatch(path))?,
            (Schema::TimeMillis, _) => {
                logical::time(Unit::Millis, json).ok_or_else(|| mismatch(path))?
            }
            (Schema::TimeMicros, _) => {
                logical::time(Unit::Micros, json).ok_or_else(|| mismatch(path))?
            }
            (Schema::Duration(_), _) => logical::duration(json).ok_or_else(|| mismatch(path))?,
            (
                Schema::TimestampMillis
                | Schema::TimestampMicros
                | Schema::TimestampNanos
                | Schema::LocalTimestampMillis
                | Schema::LocalTimestampMicros
                | Schema::LocalTimestampNanos,
                _,
            ) => timestamp(schema, json).ok_or_else(|| mismatch(path))?,
            (Schema::Array(array), Json::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    path.push("[]");
                    out.push(self.convert(&array.items, item, path)?);
                    path.pop();
                }
                Avro::Array(out)
            }
            (Schema::Map(map), Json::Object(entries)) => {
                let mut out = std::collections::HashMap::with_capacity(entries.len());
                for (k, v) in entries {
                    path.push(k);
                    out.insert(k.clone(), self.convert(&map.types, v, path)?);
                    path.pop();
                }
                Avro::Map(out)
            }
            (Schema::Record(record), Json::Object(_)) => self.convert_record(record, json, path)?,
            (Schema::Union(union), _) => self.convert_union(schema, union, json, path)?,
            (Schema::Ref { name }, _) => {
                let target = self.lookup(name).ok_or_else(|| ValidationError {
                    path: path.join("."),
                    expected: format!("a value of unresolved type {}", name.fullname(None)),
                    found: describe_json(json),
                })?;
                self.convert(target, json, path)?
            }
            _ => return Err(mismatch(path)),
        })
    }

    fn convert_record<'j>(
        &self,
        record: &RecordSchema,
        json: &'j Json,
        path: &mut Vec<&'j str>,
    ) -> Result<Avro, ValidationError> {
        let Json::Object(object) = json else {
            unreachable!("convert_record is only called with a JSON object")
        };
        let mut fields = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
            let value = match object.get_key_value(field.name.as_str()) {
                Some((key, value)) => {
                    path.push(key.as_str());
                    let converted = self.convert(&field.schema, value, path)?;
                    path.pop();
                    converted
                }
                None => match &field.default {
                    Some(default) => {
                        self.convert_default(&field.schema, default).map_err(|_| {
                            ValidationError {
                                path: joined(path, &field.name),
                                expected: describe_schema(&field.schema),
                                found: "missing (and the schema default does not fit)".into(),
                            }
                        })?
                    }
                    None => {
                        return Err(ValidationError {
                            path: joined(path, &field.name),
                            expected: describe_schema(&field.schema),
                            found: "missing".into(),
                        });
                    }
                },
            };
            fields.push((field.name.clone(), value));
        }
        Ok(Avro::Record(fields))
    }

    fn convert_union<'j>(
        &self,
        schema: &Schema,
        union: &UnionSchema,
        json: &'j Json,
        path: &mut Vec<&'j str>,
    ) -> Result<Avro, ValidationError> {
        let variants = union.variants();
        if json.is_null()
            && let Some(i) = variants.iter().position(|v| matches!(v, Schema::Null))
        {
            return Ok(Avro::Union(i as u32, Box::new(Avro::Null)));
        }
        let mut nested_error = None;
        for (i, variant) in variants.iter().enumerate() {
            if matches!(variant, Schema::Null) {
                continue;
            }
            match self.convert(variant, json, path) {
                Ok(value) => return Ok(Avro::Union(i as u32, Box::new(value))),
                // An error deeper than this field (inside a record branch) is more useful
                // than "expected record or null": keep the first one.
                Err(e) if e.path.len() > path_len(path) && nested_error.is_none() => {
                    nested_error = Some(e)
                }
                Err(_) => {}
            }
        }
        Err(nested_error.unwrap_or_else(|| ValidationError {
            path: path.join("."),
            expected: describe_schema(schema),
            found: describe_json(json),
        }))
    }

    /// A field default is JSON for the field's schema, or for a union's first branch.
    fn convert_default(&self, schema: &Schema, default: &Json) -> Result<Avro, ValidationError> {
        let mut path = Vec::new();
        match schema {
            Schema::Union(union) => match union.variants().first() {
                Some(first) => Ok(Avro::Union(
                    0,
                    Box::new(self.convert(first, default, &mut path)?),
                )),
                None => Err(ValidationError {
                    path: String::new(),
                    expected: "a non-empty union".into(),
                    found: describe_json(default),
                }),
            },
            _ => self.convert(schema, default, &mut path),
        }
    }

    fn lookup(&self, name: &Name) -> Option<&Schema> {
        self.names.get(name)
    }
}

/// `event.customer_id` as a decimal string when present, else `id` (SPEC.md), so one
/// customer's events stay ordered in one partition.
pub fn partition_key(event: &Json) -> Option<String> {
    let customer = event.get("event").and_then(|e| e.get("customer_id"));
    match customer.and_then(Json::as_i64) {
        Some(customer) => Some(customer.to_string()),
        None => event
            .get("id")
            .and_then(Json::as_i64)
            .map(|id| id.to_string()),
    }
}

/// Records every named type (record, enum, fixed) under its full name.
fn collect_names(schema: &Schema, names: &mut HashMap<Name, Schema>) {
    match schema {
        Schema::Record(record) => {
            names.insert(record.name.clone(), schema.clone());
            for field in &record.fields {
                collect_names(&field.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.clone(), schema.clone());
        }
        Schema::Fixed(f) => {
            names.insert(f.name.clone(), schema.clone());
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, names)),
        _ => {}
    }
}

fn joined(path: &[&str], last: &str) -> String {
    let mut out = path.join(".");
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(last);
    out
}

fn path_len(path: &[&str]) -> usize {
    path.iter().map(|p| p.len()).sum::<usize>() + path.len().saturating_sub(1)
}

/// Avro's JSON encoding of bytes: each character is one byte (code points 0..=255).
fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// A timestamp of any of Avro's six kinds, from a number or an RFC 3339 string.
fn timestamp(schema: &Schema, json: &Json) -> Option<Avro> {
    let (unit, local, wrap): (Unit, bool, fn(i64) -> Avro) = match schema {
        Schema::TimestampMillis => (Unit::Millis, false, Avro::TimestampMillis),
        Schema::TimestampMicros => (Unit::Micros, false, Avro::TimestampMicros),
        Schema::TimestampNanos => (Unit::Nanos, false, Avro::TimestampNanos),
        Schema::LocalTimestampMillis => (Unit::Millis, true, Avro::LocalTimestampMillis),
        Schema::LocalTimestampMicros => (Unit::Micros, true, Avro::LocalTimestampMicros),
        Schema::LocalTimestampNanos => (Unit::Nanos, true, Avro::LocalTimestampNanos),
        _ => return None,
    };
    let value = logical::timestamp(unit, local, json)?;
    // The lake keeps timestamps in microseconds: a millisecond count beyond that range
    // (past the year 294,000) is refused here rather than accepted and then kept only as
    // a dead letter.
    if matches!(unit, Unit::Millis) && value.checked_mul(1000).is_none() {
        return None;
    }
    Some(wrap(value))
}

/// What a schema expects, in words a client developer understands.
pub(crate) fn describe_schema(schema: &Schema) -> String {
    match schema {
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int => "int (32-bit integer)".into(),
        Schema::Long => "long (64-bit integer)".into(),
        Schema::Float | Schema::Double => "number".into(),
        Schema::Bytes => "bytes (string)".into(),
        Schema::String => "string".into(),
        Schema::Uuid(_) => "uuid".into(),
        Schema::Array(a) => format!("array of {}", describe_schema(&a.items)),
        Schema::Map(m) => format!("object of {}", describe_schema(&m.types)),
        Schema::Record(r) => format!("object (record {})", r.name.name()),
        Schema::Enum(e) => format!("one of {}", e.symbols.join(", ")),
        Schema::Fixed(f) => format!("string of {} bytes", f.size),
        Schema::Decimal(d) => format!(
            "decimal({},{}) (a number or a decimal string)",
            d.precision, d.scale
        ),
        Schema::BigDecimal => "decimal (a number or a decimal string)".into(),
        Schema::Date => "date (\"YYYY-MM-DD\" or days since 1970-01-01)".into(),
        Schema::TimeMillis => "time of day in milliseconds (0 to 86399999)".into(),
        Schema::TimeMicros => "time of day in microseconds (0 to 86399999999)".into(),
        Schema::TimestampMillis | Schema::TimestampMicros | Schema::TimestampNanos => {
            "timestamp (RFC 3339 with an offset, or a long since the epoch)".into()
        }
        Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => {
            "local timestamp (\"YYYY-MM-DDTHH:MM:SS\" or a long)".into()
        }
        Schema::Duration(_) => "duration ({\"months\", \"days\", \"millis\"})".into(),
        Schema::Union(u) => {
            // List null last: "long or null" reads better than "null or long".
            let mut parts: Vec<String> = u
                .variants()
                .iter()
                .filter(|v| !matches!(v, Schema::Null))
                .map(describe_schema)
                .collect();
            if u.is_nullable() {
                parts.push("null".into());
            }
            parts.join(" or ")
        }
        Schema::Ref { name } => name.name().to_string(),
    }
}

/// What was found, short and single-line (it goes into an HTTP header).
fn describe_json(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("boolean {b}"),
        // serde_json reads integers beyond u64 as floats; call them what the client sent.
        Json::Number(n)
            if n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() >= 9.2e18) =>
        {
            format!("integer {n} (out of range)")
        }
        Json::Number(n) if n.is_f64() => format!("number {n}"),
        Json::Number(n) if n.as_i64().is_none() => format!("integer {n} (out of range)"),
        Json::Number(n) => format!("integer {n}"),
        Json::String(s) => {
            let short: String = s.chars().take(40).collect();
            let ellipsis = if short.len() < s.len() { "…" } else { "" };
            format!("string {}{ellipsis}", Json::String(short))
        }
        Json::Array(_) => "array".into(),
        Json::Object(_) => "object".into(),
    }
}

#[cfg(test)]
mod arrow_leg;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
