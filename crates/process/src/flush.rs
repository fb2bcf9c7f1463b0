//! Sealing batches and handing them to the commit side: a batch commits in a task of its
//! own while the loop reads, decodes and enriches the next one, and at most one batch is
//! in flight (the next is sealed only once the last has landed, so each `txn` continues
//! from the version the last commit left).
//!
//! Why reading on during a commit decides every record as it would after it: the batch
//! being built starts past the offsets of the one in flight, and a commit only moves a
//! partition's positions up to the offsets it covers, so rule 3
//! ([`crate::exactly_once::Positions::lands`]) gives the same answer for every record of
//! the new batch before and after the commit lands. Decisions that need the tables
//! themselves (a schema id seen for the first time is planned against `events`' columns)
//! wait for the commit in flight. When a commit ends without landing (another processor
//! moved the partitions on, or shutdown came first) the batch built meanwhile is dropped
//! with it and the partitions are read again from where the lake stands.

use crate::batch::PendingBatch;
use crate::committer::{Committer, Landed};
use crate::exactly_once::Feed;
use crate::{ProcessError, Processor};
use clickstream_log::TopicPartition;

/// A batch's commit running in a task of its own; it gives the committer back.
pub(crate) type InFlight = tokio::task::JoinHandle<(Committer, Result<Landed, ProcessError>)>;

/// A thread of the processor's own where batch commits run (a runtime with one worker),
/// so that a commit's CPU work (the latest topic's records, Parquet encoding) never holds
/// one of the async workers that serve ingest and the loop. The runtime is multi-threaded
/// in tokio's sense because delta-rs gives a current-thread runtime a new OS thread (and
/// runtime) for every log read; with one worker it spawns them on it. It ends when this
/// is dropped.
pub(crate) struct CommitThread {
    /// Where commit tasks and the events encoder ([`crate::events_files`]) run.
    pub handle: tokio::runtime::Handle,
    /// Dropping it ends the thread's `block_on`.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl CommitThread {
    /// Starts the thread, named after the stream.
    pub(crate) fn start(stream: crate::Stream) -> Result<Self, ProcessError> {
        let failed = |e: std::io::Error| ProcessError::Internal(format!("commit thread: {e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("commit-{}-worker", stream.name()))
            .enable_all()
            .build()
            .map_err(failed)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("commit-{}", stream.name()))
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                })
            })
            .map_err(failed)?;
        Ok(CommitThread {
            handle,
            _stop: stop,
        })
    }
}

/// What waiting for the commit in flight found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Nothing was in flight, or it landed: the batch being built stands.
    Ready,
    /// The commit did not land: the batch being built was dropped and the partitions
    /// were sought back to the lake's positions (the rest of a poll must not be handled).
    Restarted,
}

impl Processor {
    /// Commits everything pending and waits until it has landed.
    pub(crate) async fn flush(&mut self) -> Result<(), ProcessError> {
        if self.settle().await? == Settled::Restarted {
            return Ok(());
        }
        self.commit_behind().await?;
        self.settle().await.map(|_| ())
    }

    /// Seals what is pending and starts its commit, once the last batch has landed.
    pub(crate) async fn flush_behind(&mut self) -> Result<(), ProcessError> {
        if self.settle().await? == Settled::Restarted {
            return Ok(());
        }
        self.commit_behind().await
    }

    /// Takes in the commit in flight if it has finished, without waiting.
    pub(crate) async fn settle_if_done(&mut self) -> Result<Settled, ProcessError> {
        if self
            .in_flight
            .as_ref()
            .is_some_and(|task| task.is_finished())
        {
            return self.settle().await;
        }
        Ok(Settled::Ready)
    }

    /// The commit side, waiting for the batch in flight to land first.
    pub(crate) async fn committer(&mut self) -> Result<(&mut Committer, Settled), ProcessError> {
        let settled = self.settle().await?;
        let committer = self.home.as_mut().ok_or_else(lost)?;
        Ok((committer, settled))
    }

    /// The commit side, when no batch is in flight.
    pub(crate) fn at_home(&mut self) -> Result<&mut Committer, ProcessError> {
        self.home.as_mut().ok_or_else(lost)
    }

    /// Seals the pending batch and starts its commit in a task.
    async fn commit_behind(&mut self) -> Result<(), ProcessError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The clickstream stream's last events go to the encoder (with their sessions);
        // the Segment stream's sessions are assigned to the whole batch here.
        self.send_events_slice().await?;
        let mut committer = self.home.take().ok_or_else(lost)?;
        let sessions = self
            .enrichment
            .assign_sessions(self.pending.session_inputs());
        let stream = self.stream;
        let committed = &committer.committed;
        let positions = |feed: Feed, partition: u32| {
            let tp = TopicPartition::new(stream.topic(feed), partition);
            committed.get(&tp).copied().unwrap_or_default()
        };
        self.latest.append(self.pending.take_latest());
        let unplaced = self.latest.barrier();
        let mut sealed = self.pending.seal(
            &self.config.group,
            &positions,
            sessions.as_deref(),
            self.enrichment.detects_duplicates(),
        );
        sealed.latest_unplaced = Some(unplaced);
        self.in_flight = Some(self.commit_thread.handle.spawn(async move {
            let landed = committer.land(sealed).await;
            (committer, landed)
        }));
        Ok(())
    }

    /// Waits for the commit in flight, if any, and takes the committer back.
    async fn settle(&mut self) -> Result<Settled, ProcessError> {
        let Some(task) = self.in_flight.take() else {
            return Ok(Settled::Ready);
        };
        let (committer, landed) = task
            .await
            .map_err(|e| ProcessError::Internal(format!("the commit task failed: {e}")))?;
        self.positions.clone_from(&committer.committed);
        self.home = Some(committer);
        match landed? {
            Landed::Committed(offsets) => {
                // Informational: lets lag tools see the processor's position. Positions
                // that count are the lake's.
                if let Err(e) = self.consumer.commit(&offsets).await {
                    tracing::debug!(error = %e, "committing group offsets failed (informational only)");
                }
                Ok(Settled::Ready)
            }
            Landed::Moved | Landed::Unwritten => {
                self.pending = PendingBatch::new(self.stream)?;
                let assigned = self.consumer.assignment();
                self.assign(&assigned).await?;
                Ok(Settled::Restarted)
            }
            Landed::Abandoned => {
                // Committing what was built on top of the abandoned batch would skip its
                // records: both are read again at the next start.
                self.pending = PendingBatch::new(self.stream)?;
                Ok(Settled::Restarted)
            }
        }
    }
}

/// The committer is away only while a commit task holds it, and every path that needs it
/// settles that task first.
fn lost() -> ProcessError {
    ProcessError::Internal("the processor's commit side is away".into())
}
