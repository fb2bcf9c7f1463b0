//! The columns `events` and `segment_events` share after their seed columns: where the
//! record came from, what the enrichers derived, its session, its source, and the site's
//! own (user) columns.

use std::sync::Arc;

use apache_avro::types::Value;
use deltalake::arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::Schema;

use super::enrichment::{EnrichmentBuilder, EventEnrichment, SessionColumns};
use super::sized::FinishSized;
use super::user_columns::UserColumns;
use super::{batch, timestamp_builder};
use crate::TableKind;
use crate::avro::WriterPlan;
use crate::time::micros_from_millis;

/// Where one event's record came from and when it was handled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Provenance<'a> {
    pub(crate) correlation_id: &'a str,
    pub(crate) schema_id: i32,
    pub(crate) log_timestamp_ms: i64,
    pub(crate) ingested_at_ms: i64,
    pub(crate) source_partition: i32,
    pub(crate) source_offset: i64,
    pub(crate) source: Option<&'a str>,
}

/// The shared columns of one event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tail<'a> {
    pub(crate) provenance: Provenance<'a>,
    pub(crate) enrichment: &'a EventEnrichment<'a>,
    pub(crate) user: Option<(&'a WriterPlan, &'a Value)>,
}

/// Builders of the shared columns, in schema order (the user columns after them).
#[derive(Debug)]
pub(crate) struct TailBuilder {
    correlation_id: StringBuilder,
    schema_id: Int32Builder,
    log_timestamp: TimestampMicrosecondBuilder,
    ingested_at: TimestampMicrosecondBuilder,
    source_partition: Int32Builder,
    source_offset: Int64Builder,
    enrichment: EnrichmentBuilder,
    source: StringBuilder,
    user: UserColumns,
    len: usize,
}

impl TailBuilder {
    pub(crate) fn new() -> Self {
        TailBuilder {
            correlation_id: StringBuilder::new(),
            schema_id: Int32Builder::new(),
            log_timestamp: timestamp_builder(),
            ingested_at: timestamp_builder(),
            source_partition: Int32Builder::new(),
            source_offset: Int64Builder::new(),
            enrichment: EnrichmentBuilder::new(),
            source: StringBuilder::new(),
            user: UserColumns::default(),
            len: 0,
        }
    }

    /// Appends one event's shared columns.
    pub(crate) fn push(&mut self, row: Tail<'_>) {
        let p = row.provenance;
        self.correlation_id.append_value(p.correlation_id);
        self.schema_id.append_value(p.schema_id);
        self.log_timestamp
            .append_value(micros_from_millis(p.log_timestamp_ms));
        self.ingested_at
            .append_value(micros_from_millis(p.ingested_at_ms));
        self.source_partition.append_value(p.source_partition);
        self.source_offset.append_value(p.source_offset);
        self.enrichment.push(row.enrichment);
        self.source.append_option(p.source);
        self.user.push(self.len, row.user);
        self.len += 1;
    }

    /// Rows pushed since the last finish.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// One batch of `kind`: its `seed` columns (finished by the caller, one value per
    /// row), then the shared ones with `sessions` (see [`EnrichmentBuilder::finish`]),
    /// then the user columns. The builder is empty afterwards.
    pub(crate) fn finish(
        &mut self,
        kind: TableKind,
        mut columns: Vec<ArrayRef>,
        sessions: Option<&[SessionColumns<'_>]>,
    ) -> RecordBatch {
        let rows = self.len;
        self.len = 0;
        columns.extend([
            self.correlation_id.finish_sized(),
            self.schema_id.finish_sized(),
            self.log_timestamp.finish_sized(),
            self.ingested_at.finish_sized(),
            self.source_partition.finish_sized(),
            self.source_offset.finish_sized(),
        ]);
        columns.extend(self.enrichment.finish(rows, sessions));
        columns.push(self.source.finish_sized());
        let user = self.user.finish();
        if user.is_empty() {
            return batch(kind, columns);
        }
        // The site's own columns follow this build's; the lake puts them in table order.
        let mut fields: Vec<_> = kind.arrow_schema().fields().to_vec();
        for (field, column) in user {
            fields.push(field);
            columns.push(column);
        }
        // Every user column was built from its own field's type, one value per row.
        #[allow(clippy::expect_used)]
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .expect("user columns match their fields")
    }
}
