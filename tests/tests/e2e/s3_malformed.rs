//! Hostile and malformed requests, written byte by byte over TCP (and signed
//! where the malformation has to get past the signature check to mean
//! anything). For every one: no panic, a clean answer, and the proxy still
//! serves the next signed request.
//!
//! Two kinds of clean answer:
//! - our code answered: an S3 XML error (`<Error><Code>…`) with the status S3
//!   gives, and the request is in the ledger — a `start` and an `end` with
//!   outcome `denied` — under the `x-egress-request-id` it carries;
//! - hyper refused the bytes before they became a request (a head too large,
//!   contradictory framing, not HTTP at all): a bare 4xx and a closed
//!   connection. No request ever reached our service, so there is nothing it
//!   could record; the tests check that nothing was.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use aws_sigv4::http_request::SignableBody;
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, UPSTREAM_KEY, UPSTREAM_SECRET};
use egress_e2e::sigv4::Signer;
use serde_json::Value;

const BUCKET: &str = "malformed";
const CANARY: &[u8] = b"the canary object: still served after every hostile request";

/// SigV4 headers (`x-amz-date`, `x-amz-content-sha256`, `authorization`)
/// for `method path_and_query` to `host`, signing `host` and `extra`, over
/// the path exactly as given: neither normalised nor re-encoded, as a client
/// that sends this path signs it.
fn sigv4_headers(
    method: &str,
    host: &str,
    path_and_query: &str,
    (access_key, secret): (&str, &str),
    body: &[u8],
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let url = format!("http://{host}{path_and_query}");
    let mut signed = vec![("host", host)];
    signed.extend_from_slice(extra);
    Signer::new(access_key, secret).headers(method, &url, &signed, SignableBody::Bytes(body)).unwrap()
}

/// A presigned URL (path and query) for `method path`, valid for a minute,
/// signing only `host`.
fn presigned_path(method: &str, host: &str, path: &str, (access_key, secret): (&str, &str)) -> String {
    let url = format!("http://{host}{path}");
    Signer::new(access_key, secret).presign(method, &url, host, Duration::from_mins(1)).unwrap()
}

/// A key encoded the way SigV4 canonicalises a path (and the SDKs send it).
fn sigv4_encode(key: &str) -> String {
    key.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Request line, headers in order, an empty line, the body.
fn raw_request(request_line: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{request_line}\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// What came back on one connection.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Every byte read until the server closed the connection.
    raw: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 XML error body.
    fn s3_code(&self) -> Option<String> {
        let text = self.text();
        let rest = text.split_once("<Error><Code>")?.1;
        Some(rest.split_once("</Code>")?.0.to_owned())
    }

    /// How many responses the connection carried.
    fn responses(&self) -> usize {
        String::from_utf8_lossy(&self.raw).matches("HTTP/1.1 ").count()
    }
}

/// Sends `request` on a fresh connection and reads until the server closes
/// it (every request here says `Connection: close`, or is refused).
fn exchange(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may refuse before reading everything (a head too large)
    // and close: what it answered is still there to read.
    let _ = stream.write_all(request);
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    assert!(
        !raw.is_empty(),
        "no answer at all ({read:?}) to {:?}",
        String::from_utf8_lossy(&request[..120.min(request.len())])
    );
    parse_reply(raw)
}

fn parse_reply(raw: Vec<u8>) -> Reply {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no response head in {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{status_line}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect();
    let rest = &raw[split + 4..];
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let body = if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)
    } else if let Some(len) = find("content-length").and_then(|l| l.parse::<usize>().ok()) {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Reply { status, headers, body, raw }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else { return out };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || data.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = data.get(eol + 2 + size + 2..).unwrap_or_default();
    }
}

/// A proxy in front of a fresh SeaweedFS, with one principal, a bucket and
/// the canary object.
struct Fixture {
    _upstream: SeaweedFs,
    upstream_addr: SocketAddr,
    proxy: Proxy,
}

impl Fixture {
    fn start() -> Fixture {
        let upstream = SeaweedFs::start();
        let upstream_addr = SocketAddr::from(([127, 0, 0, 1], upstream.port));
        let proxy =
            Proxy::start(&upstream, ProxyOptions { principals: vec!["mallory".into()], ..ProxyOptions::default() });
        let fixture = Fixture { _upstream: upstream, upstream_addr, proxy };
        assert_eq!(fixture.signed("PUT", &format!("/{BUCKET}"), b"").status, 200, "create the bucket");
        assert_eq!(fixture.signed("PUT", &format!("/{BUCKET}/canary"), CANARY).status, 200, "put the canary");
        fixture
    }

    fn host(&self) -> String {
        self.proxy.addr.to_string()
    }

    fn credentials(&self) -> (&str, &str) {
        let key = self.proxy.key();
        (&key.access_key_id, &key.secret_access_key)
    }

    /// The headers of a signed request for `path` (signed as given).
    fn signed_headers(&self, method: &str, path: &str, body: &[u8]) -> Vec<(String, String)> {
        let mut headers = vec![header("host", self.host())];
        headers.extend(sigv4_headers(method, &self.host(), path, self.credentials(), body, &[]));
        headers.push(header("content-length", body.len().to_string()));
        headers.push(header("connection", "close"));
        headers
    }

    fn signed(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        let headers = self.signed_headers(method, path, body);
        exchange(self.proxy.addr, &raw_request(&format!("{method} {path} HTTP/1.1"), &headers, body))
    }

    /// GET straight from SeaweedFS, signed with the upstream's key.
    fn upstream_get(&self, key: &str) -> Reply {
        let host = self.upstream_addr.to_string();
        let path = format!("/{BUCKET}/{}", sigv4_encode(key));
        let mut headers = vec![header("host", host.clone())];
        headers.extend(sigv4_headers("GET", &host, &path, (UPSTREAM_KEY, UPSTREAM_SECRET), b"", &[]));
        headers.push(header("connection", "close"));
        exchange(self.upstream_addr, &raw_request(&format!("GET {path} HTTP/1.1"), &headers, b""))
    }

    /// The proxy answers a normal signed request, with the right bytes.
    fn assert_serving(&self, after: &str) {
        let reply = self.signed("GET", &format!("/{BUCKET}/canary"), b"");
        assert_eq!((reply.status, reply.body.as_slice()), (200, CANARY), "after {after}: {}", reply.text());
        assert_no_panic(&self.proxy, after);
    }

    /// Our code answered: an S3 XML error, and the ledger has its start and
    /// its `denied` end under the id the response names.
    fn assert_denied(&self, reply: &Reply, status: u16, code: &str, case: &str) -> (Value, Value) {
        assert_eq!(reply.status, status, "{case}: {}", reply.text());
        assert_eq!(reply.s3_code().as_deref(), Some(code), "{case}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/xml"), "{case}");
        let (start, end) = self.event(reply, case);
        let req = reply.header("x-egress-request-id");
        assert_eq!(reply.header("x-amz-request-id"), req, "{case}: our error, our id in both headers");
        assert_eq!(end["outcome"], "denied", "{case}: {end}");
        assert_eq!(end["status"], status, "{case}: {end}");
        assert_eq!(end["error_code"], code, "{case}: {end}");
        self.assert_serving(case);
        (start, end)
    }

    /// The ledger's start and end of the request this reply answered.
    fn event(&self, reply: &Reply, case: &str) -> (Value, Value) {
        let req = reply.header("x-egress-request-id").unwrap_or_else(|| panic!("{case}: no request id in {reply:?}"));
        self.proxy.event(req)
    }

    /// hyper refused the bytes before our service saw a request: a bare 4xx
    /// (one of `statuses`), the connection closed, and — since nothing
    /// reached our code — no ledger record with this case's user agent.
    fn assert_refused_by_http(&self, reply: &Reply, statuses: &[u16], user_agent: &str, case: &str) {
        assert!(statuses.contains(&reply.status), "{case}: {} not in {statuses:?}: {reply:?}", reply.status);
        assert_eq!(reply.responses(), 1, "{case}: one answer, then the connection is closed");
        assert!(reply.header("x-egress-request-id").is_none(), "{case}: hyper answered, not our code");
        let recorded = self.proxy.ledger().iter().any(|l| l["user_agent"] == user_agent);
        assert!(!recorded, "{case}: refused before it became a request, yet recorded");
        self.assert_serving(case);
    }
}

fn assert_no_panic(proxy: &Proxy, after: &str) {
    let log = proxy.log();
    assert!(!log.contains("panicked"), "the proxy panicked (after {after}):\n{log}");
}

#[test]
fn protocol_garbage_gets_a_clean_4xx_and_the_proxy_keeps_serving() {
    let f = Fixture::start();
    let host = f.host();
    let plain = |ua: &str| vec![header("host", host.clone()), header("user-agent", ua), header("connection", "close")];

    // A head larger than the 64 KiB limit, as one huge header or as many.
    let mut huge = plain("malformed-huge-header");
    huge.push(header("x-padding", "a".repeat(100 * 1024)));
    let reply = exchange(f.proxy.addr, &raw_request("GET /malformed/canary HTTP/1.1", &huge, b""));
    f.assert_refused_by_http(&reply, &[431, 400], "malformed-huge-header", "a 100 KiB header");
    let mut many = plain("malformed-many-headers");
    many.extend((0..500).map(|i| header(&format!("x-h{i}"), "v")));
    let reply = exchange(f.proxy.addr, &raw_request("GET /malformed/canary HTTP/1.1", &many, b""));
    f.assert_refused_by_http(&reply, &[431, 400], "malformed-many-headers", "500 headers");

    // Framing that contradicts itself.
    let mut two_lengths = plain("malformed-two-lengths");
    two_lengths.extend([header("content-length", "5"), header("content-length", "6")]);
    let reply = exchange(f.proxy.addr, &raw_request("PUT /malformed/x HTTP/1.1", &two_lengths, b"hello!"));
    f.assert_refused_by_http(&reply, &[400], "malformed-two-lengths", "two different Content-Lengths");
    let mut not_chunked = plain("malformed-te-gzip");
    not_chunked.extend([header("content-length", "5"), header("transfer-encoding", "gzip")]);
    let reply = exchange(f.proxy.addr, &raw_request("PUT /malformed/x HTTP/1.1", &not_chunked, b"hello"));
    f.assert_refused_by_http(&reply, &[400], "malformed-te-gzip", "Transfer-Encoding other than chunked");
    let mut te_http10 = plain("malformed-te-http10");
    te_http10.push(header("transfer-encoding", "chunked"));
    let reply =
        exchange(f.proxy.addr, &raw_request("PUT /malformed/x HTTP/1.0", &te_http10, b"5\r\nhello\r\n0\r\n\r\n"));
    f.assert_refused_by_http(&reply, &[400], "malformed-te-http10", "Transfer-Encoding in HTTP/1.0");

    // Content-Length and Transfer-Encoding: chunked together. hyper does
    // what RFC 9112 §6.3 allows instead of a 400: chunked wins, the
    // Content-Length is dropped (so it is never forwarded) and the
    // connection closes after the answer. The request reaches our code
    // (here: unsigned, so AccessDenied). What would be smuggled if the
    // Content-Length were believed — a second request after the
    // chunked body's end — is never served.
    let smuggled = format!("GET /{BUCKET}/smuggled HTTP/1.1\r\nhost: {host}\r\nuser-agent: malformed-smuggled\r\n\r\n");
    let mut both = plain("malformed-cl-te");
    both.retain(|(n, _)| n != "connection");
    both.extend([header("content-length", "5"), header("transfer-encoding", "chunked")]);
    let body = format!("0\r\n\r\n{smuggled}");
    let reply = exchange(f.proxy.addr, &raw_request(&format!("PUT /{BUCKET}/cl-te HTTP/1.1"), &both, body.as_bytes()));
    assert_eq!(
        reply.responses(),
        1,
        "one answer, then the connection closes: {:?}",
        String::from_utf8_lossy(&reply.raw)
    );
    f.assert_denied(&reply, 403, "AccessDenied", "Content-Length with Transfer-Encoding: chunked");
    let ledger = f.proxy.ledger();
    assert!(!ledger.iter().any(|l| l["user_agent"] == "malformed-smuggled"), "the smuggled request was served");

    // Not HTTP at all: a text line, binary bytes, a space in the target.
    let reply = exchange(f.proxy.addr, b"HELLO THIS IS NOT HTTP\r\n\r\n");
    f.assert_refused_by_http(&reply, &[400], "-", "a line of text");
    let reply = exchange(f.proxy.addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
    f.assert_refused_by_http(&reply, &[400], "-", "binary garbage (a TLS hello on the plain port)");
    let reply = exchange(f.proxy.addr, &raw_request("GET /malformed/a b HTTP/1.1", &plain("malformed-space"), b""));
    f.assert_refused_by_http(&reply, &[400], "malformed-space", "a raw space in the request target");

    // Absolute-form targets: the path is what counts, and whatever host the
    // target names, the request goes to the configured upstream and nowhere
    // else (no open proxy).
    for authority in [host.as_str(), "169.254.169.254", "evil.example:8080"] {
        let path = format!("/{BUCKET}/canary");
        let headers = f.signed_headers("GET", &path, b"");
        let reply =
            exchange(f.proxy.addr, &raw_request(&format!("GET http://{authority}{path} HTTP/1.1"), &headers, b""));
        assert_eq!(
            (reply.status, reply.body.as_slice()),
            (200, CANARY),
            "absolute-form via {authority}: {}",
            reply.text()
        );
        let (start, end) = f.event(&reply, "absolute-form");
        assert_eq!((start["bucket"].as_str(), start["key"].as_str()), (Some(BUCKET), Some("canary")));
        assert_eq!(
            (end["outcome"].as_str(), end["bytes_sent"].as_u64()),
            (Some("complete"), Some(CANARY.len() as u64))
        );
    }
    // CONNECT is not a tunnel here.
    let reply =
        exchange(f.proxy.addr, &raw_request("CONNECT 169.254.169.254:80 HTTP/1.1", &plain("malformed-connect"), b""));
    f.assert_denied(&reply, 403, "AccessDenied", "CONNECT");

    // Two Authorization headers, the same one twice or two different ones,
    // on an otherwise valid signed request.
    let path = format!("/{BUCKET}/canary");
    let mut headers = f.signed_headers("GET", &path, b"");
    let authorization = headers.iter().find(|(n, _)| n == "authorization").cloned().unwrap();
    headers.push(authorization.clone());
    let reply = exchange(f.proxy.addr, &raw_request(&format!("GET {path} HTTP/1.1"), &headers, b""));
    let (start, _) = f.assert_denied(&reply, 400, "InvalidArgument", "the same Authorization header twice");
    assert!(start["principal"].is_null(), "{start}");
    let mut headers = f.signed_headers("GET", &path, b"");
    headers.push(header("authorization", authorization.1.replace("Signature=", "Signature=0")));
    let reply = exchange(f.proxy.addr, &raw_request(&format!("GET {path} HTTP/1.1"), &headers, b""));
    f.assert_denied(&reply, 400, "InvalidArgument", "two different Authorization headers");

    let mut proxy = f.proxy;
    proxy.stop();
    assert_no_panic(&proxy, "shutdown");
}

#[test]
fn odd_bucket_names_and_keys_round_trip_or_fail_cleanly() {
    let f = Fixture::start();

    // Names that are not S3 bucket names, even by the legacy rules: our
    // code answers, whether or not the request is signed.
    let too_long = "a".repeat(256);
    for bucket in ["ab", "-bad-", too_long.as_str(), "bad%20name", "bad%2Fname"] {
        let reply = f.signed("GET", &format!("/{bucket}/"), b"");
        let (start, _) = f.assert_denied(&reply, 400, "InvalidBucketName", &format!("bucket {bucket:?}"));
        assert!(start["principal"].is_null(), "refused before authentication: {start}");
    }
    // `A_B` is a legal legacy (pre-2018, us-east-1) bucket name, which S3
    // still serves: the proxy passes it on, and creating one is refused by
    // the upstream, as by S3 — still a clean S3 error, still recorded.
    let reply = f.signed("PUT", "/A_B", b"");
    assert_eq!((reply.status, reply.s3_code().as_deref()), (400, Some("InvalidBucketName")), "{}", reply.text());
    let (start, end) = f.event(&reply, "create bucket A_B");
    assert_eq!((start["bucket"].as_str(), end["status"].as_u64()), (Some("A_B"), Some(400)));
    f.assert_serving("create bucket A_B");

    // Keys sent encoded in every way a client might: each works end to end
    // and lands upstream under its decoded name. (SeaweedFS takes all of
    // these when sent to it directly, encoded as SigV4 canonicalises them.)
    let round_trips = [
        ("plus+raw", "plus+raw"),
        ("plus%2Bencoded", "plus+encoded"),
        ("space%20encoded", "space encoded"),
        ("at@raw", "at@raw"),
        ("at%40encoded", "at@encoded"),
        ("tilde~raw", "tilde~raw"),
        ("tilde%7Eencoded", "tilde~encoded"),
        ("slash%2Fencoded", "slash/encoded"),
        ("dots..inside", "dots..inside"),
        ("caf%C3%A9", "café"),
        ("dir/with%3Dequals%26amp", "dir/with=equals&amp"),
    ];
    for (raw, decoded) in round_trips {
        let path = format!("/{BUCKET}/{raw}");
        let body = format!("the object sent as {raw}").into_bytes();
        let put = f.signed("PUT", &path, &body);
        assert_eq!(put.status, 200, "PUT {raw}: {}", put.text());
        let get = f.signed("GET", &path, b"");
        assert_eq!((get.status, get.body.as_slice()), (200, body.as_slice()), "GET {raw}: {}", get.text());
        let (start, end) = f.event(&get, raw);
        assert_eq!(start["key"], decoded, "the ledger names the decoded key: {start}");
        assert_eq!(end["bytes_sent"], body.len(), "{end}");
        let direct = f.upstream_get(decoded);
        assert_eq!((direct.status, direct.body), (200, body), "{raw} is stored upstream as {decoded:?}");
    }

    // Keys our code refuses: not UTF-8 once decoded, or not validly
    // percent-encoded (S3 answers InvalidURI to both).
    for raw in ["bad%C3%28utf8", "bad%FF", "bad%zz", "bad%2", "bad%"] {
        let reply = f.signed("GET", &format!("/{BUCKET}/{raw}"), b"");
        let (start, _) = f.assert_denied(&reply, 400, "InvalidURI", &format!("key {raw:?}"));
        assert!(start["key"].is_null(), "no key is made up for {raw}: {start}");
    }

    // Keys with `.` or `..` segments, however encoded: an upstream could
    // resolve them to another object than the one recorded, so our code
    // refuses them and asks the upstream nothing.
    for raw in ["../escape", "dir/../../escape", "%2E%2E/escape", "dir%2F..%2Fescape", "./here", "dir/."] {
        let reply = f.signed("PUT", &format!("/{BUCKET}/{raw}"), b"never stored");
        let (start, _) = f.assert_denied(&reply, 400, "InvalidArgument", &format!("key {raw:?}"));
        assert!(start["key"].is_null() && start["bucket"].is_null(), "nothing made up for {raw}: {start}");
    }

    // A key SeaweedFS refuses (a NUL): the upstream's own S3 error comes
    // back, recorded with the status sent.
    {
        let raw = "nul%00byte";
        let reply = f.signed("PUT", &format!("/{BUCKET}/{raw}"), b"never stored");
        assert_eq!(reply.status, 400, "{raw}: {}", reply.text());
        assert!(reply.s3_code().is_some(), "{raw}: an S3 XML error: {}", reply.text());
        let (start, end) = f.event(&reply, raw);
        assert_eq!((start["bucket"].as_str(), end["status"].as_u64()), (Some(BUCKET), Some(400)), "{start} {end}");
        f.assert_serving(raw);
    }

    let mut proxy = f.proxy;
    proxy.stop();
    assert_no_panic(&proxy, "shutdown");
}

/// What a key holder (or whoever holds a presigned URL) sends beyond what
/// was signed does not reach the upstream, and what the ledger names is what
/// the upstream did: headers the signature does not cover are refused,
/// percent-encoded parameter names mean what they decode to, the copy source
/// is recorded.
#[test]
fn requests_do_exactly_what_was_signed_and_are_recorded_as_such() {
    let f = Fixture::start();
    let host = f.host();
    let upload = format!("/{BUCKET}/upload.bin");

    // A presigned PUT URL (signed headers: host) with an added
    // x-amz-copy-source: today's S3 refuses it, and so do we; the upstream
    // copies nothing. The attempt is recorded as the CopyObject it would be.
    let url = presigned_path("PUT", &host, &upload, f.credentials());
    let smuggle = |extra: &[(String, String)]| {
        let mut headers =
            vec![header("host", host.clone()), header("content-length", "0"), header("connection", "close")];
        headers.extend_from_slice(extra);
        exchange(f.proxy.addr, &raw_request(&format!("PUT {url} HTTP/1.1"), &headers, b""))
    };
    let copy = header("x-amz-copy-source", format!("{BUCKET}/canary"));
    let reply = smuggle(std::slice::from_ref(&copy));
    let (start, _) = f.assert_denied(&reply, 403, "AccessDenied", "presigned PUT + unsigned x-amz-copy-source");
    assert!(reply.text().contains("not signed"), "{}", reply.text());
    assert_eq!(start["principal"], "mallory", "{start}");
    assert_eq!((start["operation"].as_str(), start["key"].as_str()), (Some("CopyObject"), Some("upload.bin")));
    assert_eq!(start["copy_source"], serde_json::json!({"bucket": BUCKET, "key": "canary", "version_id": null}));
    assert_eq!(f.upstream_get("upload.bin").status, 404, "the upstream copied nothing");
    // The same with the header given as a query parameter: a presigned URL's
    // parameters are all signed, so the signature breaks.
    let tampered = format!("{url}&x-amz-copy-source={BUCKET}%2Fcanary");
    let headers = vec![header("host", host.clone()), header("content-length", "0"), header("connection", "close")];
    let reply = exchange(f.proxy.addr, &raw_request(&format!("PUT {tampered} HTTP/1.1"), &headers, b""));
    f.assert_denied(&reply, 403, "SignatureDoesNotMatch", "presigned PUT + x-amz-copy-source parameter");
    assert_eq!(f.upstream_get("upload.bin").status, 404, "the upstream copied nothing");
    // The URL itself works, for what it was made for.
    let headers = vec![header("host", host.clone()), header("content-length", "5"), header("connection", "close")];
    let reply = exchange(f.proxy.addr, &raw_request(&format!("PUT {url} HTTP/1.1"), &headers, b"hello"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(f.upstream_get("upload.bin").body, b"hello");

    // A presigned URL's x-amz-* parameters stand for headers, as S3 reads
    // them (the JS SDK's presigner puts metadata there): they reach the
    // upstream as headers.
    let url = presigned_path("PUT", &host, &format!("/{BUCKET}/meta.bin?x-amz-meta-team=ml"), f.credentials());
    let headers = vec![header("host", host.clone()), header("content-length", "2"), header("connection", "close")];
    let reply = exchange(f.proxy.addr, &raw_request(&format!("PUT {url} HTTP/1.1"), &headers, b"ok"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let stored = f.upstream_get("meta.bin");
    assert_eq!((stored.body.as_slice(), stored.header("x-amz-meta-team")), (b"ok".as_slice(), Some("ml")));

    // Header auth: an x-amz-* header outside SignedHeaders is refused too.
    let target = format!("/{BUCKET}/smuggled.bin");
    let mut headers = f.signed_headers("PUT", &target, b"");
    headers.push(copy.clone());
    let reply = exchange(f.proxy.addr, &raw_request(&format!("PUT {target} HTTP/1.1"), &headers, b""));
    let (start, _) = f.assert_denied(&reply, 403, "AccessDenied", "signed PUT + unsigned x-amz-copy-source");
    assert_eq!(start["operation"], "CopyObject", "{start}");
    assert_eq!(f.upstream_get("smuggled.bin").status, 404, "the upstream copied nothing");

    // A CopyObject that signed its source is served, and the source is on record.
    let target = format!("/{BUCKET}/copied.bin");
    let mut headers = vec![header("host", host.clone()), copy.clone()];
    let source = format!("{BUCKET}/canary");
    headers.extend(sigv4_headers("PUT", &host, &target, f.credentials(), b"", &[("x-amz-copy-source", &source)]));
    headers.extend([header("content-length", "0"), header("connection", "close")]);
    let reply = exchange(f.proxy.addr, &raw_request(&format!("PUT {target} HTTP/1.1"), &headers, b""));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (start, end) = f.event(&reply, "signed CopyObject");
    assert_eq!(start["operation"], "CopyObject");
    assert_eq!(start["copy_source"], serde_json::json!({"bucket": BUCKET, "key": "canary", "version_id": null}));
    assert_eq!(end["outcome"], "complete");
    assert_eq!(f.upstream_get("copied.bin").body, CANARY);

    // Parameter names mean what they decode to, for the record as for the
    // upstream: `%74agging` is a tagging read (the answer is tags, not the
    // object), `version%49d` a version id.
    let reply = f.signed("GET", &format!("/{BUCKET}/canary?%74agging"), b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().contains("<Tagging") && reply.body != CANARY, "{}", reply.text());
    let (start, _) = f.event(&reply, "%74agging");
    assert_eq!(start["operation"], "GetObjectTagging", "{start}");
    // (SeaweedFS ignores a version id on a bucket without versioning, so
    // only the record can be checked here; that the forwarded query is the
    // parsed one is checked in the proxy's own tests.)
    let reply = f.signed("GET", &format!("/{BUCKET}/canary?version%49d=no-such-version"), b"");
    let (start, _) = f.event(&reply, "version%49d");
    assert_eq!(
        (start["operation"].as_str(), start["version_id"].as_str()),
        (Some("GetObject"), Some("no-such-version"))
    );

    // Parameters S3 does not define, and one sent twice, are refused: the
    // proxy cannot know what an upstream would make of them.
    for (query, case) in [("frobnicate=1", "an unknown parameter"), ("tagging&%74agging", "a repeated parameter")] {
        let reply = f.signed("GET", &format!("/{BUCKET}/canary?{query}"), b"");
        let (start, _) = f.assert_denied(&reply, 400, "InvalidArgument", case);
        assert_eq!(start["principal"], "mallory", "refused after authentication: {start}");
    }
    // A method and parameters that make no S3 operation.
    let reply = f.signed("POST", &format!("/{BUCKET}/canary"), b"");
    f.assert_denied(&reply, 501, "NotImplemented", "POST on an object without a sub-resource");

    let mut proxy = f.proxy;
    proxy.stop();
    assert_no_panic(&proxy, "shutdown");
}
