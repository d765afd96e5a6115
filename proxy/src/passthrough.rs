//! Pass-through downloads: a large object body goes from the upstream
//! socket to the client socket through one buffer of the client
//! connection, read into and written out of in place, never through
//! hyper's body buffers.
//!
//! hyper owns the client connection and writes a response body only from
//! the frames the body yields, so the body cannot write to the socket
//! itself. Instead:
//!
//! 1. The response body ([`crate::upstream::raw`]) reads from the upstream
//!    socket into the connection's ring buffer ([`Channel::poll_fill`])
//!    and yields, for each read, a *placeholder* frame of the same length:
//!    a slice of [`PLACEHOLDER`], a static buffer nobody else uses.
//! 2. hyper queues the frame without copying it (the connection is
//!    vectored, so hyper's write strategy is a queue of buffers) and hands
//!    it to the connection's writer in order with the response head.
//! 3. [`PassthroughStream`], the client connection's writer, recognises a
//!    placeholder by its address and writes that many bytes from the ring
//!    instead of the slice.
//!
//! The ring keeps the order because hyper's queue does: every placeholder
//! stands for the bytes the ring received when it was made. What the
//! ledger counts does not change: hyper took a frame when it asks for the
//! next ([`crate::meter`]).
//!
//! When the ring is full the body waits, and the writer wakes it once it
//! has written some; hyper flushes its queue whenever the body waits, so
//! the two cannot wait on each other.
//!
//! Why a buffer and not `splice(2)`: this way the proxy reads up to 256 KiB
//! per system call into memory that stays in the CPU's cache, and the
//! client receives the proxy's own writes. Spliced, the client received
//! the upstream's page fragments, which cost the client about twice as
//! much to copy out and the upstream as much again to send (its pages came
//! back to it later, and cold); a 1 GiB GET reached 0.80 of going direct
//! spliced and 0.87–0.89 this way, as fast as a bare relay of the TCP
//! stream with one buffer (`docs/CONFIGURATION.md`).
//!
//! This leans on how hyper 1 writes HTTP/1: a connection that says it is
//! vectored gets body buffers queued as they are (`WriteStrategy::Queue`).
//! Were a hyper release to copy them instead, clients would get zeros;
//! `tests/tests/s3_passthrough.rs` compares every byte of such bodies.
//!
//! Used only where it can work: a plain-TCP client connection speaking
//! HTTP/1.x, a plain-HTTP upstream, a `GetObject` whose answer has a
//! `Content-Length` of at least [`PASSTHROUGH_MIN`]. TLS on either side, or
//! HTTP/2, goes the ordinary way.

mod stream;

use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use tokio::net::TcpStream;

pub use stream::PassthroughStream;

/// Bodies shorter than this go the ordinary way: for them a ring is not
/// worth taking.
pub const PASSTHROUGH_MIN: u64 = 128 * 1024;

/// Bytes a ring holds; also the longest placeholder.
const RING_LEN: usize = 256 * 1024;

/// Rings kept per worker thread for the next download, so that a busy
/// connection does not allocate (and fault in) 256 KiB per response.
const SPARE_RINGS: usize = 8;

thread_local! {
    static SPARE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// Placeholder frames are slices of this; its bytes are never sent (and,
/// being zero and never written, never take memory).
static PLACEHOLDER: [u8; RING_LEN] = [0; RING_LEN];

/// A placeholder frame of `len` bytes (at most [`RING_LEN`]).
fn placeholder(len: usize) -> Bytes {
    Bytes::from_static(&PLACEHOLDER[..len])
}

/// Whether `slice` is (part of) a placeholder.
fn is_placeholder(slice: &[u8]) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let at = slice.as_ptr() as usize;
    !slice.is_empty() && at >= start && at < start + RING_LEN
}

/// One client connection's ring, shared by the bodies of its responses
/// (which fill it) and its writer (which drains it).
#[derive(Debug)]
pub struct Channel {
    state: Mutex<ChannelState>,
    /// Where passed-through bytes are counted.
    metrics: Arc<egress_admin::Metrics>,
}

#[derive(Debug, Default)]
struct ChannelState {
    /// Taken when a body starts using the channel; given back once that
    /// body has ended and its bytes are written.
    ring: Option<Box<[u8]>>,
    /// Where the bytes to write start in the ring.
    head: usize,
    /// Bytes in the ring: placeholders handed out and not yet written.
    queued: usize,
    /// A body uses the channel (between [`Channel::begin`] and
    /// [`Channel::end`]).
    in_use: bool,
    /// A body waiting for room in the ring.
    waiting: Option<Waker>,
}

impl ChannelState {
    /// Where the next read of at most `most` bytes goes: up to two free
    /// stretches of the ring.
    fn free(&mut self, most: usize) -> [IoSliceMut<'_>; 2] {
        let (head, queued) = (self.head, self.queued);
        let ring = self.ring.as_deref_mut().unwrap_or_default();
        let tail = head + queued;
        let (first, second) = if tail < ring.len() {
            let (before, after) = ring.split_at_mut(tail);
            (after, &mut before[..head])
        } else {
            let len = ring.len();
            (&mut ring[tail - len..head], &mut [][..])
        };
        let first_len = first.len().min(most);
        let second_len = second.len().min(most - first_len);
        [IoSliceMut::new(&mut first[..first_len]), IoSliceMut::new(&mut second[..second_len])]
    }

    /// The next `len` bytes to write (at most `queued`): up to two stretches.
    fn to_write(&self, len: usize) -> [IoSlice<'_>; 2] {
        let ring = self.ring.as_deref().unwrap_or_default();
        let first = len.min(ring.len() - self.head);
        [IoSlice::new(&ring[self.head..self.head + first]), IoSlice::new(&ring[..len - first])]
    }

    /// `n` bytes of the ring were written.
    fn written(&mut self, n: usize) {
        self.queued -= n;
        self.head = (self.head + n) % RING_LEN;
        if self.queued == 0 {
            self.head = 0;
            if !self.in_use {
                self.give_back();
            }
        }
    }

    fn give_back(&mut self) {
        if let Some(ring) = self.ring.take() {
            SPARE.with_borrow_mut(|spare| {
                if spare.len() < SPARE_RINGS {
                    spare.push(ring);
                }
            });
        }
    }
}

impl Channel {
    #[must_use]
    pub fn new(metrics: Arc<egress_admin::Metrics>) -> Arc<Channel> {
        Arc::new(Channel { state: Mutex::default(), metrics })
    }

    /// A body starts using the channel: it has a ring from now until
    /// [`Channel::end`].
    pub fn begin(&self) {
        let mut state = self.lock();
        state.in_use = true;
        if state.ring.is_none() {
            let spare = SPARE.with_borrow_mut(Vec::pop);
            state.ring = Some(spare.unwrap_or_else(|| vec![0; RING_LEN].into_boxed_slice()));
        }
    }

    /// The body has ended (or was dropped): the ring goes back once what it
    /// holds is written. If the connection closes first, it goes with it.
    pub fn end(&self) {
        let mut state = self.lock();
        state.in_use = false;
        state.waiting = None;
        if state.queued == 0 {
            state.give_back();
        }
    }

    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads up to `want` bytes (not 0) from `socket` into the ring, which
    /// [`Channel::begin`] provided, and returns the placeholder that stands
    /// for them; an empty one when the socket is at its end.
    pub fn poll_fill(&self, cx: &mut Context<'_>, socket: &TcpStream, want: u64) -> Poll<io::Result<Bytes>> {
        let mut state = self.lock();
        if state.ring.is_none() {
            return Poll::Ready(Err(io::Error::other("passing a body through without a ring")));
        }
        if state.queued == RING_LEN {
            state.waiting = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let want = usize::try_from(want).unwrap_or(usize::MAX);
        loop {
            ready!(socket.poll_read_ready(cx))?;
            // Never more than the body has left: what follows it on the
            // socket is not ours.
            match socket.try_read_vectored(&mut state.free(want)) {
                Ok(n) => {
                    state.queued += n;
                    return Poll::Ready(Ok(placeholder(n)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ChannelState {
        ChannelState { ring: Some(vec![0; RING_LEN].into_boxed_slice()), in_use: true, ..ChannelState::default() }
    }

    fn lens<T: std::ops::Deref<Target = [u8]>>(slices: &[T; 2]) -> (usize, usize) {
        (slices[0].len(), slices[1].len())
    }

    #[test]
    fn the_ring_reads_and_writes_around_its_end_in_order() {
        let mut state = state();
        assert_eq!(lens(&state.free(usize::MAX)), (RING_LEN, 0), "empty: all of it, from the start");
        assert_eq!(lens(&state.free(1000)), (1000, 0), "no more than asked");
        // Fill 200 KiB with a pattern, write out 150 KiB of it.
        let fill = |state: &mut ChannelState, from: usize, n: usize| {
            let mut at = from;
            let mut left = n;
            for slice in &mut state.free(n) {
                for byte in slice.iter_mut().take(left) {
                    *byte = (at % 251) as u8;
                    at += 1;
                    left -= 1;
                }
            }
            state.queued += n;
        };
        fill(&mut state, 0, 200 * 1024);
        let out = state.to_write(150 * 1024);
        assert_eq!(lens(&out), (150 * 1024, 0));
        assert!(out[0].iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        state.written(150 * 1024);
        // Free: the 56 KiB after the data, then the 150 KiB before it.
        assert_eq!(lens(&state.free(usize::MAX)), (56 * 1024, 150 * 1024));
        assert_eq!(lens(&state.free(60 * 1024)), (56 * 1024, 4 * 1024), "no more than asked, across the end");
        fill(&mut state, 200 * 1024, 100 * 1024);
        // The 150 KiB queued run across the ring's end, in order.
        let out = state.to_write(150 * 1024);
        assert_eq!(lens(&out), (106 * 1024, 44 * 1024));
        let bytes: Vec<u8> = out.iter().flat_map(|s| s.iter().copied()).collect();
        assert!(bytes.iter().enumerate().all(|(i, &b)| b == ((150 * 1024 + i) % 251) as u8));
        state.written(150 * 1024);
        assert_eq!((state.head, state.queued), (0, 0), "empty again: back to the start");
        assert!(state.ring.is_some(), "kept while the body is on");
    }

    #[test]
    fn a_full_ring_has_no_room_and_an_ended_body_gives_it_back() {
        let mut state = state();
        state.queued = RING_LEN;
        assert_eq!(lens(&state.free(usize::MAX)), (0, 0));
        state.in_use = false;
        state.written(RING_LEN);
        assert!(state.ring.is_none(), "given back once written");
        assert!(SPARE.with_borrow(|spare| !spare.is_empty()), "to this thread's spares");
    }
}
