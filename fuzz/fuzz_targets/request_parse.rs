//! The one parse of a request (address, query, operation, copy source) and
//! the request built from it for the upstream: whatever the input, the
//! forwarded request, parsed as the upstream would, means what the proxy
//! recorded (`s3::request::forwarded_means_the_same`). Input: method, host
//! (`-` for none), raw path, raw query (`-` for none), then headers, one per
//! line.
#![no_main]

use egress_proxy::s3::request::forwarded_means_the_same;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[allow(dead_code)] // the key lookup is for the targets that authenticate
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let Some(method) = lines.next().and_then(|m| http::Method::from_bytes(m.as_bytes()).ok()) else { return };
    let host = lines.next().filter(|h| *h != "-");
    let request = common::parse(&mut std::iter::once("GET").chain(lines));
    if let Err(disagreement) = forwarded_means_the_same(&method, host, request.path, request.query, &request.headers) {
        panic!("{disagreement}");
    }
});
