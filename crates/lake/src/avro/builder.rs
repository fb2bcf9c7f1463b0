//! Arrow columns from decoded Avro values, for a type known only at run time.
//!
//! A [`ColumnBuilder`] is made from the column's Arrow type (see [`super::mapping`]) and
//! fed `(writer schema, value)` pairs: the writer schema says which union branch a value
//! took and where a record's fields are, the Arrow type says what to build. Values that
//! cannot be stored (a millisecond timestamp beyond the microsecond range, a decimal wider
//! than its precision) are found by [`check`] before a row is pushed, so a row is either
//! pushed whole or becomes a dead letter with the reason.

use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::Value;
use deltalake::arrow::array::builder::NullBufferBuilder;
use deltalake::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder,
    Int64Builder, ListArray, MapArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
    new_null_array,
};
use deltalake::arrow::buffer::OffsetBuffer;
use deltalake::arrow::datatypes::{DataType, Decimal128Type, DecimalType, FieldRef, Fields};

use super::mapping::{Scope, non_null_branches};

/// A column under construction.
pub struct ColumnBuilder {
    data_type: DataType,
    kind: Kind,
    len: usize,
}

enum Kind {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Decimal(Decimal128Builder, u8),
    Struct {
        fields: Fields,
        children: Vec<ColumnBuilder>,
        nulls: NullBufferBuilder,
    },
    List {
        item: FieldRef,
        offsets: Vec<i32>,
        child: Box<ColumnBuilder>,
        nulls: NullBufferBuilder,
    },
    Map {
        entries: FieldRef,
        offsets: Vec<i32>,
        keys: StringBuilder,
        values: Box<ColumnBuilder>,
        nulls: NullBufferBuilder,
    },
    /// A type this module does not build (never produced by the mapping): nulls only.
    Unsupported,
}

impl ColumnBuilder {
    /// An empty builder for values of `data_type`.
    pub fn new(data_type: &DataType) -> Self {
        let kind = match data_type {
            DataType::Boolean => Kind::Boolean(BooleanBuilder::new()),
            DataType::Int64 => Kind::Int64(Int64Builder::new()),
            DataType::Float64 => Kind::Float64(Float64Builder::new()),
            DataType::Utf8 => Kind::Utf8(StringBuilder::new()),
            DataType::Binary => Kind::Binary(BinaryBuilder::new()),
            DataType::Date32 => Kind::Date32(Date32Builder::new()),
            DataType::Timestamp(_, tz) => {
                Kind::Timestamp(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
            }
            DataType::Decimal128(p, s) => Kind::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .unwrap_or_default(),
                *p,
            ),
            DataType::Struct(fields) => Kind::Struct {
                fields: fields.clone(),
                children: fields
                    .iter()
                    .map(|f| ColumnBuilder::new(f.data_type()))
                    .collect(),
                nulls: NullBufferBuilder::new(0),
            },
            DataType::List(item) => Kind::List {
                item: item.clone(),
                offsets: vec![0],
                child: Box::new(ColumnBuilder::new(item.data_type())),
                nulls: NullBufferBuilder::new(0),
            },
            DataType::Map(entries, _) => {
                let value_type = match entries.data_type() {
                    DataType::Struct(f) if f.len() == 2 => f[1].data_type().clone(),
                    _ => DataType::Null,
                };
                Kind::Map {
                    entries: entries.clone(),
                    offsets: vec![0],
                    keys: StringBuilder::new(),
                    values: Box::new(ColumnBuilder::new(&value_type)),
                    nulls: NullBufferBuilder::new(0),
                }
            }
            _ => Kind::Unsupported,
        };
        ColumnBuilder {
            data_type: data_type.clone(),
            kind,
            len: 0,
        }
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row was appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `count` nulls.
    pub fn append_nulls(&mut self, count: usize) {
        for _ in 0..count {
            self.append_null();
        }
    }

    /// Appends a null.
    pub fn append_null(&mut self) {
        self.len += 1;
        match &mut self.kind {
            Kind::Boolean(b) => b.append_null(),
            Kind::Int64(b) => b.append_null(),
            Kind::Float64(b) => b.append_null(),
            Kind::Utf8(b) => b.append_null(),
            Kind::Binary(b) => b.append_null(),
            Kind::Date32(b) => b.append_null(),
            Kind::Timestamp(b) => b.append_null(),
            Kind::Decimal(b, _) => b.append_null(),
            Kind::Struct {
                children, nulls, ..
            } => {
                children.iter_mut().for_each(ColumnBuilder::append_null);
                nulls.append_null();
            }
            Kind::List { offsets, nulls, .. } | Kind::Map { offsets, nulls, .. } => {
                offsets.push(offsets.last().copied().unwrap_or(0));
                nulls.append_null();
            }
            Kind::Unsupported => {}
        }
    }

    /// Appends `value`, written with `schema`. Call [`check`] first: a value it refuses is
    /// appended as null here.
    pub fn append(&mut self, scope: &Scope<'_>, schema: &Schema, value: &Value) {
        let Some(schema) = scope.resolve(schema) else {
            return self.append_null();
        };
        // A union value: its branch's schema; a multi-branch union is a struct with one
        // member set.
        if let (Schema::Union(union), Value::Union(index, inner)) = (schema, value) {
            let branch = union.variants().get(*index as usize);
            let branches = non_null_branches(union);
            return match (branch, inner.as_ref()) {
                (None, _) | (_, Value::Null) => self.append_null(),
                (Some(branch), inner) if branches.len() == 1 => self.append(scope, branch, inner),
                (Some(branch), inner) => {
                    let member = branches.iter().position(|(i, _)| *i == *index as usize);
                    self.append_member(scope, member, branch, inner)
                }
            };
        }
        if matches!(value, Value::Null) {
            return self.append_null();
        }
        if self.data_type == DataType::Utf8 {
            match schema {
                // Records, arrays and maps become text only as a recursive type's values.
                Schema::Record(_) | Schema::Array(_) | Schema::Map(_) => {
                    return self.append_json(value);
                }
                Schema::Decimal(d) => return self.append_text(decimal_text(value, d.scale)),
                _ => {}
            }
        }
        self.len += 1;
        match &mut self.kind {
            Kind::Boolean(b) => b.append_option(boolean(value)),
            Kind::Int64(b) => b.append_option(long(value)),
            Kind::Float64(b) => b.append_option(double(value)),
            Kind::Utf8(b) => b.append_option(text(value).as_deref()),
            Kind::Binary(b) => b.append_option(binary(value)),
            Kind::Date32(b) => b.append_option(date(value)),
            Kind::Timestamp(b) => b.append_option(timestamp_micros(value)),
            Kind::Decimal(b, precision) => b.append_option(decimal(value, *precision)),
            Kind::Struct {
                fields,
                children,
                nulls,
            } => {
                append_struct(scope, schema, value, fields, children);
                nulls.append_non_null();
            }
            Kind::List {
                offsets,
                child,
                nulls,
                ..
            } => {
                let (Schema::Array(array), Value::Array(items)) = (schema, value) else {
                    offsets.push(offsets.last().copied().unwrap_or(0));
                    return nulls.append_null();
                };
                for item in items {
                    child.append(scope, &array.items, item);
                }
                offsets.push(child.len() as i32);
                nulls.append_non_null();
            }
            Kind::Map {
                offsets,
                keys,
                values,
                nulls,
                ..
            } => {
                let (Schema::Map(map), Value::Map(entries)) = (schema, value) else {
                    offsets.push(offsets.last().copied().unwrap_or(0));
                    return nulls.append_null();
                };
                // Sorted, so the same value always makes the same bytes.
                let mut sorted: Vec<_> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                for (key, value) in sorted {
                    keys.append_value(key);
                    values.append(scope, &map.types, value);
                }
                offsets.push(values.len() as i32);
                nulls.append_non_null();
            }
            Kind::Unsupported => {}
        }
    }

    /// A multi-branch union's value: the member of its branch set, the others null.
    fn append_member(
        &mut self,
        scope: &Scope<'_>,
        member: Option<usize>,
        branch: &Schema,
        value: &Value,
    ) {
        let Kind::Struct {
            children, nulls, ..
        } = &mut self.kind
        else {
            return self.append_null();
        };
        self.len += 1;
        for (i, child) in children.iter_mut().enumerate() {
            if Some(i) == member {
                child.append(scope, branch, value);
            } else {
                child.append_null();
            }
        }
        nulls.append_non_null();
    }

    /// A value of a recursive type, as its Avro JSON text.
    fn append_json(&mut self, value: &Value) {
        let json = serde_json::Value::try_from(value.clone())
            .ok()
            .map(|j| j.to_string());
        self.append_text(json);
    }

    fn append_text(&mut self, text: Option<String>) {
        self.len += 1;
        if let Kind::Utf8(b) = &mut self.kind {
            b.append_option(text);
        }
    }

    /// The column built so far; the builder is empty afterwards.
    pub fn finish(&mut self) -> ArrayRef {
        let len = std::mem::take(&mut self.len);
        match &mut self.kind {
            Kind::Boolean(b) => Arc::new(b.finish()),
            Kind::Int64(b) => Arc::new(b.finish()),
            Kind::Float64(b) => Arc::new(b.finish()),
            Kind::Utf8(b) => Arc::new(b.finish()),
            Kind::Binary(b) => Arc::new(b.finish()),
            Kind::Date32(b) => Arc::new(b.finish()),
            Kind::Timestamp(b) => Arc::new(b.finish()),
            Kind::Decimal(b, _) => Arc::new(b.finish()),
            Kind::Struct {
                fields,
                children,
                nulls,
            } => {
                let columns = children.iter_mut().map(ColumnBuilder::finish).collect();
                match StructArray::try_new(fields.clone(), columns, nulls.finish()) {
                    Ok(array) => Arc::new(array),
                    Err(_) => new_null_array(&self.data_type, len),
                }
            }
            Kind::List {
                item,
                offsets,
                child,
                nulls,
            } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                match ListArray::try_new(item.clone(), offsets, child.finish(), nulls.finish()) {
                    Ok(array) => Arc::new(array),
                    Err(_) => new_null_array(&self.data_type, len),
                }
            }
            Kind::Map {
                entries,
                offsets,
                keys,
                values,
                nulls,
            } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let DataType::Struct(entry_fields) = entries.data_type() else {
                    return new_null_array(&self.data_type, len);
                };
                let pairs = StructArray::try_new(
                    entry_fields.clone(),
                    vec![Arc::new(keys.finish()), values.finish()],
                    None,
                );
                match pairs.and_then(|pairs| {
                    MapArray::try_new(entries.clone(), offsets, pairs, nulls.finish(), false)
                }) {
                    Ok(array) => Arc::new(array),
                    Err(_) => new_null_array(&self.data_type, len),
                }
            }
            Kind::Unsupported => new_null_array(&self.data_type, len),
        }
    }
}

/// A record's fields into the struct's children, by name.
fn append_struct(
    scope: &Scope<'_>,
    schema: &Schema,
    value: &Value,
    fields: &Fields,
    children: &mut [ColumnBuilder],
) {
    match (schema, value) {
        (Schema::Record(record), Value::Record(values)) => {
            for (field, child) in fields.iter().zip(children.iter_mut()) {
                let position = record.lookup.get(field.name()).copied();
                match position.and_then(|i| Some((record.fields.get(i)?, values.get(i)?))) {
                    Some((avro_field, (_, value))) => {
                        child.append(scope, &avro_field.schema, value)
                    }
                    None => child.append_null(),
                }
            }
        }
        (Schema::Duration(_), Value::Duration(d)) => {
            let parts = [
                u32::from(d.months()),
                u32::from(d.days()),
                u32::from(d.millis()),
            ];
            for (child, part) in children.iter_mut().zip(parts) {
                child.append(scope, &Schema::Long, &Value::Long(i64::from(part)));
            }
        }
        _ => children.iter_mut().for_each(ColumnBuilder::append_null),
    }
}

fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Boolean(b) => Some(*b),
        _ => None,
    }
}

fn long(value: &Value) -> Option<i64> {
    match value {
        Value::Int(v) | Value::Date(v) | Value::TimeMillis(v) => Some(i64::from(*v)),
        Value::Long(v)
        | Value::TimeMicros(v)
        | Value::TimestampNanos(v)
        | Value::LocalTimestampMillis(v)
        | Value::LocalTimestampMicros(v)
        | Value::LocalTimestampNanos(v)
        | Value::TimestampMillis(v)
        | Value::TimestampMicros(v) => Some(*v),
        _ => None,
    }
}

fn double(value: &Value) -> Option<f64> {
    match value {
        // Through the float's shortest decimal text, so a float sent as 0.1 reads as 0.1.
        Value::Float(f) => f.to_string().parse().ok(),
        Value::Double(d) => Some(*d),
        Value::Int(v) => Some(f64::from(*v)),
        Value::Long(v) => Some(*v as f64),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) | Value::Enum(_, s) => Some(s.clone()),
        Value::Uuid(u) => Some(u.hyphenated().to_string()),
        Value::BigDecimal(d) => Some(d.to_string()),
        _ => None,
    }
}

/// The exact text of a decimal too wide for Delta (precision above 38).
fn decimal_text(value: &Value, scale: usize) -> Option<String> {
    let Value::Decimal(d) = value else {
        return None;
    };
    let unscaled = num_bigint::BigInt::from(d.clone());
    let digits = unscaled.magnitude().to_string();
    let sign = if unscaled.sign() == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
    if scale == 0 {
        return Some(format!("{sign}{digits}"));
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    Some(format!("{sign}{whole}.{fraction}"))
}

fn binary(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Bytes(b) | Value::Fixed(_, b) => Some(b),
        Value::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn date(value: &Value) -> Option<i32> {
    match value {
        Value::Date(d) | Value::Int(d) => Some(*d),
        _ => None,
    }
}

/// Microseconds of a timestamp value; `None` past the microsecond range.
pub(crate) fn timestamp_micros(value: &Value) -> Option<i64> {
    match value {
        Value::TimestampMillis(ms) => ms.checked_mul(1000),
        Value::TimestampMicros(us) | Value::Long(us) => Some(*us),
        _ => None,
    }
}

/// The unscaled value of a decimal; `None` when it does not fit `precision` digits.
pub(crate) fn decimal(value: &Value, precision: u8) -> Option<i128> {
    let Value::Decimal(d) = value else {
        return None;
    };
    let bytes = Vec::<u8>::try_from(d).ok()?;
    if bytes.len() > 16 {
        return None;
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut buf = if negative { [0xff; 16] } else { [0; 16] };
    buf[16 - bytes.len()..].copy_from_slice(&bytes);
    let unscaled = i128::from_be_bytes(buf);
    Decimal128Type::is_valid_decimal_precision(unscaled, precision).then_some(unscaled)
}
