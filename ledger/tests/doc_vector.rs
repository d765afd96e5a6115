//! The test vector in docs/LEDGER.md is what this code writes: the three
//! lines, their hashes, and the checkpoint's key and signature.

#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

use egress_ledger::checkpoint::{CheckpointSigner, CheckpointVerifier, to_note};
use egress_ledger::record::{EndRecord, Entry, LineHash, Outcome, StartRecord, encode_line, line_hash};

const DOC: &str = include_str!("../../docs/LEDGER.md");

fn vector() -> (Vec<String>, Vec<String>, CheckpointSigner) {
    let signer = CheckpointSigner::from_seed("egress-proxy@example", &[7u8; 32]);
    let start = Entry::Start(StartRecord {
        req: "0193a7c2-5f1e-7b3a-9c1d-2e4f6a8b0c1d".into(),
        principal: Some("alice".into()),
        access_key_id: Some("EGRSEXAMPLE000000001".into()),
        source_ip: Some("192.0.2.10".into()),
        user_agent: Some("Boto3/1.43.11".into()),
        method: "GET".into(),
        operation: "GetObject".into(),
        bucket: Some("training-data".into()),
        key: Some("imagenet/part-00001.parquet".into()),
        version_id: None,
        range: Some("bytes=0-1048575".into()),
        ..StartRecord::default()
    });
    let end = Entry::End(EndRecord {
        req: "0193a7c2-5f1e-7b3a-9c1d-2e4f6a8b0c1d".into(),
        start_seq: 0,
        status: Some(206),
        bytes_sent: Some(1_048_576),
        object_size: Some(134_217_728),
        etag: Some("\"9b2cf535f27731c974343645a3985328\"".into()),
        upstream_request_id: Some("4442587FB7D0A2F9".into()),
        upstream_id2: None,
        duration_ms: Some(41),
        outcome: Outcome::Complete,
        error_code: None,
        decision: None,
    });
    let l0 = encode_line(0, &LineHash::GENESIS, "2026-11-27T12:00:00.000000Z", &start);
    let h0 = line_hash(&l0);
    let l1 = encode_line(1, &h0, "2026-11-27T12:00:00.041000Z", &end);
    let h1 = line_hash(&l1);
    let cp = Entry::Checkpoint(signer.sign(1, &h1, "2026-11-27T12:00:01.000000Z"));
    let l2 = encode_line(2, &h1, "2026-11-27T12:00:01.000002Z", &cp);
    let h2 = line_hash(&l2);
    let lines = [l0, l1, l2].iter().map(|l| String::from_utf8(l.clone()).unwrap()).collect();
    (lines, vec![h0.to_hex(), h1.to_hex(), h2.to_hex()], signer)
}

#[test]
fn docs_ledger_md_holds_the_vector_this_code_writes() {
    let (lines, hashes, signer) = vector();
    for (i, (line, hash)) in lines.iter().zip(&hashes).enumerate() {
        println!("line {i}:\n{line}\nhash {i}: {hash}\n");
    }
    println!("verifier key: {}", signer.verifier_key_text());
    let Entry::Checkpoint(cp) = egress_ledger::record::decode_line(lines[2].as_bytes()).unwrap().entry else {
        panic!("line 2 is a checkpoint")
    };
    println!("checkpoint file:\n{}", to_note(&cp));
    CheckpointVerifier::parse(&signer.verifier_key_text()).unwrap().verify(&cp).unwrap();

    for line in &lines {
        assert!(DOC.contains(line.as_str()), "docs/LEDGER.md lacks the line\n{line}");
    }
    for hash in &hashes {
        assert!(DOC.contains(hash.as_str()), "docs/LEDGER.md lacks the hash {hash}");
    }
    assert!(DOC.contains(&signer.verifier_key_text()), "docs/LEDGER.md lacks the verifier key");
    assert!(DOC.contains(&to_note(&cp)), "docs/LEDGER.md lacks the checkpoint file");
}
