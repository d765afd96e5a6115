//! Large and small bodies, whole and ranged, one after the other on one
//! keep-alive connection of the Rust SDK: every byte is compared, and the
//! ledger has what each response delivered. (Written for the placeholder
//! passthrough that issue 16 removed; what it checks holds for any data
//! path: a body that ends where it should, and a connection that serves
//! the next request afterwards.)

use crate::sdk;

use aws_sdk_s3::primitives::ByteStream;
use egress_e2e::pseudo_random;
use egress_e2e::servers::{Key, Proxy, ProxyOptions, SeaweedFs};

const BUCKET: &str = "keep-alive";

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

#[test]
fn large_and_small_bodies_and_ranges_follow_each_other_on_one_keep_alive_connection() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["reader".into()], ..ProxyOptions::default() });
    let large = pseudo_random(3 * 1024 * 1024 + 17, 7);
    let small = pseudo_random(1000, 8);
    // (key, range, expected bytes)
    let gets: [(&str, Option<&str>, &[u8]); 6] = [
        ("large", None, &large),
        ("small", None, &small),
        ("large", Some("bytes=100-300099"), &large[100..300_100]),
        ("large", Some("bytes=5-104"), &large[5..105]),
        ("large", Some("bytes=-131072"), &large[large.len() - 131_072..]),
        ("large", None, &large),
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
        for (key, range, expected) in &gets {
            let (length, body) = get(&client, key, *range).await;
            assert_eq!(usize::try_from(length).ok(), Some(expected.len()), "GET {key} {range:?}");
            assert!(body == *expected, "GET {key} {range:?}: {} bytes, not the object's", body.len());
        }
    });

    let events = proxy.events_where(|start| start["operation"] == "GetObject");
    assert_eq!(events.len(), gets.len(), "{events:#?}");
    for ((start, end), (key, range, expected)) in events.iter().zip(&gets) {
        assert_eq!(start["key"], *key, "{start}");
        assert_eq!(start["range"].as_str(), *range, "{start}");
        assert_eq!(end["outcome"], "complete", "{end}");
        assert_eq!(end["bytes_sent"].as_u64(), Some(expected.len() as u64), "{start}\n{end}");
    }
    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}
