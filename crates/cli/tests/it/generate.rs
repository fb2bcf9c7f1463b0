//! `clickstream generate`, the real binary, against a real pipeline: replay batches,
//! resume and `--reset`, errors that do not stop a run, an unreachable server, and
//! synthetic traffic (reproducible, invalid share, rate and count).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use clickstream_event::{INVALID_TOPIC, RAW_TOPIC};
use serde_json::{Value, json};

use crate::common::{TestPipeline, read_topic};

/// What one run of the binary left behind.
struct Run {
    success: bool,
    summary: Value,
    stderr: String,
}

/// Runs `clickstream generate <args> --json --no-progress` in `dir` and reads its summary.
async fn generate(dir: &Path, args: &[&str]) -> Run {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .arg("generate")
        .args(args)
        .args(["--json", "--no-progress"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn clickstream generate");
    let output = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("generate finishes within 4 minutes")
        .expect("generate ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON summary on stdout: {stdout:?}\nstderr: {stderr}"));
    Run {
        success: output.status.success(),
        summary,
        stderr,
    }
}

fn n(summary: &Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {summary}"))
}

/// A JSON Lines file of events with ids `ids`, seed-shaped, one per line.
fn event_line(id: i64) -> String {
    json!({
        "id": id,
        "type": "page_view",
        "event": {
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "ip": "39.202.24.19",
            "customer_id": 1404,
            "timestamp": "2022-05-25T05:41:33.648681",
            "page": "https://xcc-webshop.com/"
        }
    })
    .to_string()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write events file");
}

fn read_state(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("read_state.txt")).expect("read_state.txt exists")
}

/// Ids in the `events` table, sorted, once `expected` rows are there.
async fn event_ids(t: &TestPipeline, expected: i64) -> Vec<i64> {
    t.wait_for_count("SELECT count(*) AS n FROM events", expected)
        .await;
    t.sql("SELECT id FROM events ORDER BY id")
        .await
        .iter()
        .map(|row| row["id"].as_i64().expect("id"))
        .collect()
}

#[tokio::test]
async fn replay_sends_batches_with_one_package_id_each_including_the_last_partial_one() {
    let t = TestPipeline::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // 23 valid events, one the server rejects, one line that is not JSON: 24 events in
    // batches of 10, 10 and 4.
    let mut lines: Vec<String> = (1..=23).map(event_line).collect();
    lines.insert(5, "this line is not json".into());
    lines.insert(17, r#"{"id": 999003, "invalid": "data"}"#.into());
    write_lines(&dir.path().join("events.json"), &lines);

    let run = generate(dir.path(), &[&t.base, "events.json", "--batch-size", "10"]).await;
    assert!(run.success, "{}", run.stderr);
    let s = &run.summary;
    assert_eq!(n(s, "batches_sent"), 3, "{s}");
    assert_eq!(n(s, "events_sent"), 24, "{s}");
    assert_eq!(n(s, "events_accepted_valid"), 23, "{s}");
    assert_eq!(n(s, "events_accepted_invalid"), 1, "{s}");
    assert_eq!(n(s, "lines_skipped"), 1, "{s}");
    assert!(run.stderr.contains("not a JSON object"), "{}", run.stderr);
    assert_eq!(read_state(dir.path()), "25");

    assert_eq!(event_ids(&t, 23).await, (1..=23).collect::<Vec<_>>());
    let per_package = t
        .sql("SELECT package_id, count(*) AS n FROM events GROUP BY package_id ORDER BY n DESC")
        .await;
    let sizes: Vec<i64> = per_package
        .iter()
        .map(|r| r["n"].as_i64().expect("n"))
        .collect();
    // The rejected event was in the second batch: 10, 9 valid, then the final 4.
    assert_eq!(sizes, vec![10, 9, 4]);
    for row in &per_package {
        let id = row["package_id"].as_str().expect("package_id");
        assert_eq!(
            uuid::Uuid::parse_str(id).expect("uuid").get_version_num(),
            4
        );
    }
    t.wait_for_count("SELECT count(*) AS n FROM invalid_events", 1)
        .await;
    let rejected = t.sql("SELECT raw_json FROM invalid_events").await;
    let raw: Value =
        serde_json::from_str(rejected[0]["raw_json"].as_str().expect("raw_json")).expect("json");
    let second_package = per_package
        .iter()
        .find(|r| r["n"] == json!(9))
        .expect("second batch");
    assert_eq!(raw["package_id"], second_package["package_id"]);
}

#[tokio::test]
async fn replay_resumes_from_read_state_and_reset_starts_over() {
    let t = TestPipeline::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_lines(
        &dir.path().join("events.json"),
        &(1..=25).map(event_line).collect::<Vec<_>>(),
    );
    // What the original generator leaves after two full batches of 10.
    std::fs::write(dir.path().join("read_state.txt"), "20").expect("state");

    let run = generate(dir.path(), &[&t.base, "events.json", "--batch-size", "10"]).await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(n(&run.summary, "events_sent"), 5);
    assert_eq!(read_state(dir.path()), "25");
    assert_eq!(event_ids(&t, 5).await, vec![21, 22, 23, 24, 25]);

    let again = generate(dir.path(), &[&t.base, "events.json", "--batch-size", "10"]).await;
    assert!(again.success, "{}", again.stderr);
    assert_eq!(n(&again.summary, "events_sent"), 0, "nothing left to send");

    let reset = generate(
        dir.path(),
        &[&t.base, "events.json", "--batch-size", "10", "--reset"],
    )
    .await;
    assert!(reset.success, "{}", reset.stderr);
    assert_eq!(n(&reset.summary, "events_sent"), 25);
    assert_eq!(read_state(dir.path()), "25");
    // The second sending of 21..=25 repeats ids already in the lake: duplicate detection
    // keeps them out of `events` and in `duplicates`.
    t.wait_for_count("SELECT count(*) AS n FROM duplicates", 5)
        .await;
    assert_eq!(event_ids(&t, 25).await, (1..=25).collect::<Vec<_>>());
    let repeated: Vec<i64> = t
        .sql("SELECT id FROM duplicates ORDER BY id")
        .await
        .iter()
        .map(|row| row["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(repeated, vec![21, 22, 23, 24, 25]);
}

#[tokio::test]
async fn a_batch_the_server_refuses_is_logged_and_the_run_goes_on() {
    let t = TestPipeline::start_with(|c| c.ingest.max_body_bytes = 8 * 1024).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines: Vec<String> = (1..=30).map(event_line).collect();
    // Event 15 is too large for the server's limit: its batch (11..=20) gets a 413.
    let mut big: Value = serde_json::from_str(&lines[14]).expect("json");
    big["event"]["page"] = json!(format!("https://xcc-webshop.com/{}", "x".repeat(10_000)));
    lines[14] = big.to_string();
    write_lines(&dir.path().join("events.json"), &lines);

    let run = generate(dir.path(), &[&t.base, "events.json", "--batch-size", "10"]).await;
    assert!(
        run.success,
        "an HTTP error does not fail the run: {}",
        run.stderr
    );
    assert_eq!(n(&run.summary, "http_errors"), 1, "{}", run.summary);
    assert_eq!(n(&run.summary, "events_accepted_valid"), 20);
    assert!(run.stderr.contains("413"), "{}", run.stderr);
    // A refusal that retrying cannot fix is passed: the position moves on.
    assert_eq!(read_state(dir.path()), "30");
    let ids = event_ids(&t, 20).await;
    assert_eq!(ids, (1..=10).chain(21..=30).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_unreachable_server_fails_the_run_and_keeps_the_saved_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_lines(
        &dir.path().join("events.json"),
        &(1..=50).map(event_line).collect::<Vec<_>>(),
    );
    std::fs::write(dir.path().join("read_state.txt"), "5").expect("state");
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = generate(
        dir.path(),
        &[&url, "events.json", "--batch-size", "10", "--retries", "1"],
    )
    .await;
    assert!(!run.success, "exit status must say the run failed");
    assert_eq!(run.summary["server_unreachable"], json!(true));
    assert_eq!(n(&run.summary, "events_accepted_valid"), 0);
    assert_eq!(read_state(dir.path()), "5", "no line was acknowledged");
}

#[tokio::test]
async fn synthetic_output_is_the_same_for_the_same_seed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &'static str, seed: &'static str| {
        let dir = dir.path().to_path_buf();
        async move {
            let args = [
                "--synthetic",
                "--count",
                "3000",
                "--seed",
                seed,
                "--out",
                name,
            ];
            let run = generate(&dir, &args).await;
            assert!(run.success, "{}", run.stderr);
            std::fs::read(dir.join(name)).expect("output file")
        }
    };
    let a = write("a.jsonl", "7").await;
    let b = write("b.jsonl", "7").await;
    let c = write("c.jsonl", "8").await;
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, other events");
    let text = String::from_utf8(a).expect("utf-8");
    assert_eq!(text.lines().count(), 3000);
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(event.get("id").is_some(), "{line}");
    }
}

#[tokio::test]
async fn the_share_of_invalid_synthetic_events_is_what_the_server_rejects() {
    let t = TestPipeline::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        t.base.as_str(),
        "--synthetic",
        "--count",
        "4000",
        "--seed",
        "5",
        "--invalid-share",
        "0.1",
        "--rate",
        "max",
        "--batch-size",
        "200",
    ];
    let run = generate(dir.path(), &args).await;
    assert!(run.success, "{}", run.stderr);
    let s = &run.summary;
    let (valid, invalid) = (
        n(s, "events_accepted_valid"),
        n(s, "events_accepted_invalid"),
    );
    assert_eq!(valid + invalid, 4000, "{s}");
    assert_eq!(
        invalid,
        n(s, "events_generated_invalid"),
        "the server rejects exactly the events broken on purpose: {s}"
    );
    let share = invalid as f64 / 4000.0;
    // Binomial: 400 ± 19 (one standard deviation); allow five.
    assert!((0.075..0.125).contains(&share), "invalid share {share}");
    assert_eq!(
        read_topic(t.log().as_ref(), INVALID_TOPIC).await.len() as u64,
        invalid
    );
    assert_eq!(
        read_topic(t.log().as_ref(), RAW_TOPIC).await.len() as u64,
        valid
    );
}

#[tokio::test]
async fn synthetic_count_and_rate_bound_what_is_sent() {
    let t = TestPipeline::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let counted = [
        t.base.as_str(),
        "--synthetic",
        "--count",
        "600",
        "--rate",
        "400/s",
        "--batch-size",
        "50",
        "--invalid-share",
        "0",
    ];
    let run = generate(dir.path(), &counted).await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(n(&run.summary, "events_sent"), 600);
    assert_eq!(n(&run.summary, "events_accepted_valid"), 600);
    // The last batch is due 550 / 400 s after the first: a slow machine only adds time.
    let elapsed = run.summary["elapsed_secs"].as_f64().expect("elapsed");
    assert!(elapsed >= 1.3, "600 events at 400/s took only {elapsed} s");

    let timed = [
        t.base.as_str(),
        "--synthetic",
        "--duration",
        "2s",
        "--rate",
        "100/s",
        "--batch-size",
        "10",
        "--seed",
        "9",
    ];
    let run = generate(dir.path(), &timed).await;
    assert!(run.success, "{}", run.stderr);
    let sent = n(&run.summary, "events_sent");
    assert!(
        (10..=200).contains(&sent) && sent.is_multiple_of(10),
        "2 s at 100/s in batches of 10: {sent}"
    );
    let accepted =
        n(&run.summary, "events_accepted_valid") + n(&run.summary, "events_accepted_invalid");
    assert_eq!(accepted, sent);
    let in_log = read_topic(t.log().as_ref(), RAW_TOPIC).await.len()
        + read_topic(t.log().as_ref(), INVALID_TOPIC).await.len();
    assert_eq!(in_log as u64, 600 + sent);
}

#[tokio::test]
async fn a_write_key_goes_with_every_batch() {
    const KEY: &str = "it-generate-key-0123456789";
    let t = TestPipeline::start_with(|c| {
        c.auth.write_keys = [("loadgen".to_string(), KEY.into())].into();
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        t.base.as_str(),
        "--synthetic",
        "--count",
        "50",
        "--rate",
        "max",
    ];
    let refused = generate(dir.path(), &args).await;
    assert_eq!(n(&refused.summary, "events_accepted_valid"), 0);
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);

    let keyed = [&args[..], &["--write-key", KEY, "--invalid-share", "0"]].concat();
    let run = generate(dir.path(), &keyed).await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(n(&run.summary, "events_accepted_valid"), 50);
    assert!(!run.stderr.contains(KEY) && !run.summary.to_string().contains(KEY));
    let records = read_topic(t.log().as_ref(), RAW_TOPIC).await;
    assert_eq!(records.len(), 50);
    let sources: Vec<_> = records
        .iter()
        .map(|r| {
            r.header(clickstream_event::SOURCE_HEADER)
                .map(|s| s.to_vec())
        })
        .collect();
    assert!(
        sources
            .iter()
            .all(|s| s.as_deref() == Some(&b"loadgen"[..]))
    );
}
