//! [`PassthroughStream`]: a client connection that writes placeholders
//! from the ring.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Channel, is_placeholder};

/// A plain-TCP client connection: reads and ordinary writes pass through;
/// a placeholder among the buffers to write is replaced by as many bytes
/// from the connection's ring ([`super`]).
#[derive(Debug)]
pub struct PassthroughStream {
    socket: TcpStream,
    channel: Arc<Channel>,
}

impl PassthroughStream {
    #[must_use]
    pub fn new(socket: TcpStream, channel: Arc<Channel>) -> PassthroughStream {
        PassthroughStream { socket, channel }
    }

    /// Writes up to `len` bytes from the ring to the socket.
    fn poll_write_out(&self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<usize>> {
        let mut state = self.channel.lock();
        let len = len.min(state.queued);
        if len == 0 || state.ring.is_none() {
            // Every placeholder stands for bytes put in the ring before it
            // was made; anything else would send the wrong bytes.
            return Poll::Ready(Err(io::Error::other("a placeholder frame without bytes in the ring")));
        }
        loop {
            ready!(self.socket.poll_write_ready(cx))?;
            match self.socket.try_write_vectored(&state.to_write(len)) {
                Ok(n) => {
                    state.written(n);
                    self.channel.metrics.passthrough_bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    if let Some(body) = state.waiting.take() {
                        body.wake();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for PassthroughStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for PassthroughStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if is_placeholder(buf) {
            return self.poll_write_out(cx, buf.len());
        }
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    /// Writes the buffers in order: runs of ordinary ones with one
    /// `writev`, runs of placeholders from the ring. Stops at the first short or
    /// pending step and reports what was written before it.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut written = 0;
        let mut at = 0;
        while at < bufs.len() {
            let (step, wanted) = if is_placeholder(&bufs[at]) {
                // Placeholders in a row stand for bytes in a row in the ring.
                let run = bufs[at..].iter().take_while(|b| is_placeholder(b)).count();
                let wanted = bufs[at..at + run].iter().map(|b| b.len()).sum();
                at += run;
                (self.poll_write_out(cx, wanted), wanted)
            } else {
                let run = bufs[at..].iter().take_while(|b| !is_placeholder(b)).count();
                let ordinary = &bufs[at..at + run];
                at += run;
                let wanted = ordinary.iter().map(|b| b.len()).sum();
                (Pin::new(&mut self.socket).poll_write_vectored(cx, ordinary), wanted)
            };
            match step {
                Poll::Ready(Ok(n)) => {
                    written += n;
                    if n < wanted {
                        break;
                    }
                }
                Poll::Ready(Err(e)) if written == 0 => return Poll::Ready(Err(e)),
                Poll::Pending if written == 0 => return Poll::Pending,
                // Reported now; the error or the wait comes back on the
                // next call.
                Poll::Ready(Err(_)) | Poll::Pending => break,
            }
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        // hyper queues body frames (rather than copying them into one
        // buffer) only for a vectored connection: placeholders rely on it.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}
