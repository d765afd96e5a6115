//! Properties of evaluation and of the canonical form, over generated
//! policies drawn from a small universe so that statements often match.

use std::sync::Arc;

use egress_access::{AccessRequest, Context, Effect, Policy, PolicySet, evaluate};
use proptest::prelude::*;

const ACTIONS: &[&str] = &["s3:GetObject", "s3:Get*", "s3:PutObject", "s3:*", "*", "s3:ListBucket", "S3:getobject"];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:s3:::data",
    "arn:aws:s3:::data/*",
    "arn:aws:s3:::data/public/*",
    "arn:aws:s3:::logs/*",
    "arn:aws:s3:::home/${aws:username}/*",
    "arn:aws:s3:::d?ta/*",
];
const CONDITIONS: &[&str] = &[
    r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
    r#"{"StringLike":{"s3:prefix":["public/*",""]}}"#,
    r#"{"StringNotEquals":{"aws:username":"bob"}}"#,
    r#"{"Bool":{"aws:SecureTransport":false}}"#,
    r#"{"NumericLessThanEquals":{"s3:max-keys":100},"Null":{"s3:prefix":"false"}}"#,
];
const REQ_ACTIONS: &[&str] = &["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"];
const REQ_RESOURCES: &[&str] =
    &["arn:aws:s3:::data", "arn:aws:s3:::data/public/a.csv", "arn:aws:s3:::logs/x", "arn:aws:s3:::home/alice/f", "*"];

#[derive(Debug, Clone)]
struct Stmt {
    deny: bool,
    not_action: bool,
    actions: Vec<usize>,
    not_resource: bool,
    resources: Vec<usize>,
    condition: Option<usize>,
}

fn stmt_strategy() -> impl Strategy<Value = Stmt> {
    (
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::collection::vec(0..ACTIONS.len(), 1..3),
        prop::bool::weighted(0.15),
        prop::collection::vec(0..RESOURCES.len(), 1..3),
        prop::option::weighted(0.4, 0..CONDITIONS.len()),
    )
        .prop_map(|(deny, not_action, actions, not_resource, resources, condition)| Stmt {
            deny,
            not_action,
            actions,
            not_resource,
            resources,
            condition,
        })
}

fn list(items: &[usize], from: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{}\"", from[*i])).collect();
    format!("[{}]", quoted.join(","))
}

/// The statement as JSON, members in an order chosen by `order`, with `ws` between tokens.
fn stmt_json(s: &Stmt, sid: usize, order: u64, ws: &str) -> String {
    let mut members = vec![
        format!("\"Sid\":{ws}\"S{sid}\""),
        format!("\"Effect\":{ws}\"{}\"", if s.deny { "Deny" } else { "Allow" }),
        format!("\"{}\":{ws}{}", if s.not_action { "NotAction" } else { "Action" }, list(&s.actions, ACTIONS)),
        format!(
            "\"{}\":{ws}{}",
            if s.not_resource { "NotResource" } else { "Resource" },
            list(&s.resources, RESOURCES)
        ),
    ];
    if let Some(c) = s.condition {
        members.push(format!("\"Condition\":{ws}{}", CONDITIONS[c]));
    }
    let n = members.len();
    members.rotate_left((order as usize) % n);
    if order & 8 != 0 {
        members.reverse();
    }
    format!("{{{ws}{}{ws}}}", members.join(&format!(",{ws}")))
}

fn policy_json(stmts: &[Stmt], order: u64, ws: &str) -> String {
    let body: Vec<String> = stmts.iter().enumerate().map(|(i, s)| stmt_json(s, i, order >> 4, ws)).collect();
    let statement = format!("\"Statement\":{ws}[{}]", body.join(&format!(",{ws}")));
    let version = format!("\"Version\":{ws}\"2012-10-17\"");
    if order & 1 == 0 { format!("{{{version},{ws}{statement}}}") } else { format!("{{{ws}{statement},{version}{ws}}}") }
}

fn parse(json: &str) -> Policy {
    Policy::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}")).policy
}

fn context(bits: u8) -> Context {
    let mut ctx = Context::new();
    if bits & 1 != 0 {
        ctx.set("aws:SourceIp", if bits & 2 != 0 { "10.1.2.3" } else { "192.0.2.1" });
    }
    if bits & 4 != 0 {
        ctx.set("aws:username", if bits & 8 != 0 { "alice" } else { "bob" });
    }
    if bits & 16 != 0 {
        ctx.set("s3:prefix", if bits & 32 != 0 { "public/x" } else { "" });
    }
    if bits & 64 != 0 {
        ctx.set("aws:SecureTransport", if bits & 128 != 0 { "true" } else { "false" });
        ctx.set("s3:max-keys", "50");
    }
    ctx
}

fn policies_strategy() -> impl Strategy<Value = Vec<Vec<Stmt>>> {
    prop::collection::vec(prop::collection::vec(stmt_strategy(), 1..6), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn order_never_changes_the_effect(
        policies in policies_strategy(),
        action in 0..REQ_ACTIONS.len(),
        resource in 0..REQ_RESOURCES.len(),
        bits in any::<u8>(),
        seed in any::<u64>(),
    ) {
        let ctx = context(bits);
        let request = AccessRequest { action: REQ_ACTIONS[action], resource: REQ_RESOURCES[resource], context: &ctx };
        let forward: Vec<Policy> = policies.iter().map(|p| parse(&policy_json(p, 0, ""))).collect();
        let names: Vec<String> = (0..policies.len()).map(|i| format!("p{i}")).collect();
        let set: Vec<(&str, &Policy)> = names.iter().map(String::as_str).zip(forward.iter()).collect();
        let expected = evaluate(&set, &request).effect;

        // Every statement list rotated and reversed, and the policies reversed.
        let shuffled: Vec<Policy> = policies.iter().map(|p| {
            let mut p = p.clone();
            let len = p.len();
            p.rotate_left((seed as usize) % len);
            if seed & 1 == 1 { p.reverse(); }
            parse(&policy_json(&p, seed, ""))
        }).collect();
        let mut set: Vec<(&str, &Policy)> = names.iter().map(String::as_str).zip(shuffled.iter()).collect();
        set.reverse();
        let decision = evaluate(&set, &request);
        prop_assert_eq!(decision.effect, expected);
        prop_assert_eq!(decision.sid.is_some(), expected != Effect::ImplicitDeny);
    }

    #[test]
    fn a_policy_set_decides_exactly_as_evaluate(
        policies in policies_strategy(),
        requests in prop::collection::vec((0..REQ_ACTIONS.len(), 0..REQ_RESOURCES.len(), any::<u8>()), 1..8),
    ) {
        let parsed: Vec<Policy> = policies.iter().map(|p| parse(&policy_json(p, 0, ""))).collect();
        let names: Vec<String> = (0..policies.len()).map(|i| format!("p{i}")).collect();
        let slice: Vec<(&str, &Policy)> = names.iter().map(String::as_str).zip(parsed.iter()).collect();
        let set = PolicySet::new(names.iter().cloned().zip(parsed.iter().cloned().map(Arc::new)).collect());
        // Several requests on one set: what it remembers of one action must
        // not leak into another's answer.
        for (action, resource, bits) in requests {
            let ctx = context(bits);
            let request = AccessRequest { action: REQ_ACTIONS[action], resource: REQ_RESOURCES[resource], context: &ctx };
            let expected = evaluate(&slice, &request);
            let got = set.evaluate(&request);
            prop_assert_eq!((got.effect, got.policy, got.sid, got.statement), (expected.effect, expected.policy, expected.sid, expected.statement));
        }
    }

    #[test]
    fn a_matching_deny_always_denies(
        policies in policies_strategy(),
        action in 0..REQ_ACTIONS.len(),
        resource in 0..REQ_RESOURCES.len(),
        bits in any::<u8>(),
        target in any::<usize>(),
    ) {
        let ctx = context(bits);
        let request = AccessRequest { action: REQ_ACTIONS[action], resource: REQ_RESOURCES[resource], context: &ctx };
        let mut texts: Vec<String> = policies.iter().map(|p| policy_json(p, 0, "")).collect();
        let deny = format!(
            r#",{{"Sid":"Added","Effect":"Deny","Action":"{}","Resource":"{}"}}]}}"#,
            REQ_ACTIONS[action], REQ_RESOURCES[resource]
        );
        let at = target % texts.len();
        let text = &mut texts[at];
        text.truncate(text.rfind("]}").unwrap());
        text.push_str(&deny);
        let parsed: Vec<Policy> = texts.iter().map(|t| parse(t)).collect();
        let set: Vec<(&str, &Policy)> = parsed.iter().map(|p| ("p", p)).collect();
        prop_assert_eq!(evaluate(&set, &request).effect, Effect::ExplicitDeny);
    }

    #[test]
    fn canonical_form_is_a_fixed_point_and_ignores_layout(
        stmts in prop::collection::vec(stmt_strategy(), 1..6),
        order in any::<u64>(),
        ws in prop::sample::select(vec!["", " ", "\n  ", "\t"]),
    ) {
        let plain = parse(&policy_json(&stmts, 0, ""));
        let other = parse(&policy_json(&stmts, order, ws));
        prop_assert_eq!(plain.canonical_json(), other.canonical_json());
        prop_assert_eq!(plain.sha256_hex(), other.sha256_hex());
        let again = parse(plain.canonical_json());
        prop_assert_eq!(again.canonical_json(), plain.canonical_json());
        prop_assert_eq!(again.statement_count(), stmts.len());
    }
}

#[test]
fn canonical_example() {
    let policy = parse(
        r#"{ "Statement": [ { "Resource": "*", "Effect": "Allow", "Action": ["s3:List*", "s3:Get*"],
             "Condition": {"Bool": {"aws:SecureTransport": true}} } ], "Version": "2012-10-17" }"#,
    );
    assert_eq!(
        policy.canonical_json(),
        r#"{"Statement":[{"Action":["s3:List*","s3:Get*"],"Condition":{"Bool":{"aws:SecureTransport":true}},"Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}"#
    );
    assert_eq!(policy.sha256_hex().len(), 64);
    assert!(policy.sha256_hex().bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
}
