//! One connection, from its first byte to its close: the protocol told (by sniffing, or by
//! ALPN after a TLS handshake) within the header deadline, then served by hyper while its
//! own deadlines run: idle (no request in flight) and write stall (the client takes none
//! of our output). On expiry the connection is shut down gracefully, and dropped if that
//! has not finished after [`CLOSE_GRACE`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::activity::{Activity, Check, Deadlines, TrackedBody, Watched};
use crate::deadline::DeadlineBody;
use crate::metrics::{CutReason, Handles};

/// How long a connection closed by a deadline, or idle at shutdown, has to finish its
/// graceful shutdown (an HTTP/2 GOAWAY and its ping) before it is dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How a request reached us; every request carries it as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP.
    Plain,
    /// HTTPS.
    Tls,
}

/// What every connection of one listener shares.
pub(crate) struct Listener {
    pub(crate) router: Router,
    pub(crate) h1: auto::Builder<TokioExecutor>,
    pub(crate) h2: auto::Builder<TokioExecutor>,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) header_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) deadlines: Deadlines,
    /// Cancelled when the listener shuts down.
    pub(crate) shutdown: CancellationToken,
}

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    /// HTTP/2: the connection preface (prior knowledge, as gRPC and h2c clients do), or
    /// `h2` chosen by ALPN.
    Http2,
    /// A TLS handshake (its first record).
    Tls,
}

/// A connection ready for hyper.
enum Opened {
    Plain(Watched<TcpStream>, Protocol),
    Tls(Box<TlsStream<Watched<TcpStream>>>, Protocol),
}

/// Serves one accepted connection until it closes.
pub(crate) async fn handle(stream: TcpStream, peer: SocketAddr, listener: &Listener) {
    let activity = Activity::new();
    let opening = tokio::time::timeout(
        listener.header_timeout,
        open(stream, listener, Arc::clone(&activity)),
    );
    let opened = tokio::select! {
        opened = opening => opened.unwrap_or_else(|_| {
            Handles::get().connection_cut(CutReason::Opening).increment(1);
            None
        }),
        () = listener.shutdown.cancelled() => None,
    };
    match opened {
        Some(Opened::Plain(io, protocol)) => {
            drive(io, protocol, Transport::Plain, peer, listener, activity).await;
        }
        Some(Opened::Tls(io, protocol)) => {
            drive(io, protocol, Transport::Tls, peer, listener, activity).await;
        }
        None => tracing::debug!(%peer, "connection closed before its first request"),
    }
}

/// Tells the protocol and, with TLS, completes the handshake; `None` when the client
/// closes or fails the handshake, or sends plain HTTP to a TLS listener (answered 400).
async fn open(stream: TcpStream, listener: &Listener, activity: Arc<Activity>) -> Option<Opened> {
    let protocol = sniff(&stream).await?;
    let Some(acceptor) = &listener.tls else {
        // A TLS client on a plain port gets hyper's 400 for a request it cannot parse.
        let protocol = if protocol == Protocol::Tls {
            Protocol::Http1
        } else {
            protocol
        };
        return Some(Opened::Plain(Watched::new(stream, activity), protocol));
    };
    if protocol != Protocol::Tls {
        refuse_plain_http(stream).await;
        return None;
    }
    let tls = acceptor
        .accept(Watched::new(stream, activity))
        .await
        .inspect_err(|e| tracing::debug!(error = %e, "TLS handshake failed"))
        .ok()?;
    let protocol = match tls.get_ref().1.alpn_protocol() {
        Some(b"h2") => Protocol::Http2,
        _ => Protocol::Http1,
    };
    Some(Opened::Tls(Box::new(tls), protocol))
}

/// HTTP/2's connection preface.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first byte of a TLS handshake record; no HTTP method starts with it.
const TLS_HANDSHAKE: u8 = 0x16;

/// How long to wait between looks at a connection whose first bytes could still be the
/// HTTP/2 preface (a peek cannot wait for more bytes than it already saw).
const SNIFF_PAUSE: Duration = Duration::from_millis(5);

/// Peeks at the first bytes (without consuming them) until they tell the protocol;
/// `None` when the client closes first. The caller bounds the wait.
async fn sniff(stream: &TcpStream) -> Option<Protocol> {
    let mut seen = [0u8; 24];
    loop {
        stream.readable().await.ok()?;
        let n = stream.peek(&mut seen).await.ok()?;
        if n == 0 {
            return None;
        }
        if seen[0] == TLS_HANDSHAKE {
            return Some(Protocol::Tls);
        }
        if seen[..n] != H2_PREFACE[..n] {
            return Some(Protocol::Http1);
        }
        if n == H2_PREFACE.len() {
            return Some(Protocol::Http2);
        }
        tokio::time::sleep(SNIFF_PAUSE).await;
    }
}

/// The reason plain HTTP on a TLS listener is given.
const PLAIN_HTTP_REASON: &str =
    r#"{"status":"error","message":"this port speaks HTTPS only: use https://"}"#;

/// Most bytes of a plain request read and discarded so its client sees the 400 rather
/// than a reset.
const PLAIN_HTTP_DRAIN_BYTES: usize = 64 * 1024;

/// Answers 400 to plain HTTP on a TLS listener, then closes, reading what the client
/// sent meanwhile (within [`PLAIN_HTTP_DRAIN_BYTES`] and [`CLOSE_GRACE`]).
async fn refuse_plain_http(mut stream: TcpStream) {
    Handles::get()
        .connection_cut(CutReason::PlainHttp)
        .increment(1);
    let mut sink = vec![0u8; 8 * 1024];
    let _ = stream.try_read(&mut sink);
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{PLAIN_HTTP_REASON}",
        PLAIN_HTTP_REASON.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let drain = async {
        let mut total = 0;
        while total < PLAIN_HTTP_DRAIN_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
}

/// Serves `io` with hyper until it closes, a deadline closes it, or the listener shuts
/// down (requests in flight finish first).
async fn drive<IO>(
    io: IO,
    protocol: Protocol,
    transport: Transport,
    peer: SocketAddr,
    listener: &Listener,
    activity: Arc<Activity>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = per_connection(
        listener.router.clone(),
        listener.body_timeout,
        (peer, transport),
        Arc::clone(&activity),
    );
    let builder = match protocol {
        Protocol::Http2 => &listener.h2,
        Protocol::Http1 | Protocol::Tls => &listener.h1,
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut shutting_down = false;
    let mut drop_at: Option<Instant> = None;
    loop {
        let mut next = None;
        if drop_at.is_none() {
            match activity.check(&listener.deadlines, Instant::now()) {
                Check::Expired(expiry) => {
                    let reason = expiry.cut_reason();
                    tracing::debug!(%peer, reason = reason.as_str(), "closing a connection");
                    Handles::get().connection_cut(reason).increment(1);
                    drop_at = Some(Instant::now() + CLOSE_GRACE);
                }
                Check::Next(at) => next = at,
            }
            if shutting_down && activity.no_request_in_flight() {
                drop_at = Some(Instant::now() + CLOSE_GRACE);
            }
            if drop_at.is_some() && !shutting_down {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = listener.shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
            () = activity.changed(), if drop_at.is_none() => {}
            () = sleep_until(next) => {}
            () = sleep_until(drop_at) => {
                tracing::debug!(%peer, "dropping a connection that did not close in time");
                return;
            }
        }
    }
}

/// Sleeps until `at`; forever when `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The router as a hyper service for one connection: each request gets the peer's
/// address, its [`Transport`] and a body with a deadline, and is counted in flight until
/// its response body is done.
fn per_connection(
    router: Router,
    body_timeout: Duration,
    (peer, transport): (SocketAddr, Transport),
    activity: Arc<Activity>,
) -> TowerToHyperService<
    impl tower::Service<
        http::Request<Incoming>,
        Response = http::Response<TrackedBody>,
        Error = Infallible,
        Future = impl Send,
    > + Clone,
> {
    let service = tower::service_fn(move |request: http::Request<Incoming>| {
        let in_flight = activity.request_started();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        parts.extensions.insert(transport);
        let body = axum::body::Body::new(DeadlineBody::new(body, body_timeout));
        let answer = router
            .clone()
            .oneshot(http::Request::from_parts(parts, body));
        async move {
            let response = answer.await?;
            Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, in_flight)))
        }
    });
    TowerToHyperService::new(service)
}
