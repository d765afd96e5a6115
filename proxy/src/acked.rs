//! What the client's TCP stack acknowledged: `bytes_acked` in the `end`
//! record, next to `bytes_sent`.
//!
//! `bytes_sent` counts the body bytes hyper took for the connection. Bytes
//! that left the process may still sit in the proxy's socket send buffer
//! (megabytes with autotuning on a real network) when a client goes away,
//! so for an aborted download it overstates what the client got. The kernel
//! counts, per TCP connection, the bytes the peer acknowledged
//! (`tcpi_bytes_acked` of Linux's `TCP_INFO`, since 4.1).
//!
//! [`AckedStream`] wraps a client's TCP stream below TLS and counts the
//! bytes written into it; [`Acks`], shared with the requests on that
//! connection, reads the kernel's acknowledged count. A response notes the
//! position it starts at ([`Delivery`]); when it ends, the bytes the client
//! acknowledged since then, capped at `bytes_sent`, are its `bytes_acked`.
//! They include the response head and, under TLS, the records' framing
//! (22 bytes per record of at most 16 KiB with TLS 1.3), so `bytes_acked`
//! is an upper bound on the body bytes that reached the client's kernel,
//! which is itself at least what the client application read.
//!
//! Known only for HTTP/1.x on Linux: HTTP/2 interleaves responses on one
//! connection, so no per-response figure exists there (`bytes_acked` is
//! absent). The figure is read when the transfer ends: for a complete
//! transfer the last bytes may still be on their way, so `bytes_acked` can
//! be below `bytes_sent` without anything having gone wrong.
//!
//! The one `unsafe` block of the workspace is the `getsockopt(2)` call here:
//! no safe wrapper for `TCP_INFO` exists in the crates we use.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A client connection's counts: bytes written into the socket, and the
/// socket itself while it is open, to ask the kernel what was acknowledged.
#[derive(Debug)]
pub struct Acks {
    written: AtomicU64,
    socket: Mutex<Socket>,
}

#[derive(Debug)]
enum Socket {
    /// Open: its descriptor. Only read under the lock, which the stream
    /// takes before it closes the descriptor, so the number never names
    /// another file.
    Open(RawFd),
    /// Closed: what the kernel had acknowledged just before.
    Closed(Option<u64>),
}

impl Acks {
    /// Bytes written into the socket so far (after TLS, if any).
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Bytes the peer acknowledged so far, if the kernel says.
    #[must_use]
    pub fn acked(&self) -> Option<u64> {
        match *self.socket.lock().unwrap_or_else(PoisonError::into_inner) {
            Socket::Open(fd) => bytes_acked(fd),
            Socket::Closed(acked) => acked,
        }
    }

    /// Where a response that starts now begins on the connection.
    #[must_use]
    pub fn delivery(self: &Arc<Acks>) -> Delivery {
        Delivery { acks: Arc::clone(self), start: self.written() }
    }
}

/// A response's place on its connection.
#[derive(Debug)]
pub struct Delivery {
    acks: Arc<Acks>,
    start: u64,
}

impl Delivery {
    /// Bytes of this response the client acknowledged, at most `bytes_sent`;
    /// `None` if the kernel does not say.
    #[must_use]
    pub fn bytes_acked(&self, bytes_sent: u64) -> Option<u64> {
        Some(self.acks.acked()?.saturating_sub(self.start).min(bytes_sent))
    }
}

/// A client's TCP stream, counted ([`Acks`]).
#[derive(Debug)]
pub struct AckedStream<S: AsRawFd> {
    inner: S,
    acks: Arc<Acks>,
}

impl<S: AsRawFd> AckedStream<S> {
    pub fn new(inner: S) -> AckedStream<S> {
        let acks = Arc::new(Acks { written: AtomicU64::new(0), socket: Mutex::new(Socket::Open(inner.as_raw_fd())) });
        AckedStream { inner, acks }
    }

    #[must_use]
    pub fn acks(&self) -> Arc<Acks> {
        Arc::clone(&self.acks)
    }

    fn wrote(&self, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = result {
            self.acks.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        result
    }
}

impl<S: AsRawFd> Drop for AckedStream<S> {
    fn drop(&mut self) {
        // Before `inner` closes the descriptor (fields drop after this).
        let mut socket = self.acks.socket.lock().unwrap_or_else(PoisonError::into_inner);
        if let Socket::Open(fd) = *socket {
            *socket = Socket::Closed(bytes_acked(fd));
        }
    }
}

impl<S: AsRawFd + AsyncRead + Unpin> AsyncRead for AckedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsRawFd + AsyncWrite + Unpin> AsyncWrite for AckedStream<S> {
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
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `tcpi_bytes_acked` of the TCP socket `fd`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code, reason = "getsockopt(2) has no safe wrapper for TCP_INFO in our dependencies")]
fn bytes_acked(fd: RawFd) -> Option<u64> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: `info` is a writable buffer of `len` bytes for a plain-data
    // C struct, zeroed so that fields an older kernel does not write are 0;
    // `fd` is open (see `Socket::Open`). The kernel writes at most `len`
    // bytes and reports how many in `len`.
    let status =
        unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, info.as_mut_ptr().cast(), &raw mut len) };
    // A kernel older than 4.1 writes a shorter struct without the field.
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + std::mem::size_of::<u64>();
    if status != 0 || (len as usize) < needed {
        return None;
    }
    // SAFETY: zero-initialised, then (partly) written by the kernel: every
    // bit pattern is a valid `tcp_info` (integers only).
    Some(unsafe { info.assume_init() }.tcpi_bytes_acked)
}

#[cfg(not(target_os = "linux"))]
fn bytes_acked(_fd: RawFd) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn counts_what_was_written_and_what_the_peer_acknowledged() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut got = vec![0; 100_000];
            stream.read_exact(&mut got).await.unwrap();
            stream.write_all(b"k").await.unwrap();
            stream
        });
        let (server, _) = listener.accept().await.unwrap();
        let mut server = AckedStream::new(server);
        let acks = server.acks();
        let delivery = acks.delivery();
        server.write_all(&vec![7; 100_000]).await.unwrap();
        assert_eq!(acks.written(), 100_000);
        // The client read everything and answered: all of it is acknowledged.
        let mut answer = [0; 1];
        server.read_exact(&mut answer).await.unwrap();
        assert_eq!(delivery.bytes_acked(u64::MAX), Some(100_000));
        assert_eq!(delivery.bytes_acked(10), Some(10), "capped at bytes_sent");
        // The next response starts where this one ended.
        let next = acks.delivery();
        drop(server);
        assert_eq!(next.bytes_acked(u64::MAX), Some(0), "read at close, kept after");
        assert_eq!(delivery.bytes_acked(u64::MAX), Some(100_000));
        drop(client.await.unwrap());
    }
}
