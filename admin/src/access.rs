//! Who may do what, as the admin API and the CLI change it: named policies
//! (validated and made canonical by `egress-access`), the built-in ones,
//! and the grants of principals (attached policies, tags, limits), each
//! change on the record; and [`GrantsCache`], the compiled view the data
//! plane and the policy simulator evaluate against.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, RwLock};

use egress_access::{Context, Policy, PolicySet};
use egress_ledger::Ledger;
use egress_ledger::access::{AccessError, AccessStore, Actor, Grants, Limits, StoredPolicy};
use egress_ledger::principals::{ANONYMOUS, PrincipalStore};
use http::StatusCode;
use serde::Serialize;

use crate::ApiError;

/// The built-in policies, read-only: (name, document).
const BUILTIN_DOCUMENTS: [(&str, &str); 3] = [
    (
        "read-only",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnly","Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]}"#,
    ),
    (
        "read-write",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadWrite","Effect":"Allow","Action":["s3:Get*","s3:List*","s3:CreateBucket","s3:PutObject","s3:PutObjectTagging","s3:PutObjectVersionTagging","s3:DeleteObject","s3:DeleteObjectVersion","s3:DeleteObjectTagging","s3:DeleteObjectVersionTagging","s3:AbortMultipartUpload","s3:RestoreObject"],"Resource":"*"}]}"#,
    ),
    (
        "full",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Full","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
    ),
];

/// A built-in policy: its name and parsed document.
#[derive(Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub policy: Arc<Policy>,
}

static BUILTINS: LazyLock<Vec<Builtin>> = LazyLock::new(|| {
    BUILTIN_DOCUMENTS
        .iter()
        .map(|(name, document)| match Policy::parse(document.as_bytes()) {
            Ok(parsed) => Builtin { name, policy: Arc::new(parsed.policy) },
            Err(e) => unreachable!("built-in policy {name} does not parse: {e}"),
        })
        .collect()
});

/// Every built-in policy.
#[must_use]
pub fn builtins() -> &'static [Builtin] {
    &BUILTINS
}

/// The built-in policy `name`, if it is one.
#[must_use]
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    builtins().iter().find(|b| b.name == name)
}

fn builtin_hashes() -> Vec<(&'static str, &'static str)> {
    builtins().iter().map(|b| (b.name, b.policy.sha256_hex())).collect()
}

/// Checks a policy name: 1-128 characters from `A-Z a-z 0-9 + = , . @ _ -`
/// (IAM's rule), not a built-in one.
pub fn validate_policy_name(name: &str) -> Result<(), ApiError> {
    let ok =
        (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if !ok {
        return Err(ApiError::bad_field(
            "name",
            &format!("{name:?}: use 1-128 characters from A-Z a-z 0-9 + = , . @ _ -"),
        ));
    }
    if builtin(name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("{name:?} is a built-in policy and cannot be changed; store yours under another name"),
        ));
    }
    Ok(())
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        match e {
            AccessError::NoSuchPolicy(_) => ApiError::not_found(e.to_string()),
            AccessError::Attached { .. } => ApiError::conflict(e.to_string()),
            AccessError::Ledger(e) => e.into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

fn access(ledger: &Ledger) -> Result<(&AccessStore, &PrincipalStore), ApiError> {
    let store = ledger.store().ok_or_else(|| ApiError::internal("the ledger was opened without its state store"))?;
    Ok((&store.access, &store.principals))
}

/// The known condition keys (crate `egress-access`) that no request through
/// the proxy carries, lowercased: a condition on one always sees it
/// missing, so storing a policy that uses one answers a warning. The data
/// plane's context (`proxy/src/authz/context.rs`) is tested against it.
pub const NEVER_SET: &[&str] = &[
    "aws:principalarn",
    "aws:sourcearn",
    "aws:requestedregion",
    "s3:signatureage",
    "s3:tlsversion",
    "s3:requestobjecttagkeys",
];

/// Prefixes of known keys no request carries.
pub const NEVER_SET_PREFIXES: &[&str] = &["s3:existingobjecttag/", "s3:requestobjecttag/"];

fn never_set(key: &str) -> bool {
    NEVER_SET.contains(&key) || NEVER_SET_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// What storing a policy answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyStored {
    pub name: String,
    /// SHA-256 of the canonical document, as recorded in the ledger.
    pub sha256: String,
    /// Statements the proxy will evaluate but that may not do what was
    /// meant, e.g. a condition key it does not know (it never matches).
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<egress_access::Warning>,
}

/// Validates, stores and records a policy document. Blocking.
pub fn put_policy(ledger: &Ledger, name: &str, document: &[u8], by: &Actor) -> Result<PolicyStored, ApiError> {
    validate_policy_name(name)?;
    let mut parsed = Policy::parse(document)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_policy", e.to_string()))?;
    let mut missing: Vec<(usize, String)> = parsed
        .policy
        .condition_keys()
        .into_iter()
        .filter(|(_, key)| never_set(key))
        .map(|(statement, key)| (statement, key.to_owned()))
        .collect();
    missing.dedup();
    for (statement, key) in missing {
        parsed.warnings.push(egress_access::Warning {
            statement,
            sid: None,
            message: format!(
                "Statement[{statement}]: the condition key {key} is known but no request through this proxy carries it: \
                 it always evaluates as missing"
            ),
        });
    }
    let stored = StoredPolicy {
        name: name.to_owned(),
        document: parsed.policy.canonical_json().to_owned(),
        sha256: parsed.policy.sha256_hex().to_owned(),
        updated: egress_ledger::access::timestamp(),
    };
    ledger.put_policy_blocking(&stored, by)?;
    Ok(PolicyStored { name: stored.name, sha256: stored.sha256, warnings: parsed.warnings })
}

/// Deletes and records a policy no principal has attached. Blocking.
pub fn delete_policy(ledger: &Ledger, name: &str, by: &Actor) -> Result<(), ApiError> {
    if builtin(name).is_some() {
        return Err(ApiError::conflict(format!("{name:?} is a built-in policy and cannot be deleted")));
    }
    ledger.delete_policy_blocking(name, by)?;
    Ok(())
}

/// A policy as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyBody {
    pub name: String,
    pub builtin: bool,
    pub sha256: String,
    /// RFC 3339; null for built-in policies.
    pub updated: Option<String>,
    /// The canonical document.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    /// Principals it is attached to.
    pub attached_to: Vec<String>,
}

/// One policy, built-in or stored. Blocking.
pub fn get_policy(ledger: &Ledger, name: &str) -> Result<PolicyBody, ApiError> {
    let (store, _) = access(ledger)?;
    let attached_to = store.attached_to(name)?;
    if let Some(b) = builtin(name) {
        return Ok(builtin_body(b, attached_to));
    }
    let stored = store.policy(name)?.ok_or_else(|| ApiError::not_found(format!("no policy named {name:?}")))?;
    Ok(stored_body(stored, attached_to))
}

fn builtin_body(b: &Builtin, attached_to: Vec<String>) -> PolicyBody {
    PolicyBody {
        name: b.name.to_owned(),
        builtin: true,
        sha256: b.policy.sha256_hex().to_owned(),
        updated: None,
        document: serde_json::from_str(b.policy.canonical_json()).unwrap_or_default(),
        attached_to,
    }
}

fn stored_body(p: StoredPolicy, attached_to: Vec<String>) -> PolicyBody {
    PolicyBody {
        document: serde_json::from_str(&p.document).unwrap_or_default(),
        name: p.name,
        builtin: false,
        sha256: p.sha256,
        updated: Some(p.updated),
        attached_to,
    }
}

/// Every policy: the built-in ones, then the stored ones by name. Blocking.
pub fn list_policies(ledger: &Ledger) -> Result<Vec<PolicyBody>, ApiError> {
    let (store, _) = access(ledger)?;
    let grants = store.all_grants()?;
    let attached = |name: &str| -> Vec<String> {
        grants.iter().filter(|(_, g)| g.policies.iter().any(|p| p == name)).map(|(n, _)| n.clone()).collect()
    };
    let mut out: Vec<PolicyBody> = builtins().iter().map(|b| builtin_body(b, attached(b.name))).collect();
    for stored in store.policies()? {
        let names = attached(&stored.name);
        out.push(stored_body(stored, names));
    }
    Ok(out)
}

fn require_principal(principals: &PrincipalStore, name: &str) -> Result<(), ApiError> {
    if name == ANONYMOUS || principals.get(name)?.is_some() {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no principal named {name:?}")))
    }
}

/// Changes a principal's grants with `change` and records the result.
/// Blocking.
pub fn update_grants(
    ledger: &Ledger,
    principal: &str,
    by: &Actor,
    change: impl FnOnce(&mut Grants) -> Result<(), ApiError>,
) -> Result<Grants, ApiError> {
    let (store, principals) = access(ledger)?;
    require_principal(principals, principal)?;
    let mut grants = store.grants(principal)?;
    change(&mut grants)?;
    check_limits(&grants.limits)?;
    ledger.set_grants_blocking(principal, &grants, &builtin_hashes(), by)?;
    Ok(grants)
}

/// Checks limits for values that cannot work.
pub fn check_limits(limits: &Limits) -> Result<(), ApiError> {
    for (i, quota) in limits.quotas.iter().enumerate() {
        if quota.bytes == 0 {
            return Err(ApiError::bad_field(&format!("quotas[{i}].bytes"), "must be at least 1"));
        }
        if let Some(bucket) = &quota.bucket
            && (bucket.is_empty() || bucket.len() > 255)
        {
            return Err(ApiError::bad_field(&format!("quotas[{i}].bucket"), "must be a bucket name"));
        }
    }
    if limits.bandwidth_bytes_per_second == Some(0) {
        return Err(ApiError::bad_field("bandwidth_bytes_per_second", "must be at least 1 (omit it for no cap)"));
    }
    if limits.requests_per_second == Some(0) {
        return Err(ApiError::bad_field("requests_per_second", "must be at least 1 (omit it for no cap)"));
    }
    Ok(())
}

/// Checks the names of policies to attach: each built-in or stored, none
/// twice.
pub fn check_policy_names(ledger: &Ledger, names: &[String]) -> Result<(), ApiError> {
    let (store, _) = access(ledger)?;
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(ApiError::bad_field("policies", &format!("{name:?} is named twice")));
        }
        if builtin(name).is_none() && store.policy(name)?.is_none() {
            return Err(ApiError::not_found(format!("no policy named {name:?}")));
        }
    }
    Ok(())
}

/// Checks principal tags: at most 50, keys 1-128 and values 0-256
/// characters (IAM's limits).
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(ApiError::bad_field("tags", "at most 50 tags"));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(ApiError::bad_field("tags", &format!("tag key {key:?} must have 1-128 characters")));
        }
        if value.chars().count() > 256 {
            return Err(ApiError::bad_field("tags", &format!("the value of tag {key:?} has over 256 characters")));
        }
    }
    Ok(())
}

/// One attached policy, compiled.
#[derive(Debug, Clone)]
pub struct Attached {
    pub name: String,
    pub sha256: String,
    pub policy: Arc<Policy>,
}

/// What a principal may do, compiled for evaluation.
#[derive(Debug, Default)]
pub struct Compiled {
    /// The attached policies in order, with their hashes.
    pub policies: Vec<Attached>,
    /// The same policies, indexed by action for evaluation.
    set: PolicySet,
    pub tags: BTreeMap<String, String>,
    pub limits: Limits,
}

impl Compiled {
    /// Compiles `policies` (in order) with the tags and limits beside them.
    #[must_use]
    pub fn new(policies: Vec<Attached>, tags: BTreeMap<String, String>, limits: Limits) -> Compiled {
        let set = PolicySet::new(policies.iter().map(|a| (a.name.clone(), Arc::clone(&a.policy))).collect());
        Compiled { policies, set, tags, limits }
    }

    /// Loads a principal's grants and parses its policies. A stored
    /// document that no longer parses (it did when stored) is left out,
    /// loudly: leaving it out can only take permissions away.
    fn load(store: &AccessStore, principal: &str) -> Result<Compiled, AccessError> {
        let grants = store.grants(principal)?;
        let mut policies = Vec::with_capacity(grants.policies.len());
        for name in &grants.policies {
            if let Some(b) = builtin(name) {
                policies.push(Attached {
                    name: name.clone(),
                    sha256: b.policy.sha256_hex().to_owned(),
                    policy: Arc::clone(&b.policy),
                });
                continue;
            }
            let Some(stored) = store.policy(name)? else {
                tracing::error!(principal, policy = name, "an attached policy is missing from the store; ignored");
                continue;
            };
            match Policy::parse(stored.document.as_bytes()) {
                Ok(parsed) => {
                    policies.push(Attached {
                        name: name.clone(),
                        sha256: stored.sha256,
                        policy: Arc::new(parsed.policy),
                    });
                }
                Err(e) => {
                    tracing::error!(principal, policy = name, error = %e, "a stored policy does not parse; ignored");
                }
            }
        }
        Ok(Compiled::new(policies, grants.tags, grants.limits))
    }

    /// Evaluates one permission against the attached policies.
    #[must_use]
    pub fn evaluate<'a>(&'a self, action: &str, resource: &str, context: &Context) -> Evaluated<'a> {
        let request = egress_access::AccessRequest { action, resource, context };
        let decision = self.set.evaluate(&request);
        let attached = decision.policy.and_then(|name| self.policies.iter().find(|a| a.name == name));
        Evaluated { effect: decision.effect, attached, sid: decision.sid.map(str::to_owned) }
    }

    /// The context keys every request of this principal carries:
    /// `aws:username` and `aws:PrincipalTag/<key>`.
    pub fn principal_context(&self, principal: &str, context: &mut Context) {
        context.set("aws:username", principal);
        context.set("aws:userid", principal);
        for (key, value) in &self.tags {
            context.set(&format!("aws:PrincipalTag/{key}"), value.clone());
        }
    }
}

/// Sets `aws:CurrentTime` (ISO 8601, UTC) and `aws:EpochTime` (seconds).
pub fn now_context(context: &mut Context, now: std::time::SystemTime) {
    context.set("aws:CurrentTime", humantime::format_rfc3339_seconds(now).to_string());
    let epoch = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    context.set("aws:EpochTime", epoch.to_string());
}

/// The name of an effect in answers and records.
#[must_use]
pub fn effect_name(effect: egress_access::Effect) -> &'static str {
    match effect {
        egress_access::Effect::Allow => "allow",
        egress_access::Effect::ExplicitDeny => "explicit_deny",
        egress_access::Effect::ImplicitDeny => "implicit_deny",
    }
}

/// What the proxy would decide.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SimulateAnswer {
    /// `allow`, `explicit_deny` or `implicit_deny`.
    pub decision: String,
    /// The deciding policy (null for an implicit deny).
    pub policy: Option<String>,
    pub policy_sha256: Option<String>,
    pub sid: Option<String>,
    /// The policies evaluated, in order.
    pub evaluated: Vec<String>,
}

/// Evaluates `action` on `resource` for `principal` (or `anonymous`) with
/// its attached policies, as the proxy does for a request: `aws:username`,
/// `aws:userid` and `aws:PrincipalTag/*` come from the principal,
/// `aws:CurrentTime` and `aws:EpochTime` are now unless `context` gives
/// them. Blocking.
pub fn simulate(
    ledger: &Ledger,
    grants: &GrantsCache,
    principal: &str,
    action: &str,
    resource: &str,
    context: &[(String, Vec<String>)],
) -> Result<SimulateAnswer, ApiError> {
    let (_, principals) = access(ledger)?;
    require_principal(principals, principal)?;
    let compiled = grants.get(principal)?;
    let mut request_context = Context::new();
    now_context(&mut request_context, std::time::SystemTime::now());
    if principal != ANONYMOUS {
        compiled.principal_context(principal, &mut request_context);
    }
    for (key, values) in context {
        match values.as_slice() {
            [one] => request_context.set(key, one.clone()),
            _ => request_context.set_all(key, values.clone()),
        }
    }
    let evaluated = compiled.evaluate(action, resource, &request_context);
    Ok(SimulateAnswer {
        decision: effect_name(evaluated.effect).to_owned(),
        policy: evaluated.attached.map(|a| a.name.clone()),
        policy_sha256: evaluated.attached.map(|a| a.sha256.clone()),
        sid: evaluated.sid,
        evaluated: compiled.policies.iter().map(|a| a.name.clone()).collect(),
    })
}

/// The result of one evaluation.
#[derive(Debug, Clone)]
pub struct Evaluated<'a> {
    pub effect: egress_access::Effect,
    /// The deciding policy (none for an implicit deny).
    pub attached: Option<&'a Attached>,
    pub sid: Option<String>,
}

/// The compiled grants of principals, loaded on first use and dropped
/// whenever the store changes (any write through any clone of it bumps its
/// generation), so a change takes effect on the next request.
#[derive(Debug)]
pub struct GrantsCache {
    store: AccessStore,
    inner: RwLock<(u64, HashMap<String, Arc<Compiled>>)>,
}

/// Principals whose compiled grants one cache keeps, at most; past that it
/// starts over (principals are ones we issued, so this is rarely reached).
const CACHED_PRINCIPALS: usize = 4096;

impl GrantsCache {
    #[must_use]
    pub fn new(store: AccessStore) -> GrantsCache {
        GrantsCache { store, inner: RwLock::new((0, HashMap::new())) }
    }

    /// The compiled grants of `principal` as they are now.
    pub fn get(&self, principal: &str) -> Result<Arc<Compiled>, AccessError> {
        let generation = self.store.generation();
        {
            let inner = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if inner.0 == generation
                && let Some(hit) = inner.1.get(principal)
            {
                return Ok(Arc::clone(hit));
            }
        }
        let compiled = Arc::new(Compiled::load(&self.store, principal)?);
        let mut inner = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.0 < generation || inner.1.len() >= CACHED_PRINCIPALS {
            *inner = (generation, HashMap::new());
        }
        // A newer generation may have been cached meanwhile: this one is
        // then stale and only answers the request that loaded it.
        if inner.0 == generation {
            inner.1.insert(principal.to_owned(), Arc::clone(&compiled));
        }
        Ok(compiled)
    }

    /// Whether any policy is attached to `anonymous` (else unsigned
    /// requests are refused before anything is evaluated).
    pub fn anonymous_enabled(&self) -> Result<bool, AccessError> {
        Ok(!self.get(ANONYMOUS)?.policies.is_empty())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use super::*;

    #[test]
    fn builtins_parse_and_are_reserved() {
        assert_eq!(builtins().len(), 3);
        for b in builtins() {
            assert_eq!(b.policy.sha256_hex().len(), 64);
            assert_eq!(validate_policy_name(b.name).unwrap_err().status, StatusCode::CONFLICT);
        }
        assert!(validate_policy_name("team-data_2026").is_ok());
        assert_eq!(validate_policy_name("bad name").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(validate_policy_name("").unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    /// docs/POLICIES.md shows each built-in's canonical document and hash,
    /// which `grants_set` notes name: an auditor reads them there.
    #[test]
    fn the_docs_hold_each_builtin_as_it_is() {
        let doc = include_str!("../../docs/POLICIES.md");
        for b in builtins() {
            assert!(doc.contains(b.policy.sha256_hex()), "POLICIES.md lacks the hash of {}", b.name);
            assert!(doc.contains(b.policy.canonical_json()), "POLICIES.md lacks the document of {}", b.name);
        }
    }

    #[test]
    fn read_only_reads_and_writes_nothing() {
        let compiled = Compiled::new(
            vec![Attached {
                name: "read-only".into(),
                sha256: String::new(),
                policy: Arc::clone(&builtin("read-only").unwrap().policy),
            }],
            BTreeMap::new(),
            Limits::default(),
        );
        let context = Context::new();
        let get = compiled.evaluate("s3:GetObject", "arn:aws:s3:::b/k", &context);
        assert_eq!(get.effect, egress_access::Effect::Allow);
        assert_eq!(get.attached.unwrap().name, "read-only");
        assert_eq!(get.sid.as_deref(), Some("ReadOnly"));
        for action in ["s3:PutObject", "s3:DeleteObject", "s3:PutBucketPolicy", "s3:DeleteBucket"] {
            let denied = compiled.evaluate(action, "arn:aws:s3:::b/k", &context);
            assert_eq!(denied.effect, egress_access::Effect::ImplicitDeny, "{action}");
        }
    }
}
