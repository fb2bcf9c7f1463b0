//! The event streams a processor instance can carry. Each has its own topics, subject,
//! consumer group and tables, so the exactly-once rules of [`crate::exactly_once`] hold
//! for each on its own: no table is fed by two streams.

use clickstream_event::{
    INVALID_TOPIC, RAW_TOPIC, SEGMENT_INVALID_TOPIC, SEGMENT_TOPIC, value_subject,
};
use clickstream_lake::TableKind;
use clickstream_lake::avro::Layout;

use crate::exactly_once::{Feed, Table};

/// An event stream: the original's raw events, or Segment's tracking calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Events of the raw subject (the seed's shape, or a site's own versions of it), posted
    /// to `/collect` or written by other producers: tables `events`, `duplicates`,
    /// `dead_letters`, `invalid_events`, plus the latest topic and unique users.
    Clickstream,
    /// Calls of Segment's tracking API (`/v1/*`): tables `segment_events`,
    /// `segment_duplicates`, `segment_dead_letters`, `segment_invalid_events` and
    /// `identities`.
    Segment,
}

impl Stream {
    /// Every stream.
    pub const ALL: [Stream; 2] = [Stream::Clickstream, Stream::Segment];

    /// The stream's name in logs, metrics and settings.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Clickstream => "clickstream",
            Stream::Segment => "segment",
        }
    }

    /// The topic of a feed: valid records (Avro, Confluent wire format) or rejected ones.
    pub(crate) fn topic(self, feed: Feed) -> &'static str {
        match (self, feed) {
            (Stream::Clickstream, Feed::Raw) => RAW_TOPIC,
            (Stream::Clickstream, Feed::Invalid) => INVALID_TOPIC,
            (Stream::Segment, Feed::Raw) => SEGMENT_TOPIC,
            (Stream::Segment, Feed::Invalid) => SEGMENT_INVALID_TOPIC,
        }
    }

    /// The topics the stream's processor subscribes to: valid records, then rejected ones.
    pub fn topics(self) -> [&'static str; 2] {
        [self.topic(Feed::Raw), self.topic(Feed::Invalid)]
    }

    /// The feed a topic is, if it is one of this stream's.
    pub(crate) fn feed_of(self, topic: &str) -> Option<Feed> {
        [Feed::Raw, Feed::Invalid]
            .into_iter()
            .find(|feed| self.topic(*feed) == topic)
    }

    /// The registry subject of the stream's valid records: the versions records are
    /// decoded with and columns planned from.
    pub fn subject(self) -> String {
        value_subject(self.topic(Feed::Raw))
    }

    /// The lake table a processor table of this stream is.
    pub(crate) fn kind(self, table: Table) -> TableKind {
        match (self, table) {
            (Stream::Clickstream, Table::DeadLetters) => TableKind::DeadLetters,
            (Stream::Clickstream, Table::Duplicates) => TableKind::Duplicates,
            (Stream::Clickstream, Table::Events) => TableKind::Events,
            (Stream::Clickstream, Table::Invalid) => TableKind::InvalidEvents,
            (Stream::Segment, Table::DeadLetters) => TableKind::SegmentDeadLetters,
            (Stream::Segment, Table::Duplicates) => TableKind::SegmentDuplicates,
            (Stream::Segment, Table::Events) => TableKind::SegmentEvents,
            (Stream::Segment, Table::Invalid) => TableKind::SegmentInvalidEvents,
            // Only the Segment stream links identities; `tables` never lists it for the
            // other, so this arm names the one table it could mean.
            (_, Table::Identities) => TableKind::Identities,
        }
    }

    /// The tables this stream writes, in commit order.
    pub(crate) fn tables(self) -> &'static [Table] {
        match self {
            Stream::Clickstream => &[
                Table::DeadLetters,
                Table::Duplicates,
                Table::Events,
                Table::Invalid,
            ],
            Stream::Segment => &[
                Table::DeadLetters,
                Table::Duplicates,
                Table::Identities,
                Table::Events,
                Table::Invalid,
            ],
        }
    }

    /// The tables a feed's partitions write to, in commit order.
    pub(crate) fn feed_tables(self, feed: Feed) -> impl Iterator<Item = Table> {
        self.tables()
            .iter()
            .copied()
            .filter(move |table| table.feed() == feed)
    }

    /// Which fields of the stream's records fill the seed columns of its events table,
    /// and how the others become columns.
    pub(crate) fn layout(self) -> &'static Layout {
        match self {
            Stream::Clickstream => &Layout::CLICKSTREAM,
            Stream::Segment => &Layout::SEGMENT,
        }
    }

    /// Whether the stream emits a latest topic and counts unique users (the original's
    /// outputs, of the raw stream only).
    pub(crate) fn has_derived_outputs(self) -> bool {
        self == Stream::Clickstream
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exactly_once::{STEPS, Step};

    #[test]
    fn topics_map_back_to_their_feeds_and_streams_share_none() {
        for stream in Stream::ALL {
            for feed in [Feed::Raw, Feed::Invalid] {
                assert_eq!(stream.feed_of(stream.topic(feed)), Some(feed));
            }
        }
        let [a, b] = Stream::ALL.map(Stream::topics);
        assert!(a.iter().all(|topic| !b.contains(topic)));
    }

    #[test]
    fn no_table_is_written_by_two_streams() {
        let kinds = |stream: Stream| {
            stream
                .tables()
                .iter()
                .map(|t| stream.kind(*t))
                .collect::<Vec<_>>()
        };
        let clickstream = kinds(Stream::Clickstream);
        assert!(
            kinds(Stream::Segment)
                .iter()
                .all(|kind| !clickstream.contains(kind))
        );
    }

    /// Rule 1 per stream: everything a raw record can become commits before `events`.
    #[test]
    fn every_raw_table_commits_before_events_in_every_stream() {
        let position = |step| STEPS.iter().position(|s| *s == step).expect("a step");
        let events = position(Step::Commit(Table::Events));
        for stream in Stream::ALL {
            let raw: Vec<Table> = stream.feed_tables(Feed::Raw).collect();
            for table in &raw {
                assert!(
                    position(Step::Commit(*table)) <= events,
                    "{stream}: {table:?}"
                );
            }
            assert_eq!(raw.last(), Some(&Table::Events), "{stream}");
            let order: Vec<usize> = raw.iter().map(|t| position(Step::Commit(*t))).collect();
            assert!(order.is_sorted(), "{stream}: tables listed in commit order");
        }
    }
}
