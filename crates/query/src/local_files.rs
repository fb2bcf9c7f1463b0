//! Reading a local table's Parquet files on the query thread itself.
//!
//! object_store's local file system hands every read to tokio's blocking pool and wakes the
//! query thread when it is done: two thread switches per read, and a statement over a
//! freshly drained table reads a few hundred small files. Profiled on `events_per_type`
//! over 262 such files, the futex, epoll and eventfd calls of those hand-offs were ~14 % of
//! the statement (bench/README.md, "SQL: reading local files on the query thread"). A read
//! of a file's column chunks is a copy from the page cache, microseconds long, so here it
//! is made where the scan asks for it. The query threads are the engine's
//! own (`runtime.rs`), so a read that waits for the disk holds up only statements.
//!
//! Footers go through DataFusion's own reader, which keeps them in the session's metadata
//! cache and counts the bytes read (`bytes_scanned` in `EXPLAIN ANALYZE`); the reads made
//! here are added to the same count, and to `bytes_read_directly` of their own. Object
//! stores that are not a local directory (S3, MinIO) keep DataFusion's reader as it is.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use deltalake::Path;
use deltalake::datafusion::datasource::listing::PartitionedFile;
use deltalake::datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use deltalake::datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use deltalake::datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, Label, MetricBuilder, MetricCategory, MetricType,
    RatioMergeStrategy, RatioMetrics,
};
use deltalake::parquet::arrow::arrow_reader::ArrowReaderOptions;
use deltalake::parquet::arrow::async_reader::AsyncFileReader;
use deltalake::parquet::errors::ParquetError;
use deltalake::parquet::file::metadata::ParquetMetaData;
use futures::FutureExt as _;
use futures::future::{BoxFuture, ready};

/// Reads of fewer bytes than this are made on the query thread; larger ones on a blocking
/// thread. A page-cache copy of 256 KiB takes tens of microseconds, about what a hand-off
/// to another thread and back costs; a larger read from a cold disk can take milliseconds,
/// which the query thread then spends on other statements' tasks instead of waiting.
/// (Reasoned, not measured: on a warm lake both ways measured the same.)
const READ_HERE_MAX_BYTES: u64 = 256 * 1024;

/// The `EXPLAIN ANALYZE` count of the bytes read from a local file directly, not through
/// the object store.
const READ_DIRECTLY: &str = "bytes_read_directly";

/// Makes readers of the files of a table stored in the local directory `root`.
#[derive(Debug)]
pub(crate) struct LocalFiles {
    root: PathBuf,
    /// DataFusion's own reader, for the footers (and their cache).
    footers: CachedParquetFileReaderFactory,
}

impl LocalFiles {
    /// Readers of the files under `root`, reading footers through `footers`.
    pub(crate) fn new(root: PathBuf, footers: CachedParquetFileReaderFactory) -> Self {
        Self { root, footers }
    }
}

/// Where `location` (relative to the table's root `root`, as the log lists it) is on disk,
/// if it is a plain relative path: characters that object_store maps to a file name as
/// they are. Any other location (one with characters object_store escapes on the way to a
/// file name, such as `%` or a non-ASCII letter) is left to the object store, so the two
/// never disagree on which file a location names.
fn path_under(root: &std::path::Path, location: &Path) -> Option<PathBuf> {
    let text = location.as_ref();
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-=/".contains(&b));
    // object_store's paths have neither; checked again so a change there cannot escape root.
    let relative = !text.starts_with('/') && !text.split('/').any(|part| part == "..");
    (plain && relative && !text.is_empty()).then(|| root.join(text))
}

impl ParquetFileReaderFactory for LocalFiles {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> deltalake::datafusion::common::Result<Box<dyn AsyncFileReader + Send>> {
        // Counted only where read here: DataFusion's reader counts what it reads itself.
        let local = path_under(&self.root, &partitioned_file.object_meta.location).map(|path| {
            (
                path,
                Counts::new(partition_index, &partitioned_file, metrics),
            )
        });
        let footers = self.footers.create_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
        )?;
        Ok(match local {
            Some((path, counts)) => Box::new(LocalFile {
                ranges: Ranges::new(path, counts),
                footers,
            }),
            None => footers,
        })
    }
}

/// One local Parquet file: column chunks read in place, the footer through DataFusion.
struct LocalFile {
    ranges: Ranges,
    footers: Box<dyn AsyncFileReader + Send>,
}

/// Where the bytes read from one file are counted for `EXPLAIN ANALYZE`.
#[derive(Default)]
struct Counts {
    /// Added to DataFusion's `bytes_scanned` (its reader of the footer counts none).
    scanned: Count,
    /// Added to DataFusion's `scan_efficiency_ratio`: bytes read of the file's size.
    efficiency: RatioMetrics,
    /// [`READ_DIRECTLY`].
    directly: Count,
}

impl Counts {
    /// The counts of `file`, read by `partition` of the scan, in `metrics`: under the names,
    /// types and label DataFusion's reader gives them, so the two add up.
    fn new(partition: usize, file: &PartitionedFile, metrics: &ExecutionPlanMetricsSet) -> Self {
        let location = file.object_meta.location.as_ref();
        let builder = MetricBuilder::new(metrics)
            .with_label(Label::new("filename", location.to_string()))
            .with_type(MetricType::Summary);
        let efficiency = builder.clone().ratio_metrics_with_strategy(
            "scan_efficiency_ratio",
            partition,
            RatioMergeStrategy::AddPartSetTotal,
        );
        efficiency.set_total(usize::try_from(file.object_meta.size).unwrap_or(usize::MAX));
        Self {
            scanned: builder
                .clone()
                .with_category(MetricCategory::Bytes)
                .counter("bytes_scanned", partition),
            efficiency,
            directly: builder
                .with_category(MetricCategory::Bytes)
                .counter(READ_DIRECTLY, partition),
        }
    }

    fn add(&self, bytes: u64) {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.scanned.add(bytes);
        self.efficiency.add_part(bytes);
        self.directly.add(bytes);
    }
}

/// Byte ranges of one file, read where they are asked for.
struct Ranges {
    path: PathBuf,
    /// Opened at the first read, shared with the reads handed to a blocking thread.
    file: Option<Arc<File>>,
    counts: Counts,
}

impl Ranges {
    fn new(path: PathBuf, counts: Counts) -> Self {
        Self {
            path,
            file: None,
            counts,
        }
    }

    /// The file, opened at the first call.
    fn file(&mut self) -> Result<Arc<File>, ParquetError> {
        if let Some(file) = &self.file {
            return Ok(Arc::clone(file));
        }
        let opened = Arc::new(File::open(&self.path).map_err(|e| error(&self.path, e))?);
        Ok(Arc::clone(self.file.insert(opened)))
    }

    /// `ranges`, read here when they are small, else on a blocking thread (see
    /// [`READ_HERE_MAX_BYTES`]).
    fn read_all(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, Result<Vec<Bytes>, ParquetError>> {
        let total: u64 = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        let file = match self.file() {
            Ok(file) => file,
            Err(e) => return ready(Err(e)).boxed(),
        };
        self.counts.add(total);
        let path = self.path.clone();
        let read_ranges = move || -> Result<Vec<Bytes>, ParquetError> {
            ranges
                .into_iter()
                .map(|range| read(&file, &path, range))
                .collect()
        };
        // Outside a runtime (no blocking pool to hand to), everything is read here.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let Some(runtime) = runtime.filter(|_| total >= READ_HERE_MAX_BYTES) else {
            return ready(read_ranges()).boxed();
        };
        runtime
            .spawn_blocking(read_ranges)
            .map(|joined| {
                joined
                    .unwrap_or_else(|e| Err(ParquetError::General(format!("reading a file: {e}"))))
            })
            .boxed()
    }
}

/// The bytes of `range` of `file` (at `path`): all of them, or an error.
fn read(file: &File, path: &std::path::Path, range: Range<u64>) -> Result<Bytes, ParquetError> {
    let len = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|_| ParquetError::General(format!("a range of {range:?} bytes")))?;
    let mut buffer = vec![0; len];
    file.read_exact_at(&mut buffer, range.start)
        .map_err(|e| error(path, e))?;
    Ok(Bytes::from(buffer))
}

/// `error` of reading `path`, with the path in its message.
fn error(path: &std::path::Path, error: std::io::Error) -> ParquetError {
    ParquetError::External(Box::new(std::io::Error::new(
        error.kind(),
        format!("reading {}: {error}", path.display()),
    )))
}

impl AsyncFileReader for LocalFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes, ParquetError>> {
        self.ranges
            .read_all(vec![range])
            .map(|read| {
                read?
                    .pop()
                    .ok_or_else(|| ParquetError::General("a read returned nothing".into()))
            })
            .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, Result<Vec<Bytes>, ParquetError>> {
        self.ranges.read_all(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>, ParquetError>> {
        self.footers.get_metadata(options)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path as FsPath;

    use super::*;

    #[test]
    fn plain_relative_locations_are_read_in_place() {
        let root = FsPath::new("/lake/events");
        let location = Path::from("event_date=2024-06-03/part-00001-5f0c.snappy.parquet");
        assert_eq!(
            path_under(root, &location),
            Some(root.join("event_date=2024-06-03/part-00001-5f0c.snappy.parquet"))
        );
        let null_partition = Path::from("event_date=__HIVE_DEFAULT_PARTITION__/part-1.parquet");
        assert!(path_under(root, &null_partition).is_some());
    }

    #[test]
    fn other_locations_are_left_to_the_object_store() {
        let root = FsPath::new("/lake/events");
        for text in [
            "page=a%20b/part-1.parquet",
            "file:///elsewhere/part-1.parquet",
            "s3://bucket/events/part-1.parquet",
            "page=caf\u{e9}/part-1.parquet",
            "",
        ] {
            let location = Path::parse(text).unwrap_or_else(|_| Path::from(text));
            assert_eq!(path_under(root, &location), None, "{text}");
        }
    }

    #[test]
    fn ranges_are_read_from_their_offsets() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("part-1.parquet");
        let data: Vec<u8> = (0..=255).cycle().take(10_000).collect();
        std::fs::write(&path, &data).expect("written");
        let file = File::open(&path).expect("opened");
        for range in [0..4, 9_000..10_000, 300..300, 255..4_096] {
            let bytes = read(&file, &path, range.clone()).expect("read");
            assert_eq!(&bytes[..], &data[range.start as usize..range.end as usize]);
        }
        let past_the_end = read(&file, &path, 9_990..10_010).expect_err("past the end");
        assert!(
            past_the_end.to_string().contains("part-1.parquet"),
            "{past_the_end}"
        );
    }

    #[tokio::test]
    async fn large_requests_are_read_on_a_blocking_thread_to_the_same_bytes() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("part-1.parquet");
        let data: Vec<u8> = (0..=250).cycle().take(1 << 20).collect();
        std::fs::write(&path, &data).expect("written");
        let mut ranges = Ranges::new(path, Counts::default());
        let large = vec![0..300_000, 500_000..1_048_576];
        let read = ranges.read_all(large.clone()).await.expect("read");
        for (range, bytes) in large.into_iter().zip(read) {
            assert_eq!(&bytes[..], &data[range.start as usize..range.end as usize]);
        }
        let small: Range<u64> = 10..20;
        let small = ranges.read_all(vec![small]).await.expect("read");
        assert_eq!(&small[0][..], &data[10..20]);
        let counted = 300_000 + (1_048_576 - 500_000) + 10;
        assert_eq!(ranges.counts.scanned.value(), counted);
        assert_eq!(ranges.counts.directly.value(), counted);
    }

    #[test]
    fn outside_a_runtime_everything_is_read_in_place() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("part-1.parquet");
        let data: Vec<u8> = (0..=250).cycle().take(1 << 20).collect();
        std::fs::write(&path, &data).expect("written");
        let mut ranges = Ranges::new(path, Counts::default());
        let whole: Range<u64> = 0..1_048_576;
        let read = futures::executor::block_on(ranges.read_all(vec![whole]));
        assert_eq!(&read.expect("read")[0][..], &data[..]);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut ranges = Ranges::new(dir.path().join("gone.parquet"), Counts::default());
        let header: Range<u64> = 0..8;
        let error =
            futures::executor::block_on(ranges.read_all(vec![header])).expect_err("no such file");
        assert!(error.to_string().contains("gone.parquet"), "{error}");
    }
}
