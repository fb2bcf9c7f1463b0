//! The validator compiled from its schema: an event's JSON text is read once, token by
//! token, and written straight out as Avro binary, with no JSON value tree and no Avro
//! value tree in between.
//!
//! The plan resolves what the schema leaves to lookups at run time: named types are
//! followed once, record fields carry their defaults already encoded, and a union knows in
//! advance which of its branches can take an array or an object.
//!
//! The compiled path only ever *accepts*: when it meets anything it does not take (a
//! wrong value, a missing field without a default, a union it cannot choose a branch of
//! from the token alone, JSON it cannot parse), the event goes through the value path
//! ([`EventValidator::to_avro`]), which gives the answer, valid or not, with the reason it
//! always gave. So the two paths cannot disagree on what is refused or why, and a property
//! test holds them to the same bytes for what is accepted.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, RecordSchema};
use apache_avro::writer::datum::GenericDatumWriter;

use super::EventValidator;

mod stream;

pub(super) use stream::{Scratch, encode_text};

/// An event schema, compiled for the streaming encoder.
#[derive(Debug)]
pub(super) struct Plan {
    root: Node,
    /// Records by index (a `Node::Record` points here, so recursive types are finite).
    records: Vec<RecordPlan>,
}

/// What one position of the schema takes and how it is written.
#[derive(Debug)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    String,
    /// Avro's JSON form of bytes: one character per byte.
    Bytes,
    Fixed(usize),
    Enum(Vec<String>),
    Array(Box<Node>),
    Map(Box<Node>),
    Record(usize),
    Union(Box<UnionPlan>),
    /// A logical type: converted by the value path's rules, then encoded.
    Logical(Schema),
}

#[derive(Debug)]
struct UnionPlan {
    branches: Vec<Node>,
    /// The index of the `null` branch, if there is one.
    null: Option<u32>,
    /// The branch a JSON array goes to.
    array: Choice,
    /// The branch a JSON object goes to.
    object: Choice,
}

/// Which union branch a container token goes to.
#[derive(Debug, Clone, Copy)]
enum Choice {
    None,
    One(u32),
    /// More than one branch might take it: only trying each (the value path) can tell.
    Several,
}

#[derive(Debug)]
struct RecordPlan {
    fields: Vec<FieldPlan>,
}

#[derive(Debug)]
struct FieldPlan {
    name: String,
    node: Node,
    /// The field's default, encoded; `None` when it has none (or it does not fit): an
    /// event without the field goes to the value path, which says why it is refused.
    default: Option<Vec<u8>>,
}

impl Plan {
    /// A plan that takes nothing: what a validator holds while its own plan is compiled.
    pub(super) fn placeholder() -> Self {
        Self {
            root: Node::Union(Box::new(UnionPlan {
                branches: Vec::new(),
                null: None,
                array: Choice::None,
                object: Choice::None,
            })),
            records: Vec::new(),
        }
    }

    /// Compiles `validator`'s schema.
    pub(super) fn compile(validator: &EventValidator) -> Self {
        let mut compiler = Compiler {
            validator,
            records: Vec::new(),
            indices: HashMap::new(),
        };
        let root = compiler.node(validator.schema());
        Self {
            root,
            records: compiler
                .records
                .into_iter()
                .map(|r| r.expect("every record started is finished"))
                .collect(),
        }
    }

    fn record(&self, index: usize) -> &RecordPlan {
        &self.records[index]
    }
}

impl RecordPlan {
    fn field(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

struct Compiler<'v> {
    validator: &'v EventValidator,
    /// `None` while a record's fields are being compiled.
    records: Vec<Option<RecordPlan>>,
    indices: HashMap<Name, usize>,
}

impl Compiler<'_> {
    fn node(&mut self, schema: &Schema) -> Node {
        match schema {
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Boolean,
            Schema::Int => Node::Int,
            Schema::Long => Node::Long,
            Schema::Float => Node::Float,
            Schema::Double => Node::Double,
            Schema::String => Node::String,
            Schema::Bytes => Node::Bytes,
            Schema::Fixed(fixed) => Node::Fixed(fixed.size),
            Schema::Enum(e) => Node::Enum(e.symbols.clone()),
            Schema::Array(array) => Node::Array(Box::new(self.node(&array.items))),
            Schema::Map(map) => Node::Map(Box::new(self.node(&map.types))),
            Schema::Record(record) => Node::Record(self.record(record)),
            Schema::Union(union) => {
                let branches: Vec<Node> = union.variants().iter().map(|v| self.node(v)).collect();
                Node::Union(Box::new(UnionPlan {
                    null: branches
                        .iter()
                        .position(|b| matches!(b, Node::Null))
                        .map(|i| i as u32),
                    array: choose(&branches, |b| matches!(b, Node::Array(_))),
                    object: choose(&branches, takes_object),
                    branches,
                }))
            }
            Schema::Ref { name } => {
                let validator = self.validator;
                match validator.lookup(name) {
                    Some(Schema::Record(record)) => Node::Record(self.record(record)),
                    Some(target) => self.node(target),
                    // Unresolvable: the value path says so.
                    None => Node::Logical(schema.clone()),
                }
            }
            logical => Node::Logical(logical.clone()),
        }
    }

    fn record(&mut self, record: &RecordSchema) -> usize {
        if let Some(&index) = self.indices.get(&record.name) {
            return index;
        }
        let index = self.records.len();
        self.records.push(None);
        self.indices.insert(record.name.clone(), index);
        let fields = record
            .fields
            .iter()
            .map(|field| FieldPlan {
                name: field.name.clone(),
                node: self.node(&field.schema),
                default: field
                    .default
                    .as_ref()
                    .and_then(|d| self.encoded_default(&field.schema, d)),
            })
            .collect();
        self.records[index] = Some(RecordPlan { fields });
        index
    }

    /// A field default as the value path converts it, encoded by apache-avro.
    fn encoded_default(&self, schema: &Schema, default: &serde_json::Value) -> Option<Vec<u8>> {
        let value = self.validator.convert_default(schema, default).ok()?;
        let root = self.validator.schema();
        let writer = GenericDatumWriter::builder(schema)
            .schemata(vec![root])
            .ok()?
            .validate(false)
            .build()
            .ok()?;
        let mut out = Vec::new();
        writer.write_value_ref(&mut out, &value).ok()?;
        Some(out)
    }
}

/// The only branch of `branches` for which `takes` holds, if exactly one does.
fn choose(branches: &[Node], takes: impl Fn(&Node) -> bool) -> Choice {
    let mut found = branches
        .iter()
        .enumerate()
        .filter(|(_, b)| takes(b))
        .map(|(i, _)| i as u32);
    match (found.next(), found.next()) {
        (None, _) => Choice::None,
        (Some(one), None) => Choice::One(one),
        (Some(_), Some(_)) => Choice::Several,
    }
}

/// Whether a JSON object may convert to this node (the value path's rules).
fn takes_object(node: &Node) -> bool {
    match node {
        Node::Map(_) | Node::Record(_) => true,
        // A duration is an object; other logical types never are.
        Node::Logical(schema) => matches!(schema, Schema::Duration(_) | Schema::Ref { .. }),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
