//! How a stream's writer schemas are laid out in its events table: which Avro fields fill
//! the table's own (seed) columns, which record is flattened into top-level columns, and
//! which table's column names are taken.

use crate::TableKind;

/// Avro paths of the clickstream seed's fields, which fill the seed's columns of `events`.
pub const SEED_PATHS: [&str; 12] = [
    "id",
    "type",
    "package_id",
    "event.user_agent",
    "event.ip",
    "event.customer_id",
    "event.timestamp",
    "event.page",
    "event.query",
    "event.product",
    "event.referrer",
    "event.position",
];

/// Avro paths of the Segment schema's fields that fill `segment_events`' seed columns.
const SEGMENT_SEED_PATHS: [&str; 5] = [
    "message_id",
    "type",
    "timestamp",
    "context.ip",
    "context.user_agent",
];

/// A top-level record whose fields become top-level columns, as the top level's do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flattened {
    /// The top-level field holding the record (`event`, `context`).
    pub record: &'static str,
    /// What its fields' column names start with (`""` for `event`, `context_`).
    pub prefix: &'static str,
}

/// The layout of one stream's writer schemas in its events table.
///
/// A seed path is a top-level field or a field of the flattened record: both are left
/// out of the user columns (they fill the table's own columns). A seed path inside the
/// flattened record therefore has no copy in a user column (`context.ip` lands only in
/// `ip`, where privacy applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    table: TableKind,
    seed_paths: &'static [&'static str],
    flattened: Option<Flattened>,
}

impl Layout {
    /// The clickstream stream: `events`, the seed's twelve fields, `event` flattened
    /// without a prefix.
    pub const CLICKSTREAM: Layout = Layout {
        table: TableKind::Events,
        seed_paths: &SEED_PATHS,
        flattened: Some(Flattened {
            record: "event",
            prefix: "",
        }),
    };

    /// The Segment stream: `segment_events`, seed fields `message_id`, `type`,
    /// `timestamp`, `context.ip` and `context.user_agent`; `context` flattened with the
    /// prefix `context_` (`context.locale` → `context_locale`).
    pub const SEGMENT: Layout = Layout {
        table: TableKind::SegmentEvents,
        seed_paths: &SEGMENT_SEED_PATHS,
        flattened: Some(Flattened {
            record: "context",
            prefix: "context_",
        }),
    };

    /// The events table whose columns this layout fills (and whose names are taken).
    pub fn table(&self) -> TableKind {
        self.table
    }

    /// Avro paths of the fields that fill the table's own columns.
    pub fn seed_paths(&self) -> &'static [&'static str] {
        self.seed_paths
    }

    /// The record flattened into top-level columns, if any.
    pub fn flattened(&self) -> Option<Flattened> {
        self.flattened
    }

    /// Whether the top-level field `name` fills a seed column.
    pub(crate) fn is_seed_top(&self, name: &str) -> bool {
        self.seed_paths.contains(&name)
    }

    /// Whether field `name` of the flattened record fills a seed column.
    pub(crate) fn is_seed_flattened(&self, name: &str) -> bool {
        let Some(flattened) = self.flattened else {
            return false;
        };
        self.seed_paths.iter().any(|path| {
            path.strip_prefix(flattened.record)
                .and_then(|rest| rest.strip_prefix('.'))
                == Some(name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_paths_are_top_level_or_in_the_flattened_record() {
        for layout in [Layout::CLICKSTREAM, Layout::SEGMENT] {
            let record = layout.flattened().map(|f| f.record);
            for path in layout.seed_paths() {
                match path.split_once('.') {
                    None => assert!(layout.is_seed_top(path), "{path}"),
                    Some((parent, field)) => {
                        assert_eq!(Some(parent), record, "{path}");
                        assert!(!field.contains('.'), "{path}");
                        assert!(layout.is_seed_flattened(field), "{path}");
                    }
                }
            }
        }
        assert!(!Layout::SEGMENT.is_seed_flattened("locale"));
        assert!(!Layout::CLICKSTREAM.is_seed_top("event"));
    }
}
