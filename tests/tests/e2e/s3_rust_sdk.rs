//! The Rust `aws-sdk-s3` as an independent client through the proxy to a
//! real S3 server (`SeaweedFS`, `SigV4` enforced), path-style and
//! virtual-hosted. A body from a file goes out, over plain HTTP, as
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks the proxy
//! verifies one by one and re-frames for the upstream, with the client's
//! CRC32 trailer. Then a full GET, range GETs and a listing; bytes compared,
//! every request in the ledger with the bytes the SDK received. Also a
//! multipart upload whose parts are file ranges (signed chunks too), and a
//! put over HTTPS, where the SDK sends an unsigned trailer instead.
//!
//! Virtual-hosted addressing needs `<bucket>.s3.localhost` to reach the
//! proxy, and `*.localhost` does not resolve on every machine (it does not
//! with glibc's `files dns` and no such entry in /etc/hosts). So the SDK
//! builds and signs its requests for `http://<bucket>.s3.localhost:PORT`,
//! and an interceptor, after signing, points the connection at 127.0.0.1
//! while the `Host` header keeps the virtual-hosted name: on the wire it is
//! the request the SDK made, as a DNS entry for the name would give.

use crate::sdk;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{ChecksumMode, CompletedMultipartUpload, CompletedPart};
use egress_e2e::pseudo_random;
use egress_e2e::servers::{Key, Proxy, ProxyOptions, SeaweedFs};
use serde_json::Value;

/// One HTTP exchange as it went over the wire.
#[derive(Debug, Clone, Default)]
struct Wire {
    method: String,
    uri: String,
    host: Option<String>,
    content_sha256: Option<String>,
    content_encoding: Option<String>,
    trailer: Option<String>,
    decoded_length: Option<String>,
    status: Option<u16>,
    egress_id: Option<String>,
}

/// Records every request the SDK sends and our request id from its
/// response; optionally sends every connection to `connect_to`, keeping the
/// signed host name in `Host`.
#[derive(Debug, Clone, Default)]
struct Recorder {
    wire: Arc<Mutex<Vec<Wire>>>,
    connect_to: Option<SocketAddr>,
}

impl Recorder {
    fn take(&self) -> Vec<Wire> {
        std::mem::take(&mut *self.wire.lock().expect("recorder lock"))
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "egress-e2e-wire-recorder"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(addr) = self.connect_to else { return Ok(()) };
        let request = context.request_mut();
        let uri = request.uri().to_owned();
        let (scheme, rest) = uri.split_once("://").ok_or("the SDK sends absolute URIs")?;
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(split);
        request.headers_mut().insert("host", authority.to_owned());
        request.set_uri(format!("{scheme}://{addr}{path_and_query}"))?;
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let header = |name: &str| request.headers().get(name).map(str::to_owned);
        self.wire.lock().expect("recorder lock").push(Wire {
            method: request.method().to_owned(),
            uri: request.uri().to_owned(),
            host: header("host"),
            content_sha256: header("x-amz-content-sha256"),
            content_encoding: header("content-encoding"),
            trailer: header("x-amz-trailer"),
            decoded_length: header("x-amz-decoded-content-length"),
            ..Wire::default()
        });
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        let mut wire = self.wire.lock().expect("recorder lock");
        let last = wire.last_mut().ok_or("a response without a request")?;
        last.status = Some(response.status().as_u16());
        last.egress_id = response.headers().get("x-egress-request-id").map(str::to_owned);
        Ok(())
    }
}

fn client(endpoint: &str, key: &Key, path_style: bool, recorder: &Recorder) -> aws_sdk_s3::Client {
    client_trusting(endpoint, key, path_style, recorder, None)
}

/// A client; with `ca_pem`, TLS trusts that CA alone.
fn client_trusting(
    endpoint: &str,
    key: &Key,
    path_style: bool,
    recorder: &Recorder,
    ca_pem: Option<&[u8]>,
) -> aws_sdk_s3::Client {
    use aws_smithy_http_client::tls;
    let mut builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring));
    if let Some(pem) = ca_pem {
        let trust = tls::TrustStore::empty().with_pem_certificate(pem.to_vec());
        builder = builder.tls_context(tls::TlsContext::builder().with_trust_store(trust).build().expect("TLS context"));
    }
    let shared = sdk::config(endpoint, key, builder.build_https());
    let config =
        aws_sdk_s3::config::Builder::from(&shared).force_path_style(path_style).interceptor(recorder.clone()).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// CRC32 (IEEE), as S3's `x-amz-checksum-crc32`: base64 of the big-endian
/// value.
fn crc32_base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [0u32; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *entry = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    let bytes = (!crc).to_be_bytes();
    let n = u32::from_be_bytes(bytes);
    let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 0x3F) as usize]);
    // 4 bytes = 32 bits: five full sextets, then 2 bits padded with zeros.
    let last = char::from(ALPHABET[((n & 0x3) << 4) as usize]);
    format!("{}{}{}{}{}{last}==", sextet(26), sextet(20), sextet(14), sextet(8), sextet(2))
}

const FILE_KEY: &str = "sdk/from file \u{fc}+1.bin";
const SMALL_KEY: &str = "sdk/small.txt";

/// What the scenario saw, for the ledger checks.
struct Seen {
    wire: Vec<Wire>,
    size: u64,
    small: u64,
}

/// Create a bucket, put a file and a small body, get it whole, get two
/// ranges, list; bytes compared on the way.
fn scenario(client: &aws_sdk_s3::Client, recorder: &Recorder, bucket: &str) -> Seen {
    let dir = tempfile::tempdir().expect("temp dir");
    let size = 5 * 1024 * 1024 + 333;
    let data = pseudo_random(size, 42);
    let path = dir.path().join("upload.bin");
    std::fs::write(&path, &data).expect("write file");
    let small = b"small body from the rust sdk\n".to_vec();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        client.create_bucket().bucket(bucket).send().await.expect("create bucket");
        let body = ByteStream::from_path(&path).await.expect("body from file");
        let put = client.put_object().bucket(bucket).key(FILE_KEY).body(body).send().await.expect("put from file");
        assert_eq!(put.checksum_crc32(), Some(crc32_base64(&data).as_str()), "the upstream has the client's CRC32");
        client
            .put_object()
            .bucket(bucket)
            .key(SMALL_KEY)
            .body(ByteStream::from(small.clone()))
            .send()
            .await
            .expect("put small");

        let get = client
            .get_object()
            .bucket(bucket)
            .key(FILE_KEY)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("get");
        assert_eq!(get.content_length(), Some(i64::try_from(size).expect("size")));
        assert_eq!(get.checksum_crc32(), Some(crc32_base64(&data).as_str()));
        let back = get.body.collect().await.expect("get body").into_bytes();
        assert_eq!(back.len(), size);
        assert!(back == data, "the object is the file, without chunk framing or trailer");

        let range =
            client.get_object().bucket(bucket).key(FILE_KEY).range("bytes=1000-1999").send().await.expect("range");
        assert_eq!(range.content_range(), Some(format!("bytes 1000-1999/{size}").as_str()));
        let part = range.body.collect().await.expect("range body").into_bytes();
        assert!(part == data[1000..2000], "range bytes");

        let suffix = client.get_object().bucket(bucket).key(FILE_KEY).range("bytes=-100").send().await.expect("suffix");
        let tail = suffix.body.collect().await.expect("suffix body").into_bytes();
        assert!(tail == data[size - 100..], "suffix range bytes");

        let small_back =
            client.get_object().bucket(bucket).key(SMALL_KEY).send().await.expect("get small").body.collect().await;
        assert!(small_back.expect("small body").into_bytes() == small);

        let list = client.list_objects_v2().bucket(bucket).prefix("sdk/").send().await.expect("list");
        let listed: Vec<(String, i64)> =
            list.contents().iter().map(|o| (o.key().unwrap_or_default().to_owned(), o.size().unwrap_or(-1))).collect();
        assert_eq!(
            listed,
            vec![
                (FILE_KEY.to_owned(), i64::try_from(size).expect("size")),
                (SMALL_KEY.to_owned(), i64::try_from(small.len()).expect("size")),
            ]
        );
    });
    Seen { wire: recorder.take(), size: size as u64, small: small.len() as u64 }
}

/// The wire exchanges and the ledger agree, request by request.
fn check_ledger(proxy: &Proxy, bucket: &str, seen: &Seen) {
    let expected: [(&str, Option<&str>, u16); 8] = [
        ("CreateBucket", None, 200),
        ("PutObject", Some(FILE_KEY), 200),
        ("PutObject", Some(SMALL_KEY), 200),
        ("GetObject", Some(FILE_KEY), 200),
        ("GetObject", Some(FILE_KEY), 206),
        ("GetObject", Some(FILE_KEY), 206),
        ("GetObject", Some(SMALL_KEY), 200),
        ("ListObjectsV2", None, 200),
    ];
    assert_eq!(seen.wire.len(), expected.len(), "one exchange per call, no retries: {:#?}", seen.wire);
    let mut events = Vec::new();
    for (wire, (operation, key, status)) in seen.wire.iter().zip(expected) {
        assert_eq!(wire.status, Some(status), "{wire:?}");
        let id = wire.egress_id.as_deref().unwrap_or_else(|| panic!("no x-egress-request-id: {wire:?}"));
        let (start, end) = proxy.event(id);
        assert_eq!(start["principal"], proxy.key().principal.as_str(), "{start}");
        assert_eq!(start["access_key_id"], proxy.key().access_key_id.as_str(), "{start}");
        assert_eq!(start["method"], wire.method.as_str(), "{start}");
        assert_eq!(start["operation"], operation, "{wire:?}\n{start}");
        assert_eq!(start["bucket"], bucket, "{start}");
        assert_eq!(start["key"].as_str(), key, "{start}");
        assert_eq!(end["status"], status, "{end}");
        assert_eq!(end["outcome"], "complete", "{end}");
        assert!(start["user_agent"].as_str().is_some_and(|ua| ua.contains("aws-sdk-rust")), "{start}");
        events.push((start, end));
    }
    let bytes = |i: usize| events[i].1["bytes_sent"].as_u64();
    assert_eq!(bytes(1), Some(0));
    assert_eq!(bytes(2), Some(0));
    assert_eq!(bytes(3), Some(seen.size), "the full GET: {:?}", events[3]);
    assert_eq!(events[3].1["object_size"], seen.size);
    assert_eq!(bytes(4), Some(1000), "{:?}", events[4]);
    assert_eq!(events[4].0["range"], "bytes=1000-1999");
    assert_eq!(events[4].1["object_size"], seen.size);
    assert_eq!(bytes(5), Some(100), "{:?}", events[5]);
    assert_eq!(events[5].0["range"], "bytes=-100");
    assert_eq!(events[5].1["object_size"], seen.size);
    assert_eq!(bytes(6), Some(seen.small));
    assert!(bytes(7).is_some_and(|b| b > 100), "the listing's XML is counted: {:?}", events[7]);

    // The put from a file went as signed chunks with a CRC32 trailer.
    let put = &seen.wire[1];
    assert_eq!(put.content_sha256.as_deref(), Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"), "{put:?}");
    assert_eq!(put.trailer.as_deref(), Some("x-amz-checksum-crc32"), "{put:?}");
    assert!(put.content_encoding.as_deref().is_some_and(|e| e.contains("aws-chunked")), "{put:?}");
    assert_eq!(put.decoded_length.as_deref(), Some(seen.size.to_string().as_str()), "{put:?}");
    assert!(seen.wire[3].uri.contains("x-id=GetObject"), "{:?}", seen.wire[3]);

    let all: Vec<Value> = proxy.ledger().into_iter().filter(|l| l["kind"] == "start").collect();
    assert_eq!(all.len(), expected.len(), "nothing else was recorded");
    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn path_style_put_from_file_get_ranges_list() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["rusty".into()], ..ProxyOptions::default() });
    let recorder = Recorder::default();
    let client = client(&proxy.endpoint(), proxy.key(), true, &recorder);
    let seen = scenario(&client, &recorder, "rust-path");
    for wire in &seen.wire {
        let path = wire.uri.strip_prefix(&proxy.endpoint()).unwrap_or_else(|| panic!("{wire:?}"));
        assert!(path.starts_with("/rust-path"), "path-style: {wire:?}");
    }
    check_ledger(&proxy, "rust-path", &seen);
}

#[test]
fn virtual_hosted_put_from_file_get_ranges_list() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            principals: vec!["rusty".into()],
            extra_args: vec!["--virtual-host-domain".into(), "s3.localhost".into()],
            ..ProxyOptions::default()
        },
    );
    let recorder = Recorder { connect_to: Some(proxy.addr), ..Recorder::default() };
    let endpoint = format!("http://s3.localhost:{}", proxy.addr.port());
    let client = client(&endpoint, proxy.key(), false, &recorder);
    let seen = scenario(&client, &recorder, "rust-vhost");
    let host = format!("rust-vhost.s3.localhost:{}", proxy.addr.port());
    for wire in &seen.wire {
        assert_eq!(wire.host.as_deref(), Some(host.as_str()), "virtual-hosted: {wire:?}");
        let path = wire.uri.strip_prefix(&format!("http://{}", proxy.addr)).unwrap_or_else(|| panic!("{wire:?}"));
        assert!(!path.starts_with("/rust-vhost"), "the bucket is in the host, not the path: {wire:?}");
    }
    check_ledger(&proxy, "rust-vhost", &seen);
}

#[test]
fn multipart_upload_of_file_parts_as_signed_chunks() {
    let upstream = SeaweedFs::start();
    let proxy =
        Proxy::start(&upstream, ProxyOptions { principals: vec!["rusty-mp".into()], ..ProxyOptions::default() });
    let recorder = Recorder::default();
    let client = client(&proxy.endpoint(), proxy.key(), true, &recorder);
    let dir = tempfile::tempdir().expect("temp dir");
    let part_size: u64 = 5 * 1024 * 1024;
    let size = 2 * part_size + 12_345;
    let data = pseudo_random(usize::try_from(size).expect("size"), 99);
    let path = dir.path().join("multipart.bin");
    std::fs::write(&path, &data).expect("write file");
    let key = "mp/parts.bin";

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        client.create_bucket().bucket("rust-mp").send().await.expect("create bucket");
        let upload = client.create_multipart_upload().bucket("rust-mp").key(key).send().await.expect("create upload");
        let upload_id = upload.upload_id().expect("upload id");
        let mut completed = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < size {
            let length = part_size.min(size - offset);
            let body = ByteStream::read_from()
                .path(&path)
                .offset(offset)
                .length(Length::Exact(length))
                .build()
                .await
                .expect("part body");
            let part = client
                .upload_part()
                .bucket("rust-mp")
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(body)
                .send()
                .await
                .expect("upload part");
            completed
                .push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_owned)).build());
            offset += length;
            number += 1;
        }
        client
            .complete_multipart_upload()
            .bucket("rust-mp")
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await
            .expect("complete upload");
        let get = client.get_object().bucket("rust-mp").key(key).send().await.expect("get");
        let back = get.body.collect().await.expect("body").into_bytes();
        assert_eq!(back.len() as u64, size);
        assert!(back == data, "the object is the parts' payloads, in order, nothing else");
    });

    let wire = recorder.take();
    let ops = ["CreateBucket", "CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart"];
    let ops = ops.iter().chain(&["CompleteMultipartUpload", "GetObject"]);
    assert_eq!(wire.len(), 7, "{wire:#?}");
    for (w, operation) in wire.iter().zip(ops) {
        let id = w.egress_id.as_deref().unwrap_or_else(|| panic!("no x-egress-request-id: {w:?}"));
        let (start, end) = proxy.event(id);
        assert_eq!(start["operation"], *operation, "{w:?}\n{start}");
        assert_eq!(start["principal"], "rusty-mp", "{start}");
        assert_eq!(end["status"], 200, "{end}");
        assert_eq!(end["outcome"], "complete", "{end}");
        if *operation == "UploadPart" {
            assert_eq!(w.content_sha256.as_deref(), Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"), "{w:?}");
            assert_eq!(w.trailer.as_deref(), Some("x-amz-checksum-crc32"), "{w:?}");
            assert_eq!(end["bytes_sent"], 0, "{end}");
        }
        if *operation == "GetObject" {
            assert_eq!(end["bytes_sent"], size, "{end}");
            assert_eq!(end["object_size"], size, "{end}");
        }
    }
}

/// Over HTTPS (the proxy's TLS listener, dev certificates) the SDK sends a
/// file body as `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
#[test]
fn over_https_put_from_file_sends_an_unsigned_trailer() {
    let certs = tempfile::tempdir().expect("certs dir");
    let made =
        egress_e2e::run(&["certs", "--out", certs.path().to_str().expect("utf-8"), "--hosts", "localhost,127.0.0.1"]);
    assert_eq!(made.code, 0, "{made:?}");
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            principals: vec!["rusty-tls".into()],
            tls_certs: Some(certs.path().to_path_buf()),
            ..ProxyOptions::default()
        },
    );
    let ca = std::fs::read(certs.path().join("ca.pem")).expect("ca.pem");
    let recorder = Recorder::default();
    let port = proxy.tls_addr.expect("TLS listener").port();
    let client = client_trusting(&format!("https://localhost:{port}"), proxy.key(), true, &recorder, Some(&ca));
    let dir = tempfile::tempdir().expect("temp dir");
    let size: usize = 3 * 1024 * 1024 + 7;
    let data = pseudo_random(size, 5);
    let path = dir.path().join("tls.bin");
    std::fs::write(&path, &data).expect("write file");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        client.create_bucket().bucket("rust-tls").send().await.expect("create bucket");
        let body = ByteStream::from_path(&path).await.expect("body");
        let put = client.put_object().bucket("rust-tls").key("tls.bin").body(body).send().await.expect("put");
        assert_eq!(put.checksum_crc32(), Some(crc32_base64(&data).as_str()), "the upstream has the client's CRC32");
        let get = client
            .get_object()
            .bucket("rust-tls")
            .key("tls.bin")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("get");
        let back = get.body.collect().await.expect("body").into_bytes();
        assert!(back == data, "the object is the file, without chunk framing or trailer");
    });
    let wire = recorder.take();
    assert_eq!(wire.len(), 3, "{wire:#?}");
    let put = &wire[1];
    assert!(put.uri.starts_with("https://localhost:"), "{put:?}");
    assert_eq!(put.content_sha256.as_deref(), Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"), "{put:?}");
    assert_eq!(put.trailer.as_deref(), Some("x-amz-checksum-crc32"), "{put:?}");
    for (w, (operation, bytes)) in
        wire.iter().zip([("CreateBucket", None), ("PutObject", Some(0)), ("GetObject", Some(size))])
    {
        let (start, end) = proxy.event(w.egress_id.as_deref().expect("x-egress-request-id"));
        assert_eq!(start["operation"], operation, "{start}");
        assert_eq!(start["principal"], "rusty-tls", "{start}");
        assert_eq!((end["status"].as_u64(), end["outcome"].as_str()), (Some(200), Some("complete")), "{end}");
        if let Some(bytes) = bytes {
            assert_eq!(end["bytes_sent"], bytes, "{end}");
        }
    }
}

#[test]
fn crc32_base64_matches_s3() {
    // Values S3 (SeaweedFS) answered for these bodies.
    assert_eq!(crc32_base64(b"a small object over TLS\n"), "QLlW0A==");
    assert_eq!(crc32_base64(b""), "AAAAAA==");
    assert_eq!(crc32_base64(b"123456789"), "y/Q5Jg==");
}
