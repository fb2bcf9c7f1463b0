//! A site's own event fields in `events` (and Segment's in `segment_events`): the Avro →
//! Arrow/Delta mapping, which column each field lands in, and the builders that turn
//! decoded Avro values into those columns.
//!
//! The processor plans each writer schema once ([`WriterPlan::new`] for the clickstream
//! stream, [`WriterPlan::for_layout`] with the stream's [`Layout`] otherwise) and hands the
//! plan with every decoded record to [`crate::EventsBuilder`] (or
//! [`crate::SegmentEventsBuilder`]); the lake adds the columns a batch brings in the same
//! commit as its rows ([`crate::LakeTable::append`]).

mod added;
mod builder;
mod check;
mod layout;
pub(crate) mod mapping;
mod plan;
#[cfg(test)]
mod segment_tests;
#[cfg(test)]
mod tests;
mod widen;

pub use added::{ColumnChanges, VersionColumns, columns_by_version, columns_by_version_for};
pub use builder::ColumnBuilder;
pub use layout::{Flattened, Layout, SEED_PATHS};
pub use mapping::{Names, Scope, collect_names, holds, merge_types};
pub use plan::{AVRO_PATH_KEY, PlannedColumn, SCHEMA_ID_KEY, SubjectVersion, WriterPlan};
pub use widen::widen;

/// The user columns `records` (all written with `plan`'s schema) fill, built as the
/// events builder builds them: for tests and benchmarks of the mapping on its own.
pub fn build_columns(
    plan: &WriterPlan,
    records: &[apache_avro::types::Value],
) -> Vec<(
    deltalake::arrow::datatypes::FieldRef,
    deltalake::arrow::array::ArrayRef,
)> {
    let mut columns = crate::rows::UserColumns::default();
    for (rows, record) in records.iter().enumerate() {
        columns.push(rows, Some((plan, record)));
    }
    columns.finish()
}

/// The Arrow type of `schema`'s values in the lake, or `None` when there is nothing to
/// store (the `null` type).
pub fn data_type(schema: &apache_avro::Schema) -> Option<deltalake::arrow::datatypes::DataType> {
    let mut names = Names::new();
    collect_names(schema, &mut names);
    Scope { names: &names }.data_type(schema)
}
