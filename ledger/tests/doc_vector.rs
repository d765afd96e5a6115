//! The test vector in docs/LEDGER.md is what this code writes: the three
//! lines, their hashes, and the checkpoint's key and signature.

#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

use egress_ledger::access::{Actor, Grants, StoredPolicy, notes};
use egress_ledger::checkpoint::{CheckpointSigner, CheckpointVerifier, to_note};
use egress_ledger::record::{
    Decision, Effect, EndRecord, Entry, LineHash, Outcome, StartRecord, encode_line, line_hash,
};
use sha2::{Digest as _, Sha256};

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
        bytes_acked: None,
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

    // Who may do what: a policy is put and attached, and a request it
    // refuses carries the decision.
    let document = r#"{"Statement":[{"Action":"s3:GetObject","Effect":"Deny","Resource":"arn:aws:s3:::training-data/raw/*","Sid":"NoRaw"}],"Version":"2012-10-17"}"#;
    let policy = StoredPolicy {
        name: "no-raw".into(),
        document: document.into(),
        sha256: hex::encode(Sha256::digest(document.as_bytes())),
        updated: "2026-11-27T12:00:02Z".into(),
    };
    let by = Actor("admin:1f2e3d4c".into());
    let l3 = encode_line(3, &h2, "2026-11-27T12:00:02.000000Z", &notes::policy_put(&policy, &by));
    let h3 = line_hash(&l3);
    let grants = Grants { policies: vec!["read-only".into(), "no-raw".into()], ..Grants::default() };
    // The built-in read-only's hash is in docs/POLICIES.md.
    let read_only = "a4c15017b4b76b4c2bf972f2428048e1bc518f34b82eb266b04ce552d8f5cf4e".to_owned();
    let hashes = [("read-only".to_owned(), read_only), ("no-raw".to_owned(), policy.sha256.clone())];
    let l4 = encode_line(4, &h3, "2026-11-27T12:00:02.100000Z", &notes::grants_set("alice", &grants, &hashes, &by));
    let h4 = line_hash(&l4);
    let denied_start = Entry::Start(StartRecord {
        req: "0193a7c2-6a00-7c3b-8d2e-3f5a7b9c1d2e".into(),
        principal: Some("alice".into()),
        access_key_id: Some("EGRSEXAMPLE000000001".into()),
        source_ip: Some("192.0.2.10".into()),
        user_agent: Some("Boto3/1.43.11".into()),
        method: "GET".into(),
        operation: "GetObject".into(),
        bucket: Some("training-data".into()),
        key: Some("raw/0001.jpg".into()),
        decision: Some(Decision {
            effect: Effect::ExplicitDeny,
            action: Some("s3:GetObject".into()),
            resource: Some("arn:aws:s3:::training-data/raw/0001.jpg".into()),
            policy: Some("no-raw".into()),
            policy_sha256: Some(policy.sha256.clone()),
            sid: Some("NoRaw".into()),
            limit: None,
            detail: None,
        }),
        ..StartRecord::default()
    });
    let l5 = encode_line(5, &h4, "2026-11-27T12:00:03.000000Z", &denied_start);
    let h5 = line_hash(&l5);
    let denied_end = Entry::End(EndRecord {
        status: Some(403),
        bytes_sent: Some(387),
        bytes_acked: None,
        duration_ms: Some(1),
        error_code: Some("AccessDenied".into()),
        ..EndRecord::unknown("0193a7c2-6a00-7c3b-8d2e-3f5a7b9c1d2e", 5, Outcome::Denied)
    });
    let l6 = encode_line(6, &h5, "2026-11-27T12:00:03.001000Z", &denied_end);
    let h6 = line_hash(&l6);
    let lines = [l0, l1, l2, l3, l4, l5, l6].iter().map(|l| String::from_utf8(l.clone()).unwrap()).collect();
    let hashes = [h0, h1, h2, h3, h4, h5, h6].iter().map(LineHash::to_hex).collect();
    (lines, hashes, signer)
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
