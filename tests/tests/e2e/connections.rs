//! What an unauthenticated client can hold, against the real binary with
//! short timeouts: connections that send no whole request head are closed
//! within the header timeout from accept (plain, HTTP/2 cleartext, TLS),
//! idle keep-alive connections after the idle timeout while a slow
//! download that keeps moving is left alone; connections over the
//! per-address cap are closed at once while others are served; the open
//! health probes tell nothing and write nothing.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use aws_sigv4::http_request::SignableBody;
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use egress_e2e::sigv4::Signer;
use serde_json::Value;

const BUCKET: &str = "connections";
/// Seconds, as given to the proxy.
const HEADER_SECS: u64 = 1;
const IDLE_SECS: u64 = 3;
/// Time allowed past a deadline for the close to be seen (timers, a
/// debug build, two busy cores; an HTTP/2 GOAWAY gets a second).
const SLACK: Duration = Duration::from_millis(1_800);

/// A signed request to the proxy for `path`, keep-alive unless `close`.
fn signed_request(proxy: &Proxy, method: &str, path: &str, body: &[u8], close: bool) -> Vec<u8> {
    let key = proxy.key();
    let host = proxy.addr.to_string();
    let url = format!("http://{host}{path}");
    let headers = Signer::new(&key.access_key_id, &key.secret_access_key)
        .headers(method, &url, &[("host", host.as_str())], SignableBody::Bytes(body))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in &headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    request
}

/// Reads one response head; returns its status and Content-Length.
fn read_head(stream: &mut TcpStream) -> (u16, usize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the head ended early: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = text[9..12].parse().unwrap();
    let length = text.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    (status, length)
}

/// Sends a signed request on a new connection and reads the whole answer.
fn exchange(proxy: &Proxy, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(proxy.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(&signed_request(proxy, method, path, body, true)).unwrap();
    let (status, length) = read_head(&mut stream);
    let mut answer = vec![0u8; length];
    stream.read_exact(&mut answer).unwrap();
    (status, answer)
}

/// How long until the server closes `stream` (EOF or reset), reading and
/// dropping whatever it sends; `None` if still open after `within`.
fn closed_within(stream: &mut TcpStream, since: Instant, within: Duration) -> Option<Duration> {
    let mut sink = [0u8; 4096];
    loop {
        let left = within.checked_sub(since.elapsed())?;
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        match stream.read(&mut sink) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            Err(_) => return Some(since.elapsed()),
        }
    }
}

/// A connection to `to` from the loopback address `source`.
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

/// A proxy in front of a fresh SeaweedFS with a principal and a bucket.
fn start(extra_args: &[&str], tls_certs: Option<std::path::PathBuf>) -> (SeaweedFs, Proxy) {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            principals: vec!["reader".into()],
            extra_args: extra_args.iter().map(|&a| a.to_owned()).collect(),
            tls_certs,
            ..ProxyOptions::default()
        },
    );
    let (status, answer) = exchange(&proxy, "PUT", &format!("/{BUCKET}"), b"");
    assert_eq!(status, 200, "create the bucket: {}", String::from_utf8_lossy(&answer));
    (upstream, proxy)
}

fn assert_closed_in_time(what: &str, closed: Option<Duration>, deadline: Duration) {
    let closed = closed.unwrap_or_else(|| panic!("{what}: still open {:?} after accept", deadline + SLACK));
    assert!(
        closed + Duration::from_millis(150) >= deadline,
        "{what}: closed after {closed:?}, before its deadline {deadline:?}"
    );
}

#[test]
fn connections_that_ask_for_nothing_are_closed_and_busy_ones_are_not() {
    let certs = tempfile::tempdir().unwrap();
    let made = egress_e2e::run(&["certs", "--out", certs.path().to_str().unwrap(), "--hosts", "localhost,127.0.0.1"]);
    assert_eq!(made.code, 0, "{made:?}");
    let header = Duration::from_secs(HEADER_SECS);
    let idle = Duration::from_secs(IDLE_SECS);
    let (_upstream, proxy) = start(
        &["--header-read-timeout-secs", &HEADER_SECS.to_string(), "--idle-timeout-secs", &IDLE_SECS.to_string()],
        Some(certs.path().to_path_buf()),
    );
    // Larger than what the socket buffers hold, read slowly: about 5 s.
    let large: Vec<u8> = (0..6 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    assert_eq!(exchange(&proxy, "PUT", &format!("/{BUCKET}/large"), &large).0, 200);
    assert_eq!(exchange(&proxy, "PUT", &format!("/{BUCKET}/small"), b"small").0, 200);

    std::thread::scope(|s| {
        s.spawn(|| {
            let accepted = Instant::now();
            let mut silent = TcpStream::connect(proxy.addr).unwrap();
            assert_closed_in_time("a silent connection", closed_within(&mut silent, accepted, header + SLACK), header);
        });
        s.spawn(|| {
            let accepted = Instant::now();
            let mut h2c = TcpStream::connect(proxy.addr).unwrap();
            h2c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
            assert_closed_in_time(
                "h2c with only the preface",
                closed_within(&mut h2c, accepted, header + SLACK),
                header,
            );
        });
        s.spawn(|| {
            // A head that keeps trickling in never completes in time.
            let accepted = Instant::now();
            let mut slow = TcpStream::connect(proxy.addr).unwrap();
            slow.write_all(b"GET /connections/large HTTP/1.1\r\n").unwrap();
            let mut closed = None;
            for i in 0..40 {
                std::thread::sleep(Duration::from_millis(100));
                if slow.write_all(format!("x-slow-{i}: 1\r\n").as_bytes()).is_err() {
                    break;
                }
                if let Some(at) = closed_within(&mut slow, accepted, accepted.elapsed() + Duration::from_millis(1)) {
                    closed = Some(at);
                    break;
                }
            }
            let closed = closed.or_else(|| closed_within(&mut slow, accepted, header + SLACK));
            assert_closed_in_time("a trickling head", closed, header);
        });
        s.spawn(|| {
            // TLS with HTTP/2 by ALPN: the handshake done, the preface sent, then nothing.
            let out = python(
                r#"
import json, os, socket, ssl, time
ctx = ssl.create_default_context(cafile=os.environ["CA"])
ctx.set_alpn_protocols(["h2"])
started = time.monotonic()
tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(os.environ["PORT"]))), server_hostname="localhost")
alpn = tls.selected_alpn_protocol()
tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
tls.settimeout(float(os.environ["WITHIN"]))
closed = None
try:
    while tls.recv(4096):
        pass
    closed = time.monotonic() - started
except (ConnectionError, ssl.SSLError):
    closed = time.monotonic() - started
except socket.timeout:
    pass
print(json.dumps({"alpn": alpn, "closed": closed}))
"#,
                &[
                    ("CA", certs.path().join("ca.pem").to_str().unwrap()),
                    ("PORT", &proxy.tls_addr.unwrap().port().to_string()),
                    ("WITHIN", &(header + SLACK).as_secs_f64().to_string()),
                ],
            );
            assert_eq!(out["alpn"], "h2", "{out}");
            let closed = out["closed"].as_f64().map(Duration::from_secs_f64);
            assert_closed_in_time("TLS h2 with only the preface", closed, header);
        });
        s.spawn(|| {
            // Keep-alive: a request, then nothing. Idle from the end of the
            // answer: closed after the idle timeout, not the header timeout.
            let mut stream = TcpStream::connect(proxy.addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream.write_all(&signed_request(&proxy, "GET", &format!("/{BUCKET}/small"), b"", false)).unwrap();
            let (status, length) = read_head(&mut stream);
            assert_eq!((status, length), (200, 5));
            let mut body = vec![0u8; length];
            stream.read_exact(&mut body).unwrap();
            let answered = Instant::now();
            assert_closed_in_time(
                "an idle keep-alive connection",
                closed_within(&mut stream, answered, idle + SLACK),
                idle,
            );
        });
        s.spawn(|| {
            // A download read slowly, for longer than the idle timeout, is
            // not cut; once it is done the connection idles out.
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(64 * 1024).unwrap();
            socket.connect(&proxy.addr.into()).unwrap();
            let mut stream: TcpStream = socket.into();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream.write_all(&signed_request(&proxy, "GET", &format!("/{BUCKET}/large"), b"", false)).unwrap();
            let started = Instant::now();
            let (status, length) = read_head(&mut stream);
            assert_eq!((status, length), (200, large.len()));
            let mut body = Vec::with_capacity(length);
            let mut chunk = vec![0u8; 64 * 1024];
            while body.len() < length {
                std::thread::sleep(Duration::from_millis(50));
                let want = chunk.len().min(length - body.len());
                let n = stream.read(&mut chunk[..want]).unwrap();
                assert!(n > 0, "the download was cut after {} bytes, {:?} in", body.len(), started.elapsed());
                body.extend_from_slice(&chunk[..n]);
            }
            assert!(
                started.elapsed() > idle + Duration::from_secs(1),
                "slower than the idle timeout: {:?}",
                started.elapsed()
            );
            assert!(body == large, "the bytes of the object");
            // (Possibly sooner than the idle timeout from here: the last of
            // the body may have waited in the kernel's buffers.)
            let closed = closed_within(&mut stream, Instant::now(), idle + SLACK);
            assert!(closed.is_some(), "the connection idles out after the download");
        });
    });

    // Still serving.
    let (status, body) = exchange(&proxy, "GET", &format!("/{BUCKET}/large"), b"");
    assert_eq!((status, body.len()), (200, large.len()));
}

#[test]
fn connections_over_the_per_address_cap_are_closed_at_once() {
    let (_upstream, proxy) = start(&["--max-connections-per-ip", "3"], None);
    assert_eq!(exchange(&proxy, "PUT", &format!("/{BUCKET}/small"), b"small").0, 200);
    let crowd = Ipv4Addr::new(127, 0, 0, 2);
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect_from(crowd, proxy.addr)).collect();
    std::thread::sleep(Duration::from_millis(200));

    for attempt in 0..2 {
        let tried = Instant::now();
        let mut over = connect_from(crowd, proxy.addr);
        let closed = closed_within(&mut over, tried, Duration::from_secs(2));
        assert!(
            closed.is_some_and(|at| at < Duration::from_secs(1)),
            "over the cap ({attempt}), closed at once: {closed:?}"
        );
    }
    for stream in &mut held {
        assert_eq!(
            closed_within(stream, Instant::now(), Duration::from_millis(300)),
            None,
            "the first three stay open"
        );
    }
    // Another address is served meanwhile.
    assert_eq!(exchange(&proxy, "GET", &format!("/{BUCKET}/small"), b""), (200, b"small".to_vec()));
    // One of the three gone, there is room again.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut again = connect_from(crowd, proxy.addr);
    assert_eq!(closed_within(&mut again, Instant::now(), Duration::from_millis(500)), None, "admitted again");
    let log = proxy.log();
    assert!(log.contains("max_connections_per_ip"), "the refusal is logged: {log}");
    assert_eq!(log.matches("connection refused").count(), 1, "logged once a minute per address: {log}");
}

#[test]
fn the_open_health_probes_tell_nothing_and_write_nothing() {
    // No upstream needed: refused anonymous requests are traffic enough.
    let proxy = Proxy::start_with_upstream("http://127.0.0.1:9", ProxyOptions::default());
    let probe = |path: &str| -> (u16, Value) {
        let mut stream = TcpStream::connect(proxy.admin_addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", proxy.admin_addr).unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head[9..12].parse().unwrap(), serde_json::from_str(body).unwrap())
    };
    let anonymous_get = || {
        let mut stream = TcpStream::connect(proxy.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(stream, "GET /{BUCKET}/x HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", proxy.addr).unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    };
    anonymous_get();

    assert_eq!(probe("/healthz"), (200, serde_json::json!({ "status": "ok" })), "no version, count or head");
    let health: Value = serde_json::from_str(&proxy.admin_get("/healthz")).unwrap();
    assert!(health["ledger"]["head"].as_str().is_some_and(|h| h.len() == 64), "with the token: {health}");

    let checkpoint_files = || std::fs::read_dir(proxy.data_dir.join("checkpoints")).unwrap().count();
    let checkpoint_lines = || proxy.ledger().iter().filter(|l| l["kind"] == "checkpoint").count();
    let (files, lines) = (checkpoint_files(), checkpoint_lines());
    for _ in 0..10 {
        anonymous_get();
        for _ in 0..5 {
            assert_eq!(probe("/readyz"), (200, serde_json::json!({ "status": "ready" })));
        }
    }
    assert_eq!((checkpoint_files(), checkpoint_lines()), (files, lines), "50 probes, no checkpoint");
}

#[test]
fn admin_connections_that_ask_for_nothing_are_closed() {
    let proxy = Proxy::start_with_upstream(
        "http://127.0.0.1:9",
        ProxyOptions {
            extra_args: vec!["--header-read-timeout-secs".into(), HEADER_SECS.to_string()],
            ..ProxyOptions::default()
        },
    );
    let deadline = Duration::from_secs(HEADER_SECS);
    // Silent from accept.
    let accepted = Instant::now();
    let mut silent = TcpStream::connect(proxy.admin_addr).unwrap();
    // Idle after an answer on a keep-alive connection.
    let mut idle = TcpStream::connect(proxy.admin_addr).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n", proxy.admin_addr).unwrap();
    let (status, _) = read_head(&mut idle);
    assert_eq!(status, 200);
    let answered = Instant::now();
    assert_closed_in_time("silent admin connection", closed_within(&mut silent, accepted, deadline + SLACK), deadline);
    assert_closed_in_time("idle admin connection", closed_within(&mut idle, answered, deadline + SLACK), deadline);
    // The admin API still answers.
    let health: Value = serde_json::from_str(&proxy.admin_get("/healthz")).unwrap();
    assert_eq!(health["status"], "ok");
}
