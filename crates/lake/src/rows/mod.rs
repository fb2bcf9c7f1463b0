//! Row builders: the processor pushes one row at a time, a builder turns them into an Arrow
//! [`RecordBatch`] with the table's declared schema.
//! One file per table.

mod dead_letters;
mod duplicates;
mod enrichment;
mod event_tail;
mod events;
mod identities;
mod invalid_events;
mod segment_duplicates;
mod segment_events;
mod sized;
mod unique_users;
mod user_columns;

pub use dead_letters::{DeadLetterRow, DeadLettersBuilder};
pub use duplicates::{DuplicateRow, DuplicatesBuilder};
pub use enrichment::{EventEnrichment, SessionColumns};
pub use events::{EventRow, EventsBuilder};
pub use identities::{IdentitiesBuilder, IdentityRow};
pub use invalid_events::{InvalidEventRow, InvalidEventsBuilder};
pub use segment_duplicates::{SegmentDuplicateRow, SegmentDuplicatesBuilder};
pub use segment_events::{SegmentEventRow, SegmentEventsBuilder};
pub use unique_users::{UniqueUsersBuilder, UniqueUsersRow};
pub(crate) use user_columns::UserColumns;
#[cfg(test)]
pub(crate) use user_columns::UserColumns as UserColumnsForTests;

use deltalake::arrow::array::{ArrayRef, RecordBatch, TimestampMicrosecondBuilder};

use crate::TableKind;
use crate::schema::UTC;

/// A builder for a UTC microsecond timestamp column.
fn timestamp_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone(UTC)
}

/// Assembles finished columns into a batch of `kind`'s schema.
fn batch(kind: TableKind, columns: Vec<ArrayRef>) -> RecordBatch {
    // The builders of this module produce exactly the declared columns, types and
    // nullability (the unit tests check every table), so this cannot fail at run time.
    #[allow(clippy::expect_used)]
    RecordBatch::try_new(kind.arrow_schema(), columns)
        .expect("row builder columns match the table schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_builders_produce_empty_batches_of_the_declared_schema() {
        let batches = [
            (TableKind::Events, EventsBuilder::new().finish()),
            (
                TableKind::InvalidEvents,
                InvalidEventsBuilder::new().finish(),
            ),
            (TableKind::DeadLetters, DeadLettersBuilder::new().finish()),
            (TableKind::Duplicates, DuplicatesBuilder::new().finish()),
            (
                TableKind::UniqueUsersDaily,
                UniqueUsersBuilder::new().finish(),
            ),
            (
                TableKind::SegmentEvents,
                SegmentEventsBuilder::new().finish(),
            ),
            (
                TableKind::SegmentInvalidEvents,
                InvalidEventsBuilder::for_kind(TableKind::SegmentInvalidEvents)
                    .expect("invalid")
                    .finish(),
            ),
            (
                TableKind::SegmentDeadLetters,
                DeadLettersBuilder::for_kind(TableKind::SegmentDeadLetters)
                    .expect("dead letters")
                    .finish(),
            ),
            (
                TableKind::SegmentDuplicates,
                SegmentDuplicatesBuilder::new().finish(),
            ),
            (TableKind::Identities, IdentitiesBuilder::new().finish()),
        ];
        assert_eq!(batches.len(), TableKind::ALL.len(), "one builder per table");
        for (kind, batch) in batches {
            assert_eq!(batch.schema(), kind.arrow_schema(), "{kind}");
            assert_eq!(batch.num_rows(), 0);
        }
    }
}
