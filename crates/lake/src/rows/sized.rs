//! Finishing a column and sizing its builder for the next batch as this one was.
//!
//! Arrow's `finish()` hands the builder's buffers to the array and leaves the builder
//! with none, so every batch would grow each column again from nothing, copying it into
//! freshly faulted pages at each doubling. In a drain's profile that regrowth (the copy,
//! the page faults, the page clearing) was one of the largest items on the processor's
//! thread. Batches of one stream are alike in size (cut by the same byte, row and time
//! bounds), so the next batch's builders start with this batch's rows and bytes, plus an
//! eighth. A capacity is address space until it is written, so a smaller next batch costs
//! no resident memory for what it leaves unused.

use std::sync::Arc;

use deltalake::arrow::array::{
    Array as _, ArrayBuilder as _, ArrayRef, ArrowPrimitiveType, BooleanBuilder, PrimitiveBuilder,
    StringBuilder,
};

/// A builder that finishes into an array and starts again at the capacity it reached.
pub(super) trait FinishSized {
    /// Finishes the column, leaving the builder empty with room for as many values
    /// (and bytes) as it held, plus an eighth.
    fn finish_sized(&mut self) -> ArrayRef;
}

/// `n` and an eighth more: a batch a little larger than the last still fits.
fn headroom(n: usize) -> usize {
    n.saturating_add(n / 8)
}

impl FinishSized for StringBuilder {
    fn finish_sized(&mut self) -> ArrayRef {
        let (values, bytes) = (self.len(), self.values_slice().len());
        let array = self.finish();
        *self = StringBuilder::with_capacity(headroom(values), headroom(bytes));
        Arc::new(array)
    }
}

impl<T: ArrowPrimitiveType> FinishSized for PrimitiveBuilder<T> {
    fn finish_sized(&mut self) -> ArrayRef {
        let values = self.len();
        let array = self.finish();
        // The data type carries what `T` alone does not (a timestamp's time zone).
        *self = PrimitiveBuilder::with_capacity(headroom(values))
            .with_data_type(array.data_type().clone());
        Arc::new(array)
    }
}

impl FinishSized for BooleanBuilder {
    fn finish_sized(&mut self) -> ArrayRef {
        let values = self.len();
        let array = self.finish();
        *self = BooleanBuilder::with_capacity(headroom(values));
        Arc::new(array)
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Array, ArrayBuilder, AsArray, TimestampMicrosecondBuilder};
    use deltalake::arrow::datatypes::TimestampMicrosecondType;

    use super::*;

    #[test]
    fn the_next_batch_starts_with_room_for_this_one() {
        let mut text = StringBuilder::new();
        for _ in 0..800 {
            text.append_value("0123456789");
        }
        text.append_null();
        let first = text.finish_sized();
        assert_eq!((first.len(), first.null_count()), (801, 1));
        assert_eq!(first.as_string::<i32>().value(0), "0123456789");
        assert!(text.is_empty());
        assert!(
            text.values_capacity() >= 9_000,
            "{}",
            text.values_capacity()
        );

        let mut flags = BooleanBuilder::new();
        flags.append_value(true);
        assert!(flags.finish_sized().as_boolean().value(0));
        assert!(flags.is_empty() && flags.capacity() >= 1);
    }

    #[test]
    fn a_timestamp_column_keeps_its_time_zone_across_batches() {
        let mut times = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        times.append_value(1);
        let first = times.finish_sized();
        times.append_value(2);
        let second = times.finish_sized();
        assert_eq!(first.data_type(), second.data_type());
        assert_eq!(
            second.as_primitive::<TimestampMicrosecondType>().value(0),
            2
        );
        assert!(times.capacity() >= 1);
    }
}
