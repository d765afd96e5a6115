//! The policy parser on arbitrary bytes: never a panic; a policy that
//! parses has a canonical form that parses to the same canonical form and
//! hash; evaluating it against a few fixed requests never panics.
#![no_main]

use egress_access::{AccessRequest, Context, Policy, evaluate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = Policy::parse(data) else { return };
    let policy = parsed.policy;
    let again = Policy::parse(policy.canonical_json().as_bytes()).expect("the canonical form parses");
    assert_eq!(again.policy.canonical_json(), policy.canonical_json());
    assert_eq!(again.policy.sha256_hex(), policy.sha256_hex());
    assert_eq!(again.policy.statement_count(), policy.statement_count());

    let mut ctx = Context::new();
    ctx.set("aws:SourceIp", "10.1.2.3");
    ctx.set("aws:username", "alice");
    ctx.set("aws:CurrentTime", "2026-12-03T11:40:55Z");
    ctx.set("aws:EpochTime", "1796298055");
    ctx.set("aws:SecureTransport", "true");
    ctx.set("s3:prefix", "home/alice/");
    ctx.set("s3:max-keys", "100");
    ctx.set_all("s3:RequestObjectTagKeys", vec!["Department".into(), "Owner".into()]);
    let empty = Context::new();
    let requests = [
        ("s3:GetObject", "arn:aws:s3:::data/public/a.csv", &ctx),
        ("s3:ListBucket", "arn:aws:s3:::data", &ctx),
        ("S3:PutObject", "arn:aws:s3:::home/alice/x:y", &empty),
        ("s3:ListAllMyBuckets", "*", &empty),
        ("iam:CreateUser", "arn:aws:iam::123456789012:user/é", &ctx),
    ];
    let set = [("fuzz", &policy), ("again", &again.policy)];
    for (action, resource, context) in requests {
        let request = AccessRequest { action, resource, context };
        let one = evaluate(&set[..1], &request);
        let both = evaluate(&set, &request);
        assert_eq!(one.effect, both.effect, "a policy and its canonical form decide alike");
    }
});
