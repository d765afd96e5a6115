//! SigV4 (header and presigned query) authentication on arbitrary requests.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use egress_proxy::auth::{RequestParts, authenticate};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let request = common::parse(&mut text.split('\n'));
    let parts = RequestParts {
        method: request.method,
        raw_path: request.path,
        raw_query: request.query,
        headers: &request.headers,
    };
    // 2013-05-24T00:00:00Z, the date of the AWS documentation examples.
    let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
    let _ = authenticate(&parts, &common::lookup, now);
});
