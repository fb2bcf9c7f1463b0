//! The deadlines that watch a connection's whole life, against a real `clickstream up`
//! child: an HTTP/2 connection with no requests is closed at the idle deadline, and a client
//! that never reads its responses (HTTP/1.1 pipelining into a full socket, or HTTP/2 with
//! its window shut) at the body deadline, each freeing its slot (counted in `/proc`), while an active client, and a request in flight longer than the idle
//! deadline, are not cut off. Bodies that stall on the registry and the login are 408.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Body as _, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use super::{
    address, connections_held, one_event, port_of, read_until_closed, up_announced, up_with,
};
use crate::eventually::{check, eventually};
use crate::faults::child::Child;

/// HTTP/2's connection preface and an empty SETTINGS frame: a client's whole handshake.
const H2_HANDSHAKE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// HTTP/2's GOAWAY frame type.
const GOAWAY: u8 = 0x7;

/// Waits until `child` holds `expected` connections to its port `port`.
async fn wait_until_held(child: &Child, port: u16, expected: usize, within: Duration) {
    let what = format!("the server holds {expected} connections to port {port}");
    eventually(&what, within, || async move {
        let held = connections_held(child.pid(), port);
        check(held == expected, || format!("{held} held"))
    })
    .await;
}

/// The types of the HTTP/2 frames in `bytes`, in order.
fn frame_types(bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        types.push(rest[3]);
        rest = rest.get(9 + length..).unwrap_or_default();
    }
    types
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_at_the_idle_deadline_and_its_slot_freed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("CLICKSTREAM_HTTP__IDLE_TIMEOUT_MS", "2000")];
    let (child, ingest) = up_with(dir.path(), &env).await;
    let port = port_of(&ingest);
    let mut idle = TcpStream::connect(&ingest).await.expect("connect");
    idle.write_all(H2_HANDSHAKE).await.expect("handshake");
    let opened = Instant::now();
    wait_until_held(&child, port, 1, Duration::from_secs(10)).await;
    let said = {
        let mut bytes = Vec::new();
        let read = tokio::io::AsyncReadExt::read_to_end(&mut idle, &mut bytes);
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("closed by the server")
            .expect("read");
        bytes
    };
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "closed after {waited:?}"
    );
    assert!(
        frame_types(&said).contains(&GOAWAY),
        "the server says goodbye first: frames {:?}",
        frame_types(&said)
    );
    wait_until_held(&child, port, 0, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_client_that_never_reads_its_responses_is_cut_off_and_its_slot_freed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("CLICKSTREAM_HTTP__BODY_TIMEOUT_MS", "2000")];
    let (child, ingest) = up_with(dir.path(), &env).await;
    let port = port_of(&ingest);
    let socket = TcpSocket::new_v4().expect("socket");
    // A small window, so the server's writes block soon.
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let stream = socket
        .connect(ingest.parse().expect("address"))
        .await
        .expect("connect");
    let (unread, mut write) = stream.into_split();
    let pipelined = tokio::spawn(async move {
        let request = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
        for _ in 0..1_000_000 {
            if write.write_all(request).await.is_err() {
                return;
            }
        }
    });
    wait_until_held(&child, port, 1, Duration::from_secs(10)).await;
    wait_until_held(&child, port, 0, Duration::from_secs(60)).await;
    pipelined.abort();
    drop(unread);
    let ping = reqwest::Client::new()
        .get(format!("http://{ingest}/ping"))
        .send()
        .await
        .expect("still serving");
    assert_eq!(ping.status(), 200);
}

#[tokio::test]
async fn an_http2_client_that_keeps_its_window_shut_is_cut_off_and_its_slot_freed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("CLICKSTREAM_HTTP__BODY_TIMEOUT_MS", "2000")];
    let (child, ingest) = up_with(dir.path(), &env).await;
    let port = port_of(&ingest);
    let stream = TcpStream::connect(&ingest).await.expect("connect");
    // A window of 0: the server may send headers, never a byte of a body.
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    // `/ping` always answers with a body (`/metrics` may be empty just after start, and an
    // empty answer ends with its headers: nothing would wait on the client).
    let ping = hyper::Request::get(format!("http://{ingest}/ping"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let answer = sender.send_request(ping).await.expect("the headers come");
    assert_eq!(answer.status(), 200);
    assert!(
        !answer.body().is_end_stream(),
        "the answer has a body for the shut window to hold back"
    );
    wait_until_held(&child, port, 1, Duration::from_secs(10)).await;
    wait_until_held(&child, port, 0, Duration::from_secs(30)).await;
    drop(answer);
    connection.abort();
}

/// A request body of the HTTP/2 client.
type ClientBody = UnsyncBoxBody<Bytes, Infallible>;

/// A request body sent in `parts`, each after `pause`.
fn trickled(parts: Vec<String>, pause: Duration) -> ClientBody {
    use futures::StreamExt;
    StreamBody::new(futures::stream::iter(parts).then(move |part| async move {
        tokio::time::sleep(pause).await;
        Ok(Frame::data(Bytes::from(part)))
    }))
    .boxed_unsync()
}

#[tokio::test]
async fn an_active_http2_client_and_a_long_request_are_not_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("CLICKSTREAM_HTTP__IDLE_TIMEOUT_MS", "1000"),
        ("CLICKSTREAM_HTTP__BODY_TIMEOUT_MS", "10000"),
    ];
    let (_child, ingest) = up_with(dir.path(), &env).await;
    let stream = TcpStream::connect(&ingest).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    // Requests 300 ms apart for three idle deadlines, all on the one connection.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let ping = hyper::Request::get(format!("http://{ingest}/ping"))
            .body(Empty::<Bytes>::new().boxed_unsync())
            .expect("request");
        let answer = sender
            .send_request(ping)
            .await
            .expect("the connection is open");
        assert_eq!(answer.status(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // One request in flight for 2.5 idle deadlines: its body comes in five parts.
    let event = one_event(8_300_001);
    let cut = event.len() / 5 + 1;
    let parts: Vec<String> = event
        .as_bytes()
        .chunks(cut)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let collect = hyper::Request::post(format!("http://{ingest}/collect"))
        .header("content-type", "application/json")
        .body(trickled(parts, Duration::from_millis(500)))
        .expect("request");
    let answer = sender
        .send_request(collect)
        .await
        .expect("the connection is open");
    assert_eq!(answer.status(), 200);
    assert!(!connection.is_finished(), "the connection is still open");
}

#[tokio::test]
async fn stalled_bodies_to_the_registry_and_the_login_are_408_with_a_json_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("CLICKSTREAM_HTTP__BODY_TIMEOUT_MS", "2000")];
    let (_child, line) = up_announced(dir.path(), &env).await;
    let registry = address(&line, "registry");
    let ui = address(&line, "ui");
    for (addr, path) in [(registry, "/subjects/x-value/versions"), (ui, "/api/login")] {
        let mut stalled = TcpStream::connect(&addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"sch\r\n"
        );
        stalled.write_all(head.as_bytes()).await.expect("write");
        let said = read_until_closed(&mut stalled, Duration::from_secs(10))
            .await
            .expect("closed by the server");
        assert!(said.starts_with("HTTP/1.1 408"), "{path}: {said}");
        assert!(
            said.contains("not complete within 2000 ms"),
            "{path}: {said}"
        );
        let body = said.split("\r\n\r\n").nth(1).unwrap_or_default();
        let reason: serde_json::Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {said}"));
        assert!(reason.get("message").is_some(), "{path}: {reason}");
    }
}
