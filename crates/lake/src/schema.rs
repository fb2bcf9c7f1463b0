//! The lake's tables: names, Arrow schemas, partitioning and Delta table properties.

use std::sync::{Arc, LazyLock};

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

mod segment;

/// One of the lake's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableKind {
    /// Valid events with typed columns, partitioned by event date.
    Events,
    /// Events rejected at ingest, with the original JSON and the reason.
    InvalidEvents,
    /// Log records the processor could not decode, kept with the reason.
    DeadLetters,
    /// Distinct customers per day (the ksqlDB table of the original system).
    UniqueUsersDaily,
    /// Events whose `id` had already been seen within the dedup window: kept out of
    /// `events`, recorded here.
    Duplicates,
    /// Segment calls with typed columns, partitioned by the UTC date of their corrected
    /// time.
    SegmentEvents,
    /// Segment calls refused at ingest, with the call as sent and the reason.
    SegmentInvalidEvents,
    /// Records of the Segment topic the processor could not decode.
    SegmentDeadLetters,
    /// Segment calls whose `messageId` had already been seen: kept out of
    /// `segment_events`, recorded here.
    SegmentDuplicates,
    /// One row per identity link a Segment call carried (`identify`, `alias`).
    Identities,
}

/// Timezone of every timestamp column: Delta's `timestamp` type is UTC-adjusted.
pub(crate) const UTC: &str = "UTC";

fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        nullable,
    )
}

/// Enrichment columns of `events` that hold text, before the coordinates.
pub(crate) const ENRICHED_TEXT_BEFORE_COORDINATES: [&str; 11] = [
    "browser_family",
    "browser_version",
    "os_family",
    "os_version",
    "device_family",
    "device_brand",
    "device_model",
    "device_type",
    "geo_country",
    "geo_region",
    "geo_city",
];

/// Enrichment columns of `events` that hold text, after the coordinates.
pub(crate) const ENRICHED_TEXT_AFTER_COORDINATES: [&str; 11] = [
    "referrer_medium",
    "referrer_source",
    "referrer_term",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "msclkid",
];

/// The enrichment columns, appended to `events` after its original columns. All are
/// nullable (an enricher that is off, or has nothing to say, leaves nulls), so that an
/// `events` table written before them is evolved by adding them.
fn enrichment_fields() -> Vec<Field> {
    let text = |name: &&str| Field::new(*name, DataType::Utf8, true);
    let mut fields: Vec<Field> = ENRICHED_TEXT_BEFORE_COORDINATES.iter().map(text).collect();
    fields.push(Field::new("geo_latitude", DataType::Float64, true));
    fields.push(Field::new("geo_longitude", DataType::Float64, true));
    fields.extend(ENRICHED_TEXT_AFTER_COORDINATES.iter().map(text));
    fields.push(Field::new("is_bot", DataType::Boolean, true));
    fields.push(Field::new("bot_reason", DataType::Utf8, true));
    fields.push(Field::new("session_id", DataType::Utf8, true));
    fields.push(Field::new("session_index", DataType::Int64, true));
    fields.push(Field::new("event_index_in_session", DataType::Int64, true));
    fields
}

static EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("package_id", DataType::Utf8, true),
        Field::new("user_agent", DataType::Utf8, false),
        Field::new("ip", DataType::Utf8, false),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("timestamp", DataType::Utf8, false),
        Field::new("page", DataType::Utf8, true),
        Field::new("query", DataType::Utf8, true),
        Field::new("product", DataType::Int64, true),
        Field::new("referrer", DataType::Utf8, true),
        Field::new("position", DataType::Int64, true),
        timestamp("event_time", true),
        Field::new("event_time_valid", DataType::Boolean, false),
        Field::new("event_date", DataType::Date32, true),
    ];
    fields.extend(common_fields());
    fields.extend(enrichment_fields());
    fields.push(source_field());
    Arc::new(Schema::new(fields))
});

/// The columns every event table has after its seed columns: where the record came from
/// and when it was handled.
fn common_fields() -> [Field; 6] {
    [
        Field::new("correlation_id", DataType::Utf8, false),
        Field::new("schema_id", DataType::Int32, false),
        timestamp("log_timestamp", false),
        timestamp("ingested_at", false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
    ]
}

/// The name of the write key the event came with (the `X-Source` header); null without
/// write keys. Last and nullable, so tables written before it are evolved by adding it.
fn source_field() -> Field {
    Field::new("source", DataType::Utf8, true)
}

static INVALID_EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("raw_json", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("correlation_id", DataType::Utf8, true),
        Field::new("event_id", DataType::Int64, true),
        Field::new("event_type", DataType::Utf8, true),
        timestamp("received_at", false),
        Field::new("received_date", DataType::Date32, false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
        source_field(),
    ]))
});

static DEAD_LETTERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("reason", DataType::Utf8, false),
        Field::new("source_topic", DataType::Utf8, false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("raw", DataType::Binary, false),
        Field::new("correlation_id", DataType::Utf8, true),
        Field::new("schema_id", DataType::Int32, true),
        timestamp("received_at", false),
        timestamp("failed_at", false),
    ]))
});

static UNIQUE_USERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("day", DataType::Utf8, false),
        Field::new("unique_users", DataType::Int64, false),
        timestamp("updated_at", false),
    ]))
});

static DUPLICATES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("timestamp", DataType::Utf8, false),
        Field::new("correlation_id", DataType::Utf8, false),
        Field::new("schema_id", DataType::Int32, false),
        timestamp("first_seen_at", false),
        timestamp("log_timestamp", false),
        timestamp("detected_at", false),
        Field::new("source_partition", DataType::Int32, false),
        Field::new("source_offset", DataType::Int64, false),
    ]))
});

impl TableKind {
    /// Every table, in a stable order.
    pub const ALL: [TableKind; 10] = [
        TableKind::Events,
        TableKind::InvalidEvents,
        TableKind::DeadLetters,
        TableKind::UniqueUsersDaily,
        TableKind::Duplicates,
        TableKind::SegmentEvents,
        TableKind::SegmentInvalidEvents,
        TableKind::SegmentDeadLetters,
        TableKind::SegmentDuplicates,
        TableKind::Identities,
    ];

    /// The table's name: its directory under `clickstream-data/` and its SQL name.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Events => "events",
            TableKind::InvalidEvents => "invalid_events",
            TableKind::DeadLetters => "dead_letters",
            TableKind::UniqueUsersDaily => "unique_users_daily",
            TableKind::Duplicates => "duplicates",
            TableKind::SegmentEvents => "segment_events",
            TableKind::SegmentInvalidEvents => "segment_invalid_events",
            TableKind::SegmentDeadLetters => "segment_dead_letters",
            TableKind::SegmentDuplicates => "segment_duplicates",
            TableKind::Identities => "identities",
        }
    }

    /// The table for a name, if there is one.
    pub fn from_name(name: &str) -> Option<TableKind> {
        TableKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The Arrow schema of the table's rows (partition columns included).
    pub fn arrow_schema(self) -> SchemaRef {
        match self {
            TableKind::Events => EVENTS_SCHEMA.clone(),
            TableKind::InvalidEvents => INVALID_EVENTS_SCHEMA.clone(),
            // The same columns: one builder fills both.
            TableKind::DeadLetters | TableKind::SegmentDeadLetters => DEAD_LETTERS_SCHEMA.clone(),
            TableKind::UniqueUsersDaily => UNIQUE_USERS_SCHEMA.clone(),
            TableKind::Duplicates => DUPLICATES_SCHEMA.clone(),
            TableKind::SegmentEvents => segment::EVENTS.clone(),
            TableKind::SegmentInvalidEvents => segment::INVALID_EVENTS.clone(),
            TableKind::SegmentDuplicates => segment::DUPLICATES.clone(),
            TableKind::Identities => segment::IDENTITIES.clone(),
        }
    }

    /// Columns the table is partitioned by (Hive-style `column=value/` directories).
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            TableKind::Events | TableKind::SegmentEvents => &["event_date"],
            TableKind::InvalidEvents | TableKind::SegmentInvalidEvents => &["received_date"],
            TableKind::DeadLetters
            | TableKind::UniqueUsersDaily
            | TableKind::Duplicates
            | TableKind::SegmentDeadLetters
            | TableKind::SegmentDuplicates
            | TableKind::Identities => &[],
        }
    }

    /// One-line description stored in the table's Delta metadata.
    pub fn description(self) -> &'static str {
        match self {
            TableKind::Events => "clickstream events, typed, partitioned by UTC event date",
            TableKind::InvalidEvents => "events rejected at ingest, with the original JSON",
            TableKind::DeadLetters => "log records the processor could not decode",
            TableKind::UniqueUsersDaily => "distinct customers per day",
            TableKind::Duplicates => "events whose id was already seen, kept out of events",
            TableKind::SegmentEvents => {
                "segment calls, typed, partitioned by the UTC date of their corrected time"
            }
            TableKind::SegmentInvalidEvents => "segment calls refused at ingest, as sent",
            TableKind::SegmentDeadLetters => "segment topic records the processor could not decode",
            TableKind::SegmentDuplicates => {
                "segment calls whose messageId was already seen, kept out of segment_events"
            }
            TableKind::Identities => {
                "identity links of segment calls: anonymous or previous id to user id"
            }
        }
    }
}

impl std::fmt::Display for TableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Delta table properties every table is created with. Only properties that keep the
/// protocol at reader 1 / writer 2, so any Delta reader (Spark, Python `deltalake`, DuckDB)
/// opens the tables.
pub(crate) const TABLE_PROPERTIES: &[(&str, &str)] = &[
    // A checkpoint every 100 commits keeps loading fast after many small commits. This is
    // delta's default; it is written down so the behaviour does not depend on it.
    ("delta.checkpointInterval", "100"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for kind in TableKind::ALL {
            assert_eq!(TableKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(TableKind::from_name("nope"), None);
    }

    #[test]
    fn partition_columns_exist_in_schema() {
        for kind in TableKind::ALL {
            let schema = kind.arrow_schema();
            for column in kind.partition_columns() {
                assert!(schema.field_with_name(column).is_ok(), "{kind}: {column}");
            }
        }
    }

    fn names(schema: &Schema) -> Vec<&str> {
        schema.fields().iter().map(|f| f.name().as_str()).collect()
    }

    #[test]
    fn segment_events_end_with_the_columns_events_end_with() {
        let events = TableKind::Events.arrow_schema();
        let segment = TableKind::SegmentEvents.arrow_schema();
        let from_correlation = |schema: &Schema| -> Vec<Field> {
            schema
                .fields()
                .iter()
                .skip_while(|f| f.name() != "correlation_id")
                .map(|f| f.as_ref().clone())
                .collect()
        };
        assert_eq!(from_correlation(&segment), from_correlation(&events));
        assert_eq!(
            names(&segment)[..7],
            [
                "message_id",
                "type",
                "user_agent",
                "ip",
                "timestamp",
                "event_date",
                "correlation_id"
            ]
        );
        let time = segment.field_with_name("timestamp").expect("timestamp");
        assert_eq!(
            time.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        );
        assert!(!time.is_nullable());
        assert!(segment.field_with_name("ip").expect("ip").is_nullable());
    }

    #[test]
    fn segment_tables_mirror_their_clickstream_tables() {
        assert_eq!(
            TableKind::SegmentDeadLetters.arrow_schema(),
            TableKind::DeadLetters.arrow_schema()
        );
        let invalid = TableKind::InvalidEvents.arrow_schema();
        let segment_invalid = TableKind::SegmentInvalidEvents.arrow_schema();
        let renamed: Vec<&str> = names(&invalid)
            .into_iter()
            .map(|n| if n == "event_id" { "message_id" } else { n })
            .collect();
        assert_eq!(names(&segment_invalid), renamed);
        assert_eq!(
            segment_invalid
                .field_with_name("message_id")
                .expect("id")
                .data_type(),
            &DataType::Utf8
        );
        let duplicates = TableKind::Duplicates.arrow_schema();
        let segment_duplicates = TableKind::SegmentDuplicates.arrow_schema();
        assert_eq!(names(&duplicates)[4..], names(&segment_duplicates)[5..]);
        assert_eq!(
            names(&segment_duplicates)[..5],
            ["message_id", "type", "user_id", "anonymous_id", "timestamp"]
        );
        assert!(TableKind::Identities.partition_columns().is_empty());
    }
}
