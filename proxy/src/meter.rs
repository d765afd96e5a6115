//! [`MeteredBody`]: the response body on its way to the client, counted.
//!
//! It counts a data frame as sent once hyper asks for the next one (hyper
//! has then taken the frame for the connection), or once the stream ended.
//! When the body ends, fails, stalls past the idle timeout, or is dropped
//! early (the client went away, or stopped reading and was cut by
//! [`crate::stall::StallGuard`]), it hands the `end` record to the ledger —
//! exactly once, whatever happens.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::idle::{IdleTimeout, IdleTimer};
use bytes::Bytes;
use egress_ledger::{EndRecord, Entry, Ledger, Outcome};
use http_body::{Body, Frame, SizeHint};

/// What the end record needs besides the counts.
#[derive(Debug)]
pub struct EndTemplate {
    pub ledger: Ledger,
    pub end: EndRecord,
    pub started: Instant,
    /// Where to count the request, under its operation and bucket.
    pub metrics: std::sync::Arc<egress_metrics::Metrics>,
    pub operation: String,
    pub bucket: Option<String>,
    /// Whether the client connection was cut for not reading.
    pub stalled: crate::stall::Stalled,
    /// Bytes reserved on the principal's quotas, settled to what was sent.
    pub settle: Option<crate::authz::limits::Reservation>,
    /// Where the response starts on its connection (HTTP/1 only): a
    /// metered body reads `bytes_acked` from it when it ends.
    pub delivery: Option<crate::acked::Delivery>,
}

impl EndTemplate {
    /// Sends the end record with `outcome`, `bytes_sent` and `bytes_acked`
    /// (only a body that was written has any). The append is queued to the
    /// writer at once; the writer commits it in order, before any later
    /// close.
    pub fn finish(mut self, outcome: Outcome, bytes_sent: u64, bytes_acked: Option<u64>, error_code: Option<String>) {
        self.end.outcome = outcome;
        self.end.bytes_sent = Some(bytes_sent);
        self.end.bytes_acked = bytes_acked;
        if let Some(reservation) = self.settle.take() {
            reservation.settle(bytes_sent);
        }
        self.end.duration_ms = Some(self.started.elapsed().as_millis() as u64);
        if error_code.is_some() {
            self.end.error_code = error_code;
        }
        self.metrics.request_finished(
            &self.operation,
            self.end.status.unwrap_or(0),
            self.bucket.as_deref(),
            bytes_sent,
        );
        let req = self.end.req.clone();
        if let Err(e) = self.ledger.submit(Entry::End(self.end)) {
            tracing::error!(req, error = %e, "could not queue the end record");
        }
    }
}

/// How much of an upstream error answer is kept to read its S3 error code
/// from: the code comes first in every S3 error body.
const ERROR_BODY_KEPT: usize = 1024;

/// A response body that reports what it delivered to the ledger.
pub struct MeteredBody<B> {
    inner: B,
    template: Option<EndTemplate>,
    /// Bytes of frames hyper has taken and moved past.
    sent: u64,
    /// Bytes of the last frame handed out, not yet confirmed.
    pending: u64,
    /// The inner body said it has nothing more (after the last frame).
    at_end: bool,
    idle: IdleTimer,
    /// The start of an upstream error answer, for the `end` record's
    /// `error_code`; `None` for other answers.
    error_body: Option<Vec<u8>>,
}

impl<B> std::fmt::Debug for MeteredBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredBody").field("sent", &self.sent).field("pending", &self.pending).finish_non_exhaustive()
    }
}

impl<B: Body> MeteredBody<B> {
    #[must_use]
    pub fn new(inner: B, template: EndTemplate, idle_timeout: Duration) -> MeteredBody<B> {
        MeteredBody {
            at_end: inner.is_end_stream(),
            inner,
            template: Some(template),
            sent: 0,
            pending: 0,
            idle: IdleTimer::new(idle_timeout),
            error_body: None,
        }
    }

    /// The body is an upstream's error answer: the `end` record gets the
    /// S3 error code it carries, when it has one.
    #[must_use]
    pub fn reading_error_code(mut self) -> MeteredBody<B> {
        self.error_body = Some(Vec::new());
        self
    }
}

impl<B> MeteredBody<B> {
    fn finish(&mut self, outcome: Outcome, error_code: Option<String>) {
        if let Some(template) = self.template.take() {
            let error_code = error_code.or_else(|| self.error_body.as_deref().and_then(crate::s3::error::code_in));
            let acked = template.delivery.as_ref().and_then(|d| d.bytes_acked(self.sent));
            template.finish(outcome, self.sent, acked, error_code);
        }
    }
}

impl<B> Body for MeteredBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<crate::BoxError>,
{
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        // Asked for more: the previous frame was taken.
        this.sent += std::mem::take(&mut this.pending);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.pending = data.len() as u64;
                    if let Some(kept) = this.error_body.as_mut() {
                        let room = ERROR_BODY_KEPT.saturating_sub(kept.len());
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                this.at_end = this.inner.is_end_stream();
                this.idle.progress();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(Outcome::UpstreamError, None);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.finish(Outcome::Complete, None);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.expired(cx) {
                    this.finish(Outcome::Timeout, None);
                    return Poll::Ready(Some(Err(Box::new(IdleTimeout(this.idle.timeout())))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        if self.template.is_none() {
            return;
        }
        // hyper stops polling a body of known length once it has it all, and
        // never polls an empty one: that is a complete delivery.
        if self.at_end {
            self.sent += std::mem::take(&mut self.pending);
            self.finish(Outcome::Complete, None);
        } else if self.template.as_ref().is_some_and(|t| t.stalled.get()) {
            self.finish(Outcome::Timeout, None);
        } else {
            self.finish(Outcome::ClientAbort, None);
        }
    }
}
