//! SigV2 (header and query) authentication on arbitrary requests.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use egress_proxy::auth::{RequestParts, authenticate_with_bucket_host};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let bucket = lines.next().filter(|b| *b != "-");
    let request = common::parse(&mut lines);
    let parts = RequestParts {
        method: request.method,
        raw_path: request.path,
        raw_query: request.query,
        headers: &request.headers,
    };
    // 2007-03-27T19:36:42Z, the date of the AWS documentation examples.
    let now = UNIX_EPOCH + Duration::from_secs(1_175_024_202);
    let _ = authenticate_with_bucket_host(&parts, bucket, &common::lookup, now);
});
