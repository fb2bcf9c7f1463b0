//! The compiled plan driven by the JSON tokens: `serde` seeds that write Avro binary as
//! they read. A record's fields arrive in the client's order and are written in the
//! schema's: each field is encoded into a scratch buffer and the record assembled at its
//! closing brace, absent fields taking their pre-encoded default.

use std::collections::HashSet;
use std::fmt;

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use apache_avro::writer::datum::GenericDatumWriter;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value as Json};

use super::{Choice, Node, Plan};
use crate::validate::{EventValidator, latin1_bytes};

/// Buffers reused from event to event of a batch.
#[derive(Debug, Default)]
pub(in crate::validate) struct Scratch {
    buffers: Vec<Vec<u8>>,
    slots: Vec<Vec<Option<(usize, usize)>>>,
}

impl Scratch {
    fn buffer(&mut self) -> Vec<u8> {
        self.buffers.pop().unwrap_or_default()
    }

    fn give_back(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.buffers.push(buffer);
    }
}

/// The integers the partition key is made of, as found on the way.
#[derive(Debug, Default, Clone, Copy)]
struct Key {
    id: Option<i64>,
    customer_id: Option<i64>,
}

/// Where a value sits relative to the partition key's fields (`id`, `event.customer_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Elsewhere,
    Root,
    Event,
    Id,
    CustomerId,
}

impl At {
    /// Where the value of member `key` of an object at `self` sits.
    fn member(self, key: &str) -> At {
        match (self, key) {
            (At::Root, "id") => At::Id,
            (At::Root, "event") => At::Event,
            (At::Event, "customer_id") => At::CustomerId,
            _ => At::Elsewhere,
        }
    }
}

/// Encodes the event `text` after `header`, or `None` when the compiled path does not
/// take it (the value path then decides). `Some` carries the partition key's integers.
pub(in crate::validate) fn encode_text(
    validator: &EventValidator,
    plan: &Plan,
    text: &str,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> Option<Option<String>> {
    let mut key = Key::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let encoder = Encoder {
        validator,
        plan,
        node: &plan.root,
        at: At::Root,
        out,
        scratch,
        key: &mut key,
    };
    encoder.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(key.customer_id.or(key.id).map(|k| k.to_string()))
}

/// Writes the value at `node` into `out`.
struct Encoder<'a> {
    validator: &'a EventValidator,
    plan: &'a Plan,
    node: &'a Node,
    at: At,
    out: &'a mut Vec<u8>,
    scratch: &'a mut Scratch,
    key: &'a mut Key,
}

/// The key serde_json (with `raw_value`) reads an object by as a `RawValue` holder when
/// parsing a `Value`: an object with it is not what it looks like, so it is left to the
/// value path.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

fn refuse_raw_value_token<E: de::Error>(key: &str) -> Result<(), E> {
    match key == RAW_VALUE_TOKEN {
        true => Err(refused()),
        false => Ok(()),
    }
}

/// Refusal: the value path takes over. Its text is never shown.
fn refused<E: de::Error>() -> E {
    E::custom("not taken by the compiled path")
}

impl<'a> Encoder<'a> {
    fn child<'b>(&'b mut self, node: &'a Node, at: At, out: &'b mut Vec<u8>) -> Encoder<'b>
    where
        'a: 'b,
    {
        Encoder {
            validator: self.validator,
            plan: self.plan,
            node,
            at,
            out,
            scratch: &mut *self.scratch,
            key: &mut *self.key,
        }
    }

    /// The node to write a scalar to; a union writes the first branch that takes it.
    fn scalar<E: de::Error>(self, scalar: Scalar<'_>) -> Result<(), E> {
        let Node::Union(union) = self.node else {
            return match write_scalar(self.validator, self.node, &scalar, self.out) {
                Some(true) => Ok(()),
                Some(false) | None => Err(refused()),
            };
        };
        for (i, branch) in union.branches.iter().enumerate() {
            if matches!(branch, Node::Null) {
                continue;
            }
            let mark = self.out.len();
            write_long(i as i64, self.out);
            match write_scalar(self.validator, branch, &scalar, self.out) {
                Some(true) => return Ok(()),
                Some(false) => self.out.truncate(mark),
                None => return Err(refused()),
            }
        }
        Err(refused())
    }

    /// For a container token: the node itself, or the one union branch that takes it
    /// (its index written first).
    fn container<E: de::Error>(self, choice: fn(&super::UnionPlan) -> Choice) -> Result<Self, E> {
        let Node::Union(union) = self.node else {
            return Ok(self);
        };
        match choice(union) {
            Choice::One(i) => {
                write_long(i64::from(i), self.out);
                let node = &union.branches[i as usize];
                Ok(Encoder { node, ..self })
            }
            Choice::None | Choice::Several => Err(refused()),
        }
    }

    fn note_integer(&mut self, value: Option<i64>) {
        note(self.at, self.key, value);
    }

    fn record<'de, A: MapAccess<'de>>(self, index: usize, mut map: A) -> Result<(), A::Error> {
        let record = self.plan.record(index);
        let mut buffer = self.scratch.buffer();
        let mut slots = self.scratch.slots.pop().unwrap_or_default();
        slots.clear();
        slots.resize(record.fields.len(), None);
        let Encoder {
            validator,
            plan,
            at,
            out,
            scratch,
            key,
            ..
        } = self;
        while let Some(name) = map.next_key_seed(KeySeed)? {
            refuse_raw_value_token::<A::Error>(&name)?;
            let member = at.member(&name);
            let Some(field) = record.field(&name) else {
                map.next_value_seed(Probe {
                    at: member,
                    key: &mut *key,
                })?;
                continue;
            };
            let start = buffer.len();
            map.next_value_seed(Encoder {
                validator,
                plan,
                node: &record.fields[field].node,
                at: member,
                out: &mut buffer,
                scratch: &mut *scratch,
                key: &mut *key,
            })?;
            slots[field] = Some((start, buffer.len()));
        }
        for (field, slot) in record.fields.iter().zip(&slots) {
            match (slot, &field.default) {
                (Some((start, end)), _) => out.extend_from_slice(&buffer[*start..*end]),
                (None, Some(default)) => out.extend_from_slice(default),
                (None, None) => return Err(refused()),
            }
        }
        scratch.give_back(buffer);
        scratch.slots.push(slots);
        Ok(())
    }

    fn map<'de, A: MapAccess<'de>>(mut self, values: &'a Node, mut map: A) -> Result<(), A::Error> {
        let mut buffer = self.scratch.buffer();
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key_seed(KeySeed)? {
            refuse_raw_value_token::<A::Error>(&name)?;
            // A repeated key: the value path keeps the last one; leave it to that.
            if seen.contains(name.as_ref()) {
                return Err(refused());
            }
            write_bytes(name.as_bytes(), &mut buffer);
            let at = self.at.member(&name);
            map.next_value_seed(self.child(values, at, &mut buffer))?;
            seen.insert(name.into_owned());
        }
        write_block(seen.len(), &buffer, self.out);
        self.scratch.give_back(buffer);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Encoder<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Encoder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        self.note_integer(Some(v));
        self.scalar(Scalar::Number(Number::from(v)))
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        self.note_integer(i64::try_from(v).ok());
        self.scalar(Scalar::Number(Number::from(v)))
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        self.note_integer(None);
        let number = Number::from_f64(v).ok_or_else(refused)?;
        self.scalar(Scalar::Number(number))
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.note_integer(None);
        self.scalar(Scalar::Str(v))
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.note_integer(None);
        match self.node {
            Node::Null => Ok(()),
            Node::Union(union) => match union.null {
                Some(i) => {
                    write_long(i64::from(i), self.out);
                    Ok(())
                }
                None => Err(refused()),
            },
            _ => Err(refused()),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.note_integer(None);
        let mut this = self.container(|u| u.array)?;
        let Node::Array(items) = this.node else {
            return Err(refused());
        };
        let mut buffer = this.scratch.buffer();
        let mut count = 0;
        while seq
            .next_element_seed(this.child(items, At::Elsewhere, &mut buffer))?
            .is_some()
        {
            count += 1;
        }
        write_block(count, &buffer, this.out);
        this.scratch.give_back(buffer);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<(), A::Error> {
        self.note_integer(None);
        let this = self.container(|u| u.object)?;
        match this.node {
            Node::Record(index) => this.record(*index, map),
            Node::Map(values) => this.map(values, map),
            Node::Logical(schema) => {
                let json = Json::deserialize(de::value::MapAccessDeserializer::new(map))?;
                match write_logical(this.validator, schema, &json, this.out) {
                    Some(true) => Ok(()),
                    Some(false) | None => Err(refused()),
                }
            }
            _ => Err(refused()),
        }
    }
}

/// A scalar token.
enum Scalar<'t> {
    Bool(bool),
    Number(Number),
    Str(&'t str),
}

impl Scalar<'_> {
    fn to_json(&self) -> Json {
        match self {
            Scalar::Bool(b) => Json::Bool(*b),
            Scalar::Number(n) => Json::Number(n.clone()),
            Scalar::Str(s) => Json::String((*s).to_string()),
        }
    }
}

/// Writes `scalar` as `node` (not a union) if the value path would take it; on `false`,
/// nothing was written; `None`: the value path would fail on it (see [`write_logical`]).
fn write_scalar(
    validator: &EventValidator,
    node: &Node,
    scalar: &Scalar<'_>,
    out: &mut Vec<u8>,
) -> Option<bool> {
    match (node, scalar) {
        (Node::Boolean, Scalar::Bool(b)) => out.push(u8::from(*b)),
        (Node::Int, Scalar::Number(n)) => match n.as_i64().and_then(|v| i32::try_from(v).ok()) {
            Some(v) => write_long(i64::from(v), out),
            None => return Some(false),
        },
        (Node::Long, Scalar::Number(n)) => match n.as_i64() {
            Some(v) => write_long(v, out),
            None => return Some(false),
        },
        (Node::Float, Scalar::Number(n)) => match n.as_f64() {
            Some(v) => out.extend_from_slice(&(v as f32).to_le_bytes()),
            None => return Some(false),
        },
        (Node::Double, Scalar::Number(n)) => match n.as_f64() {
            Some(v) => out.extend_from_slice(&v.to_le_bytes()),
            None => return Some(false),
        },
        (Node::String, Scalar::Str(s)) => write_bytes(s.as_bytes(), out),
        (Node::Bytes, Scalar::Str(s)) => match latin1_bytes(s) {
            Some(bytes) => write_bytes(&bytes, out),
            None => return Some(false),
        },
        (Node::Fixed(size), Scalar::Str(s)) => match latin1_bytes(s) {
            Some(bytes) if bytes.len() == *size => out.extend_from_slice(&bytes),
            _ => return Some(false),
        },
        (Node::Enum(symbols), Scalar::Str(s)) => match symbols.iter().position(|sym| sym == s) {
            Some(i) => write_long(i as i64, out),
            None => return Some(false),
        },
        (Node::Logical(schema), scalar) => {
            return write_logical(validator, schema, &scalar.to_json(), out);
        }
        _ => return Some(false),
    }
    Some(true)
}

/// A logical type's value: converted by the value path's rules, encoded as apache-avro
/// does. `None`: it converts but does not encode, which the value path would find only
/// after choosing this branch, so no other branch may be tried.
fn write_logical(
    validator: &EventValidator,
    schema: &Schema,
    json: &Json,
    out: &mut Vec<u8>,
) -> Option<bool> {
    let Ok(value) = validator.convert(schema, json, &mut Vec::new()) else {
        return Some(false);
    };
    match value {
        // Dates and times of day are Avro ints, timestamps longs: written directly.
        Avro::Date(v) | Avro::TimeMillis(v) => write_long(i64::from(v), out),
        Avro::TimeMicros(v)
        | Avro::TimestampMillis(v)
        | Avro::TimestampMicros(v)
        | Avro::TimestampNanos(v)
        | Avro::LocalTimestampMillis(v)
        | Avro::LocalTimestampMicros(v)
        | Avro::LocalTimestampNanos(v) => write_long(v, out),
        value => {
            let writer = GenericDatumWriter::builder(schema)
                .validate(false)
                .build()
                .ok()?;
            let mark = out.len();
            if writer.write_value_ref(out, &value).is_err() {
                out.truncate(mark);
                return None;
            }
        }
    }
    Some(true)
}

/// Avro's `long`: zig-zag, then a variable-length integer.
fn write_long(v: i64, out: &mut Vec<u8>) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Avro's `bytes` and `string`: the length, then the bytes.
fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    write_long(bytes.len() as i64, out);
    out.extend_from_slice(bytes);
}

/// An array's or map's items as apache-avro writes them: one block, then the end mark.
fn write_block(count: usize, items: &[u8], out: &mut Vec<u8>) {
    if count > 0 {
        write_long(count as i64, out);
        out.extend_from_slice(items);
    }
    out.push(0);
}

/// An object key, borrowed from the text when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_string()))
    }
}

/// A member the schema does not name: skipped, but for the partition key's integers.
struct Probe<'k> {
    at: At,
    key: &'k mut Key,
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    /// Read token by token, never skipped: serde_json's skipping checks neither numbers'
    /// range, nor escapes, nor nesting, which parsing the event (the value path) refuses.
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Probe<'_> {
    fn note(self, value: Option<i64>) {
        note(self.at, self.key, value);
    }
}

/// What a value at `at` makes of the partition key: an integer at `id` or
/// `event.customer_id` is kept (anything else there clears it), and a new `event` value
/// clears the customer id an earlier one gave (the last member of a name wins).
fn note(at: At, key: &mut Key, integer: Option<i64>) {
    match at {
        At::Id => key.id = integer,
        At::CustomerId => key.customer_id = integer,
        At::Event => key.customer_id = None,
        At::Root | At::Elsewhere => {}
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.note(Some(v));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.note(i64::try_from(v).ok());
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.note(None);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.note(None);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.note(None);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.note(None);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let key = self.key;
        note(self.at, key, None);
        while seq
            .next_element_seed(Probe {
                at: At::Elsewhere,
                key: &mut *key,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.at;
        let key = self.key;
        note(at, key, None);
        while let Some(name) = map.next_key_seed(KeySeed)? {
            refuse_raw_value_token::<A::Error>(&name)?;
            map.next_value_seed(Probe {
                at: at.member(&name),
                key: &mut *key,
            })?;
        }
        Ok(())
    }
}
