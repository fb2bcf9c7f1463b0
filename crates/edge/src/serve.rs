//! Serving a router on a listener with the limits of [`HttpConfig`]: HTTP/1.1 (kept alive)
//! and HTTP/2 on one port, optionally over TLS; a deadline for headers (and the TLS
//! handshake before them), one for bodies, one for idle connections and one for clients
//! that stop reading; a cap on open connections; then a graceful shutdown that lets
//! requests in flight finish.
//!
//! `axum::serve` has none of these bounds: a client that sends half a header, or opens a
//! connection and waits, holds a descriptor forever, and ~1,000 of them exhaust the
//! default descriptor limit so that `accept` and the lake's own file reads fail.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::activity::Deadlines;
use crate::config::HttpConfigError;
use crate::connection::{Listener, handle};
use crate::{HttpConfig, tls};

/// How long `accept` pauses after it fails (out of descriptors, most often), so that a
/// failing accept does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How every listener of a process serves: `[http]` checked, and its TLS certificate and
/// key loaded, once at start-up. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    config: HttpConfig,
    tls: Option<TlsAcceptor>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Server {
    /// Checks `config` and loads its certificate and key: an error names the setting or
    /// the file at fault.
    pub fn new(config: &HttpConfig) -> Result<Server, HttpConfigError> {
        config.validate()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
            _ => None,
        };
        Ok(Server {
            config: config.clone(),
            tls,
        })
    }

    /// Whether listeners speak HTTPS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls() { "https" } else { "http" }
    }

    /// Serves `router` on `listener` until `shutdown` completes, then stops accepting,
    /// closes idle connections and waits for the requests in flight.
    ///
    /// Every request carries [`axum::extract::ConnectInfo<SocketAddr>`] (the peer's
    /// address), its [`crate::Transport`], and a body that fails once
    /// [`HttpConfig::body_timeout_ms`] has passed since its headers.
    pub async fn serve(
        &self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shared = Arc::new(self.listener(router));
        // The permits count open connections; at shutdown, getting them all back means
        // every connection has ended.
        let max = u32::try_from(self.config.max_connections.max(1)).unwrap_or(u32::MAX);
        let permits = Arc::new(Semaphore::new(max as usize));
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
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                handle(stream, peer, &shared).await;
                drop(permit);
            });
        }
        drop(listener);
        shared.shutdown.cancel();
        // invariant: the semaphore is never closed.
        let _ = permits.acquire_many(max).await;
        Ok(())
    }

    /// What the connections of one listener share.
    fn listener(&self, router: Router) -> Listener {
        let config = &self.config;
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
            // Each stream may read a body up to the route's limit: few streams per
            // connection keep what one client can make us hold near what HTTP/1.1 allows.
            .max_concurrent_streams(8);
        Listener {
            router,
            h1: builder.clone().http1_only(),
            h2: builder.http2_only(),
            tls: self.tls.clone(),
            header_timeout: config.header_timeout(),
            body_timeout: config.body_timeout(),
            deadlines: Deadlines {
                idle: config.idle_timeout(),
                stall: config.body_timeout(),
            },
            shutdown: CancellationToken::new(),
        }
    }
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
