//! The ledger's line decoder and chain check on arbitrary bytes: never a
//! panic, and a line that decodes re-encodes to a line that decodes the same.
#![no_main]

use egress_ledger::record::{LineHash, decode_header, decode_line, encode_line};
use egress_ledger::segment::{Chain, lines};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_header(data);
    if let Ok(line) = decode_line(data) {
        let prev = LineHash::from_hex(&line.prev).unwrap_or(LineHash::GENESIS);
        let again = encode_line(line.seq, &prev, &line.ts, &line.entry);
        let decoded = decode_line(&again).expect("an encoded line decodes");
        assert_eq!(decoded.entry, line.entry);
    }
    // A whole segment: split and walk the chain as verify and recovery do.
    let mut chain = Chain::genesis();
    for raw in lines(data) {
        if chain.advance(raw.bytes).is_err() {
            break;
        }
    }
});
