//! A writer schema compiled once into a reader of chosen fields, straight from a datum's
//! bytes: no Avro value tree and no allocation per datum.
//!
//! [`FieldReader`] walks the whole datum as apache-avro's decoder does: every string
//! checked as UTF-8, every union and enum index and int range checked, the datum consumed
//! to its last byte. The fields at the dotted paths it was compiled for (through records
//! and unions holding one record, as the processor's field roles are) are kept as slices
//! of the datum. It only ever answers "this datum reads so": anything apache-avro refuses
//! or reads in its own way (a truncated datum, a ten-byte varint, a negative block count)
//! and nesting deeper than [`MAX_DEPTH`] is `None`, for the caller to decode the datum
//! with apache-avro. A schema with logical types it does not decode (decimal, uuid,
//! duration) or a path it cannot follow without searching (a union of two records) is not
//! compiled at all. The fuzz target `field_reader` holds it to apache-avro's reading.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, NamesRef, NamespaceRef, RecordSchema, ResolvedSchema};
use apache_avro::types::Value;

/// Nesting the reader follows before it leaves a datum to apache-avro.
pub const MAX_DEPTH: usize = 64;

/// Items of one array or map the reader reads before it leaves the datum to apache-avro (apache-avro bounds a collection by its memory; this is far inside that bound).
const MAX_ITEMS: usize = 1 << 20;

type NodeId = usize;

/// One type of the writer schema.
#[derive(Debug)]
enum Node {
    Null,
    Boolean,
    /// `int` (apache-avro's `Value::Int`).
    Int,
    /// An int of another logical type (`date`, `time-millis`).
    OtherInt,
    Long,
    /// A long of another logical type (`time-micros`, `timestamp-nanos`,
    /// `local-timestamp-*`).
    OtherLong,
    TimestampMillis,
    TimestampMicros,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(&'static [String]),
    Array(NodeId),
    Map(NodeId),
    Union(Vec<NodeId>),
    Record(Vec<NodeId>),
}

/// How one field of a record on a path to read is read.
#[derive(Debug)]
enum Step {
    /// Checked and passed over.
    Skip(NodeId),
    /// A field to read: into these slots.
    Read { node: NodeId, slots: Vec<usize> },
    /// A record holding fields to read (`branch`: its index when the field is a union of it
    /// and types that are not records).
    Descend {
        node: NodeId,
        branch: Option<usize>,
        steps: Vec<Step>,
    },
}

/// A field as the datum holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// No such field, or null (unions unwrapped).
    Absent,
    /// A string.
    Str(&'a str),
    /// An enum's symbol.
    Enum(&'a str),
    /// An `int`.
    Int(i32),
    /// A `long`.
    Long(i64),
    /// A `timestamp-millis`.
    TimestampMillis(i64),
    /// A `timestamp-micros`.
    TimestampMicros(i64),
    /// Anything else (a record, an array, bytes, a float, a `date`...), checked.
    Other,
}

/// A writer schema compiled into a reader of the fields at some dotted paths.
#[derive(Debug)]
pub struct FieldReader {
    nodes: Vec<Node>,
    root: Vec<Step>,
    paths: usize,
}

impl FieldReader {
    /// The reader of datums written with `schema`, for the fields at `paths` (dotted, from
    /// the top record); `None` when the schema has something it does not read.
    pub fn new(schema: &'static Schema, paths: &[&str]) -> Option<Self> {
        let resolved = ResolvedSchema::new(schema).ok()?;
        let mut compiler = Compiler {
            names: resolved.get_names(),
            nodes: Vec::new(),
            records: HashMap::new(),
        };
        let mut trie = Trie::default();
        for (slot, path) in paths.iter().enumerate() {
            trie.insert(path, slot);
        }
        let (record, namespace) = compiler.record(schema, None)?;
        let root = compiler.steps(record, namespace.as_deref(), &trie)?;
        Some(FieldReader {
            nodes: compiler.nodes,
            root,
            paths: paths.len(),
        })
    }

    /// Reads `datum` (Avro binary, no wire header) into `fields`, one per path in the
    /// order given to [`Self::new`]; `None` when the datum is left to apache-avro (and
    /// `fields` may then hold anything).
    pub fn read<'a>(&self, datum: &'a [u8], fields: &mut [Field<'a>]) -> Option<()> {
        if fields.len() != self.paths {
            return None;
        }
        fields.fill(Field::Absent);
        let mut cursor = Cursor { bytes: datum };
        self.run(&self.root, &mut cursor, fields, 0)?;
        cursor.bytes.is_empty().then_some(())
    }

    fn run<'a>(
        &self,
        steps: &[Step],
        cursor: &mut Cursor<'a>,
        fields: &mut [Field<'a>],
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        for step in steps {
            match step {
                Step::Skip(node) => self.skip(*node, cursor, depth + 1)?,
                Step::Read { node, slots } => {
                    let field = self.value(*node, cursor, depth + 1)?;
                    for slot in slots {
                        *fields.get_mut(*slot)? = field;
                    }
                }
                Step::Descend {
                    branch: None,
                    steps,
                    ..
                } => self.run(steps, cursor, fields, depth + 1)?,
                Step::Descend {
                    node,
                    branch: Some(branch),
                    steps,
                } => {
                    let Node::Union(branches) = &self.nodes[*node] else {
                        return None;
                    };
                    let index = cursor.index()?;
                    if index == *branch {
                        self.run(steps, cursor, fields, depth + 1)?;
                    } else {
                        self.skip(*branches.get(index)?, cursor, depth + 1)?;
                    }
                }
            }
        }
        Some(())
    }

    /// A field to read: its value, or `Other` (checked) when it is not a scalar [`Field`] holds.
    fn value<'a>(&self, node: NodeId, cursor: &mut Cursor<'a>, depth: usize) -> Option<Field<'a>> {
        Some(match &self.nodes[node] {
            Node::Null => Field::Absent,
            Node::String => Field::Str(cursor.str()?),
            Node::Enum(symbols) => Field::Enum(symbols.get(cursor.enum_index()?)?.as_str()),
            Node::Int => Field::Int(cursor.int()?),
            Node::Long => Field::Long(cursor.long()?),
            Node::TimestampMillis => Field::TimestampMillis(cursor.long()?),
            Node::TimestampMicros => Field::TimestampMicros(cursor.long()?),
            Node::Union(branches) => {
                let branch = *branches.get(cursor.index()?)?;
                return self.value(branch, cursor, depth + 1);
            }
            _ => {
                self.skip(node, cursor, depth)?;
                Field::Other
            }
        })
    }

    /// Checks a value of `node` and moves past it.
    fn skip(&self, node: NodeId, cursor: &mut Cursor<'_>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match &self.nodes[node] {
            Node::Null => {}
            Node::Boolean => {
                if cursor.take(1)?[0] > 1 {
                    return None;
                }
            }
            Node::Int | Node::OtherInt => {
                cursor.int()?;
            }
            Node::Long | Node::OtherLong | Node::TimestampMillis | Node::TimestampMicros => {
                cursor.long()?;
            }
            Node::Float => {
                cursor.take(4)?;
            }
            Node::Double => {
                cursor.take(8)?;
            }
            Node::Bytes => {
                let len = cursor.len()?;
                cursor.take(len)?;
            }
            Node::String => {
                cursor.str()?;
            }
            Node::Fixed(size) => {
                cursor.take(*size)?;
            }
            Node::Enum(symbols) => {
                symbols.get(cursor.enum_index()?)?;
            }
            Node::Array(items) => {
                self.blocks(cursor, |cursor| self.skip(*items, cursor, depth + 1))?
            }
            Node::Map(values) => self.blocks(cursor, |cursor| {
                cursor.str()?;
                self.skip(*values, cursor, depth + 1)
            })?,
            Node::Union(branches) => {
                let branch = *branches.get(cursor.index()?)?;
                self.skip(branch, cursor, depth + 1)?;
            }
            Node::Record(fields) => {
                for field in fields {
                    self.skip(*field, cursor, depth + 1)?;
                }
            }
        }
        Some(())
    }

    /// The blocks of an array or a map, each item read by `item`.
    fn blocks<'a>(
        &self,
        cursor: &mut Cursor<'a>,
        mut item: impl FnMut(&mut Cursor<'a>) -> Option<()>,
    ) -> Option<()> {
        let mut total = 0usize;
        loop {
            // A negative count (followed by the block's size) is valid Avro that writers
            // rarely use: apache-avro reads it.
            let count = usize::try_from(cursor.long()?).ok()?;
            if count == 0 {
                return Some(());
            }
            total = total.checked_add(count)?;
            if total > MAX_ITEMS {
                return None;
            }
            for _ in 0..count {
                item(cursor)?;
            }
        }
    }
}

/// The field at dotted `path` of a value apache-avro decoded, as [`FieldReader`] reads
/// it: what the fuzz target and the tests hold the reader to.
pub fn field_of<'v>(value: &'v Value, path: &str) -> Field<'v> {
    fn unwrap(value: &Value) -> &Value {
        match value {
            Value::Union(_, inner) => inner,
            other => other,
        }
    }
    let mut current = unwrap(value);
    for segment in path.split('.') {
        let Value::Record(fields) = current else {
            return Field::Absent;
        };
        match fields.iter().find(|(name, _)| name == segment) {
            Some((_, value)) => current = unwrap(value),
            None => return Field::Absent,
        }
    }
    match current {
        Value::Null => Field::Absent,
        Value::String(s) => Field::Str(s),
        Value::Enum(_, symbol) => Field::Enum(symbol),
        Value::Int(v) => Field::Int(*v),
        Value::Long(v) => Field::Long(*v),
        Value::TimestampMillis(v) => Field::TimestampMillis(*v),
        Value::TimestampMicros(v) => Field::TimestampMicros(*v),
        _ => Field::Other,
    }
}

/// The unread rest of a datum.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(taken)
    }

    /// A zig-zag varint of at most nine bytes (63 bits: apache-avro reads a tenth byte
    /// losing its high bits, so those are left to it).
    fn long(&mut self) -> Option<i64> {
        let mut z = 0u64;
        for shift in (0..63).step_by(7) {
            let byte = *self.bytes.first()?;
            self.bytes = &self.bytes[1..];
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(if z & 1 == 0 {
                    (z >> 1) as i64
                } else {
                    !(z >> 1) as i64
                });
            }
        }
        None
    }

    fn int(&mut self) -> Option<i32> {
        i32::try_from(self.long()?).ok()
    }

    /// A length or a union branch's index (negative: refused).
    fn index(&mut self) -> Option<usize> {
        usize::try_from(self.long()?).ok()
    }

    /// An enum's index: an int, not negative.
    fn enum_index(&mut self) -> Option<usize> {
        usize::try_from(self.int()?).ok()
    }

    fn len(&mut self) -> Option<usize> {
        self.index()
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = self.len()?;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

/// The dotted paths to read, by segment.
#[derive(Debug, Default)]
struct Trie {
    slots: Vec<usize>,
    children: Vec<(String, Trie)>,
}

impl Trie {
    fn insert(&mut self, path: &str, slot: usize) {
        let mut node = self;
        for segment in path.split('.') {
            let at = match node.children.iter().position(|(s, _)| s == segment) {
                Some(at) => at,
                None => {
                    node.children.push((segment.to_string(), Trie::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at].1;
        }
        node.slots.push(slot);
    }

    fn child(&self, segment: &str) -> Option<&Trie> {
        self.children
            .iter()
            .find(|(s, _)| s == segment)
            .map(|(_, t)| t)
    }
}

/// Builds the nodes, named types followed as apache-avro's decoder follows them.
struct Compiler<'n> {
    names: &'n NamesRef<'static>,
    nodes: Vec<Node>,
    /// Records by full name, so that a recursive type is compiled once.
    records: HashMap<Name, NodeId>,
}

impl Compiler<'_> {
    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn node(&mut self, schema: &'static Schema, namespace: NamespaceRef<'_>) -> Option<NodeId> {
        let node = match schema {
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Boolean,
            Schema::Int => Node::Int,
            Schema::Date | Schema::TimeMillis => Node::OtherInt,
            Schema::Long => Node::Long,
            Schema::TimeMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Node::OtherLong,
            Schema::TimestampMillis => Node::TimestampMillis,
            Schema::TimestampMicros => Node::TimestampMicros,
            Schema::Float => Node::Float,
            Schema::Double => Node::Double,
            Schema::Bytes => Node::Bytes,
            Schema::String => Node::String,
            Schema::Fixed(fixed) => Node::Fixed(fixed.size),
            Schema::Enum(e) => Node::Enum(&e.symbols),
            Schema::Array(array) => Node::Array(self.node(&array.items, namespace)?),
            Schema::Map(map) => Node::Map(self.node(&map.types, namespace)?),
            Schema::Union(union) => Node::Union(
                union
                    .variants()
                    .iter()
                    .map(|v| self.node(v, namespace))
                    .collect::<Option<_>>()?,
            ),
            Schema::Record(record) => return self.record_node(record, namespace),
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(namespace);
                let named: &'static Schema = self.names.get(full.as_ref()).copied()?;
                return self.node(named, full.namespace());
            }
            Schema::Decimal(_) | Schema::BigDecimal | Schema::Uuid(_) | Schema::Duration(_) => {
                return None;
            }
        };
        Some(self.push(node))
    }

    fn record_node(
        &mut self,
        record: &'static RecordSchema,
        namespace: NamespaceRef<'_>,
    ) -> Option<NodeId> {
        let full = record.name.fully_qualified_name(namespace).into_owned();
        if let Some(id) = self.records.get(&full) {
            return Some(*id);
        }
        let id = self.push(Node::Record(Vec::new()));
        let inner = full.namespace().map(str::to_owned);
        self.records.insert(full, id);
        let fields = record
            .fields
            .iter()
            .map(|f| self.node(&f.schema, inner.as_deref()))
            .collect::<Option<_>>()?;
        self.nodes[id] = Node::Record(fields);
        Some(id)
    }

    /// `schema` as a record (a reference followed), with the namespace its fields are in.
    fn record(
        &self,
        schema: &'static Schema,
        namespace: NamespaceRef<'_>,
    ) -> Option<(&'static RecordSchema, Option<String>)> {
        match schema {
            Schema::Record(record) => {
                let full = record.name.fully_qualified_name(namespace);
                Some((record, full.namespace().map(str::to_owned)))
            }
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(namespace);
                let named: &'static Schema = self.names.get(full.as_ref()).copied()?;
                self.record(named, full.namespace())
            }
            _ => None,
        }
    }

    /// The steps reading `record`'s fields (`namespace`: the one its fields are in).
    fn steps(
        &mut self,
        record: &'static RecordSchema,
        namespace: NamespaceRef<'_>,
        trie: &Trie,
    ) -> Option<Vec<Step>> {
        let mut steps = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
            let node = self.node(&field.schema, namespace)?;
            let step = match trie.child(&field.name) {
                None => Step::Skip(node),
                Some(below) if below.children.is_empty() => Step::Read {
                    node,
                    slots: below.slots.clone(),
                },
                // A path read both as a field and as a record holding fields.
                Some(below) if !below.slots.is_empty() => return None,
                Some(below) => match self.record_under(&field.schema, namespace)? {
                    Some((branch, inner, inner_namespace)) => Step::Descend {
                        node,
                        branch,
                        steps: self.steps(inner, inner_namespace.as_deref(), below)?,
                    },
                    // No record there: the fields below stay absent, as apache-avro's
                    // value has none.
                    None => Step::Skip(node),
                },
            };
            steps.push(step);
        }
        Some(steps)
    }

    /// The record a field of `schema` holds: itself, or the one record of a union (with
    /// its branch index). `Some(None)`: no record; `None`: a union of several records
    /// (which record a datum holds is known only from it).
    #[allow(clippy::type_complexity)]
    fn record_under(
        &self,
        schema: &'static Schema,
        namespace: NamespaceRef<'_>,
    ) -> Option<Option<(Option<usize>, &'static RecordSchema, Option<String>)>> {
        if let Some((record, inner)) = self.record(schema, namespace) {
            return Some(Some((None, record, inner)));
        }
        let Schema::Union(union) = schema else {
            return Some(None);
        };
        let mut found = None;
        for (index, variant) in union.variants().iter().enumerate() {
            if let Some((record, inner)) = self.record(variant, namespace) {
                if found.is_some() {
                    return None;
                }
                found = Some((Some(index), record, inner));
            }
        }
        Some(found)
    }
}
