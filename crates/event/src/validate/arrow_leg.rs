//! The property test's last leg: a decoded record in the lake's Arrow columns, checked by
//! reading the arrays back independently of the builders that made them.

use apache_avro::types::Value as Avro;
use deltalake::arrow::array::{Array, ArrayRef, AsArray};
use deltalake::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};

/// `Ok` when row `row` of `array` holds exactly `value`; else where it differs.
pub(super) fn same(value: &Avro, array: &ArrayRef, row: usize, path: &str) -> Result<(), String> {
    let value = match value {
        Avro::Union(_, inner) => inner.as_ref(),
        other => other,
    };
    let differs = || format!("{path}: {value:?} stored as {:?}", array.slice(row, 1));
    if matches!(value, Avro::Null) {
        return if array.is_null(row) {
            Ok(())
        } else {
            Err(differs())
        };
    }
    if array.is_null(row) {
        return Err(differs());
    }
    let ok = match (value, array.data_type()) {
        (Avro::Boolean(b), DataType::Boolean) => array.as_boolean().value(row) == *b,
        (Avro::Int(v), DataType::Int64) => {
            array.as_primitive::<Int64Type>().value(row) == i64::from(*v)
        }
        (Avro::Long(v), DataType::Int64) => array.as_primitive::<Int64Type>().value(row) == *v,
        (Avro::Float(v), DataType::Float64) => {
            array.as_primitive::<Float64Type>().value(row).to_string() == v.to_string()
        }
        (Avro::Double(v), DataType::Float64) => {
            array.as_primitive::<Float64Type>().value(row) == *v
        }
        (Avro::String(s) | Avro::Enum(_, s), DataType::Utf8) => {
            array.as_string::<i32>().value(row) == s
        }
        (Avro::Uuid(u), DataType::Utf8) => {
            array.as_string::<i32>().value(row) == u.hyphenated().to_string()
        }
        (Avro::Bytes(b) | Avro::Fixed(_, b), DataType::Binary) => {
            array.as_binary::<i32>().value(row) == b.as_slice()
        }
        (Avro::Date(d), DataType::Date32) => array.as_primitive::<Date32Type>().value(row) == *d,
        (Avro::TimestampMillis(ms), DataType::Timestamp(..)) => {
            Some(array.as_primitive::<TimestampMicrosecondType>().value(row))
                == ms.checked_mul(1000)
        }
        (Avro::Decimal(d), DataType::Decimal128(..)) => {
            let stored = array.as_primitive::<Decimal128Type>().value(row);
            num_bigint::BigInt::from(d.clone()) == num_bigint::BigInt::from(stored)
        }
        (Avro::Array(items), DataType::List(_)) => {
            let list = array.as_list::<i32>();
            let child = list.values();
            let start = list.value_offsets()[row] as usize;
            if list.value_length(row) as usize != items.len() {
                return Err(differs());
            }
            for (i, item) in items.iter().enumerate() {
                same(item, child, start + i, &format!("{path}[{i}]"))?;
            }
            true
        }
        (Avro::Map(entries), DataType::Map(..)) => {
            let map = array.as_map();
            let start = map.value_offsets()[row] as usize;
            let len = map.value_length(row) as usize;
            if len != entries.len() {
                return Err(differs());
            }
            let keys = map.keys().as_string::<i32>();
            for i in start..start + len {
                let key = keys.value(i);
                let Some(entry) = entries.get(key) else {
                    return Err(differs());
                };
                same(entry, map.values(), i, &format!("{path}.{key}"))?;
            }
            true
        }
        (Avro::Record(fields), DataType::Struct(members)) => {
            let strukt = array.as_struct();
            for (member, column) in members.iter().zip(strukt.columns()) {
                let Some((_, field)) = fields.iter().find(|(name, _)| name == member.name()) else {
                    return Err(differs());
                };
                same(field, column, row, &format!("{path}.{}", member.name()))?;
            }
            true
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(differs()) }
}
