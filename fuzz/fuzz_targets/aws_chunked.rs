//! The aws-chunked decoder on arbitrary bodies, fed in two pieces.
#![no_main]

use bytes::BytesMut;
use egress_proxy::auth::ChunkSigningContext;
use egress_proxy::auth::chunked::{AwsChunkedDecoder, ChunkMode};
use egress_proxy::auth::sigv4::SigningKey;
use libfuzzer_sys::fuzz_target;

fn signed(trailer: bool) -> ChunkMode {
    // The AWS documentation's streaming example.
    let ctx = ChunkSigningContext {
        signing_key: SigningKey::derive("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3"),
        amz_date: "20130524T000000Z".to_owned(),
        scope: "20130524/us-east-1/s3/aws4_request".to_owned(),
        seed_signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".to_owned(),
    };
    ChunkMode::Signed { ctx, trailer }
}

fuzz_target!(|data: &[u8]| {
    let [selector, cut, body @ ..] = data else { return };
    let mode = match selector % 3 {
        0 => signed(false),
        1 => signed(true),
        _ => ChunkMode::UnsignedTrailer,
    };
    let cut = if body.is_empty() { 0 } else { usize::from(*cut) * body.len() / 256 };
    let (first, second) = body.split_at(cut.min(body.len()));
    let mut decoder = AwsChunkedDecoder::new(mode);
    let mut input = BytesMut::new();
    let mut released = 0_u64;
    for piece in [first, second] {
        input.extend_from_slice(piece);
        match decoder.feed(&mut input) {
            Ok(parts) => released += parts.iter().map(|p| p.len() as u64).sum::<u64>(),
            Err(_) => return,
        }
    }
    assert_eq!(released, decoder.decoded_len());
    let _ = decoder.finish();
});
