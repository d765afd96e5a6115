//! Zero-copy downloads: large object bodies go from the upstream socket to
//! the client socket through a pipe (`splice(2)`), never through the
//! proxy's memory.
//!
//! hyper owns the client connection and writes a response body only from
//! the frames the body yields, so the body cannot write to the socket
//! itself. Instead:
//!
//! 1. The response body ([`crate::upstream::raw`]) moves bytes from the
//!    upstream socket into the connection's pipe ([`Channel::poll_fill`])
//!    and yields, for each move, a *placeholder* frame of the same length:
//!    a slice of [`PLACEHOLDER`], a static buffer nobody else uses.
//! 2. hyper queues the frame without copying it (the connection is
//!    vectored, so hyper's write strategy is a queue of buffers) and hands
//!    it to the connection's writer in order with the response head.
//! 3. [`SpliceStream`], the client connection's writer, recognises a
//!    placeholder by its address and moves that many bytes from the pipe to
//!    the socket instead of writing the slice.
//!
//! The pipe keeps the order because hyper's queue does: every placeholder
//! stands for the bytes the pipe received when it was made. What the
//! ledger counts does not change: hyper took a frame when it asks for the
//! next ([`crate::meter`]).
//!
//! When the pipe is full the body waits, and the writer wakes it once it
//! has drained some; hyper flushes its queue whenever the body waits, so
//! the two cannot wait on each other. A pipe can also be full in its slots
//! (one per page fragment) before it is full in bytes; the body then waits
//! for the writer as well as for the socket.
//!
//! This leans on how hyper 1 writes HTTP/1: a connection that says it is
//! vectored gets body buffers queued as they are (`WriteStrategy::Queue`).
//! Were a hyper release to copy them instead, clients would get zeros;
//! `tests/tests/s3_zero_copy.rs` compares every byte of spliced bodies.
//!
//! Used only where it can work: a plain-TCP client connection speaking
//! HTTP/1.x, a plain-HTTP upstream, a `GetObject` whose answer has a
//! `Content-Length` of at least [`SPLICE_MIN`]. TLS on either side, or
//! HTTP/2, goes the ordinary way.

mod stream;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use rustix::pipe::{SpliceFlags, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

pub use stream::SpliceStream;

/// Bodies shorter than this are copied: for them the extra system calls of
/// a pipe cost more than the copies they save.
pub const SPLICE_MIN: u64 = 128 * 1024;

/// Largest placeholder, and the most a pipe is asked to hold.
const PLACEHOLDER_LEN: usize = 1024 * 1024;

/// Placeholder frames are slices of this; its bytes are never sent (and,
/// being zero and never written, never take memory).
static PLACEHOLDER: [u8; PLACEHOLDER_LEN] = [0; PLACEHOLDER_LEN];

/// A placeholder frame of `len` bytes (at most [`PLACEHOLDER_LEN`]).
fn placeholder(len: usize) -> Bytes {
    Bytes::from_static(&PLACEHOLDER[..len])
}

/// Whether `slice` is (part of) a placeholder.
fn is_placeholder(slice: &[u8]) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let at = slice.as_ptr() as usize;
    !slice.is_empty() && at >= start && at < start + PLACEHOLDER_LEN
}

/// One client connection's pipe, shared by the bodies of its responses
/// (which fill it) and its writer (which drains it).
#[derive(Debug)]
pub struct Channel {
    state: Mutex<ChannelState>,
    /// Where spliced bytes are counted.
    metrics: Arc<egress_admin::Metrics>,
}

#[derive(Debug, Default)]
struct ChannelState {
    /// Made on the first spliced response.
    pipe: Option<Pipe>,
    /// Bytes in the pipe: placeholders handed out and not yet written.
    queued: usize,
    /// A body waiting for room in the pipe.
    waiting: Option<Waker>,
}

#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        use rustix::pipe::{PipeFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with};
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        // Larger pipes may be refused (`/proc/sys/fs/pipe-max-size`, the
        // per-user page limit): then the default one does, in more steps.
        let capacity =
            fcntl_setpipe_size(&write, PLACEHOLDER_LEN).or_else(|_| fcntl_getpipe_size(&write))?.min(PLACEHOLDER_LEN);
        Ok(Pipe { read, write, capacity })
    }
}

impl Channel {
    #[must_use]
    pub fn new(metrics: Arc<egress_admin::Metrics>) -> Arc<Channel> {
        Arc::new(Channel { state: Mutex::default(), metrics })
    }

    /// Whether the connection has a pipe, made now if need be. Without one
    /// (out of file descriptors, say) bodies are copied as usual.
    pub fn ready(&self) -> bool {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let mut state = self.lock();
        if state.pipe.is_none() {
            match Pipe::new() {
                Ok(pipe) => state.pipe = Some(pipe),
                Err(e) => {
                    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(error = %e, "no pipe for a spliced download; copying instead (warned once)");
                    }
                    return false;
                }
            }
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves up to `want` bytes (not 0) from `socket` into the pipe, which
    /// [`Channel::ready`] made, and returns the placeholder that stands for
    /// them; an empty one when the socket is at its end.
    pub fn poll_fill(&self, cx: &mut Context<'_>, socket: &TcpStream, want: u64) -> Poll<io::Result<Bytes>> {
        let mut state = self.lock();
        loop {
            let Some(pipe) = state.pipe.as_ref() else {
                return Poll::Ready(Err(io::Error::other("splicing without a pipe")));
            };
            let room = pipe.capacity.saturating_sub(state.queued);
            if room == 0 {
                state.waiting = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let len = room.min(usize::try_from(want).unwrap_or(usize::MAX));
            ready!(socket.poll_read_ready(cx))?;
            let moved = socket.try_io(Interest::READABLE, || {
                splice(socket, None, &pipe.write, None, len, SpliceFlags::NONBLOCK | SpliceFlags::MOVE)
                    .map_err(io::Error::from)
            });
            match moved {
                Ok(n) => {
                    state.queued += n;
                    return Poll::Ready(Ok(placeholder(n)));
                }
                // An empty socket, or a pipe whose slots are all taken by
                // fewer bytes than its capacity: wait for data and, if
                // anything is queued, for the writer to drain some.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if state.queued > 0 {
                        state.waiting = Some(cx.waker().clone());
                        ready!(socket.poll_read_ready(cx))?;
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
