//! `events` encoded while its batch is built (issue 16, item 2): every [`SLICE_ROWS`]
//! events the loop assigns the slice's sessions, finishes its columns and sends them to an
//! encoder on the commit thread, which writes them into the batch's Parquet files. A batch
//! then holds encoded pages rather than Arrow columns; sealing it closes the files, and
//! its commit adds them with the batch's `txn`s ([`clickstream_lake::LakeTable::append_files`]).
//!
//! What needed the rows needs the log instead. When the files cannot be written (the
//! store failed mid-write beyond its retries), the batch is not committed: it and the batch
//! built on top are dropped and their partitions read again from the lake's positions
//! ([`crate::committer::Landed::Unwritten`]), which decide every record as they would have
//! (rule 3 of [`crate::exactly_once`]). A batch dropped before its commit (another
//! processor moved its partitions on, shutdown) stops its encoder. Files written and never
//! committed are orphans `vacuum` removes.

use clickstream_lake::{FileTarget, FileWriter, LakeError, RecordBatch, WrittenFiles};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{ProcessError, Processor, Stream};

/// Events per slice: a multiple of parquet's write batch (1,024 rows), so the pages come
/// out as they would from a whole batch; small enough that the columns of one or two
/// slices are all a batch holds unencoded.
pub(crate) const SLICE_ROWS: usize = 8 * 1024;

/// Slices waiting for the encoder: while it is behind, the loop waits rather than holding
/// more columns.
const QUEUED_SLICES: usize = 2;

type Encoding = JoinHandle<Result<WrittenFiles, LakeError>>;

/// The encoder of the batch being built: a task on the commit thread that owns the
/// batch's open files. Dropped unsealed (the batch was dropped), it stops the task.
pub(crate) struct EventsEncoder {
    slices: mpsc::Sender<RecordBatch>,
    task: Option<Encoding>,
    rows: usize,
}

impl EventsEncoder {
    /// Starts an encoder of `target`'s files on `runtime`.
    pub fn start(runtime: &tokio::runtime::Handle, target: FileTarget) -> Self {
        let (slices, mut received) = mpsc::channel::<RecordBatch>(QUEUED_SLICES);
        let task = runtime.spawn(async move {
            let mut writer = FileWriter::new(target);
            while let Some(slice) = received.recv().await {
                writer.write(slice).await?;
            }
            writer.finish().await
        });
        EventsEncoder {
            slices,
            task: Some(task),
            rows: 0,
        }
    }

    /// Hands `slice` to the encoder, waiting while it is [`QUEUED_SLICES`] behind. An
    /// encoder that failed has stopped taking slices: its error comes out of the sealed
    /// batch's commit ([`EventFiles::written`]), which then does not land.
    pub async fn send(&mut self, slice: RecordBatch) {
        self.rows += slice.num_rows();
        // A closed channel means the task ended with its error, reported at the commit.
        let _ = self.slices.send(slice).await;
    }

    /// Ends the slices: the encoder closes the files once it has written them all.
    pub fn seal(mut self) -> EventFiles {
        EventFiles {
            rows: self.rows,
            state: self
                .task
                .take()
                .map_or(FilesState::Lost, FilesState::Encoding),
        }
    }
}

impl Drop for EventsEncoder {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A sealed batch's `events` files: being closed, or written.
pub(crate) struct EventFiles {
    rows: usize,
    state: FilesState,
}

enum FilesState {
    Encoding(Encoding),
    Written(WrittenFiles),
    /// The encoder is gone without its files (a bug: a sealed encoder keeps its task).
    Lost,
}

impl EventFiles {
    /// Rows sent to the files.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The files, once the encoder has closed them (a retried commit finds them written).
    /// [`ProcessError::EventsUnwritten`] when they could not be written.
    pub async fn written(&mut self) -> Result<&WrittenFiles, ProcessError> {
        if let FilesState::Encoding(task) = &mut self.state {
            let files = match task.await {
                Ok(Ok(files)) => files,
                Ok(Err(e)) => {
                    self.state = FilesState::Lost;
                    return Err(ProcessError::EventsUnwritten(e));
                }
                Err(e) => {
                    self.state = FilesState::Lost;
                    return Err(ProcessError::Internal(format!(
                        "the events encoder failed: {e}"
                    )));
                }
            };
            if files.rows() != self.rows {
                return Err(ProcessError::Internal(format!(
                    "the events files hold {} rows of the {} sent",
                    files.rows(),
                    self.rows
                )));
            }
            self.state = FilesState::Written(files);
        }
        match &self.state {
            FilesState::Written(files) => Ok(files),
            FilesState::Encoding(_) | FilesState::Lost => Err(ProcessError::Internal(
                "the events files of a batch are gone".into(),
            )),
        }
    }
}

impl Processor {
    /// Sends the events built since the last slice to the batch's encoder (starting it at
    /// the batch's first slice), with their sessions. The clickstream stream only: the
    /// Segment stream's calls are committed as rows.
    pub(crate) async fn send_events_slice(&mut self) -> Result<(), ProcessError> {
        if self.stream != Stream::Clickstream || self.pending.events_len() == 0 {
            return Ok(());
        }
        let sessions = self
            .enrichment
            .assign_sessions(self.pending.session_inputs());
        let slice = self.pending.finish_events(sessions.as_deref());
        if !self.pending.encoding() {
            let target = self.events_target()?;
            self.pending
                .start_encoding(EventsEncoder::start(&self.commit_thread.handle, target));
        }
        self.pending.send_events(slice).await;
        Ok(())
    }

    /// Sends a slice once enough events are built.
    pub(crate) async fn send_full_events_slice(&mut self) -> Result<(), ProcessError> {
        if self.pending.events_len() >= SLICE_ROWS {
            self.send_events_slice().await?;
        }
        Ok(())
    }

    /// Where `events`' files go: from the table when the commit side is home, else as it
    /// stood when last seen (a commit in flight may grow the schema meanwhile: the files'
    /// commit plans the difference, [`clickstream_lake::LakeTable::append_files`]).
    fn events_target(&mut self) -> Result<FileTarget, ProcessError> {
        if let Some(committer) = &self.home {
            self.events_target = committer.tables.events.file_target()?;
        }
        Ok(self.events_target.clone())
    }
}
