//! Serving a router on a listener with the limits of [`HttpConfig`]: HTTP/1.1 (kept alive)
//! and HTTP/2 on one port, a deadline for headers and one for bodies, and a cap on open
//! connections, then a graceful shutdown that lets requests in flight finish.
//!
//! `axum::serve` has none of these bounds: a client that sends half a header, or opens a
//! connection and waits, holds a descriptor forever, and ~1,000 of them exhaust the
//! default descriptor limit so that `accept` and the lake's own file reads fail.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::HttpConfig;
use crate::deadline::DeadlineBody;

/// How long `accept` pauses after it fails (out of descriptors, most often), so that a
/// failing accept does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, closes
/// idle connections and waits for the requests in flight.
///
/// Every request carries [`ConnectInfo<SocketAddr>`] (the peer's address) and a body that
/// fails once [`HttpConfig::body_timeout_ms`] has passed since its headers.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout())
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(config.header_timeout()))
        // Each stream may read a body up to the route's limit: few streams per connection
        // keep what one client can make us hold near what HTTP/1.1 allows.
        .max_concurrent_streams(8);
    let (h1, h2) = (builder.clone().http1_only(), builder.http2_only());
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let body_timeout = config.body_timeout();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let Some((stream, peer, permit)) = accepted else {
            continue;
        };
        let service = per_connection(router.clone(), peer, body_timeout);
        let (h1, h2, watcher) = (h1.clone(), h2.clone(), graceful.watcher());
        let header_timeout = config.header_timeout();
        tokio::spawn(async move {
            // Until the protocol is known no deadline of hyper's runs: a client that sends
            // nothing, or half of HTTP/2's preface, is closed here.
            let Some(protocol) = sniff(&stream, header_timeout).await else {
                return drop(permit);
            };
            let builder = if protocol == Protocol::Http2 { h2 } else { h1 };
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The protocol a connection speaks, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    /// It starts with HTTP/2's connection preface (prior knowledge, as gRPC and h2c
    /// clients do).
    Http2,
}

/// HTTP/2's connection preface.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long to wait between looks at a connection whose first bytes could still be the
/// HTTP/2 preface (a peek cannot wait for more bytes than it already saw).
const SNIFF_PAUSE: Duration = Duration::from_millis(5);

/// Peeks at the first bytes (without consuming them) until they tell the protocol;
/// `None` when the client closes, or sends too little within `deadline`.
async fn sniff(stream: &TcpStream, deadline: Duration) -> Option<Protocol> {
    let look = async {
        let mut seen = [0u8; 24];
        loop {
            stream.readable().await.ok()?;
            let n = stream.peek(&mut seen).await.ok()?;
            if n == 0 {
                return None;
            }
            if seen[..n] != H2_PREFACE[..n] {
                return Some(Protocol::Http1);
            }
            if n == H2_PREFACE.len() {
                return Some(Protocol::Http2);
            }
            tokio::time::sleep(SNIFF_PAUSE).await;
        }
    };
    tokio::time::timeout(deadline, look).await.ok().flatten()
}

/// The next connection once a permit is free; `None` (after a pause) when `accept` failed.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    // invariant: the semaphore is never closed.
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => {
            let _ = stream.set_nodelay(true);
            Some((stream, peer, permit))
        }
        Err(e) => {
            tracing::warn!(error = %e, "accepting a connection failed");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            None
        }
    }
}

/// The router as a hyper service for one connection: each request gets the peer's address
/// and a body with a deadline.
fn per_connection(
    router: Router,
    peer: SocketAddr,
    body_timeout: Duration,
) -> TowerToHyperService<
    impl tower::Service<
        http::Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone,
> {
    let service = router.map_request(move |request: http::Request<Incoming>| {
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        let body = axum::body::Body::new(DeadlineBody::new(body, body_timeout));
        http::Request::from_parts(parts, body)
    });
    TowerToHyperService::new(service)
}
