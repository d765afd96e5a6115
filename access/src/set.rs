//! A principal's policies, compiled once, evaluated many times.
//!
//! Whether a statement's `Action`/`NotAction` matches depends on the action
//! alone, and a proxy asks about a few dozen S3 actions over and over. A
//! [`PolicySet`] remembers, per action, which statements match it (in
//! policy and statement order), so that an evaluation looks only at those:
//! their resources and conditions, the parts that depend on the request.
//! The answer is by construction the one [`crate::evaluate`] gives (the
//! same statements, in the same order, with the same rule); a property test
//! checks it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::evaluate::{AccessRequest, Decision, Effect, lowercase};
use crate::policy::{Policy, StatementEffect};

/// Actions remembered at most; past that, an action's statements are found
/// anew on each evaluation (only callers inventing actions get there).
const REMEMBERED_ACTIONS: usize = 512;

/// (policy index, statement index) of every statement matching an action.
type Candidates = Arc<[(u32, u32)]>;

/// Named policies in order, with the statements each action can reach.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<(String, Arc<Policy>)>,
    by_action: RwLock<HashMap<Box<str>, Candidates>>,
}

impl PolicySet {
    /// The set of `policies`, (name, policy), in the order given.
    #[must_use]
    pub fn new(policies: Vec<(String, Arc<Policy>)>) -> PolicySet {
        PolicySet { policies, by_action: RwLock::default() }
    }

    /// The policies, in order.
    #[must_use]
    pub fn policies(&self) -> &[(String, Arc<Policy>)] {
        &self.policies
    }

    fn candidates(&self, action: &str, lowered: bool) -> Candidates {
        if let Some(found) = self.by_action.read().unwrap_or_else(PoisonError::into_inner).get(action) {
            return Arc::clone(found);
        }
        let mut found = Vec::new();
        for (p, (_, policy)) in self.policies.iter().enumerate() {
            for (s, statement) in policy.statements.iter().enumerate() {
                if statement.matches_action(action, lowered) {
                    found.push((p as u32, s as u32));
                }
            }
        }
        let found: Candidates = found.into();
        let mut remembered = self.by_action.write().unwrap_or_else(PoisonError::into_inner);
        if remembered.len() < REMEMBERED_ACTIONS {
            remembered.insert(action.into(), Arc::clone(&found));
        }
        found
    }

    /// Evaluates `request` exactly as [`crate::evaluate`] does over these
    /// policies: default deny, any matching Deny wins, the first matching
    /// Allow (in policy and statement order) is named.
    #[must_use]
    pub fn evaluate(&self, request: &AccessRequest<'_>) -> Decision<'_> {
        let mut buf = [0u8; 128];
        let lowered = lowercase(request.action, &mut buf);
        let action = lowered.unwrap_or(request.action);
        let candidates = self.candidates(action, lowered.is_some());
        let mut allow: Option<Decision<'_>> = None;
        for &(p, s) in candidates.iter() {
            let (name, policy) = &self.policies[p as usize];
            let statement = &policy.statements[s as usize];
            if statement.effect == StatementEffect::Allow && allow.is_some() {
                continue;
            }
            if !statement.applies_to(request.resource, request.context) {
                continue;
            }
            let decision = Decision {
                effect: Effect::Allow,
                policy: Some(name.as_str()),
                sid: statement.sid.as_deref(),
                statement: Some(s as usize),
            };
            match statement.effect {
                StatementEffect::Deny => return Decision { effect: Effect::ExplicitDeny, ..decision },
                StatementEffect::Allow => allow = Some(decision),
            }
        }
        allow.unwrap_or(Decision { effect: Effect::ImplicitDeny, policy: None, sid: None, statement: None })
    }
}
