//! When a client connection that asks for nothing is closed.
//!
//! hyper bounds none of this by itself: `auto::Builder` waits for the bytes
//! that tell HTTP/1 from HTTP/2 without a timeout, HTTP/1's header timeout
//! starts only once those have come, and an HTTP/2 connection that sent its
//! preface may stay silent forever. Each of them holds a descriptor; enough
//! of them leave none for clients who do ask.
//!
//! So every connection has an [`Activity`] record, and [`Activity::expired`]
//! tells the connection's task when to close it:
//!
//! - from accept, it has `header_read_timeout` to deliver its first whole
//!   request head, TLS handshake included;
//! - with no request in flight it is closed `idle_timeout` after the last
//!   one ended; a next head that starts arriving extends that, if needed,
//!   to `header_read_timeout` after its first byte, so that a head is never
//!   cut short merely for starting late;
//! - a request is in flight from the moment hyper hands it to the service
//!   (before it waits for a concurrency slot) until its response body has
//!   ended or been dropped and the last of the response's bytes that had
//!   to wait for the client has gone out. A request in flight is bounded
//!   elsewhere: the body idle timeout, the stall guard, the upstream
//!   header timeout.
//!
//! The record is fed by [`Watched`], the connection's reader and writer, by
//! [`Activity::begin`] when a request arrives and by the [`InFlightBody`]
//! around its response. Per request that is two atomic adds and a clock
//! read, with nothing allocated; per connection one timer, which wakes at
//! the deadline, or every `idle_timeout` while requests are in flight.
//! Everything of one connection runs on one worker thread; the atomics are
//! there because hyper wants its services `Send`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// [`Activity::idle_since`] of a connection that has had no request yet.
const NEVER: u64 = u64::MAX;
/// [`Activity::first_byte`] when no byte has arrived since the connection
/// went idle.
const NONE: u64 = 0;

/// What a connection is doing, as far as closing it goes.
#[derive(Debug)]
pub struct Activity {
    /// When it was accepted; the times below are milliseconds since.
    accepted: Instant,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    in_flight: AtomicU32,
    /// When the last request in flight ended; [`NEVER`] before the first.
    idle_since: AtomicU64,
    /// When the first byte arrived since then, plus one; [`NONE`] if none has.
    first_byte: AtomicU64,
}

impl Activity {
    /// The record of a connection accepted now.
    #[must_use]
    pub fn new(header_read_timeout: Duration, idle_timeout: Duration) -> Arc<Activity> {
        Arc::new(Activity {
            accepted: Instant::now(),
            header_read_timeout,
            idle_timeout,
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(NEVER),
            first_byte: AtomicU64::new(NONE),
        })
    }

    /// By when the first request head must have arrived (and before it the
    /// TLS handshake).
    #[must_use]
    pub fn first_head_deadline(&self) -> Instant {
        self.accepted + self.header_read_timeout
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.accepted + Duration::from_millis(ms)
    }

    /// A request arrived: it is in flight until the guard is dropped (by
    /// the [`InFlightBody`] of its response, or with the request's future).
    #[must_use]
    pub fn begin(self: &Arc<Activity>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard(Arc::clone(self))
    }

    fn end(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now_ms(), Ordering::Relaxed);
            self.first_byte.store(NONE, Ordering::Relaxed);
        }
    }

    /// Bytes were read from the client.
    fn arrived(&self) {
        if self.first_byte.load(Ordering::Relaxed) == NONE {
            self.first_byte.store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    /// A write that had to wait for the client went out: an ended response
    /// still being delivered keeps the connection from counting as idle.
    fn drained(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.idle_since.load(Ordering::Relaxed) != NEVER {
            self.idle_since.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// When the connection is to be closed as things stand; `None` while a
    /// request is in flight. Only ever moves later, except by a request
    /// ending, which [`Activity::expired`] allows for.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let idle_since = self.idle_since.load(Ordering::Relaxed);
        if idle_since == NEVER {
            return Some(self.first_head_deadline());
        }
        let idle = self.at(idle_since) + self.idle_timeout;
        Some(match self.first_byte.load(Ordering::Relaxed) {
            NONE => idle,
            first => idle.max(self.at(first - 1) + self.header_read_timeout),
        })
    }

    /// Resolves once the connection has been without a request for longer
    /// than it may be. While requests are in flight it looks again every
    /// `idle_timeout`: a request that ends moves the deadline to
    /// `idle_timeout` after its end, never sooner than the next look.
    pub async fn expired(&self) {
        let timer = tokio::time::sleep_until(self.first_head_deadline());
        tokio::pin!(timer);
        loop {
            let next = match self.deadline() {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => deadline,
                None => Instant::now() + self.idle_timeout,
            };
            timer.as_mut().reset(next);
            timer.as_mut().await;
        }
    }
}

/// A request in flight on its connection; ends it when dropped.
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that keeps its request in flight until it has ended
/// (or failed, or is dropped unfinished).
#[derive(Debug)]
pub struct InFlightBody<B> {
    inner: B,
    request: Option<RequestGuard>,
}

impl<B> InFlightBody<B> {
    #[must_use]
    pub fn new(inner: B, request: RequestGuard) -> InFlightBody<B> {
        InFlightBody { inner, request: Some(request) }
    }
}

impl<B: Body + Unpin> Body for InFlightBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = polled {
            self.request = None;
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

/// The client connection's reader and writer, telling its [`Activity`] when
/// bytes arrive and when a write that waited for the client goes out.
#[derive(Debug)]
pub struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
    /// The last write or flush had to wait.
    waited: bool,
}

impl<I> Watched<I> {
    pub fn new(inner: I, activity: Arc<Activity>) -> Watched<I> {
        Watched { inner, activity, waited: false }
    }

    fn wrote<T>(&mut self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match &result {
            Poll::Pending => self.waited = true,
            Poll::Ready(Ok(_)) if self.waited => {
                self.waited = false;
                self.activity.drained();
            }
            Poll::Ready(_) => {}
        }
        result
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.arrived();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.wrote(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(20);

    /// Whether `expired` has resolved by now (time is paused: it advances
    /// only when every task waits).
    async fn expired_within(activity: &Activity, wait: Duration) -> bool {
        tokio::time::timeout(wait, activity.expired()).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_has_the_header_timeout_from_accept() {
        let activity = Activity::new(HEADER, IDLE);
        assert!(!expired_within(&activity, Duration::from_millis(9_900)).await);
        assert!(expired_within(&activity, Duration::from_millis(200)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_without_a_whole_head_do_not_extend_the_first_deadline() {
        let activity = Activity::new(HEADER, IDLE);
        let (near, mut far) = tokio::io::duplex(64);
        let mut watched = Watched::new(near, Arc::clone(&activity));
        tokio::time::advance(Duration::from_secs(9)).await;
        far.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(watched.read(&mut buf).await.unwrap(), 8);
        assert!(expired_within(&activity, Duration::from_millis(1_100)).await, "still 10 s from accept");
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_until_the_body_ends_then_idle_until_the_idle_timeout() {
        let activity = Activity::new(HEADER, IDLE);
        let request = activity.begin();
        let mut body = InFlightBody::new(Full::new(Bytes::from_static(b"hello")), request);
        // A long request: never expires while in flight.
        assert!(!expired_within(&activity, Duration::from_mins(5)).await);
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "hello");
        assert!(activity.deadline().is_none(), "in flight until the end is seen");
        assert!(body.frame().await.is_none());
        let ended = Instant::now();
        assert_eq!(activity.deadline(), Some(ended + IDLE));
        drop(body);
        // The watchdog may have looked just before the end: it still closes
        // no later than the idle timeout after it.
        assert!(!expired_within(&activity, Duration::from_millis(19_900)).await);
        assert!(expired_within(&activity, Duration::from_millis(200)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waiting_in_its_future_is_in_flight_and_a_dropped_one_is_not() {
        let activity = Activity::new(HEADER, IDLE);
        let request = activity.begin();
        assert!(activity.deadline().is_none());
        drop(request);
        assert_eq!(activity.deadline(), Some(Instant::now() + IDLE));
        // Two at once (HTTP/2): idle only once both have ended.
        let (a, b) = (activity.begin(), activity.begin());
        drop(a);
        assert!(activity.deadline().is_none());
        drop(b);
        assert!(activity.deadline().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_head_gets_the_header_timeout_from_its_first_byte() {
        let activity = Activity::new(HEADER, IDLE);
        drop(activity.begin());
        let idle_from = Instant::now();
        let (near, mut far) = tokio::io::duplex(64);
        let mut watched = Watched::new(near, Arc::clone(&activity));
        // An early byte does not shorten the idle time...
        far.write_all(b"G").await.unwrap();
        let mut buf = [0u8; 1];
        watched.read_exact(&mut buf).await.unwrap();
        assert_eq!(activity.deadline(), Some(idle_from + IDLE));
        // ...and a head starting late has the header timeout from its first byte.
        drop(activity.begin());
        let idle_from = Instant::now();
        tokio::time::advance(Duration::from_secs(19)).await;
        far.write_all(b"G").await.unwrap();
        watched.read_exact(&mut buf).await.unwrap();
        let first_byte = Instant::now();
        assert_eq!(activity.deadline(), Some(first_byte + HEADER));
        assert!(first_byte + HEADER > idle_from + IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_still_draining_to_a_slow_reader_is_not_idle() {
        let activity = Activity::new(HEADER, IDLE);
        let (near, mut far) = tokio::io::duplex(1024);
        let mut watched = Watched::new(near, Arc::clone(&activity));
        drop(activity.begin());
        // The body has ended, but 64 KiB are still to be written to a
        // client reading 1 KiB every 5 s: 5 minutes, well past the idle timeout.
        let reader = tokio::spawn(async move {
            let mut sink = [0u8; 1024];
            let mut total = 0;
            while total < 64 * 1024 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                total += far.read(&mut sink).await.unwrap();
            }
            far
        });
        let writer = async {
            watched.write_all(&vec![7u8; 64 * 1024]).await.unwrap();
            Instant::now()
        };
        let watchdog = activity.expired();
        tokio::pin!(writer, watchdog);
        let done = tokio::select! {
            done = &mut writer => done,
            () = &mut watchdog => panic!("closed while the response was still going out"),
        };
        let _far = reader.await.unwrap();
        assert!(activity.deadline().unwrap() >= done - Duration::from_secs(5) + IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn watched_passes_bytes_and_vectored_writes_through() {
        let activity = Activity::new(HEADER, IDLE);
        let (near, mut far) = tokio::io::duplex(1024);
        let mut watched = Watched::new(near, activity);
        assert_eq!(watched.is_write_vectored(), tokio::io::duplex(1).0.is_write_vectored());
        watched.write_all(b"answer").await.unwrap();
        let mut buf = [0u8; 6];
        far.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"answer");
    }
}
