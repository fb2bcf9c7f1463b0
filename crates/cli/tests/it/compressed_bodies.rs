//! Compressed bodies end to end: every coding accepted and landing in the lake, an event
//! over the per-event limit landing in `invalid_events` cut to its first kilobytes, and a
//! 10 GiB gzip bomb refused with 413 while the server's memory barely moves (measured on
//! a `clickstream up` child, from /proc).

use std::time::{Duration, Instant};

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};
use serde_json::{Value, json};

use crate::bad_input::compressed::{FORMS, encode};
use crate::common::{TestPipeline, json_body, seed_events};
use crate::faults::child::{Child, UP_ON_FREE_PORTS, field};

/// The seed's events with ids of their own for batch `n`.
fn batch(n: i64) -> Vec<Value> {
    let mut events = seed_events();
    for event in &mut events {
        if let Some(id) = event["id"].as_i64() {
            event["id"] = json!(id + n * 1_000_000);
        }
    }
    events
}

async fn post_coded(
    http: &reqwest::Client,
    url: &str,
    encoding: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(body)
        .send()
        .await
        .expect("answered");
    (response.status().as_u16(), json_body(response).await)
}

#[tokio::test]
async fn gzip_zstd_br_and_deflate_bodies_are_accepted_and_land_in_the_lake() {
    let t = TestPipeline::start().await;
    let mut correlation_ids = Vec::new();
    let mut invalid = 0;
    for (n, (encoder, encoding, _)) in FORMS.into_iter().enumerate() {
        let json = serde_json::to_vec(&batch(n as i64 + 1)).expect("json");
        let coded = encode(encoder, &json).await;
        assert!(coded.len() < json.len() / 2, "{encoder} compresses");
        let (status, body) = post_coded(&t.http, &t.url("/collect"), encoding, coded).await;
        assert_eq!(status, 200, "{encoder} as {encoding}: {body}");
        assert_eq!(body["valid_count"], 12, "{encoder} as {encoding}: {body}");
        invalid += body["invalid_count"].as_i64().expect("count");
        correlation_ids.push(format!(
            "'{}'",
            body["correlation_id"].as_str().expect("id")
        ));
    }
    let ids = correlation_ids.join(", ");
    let valid = 12 * FORMS.len() as i64;
    t.wait_for_count(
        &format!("SELECT count(*) AS n FROM events WHERE correlation_id IN ({ids})"),
        valid,
    )
    .await;
    t.wait_for_count(
        &format!("SELECT count(*) AS n FROM invalid_events WHERE correlation_id IN ({ids})"),
        invalid,
    )
    .await;
}

#[tokio::test]
async fn an_oversized_event_lands_in_invalid_events_with_its_first_4_kib() {
    let t = TestPipeline::start().await;
    let mut big = seed_events()[0].clone();
    big["event"]["user_agent"] = json!("é".repeat(40_000));
    let size = serde_json::to_vec(&big).expect("json").len();
    let events = vec![seed_events()[0].clone(), big];
    let json = serde_json::to_vec(&events).expect("json");
    let (status, body) = post_coded(
        &t.http,
        &t.url("/collect"),
        "gzip",
        encode("gzip", &json).await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["valid_count"].as_i64(), body["invalid_count"].as_i64()),
        (Some(1), Some(1))
    );

    let id = body["correlation_id"].as_str().expect("id");
    let query = format!("SELECT count(*) AS n FROM invalid_events WHERE correlation_id = '{id}'");
    t.wait_for_count(&query, 1).await;
    let rows = t
        .sql(&format!(
            "SELECT reason, octet_length(raw_json) AS kept, raw_json FROM invalid_events \
             WHERE correlation_id = '{id}'"
        ))
        .await;
    let expected = format!(
        "event is {size} bytes, over the limit of 65536 bytes (its first 4096 bytes are kept)"
    );
    assert_eq!(rows[0]["reason"], json!(expected));
    // Cut on a character boundary: "é" is two bytes and the text before it an odd number.
    let kept = rows[0]["kept"].as_i64().expect("kept");
    assert!((4095..=4096).contains(&kept), "{kept}");
    let original = serde_json::to_string(&events[1]).expect("json");
    let raw = rows[0]["raw_json"].as_str().expect("raw_json");
    assert!(original.starts_with(raw));
}

/// A single-member gzip stream inflating to `mib` MiB of zeros, produced piece by piece:
/// deflate with a full flush after each MiB resets the compressor, so every MiB after the
/// first compresses to the same block; the trailer's CRC-32 is combined, not computed.
struct GzipBomb {
    head: Vec<u8>,
    block: Bytes,
    tail: Vec<u8>,
    mib: u64,
}

impl GzipBomb {
    fn new(mib: u64) -> GzipBomb {
        let zeros = vec![0u8; 1 << 20];
        let mut deflate = Compress::new(Compression::best(), false);
        let first = deflate_step(&mut deflate, &zeros, FlushCompress::Full);
        let block = deflate_step(&mut deflate, &zeros, FlushCompress::Full);
        let again = deflate_step(&mut deflate, &zeros, FlushCompress::Full);
        assert_eq!(
            block, again,
            "after a full flush each MiB compresses the same"
        );
        let end = deflate_step(&mut deflate, &[], FlushCompress::Finish);

        let mut one = crc32fast::Hasher::new();
        one.update(&zeros);
        let mut crc = crc32fast::Hasher::new();
        let (mut power, mut n) = (one, mib);
        while n > 0 {
            if n & 1 == 1 {
                crc.combine(&power);
            }
            let square = power.clone();
            power.combine(&square);
            n >>= 1;
        }
        let mut head = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];
        head.extend(first);
        let mut tail = end;
        tail.extend(crc.finalize().to_le_bytes());
        tail.extend(((mib << 20) as u32).to_le_bytes());
        GzipBomb {
            head,
            block: Bytes::from(block),
            tail,
            mib,
        }
    }

    /// Its size as sent.
    fn len(&self) -> u64 {
        (self.head.len() + self.tail.len()) as u64 + self.block.len() as u64 * (self.mib - 1)
    }

    /// Its bytes in pieces of at most 64 blocks; never all of it at once.
    fn pieces(&self) -> impl Iterator<Item = Bytes> + Send + 'static {
        let group = Bytes::from(self.block.repeat(64));
        let blocks = self.mib - 1;
        let last = Bytes::from(self.block.repeat((blocks % 64) as usize));
        let head = Bytes::from(self.head.clone());
        let tail = Bytes::from(self.tail.clone());
        std::iter::once(head)
            .chain(std::iter::repeat_n(group, (blocks / 64) as usize))
            .chain([last, tail])
    }
}

fn deflate_step(deflate: &mut Compress, input: &[u8], flush: FlushCompress) -> Vec<u8> {
    let start = deflate.total_in();
    let mut out = Vec::new();
    loop {
        out.reserve(64 * 1024);
        let consumed = (deflate.total_in() - start) as usize;
        let status = deflate
            .compress_vec(&input[consumed..], &mut out, flush)
            .expect("deflate");
        let all_in = (deflate.total_in() - start) as usize == input.len();
        if status == Status::StreamEnd || (all_in && out.len() < out.capacity()) {
            return out;
        }
    }
}

#[test]
fn the_bomb_is_a_valid_gzip_of_zeros() {
    let bomb = GzipBomb::new(3);
    let bytes: Vec<u8> = bomb.pieces().flat_map(|b| b.to_vec()).collect();
    assert_eq!(bytes.len() as u64, bomb.len());
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut inflated)
        .expect("gunzips, CRC and length checked");
    assert_eq!(inflated.len(), 3 << 20);
    assert!(inflated.iter().all(|b| *b == 0));
}

/// A `/proc/<pid>/status` figure, in KiB.
fn proc_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    line.split_whitespace()
        .nth(1)
        .expect("value")
        .parse()
        .expect("KiB")
}

/// Sends the 10 GiB bomb to a `clickstream up` child with `env`, asserts 413 with a reason
/// containing `reason` and a peak RSS under 50 MB above the RSS before it, and that the
/// child still takes a gzip batch after.
async fn bomb_the_server(env: Vec<(String, String)>, reason: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Child::spawn("up", dir.path(), &UP_ON_FREE_PORTS, env);
    let line = child.wait_for_line("clickstream is up").await;
    let url = format!("{}/collect", field(&line, "ingest"));
    // The processors start in the background (loading the enrichers' data): the growth
    // measured must be the bomb's, not theirs.
    crate::faults::wait_ready(field(&line, "ingest")).await;
    let http = reqwest::Client::new();
    let warm_up = encode("gzip", &serde_json::to_vec(&batch(1)).expect("json")).await;
    assert_eq!(post_coded(&http, &url, "gzip", warm_up).await.0, 200);

    let bomb = GzipBomb::new(10 * 1024);
    let pid = child.pid();
    let before = proc_kib(pid, "VmRSS:");
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS");
    let started = Instant::now();
    let stream = futures::stream::iter(bomb.pieces().map(Ok::<_, std::io::Error>));
    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(reqwest::Body::wrap_stream(stream))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the server answers the bomb");
    let status = response.status().as_u16();
    let body = json_body(response).await;
    let elapsed = started.elapsed();
    let peak = proc_kib(pid, "VmHWM:");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "gzip bomb ({} bytes, 10 GiB inflated): {status} in {elapsed:?}; RSS before {before} KiB, \
         peak during {peak} KiB, growth {growth} KiB; {body}",
        bomb.len()
    );
    assert_eq!(status, 413, "{body}");
    let message = body["message"].as_str().expect("reason");
    assert!(message.contains(reason), "{message}");
    assert!(growth * 1024 < 50_000_000, "RSS grew by {growth} KiB");

    let after = encode("gzip", &serde_json::to_vec(&batch(2)).expect("json")).await;
    let (status, body) = post_coded(&http, &url, "gzip", after).await;
    assert_eq!(
        (status, body["valid_count"].as_i64()),
        (200, Some(12)),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_gib_gzip_bomb_is_413_at_the_ratio_cap_and_costs_under_50_mb() {
    bomb_the_server(Vec::new(), "times its compressed size").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_gib_gzip_bomb_is_413_at_the_size_cap_without_a_ratio_cap() {
    let ratio_off = (
        "CLICKSTREAM_INGEST__MAX_COMPRESSION_RATIO".to_string(),
        "0".to_string(),
    );
    bomb_the_server(vec![ratio_off], "inflates past the limit of 10485760 bytes").await;
}
