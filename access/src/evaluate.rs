//! The decision: which of a principal's policies allow or deny a request.
//!
//! As AWS evaluates identity policies: deny unless something allows; a
//! matching Deny anywhere beats every Allow; the order of statements and of
//! policies never changes the effect, only which statement is named.

use serde::Serialize;

use crate::context::Context;
use crate::policy::{Policy, StatementEffect};

/// What is asked: one action on one resource, with its context.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// e.g. `s3:GetObject`
    pub action: &'a str,
    /// An ARN, e.g. `arn:aws:s3:::data/public/a.csv`, or `*`.
    pub resource: &'a str,
    pub context: &'a Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// The effect, and the policy and statement that decided it (none for an
/// implicit deny).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    pub effect: Effect,
    pub policy: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// Index of the deciding statement in its policy, from 0.
    pub statement: Option<usize>,
}

impl Decision<'_> {
    #[must_use]
    pub fn allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}

/// Evaluates as AWS documents for identity policies: default (implicit)
/// deny; any matching Deny wins over every Allow; statement and policy order
/// irrelevant to the effect. `policies` are (policy name, policy). The
/// decision names the policy and Sid that decided: for `ExplicitDeny` the
/// first matching Deny statement in the given order, for `Allow` the first
/// matching Allow statement, for `ImplicitDeny` none.
#[must_use]
pub fn evaluate<'a>(policies: &[(&'a str, &'a Policy)], request: &AccessRequest<'_>) -> Decision<'a> {
    // Actions are case-insensitive: lowercase the request's once, on the
    // stack, so that each pattern compares bytes (policy actions are ASCII
    // and lowercased at parse). A long or non-ASCII action is folded instead.
    let mut buf = [0u8; 128];
    let lowered = lowercase(request.action, &mut buf);
    let action = lowered.unwrap_or(request.action);
    let lowered = lowered.is_some();
    let mut allow: Option<Decision<'a>> = None;
    for (name, policy) in policies {
        for (index, statement) in policy.statements.iter().enumerate() {
            // Once something allows, only a Deny can change the answer.
            if statement.effect == StatementEffect::Allow && allow.is_some() {
                continue;
            }
            if !statement.applies(action, lowered, request.resource, request.context) {
                continue;
            }
            let decision = Decision {
                effect: Effect::Allow,
                policy: Some(*name),
                sid: statement.sid.as_deref(),
                statement: Some(index),
            };
            match statement.effect {
                StatementEffect::Deny => return Decision { effect: Effect::ExplicitDeny, ..decision },
                StatementEffect::Allow => allow = Some(decision),
            }
        }
    }
    allow.unwrap_or(Decision { effect: Effect::ImplicitDeny, policy: None, sid: None, statement: None })
}

pub(crate) fn lowercase<'b>(action: &str, buf: &'b mut [u8; 128]) -> Option<&'b str> {
    let bytes = action.as_bytes();
    if bytes.len() > buf.len() || !bytes.is_ascii() {
        return None;
    }
    let out = &mut buf[..bytes.len()];
    out.copy_from_slice(bytes);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}
