//! Slow and hostile clients against a real `clickstream up` child: hundreds of connections
//! trickling a header one byte a second while a normal client is served quickly; idle,
//! half-sent and stalled connections closed at their deadlines; open connections capped
//! below the descriptor limit. The deadlines that need a connection's whole life (an idle
//! HTTP/2 connection, a client that never reads) are in [`deadlines`].

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::faults::child::{Child, UP_ON_FREE_PORTS, field};

mod deadlines;

/// `clickstream up` with `env`, and the line saying where it listens.
pub async fn up_announced(dir: &std::path::Path, env: &[(&str, &str)]) -> (Child, String) {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let mut child = Child::spawn("up", dir, &UP_ON_FREE_PORTS, env);
    let line = child.wait_for_line("clickstream is up").await;
    (child, line)
}

/// `clickstream up` with short deadlines, and its ingest address (`127.0.0.1:port`).
pub async fn up_with(dir: &std::path::Path, env: &[(&str, &str)]) -> (Child, String) {
    let (child, line) = up_announced(dir, env).await;
    (child, address(&line, "ingest"))
}

/// The `host:port` of the listener `name` in the line announcing `up`.
pub fn address(line: &str, name: &str) -> String {
    field(line, name).trim_start_matches("http://").to_string()
}

/// The port of `host:port`.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

const DEADLINES: [(&str, &str); 2] = [
    ("CLICKSTREAM_HTTP__HEADER_TIMEOUT_MS", "3000"),
    ("CLICKSTREAM_HTTP__BODY_TIMEOUT_MS", "3000"),
];

/// Reads until the server closes the connection (or `limit` passes); returns what it sent.
pub async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

pub fn one_event(id: u64) -> String {
    serde_json::json!([{"id": id, "type": "page_view", "event": {
        "user_agent": "slow-clients-test", "ip": "10.1.2.3", "timestamp": "2024-05-01T12:00:00Z"}}])
    .to_string()
}

#[tokio::test]
async fn a_normal_client_is_served_quickly_while_hundreds_trickle_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_child, ingest) = up_with(dir.path(), &[]).await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(&ingest).await.expect("connect");
        stream.write_all(b"P").await.expect("first byte");
        slow.push(stream);
    }
    let trickle = tokio::spawn(async move {
        for byte in b"OST /collect HTTP/1.1\r\nHost: x\r\n".iter().take(8) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for stream in &mut slow {
                let _ = stream.write_all(&[*byte]).await;
            }
        }
        slow
    });
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut id = 9_000_000;
    while started.elapsed() < Duration::from_secs(7) {
        id += 1;
        let sent = Instant::now();
        let answer = http
            .post(format!("http://{ingest}/collect"))
            .header("content-type", "application/json")
            .body(one_event(id))
            .send()
            .await
            .expect("the normal client is answered");
        assert_eq!(answer.status(), 200);
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    trickle.await.expect("trickle");
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    assert!(
        latencies.len() >= 50,
        "only {} requests in 7 s",
        latencies.len()
    );
    assert!(
        p99 < Duration::from_millis(100),
        "p99 {p99:?} over {} requests",
        latencies.len()
    );
}

#[tokio::test]
async fn idle_half_sent_and_stalled_connections_are_closed_at_their_deadlines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_child, ingest) = up_with(dir.path(), &DEADLINES).await;
    let limit = Duration::from_secs(10);

    // A partial header: closed without an answer once the header deadline passes.
    let mut partial = TcpStream::connect(&ingest).await.expect("connect");
    partial
        .write_all(b"POST /collect HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let opened = Instant::now();
    let said = read_until_closed(&mut partial, limit)
        .await
        .expect("closed by the server");
    assert!(
        opened.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        opened.elapsed()
    );
    assert!(!said.contains(" 200 "), "{said}");

    // An idle kept-alive connection after one request: closed at the header deadline.
    let mut idle = TcpStream::connect(&ingest).await.expect("connect");
    idle.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let opened = Instant::now();
    let said = read_until_closed(&mut idle, limit)
        .await
        .expect("closed by the server");
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
    assert!(
        opened.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        opened.elapsed()
    );

    // A chunked body that stops: the request fails once the body deadline passes.
    let mut stalled = TcpStream::connect(&ingest).await.expect("connect");
    let head = "POST /collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[{\"id\r\n";
    stalled.write_all(head.as_bytes()).await.expect("write");
    let said = read_until_closed(&mut stalled, limit)
        .await
        .expect("closed by the server");
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(said.contains("not complete within 3000 ms"), "{said}");
    assert!(
        said.contains("\"status\":\"error\""),
        "a JSON reason: {said}"
    );
}

#[tokio::test]
async fn open_connections_stay_under_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("CLICKSTREAM_HTTP__MAX_CONNECTIONS", "100"),
        // Long enough that no idle connection is closed (and replaced by a queued one)
        // before the count below, short enough that the queued request is reached in
        // four rounds of closes well within its 30 s.
        ("CLICKSTREAM_HTTP__HEADER_TIMEOUT_MS", "4000"),
    ];
    let (child, ingest) = up_with(dir.path(), &env).await;
    let port = port_of(&ingest);
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(
            TcpStream::connect(&ingest)
                .await
                .expect("the kernel queues the connection"),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = connections_held(child.pid(), port);
    assert!(
        (90..=100).contains(&held),
        "the server holds {held} connections to the ingest port (400 clients, a cap of 100)"
    );
    // The cap queues rather than refuses: as idle connections time out, a request is served.
    let answer = reqwest::Client::new()
        .get(format!("http://{ingest}/ping"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("served once idle connections are closed");
    assert_eq!(answer.status(), 200);
    drop(idle);
}

#[tokio::test]
async fn http2_and_kept_alive_http11_both_carry_events() {
    let t = crate::common::TestPipeline::start().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    for (client, version) in [
        (&h2, reqwest::Version::HTTP_2),
        (&t.http, reqwest::Version::HTTP_11),
    ] {
        for id in 0..3 {
            let answer = client
                .post(t.url("/collect"))
                .header("content-type", "application/json")
                .body(one_event(
                    7_000_000
                        + id
                        + if version == reqwest::Version::HTTP_2 {
                            10
                        } else {
                            0
                        },
                ))
                .send()
                .await
                .expect("sent");
            assert_eq!(answer.version(), version);
            assert_eq!(answer.status(), 200);
        }
    }
    t.wait_for_count("SELECT count(*) AS n FROM events", 6)
        .await;
}

/// How many established TCP connections to local `port` the process `pid` holds: its
/// socket descriptors matched by inode with `/proc/<pid>/net/tcp`, each counted once (the
/// table is read in several reads, and while connections open and close between them the
/// kernel can list a socket twice).
pub fn connections_held(pid: u32, port: u16) -> usize {
    let sockets: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_string())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).expect("tcp table");
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // sl, local address, remote address, state (01: established), ..., inode (10th)
            let fields: Vec<&str> = line.split_whitespace().collect();
            let ours = fields.get(1)?.ends_with(&local) && fields.get(3) == Some(&"01");
            ours.then(|| fields.get(9).map(|inode| inode.to_string()))?
        })
        .filter(|inode| sockets.contains(inode))
        .collect::<std::collections::HashSet<String>>()
        .len()
}
