//! Measures append throughput of the embedded log: 16 concurrent appenders, batches of 100
//! records of 300 bytes, `fsync = always`, in a temporary directory.
//!
//! ```text
//! cargo run --release -p clickstream-log --example append_throughput [seconds] [partitions] [always|interval|never]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clickstream_log::{
    EmbeddedLog, EmbeddedLogConfig, EventLog, FsyncPolicy, OutgoingRecord, TopicSpec,
};

const APPENDERS: usize = 16;
const BATCH: usize = 100;
const RECORD_BYTES: usize = 300;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(Ok(5), |s| s.parse())?;
    let partitions: u32 = args.next().map_or(Ok(8), |s| s.parse())?;
    let fsync = match args.next().as_deref() {
        None | Some("always") => FsyncPolicy::Always,
        Some("interval") => FsyncPolicy::Interval,
        Some("never") => FsyncPolicy::Never,
        Some(other) => anyhow::bail!("unknown fsync policy {other}"),
    };
    let dir = tempfile::tempdir()?;
    let log = Arc::new(
        EmbeddedLog::open(EmbeddedLogConfig {
            fsync,
            ..EmbeddedLogConfig::with_dir(dir.path())
        })
        .await?,
    );
    log.create_topics(&[TopicSpec {
        name: "bench".into(),
        partitions,
        replication: 1,
    }])
    .await?;

    let appended = Arc::new(AtomicU64::new(0));
    let latency_us = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..APPENDERS {
        let (log, appended, latency_us) = (log.clone(), appended.clone(), latency_us.clone());
        tasks.push(tokio::spawn(async move {
            let value = bytes::Bytes::from(vec![b'v'; RECORD_BYTES - 20]);
            let mut n = 0u64;
            while Instant::now() < deadline {
                let batch = (0..BATCH)
                    .map(|i| OutgoingRecord {
                        topic: "bench".into(),
                        partition: None,
                        key: Some(format!("user-{task}-{n}-{i:03}").into()),
                        value: value.clone(),
                        headers: Vec::new(),
                        timestamp_ms: None,
                    })
                    .collect();
                let sent = Instant::now();
                log.append(batch).await?;
                latency_us.fetch_add(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
                appended.fetch_add(BATCH as u64, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let records = appended.load(Ordering::Relaxed);
    let batches = records / BATCH as u64;
    println!(
        "fsync={fsync:?} partitions={partitions} appenders={APPENDERS} batch={BATCH} record={RECORD_BYTES}B: \
         {records} records in {elapsed:.1} s = {:.0} records/s ({:.1} MB/s), mean batch latency {:.2} ms",
        records as f64 / elapsed,
        records as f64 * RECORD_BYTES as f64 / elapsed / 1e6,
        latency_us.load(Ordering::Relaxed) as f64 / batches.max(1) as f64 / 1000.0,
    );
    log.close().await;
    Ok(())
}
