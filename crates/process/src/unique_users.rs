//! Unique users per day (the original ksqlDB table): exact distinct non-null customer ids
//! per day, the day being the first 10 characters of `event.timestamp`.
//!
//! The state is derived from the `events` table, which is exactly-once, and always says
//! exactly what `events` holds at one version, [`UniqueUsers::version`]: it is loaded from
//! every data file at start, then follows the table commit by commit. A commit this
//! processor made right after the state's version adds its batch's customers directly;
//! anything else (other processors' commits, read when this processor's own commit lands
//! past them or every few seconds while it is idle) is read from the data files those
//! commits added, never by scanning the whole table again.
//!
//! `unique_users_daily` records, as a `txn` action, the `events` version its counts were
//! derived from, and a processor rewrites it only from a later version. So with several
//! processors the table only ever moves forward: a processor that is behind never
//! overwrites a newer count, and whichever processor sees the newest version writes it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use clickstream_lake::LakeTable;
use deltalake::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type};

use crate::ProcessError;

/// The columns of `events` the state is a function of.
const COLUMNS: [&str; 2] = ["timestamp", "customer_id"];

/// Distinct customers by day, as of one `events` version.
#[derive(Debug, Default)]
pub(crate) struct UniqueUsers {
    days: HashMap<String, HashSet<i64>>,
    /// The `events` version whose rows the state holds.
    version: i64,
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
    /// The state of `events` at the version `events` has loaded (one query over it).
    pub async fn load(events: &LakeTable) -> Result<Self, ProcessError> {
        let batches = events
            .query_loaded_version(
                "SELECT DISTINCT substr(timestamp, 1, 10) AS timestamp, customer_id \
                 FROM snapshot WHERE customer_id IS NOT NULL",
            )
            .await?;
        let mut state = UniqueUsers {
            days: HashMap::new(),
            version: events.version(),
        };
        state.absorb(&batches)?;
        Ok(state)
    }

    /// The `events` version the state holds.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// After this processor's own commit moved `events` from `before` to `after` with the
    /// (day, customer) pairs of its batch: adds them when the state was at `before` and
    /// nobody else committed in between, else reads what the commits since the state's
    /// version added. Returns the days whose count changed.
    pub async fn committed(
        &mut self,
        events: &LakeTable,
        before: i64,
        after: i64,
        customers: &[(String, i64)],
    ) -> Result<BTreeSet<String>, ProcessError> {
        if self.version == before && after == before + 1 {
            let mut changed = BTreeSet::new();
            for (day, customer) in customers {
                if self.add(day, *customer) {
                    changed.insert(day.clone());
                }
            }
            self.version = after;
            return Ok(changed);
        }
        self.catch_up(events).await
    }

    /// Brings the state to the version `events` has loaded, reading only the data files
    /// the commits since the state's version added (the whole table when their log
    /// entries are gone). Returns the days whose count changed.
    pub async fn catch_up(&mut self, events: &LakeTable) -> Result<BTreeSet<String>, ProcessError> {
        if events.version() <= self.version {
            return Ok(BTreeSet::new());
        }
        match events.data_files_added_since(self.version).await? {
            Some(paths) => {
                let batches = events.read_data_files(&paths, &COLUMNS).await?;
                self.version = events.version();
                self.absorb(&batches)
            }
            None => {
                let before = self.counts();
                *self = UniqueUsers::load(events).await?;
                let after = self.counts();
                Ok(after
                    .into_iter()
                    .filter(|(day, n)| before.get(day) != Some(n))
                    .map(|(day, _)| day)
                    .collect())
            }
        }
    }

    /// Adds the customers of `events` rows; returns the days whose count changed.
    fn absorb(&mut self, batches: &[RecordBatch]) -> Result<BTreeSet<String>, ProcessError> {
        let mut changed = BTreeSet::new();
        for batch in batches {
            let column = |name: &str| {
                batch.column_by_name(name).cloned().ok_or_else(|| {
                    ProcessError::State(format!("an events data file has no {name} column"))
                })
            };
            let (days, customers) =
                day_count_columns(&column("timestamp")?, &column("customer_id")?)?;
            for row in 0..batch.num_rows() {
                if days.is_null(row) || customers.is_null(row) {
                    continue;
                }
                let day = day_of(days.value(row));
                if self.add(day, customers.value(row)) {
                    changed.insert(day.to_string());
                }
            }
        }
        Ok(changed)
    }

    /// Records that `customer` was seen on `day`; true if that is new.
    fn add(&mut self, day: &str, customer: i64) -> bool {
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
