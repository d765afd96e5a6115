//! HTTP/2 on the plain listener (h2c, prior knowledge): a presigned GET
//! over HTTP/2 is authenticated (the host comes from `:authority`),
//! forwarded, and recorded like any other.

use bytes::Bytes;
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_get_over_h2c_is_served_and_recorded() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["alice".into()], ..ProxyOptions::default() });
    let key = proxy.key().clone();
    let endpoint = proxy.endpoint();
    let setup = tokio::task::spawn_blocking(move || {
        python(
            r#"
import os, json, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="data")
s3.put_object(Bucket="data", Key="h2.bin", Body=bytes(range(256)) * 1024)
print(json.dumps({"url": s3.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "h2.bin"}, ExpiresIn=300)}))
"#,
            &[("ENDPOINT", &endpoint), ("AK", &key.access_key_id), ("SK", &key.secret_access_key)],
        )
    })
    .await
    .unwrap();

    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let response = client.get(setup["url"].as_str().unwrap().parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let req = response.headers()["x-egress-request-id"].to_str().unwrap().to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 256 * 1024);
    assert!(body.iter().enumerate().all(|(i, b)| usize::from(*b) == i % 256));

    let (start, end) = tokio::task::spawn_blocking(move || proxy.event(&req)).await.unwrap();
    assert_eq!(start["principal"], "alice");
    assert_eq!(start["operation"], "GetObject");
    assert_eq!(end["bytes_sent"], 256 * 1024);
    assert_eq!(end["outcome"], "complete");
}
