//! Evaluation cases taken from the AWS documentation (each case's name and
//! source say where), in `aws_cases.json`: policies by name, then cases of
//! (policies, action, resource, context) → expected effect and, where it
//! matters, the deciding Sid and policy. Every failing case is reported.

use std::collections::BTreeMap;

use egress_access::{AccessRequest, Context, Effect, Policy, evaluate};
use serde_json::Value;

fn effect(name: &str) -> Effect {
    match name {
        "allow" => Effect::Allow,
        "explicit_deny" => Effect::ExplicitDeny,
        "implicit_deny" => Effect::ImplicitDeny,
        other => panic!("unknown expected effect {other}"),
    }
}

#[test]
fn aws_documentation_cases() {
    let data: Value = serde_json::from_str(include_str!("aws_cases.json")).expect("aws_cases.json is JSON");
    let mut policies = BTreeMap::new();
    for (name, doc) in data["policies"].as_object().expect("policies") {
        let text = serde_json::to_string(doc).expect("serialises");
        let parsed = Policy::parse(text.as_bytes()).unwrap_or_else(|e| panic!("policy {name} does not parse: {e}"));
        policies.insert(name.clone(), parsed.policy);
    }
    let cases = data["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let source = case["source"].as_str().expect("source");
        let mut context = Context::new();
        if let Some(ctx) = case.get("context").and_then(Value::as_object) {
            for (key, value) in ctx {
                match value {
                    Value::String(s) => context.set(key, s.clone()),
                    Value::Array(items) => {
                        context.set_all(key, items.iter().map(|v| v.as_str().expect("string").to_owned()).collect());
                    }
                    other => panic!("{name}: context value {other}"),
                }
            }
        }
        let set: Vec<(&str, &Policy)> = case["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .map(|p| {
                let p = p.as_str().expect("policy name");
                (p, policies.get(p).unwrap_or_else(|| panic!("{name}: no policy {p}")))
            })
            .collect();
        let request = AccessRequest {
            action: case["action"].as_str().expect("action"),
            resource: case["resource"].as_str().expect("resource"),
            context: &context,
        };
        let decision = evaluate(&set, &request);
        let expected = effect(case["expect"].as_str().expect("expect"));
        let mut wrong = Vec::new();
        if decision.effect != expected {
            wrong.push(format!("effect {:?}, expected {expected:?}", decision.effect));
        }
        if let Some(sid) = case.get("sid").and_then(Value::as_str)
            && decision.sid != Some(sid)
        {
            wrong.push(format!("sid {:?}, expected {sid:?}", decision.sid));
        }
        if let Some(policy) = case.get("policy").and_then(Value::as_str)
            && decision.policy != Some(policy)
        {
            wrong.push(format!("policy {:?}, expected {policy:?}", decision.policy));
        }
        if expected == Effect::ImplicitDeny && (decision.sid.is_some() || decision.policy.is_some()) {
            wrong.push(format!("implicit deny names {:?}/{:?}", decision.policy, decision.sid));
        }
        if !wrong.is_empty() {
            failures.push(format!("  {name} [{source}]: {}", wrong.join("; ")));
        }
    }
    assert!(cases.len() >= 160, "only {} cases", cases.len());
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    eprintln!("{} AWS documentation cases passed", cases.len());
}
