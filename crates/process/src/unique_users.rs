//! Unique users per day (the original ksqlDB table): exact distinct non-null customer ids
//! per day, the day being the first 10 characters of `event.timestamp`.
//!
//! The state is derived from the `events` table, which is exactly-once: at start it is
//! rebuilt with one query, and afterwards extended with each committed batch. So counts are
//! exact, never decrease, and survive restarts without a state store of their own.

use std::collections::{BTreeMap, HashMap, HashSet};

use clickstream_query::QueryEngine;
use deltalake::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type};

use crate::ProcessError;

/// Distinct customers by day.
#[derive(Debug, Default)]
pub(crate) struct UniqueUsers {
    days: HashMap<String, HashSet<i64>>,
}

/// The day of an event: the first 10 characters of its timestamp (`YYYY-MM-DD`).
pub(crate) fn day_of(timestamp: &str) -> &str {
    match timestamp.char_indices().nth(10) {
        Some((end, _)) => &timestamp[..end],
        None => timestamp,
    }
}

/// A (day, number) column pair as plain Arrow arrays, whatever string and integer
/// representation the query engine chose (DataFusion reads Parquet strings as views).
pub(crate) fn day_count_columns(
    days: &ArrayRef,
    numbers: &ArrayRef,
) -> Result<(StringArray, Int64Array), ProcessError> {
    let unexpected = |e: deltalake::arrow::error::ArrowError| {
        ProcessError::State(format!("unexpected column types: {e}"))
    };
    let days = cast(days, &DataType::Utf8).map_err(unexpected)?;
    let numbers = cast(numbers, &DataType::Int64).map_err(unexpected)?;
    Ok((
        days.as_string::<i32>().clone(),
        numbers.as_primitive::<Int64Type>().clone(),
    ))
}

impl UniqueUsers {
    /// Rebuilds the state from the committed `events` table.
    pub async fn load(engine: &QueryEngine) -> Result<Self, ProcessError> {
        let output = engine
            .sql(
                "SELECT DISTINCT substr(timestamp, 1, 10) AS day, customer_id \
                 FROM events WHERE customer_id IS NOT NULL",
            )
            .await
            .map_err(|e| ProcessError::state_query("rebuilding unique users", &e))?;
        let mut state = UniqueUsers::default();
        for batch in &output.batches {
            let (days, customers) = day_count_columns(batch.column(0), batch.column(1))?;
            for row in 0..batch.num_rows() {
                if !days.is_null(row) && !customers.is_null(row) {
                    state.add(days.value(row), customers.value(row));
                }
            }
        }
        Ok(state)
    }

    /// Records that `customer` was seen on `day`; true if that is new.
    pub fn add(&mut self, day: &str, customer: i64) -> bool {
        match self.days.get_mut(day) {
            Some(customers) => customers.insert(customer),
            None => {
                self.days.insert(day.to_string(), HashSet::from([customer]));
                true
            }
        }
    }

    /// Count of distinct customers on `day`.
    pub fn count(&self, day: &str) -> i64 {
        self.days.get(day).map_or(0, |c| c.len() as i64)
    }

    /// Every day with its count, ordered by day.
    pub fn counts(&self) -> BTreeMap<String, i64> {
        self.days
            .iter()
            .map(|(day, customers)| (day.clone(), customers.len() as i64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_is_the_first_ten_characters() {
        assert_eq!(day_of("2022-05-25T05:41:33.648681"), "2022-05-25");
        assert_eq!(day_of("2024-01-01T00:00:00Z"), "2024-01-01");
        assert_eq!(day_of("short"), "short");
        assert_eq!(day_of("2022-05-2€T"), "2022-05-2€");
    }

    #[test]
    fn counts_are_distinct_per_day() {
        let mut state = UniqueUsers::default();
        assert!(state.add("2022-05-25", 1));
        assert!(!state.add("2022-05-25", 1));
        assert!(state.add("2022-05-25", 2));
        assert!(state.add("2022-05-26", 1));
        assert_eq!(state.count("2022-05-25"), 2);
        assert_eq!(state.count("2022-05-26"), 1);
        assert_eq!(state.count("2022-05-27"), 0);
        assert_eq!(state.counts().len(), 2);
    }
}
