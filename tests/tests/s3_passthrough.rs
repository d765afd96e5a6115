//! Pass-through downloads (`proxy/src/passthrough.rs`): over plain HTTP/1.1
//! a `GetObject` body of 128 KiB or more goes from the upstream's socket to
//! the client's through a 256 KiB ring buffer of the client connection,
//! outside hyper. With the
//! Rust SDK, which keeps its connection alive between requests, large and
//! small bodies and ranges of both sizes follow each other; every byte is
//! compared, the ledger has what each response delivered, and `/metrics`
//! shows that the large bodies passed through (all but what came with the
//! response head, at most 16 KiB) and the small ones not: the path really
//! ran, and nothing else went through it.

mod sdk;

use aws_sdk_s3::primitives::ByteStream;
use egress_e2e::pseudo_random;
use egress_e2e::servers::{Key, Proxy, ProxyOptions, SeaweedFs};

const BUCKET: &str = "passthrough";
/// What the proxy reads with a response head (`proxy/src/upstream/raw.rs`).
const HEAD_READ: usize = 16 * 1024;

fn client(endpoint: &str, key: &Key) -> aws_sdk_s3::Client {
    let shared = sdk::config(endpoint, key, aws_smithy_http_client::Builder::new().build_http());
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&shared).force_path_style(true).build())
}

/// The `Content-Length` the proxy sent and the body bytes, for a GET with an
/// optional range.
async fn get(client: &aws_sdk_s3::Client, key: &str, range: Option<&str>) -> (i64, Vec<u8>) {
    let output = client.get_object().bucket(BUCKET).key(key).set_range(range.map(str::to_owned)).send().await;
    let output = output.unwrap_or_else(|e| panic!("GET {key} {range:?}: {e:?}"));
    let length = output.content_length().expect("a Content-Length");
    let body = output.body.collect().await.expect("the whole body").into_bytes().to_vec();
    (length, body)
}

fn passthrough_bytes(proxy: &Proxy) -> u64 {
    let metrics = proxy.admin_get("/metrics");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("egress_passthrough_bytes_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no egress_passthrough_bytes_total in /metrics:\n{metrics}"))
}

#[test]
fn large_bodies_pass_through_and_small_ones_go_through_hyper_on_one_keep_alive_connection() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["reader".into()], ..ProxyOptions::default() });
    let large = pseudo_random(3 * 1024 * 1024 + 17, 7);
    let small = pseudo_random(1000, 8);
    // (key, range, expected bytes, passed through?) The large object is
    // many times the ring, so reads and writes wrap around its end.
    let gets: [(&str, Option<&str>, &[u8], bool); 6] = [
        ("large", None, &large, true),
        ("small", None, &small, false),
        ("large", Some("bytes=100-300099"), &large[100..300_100], true),
        ("large", Some("bytes=5-104"), &large[5..105], false),
        ("large", Some("bytes=-131072"), &large[large.len() - 131_072..], true),
        ("large", None, &large, true),
    ];

    let client = client(&proxy.endpoint(), proxy.key());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        client.create_bucket().bucket(BUCKET).send().await.expect("create bucket");
        for (key, data) in [("large", &large), ("small", &small)] {
            client
                .put_object()
                .bucket(BUCKET)
                .key(key)
                .body(ByteStream::from(data.clone()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
        }
        let mut passed = passthrough_bytes(&proxy);
        assert_eq!(passed, 0, "nothing passed through before the GETs");
        for (key, range, expected, large) in &gets {
            let (length, body) = get(&client, key, *range).await;
            assert_eq!(usize::try_from(length).ok(), Some(expected.len()), "GET {key} {range:?}");
            assert!(body == *expected, "GET {key} {range:?}: {} bytes, not the object's", body.len());
            let before = std::mem::replace(&mut passed, passthrough_bytes(&proxy));
            let moved = usize::try_from(passed - before).expect("a count");
            if *large {
                let copied = expected.len() - moved.min(expected.len());
                assert!(moved <= expected.len() && copied <= HEAD_READ, "GET {key} {range:?}: {moved} passed through");
            } else {
                assert_eq!(moved, 0, "GET {key} {range:?}: a small body goes through hyper");
            }
        }
    });

    let events = proxy.events_where(|start| start["operation"] == "GetObject");
    assert_eq!(events.len(), gets.len(), "{events:#?}");
    for ((start, end), (key, range, expected, _)) in events.iter().zip(&gets) {
        assert_eq!(start["key"], *key, "{start}");
        assert_eq!(start["range"].as_str(), *range, "{start}");
        assert_eq!(end["outcome"], "complete", "{end}");
        assert_eq!(end["bytes_sent"].as_u64(), Some(expected.len() as u64), "{start}\n{end}");
    }
    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}
