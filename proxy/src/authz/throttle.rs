//! A response body paced to a principal's bandwidth cap: each piece waits
//! for its bytes in the principal's bucket ([`Meter::pace`]), shared by all
//! of the principal's transfers on the node. Frames are cut into pieces of
//! a sixteenth of a second's worth (1 KiB to 256 KiB), so that a piece
//! waits about N/16 s when N transfers share the cap: the response body's
//! idle timeout (`--body-idle-timeout-secs`, 20 s) counts that wait, so a
//! principal would need some 300 transfers at once under one cap before
//! one is cut as idle.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::limits::Meter;

/// Smallest and largest piece sent between two waits.
const MIN_PIECE: u64 = 1024;
const MAX_PIECE: u64 = 256 * 1024;

/// `inner`, paced to `bytes_per_second`.
pub struct Throttled<B> {
    inner: B,
    meter: Arc<Meter>,
    bytes_per_second: u64,
    piece: usize,
    /// What is left of the frame being sent.
    rest: Bytes,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The piece that waits for `sleep`.
    ready: Option<Bytes>,
}

impl<B> std::fmt::Debug for Throttled<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttled").field("bytes_per_second", &self.bytes_per_second).finish_non_exhaustive()
    }
}

impl<B> Throttled<B> {
    pub fn new(inner: B, meter: Arc<Meter>, bytes_per_second: u64) -> Throttled<B> {
        let piece = (bytes_per_second / 16).clamp(MIN_PIECE, MAX_PIECE) as usize;
        Throttled { inner, meter, bytes_per_second, piece, rest: Bytes::new(), sleep: None, ready: None }
    }
}

impl<B> Body for Throttled<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            if let Some(piece) = this.ready.take() {
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            if !this.rest.is_empty() {
                let take = this.rest.len().min(this.piece);
                let piece = this.rest.split_to(take);
                // tokio's clock, which tests can pause.
                let now = tokio::time::Instant::now().into_std();
                let wait = this.meter.pace(take as u64, this.bytes_per_second, now);
                if wait.is_zero() {
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
                this.ready = Some(piece);
                this.sleep = Some(Box::pin(tokio::time::sleep(wait)));
                continue;
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.rest = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return other,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.ready.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let buffered = (self.rest.len() + self.ready.as_ref().map_or(0, Bytes::len)) as u64;
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + buffered);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + buffered);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use http_body_util::{BodyExt, Full};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paces_to_the_cap_and_keeps_every_byte() {
        let data: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        let meter = Arc::new(Meter::new(tokio::time::Instant::now().into_std()));
        let body = Throttled::new(Full::new(Bytes::from(data.clone())), meter, 100_000);
        let started = tokio::time::Instant::now();
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(out.as_ref(), data.as_slice());
        // 400 kB at 100 kB/s, less the burst of 0.25 s.
        let took = started.elapsed();
        assert!(took >= std::time::Duration::from_millis(3_700), "{took:?}");
    }
}
