//! TLS on every listener, over real sockets: a CA made here and a server certificate for
//! 127.0.0.1 and localhost signed by it. reqwest trusting that CA posts events (HTTP/2 by
//! ALPN, and HTTP/1.1) and talks to the registry; the pipeline reaches its own registry over
//! HTTPS; plain HTTP to a TLS port is refused with a 400 and the server goes on; a
//! handshake that never comes is dropped at the header deadline; the session cookie is
//! `Secure`; settings that cannot work stop start-up, naming the key or the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clickstream::{Config, Pipeline};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use reqwest::{StatusCode, Version};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestPipeline, json_body, test_config};

/// A test CA and a server certificate it signed, for 127.0.0.1 and localhost.
pub struct TestPki {
    _dir: tempfile::TempDir,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA's certificate (PEM), what clients trust.
    pub ca_pem: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "clickstream test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA");
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "clickstream test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &ca).expect("server certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        TestPki {
            _dir: dir,
            cert: cert_path,
            key: key_path,
            ca_pem: ca.pem(),
        }
    }

    /// A client trusting the CA: HTTP/2 when ALPN agrees, else HTTP/1.1.
    pub fn client(&self) -> reqwest::Client {
        self.builder().build().expect("client")
    }

    /// A client trusting the CA that speaks HTTP/1.1 only.
    pub fn http1_client(&self) -> reqwest::Client {
        self.builder().http1_only().build().expect("client")
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA pem");
        reqwest::Client::builder().add_root_certificate(ca)
    }

    /// `config` serving with this certificate.
    pub fn configure(&self, config: &mut Config) {
        config.http.tls_cert = Some(self.cert.clone());
        config.http.tls_key = Some(self.key.clone());
    }
}

async fn tls_pipeline(pki: &TestPki, adjust: impl FnOnce(&mut Config)) -> TestPipeline {
    TestPipeline::start_with(|config| {
        pki.configure(config);
        adjust(config);
    })
    .await
}

fn https(addr: SocketAddr, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", addr.port())
}

fn ingest(t: &TestPipeline) -> SocketAddr {
    t.pipeline.ingest_addr().expect("ingest runs")
}

fn one_event(id: u64) -> String {
    json!([{"id": id, "type": "page_view", "event": {
        "user_agent": "tls-test", "ip": "10.1.2.3", "timestamp": "2024-05-01T12:00:00Z"}}])
    .to_string()
}

/// Reads until the server closes (`None` if it has not within `limit`).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut said = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut said)).await {
        Ok(_) => Some(String::from_utf8_lossy(&said).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn events_and_schemas_travel_over_https_with_http2_by_alpn_and_http11() {
    let pki = TestPki::new();
    let t = tls_pipeline(&pki, |_| {}).await;
    assert!(t.pipeline.tls());
    assert!(
        t.pipeline.registry_url().starts_with("https://"),
        "the pipeline reaches its own registry over HTTPS: {}",
        t.pipeline.registry_url()
    );
    for (client, version, id) in [
        (pki.client(), Version::HTTP_2, 8_100_001),
        (pki.http1_client(), Version::HTTP_11, 8_100_002),
    ] {
        let answer = client
            .post(https(ingest(&t), "/collect"))
            .header("content-type", "application/json")
            .body(one_event(id))
            .send()
            .await
            .expect("sent over HTTPS");
        assert_eq!(answer.version(), version);
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let registry = t.pipeline.registry_addr().expect("our registry runs");
    let subjects = json_body(
        pki.client()
            .get(https(registry, "/subjects"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    let raw = json!("acme.clickstream.raw.events-value");
    assert!(
        subjects.as_array().expect("a list").contains(&raw),
        "{subjects}"
    );
    let registered = pki
        .client()
        .post(https(registry, "/subjects/tls-check-value/versions"))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(json!({"schema": "\"string\""}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(registered.status(), StatusCode::OK);
    assert!(json_body(registered).await["id"].as_u64().is_some());
    t.wait_for_count("SELECT count(*) AS n FROM events", 2)
        .await;
}

#[tokio::test]
async fn plain_http_to_a_tls_port_is_refused_and_the_server_goes_on() {
    let pki = TestPki::new();
    let t = tls_pipeline(&pki, |_| {}).await;
    let mut plain = TcpStream::connect(ingest(&t)).await.expect("connect");
    plain
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let said = read_until_closed(&mut plain, Duration::from_secs(10))
        .await
        .expect("closed by the server");
    assert!(said.starts_with("HTTP/1.1 400"), "{said}");
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/collect", ingest(&t).port()))
        .header("content-type", "application/json")
        .body(one_event(8_200_001))
        .send()
        .await
        .expect("a plain client reads the answer");
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let reason: Value = json_body(answer).await;
    assert!(
        reason["message"]
            .as_str()
            .unwrap_or_default()
            .contains("https://"),
        "{reason}"
    );
    let ping = pki
        .client()
        .get(https(ingest(&t), "/ping"))
        .send()
        .await
        .expect("still serving");
    assert_eq!(ping.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_handshake_that_never_comes_is_dropped_at_the_header_deadline() {
    let pki = TestPki::new();
    let t = tls_pipeline(&pki, |config| config.http.header_timeout_ms = 1000).await;
    // Nothing at all, then the first bytes of a TLS record and nothing more.
    for first in [&b""[..], &[0x16, 0x03, 0x01][..]] {
        let mut stalled = TcpStream::connect(ingest(&t)).await.expect("connect");
        stalled.write_all(first).await.expect("write");
        let opened = Instant::now();
        let said = read_until_closed(&mut stalled, Duration::from_secs(10))
            .await
            .expect("closed by the server");
        assert!(said.is_empty(), "{said}");
        let waited = opened.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "closed after {waited:?}, before the header deadline"
        );
    }
    let ping = pki
        .client()
        .get(https(ingest(&t), "/ping"))
        .send()
        .await
        .expect("still serving");
    assert_eq!(ping.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_session_cookie_is_secure_over_https() {
    const TOKEN: &str = "tls-admin-token-0123456789abcdef";
    let pki = TestPki::new();
    let t = tls_pipeline(&pki, |config| {
        config.auth.admin_token = Some(clickstream_secret::Secret::new(TOKEN));
    })
    .await;
    let ui = t.pipeline.ui_addr().expect("the UI runs");
    let login = pki
        .client()
        .post(https(ui, "/api/login"))
        .json(&json!({"token": TOKEN}))
        .send()
        .await
        .expect("sent");
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

/// The error `Pipeline::start` stops with on `config`.
async fn start_up_error(config: Config) -> String {
    match Pipeline::start(config).await {
        Ok(_) => panic!("the pipeline started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn start_up_refuses_half_a_tls_setting_and_unusable_files_naming_them() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().expect("tempdir");

    let mut config = test_config(dir.path());
    config.http.tls_cert = Some(pki.cert.clone());
    let refused = start_up_error(config).await;
    assert!(
        refused.contains("http.tls_cert is set but http.tls_key is not"),
        "{refused}"
    );

    let mut config = test_config(dir.path());
    pki.configure(&mut config);
    config.http.tls_key = Some(dir.path().join("missing-key.pem"));
    let refused = start_up_error(config).await;
    assert!(
        refused.contains("private key file") && refused.contains("missing-key.pem"),
        "{refused}"
    );

    let garbage = dir.path().join("garbage-cert.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").expect("write");
    let mut config = test_config(dir.path());
    pki.configure(&mut config);
    config.http.tls_cert = Some(garbage);
    let refused = start_up_error(config).await;
    assert!(
        refused.contains("certificate file") && refused.contains("garbage-cert.pem"),
        "{refused}"
    );
}
