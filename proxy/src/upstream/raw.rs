//! A plain-HTTP/1.1 client of our own, for object GETs from a plain-HTTP
//! upstream: it owns its sockets, so a large body can be read from the
//! upstream socket straight into the client connection's buffer
//! ([`crate::passthrough`]). hyper's client does not let go of its sockets.
//!
//! It sends one bodiless request per connection at a time, reads the
//! response head with `httparse`, and streams the body by its framing
//! (`Content-Length`, chunked, or up to the close). A connection whose body
//! was read to its end goes back to a pool of idle ones (per worker
//! thread, most recently used first, closed after [`IDLE_TIMEOUT`]).

mod chunked;

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::uri::Authority;
use http::{Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::time::Instant;

use self::chunked::{ChunkedDecoder, Step};
use super::UpstreamError;
use crate::passthrough::{Channel, PASSTHROUGH_MIN};

/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept, at most.
const MAX_IDLE: usize = 256;
/// Longest response head taken.
const MAX_HEAD: usize = 64 * 1024;
/// Header fields in a response head parsed at the first try; heads with
/// more (much user metadata) are parsed again with room for [`MAX_HEADERS`].
const USUAL_HEADERS: usize = 48;
/// Most header fields in a response head.
const MAX_HEADERS: usize = 512;
/// Bytes asked of the socket per read of a body.
const READ_SIZE: usize = 64 * 1024;
/// Bytes asked of the socket for a response head. What comes with it of the
/// body goes the ordinary way; this much holds a head and a small body.
const HEAD_READ_SIZE: usize = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client: a pool of idle connections.
#[derive(Debug, Default)]
pub struct RawClient {
    pool: Arc<Pool>,
}

#[derive(Debug, Default)]
struct Pool {
    /// Oldest first.
    idle: Mutex<VecDeque<Idle>>,
    /// A task closes expired connections while any are idle, so that none
    /// outlives [`IDLE_TIMEOUT`] by much when no request comes.
    reaping: AtomicBool,
}

#[derive(Debug)]
struct Idle {
    authority: Authority,
    socket: TcpStream,
    /// tokio's clock, which tests can move on.
    since: Instant,
}

impl Pool {
    /// The most recently used idle connection to `authority` that the
    /// upstream has not closed meanwhile, as far as can be seen.
    fn checkout(&self, authority: &Authority) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        expire(&mut idle);
        while let Some(at) = idle.iter().rposition(|i| i.authority == *authority) {
            let Some(candidate) = idle.remove(at) else { break };
            // Readable while idle: closed by the upstream, or stray bytes.
            if matches!(candidate.socket.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                return Some(candidate.socket);
            }
        }
        None
    }

    fn checkin(self: &Arc<Self>, authority: Authority, socket: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        expire(&mut idle);
        if idle.len() < MAX_IDLE {
            idle.push_back(Idle { authority, socket, since: Instant::now() });
            drop(idle);
            self.reap();
        }
    }

    /// Starts the task that expires idle connections, unless it runs. It
    /// ends when the pool is empty or gone.
    fn reap(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.reaping.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(IDLE_TIMEOUT / 2).await;
                let Some(pool) = pool.upgrade() else { return };
                let mut idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
                expire(&mut idle);
                if idle.is_empty() {
                    // Under the lock: a checkin after this starts a new task.
                    pool.reaping.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }
}

fn expire(idle: &mut VecDeque<Idle>) {
    while idle.front().is_some_and(|i| i.since.elapsed() >= IDLE_TIMEOUT) {
        idle.pop_front();
    }
}

impl RawClient {
    /// Sends a signed, bodiless `request` and returns the response with its
    /// body still on the socket. With `passthrough`, a body of a known length
    /// of at least [`PASSTHROUGH_MIN`] goes through that client connection's
    /// buffer.
    pub async fn send<B>(
        &self,
        request: http::Request<B>,
        passthrough: Option<Arc<Channel>>,
    ) -> Result<Response<RawBody>, UpstreamError> {
        let authority = request
            .uri()
            .authority()
            .cloned()
            .ok_or_else(|| UpstreamError::Uri(format!("{} has no host", request.uri())))?;
        let head = request_head(&request);
        drop(request);
        // A pooled connection the upstream closed just as we sent on it
        // fails before any answer: a GET is then safely sent again, once,
        // on a new connection.
        let mut retried = false;
        loop {
            let pooled = if retried { None } else { self.pool.checkout(&authority) };
            let reused = pooled.is_some();
            let mut socket = match pooled {
                Some(socket) => socket,
                None => connect(&authority).await?,
            };
            let mut buf = BytesMut::with_capacity(HEAD_READ_SIZE);
            let exchanged = match socket.write_all(&head).await {
                Ok(()) => read_head(&mut socket, &mut buf).await,
                Err(e) => Err(e),
            };
            let parts = match exchanged {
                Ok(parts) => parts,
                Err(_) if reused && buf.is_empty() => {
                    retried = true;
                    continue;
                }
                Err(e) => return Err(UpstreamError::Request(format!("upstream {authority}: {e}"))),
            };
            let framing = framing(&parts)?;
            let reusable = parts.version == Version::HTTP_11 && !says_close(&parts.headers);
            let passthrough = match framing {
                Framing::Length(length) if length >= PASSTHROUGH_MIN => passthrough.inspect(|channel| channel.begin()),
                _ => None,
            };
            let mut body = RawBody {
                socket: Some(socket),
                buf,
                framing,
                passthrough,
                reuse: reusable.then(|| (Arc::clone(&self.pool), authority.clone())),
            };
            if body.framing_done() {
                body.finish();
            }
            return Ok(Response::from_parts(parts, body));
        }
    }
}

/// Whether `Connection` lists `close` (a comma-separated, case-insensitive
/// list of options, in one field or several).
fn says_close(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"close"))
}

async fn connect(authority: &Authority) -> Result<TcpStream, UpstreamError> {
    let address = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
    let failed = |e: &dyn std::fmt::Display| UpstreamError::Request(format!("connecting to {address}: {e}"));
    let socket = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(e)) => return Err(failed(&e)),
        Err(_) => return Err(failed(&"timed out")),
    };
    // Small GETs suffer badly from Nagle + delayed ACK.
    socket.set_nodelay(true).map_err(|e| failed(&e))?;
    Ok(socket)
}

/// The request line and header fields, as sent.
fn request_head<B>(request: &http::Request<B>) -> Vec<u8> {
    let mut head = Vec::with_capacity(1024);
    head.extend_from_slice(request.method().as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(request.uri().path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Reads until a final (not 1xx) response head is in `buf`, and takes it
/// out: what is left in `buf` is the start of the body.
async fn read_head(socket: &mut TcpStream, buf: &mut BytesMut) -> io::Result<http::response::Parts> {
    loop {
        if let Some((parts, len)) = parse_head(buf)? {
            buf.advance(len);
            if parts.status.is_informational() {
                continue;
            }
            return Ok(parts);
        }
        if buf.len() >= MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "response head too large"));
        }
        buf.reserve(HEAD_READ_SIZE);
        if tokio::io::AsyncReadExt::read_buf(socket, buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response"));
        }
    }
}

/// The response head at the start of `buf` and its length, if it is whole.
fn parse_head(buf: &[u8]) -> io::Result<Option<(http::response::Parts, usize)>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut few = [httparse::EMPTY_HEADER; USUAL_HEADERS];
    let mut many;
    let mut response = httparse::Response::new(&mut few);
    let mut parsed = response.parse(buf);
    if parsed == Err(httparse::Error::TooManyHeaders) {
        many = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
        response = httparse::Response::new(&mut many[..]);
        parsed = response.parse(buf);
    }
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(format!("bad response head: {e}"))),
    };
    let status = StatusCode::from_u16(response.code.unwrap_or_default())
        .map_err(|_| invalid(format!("bad status {:?}", response.code)))?;
    let (mut parts, ()) = Response::new(()).into_parts();
    parts.status = status;
    parts.version = if response.version == Some(1) { Version::HTTP_11 } else { Version::HTTP_10 };
    parts.headers.reserve(response.headers.len());
    for field in response.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| invalid(format!("bad header name {:?}", field.name)))?;
        let value =
            HeaderValue::from_bytes(field.value).map_err(|_| invalid(format!("bad value for header {name}")))?;
        parts.headers.append(name, value);
    }
    Ok(Some((parts, len)))
}

/// How a response body ends (RFC 9112 §6.3, for a GET).
#[derive(Debug)]
enum Framing {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

fn framing(parts: &http::response::Parts) -> Result<Framing, UpstreamError> {
    let bad = |what: &str| UpstreamError::Request(format!("upstream response: {what}"));
    if parts.status == StatusCode::NO_CONTENT || parts.status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Done);
    }
    if let Some(coding) = parts.headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let last = coding.as_bytes().rsplit(|&b| b == b',').next().unwrap_or_default().trim_ascii();
        return if last.eq_ignore_ascii_case(b"chunked") {
            Ok(Framing::Chunked(ChunkedDecoder::new()))
        } else {
            Ok(Framing::UntilClose)
        };
    }
    let mut lengths = parts.headers.get_all(CONTENT_LENGTH).iter();
    match lengths.next() {
        None => Ok(Framing::UntilClose),
        Some(first) => {
            if lengths.any(|other| other != first) {
                return Err(bad("differing Content-Length fields"));
            }
            let length =
                first.to_str().ok().and_then(|l| l.trim().parse().ok()).ok_or_else(|| bad("bad Content-Length"))?;
            Ok(if length == 0 { Framing::Done } else { Framing::Length(length) })
        }
    }
}

/// A response body read from the socket; the socket goes back to the pool
/// when the body was read to its end.
#[derive(Debug)]
pub struct RawBody {
    socket: Option<TcpStream>,
    /// Read and not yet handed out.
    buf: BytesMut,
    framing: Framing,
    /// The client connection whose buffer the body goes through.
    passthrough: Option<Arc<Channel>>,
    /// Where the socket goes when the body has ended, if it may be reused.
    reuse: Option<(Arc<Pool>, Authority)>,
}

impl RawBody {
    /// A `Length` body that reached 0 is finished at once, so it is `Done`.
    fn framing_done(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    /// The body has ended: the socket goes back to the pool if nothing
    /// beyond the body was read.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        self.release_passthrough();
        if let (Some(socket), Some((pool, authority))) = (self.socket.take(), self.reuse.take())
            && self.buf.is_empty()
        {
            pool.checkin(authority, socket);
        }
    }

    /// The client connection's buffer is no longer this body's.
    fn release_passthrough(&mut self) {
        if let Some(channel) = self.passthrough.take() {
            channel.end();
        }
    }

    /// Reads more into `buf`; `Ok(0)` at the socket's end.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(socket) = self.socket.as_ref() else { return Poll::Ready(Ok(0)) };
        self.buf.reserve(READ_SIZE);
        loop {
            ready!(socket.poll_read_ready(cx))?;
            match socket.try_read_buf(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn cut(left: u64) -> crate::BoxError {
        Box::new(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the upstream closed the connection with {left} bytes of the body still to come"),
        ))
    }
}

impl Drop for RawBody {
    fn drop(&mut self) {
        self.release_passthrough();
    }
}

impl Body for RawBody {
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            let data = match &mut this.framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(left) if !this.buf.is_empty() => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(this.buf.len());
                    this.buf.split_to(take).freeze()
                }
                Framing::Length(left) => {
                    let left = *left;
                    if let (Some(channel), Some(socket)) = (this.passthrough.as_ref(), this.socket.as_ref()) {
                        let placeholder = ready!(channel.poll_fill(cx, socket, left))?;
                        if placeholder.is_empty() {
                            return Poll::Ready(Some(Err(RawBody::cut(left))));
                        }
                        placeholder
                    } else {
                        if ready!(this.poll_read_more(cx))? == 0 {
                            return Poll::Ready(Some(Err(RawBody::cut(left))));
                        }
                        continue;
                    }
                }
                Framing::Chunked(decoder) => match decoder.decode(&mut this.buf)? {
                    Step::Data(data) => data,
                    Step::End => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Step::NeedMore => {
                        if ready!(this.poll_read_more(cx))? == 0 {
                            return Poll::Ready(Some(Err(
                                "the upstream closed the connection inside a chunked body".into()
                            )));
                        }
                        continue;
                    }
                },
                Framing::UntilClose if !this.buf.is_empty() => this.buf.split().freeze(),
                Framing::UntilClose => {
                    if ready!(this.poll_read_more(cx))? == 0 {
                        this.framing = Framing::Done;
                        this.socket = None;
                        return Poll::Ready(None);
                    }
                    continue;
                }
            };
            if let Framing::Length(left) = &mut this.framing {
                *left -= data.len() as u64;
                if *left == 0 {
                    this.finish();
                }
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(left) => SizeHint::with_exact(left),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A server on a local socket that answers the requests on each
    /// connection with the next of `answers` (raw bytes), closing the
    /// connection after any answer that ends with `close`. Counts the
    /// connections it accepted.
    async fn serve(answers: Vec<(&'static [u8], bool)>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let mut seen = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&chunk[..n]);
                    if !seen.ends_with(b"\r\n\r\n") {
                        continue;
                    }
                    seen.clear();
                    let Some((answer, close)) = answers.next() else { return };
                    socket.write_all(answer).await.unwrap();
                    if close {
                        break;
                    }
                }
            }
        });
        (addr, accepted)
    }

    fn request(addr: &str) -> http::Request<()> {
        http::Request::builder().uri(format!("http://{addr}/bucket/key")).header("host", addr).body(()).unwrap()
    }

    async fn get(client: &RawClient, addr: &str) -> (StatusCode, Vec<u8>) {
        let response = client.send(request(addr), None).await.unwrap();
        let status = response.status();
        (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    #[tokio::test]
    async fn bodies_by_length_and_chunked_and_the_connection_is_reused() {
        let (addr, accepted) = serve(vec![
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false),
            (b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<Er\r\n4\r\nror>\r\n0\r\n\r\n", false),
            (b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", false),
        ])
        .await;
        let client = RawClient::default();
        assert_eq!(get(&client, &addr).await, (StatusCode::OK, b"hello".to_vec()));
        assert_eq!(get(&client, &addr).await, (StatusCode::NOT_FOUND, b"<Error>".to_vec()));
        assert_eq!(get(&client, &addr).await, (StatusCode::NOT_MODIFIED, Vec::new()));
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for the three");
    }

    #[tokio::test]
    async fn a_closed_connection_is_not_reused_and_a_body_up_to_the_close_is_read() {
        let (addr, accepted) = serve(vec![
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab", true),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the close", true),
        ])
        .await;
        let client = RawClient::default();
        assert_eq!(get(&client, &addr).await.1, b"ab");
        assert_eq!(get(&client, &addr).await.1, b"until the close");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_pooled_connection_the_upstream_closed_is_replaced() {
        let (addr, accepted) = serve(vec![
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab", false),
            // The upstream closes the idle connection just as the next GET
            // arrives on it: no answer. The GET goes again on a new one.
            (b"", true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ncd", true),
            // Closed well before the next GET: the pool sees it and opens
            // a new connection at once.
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nef", false),
        ])
        .await;
        let client = RawClient::default();
        assert_eq!(get(&client, &addr).await.1, b"ab");
        assert_eq!(get(&client, &addr).await.1, b"cd");
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "sent again on a second connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(get(&client, &addr).await.1, b"ef");
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn idle_connections_are_closed_when_no_request_comes() {
        let (addr, _) = serve(vec![(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab", false)]).await;
        let client = RawClient::default();
        assert_eq!(get(&client, &addr).await.1, b"ab");
        let idle = || client.pool.idle.lock().unwrap().len();
        assert_eq!(idle(), 1);
        assert!(client.pool.reaping.load(Ordering::SeqCst));
        tokio::time::pause();
        tokio::time::sleep(IDLE_TIMEOUT / 2).await;
        assert_eq!(idle(), 1, "not yet expired");
        tokio::time::sleep(IDLE_TIMEOUT).await;
        assert_eq!(idle(), 0, "expired with no request to see it");
        assert!(!client.pool.reaping.load(Ordering::SeqCst), "the reaper ended with the pool empty");
    }

    #[test]
    fn connection_close_is_one_option_among_others() {
        let says = |values: &[&'static str]| {
            let mut headers = http::HeaderMap::new();
            for value in values {
                headers.append(CONNECTION, HeaderValue::from_static(value));
            }
            says_close(&headers)
        };
        assert!(says(&["close"]));
        assert!(says(&["Keep-Alive, CLOSE"]));
        assert!(says(&["keep-alive", " close "]));
        assert!(!says(&[]));
        assert!(!says(&["keep-alive"]));
        assert!(!says(&["closed, x-close"]));
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let (addr, _) = serve(vec![(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true)]).await;
        let response = RawClient::default().send(request(&addr), None).await.unwrap();
        let error = response.into_body().collect().await.unwrap_err();
        assert!(error.to_string().contains("7 bytes of the body still to come"), "{error}");
    }

    #[test]
    fn parses_heads_with_few_and_with_many_fields() {
        let head =
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\nX-Amz-Meta-A: 1\r\nX-Amz-Meta-A: 2\r\n\r\nabc";
        let (parts, len) = parse_head(head).unwrap().unwrap();
        assert_eq!(parts.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(parts.version, Version::HTTP_11);
        assert_eq!(parts.headers.get_all("x-amz-meta-a").iter().count(), 2);
        assert_eq!(&head[len..], b"abc");
        assert!(parse_head(&head[..20]).unwrap().is_none(), "a partial head waits for more");

        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..200 {
            many.extend_from_slice(format!("x-amz-meta-k{i}: v{i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let (parts, len) = parse_head(&many).unwrap().unwrap();
        assert_eq!(parts.headers.len(), 200);
        assert_eq!(len, many.len());
        assert!(parse_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let parts = |status: u16, fields: &[(&str, &str)]| {
            let mut builder = Response::builder().status(status);
            for (name, value) in fields {
                builder = builder.header(*name, *value);
            }
            builder.body(()).unwrap().into_parts().0
        };
        assert!(matches!(framing(&parts(200, &[("content-length", "10")])), Ok(Framing::Length(10))));
        assert!(matches!(framing(&parts(200, &[("content-length", "0")])), Ok(Framing::Done)));
        assert!(matches!(framing(&parts(304, &[("content-length", "10")])), Ok(Framing::Done)));
        let chunked = parts(200, &[("transfer-encoding", "gzip, chunked"), ("content-length", "10")]);
        assert!(matches!(framing(&chunked), Ok(Framing::Chunked(_))));
        assert!(matches!(framing(&parts(200, &[])), Ok(Framing::UntilClose)));
        assert!(framing(&parts(200, &[("content-length", "1"), ("content-length", "2")])).is_err());
        assert!(framing(&parts(200, &[("content-length", "x")])).is_err());
    }
}
