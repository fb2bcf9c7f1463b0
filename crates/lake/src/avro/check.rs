//! Values the lake cannot hold, found before a row is pushed: its record becomes a dead
//! letter with the reason instead of a row with a wrong value.

use apache_avro::Schema;
use apache_avro::types::Value;
use deltalake::arrow::datatypes::DataType;

use super::builder::{decimal, timestamp_micros};
use super::mapping::{Scope, non_null_branches};

/// Why `value` (written with `schema`) cannot be stored as `data_type`, naming the field
/// at `path`; `Ok` when it can. Only timestamps and decimals can fail.
pub fn check(
    scope: &Scope<'_>,
    schema: &Schema,
    value: &Value,
    data_type: &DataType,
    path: &str,
) -> Result<(), String> {
    let Some(schema) = scope.resolve(schema) else {
        return Ok(());
    };
    match (schema, value) {
        (_, Value::Null) => Ok(()),
        (Schema::Union(union), Value::Union(index, inner)) => {
            let Some(branch) = union.variants().get(*index as usize) else {
                return Ok(());
            };
            let branch_type = match data_type {
                DataType::Struct(members) if non_null_branches(union).len() > 1 => {
                    let position = non_null_branches(union)
                        .iter()
                        .position(|(i, _)| *i == *index as usize);
                    match position.and_then(|p| members.get(p)) {
                        Some(member) => member.data_type().clone(),
                        None => return Ok(()),
                    }
                }
                other => other.clone(),
            };
            check(scope, branch, inner, &branch_type, path)
        }
        (Schema::TimestampMillis, v) if timestamp_micros(v).is_none() => Err(format!(
            "field '{path}': timestamp-millis {v:?} is beyond the microsecond range of a Delta timestamp"
        )),
        (Schema::Decimal(d), v) => match data_type {
            DataType::Decimal128(p, _) if decimal(v, *p).is_none() => Err(format!(
                "field '{path}': decimal value has more than the {} digits of decimal({}, {})",
                p, d.precision, d.scale
            )),
            _ => Ok(()),
        },
        (Schema::Record(record), Value::Record(values)) => {
            let DataType::Struct(fields) = data_type else {
                return Ok(());
            };
            for field in fields {
                let Some(i) = record.lookup.get(field.name()).copied() else {
                    continue;
                };
                if let (Some(avro), Some((name, value))) = (record.fields.get(i), values.get(i)) {
                    check(
                        scope,
                        &avro.schema,
                        value,
                        field.data_type(),
                        &format!("{path}.{name}"),
                    )?;
                }
            }
            Ok(())
        }
        (Schema::Array(array), Value::Array(items)) => match data_type {
            DataType::List(item) => items
                .iter()
                .try_for_each(|v| check(scope, &array.items, v, item.data_type(), path)),
            _ => Ok(()),
        },
        (Schema::Map(map), Value::Map(entries)) => match data_type {
            DataType::Map(entry, _) => match entry.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => entries
                    .values()
                    .try_for_each(|v| check(scope, &map.types, v, kv[1].data_type(), path)),
                _ => Ok(()),
            },
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}
