//! A fault-injecting HTTP proxy, put between the pipeline and a real server (the S3 API
//! server of the lake, the Schema Registry). Everything passes through unchanged until a
//! test asks for a fault:
//!
//! - **latency**: every request waits this long before it is forwarded;
//! - **errors**: the next `n` requests (or the next `n` that match a predicate) are
//!   answered with a status (500, 503…) without reaching the server;
//! - **lost answers**: the next `n` requests that match a predicate reach the server, which
//!   carries them out, and then the connection is closed without an answer, as when a
//!   response is lost on the network: the client cannot tell whether the request landed;
//! - **down**: every connection is closed at once (the server is unreachable).
//!
//! The proxy speaks plain HTTP/1.1 through hyper and forwards with reqwest, so the client
//! under test talks its real protocol (the S3 API through object_store, the registry's
//! REST API) and the server is the real one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Which requests a lost-answer fault applies to: method and path.
pub type Matcher = fn(&hyper::Method, &str) -> bool;

/// The faults in force.
#[derive(Debug, Clone)]
struct Faults {
    latency: Duration,
    errors: Option<(StatusCode, u64)>,
    /// Errors for requests that match, while any are left.
    matching_errors: Option<(StatusCode, u64, Matcher)>,
    lost_answers: u64,
    lost_matching: Matcher,
    down: bool,
}

/// What the proxy did, for assertions that a fault was really met.
#[derive(Debug, Default)]
pub struct Seen {
    /// Requests forwarded and answered.
    pub forwarded: AtomicU64,
    /// Requests answered with an injected error status.
    pub failed: AtomicU64,
    /// Requests forwarded whose answer was then dropped.
    pub lost: AtomicU64,
    /// Connections refused while down.
    pub refused: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct FaultyProxy {
    /// `http://127.0.0.1:<port>`: point the client here.
    pub url: String,
    faults: Arc<Mutex<Faults>>,
    down: tokio::sync::watch::Sender<bool>,
    /// Counters of what happened.
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// A proxy on a loopback port the OS picks, forwarding to `upstream`
    /// (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr: SocketAddr = listener.local_addr().expect("proxy address");
        let faults = Arc::new(Mutex::new(Faults {
            latency: Duration::ZERO,
            matching_errors: None,
            errors: None,
            lost_answers: 0,
            lost_matching: |_, _| true,
            down: false,
        }));
        let seen = Arc::new(Seen::default());
        let down = tokio::sync::watch::Sender::new(false);
        let forwarder = Forwarder {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            faults: faults.clone(),
            seen: seen.clone(),
            down: down.clone(),
        };
        let task = tokio::spawn(accept(listener, forwarder));
        FaultyProxy {
            url: format!("http://{addr}"),
            faults,
            down,
            seen,
            task,
        }
    }

    /// Every request waits `latency` before being forwarded.
    pub fn set_latency(&self, latency: Duration) {
        self.faults().latency = latency;
    }

    /// The next `n` requests are answered `status` without reaching the server.
    pub fn fail_next(&self, n: u64, status: u16) {
        let status = StatusCode::from_u16(status).expect("a status code");
        self.faults().errors = Some((status, n));
    }

    /// Answers the next `n` requests that match `which` with `status`; others pass.
    pub fn fail_matching(&self, n: u64, status: u16, which: Matcher) {
        let status = StatusCode::from_u16(status).expect("a status code");
        self.faults().matching_errors = Some((status, n, which));
    }

    /// The next `n` requests matching `which` reach the server, then lose their answer.
    pub fn lose_answers(&self, n: u64, which: Matcher) {
        let mut faults = self.faults();
        faults.lost_answers = n;
        faults.lost_matching = which;
    }

    /// While down, every connection is closed without reading a request, and those open
    /// are dropped.
    pub fn set_down(&self, down: bool) {
        self.faults().down = down;
        self.down.send_replace(down);
    }

    /// Requests still to lose their answer.
    pub fn answers_still_to_lose(&self) -> u64 {
        self.faults().lost_answers
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().expect("faults lock")
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Forwarder {
    upstream: String,
    http: reqwest::Client,
    faults: Arc<Mutex<Faults>>,
    seen: Arc<Seen>,
    /// True while down: live connections are dropped too (a client's pooled keep-alive
    /// connection must not outlive the outage).
    down: tokio::sync::watch::Sender<bool>,
}

async fn accept(listener: TcpListener, forwarder: Forwarder) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if forwarder.faults.lock().expect("faults lock").down {
            forwarder.seen.refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        }
        let forwarder = forwarder.clone();
        let mut down = forwarder.down.subscribe();
        tokio::spawn(async move {
            let service = service_fn(move |request| forwarder.clone().handle(request));
            // An error here is the fault itself (a dropped answer) or a client going away.
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = down.wait_for(|d| *d) => {}
            }
        });
    }
}

/// What to do with one request, decided when it arrives.
enum Plan {
    Forward { lose_answer: bool },
    Fail(StatusCode),
}

impl Forwarder {
    fn plan(&self, method: &hyper::Method, path: &str) -> (Duration, Plan) {
        let mut faults = self.faults.lock().expect("faults lock");
        let latency = faults.latency;
        if let Some((status, left)) = faults.errors {
            faults.errors = (left > 1).then_some((status, left - 1));
            return (latency, Plan::Fail(status));
        }
        if let Some((status, left, which)) = faults.matching_errors
            && which(method, path)
        {
            faults.matching_errors = (left > 1).then_some((status, left - 1, which));
            return (latency, Plan::Fail(status));
        }
        let lose_answer = faults.lost_answers > 0 && (faults.lost_matching)(method, path);
        if lose_answer {
            faults.lost_answers -= 1;
        }
        (latency, Plan::Forward { lose_answer })
    }

    async fn handle(
        self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        let (latency, plan) = self.plan(request.method(), &path);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let lose_answer = match plan {
            Plan::Fail(status) => {
                self.seen.failed.fetch_add(1, Ordering::Relaxed);
                return Ok(status_response(status));
            }
            Plan::Forward { lose_answer } => lose_answer,
        };
        let response = self.forward(request, &path).await;
        if lose_answer {
            self.seen.lost.fetch_add(1, Ordering::Relaxed);
            // hyper closes the connection without writing a response.
            return Err(std::io::Error::other("answer dropped by the fault proxy"));
        }
        self.seen.forwarded.fetch_add(1, Ordering::Relaxed);
        Ok(response)
    }

    async fn forward(&self, request: Request<Incoming>, path: &str) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return status_response(StatusCode::BAD_REQUEST);
        };
        let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
            .expect("a method hyper parsed");
        // Content-Length is set from the body: reqwest leaves it out for an empty one,
        // which S3 refuses for some requests (411).
        let mut outgoing = self
            .http
            .request(method, format!("{}{path}", self.upstream))
            .header(hyper::header::CONTENT_LENGTH.as_str(), body.len())
            .body(body);
        for (name, value) in &parts.headers {
            let ours = name == hyper::header::HOST || name == hyper::header::CONTENT_LENGTH;
            if !is_hop_by_hop(name.as_str()) && !ours {
                outgoing = outgoing.header(name.as_str(), value.as_bytes());
            }
        }
        let Ok(answer) = outgoing.send().await else {
            return status_response(StatusCode::BAD_GATEWAY);
        };
        let mut response = Response::builder().status(answer.status().as_u16());
        for (name, value) in answer.headers() {
            if !is_hop_by_hop(name.as_str()) {
                response = response.header(name.as_str(), value.as_bytes());
            }
        }
        let body = answer.bytes().await.unwrap_or_default();
        response
            .body(Full::new(body))
            .unwrap_or_else(|_| status_response(StatusCode::BAD_GATEWAY))
    }
}

fn status_response(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"injected fault")));
    *response.status_mut() = status;
    response
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
    )
}

/// A Delta commit: the PUT of a `_delta_log/<version>.json` file.
pub fn delta_commit(method: &hyper::Method, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    method == hyper::Method::PUT && path.contains("/_delta_log/") && path.ends_with(".json")
}

/// A write of a table's data (a Parquet file, whole or in parts), not of its log.
pub fn data_write(method: &hyper::Method, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    (method == hyper::Method::PUT || method == hyper::Method::POST)
        && !path.contains("/_delta_log/")
        && path.ends_with(".parquet")
}
