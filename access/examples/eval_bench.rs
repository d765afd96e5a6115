//! How long one authorization decision takes: 10 policies of 20 statements
//! (S3 actions on prefixes, a few conditions on aws:SourceIp and s3:prefix,
//! one policy variable), for a late Allow, an explicit Deny and an implicit
//! Deny. Prints one JSON line per request shape.
//!
//! Run: `cargo run --release -p egress-access --example eval_bench`

use std::hint::black_box;
use std::time::Instant;

use std::sync::Arc;

use egress_access::{AccessRequest, Context, Policy, PolicySet, evaluate};

const POLICIES: usize = 10;
const STATEMENTS: usize = 20;

fn statement(p: usize, s: usize) -> String {
    let bucket = format!("team{p}");
    match s % 10 {
        0 => format!(
            r#"{{"Sid":"List{s}","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::{bucket}","Condition":{{"StringLike":{{"s3:prefix":["reports/*","shared/*"]}}}}}}"#
        ),
        1 => format!(
            r#"{{"Sid":"Read{s}","Effect":"Allow","Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":"arn:aws:s3:::{bucket}/reports/{s}/*"}}"#
        ),
        2 => format!(
            r#"{{"Sid":"Write{s}","Effect":"Allow","Action":["s3:PutObject","s3:AbortMultipartUpload"],"Resource":"arn:aws:s3:::{bucket}/incoming/{s}/*","Condition":{{"IpAddress":{{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}}}}}"#
        ),
        3 => format!(
            r#"{{"Sid":"Tags{s}","Effect":"Allow","Action":"s3:Get*Tagging","Resource":"arn:aws:s3:::{bucket}/*"}}"#
        ),
        4 if p == 3 && s == 4 => format!(
            r#"{{"Sid":"Home{s}","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::{bucket}/home/${{aws:username}}/*"}}"#
        ),
        5 => format!(
            r#"{{"Sid":"DenyDelete{s}","Effect":"Deny","Action":["s3:DeleteObject","s3:DeleteObjectVersion"],"Resource":"arn:aws:s3:::{bucket}/archive/*"}}"#
        ),
        6 => format!(
            r#"{{"Sid":"DenyOutside{s}","Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::{bucket}/secure/*","Condition":{{"NotIpAddress":{{"aws:SourceIp":"10.20.0.0/16"}}}}}}"#
        ),
        _ => format!(
            r#"{{"Sid":"Data{s}","Effect":"Allow","Action":["s3:GetObject","s3:HeadObject"],"Resource":["arn:aws:s3:::{bucket}/data/{s}/*","arn:aws:s3:::{bucket}/public/{s}/*"]}}"#
        ),
    }
}

fn policy(p: usize) -> Policy {
    let statements: Vec<String> = (0..STATEMENTS).map(|s| statement(p, s)).collect();
    let json = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","));
    Policy::parse(json.as_bytes()).expect("the benchmark policies parse").policy
}

fn main() {
    let policies: Vec<Policy> = (0..POLICIES).map(policy).collect();
    let names: Vec<String> = (0..POLICIES).map(|p| format!("policy-{p}")).collect();
    let set: Vec<(&str, &Policy)> = names.iter().map(String::as_str).zip(&policies).collect();
    let mut ctx = Context::new();
    ctx.set("aws:SourceIp", "10.1.2.3");
    ctx.set("aws:username", "alice");
    ctx.set("aws:SecureTransport", "true");
    ctx.set("aws:CurrentTime", "2026-12-03T11:40:55Z");
    let shapes = [
        // Matches only statement 19 of the last policy.
        ("allow_late", "s3:GetObject", "arn:aws:s3:::team9/public/19/a.csv", "allow"),
        ("explicit_deny", "s3:DeleteObject", "arn:aws:s3:::team9/archive/old.csv", "explicit_deny"),
        ("implicit_deny", "s3:GetObject", "arn:aws:s3:::elsewhere/a.csv", "implicit_deny"),
    ];
    for (shape, action, resource, expected) in shapes {
        let request = AccessRequest { action, resource, context: &ctx };
        let decision = evaluate(&set, &request);
        let effect = serde_json::to_value(decision.effect).unwrap_or_default();
        assert_eq!(effect, expected, "{shape}: {decision:?}");
        let indexed = PolicySet::new(names.iter().cloned().zip(policies.iter().cloned().map(Arc::new)).collect());
        assert_eq!(indexed.evaluate(&request), decision, "{shape}: the set decides as evaluate does");
        let ns = time(|| black_box(evaluate(black_box(&set), black_box(&request))).effect);
        let ns_set = time(|| black_box(indexed.evaluate(black_box(&request))).effect);
        println!(
            r#"{{"shape":"{shape}","policies":{POLICIES},"statements_per_policy":{STATEMENTS},"ns_per_eval":{ns},"ns_per_eval_policy_set":{ns_set},"decided_by":{}}}"#,
            serde_json::to_string(&decision.sid).unwrap_or_default()
        );
    }
}

/// Nanoseconds per call of `f`, after a warm-up.
fn time<T>(mut f: impl FnMut() -> T) -> u128 {
    for _ in 0..10_000 {
        black_box(f());
    }
    let evals: u32 = 200_000;
    let started = Instant::now();
    for _ in 0..evals {
        black_box(f());
    }
    started.elapsed().as_nanos() / u128::from(evals)
}
