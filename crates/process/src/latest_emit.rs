//! Latest-topic records appended while their batch is still being built: one append per
//! poll, in order, on a task of their own, so a batch does not hold its latest records
//! (~700 bytes per event in memory) until it commits.
//!
//! They stay at-least-once derived output, appended before the batch's tables commit
//! (step 1 of [`crate::exactly_once::STEPS`]): the commit's first step waits until every
//! append of its batch is done and appends itself whatever they could not place. After a
//! failed append the later records wait for the commit too, so the topic keeps the order
//! of the log. A batch that does not land (shutdown, partitions moved) had its records
//! emitted all the same; they are emitted again when its events are read again, as after
//! a crash before the commit.

use std::sync::Arc;

use clickstream_log::{EventLog, OutgoingRecord};
use tokio::sync::{mpsc, oneshot};

use crate::ProcessError;

enum Work {
    Append(Vec<OutgoingRecord>),
    /// Answered, once every append sent before it is done, with the records not placed.
    Barrier(oneshot::Sender<Vec<OutgoingRecord>>),
}

/// The records a sealed batch's early appends could not place, once they are done.
pub(crate) struct Unplaced(oneshot::Receiver<Vec<OutgoingRecord>>);

impl Unplaced {
    /// Waits for the appends sent before the batch was sealed.
    pub(crate) async fn wait(self) -> Result<Vec<OutgoingRecord>, ProcessError> {
        self.0.await.map_err(|_| {
            ProcessError::Internal("the latest-topic appender stopped before its batch".into())
        })
    }
}

/// Appends latest-topic records in the background, in the order given.
pub(crate) struct LatestEmitter {
    work: mpsc::UnboundedSender<Work>,
}

impl LatestEmitter {
    /// Starts the appending task on the current runtime; it ends when this is dropped,
    /// after the appends already given.
    pub(crate) fn start(log: Arc<dyn EventLog>) -> Self {
        let (work, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(log, queue));
        LatestEmitter { work }
    }

    /// Appends `records` after those given before. (The queue holds at most the records
    /// of the batch being built and of the one committing: a commit waits for its barrier,
    /// and the next batch is sealed only once the last one landed.)
    pub(crate) fn append(&self, records: Vec<OutgoingRecord>) {
        if !records.is_empty() {
            // The task lives as long as `self`, so the send cannot fail.
            let _ = self.work.send(Work::Append(records));
        }
    }

    /// What the appends given so far could not place, once they are done.
    pub(crate) fn barrier(&self) -> Unplaced {
        let (reply, answer) = oneshot::channel();
        let _ = self.work.send(Work::Barrier(reply));
        Unplaced(answer)
    }
}

async fn run(log: Arc<dyn EventLog>, mut queue: mpsc::UnboundedReceiver<Work>) {
    let mut unplaced: Vec<OutgoingRecord> = Vec::new();
    while let Some(work) = queue.recv().await {
        match work {
            Work::Append(records) if unplaced.is_empty() => {
                if let Err(e) = log.append(records.clone()).await {
                    tracing::debug!(
                        error = %e, records = records.len(),
                        "appending latest-topic records failed; their batch's commit retries them"
                    );
                    unplaced = records;
                }
            }
            Work::Append(records) => unplaced.extend(records),
            Work::Barrier(reply) => {
                let _ = reply.send(std::mem::take(&mut unplaced));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use clickstream_log::{EmbeddedLog, EmbeddedLogConfig, TopicPartition, TopicSpec};

    use super::*;

    fn record(value: &str) -> OutgoingRecord {
        OutgoingRecord {
            topic: "latest".into(),
            partition: Some(0),
            key: None,
            value: Bytes::copy_from_slice(value.as_bytes()),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    fn values(records: &[OutgoingRecord]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8_lossy(&r.value).into_owned())
            .collect()
    }

    /// Appends go out in order; after one fails (a record over the log's limit) the later
    /// ones wait, and the barrier hands them all back in order for the commit to place.
    #[tokio::test]
    async fn after_a_failed_append_the_rest_wait_for_the_commit_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = EmbeddedLogConfig::with_dir(dir.path());
        config.max_record_bytes = 64;
        let log = Arc::new(EmbeddedLog::open(config).await.expect("open log"));
        log.create_topics(&[TopicSpec {
            name: "latest".into(),
            partitions: 1,
            replication: 1,
        }])
        .await
        .expect("topic");
        let emitter = LatestEmitter::start(log.clone());

        emitter.append(vec![record("a"), record("b")]);
        assert!(emitter.barrier().wait().await.expect("barrier").is_empty());
        emitter.append(vec![record(&"x".repeat(100))]);
        emitter.append(vec![record("c")]);
        let unplaced = emitter.barrier().wait().await.expect("barrier");
        assert_eq!(values(&unplaced), ["x".repeat(100), "c".to_string()]);
        // What was handed back is the commit's: the next batch starts clean.
        emitter.append(vec![record("d")]);
        assert!(emitter.barrier().wait().await.expect("barrier").is_empty());

        let read = log
            .read(&TopicPartition::new("latest", 0), 0, 10, Duration::ZERO)
            .await
            .expect("read");
        let read: Vec<_> = read.iter().map(|r| r.value.to_vec()).collect();
        assert_eq!(read, [b"a".to_vec(), b"b".to_vec(), b"d".to_vec()]);
    }
}
