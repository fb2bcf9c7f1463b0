//! `RegistryClient` against the real server, plus a scripted raw-socket peer for what the
//! real server never does (5xx, checking the auth header).

use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use clickstream_registry::{RegistryClient, RegistryError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::support::{RAW_EVENT, TestServer, record};

#[tokio::test]
async fn client_registers_looks_up_and_fetches_schemas() {
    let server = TestServer::start().await;
    let client = RegistryClient::new(&format!("{}/", server.base)).expect("client");
    let id = client
        .register("raw-value", RAW_EVENT)
        .await
        .expect("register");
    assert_eq!(
        client
            .register("raw-value", RAW_EVENT)
            .await
            .expect("again"),
        id
    );

    let found = client.lookup("raw-value", RAW_EVENT).await.expect("lookup");
    let found = found.expect("registered");
    assert_eq!(
        (found.subject.as_str(), found.id, found.version),
        ("raw-value", id, 1)
    );
    let other = record("Other", &[r#"{"name":"x","type":"int"}"#]);
    assert_eq!(
        client.lookup("raw-value", &other).await.expect("lookup"),
        None
    );
    assert_eq!(
        client.lookup("nope", RAW_EVENT).await.expect("lookup"),
        None
    );

    let schema = client.schema_by_id(id).await.expect("by id");
    let expected = Schema::parse_str(RAW_EVENT).expect("parse");
    assert_eq!(schema.canonical_form(), expected.canonical_form());
    let cached = client.schema_by_id(id).await.expect("cached");
    assert!(
        Arc::ptr_eq(&schema, &cached),
        "second fetch comes from the cache"
    );

    let latest = client.latest("raw-value").await.expect("latest");
    assert_eq!(latest, found);
    assert_eq!(
        client.subjects().await.expect("subjects"),
        vec!["raw-value".to_owned()]
    );
    server.stop().await;
}

#[tokio::test]
async fn client_reports_confluent_errors_without_retrying_them() {
    let server = TestServer::start().await;
    let client = server.client();
    let err = client.latest("nope").await.expect_err("unknown subject");
    assert!(
        matches!(
            err,
            RegistryError::Http {
                status: 404,
                error_code: 40401,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_transient());
    let err = client.schema_by_id(99).await.expect_err("unknown id");
    assert_eq!(err.remote_error_code(), Some(40403));

    let v1 = record("R", &[r#"{"name":"a","type":"long"}"#]);
    let v2 = record(
        "R",
        &[
            r#"{"name":"a","type":"long"}"#,
            r#"{"name":"b","type":"long"}"#,
        ],
    );
    client.register("s", &v1).await.expect("v1");
    let err = client.register("s", &v2).await.expect_err("incompatible");
    match &err {
        RegistryError::Http {
            status: 409,
            error_code: 409,
            message,
        } => assert!(message.contains("'b'"), "{message}"),
        other => panic!("unexpected {other}"),
    }
    let err = client.register("s", "{").await.expect_err("invalid");
    assert_eq!(err.remote_error_code(), Some(42201));
    server.stop().await;
}

#[tokio::test]
async fn wait_ready_succeeds_on_a_running_server_and_times_out_on_a_closed_port() {
    let server = TestServer::start().await;
    server
        .client()
        .wait_ready(Duration::from_secs(5))
        .await
        .expect("ready");
    server.stop().await;

    let (_reserved, port) = refusing_port();
    let client = RegistryClient::new(&format!("http://127.0.0.1:{port}")).expect("client");
    let started = std::time::Instant::now();
    let err = client
        .wait_ready(Duration::from_millis(400))
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, RegistryError::NotReady { .. }), "{err}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let err = client.subjects().await.expect_err("unreachable");
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err}");
    assert!(err.is_transient());
}

/// A registry that is not answering yet (it closes the first connection without a word,
/// as one still starting up does) is asked again until it answers.
#[tokio::test]
async fn wait_ready_waits_for_a_server_that_is_not_ready_yet() {
    let (port, seen) = scripted_peer(vec![String::new(), response("200 OK", "[]")]).await;
    let client = RegistryClient::new(&format!("http://127.0.0.1:{port}")).expect("client");
    client
        .wait_ready(Duration::from_secs(10))
        .await
        .expect("ready once the server answers");
    assert_eq!(seen.lock().await.len(), 2, "asked again after no answer");
}

#[tokio::test]
async fn client_retries_5xx_and_sends_basic_auth_from_the_url() {
    let script = vec![
        response(
            "503 Service Unavailable",
            r#"{"error_code":50003,"message":"try again"}"#,
        ),
        response("200 OK", r#"["a"]"#),
    ];
    let (port, seen) = scripted_peer(script).await;
    let client =
        RegistryClient::new(&format!("http://user:p%40ss@127.0.0.1:{port}/")).expect("client");
    assert_eq!(
        client.subjects().await.expect("second attempt succeeds"),
        vec!["a".to_owned()]
    );
    let requests = seen.lock().await;
    assert_eq!(requests.len(), 2, "one retry");
    for request in requests.iter() {
        let lower = request.to_ascii_lowercase();
        assert!(lower.starts_with("get /subjects "), "{request}");
        // base64("user:p@ss")
        assert!(
            lower.contains("authorization: basic dxnlcjpwqhnz"),
            "{request}"
        );
    }
    assert!(!format!("{client:?}").contains("p@ss"));
}

#[tokio::test]
async fn client_gives_up_after_a_few_5xx() {
    let failure = response("500 Internal Server Error", "");
    let (port, seen) = scripted_peer(vec![failure; 6]).await;
    let client = RegistryClient::new(&format!("http://127.0.0.1:{port}")).expect("client");
    let err = client.subjects().await.expect_err("keeps failing");
    assert!(
        matches!(err, RegistryError::Http { status: 500, .. }),
        "{err}"
    );
    assert!(err.is_transient());
    let attempts = seen.lock().await.len();
    assert!(
        (2..=5).contains(&attempts),
        "a few attempts, got {attempts}"
    );
}

fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A port bound but not listening: nothing answers there (connections are refused) and
/// no other test can take it while the socket lives.
fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let port = socket.local_addr().expect("addr").port();
    (socket, port)
}

type Seen = Arc<Mutex<Vec<String>>>;

/// A peer on a fresh port that answers each connection with the next scripted response.
async fn scripted_peer(script: Vec<String>) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = run_script(listener, script);
    (port, seen)
}

fn run_script(listener: TcpListener, script: Vec<String>) -> Seen {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        for response in script {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0_u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            log.lock()
                .await
                .push(String::from_utf8_lossy(&request).into_owned());
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    seen
}
