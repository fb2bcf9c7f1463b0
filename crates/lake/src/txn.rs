//! Application transactions: the consumed log positions written into each Delta commit.
//!
//! As kafka-delta-ingest does, every commit that carries data read from the log also carries
//! one Delta `txn` action per source partition: `appId` names the (consumer group, topic,
//! partition) and `version` the position reached. Data and position land in the same atomic
//! commit, so after a crash the processor resumes from the positions in the table and
//! nothing is written twice or skipped.

/// One `txn` action: an application id and the version it reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppTxn {
    /// Who is writing, see [`txn_app_id`].
    pub app_id: String,
    /// How far it got. The processor records the next log offset to read.
    pub version: i64,
    /// When set, the version the table must hold for `app_id` before this commit
    /// (`Some(None)`: none yet), i.e. where this writer started from. With several writers
    /// a partition can move from one to another while the first still holds a batch; that
    /// batch's version may well be ahead of what the second committed, yet its rows overlap.
    /// Requiring the exact predecessor refuses it ([`crate::LakeError::TxnMoved`]).
    /// Unset: the version only has to advance.
    pub previous: Option<Option<i64>>,
}

impl AppTxn {
    /// A `txn` action for `app_id` at `version`, which only has to advance.
    pub fn new(app_id: impl Into<String>, version: i64) -> Self {
        AppTxn {
            app_id: app_id.into(),
            version,
            previous: None,
        }
    }

    /// A `txn` action moving `app_id` from exactly `previous` (`None`: nothing recorded
    /// yet) to `version`.
    pub fn continuing(app_id: impl Into<String>, previous: Option<i64>, version: i64) -> Self {
        AppTxn {
            app_id: app_id.into(),
            version,
            previous: Some(previous),
        }
    }
}

/// The application id of a consumer group reading one partition of a topic:
/// `<group>:<topic>:<partition>`.
///
/// Delta puts no restriction on `appId` beyond being a string; group and topic names of the
/// log cannot contain `:` (Kafka's legal characters are `[a-zA-Z0-9._-]`), so the id is
/// unambiguous and the same inputs always give the same id.
pub fn txn_app_id(group: &str, topic: &str, partition: u32) -> String {
    format!("{group}:{topic}:{partition}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_id_is_deterministic_and_readable() {
        assert_eq!(
            txn_app_id("processor", "acme.clickstream.raw.events", 3),
            "processor:acme.clickstream.raw.events:3"
        );
        assert_eq!(txn_app_id("g", "t", 0), txn_app_id("g", "t", 0));
        assert_ne!(txn_app_id("g", "t", 1), txn_app_id("g", "t", 10));
    }
}
