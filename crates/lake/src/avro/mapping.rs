//! The Avro → Arrow/Delta type mapping (the table in ARCHITECTURE.md, "Your own events").
//!
//! Every type produced here survives Delta's kernel round trip unchanged (Arrow → Delta →
//! Arrow), so a batch built with it has exactly the types the table reports back, and none
//! needs a table feature beyond protocol reader 1 / writer 2. Every column and every nested
//! child is nullable, so nullability never has to evolve.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::schema::{Name, RecordSchema, UnionSchema};
use deltalake::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

/// Named types of a schema, to follow `Ref`s.
pub type Names = HashMap<Name, Schema>;

/// Delta's largest decimal precision (Decimal128).
const MAX_DECIMAL_PRECISION: usize = 38;

/// Collects every named type defined in `schema`.
pub fn collect_names(schema: &Schema, names: &mut Names) {
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
        Schema::Fixed(f) | Schema::Duration(f) => {
            names.insert(f.name.clone(), schema.clone());
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, names)),
        _ => {}
    }
}

/// A schema with its named types, ready to map.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Named types reachable from the schema.
    pub names: &'a Names,
}

impl<'a> Scope<'a> {
    /// Follows a `Ref` (once); other schemas as they are.
    pub fn resolve<'s>(&self, schema: &'s Schema) -> Option<&'s Schema>
    where
        'a: 's,
    {
        match schema {
            Schema::Ref { name } => self.names.get(name),
            other => Some(other),
        }
    }

    /// The Arrow type of values of `schema`, or `None` when it holds nothing to store (the
    /// `null` type, a union of nulls, a record whose every field is null).
    pub fn data_type(&self, schema: &Schema) -> Option<DataType> {
        self.map(schema, &mut Vec::new())
    }

    fn map(&self, schema: &Schema, stack: &mut Vec<Name>) -> Option<DataType> {
        Some(match schema {
            Schema::Null => return None,
            Schema::Boolean => DataType::Boolean,
            Schema::Int
            | Schema::Long
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => DataType::Int64,
            Schema::Float | Schema::Double => DataType::Float64,
            Schema::String | Schema::Enum(_) | Schema::Uuid(_) | Schema::BigDecimal => {
                DataType::Utf8
            }
            Schema::Bytes | Schema::Fixed(_) => DataType::Binary,
            Schema::Decimal(d) if d.precision <= MAX_DECIMAL_PRECISION => {
                // Avro guarantees 0 <= scale <= precision.
                DataType::Decimal128(d.precision as u8, d.scale as i8)
            }
            Schema::Decimal(_) => DataType::Utf8,
            Schema::Date => DataType::Date32,
            Schema::TimestampMillis | Schema::TimestampMicros => timestamp_type(),
            Schema::Duration(_) => DataType::Struct(duration_fields()),
            Schema::Array(array) => list_type(self.map(&array.items, stack)?),
            Schema::Map(map) => map_type(self.map(&map.types, stack)?),
            Schema::Union(union) => return self.union_type(union, stack),
            Schema::Record(record) => return self.record_type(record, stack),
            Schema::Ref { name } => {
                if stack.contains(name) {
                    // A recursive type has no finite Arrow type: its values are kept as
                    // their Avro JSON text.
                    return Some(DataType::Utf8);
                }
                let target = self.names.get(name)?;
                return self.map(target, stack);
            }
        })
    }

    fn record_type(&self, record: &RecordSchema, stack: &mut Vec<Name>) -> Option<DataType> {
        stack.push(record.name.clone());
        let fields: Vec<Field> = record
            .fields
            .iter()
            .filter_map(|f| Some(Field::new(&f.name, self.map(&f.schema, stack)?, true)))
            .collect();
        stack.pop();
        (!fields.is_empty()).then(|| DataType::Struct(fields.into()))
    }

    fn union_type(&self, union: &UnionSchema, stack: &mut Vec<Name>) -> Option<DataType> {
        let branches = non_null_branches(union);
        match branches.as_slice() {
            [] => None,
            [(_, only)] => self.map(only, stack),
            many => {
                let members = union_member_names(self, many.iter().map(|(_, s)| *s));
                let fields: Vec<Field> = many
                    .iter()
                    .zip(members)
                    .filter_map(|((_, branch), name)| {
                        Some(Field::new(name, self.map(branch, stack)?, true))
                    })
                    .collect();
                (!fields.is_empty()).then(|| DataType::Struct(fields.into()))
            }
        }
    }
}

/// The branches of a union that are not `null`, with their index in the union.
pub fn non_null_branches(union: &UnionSchema) -> Vec<(usize, &Schema)> {
    union
        .variants()
        .iter()
        .enumerate()
        .filter(|(_, s)| !matches!(s, Schema::Null))
        .collect()
}

/// Member names of the struct a multi-branch union becomes, one per branch in order: the
/// type's name (`long`, `string`, `timestamp_millis`, `array`, `map`), named types by
/// their short name; a repeated name gets its position appended.
pub fn union_member_names<'s>(
    scope: &Scope<'_>,
    branches: impl Iterator<Item = &'s Schema>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for branch in branches {
        let base = branch_name(scope, branch);
        let name = if names.contains(&base) {
            format!("{base}_{}", names.len())
        } else {
            base
        };
        names.push(name);
    }
    names
}

fn branch_name(scope: &Scope<'_>, schema: &Schema) -> String {
    let named = |name: &Name| name.name().to_string();
    match schema {
        Schema::Ref { name } => scope
            .names
            .get(name)
            .map_or_else(|| named(name), |s| branch_name(scope, s)),
        Schema::Record(r) => named(&r.name),
        Schema::Enum(e) => named(&e.name),
        Schema::Fixed(f) => named(&f.name),
        Schema::Duration(_) => "duration".into(),
        Schema::Decimal(_) => "decimal".into(),
        Schema::BigDecimal => "big_decimal".into(),
        Schema::Uuid(_) => "uuid".into(),
        Schema::Date => "date".into(),
        Schema::TimeMillis => "time_millis".into(),
        Schema::TimeMicros => "time_micros".into(),
        Schema::TimestampMillis => "timestamp_millis".into(),
        Schema::TimestampMicros => "timestamp_micros".into(),
        Schema::TimestampNanos => "timestamp_nanos".into(),
        Schema::LocalTimestampMillis => "local_timestamp_millis".into(),
        Schema::LocalTimestampMicros => "local_timestamp_micros".into(),
        Schema::LocalTimestampNanos => "local_timestamp_nanos".into(),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Union(_) => "union".into(),
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int => "int".into(),
        Schema::Long => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes => "bytes".into(),
        Schema::String => "string".into(),
    }
}

/// Delta's `timestamp`: microseconds, UTC-adjusted.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// An Avro duration: three counts, as Delta has no interval type.
pub fn duration_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int64, true),
        Field::new("days", DataType::Int64, true),
        Field::new("milliseconds", DataType::Int64, true),
    ])
}

/// A Delta array: Arrow list whose item field is `element`, nullable.
pub fn list_type(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("element", item, true)))
}

/// A Delta map: string keys (never null), nullable values, in a `key_value` entry struct.
pub fn map_type(value: DataType) -> DataType {
    DataType::Map(Arc::new(map_entries_field(value)), false)
}

/// The entries field of [`map_type`].
pub fn map_entries_field(value: DataType) -> Field {
    Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", value, true),
        ])),
        false,
    )
}

/// The narrowest type holding values of both `a` and `b`: equal types, or structs (at any
/// depth, through lists and maps) whose common children merge, with the children only one
/// has added (`a`'s first, then `b`'s new ones, in order). `None` when they conflict.
pub fn merge_types(a: &DataType, b: &DataType) -> Option<DataType> {
    if a == b {
        return Some(a.clone());
    }
    match (a, b) {
        (DataType::Struct(left), DataType::Struct(right)) => {
            let mut fields: Vec<Field> = Vec::with_capacity(left.len().max(right.len()));
            for field in left {
                let data_type = match right.find(field.name()) {
                    Some((_, other)) => merge_types(field.data_type(), other.data_type())?,
                    None => field.data_type().clone(),
                };
                fields.push(Field::new(field.name(), data_type, true));
            }
            for field in right {
                if left.find(field.name()).is_none() {
                    fields.push(Field::new(field.name(), field.data_type().clone(), true));
                }
            }
            Some(DataType::Struct(fields.into()))
        }
        (DataType::List(left), DataType::List(right)) => {
            Some(list_type(merge_types(left.data_type(), right.data_type())?))
        }
        (DataType::Map(left, _), DataType::Map(right, _)) => {
            let value = |entries: &Field| match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => Some(kv[1].data_type().clone()),
                _ => None,
            };
            Some(map_type(merge_types(&value(left)?, &value(right)?)?))
        }
        _ => None,
    }
}

/// Whether `wide` holds every value of `narrow` (merging adds nothing to it).
pub fn holds(wide: &DataType, narrow: &DataType) -> bool {
    merge_types(wide, narrow).as_ref() == Some(wide)
}
