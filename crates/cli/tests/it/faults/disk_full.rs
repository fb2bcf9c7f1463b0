//! The disk under the embedded log filling up, on a small filesystem of the test's own (a
//! tmpfs with a size): once free space falls below the reserve, ingest answers 503 with
//! `Retry-After` and a reason and reports itself unavailable, the processor still lands
//! everything acknowledged (it may use the reserve), and when space is freed ingest
//! accepts again by itself. Needs root to mount, as CI runs; it fails, never skips,
//! without.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::TestPipeline;
use crate::eventually::{check, eventually};
use crate::faults::ledger::{Ledger, Sender};
use crate::faults::{http_get_json, lake_matches_log, report, settle, wait_landed};

const MIB: u64 = 1024 * 1024;

/// A tmpfs of a given size, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Tmpfs {
        let dir = tempfile::tempdir().expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs for the disk-full scenario failed ({status}): it needs root (or \
             CAP_SYS_ADMIN), as CI has"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A file of `bytes` zeros.
fn fill(path: &PathBuf, bytes: u64) {
    let chunk = vec![0u8; MIB as usize];
    let mut file = std::fs::File::create(path).expect("filler");
    for _ in 0..bytes / MIB {
        std::io::Write::write_all(&mut file, &chunk).expect("filler written");
    }
    file.sync_all().expect("filler synced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_embedded_log_file_lake() {
    let disk = Tmpfs::mount(160 * MIB);
    let filler = disk.path().join("filler");
    fill(&filler, 48 * MIB);
    let data = disk.path().join("data");
    crate::faults::capture_logs();
    let t = TestPipeline::start_in(&data, |config| {
        config.log.min_free_bytes = 32 * MIB;
        config.log.segment_bytes = 4 * MIB;
    })
    .await;
    let ledger = Ledger::starting_at(1).padded(4096);
    let collect = t.url("/collect");
    let sender = Sender::start(&ledger, 3, 20, move || collect.clone());

    // The reserve is reached: new events are refused with a reason and Retry-After.
    eventually(
        "the disk reserve is reached",
        Duration::from_secs(120),
        || async {
            let response = t
                .collect(serde_json::to_vec(&crate::common::seed_events()[..1]).expect("json"))
                .await;
            let retry_after = response.headers().contains_key("retry-after");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.expect("json reason");
            let message = body["message"].as_str().unwrap_or_default().to_string();
            check(
                status == 503 && retry_after && message.contains("disk"),
                || format!("{status}: {message}"),
            )
        },
    )
    .await;
    // Readiness says so. Not necessarily at the instant of that 503: the processor's lake
    // files share the disk, so the free space moves around the reserve and a batch is
    // taken whenever it is above; the senders keep pushing it back down.
    let readiness = format!("{}/health/ready/ingest", t.base);
    eventually(
        "readiness reports the refusal",
        Duration::from_secs(30),
        || async {
            let (status, ready) = http_get_json(&readiness).await;
            let reason = ready["roles"]["ingest"]["reason"]
                .as_str()
                .unwrap_or_default();
            check(
                status == 503 && reason.contains("refuses new events"),
                || format!("{status}: {ready}"),
            )
        },
    )
    .await;
    // Everything acknowledged so far still lands: the processor uses the reserve.
    let (_, processor) = http_get_json(&format!("{}/health/ready/processor", t.base)).await;
    eprintln!("processor while the disk is at its reserve: {processor}");
    wait_landed(&t.base, &ledger.acked_ids()).await;

    // Space comes back; ingest accepts again by itself.
    let before = ledger.acked();
    std::fs::remove_file(&filler).expect("filler removed");
    eventually("ingest accepts again", Duration::from_secs(60), || async {
        check(ledger.acked() > before + 100, || {
            format!("{} acked", ledger.acked())
        })
    })
    .await;
    sender.stop().await;
    let outcome = settle(&ledger, &t.base).await;
    lake_matches_log(t.log().as_ref(), &t.base).await;
    report::record(
        "disk full under the embedded log",
        "embedded, file",
        1,
        outcome,
    );
    t.pipeline.shutdown().await.expect("clean shutdown");
    drop(disk);
}
