//! What a connection is doing, as far as its deadlines need to know: how many requests are
//! in flight, and whether output is waiting on the client (a write the socket did not take,
//! or a response whose next frame hyper has not asked for, as when an HTTP/2 client keeps
//! its flow-control window shut).
//!
//! [`Watched`] reports writes from under the connection (below TLS, so it sees the
//! socket), [`TrackedBody`] reports what happens to each response, and the connection's
//! driver asks [`Activity::check`] which deadline is next or has passed.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::CutReason;

/// The deadlines a connection is held to once it is open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// Longest time with no request in flight and no output waiting.
    pub(crate) idle: Duration,
    /// Longest time output may wait on the client without any of it moving.
    pub(crate) stall: Duration,
}

/// Why a connection is closed before its client closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No request for [`Deadlines::idle`].
    Idle,
    /// The client took none of our output for [`Deadlines::stall`].
    WriteStall,
}

impl Expiry {
    /// The reason the connection is counted under.
    pub(crate) fn cut_reason(self) -> CutReason {
        match self {
            Expiry::Idle => CutReason::Idle,
            Expiry::WriteStall => CutReason::WriteStall,
        }
    }
}

/// What [`Activity::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A deadline has passed.
    Expired(Expiry),
    /// None has: look again at this instant (`None`: only once something changes).
    Next(Option<Instant>),
}

/// One connection's activity, shared by its IO, its responses and its driver.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<State>,
    /// Woken when the connection becomes quiet or busy, or output starts or stops
    /// waiting: the driver's next deadline may have moved.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    write_blocked: bool,
    /// Response bodies hyper has not polled since their last frame (or since they were
    /// handed to it).
    waiting_bodies: usize,
    /// When the connection last became quiet (no request, no waiting output).
    quiet_since: Instant,
    /// When output last moved, or last began to wait.
    stall_clock: Instant,
}

impl State {
    fn pending_output(&self) -> bool {
        self.write_blocked || self.waiting_bodies > 0
    }

    fn quiet(&self) -> bool {
        self.in_flight == 0 && !self.pending_output()
    }
}

impl Activity {
    /// A connection opened now: quiet, nothing waiting.
    pub(crate) fn new() -> Arc<Activity> {
        let now = Instant::now();
        Arc::new(Activity {
            state: Mutex::new(State {
                in_flight: 0,
                write_blocked: false,
                waiting_bodies: 0,
                quiet_since: now,
                stall_clock: now,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change`, restarting the clocks it starts and waking the driver when the
    /// connection turned quiet or busy, or output started or stopped waiting.
    fn update(&self, change: impl FnOnce(&mut State, Instant)) {
        let now = Instant::now();
        let moved = {
            let mut state = self.lock();
            let before = (state.quiet(), state.pending_output());
            change(&mut state, now);
            let after = (state.quiet(), state.pending_output());
            if after.0 && !before.0 {
                state.quiet_since = now;
            }
            if after.1 && !before.1 {
                state.stall_clock = now;
            }
            before != after
        };
        if moved {
            self.changed.notify_one();
        }
    }

    /// A request arrived; it is in flight until the guard (moved into its response body)
    /// drops.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.update(|state, _| state.in_flight += 1);
        InFlight {
            activity: Arc::clone(self),
        }
    }

    /// The socket took some of our output.
    fn wrote(&self) {
        self.update(|state, now| {
            state.write_blocked = false;
            state.stall_clock = now;
        });
    }

    /// The socket took none of our output: the client is not reading (or is slow).
    fn write_blocked(&self) {
        self.update(|state, _| state.write_blocked = true);
    }

    /// Whether a deadline of `deadlines` has passed at `now`, else when to look again.
    pub(crate) fn check(&self, deadlines: &Deadlines, now: Instant) -> Check {
        let state = self.lock();
        let mut next: Option<Instant> = None;
        if state.quiet() {
            let at = state.quiet_since + deadlines.idle;
            if at <= now {
                return Check::Expired(Expiry::Idle);
            }
            next = Some(at);
        }
        if state.pending_output() {
            let at = state.stall_clock + deadlines.stall;
            if at <= now {
                return Check::Expired(Expiry::WriteStall);
            }
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        Check::Next(next)
    }

    /// Whether no request is in flight.
    pub(crate) fn no_request_in_flight(&self) -> bool {
        self.lock().in_flight == 0
    }

    /// Completes once something changed that may move the next deadline (at once when
    /// something changed since the last call).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// A request in flight: counted until dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.activity.update(|state, _| state.in_flight -= 1);
    }
}

/// The connection's IO, reporting whether the socket takes our writes.
#[derive(Debug)]
pub(crate) struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO> Watched<IO> {
    /// `io`, reporting to `activity`.
    pub(crate) fn new(io: IO, activity: Arc<Activity>) -> Self {
        Self { io, activity }
    }

    fn track(&self, written: &Poll<io::Result<usize>>) {
        match written {
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.wrote(),
            Poll::Pending => self.activity.write_blocked(),
            Poll::Ready(_) => {}
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.track(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.track(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A response body that keeps its request in flight until it is dropped, and reports when
/// a frame of it waits on the client: from when it is handed over until hyper asks for the
/// next one (or drops the body, after the last).
#[derive(Debug)]
pub(crate) struct TrackedBody {
    inner: axum::body::Body,
    /// Whether hyper has yet to ask for the next frame.
    waiting: bool,
    request: InFlight,
}

impl TrackedBody {
    /// `inner`, answering the request `request`.
    pub(crate) fn new(inner: axum::body::Body, request: InFlight) -> Self {
        let waiting = !inner.is_end_stream();
        if waiting {
            request
                .activity
                .update(|state, _| state.waiting_bodies += 1);
        }
        Self {
            inner,
            waiting,
            request,
        }
    }

    fn set_waiting(&mut self, waiting: bool, pulled: bool) {
        if self.waiting == waiting {
            return;
        }
        self.waiting = waiting;
        self.request.activity.update(|state, now| {
            if waiting {
                state.waiting_bodies += 1;
            } else {
                state.waiting_bodies -= 1;
            }
            if pulled {
                state.stall_clock = now;
            }
        });
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        this.set_waiting(false, true);
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        // A frame handed over waits on the client until hyper asks for the next one or,
        // for the last, drops the body: HTTP/2 holds it until the window lets it go.
        if matches!(polled, Poll::Ready(Some(Ok(_)))) {
            this.set_waiting(true, false);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.set_waiting(false, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINES: Deadlines = Deadlines {
        idle: Duration::from_secs(60),
        stall: Duration::from_secs(30),
    };

    fn after(from: Instant, secs: u64) -> Instant {
        from + Duration::from_secs(secs)
    }

    /// The instant of the next deadline; fails when none is due or one has passed.
    fn next_deadline(activity: &Activity, now: Instant) -> Instant {
        match activity.check(&DEADLINES, now) {
            Check::Next(Some(at)) => at,
            other => panic!("expected a deadline ahead, found {other:?}"),
        }
    }

    #[test]
    fn a_quiet_connection_expires_after_the_idle_deadline() {
        let opened = Instant::now();
        let activity = Activity::new();
        let at = next_deadline(&activity, Instant::now());
        assert!(at >= after(opened, 60) && at <= after(Instant::now(), 60));
        assert_eq!(activity.check(&DEADLINES, at), Check::Expired(Expiry::Idle));
    }

    #[tokio::test]
    async fn a_request_in_flight_holds_off_the_idle_deadline_until_it_ends() {
        let activity = Activity::new();
        let request = activity.request_started();
        let now = Instant::now();
        assert_eq!(
            activity.check(&DEADLINES, after(now, 600)),
            Check::Next(None)
        );
        let ended = Instant::now();
        drop(request);
        activity.changed().await;
        let at = next_deadline(&activity, Instant::now());
        assert!(
            at >= after(ended, 60),
            "the idle clock starts when the request ends"
        );
    }

    #[test]
    fn a_blocked_write_expires_after_the_stall_deadline_unless_it_moves() {
        let activity = Activity::new();
        let _request = activity.request_started();
        let blocked = Instant::now();
        activity.write_blocked();
        let first = next_deadline(&activity, Instant::now());
        assert!(first >= after(blocked, 30) && first <= after(Instant::now(), 30));
        assert_eq!(
            activity.check(&DEADLINES, first),
            Check::Expired(Expiry::WriteStall)
        );
        std::thread::sleep(Duration::from_millis(2));
        activity.wrote();
        activity.write_blocked();
        let moved = next_deadline(&activity, Instant::now());
        assert!(moved > first, "progress restarts the stall clock");
    }

    #[test]
    fn a_response_body_left_unpolled_counts_as_waiting_output() {
        let activity = Activity::new();
        let request = activity.request_started();
        let mut body = TrackedBody::new(axum::body::Body::from("answer"), request);
        let now = Instant::now();
        assert_eq!(
            activity.check(&DEADLINES, after(now, 31)),
            Check::Expired(Expiry::WriteStall),
            "a body hyper never asks for"
        );
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let frame = Pin::new(&mut body).poll_frame(&mut cx);
        assert!(matches!(frame, Poll::Ready(Some(Ok(_)))));
        let later = Instant::now();
        assert_eq!(
            activity.check(&DEADLINES, after(later, 31)),
            Check::Expired(Expiry::WriteStall),
            "the last frame waits on the client until the body is dropped"
        );
        let pulled = next_deadline(&activity, later);
        assert!(
            pulled >= after(now, 30),
            "the pull restarted the stall clock"
        );
        drop(body);
        let at = next_deadline(&activity, Instant::now());
        assert!(
            at >= after(now, 60),
            "quiet again once the response is done"
        );
    }
}
