//! Honest backpressure at the ingest edge.
//!
//! - **Rate limits** (429): a token bucket per write key and one per client IP, counted in
//!   events. A request takes all its events' tokens at once, after its batch is parsed, or
//!   none: taking one early and the rest later would let a stream of single tokens starve
//!   every batch. A refusal says when to come back (`Retry-After`, the bucket's own wait
//!   rounded up to a second). What a throttled client's body costs is bounded by the two
//!   bounds below.
//! - **Shedding** (503): a bound on requests being handled at once and on body bytes held
//!   until the log has them durably. Past either, the request is refused at once with
//!   `Retry-After` rather than queued without limit.
//!
//! The client's IP is the peer's address, or what `X-Forwarded-For` says when the peer is
//! one of the configured trusted proxies (a header anyone else sends is ignored).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::json_error;
use crate::metrics::Handles;

/// Rate limits and load bounds of the ingest routes (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Events a second each write key may send, on average; 0: no limit per key.
    pub key_events_per_sec: u32,
    /// Events a write key may send at once on top of its rate (its bucket's size); 0: one
    /// second's worth. A batch larger than this can never pass and is answered 413.
    pub key_burst: u32,
    /// Events a second each client IP may send, on average; 0: no limit per IP.
    pub ip_events_per_sec: u32,
    /// Events a client IP may send at once (its bucket's size); 0: one second's worth.
    pub ip_burst: u32,
    /// Proxies (addresses or CIDR ranges, e.g. `10.0.0.0/8`) whose `X-Forwarded-For`
    /// names the client. From any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Ingest requests handled at once; past it, 503 at once.
    pub max_requests_in_flight: usize,
    /// Request body bytes (decompressed) held at once between reading a body and the
    /// log acknowledging its events; past it, 503 at once.
    pub max_pending_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            key_events_per_sec: 0,
            key_burst: 0,
            ip_events_per_sec: 0,
            ip_burst: 0,
            trusted_proxies: Vec::new(),
            max_requests_in_flight: 1024,
            max_pending_bytes: 256 * 1024 * 1024,
        }
    }
}

/// A limits setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum LimitsConfigError {
    /// A trusted proxy that is neither an address nor a CIDR range.
    #[error("limits.trusted_proxies: {0:?} is neither an IP address nor a CIDR range")]
    BadProxy(String),
    /// A bound of 0 would refuse every request.
    #[error("limits.{0} must be at least 1")]
    Zero(&'static str),
}

/// Which bucket refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The write key's.
    Key,
    /// The client IP's.
    Ip,
}

impl Scope {
    /// Every scope, in declaration order.
    pub const ALL: [Scope; 2] = [Scope::Key, Scope::Ip];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::Ip => "ip",
        }
    }
}

/// Which load bound shed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Requests in flight (`limits.max_requests_in_flight`).
    Requests,
    /// Body bytes held for the log (`limits.max_pending_bytes`).
    Bytes,
}

impl Bound {
    /// Every bound, in declaration order.
    pub const ALL: [Bound; 2] = [Bound::Requests, Bound::Bytes];

    /// The metric label and the word in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Bound::Requests => "requests",
            Bound::Bytes => "bytes",
        }
    }
}

/// Why a request was refused before it reached the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Over a rate: 429, come back after `retry_after`.
    Throttled {
        /// The bucket that is empty.
        scope: Scope,
        /// Its rate, events a second.
        rate: u32,
        /// When enough tokens are back.
        retry_after: Duration,
    },
    /// A batch larger than a bucket can ever hold: 413.
    BatchOverBurst {
        /// The bucket.
        scope: Scope,
        /// Events in the batch.
        events: u32,
        /// The bucket's size.
        burst: u32,
    },
    /// Too much in flight: 503, come back after `retry_after`.
    Shed {
        /// The bound passed.
        bound: Bound,
        /// The bound's value.
        limit: usize,
        /// The hint given to the client.
        retry_after: Duration,
    },
}

impl Refused {
    /// The answer's status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Refused::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refused::BatchOverBurst { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::Shed { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(&self) -> String {
        match self {
            Refused::Throttled {
                scope,
                rate,
                retry_after,
            } => format!(
                "rate limit: this {} may send {rate} events a second; retry in {} s",
                scope_noun(*scope),
                whole_seconds(*retry_after)
            ),
            Refused::BatchOverBurst {
                scope,
                events,
                burst,
            } => format!(
                "a batch of {events} events is more than this {}'s rate limit lets through \
                 at once ({burst}); send smaller batches",
                scope_noun(*scope)
            ),
            Refused::Shed { bound, limit, .. } => {
                format!(
                    "overloaded: more than {limit} {} waiting for the log; retry shortly",
                    bound.as_str()
                )
            }
        }
    }

    /// Whole seconds a client is told to wait (`Retry-After`), when waiting helps.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Refused::Throttled { retry_after, .. } | Refused::Shed { retry_after, .. } => {
                Some(whole_seconds(*retry_after))
            }
            Refused::BatchOverBurst { .. } => None,
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Refused {}

impl IntoResponse for Refused {
    /// The JSON reason, with `Retry-After` for 429 and 503.
    fn into_response(self) -> Response {
        json_error(self.status(), self.message(), self.retry_after())
    }
}

fn scope_noun(scope: Scope) -> &'static str {
    match scope {
        Scope::Key => "write key",
        Scope::Ip => "client address",
    }
}

/// A wait as whole seconds, rounded up, at least 1 (`Retry-After` has no fractions).
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// One keyed token bucket and its settings.
struct Bucket<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    scope: Scope,
    rate: u32,
    burst: NonZeroU32,
}

impl<K: std::hash::Hash + Eq + Clone> Bucket<K> {
    fn new(scope: Scope, rate: u32, burst: u32) -> Option<Self> {
        let per_sec = NonZeroU32::new(rate)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_sec);
        let quota = Quota::per_second(per_sec).allow_burst(burst);
        Some(Bucket {
            limiter: RateLimiter::keyed(quota),
            scope,
            rate,
            burst,
        })
    }

    fn take(&self, key: &K, events: u32) -> Result<(), Refused> {
        let Some(n) = NonZeroU32::new(events) else {
            return Ok(());
        };
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let retry_after = not_until.wait_time_from(DefaultClock::default().now());
                Err(Refused::Throttled {
                    scope: self.scope,
                    rate: self.rate,
                    retry_after,
                })
            }
            Err(_) => Err(Refused::BatchOverBurst {
                scope: self.scope,
                events,
                burst: self.burst.get(),
            }),
        }
    }
}

/// Who sent a request, as the limits see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client's address (see [`Limits::client_ip`]).
    pub ip: IpAddr,
    /// The name of its write key, when write keys are configured.
    pub key: Option<String>,
}

/// The limits in force, shared by every request of a listener.
pub struct Limits {
    keys: Option<Bucket<String>>,
    ips: Option<Bucket<IpAddr>>,
    trusted: Vec<IpNet>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    pending: Arc<Semaphore>,
    max_pending: usize,
    retry_after: Duration,
    /// Requests refused by a rate limit (429 or 413) since the start.
    throttled: AtomicU64,
    /// Requests shed (503) since the start.
    shed: AtomicU64,
    /// When idle buckets were last forgotten, in seconds since `started`.
    forgot_at: AtomicU64,
    started: Instant,
}

/// How often idle buckets are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// A request's place among those in flight; freed when dropped.
#[derive(Debug)]
pub struct InFlight(#[allow(dead_code)] OwnedSemaphorePermit);

impl Drop for InFlight {
    fn drop(&mut self) {
        Handles::get().requests_in_flight.decrement(1.0);
    }
}

/// Body bytes held until the log has them; freed when dropped.
#[derive(Debug)]
pub struct Held {
    _permit: OwnedSemaphorePermit,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        Handles::get().pending_bytes.decrement(self.bytes as f64);
    }
}

impl Limits {
    /// The limits `config` asks for; `retry_after` is the hint given with a 503.
    pub fn new(config: &LimitsConfig, retry_after: Duration) -> Result<Self, LimitsConfigError> {
        if config.max_requests_in_flight == 0 {
            return Err(LimitsConfigError::Zero("max_requests_in_flight"));
        }
        if config.max_pending_bytes == 0 {
            return Err(LimitsConfigError::Zero("max_pending_bytes"));
        }
        let trusted = config
            .trusted_proxies
            .iter()
            .map(|p| parse_net(p))
            .collect::<Result<Vec<_>, _>>()?;
        let max_pending = config.max_pending_bytes.min(Semaphore::MAX_PERMITS);
        Ok(Limits {
            keys: Bucket::new(Scope::Key, config.key_events_per_sec, config.key_burst),
            ips: Bucket::new(Scope::Ip, config.ip_events_per_sec, config.ip_burst),
            trusted,
            in_flight: Arc::new(Semaphore::new(config.max_requests_in_flight)),
            max_in_flight: config.max_requests_in_flight,
            pending: Arc::new(Semaphore::new(max_pending)),
            max_pending,
            retry_after,
            throttled: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            forgot_at: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy, then the
    /// nearest address in `X-Forwarded-For` that is not one (the header's entries are
    /// appended by each proxy, so the rightmost untrusted one is the first that no proxy of
    /// ours vouches for). A header that does not parse is ignored.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip().to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut forwarded = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for entry in text.split(',') {
                match entry.trim().parse::<IpAddr>() {
                    Ok(ip) => forwarded.push(ip.to_canonical()),
                    Err(_) => return peer,
                }
            }
        }
        let mut client = peer;
        for ip in forwarded.into_iter().rev() {
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// A place among the requests in flight, or 503 when there is none.
    pub fn admit(&self) -> Result<InFlight, Refused> {
        match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                Handles::get().requests_in_flight.increment(1.0);
                Ok(InFlight(permit))
            }
            Err(_) => Err(self.shed(Bound::Requests, self.max_in_flight)),
        }
    }

    /// Takes `events` tokens from the client's buckets (its IP's, then its key's), or
    /// says which one refused.
    pub fn take(&self, client: &Client, events: u32) -> Result<(), Refused> {
        self.forget_idle_now_and_then();
        let checked = self
            .ips
            .as_ref()
            .map_or(Ok(()), |b| b.take(&client.ip, events))
            .and_then(|()| match (&self.keys, &client.key) {
                (Some(bucket), Some(key)) => bucket.take(key, events),
                _ => Ok(()),
            });
        if let Err(refused) = &checked {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            count_refusal(refused);
        }
        checked
    }

    /// Holds `bytes` of body until the returned guard drops (when the log has the
    /// events), or 503 when the bound would be passed.
    pub fn hold(&self, bytes: usize) -> Result<Held, Refused> {
        let Ok(permits) = u32::try_from(bytes.max(1)) else {
            return Err(self.shed(Bound::Bytes, self.max_pending));
        };
        match self.pending.clone().try_acquire_many_owned(permits) {
            Ok(permit) => {
                Handles::get().pending_bytes.increment(bytes as f64);
                Ok(Held {
                    _permit: permit,
                    bytes,
                })
            }
            Err(_) => Err(self.shed(Bound::Bytes, self.max_pending)),
        }
    }

    /// Requests refused so far: (throttled by a rate limit, shed for load).
    pub fn refused(&self) -> (u64, u64) {
        (
            self.throttled.load(Ordering::Relaxed),
            self.shed.load(Ordering::Relaxed),
        )
    }

    /// Forgets idle buckets once every [`FORGET_EVERY`] (one caller does it).
    fn forget_idle_now_and_then(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.forgot_at.load(Ordering::Relaxed);
        if now < last + FORGET_EVERY.as_secs() {
            return;
        }
        let won = self
            .forgot_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if won {
            self.forget_idle();
        }
    }

    /// Forgets buckets that have refilled completely (they hold no state worth keeping),
    /// so the per-IP map does not grow with every address ever seen.
    pub fn forget_idle(&self) {
        if let Some(b) = &self.keys {
            b.limiter.retain_recent();
        }
        if let Some(b) = &self.ips {
            b.limiter.retain_recent();
        }
    }

    fn shed(&self, bound: Bound, limit: usize) -> Refused {
        let refused = Refused::Shed {
            bound,
            limit,
            retry_after: self.retry_after,
        };
        self.shed.fetch_add(1, Ordering::Relaxed);
        count_refusal(&refused);
        refused
    }
}

/// Middleware for the ingest routes: admits the request among those in flight (503 past
/// the bound, before any body is read) and leaves the [`Client`] in the request's
/// extensions for the handler, which takes its batch's tokens with [`Limits::take`] once
/// it has counted the events. The place in flight is held until the answer is ready.
pub async fn guard(
    axum::extract::State(limits): axum::extract::State<Arc<Limits>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let in_flight = match limits.admit() {
        Ok(in_flight) => in_flight,
        Err(refused) => return refused.into_response(),
    };
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let ip = peer.map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |peer| {
        limits.client_ip(peer, request.headers())
    });
    // Left by the write-key check (`WriteKeys::protect`), which runs before this guard.
    let key = request
        .extensions()
        .get::<crate::write_key::Source>()
        .map(|source| source.name().to_string());
    let client = Client { ip, key };
    request.extensions_mut().insert(client);
    let response = next.run(request).await;
    drop(in_flight);
    response
}

fn count_refusal(refused: &Refused) {
    match refused {
        Refused::Throttled { scope, .. } | Refused::BatchOverBurst { scope, .. } => {
            Handles::get().throttled(*scope).increment(1);
        }
        Refused::Shed { bound, .. } => {
            Handles::get().shed(*bound).increment(1);
        }
    }
}

fn parse_net(text: &str) -> Result<IpNet, LimitsConfigError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| LimitsConfigError::BadProxy(text.to_string()))
}

#[cfg(test)]
#[path = "limit_tests.rs"]
mod tests;
