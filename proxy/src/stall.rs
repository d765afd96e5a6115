//! [`StallGuard`]: the client connection's send side, failed when it makes
//! no progress for the idle timeout.
//!
//! A client that stops reading a download leaves hyper waiting for the
//! socket to take more; hyper then stops asking the response body for data,
//! so the body's own idle timer never runs. The guard times the waiting
//! socket itself: a write or flush pending for longer than the timeout fails
//! with `TimedOut`, hyper closes the connection, and the response body is
//! dropped — recorded as `timeout` through the shared [`Stalled`] flag.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Set once a connection was cut for a stalled send; read by the `end`
/// records of its responses.
#[derive(Debug, Clone, Default)]
pub struct Stalled(Arc<AtomicBool>);

impl Stalled {
    #[must_use]
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A connection whose sends must make progress within `timeout`.
#[derive(Debug)]
pub struct StallGuard<I> {
    inner: I,
    timeout: Duration,
    /// Allocated on the first wait. It is moved only when it fires, never
    /// on progress: a busy download would otherwise re-arm it on every
    /// full socket buffer.
    timer: Option<Pin<Box<Sleep>>>,
    /// Since when a send has been waiting, if one is.
    waiting_since: Option<Instant>,
    stalled: Stalled,
}

impl<I> StallGuard<I> {
    pub fn new(inner: I, timeout: Duration, stalled: Stalled) -> StallGuard<I> {
        StallGuard { inner, timeout, timer: None, waiting_since: None, stalled }
    }

    /// After a send returned `result`: progress ends the wait; a wait that
    /// has lasted `timeout` fails.
    fn timed<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.waiting_since = None;
            return result;
        }
        let deadline = *self.waiting_since.get_or_insert_with(Instant::now) + self.timeout;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        // Armed for an earlier wait, the timer fires early: move it on.
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                self.stalled.set();
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing for {:?}", self.timeout),
                )));
            }
            timer.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StallGuard<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StallGuard<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.timed(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.timed(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.timed(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_send_that_waits_past_the_timeout_fails_and_says_so() {
        // A peer that reads nothing: the pipe fills, then writes wait.
        let (near, _far) = tokio::io::duplex(1024);
        let stalled = Stalled::default();
        let mut guard = StallGuard::new(near, Duration::from_secs(2), stalled.clone());
        let started = Instant::now();
        let error = guard.write_all(&vec![0u8; 64 * 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(stalled.get());
        assert!(started.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reading_peer_keeps_the_connection() {
        let (near, mut far) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut sink = vec![0u8; 1024];
            let mut total = 0;
            while total < 64 * 1024 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                total += tokio::io::AsyncReadExt::read(&mut far, &mut sink).await.unwrap();
            }
        });
        let stalled = Stalled::default();
        let mut guard = StallGuard::new(near, Duration::from_secs(2), stalled.clone());
        guard.write_all(&vec![0u8; 64 * 1024]).await.unwrap();
        reader.await.unwrap();
        assert!(!stalled.get());
    }
}
