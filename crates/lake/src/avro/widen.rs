//! A column built with a narrower struct type, brought to the wider type of the table.

use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StructArray, new_null_array,
};
use deltalake::arrow::datatypes::DataType;

/// `array` as the wider type `to` (see [`super::mapping::merge_types`]): children `to`
/// adds are null, at any depth. `Err` when `to` does not hold `array`'s type.
pub fn widen(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    let refuse = || format!("cannot widen {} to {to}", array.data_type());
    match (array.data_type(), to) {
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let source = array.as_struct();
            let columns = fields
                .iter()
                .map(|field| match source.column_by_name(field.name()) {
                    Some(child) => widen(child, field.data_type()),
                    None => Ok(new_null_array(field.data_type(), array.len())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            StructArray::try_new(fields.clone(), columns, source.nulls().cloned())
                .map(|a| Arc::new(a) as ArrayRef)
                .map_err(|e| e.to_string())
        }
        (DataType::List(_), DataType::List(item)) => {
            let source = array.as_list::<i32>();
            let values = widen(source.values(), item.data_type())?;
            ListArray::try_new(
                item.clone(),
                source.offsets().clone(),
                values,
                source.nulls().cloned(),
            )
            .map(|a| Arc::new(a) as ArrayRef)
            .map_err(|e| e.to_string())
        }
        (DataType::Map(_, _), DataType::Map(entries, sorted)) => {
            let source = array.as_map();
            let entries_array: ArrayRef = Arc::new(source.entries().clone());
            let widened = widen(&entries_array, entries.data_type())?;
            MapArray::try_new(
                entries.clone(),
                source.offsets().clone(),
                widened.as_struct().clone(),
                source.nulls().cloned(),
                *sorted,
            )
            .map(|a| Arc::new(a) as ArrayRef)
            .map_err(|e| e.to_string())
        }
        _ => Err(refuse()),
    }
}
