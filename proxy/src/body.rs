//! Request bodies on their way upstream.
//!
//! Where the client signed a body hash, or sent no signature over the body,
//! the bytes pass through untouched and the upstream verifies what it can
//! (the same hash, the same checksum trailer). Where the client signed its
//! chunks (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`), nobody but us can
//! check those signatures, so every chunk is verified here before a byte of
//! it goes on, and the body is re-framed: plain (UNSIGNED-PAYLOAD with the
//! decoded length) or, with a trailer, as `STREAMING-UNSIGNED-PAYLOAD-TRAILER`
//! so that the upstream still checks the client's checksum. A bad chunk ends
//! the upstream body with an error, so the upstream commits no object.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::idle::{IdleTimeout, IdleTimer};
use bytes::{Bytes, BytesMut};
use egress_ledger::Outcome;
use http::HeaderMap;
use http::header::{self, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::chunked::{self, AwsChunkedDecoder, ChunkMode};
use crate::auth::{AuthError, PayloadMode};
use crate::s3::error::{ErrorCode, S3Error};
use crate::upstream::client::UpstreamBody;

const UNSIGNED: &str = "UNSIGNED-PAYLOAD";
const UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// What to do with a request body.
#[derive(Debug)]
pub enum RequestBodyPlan {
    /// Forward the bytes as they came.
    PassThrough,
    /// Verify signed chunks, forward the payload alone.
    DecodeSigned { mode: ChunkMode, decoded_len: u64 },
    /// Verify signed chunks, forward them re-framed as unsigned chunks with
    /// the client's trailers.
    ReframeSigned { mode: ChunkMode, decoded_len: Option<u64> },
}

/// Why the request body failed on our side, if it did: the upstream then
/// saw a cut body, but the fault is the client's.
#[derive(Debug)]
pub enum BodyFault {
    /// It failed verification (a bad chunk signature, a truncated chunk, …).
    Refused(AuthError),
    /// No byte came for the idle timeout.
    Idle(Duration),
    /// The client's connection failed in the middle of it.
    ClientGone(String),
    /// No room in the [`ChunkBudget`] for its next signed chunk in time.
    Busy(Duration),
}

impl BodyFault {
    /// What the client is answered, and the outcome recorded.
    #[must_use]
    pub fn answer(self) -> (S3Error, Outcome) {
        match self {
            BodyFault::Refused(e) => (S3Error::from(&e), Outcome::Denied),
            BodyFault::Idle(idle) => (S3Error::request_timeout(idle), Outcome::Timeout),
            BodyFault::ClientGone(why) => (
                S3Error::new(ErrorCode::IncompleteBody, format!("The request body was cut: {why}")),
                Outcome::ClientAbort,
            ),
            BodyFault::Busy(waited) => (
                S3Error::new(
                    ErrorCode::SlowDown,
                    format!(
                        "The proxy holds as many signed upload chunks for verification as it may; waited {} s for \
                         room. Retry, or send smaller chunks.",
                        waited.as_secs()
                    ),
                ),
                Outcome::Denied,
            ),
        }
    }
}

/// Where a body tells its fault (read after the upstream exchange); the
/// first fault told stays.
pub type BodyVerdict = Arc<Mutex<Option<BodyFault>>>;

fn tell(verdict: &BodyVerdict, fault: BodyFault) {
    verdict.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(fault);
}

/// Chooses the plan for an authenticated request.
pub fn plan(payload: &PayloadMode, headers: &HeaderMap) -> Result<RequestBodyPlan, AuthError> {
    match payload {
        PayloadMode::StreamingSigned { trailer: false, .. } => {
            let decoded_len = chunked::decoded_content_length(headers)?.ok_or_else(|| AuthError::InvalidArgument {
                access_key_id: None,
                reason: "a STREAMING-AWS4-HMAC-SHA256-PAYLOAD request needs x-amz-decoded-content-length".to_owned(),
            })?;
            let mode = ChunkMode::for_payload(payload).ok_or_else(unreachable_mode)?;
            Ok(RequestBodyPlan::DecodeSigned { mode, decoded_len })
        }
        PayloadMode::StreamingSigned { trailer: true, .. } => {
            let mode = ChunkMode::for_payload(payload).ok_or_else(unreachable_mode)?;
            Ok(RequestBodyPlan::ReframeSigned { mode, decoded_len: chunked::decoded_content_length(headers)? })
        }
        PayloadMode::Sha256(_) | PayloadMode::Unsigned | PayloadMode::StreamingUnsignedTrailer => {
            Ok(RequestBodyPlan::PassThrough)
        }
    }
}

fn unreachable_mode() -> AuthError {
    AuthError::InvalidArgument { access_key_id: None, reason: "streaming payload without a chunk mode".to_owned() }
}

impl RequestBodyPlan {
    /// `x-amz-content-sha256` toward the upstream.
    #[must_use]
    pub fn upstream_payload_hash(&self, payload: &PayloadMode) -> String {
        match (self, payload) {
            (RequestBodyPlan::PassThrough, PayloadMode::Sha256(hash)) => hash.clone(),
            (RequestBodyPlan::PassThrough, PayloadMode::StreamingUnsignedTrailer)
            | (RequestBodyPlan::ReframeSigned { .. }, _) => UNSIGNED_TRAILER.to_owned(),
            _ => UNSIGNED.to_owned(),
        }
    }

    /// Fixes the framing headers of the forwarded request to the new body.
    pub fn adjust_headers(&self, headers: &mut HeaderMap) {
        match self {
            RequestBodyPlan::PassThrough => {}
            RequestBodyPlan::DecodeSigned { decoded_len, .. } => {
                remove_aws_chunked(headers);
                headers.remove("x-amz-decoded-content-length");
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(*decoded_len));
            }
            RequestBodyPlan::ReframeSigned { .. } => {
                // The re-framed length differs from the client's; it goes chunked.
                headers.remove(header::CONTENT_LENGTH);
            }
        }
    }

    /// The body to send upstream and where a verification failure is told.
    #[must_use]
    pub fn body(self, incoming: Incoming, idle_timeout: Duration, budget: &ChunkBudget) -> (UpstreamBody, BodyVerdict) {
        let verdict = BodyVerdict::default();
        let idle = IdleBody::new(incoming, idle_timeout, Arc::clone(&verdict));
        let body = match self {
            RequestBodyPlan::PassThrough => idle.boxed_unsync(),
            RequestBodyPlan::DecodeSigned { mode, decoded_len } => {
                let decoder = AwsChunkedDecoder::new(mode)
                    .with_decoded_length(decoded_len)
                    .with_max_chunk_size(budget.max_chunk_size);
                DecodingBody::new(idle, decoder, false, Some(decoded_len), Arc::clone(&verdict), budget.clone())
                    .boxed_unsync()
            }
            RequestBodyPlan::ReframeSigned { mode, decoded_len } => {
                let mut decoder = AwsChunkedDecoder::new(mode).with_max_chunk_size(budget.max_chunk_size);
                if let Some(len) = decoded_len {
                    decoder = decoder.with_decoded_length(len);
                }
                DecodingBody::new(idle, decoder, true, None, Arc::clone(&verdict), budget.clone()).boxed_unsync()
            }
        };
        (body, verdict)
    }
}

fn remove_aws_chunked(headers: &mut HeaderMap) {
    let Some(value) = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()) else { return };
    let rest: Vec<&str> =
        value.split(',').map(str::trim).filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked")).collect();
    if rest.is_empty() {
        headers.remove(header::CONTENT_ENCODING);
    } else if let Ok(v) = HeaderValue::from_str(&rest.join(",")) {
        headers.insert(header::CONTENT_ENCODING, v);
    }
}

/// A request body that fails if no byte arrives for `timeout`, telling
/// that (or the client's connection failing) to the verdict.
pub struct IdleBody<B> {
    inner: B,
    idle: IdleTimer,
    verdict: BodyVerdict,
}

impl<B> std::fmt::Debug for IdleBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleBody").field("idle", &self.idle).finish_non_exhaustive()
    }
}

impl<B> IdleBody<B> {
    pub fn new(inner: B, timeout: Duration, verdict: BodyVerdict) -> IdleBody<B> {
        IdleBody { inner, idle: IdleTimer::new(timeout), verdict }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<crate::BoxError>,
{
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                let e: crate::BoxError = e.into();
                tell(&this.verdict, BodyFault::ClientGone(e.to_string()));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(frame) => {
                this.idle.progress();
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if this.idle.expired(cx) {
                    tell(&this.verdict, BodyFault::Idle(this.idle.timeout()));
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

/// Room for signed aws-chunked chunks held until their signature checks,
/// all uploads together: a chunk may be 16 MiB (`--max-aws-chunk-mib`),
/// and without a common bound a few thousand uploads could hold tens of
/// GiB. A chunk over [`ChunkBudget::FREE_BYTES`] waits for room before its
/// bytes are read (its client is held back by TCP meanwhile), up to `wait`;
/// then the upload is refused with 503 `SlowDown`. It also carries the
/// largest chunk an aws-chunked body may have, signed or not.
#[derive(Debug, Clone)]
pub struct ChunkBudget {
    /// One permit per KiB.
    kib: Arc<Semaphore>,
    total_kib: u32,
    wait: Duration,
    max_chunk_size: usize,
}

impl ChunkBudget {
    /// Chunks up to this size are gathered without taking room: every
    /// upload may hold that much anyway (hyper's read buffer).
    pub const FREE_BYTES: usize = 64 * 1024;

    /// A budget of `bytes`, at least 1 KiB. A chunk larger than the whole
    /// budget waits for all of it rather than forever.
    #[must_use]
    pub fn new(bytes: u64, wait: Duration) -> ChunkBudget {
        let total_kib = u32::try_from(bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        ChunkBudget {
            kib: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            wait,
            max_chunk_size: chunked::DEFAULT_MAX_CHUNK_SIZE,
        }
    }

    /// The same budget, refusing aws-chunked chunks over `bytes` instead of
    /// [`chunked::DEFAULT_MAX_CHUNK_SIZE`].
    #[must_use]
    pub fn with_max_chunk_size(mut self, bytes: usize) -> ChunkBudget {
        self.max_chunk_size = bytes;
        self
    }

    /// KiB of room free now.
    #[must_use]
    pub fn available_kib(&self) -> usize {
        self.kib.available_permits()
    }

    fn kib_for(&self, size: usize) -> u32 {
        u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX).min(self.total_kib)
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

/// Room taken, or being waited for, for one signed chunk.
enum Room {
    None,
    Waiting { chunk: u64, acquiring: Acquiring, deadline: Pin<Box<tokio::time::Sleep>> },
    Held { chunk: u64, _permit: OwnedSemaphorePermit },
}

/// Decodes (and verifies) an aws-chunked body, yielding the payload or, with
/// `reframe`, unsigned chunks and the trailers.
struct DecodingBody<B> {
    inner: B,
    decoder: AwsChunkedDecoder,
    buffer: BytesMut,
    ready: std::collections::VecDeque<Bytes>,
    reframe: bool,
    length: Option<u64>,
    verdict: BodyVerdict,
    done: bool,
    budget: ChunkBudget,
    room: Room,
}

impl<B> DecodingBody<B> {
    fn new(
        inner: B,
        decoder: AwsChunkedDecoder,
        reframe: bool,
        length: Option<u64>,
        verdict: BodyVerdict,
        budget: ChunkBudget,
    ) -> Self {
        DecodingBody {
            inner,
            decoder,
            buffer: BytesMut::new(),
            ready: std::collections::VecDeque::new(),
            reframe,
            length,
            verdict,
            done: false,
            budget,
            room: Room::None,
        }
    }

    fn refuse(&mut self, error: AuthError) -> crate::BoxError {
        let message = error.to_string();
        tell(&self.verdict, BodyFault::Refused(error));
        self.done = true;
        message.into()
    }

    fn take(&mut self, pieces: Vec<Bytes>) {
        for piece in pieces {
            let piece = if self.reframe { chunked::encode_unsigned_chunk(&piece) } else { piece };
            if !piece.is_empty() {
                self.ready.push_back(piece);
            }
        }
    }

    /// Makes sure room is held for the signed chunk being gathered, if it
    /// needs any; `Pending` while waiting for it, an error once the wait
    /// is over.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), crate::BoxError>> {
        let needed = self.decoder.gathering().filter(|(_, size)| *size > ChunkBudget::FREE_BYTES);
        let Some((chunk, size)) = needed else {
            self.room = Room::None;
            return Poll::Ready(Ok(()));
        };
        loop {
            match &mut self.room {
                Room::Held { chunk: held, .. } if *held == chunk => return Poll::Ready(Ok(())),
                Room::Waiting { chunk: waiting, acquiring, deadline } if *waiting == chunk => {
                    match acquiring.as_mut().poll(cx) {
                        Poll::Ready(Ok(permit)) => self.room = Room::Held { chunk, _permit: permit },
                        // The semaphore is never closed.
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(Box::new(e))),
                        Poll::Pending => {
                            if deadline.as_mut().poll(cx).is_ready() {
                                let waited = self.budget.wait;
                                tell(&self.verdict, BodyFault::Busy(waited));
                                self.done = true;
                                // Gives back what the wait held.
                                self.room = Room::None;
                                return Poll::Ready(
                                    Err(format!("no room for a signed chunk within {waited:?}").into()),
                                );
                            }
                            return Poll::Pending;
                        }
                    }
                }
                _ => {
                    // Room for an earlier chunk is given back first.
                    self.room = Room::None;
                    let kib = self.budget.kib_for(size);
                    let acquiring = Box::pin(Arc::clone(&self.budget.kib).acquire_many_owned(kib));
                    let deadline = Box::pin(tokio::time::sleep(self.budget.wait));
                    self.room = Room::Waiting { chunk, acquiring, deadline };
                }
            }
        }
    }
}

impl<B> Body for DecodingBody<B>
where
    B: Body<Data = Bytes, Error = crate::BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(piece) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.poll_room(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(())) => {}
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else { continue };
                    this.buffer.extend_from_slice(&data);
                    match this.decoder.feed(&mut this.buffer) {
                        Ok(pieces) => this.take(pieces),
                        Err(e) => return Poll::Ready(Some(Err(this.refuse(e)))),
                    }
                }
                Poll::Ready(None) => match this.decoder.finish() {
                    Ok(trailers) => {
                        this.done = true;
                        if this.reframe {
                            this.ready.push_back(chunked::encode_final_with_trailers(&trailers));
                        }
                    }
                    Err(e) => return Poll::Ready(Some(Err(this.refuse(e)))),
                },
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sigv4::{ChunkSigningContext, SigningKey};

    /// A request body that yields its frames, then waits forever (a client
    /// still sending).
    struct Trickle(std::collections::VecDeque<Bytes>);

    impl Body for Trickle {
        type Data = Bytes;
        type Error = crate::BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.0.pop_front() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => Poll::Pending,
            }
        }
    }

    /// A signed-chunk decoder whose first chunk announces `size` bytes and
    /// sends `sent` of them.
    fn upload(size: usize, sent: usize, budget: &ChunkBudget) -> (DecodingBody<Trickle>, BodyVerdict) {
        let ctx = ChunkSigningContext {
            signing_key: SigningKey::derive("secret", "20261203", "us-east-1", "s3"),
            amz_date: "20261203T000000Z".into(),
            scope: "20261203/us-east-1/s3/aws4_request".into(),
            seed_signature: "0".repeat(64),
        };
        let head = Bytes::from(format!("{size:x};chunk-signature={}\r\n", "1".repeat(64)));
        let frames = [head, Bytes::from(vec![7_u8; sent])].into_iter().collect();
        let verdict = BodyVerdict::default();
        let decoder = AwsChunkedDecoder::new(ChunkMode::Signed { ctx, trailer: false });
        let body = DecodingBody::new(Trickle(frames), decoder, false, None, Arc::clone(&verdict), budget.clone());
        (body, verdict)
    }

    fn poll(body: &mut DecodingBody<Trickle>) -> Poll<Option<Result<Frame<Bytes>, crate::BoxError>>> {
        let waker = futures_util::task::noop_waker();
        Pin::new(body).poll_frame(&mut Context::from_waker(&waker))
    }

    #[tokio::test(start_paused = true)]
    async fn signed_chunks_share_one_budget_and_wait_for_room() {
        let budget = ChunkBudget::new(128 * 1024, Duration::from_secs(5));
        // The first upload takes room for its 100 KiB chunk and reads on.
        let (mut first, _) = upload(100 * 1024, 60 * 1024, &budget);
        assert!(poll(&mut first).is_pending());
        assert_eq!(budget.available_kib(), 28);
        // A second one has no room: it reads nothing more and waits (in
        // line, holding what is free until the rest comes: tokio's
        // semaphore is fair).
        let (mut second, verdict) = upload(100 * 1024, 60 * 1024, &budget);
        assert!(poll(&mut second).is_pending());
        assert_eq!(budget.available_kib(), 0);
        // The first ends (its client went away): its room is given back,
        // and the second gets it.
        drop(first);
        assert!(poll(&mut second).is_pending());
        assert_eq!(budget.available_kib(), 28);
        assert!(verdict.lock().unwrap().is_none());

        // A third waits past the wait: refused as busy.
        let (mut third, verdict) = upload(100 * 1024, 1, &budget);
        assert!(poll(&mut third).is_pending());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(matches!(poll(&mut third), Poll::Ready(Some(Err(_)))));
        assert_eq!(budget.available_kib(), 28, "what the refused one held while waiting is back");
        let fault = verdict.lock().unwrap().take();
        assert!(matches!(fault, Some(BodyFault::Busy(_))), "{fault:?}");
        assert_eq!(fault.unwrap().answer().0.code, "SlowDown");

        // Small chunks take no room at all.
        let (mut small, _) = upload(ChunkBudget::FREE_BYTES, 10, &budget);
        assert!(poll(&mut small).is_pending());
        assert_eq!(budget.available_kib(), 28);
    }

    #[test]
    fn aws_chunked_is_removed_from_content_encoding() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("aws-chunked"));
        remove_aws_chunked(&mut h);
        assert!(!h.contains_key(header::CONTENT_ENCODING));
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("aws-chunked, gzip"));
        remove_aws_chunked(&mut h);
        assert_eq!(h[header::CONTENT_ENCODING], "gzip");
    }
}
