//! `bytes_acked`: what the client's TCP stack acknowledged, next to
//! `bytes_sent` (`proxy/src/acked.rs`). A client with a 64 KiB receive
//! buffer reads 256 KiB of a 16 MiB object slowly and closes, over plain
//! HTTP and over TLS: the ledger's acknowledged figure is at most what it
//! read plus its receive buffer plus a slack for the response head and the
//! TLS framing, while `bytes_sent` (what left the process) is larger. A
//! client that reads everything has most of it acknowledged by the time
//! the transfer ends (the rest is still in flight then).

use egress_e2e::pseudo_random;
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::Value;

const OBJECT: usize = 16 * 1024 * 1024;
const READ: u64 = 256 * 1024;
/// The response head (under 1 KiB) and TLS 1.3's framing (22 bytes per
/// record of up to 16 KiB: under 400 bytes for 272 KiB), rounded up.
const SLACK: u64 = 16 * 1024;

/// Presigns a GET, then reads it through a raw socket whose receive buffer
/// is 64 KiB: `READ` bytes of body in 16 KiB pieces 20 ms apart, then
/// closes. Prints the request id, the receive buffer the kernel granted,
/// and how many body bytes were read.
const SLOW_READER: &str = r#"
import os, json, socket, ssl, time
import boto3
from botocore.config import Config

s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}))
url = s3.generate_presigned_url("get_object", Params={"Bucket": "acked", "Key": "big"}, ExpiresIn=300)
path = url.split(os.environ["ENDPOINT"], 1)[1]
read_limit, whole = int(os.environ["READ"]), os.environ["WHOLE"] == "1"

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
sock.connect(("127.0.0.1", int(os.environ["PORT"])))
if os.environ.get("CA"):
    ctx = ssl.create_default_context(cafile=os.environ["CA"])
    sock = ctx.wrap_socket(sock, server_hostname="localhost")
rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {os.environ['HOST']}\r\n\r\n".encode())
data = b""
while b"\r\n\r\n" not in data:
    data += sock.recv(16 * 1024)
head, body = data.split(b"\r\n\r\n", 1)
lines = head.decode().split("\r\n")
headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
read = len(body)
while (whole and read < int(headers["content-length"])) or (not whole and read < read_limit):
    piece = sock.recv(16 * 1024)
    if not piece:
        break
    read += len(piece)
    if not whole:
        time.sleep(0.02)
time.sleep(0.3)  # let the proxy's sending settle before the close
sock.close()
print(json.dumps({"status": lines[0], "req": headers["x-egress-request-id"], "rcvbuf": rcvbuf, "read": read}))
"#;

fn slow_read(proxy: &Proxy, port: u16, ca: Option<&str>, whole: bool) -> Value {
    let key = proxy.key();
    let host = if ca.is_some() { format!("localhost:{port}") } else { format!("127.0.0.1:{port}") };
    let scheme = if ca.is_some() { "https" } else { "http" };
    python(
        SLOW_READER,
        &[
            ("ENDPOINT", &format!("{scheme}://{host}")),
            ("HOST", &host),
            ("PORT", &port.to_string()),
            ("CA", ca.unwrap_or("")),
            ("READ", &READ.to_string()),
            ("WHOLE", if whole { "1" } else { "0" }),
            ("AK", &key.access_key_id),
            ("SK", &key.secret_access_key),
        ],
    )
}

/// The `end` record of `req`, once the proxy has written it.
fn end_of(proxy: &Proxy, req: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some((_, end)) = proxy.events_where(|start| start["req"] == req).into_iter().next()
            && !end.is_null()
        {
            return end;
        }
        assert!(std::time::Instant::now() < deadline, "no end record for {req}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// An anonymous GET of the object (refused: no policy allows anonymous
/// reads); its request id.
fn anonymous_get(addr: std::net::SocketAddr) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /acked/big HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .lines()
        .find_map(|line| line.strip_prefix("x-egress-request-id: "))
        .unwrap_or_else(|| panic!("no request id in {answer}"))
        .trim()
        .to_owned()
}

#[test]
fn a_client_that_reads_part_and_closes_is_recorded_with_what_its_tcp_stack_acknowledged() {
    let upstream = SeaweedFs::start();
    let certs = tempfile::tempdir().unwrap();
    let made = egress_e2e::run(&["certs", "--out", certs.path().to_str().unwrap(), "--hosts", "localhost,127.0.0.1"]);
    assert_eq!(made.code, 0, "{made:?}");
    let proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            principals: vec!["reader".into()],
            tls_certs: Some(certs.path().to_path_buf()),
            ..ProxyOptions::default()
        },
    );
    let key = proxy.key();
    let object = pseudo_random(OBJECT, 3);
    let path = certs.path().join("big");
    std::fs::write(&path, &object).unwrap();
    let put = python(
        r#"
import os, json, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="acked")
s3.upload_file(os.environ["FILE"], "acked", "big")
print(json.dumps({"size": s3.head_object(Bucket="acked", Key="big")["ContentLength"]}))
"#,
        &[
            ("ENDPOINT", &proxy.endpoint()),
            ("AK", &key.access_key_id),
            ("SK", &key.secret_access_key),
            ("FILE", path.to_str().unwrap()),
        ],
    );
    assert_eq!(put["size"], OBJECT);

    let ca = certs.path().join("ca.pem");
    let tls_port = proxy.tls_addr.expect("TLS listener").port();
    for (what, port, ca) in [("plain", proxy.addr.port(), None), ("TLS", tls_port, Some(ca.to_str().unwrap()))] {
        let partial = slow_read(&proxy, port, ca, false);
        assert!(partial["status"].as_str().unwrap().contains(" 200 "), "{what}: {partial}");
        let read = partial["read"].as_u64().unwrap();
        let rcvbuf = partial["rcvbuf"].as_u64().unwrap();
        assert!((READ..READ + 32 * 1024).contains(&read), "{what}: {partial}");
        let end = end_of(&proxy, partial["req"].as_str().unwrap());
        assert_eq!(end["outcome"], "client_abort", "{what}: {end}");
        let acked = end["bytes_acked"].as_u64().unwrap_or_else(|| panic!("{what}: no bytes_acked in {end}"));
        let sent = end["bytes_sent"].as_u64().unwrap();
        assert!(acked >= read, "{what}: the client read {read} bytes; acknowledged only {acked}: {end}");
        assert!(
            acked <= read + rcvbuf + SLACK,
            "{what}: acknowledged {acked} > read {read} + receive buffer {rcvbuf} + {SLACK}: {end}"
        );
        assert!(acked <= sent, "{what}: {end}");
        eprintln!("{what}: read {read}, receive buffer {rcvbuf}, bytes_acked {acked}, bytes_sent {sent}");

        let whole = slow_read(&proxy, port, ca, true);
        assert_eq!(whole["read"], OBJECT, "{what}: {whole}");
        let end = end_of(&proxy, whole["req"].as_str().unwrap());
        assert_eq!((&end["outcome"], &end["bytes_sent"]), (&"complete".into(), &OBJECT.into()), "{what}: {end}");
        let acked = end["bytes_acked"].as_u64().unwrap_or_else(|| panic!("{what}: no bytes_acked in {end}"));
        // Read as the last bytes are handed over: what was still in the
        // proxy's buffers and in flight is not acknowledged yet (245 KiB in
        // one run, megabytes at most).
        assert!(acked <= OBJECT as u64 && acked >= OBJECT as u64 / 2, "{what}: {end}");
    }

    // An answer the proxy makes itself is recorded before it is written:
    // no acknowledged figure rather than a misleading 0.
    let refused = anonymous_get(proxy.addr);
    let end = end_of(&proxy, &refused);
    assert_eq!((&end["status"], &end["outcome"]), (&403.into(), &"denied".into()), "{end}");
    assert!(end.get("bytes_acked").is_none(), "{end}");

    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}
