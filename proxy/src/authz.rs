//! Step 4 of the path: may this principal do what this request asks?
//!
//! Every permission the request needs ([`crate::s3::permission::required`])
//! is evaluated against the principal's attached policies (default deny,
//! an explicit Deny wins); then its limits: request rate, and whether any
//! byte quota has budget left. The decision (policy and Sid, or the limit)
//! goes into the start record; a quota is checked again against the
//! response's length before its body starts ([`Granted::reserve`]).
//!
//! - [`context`]: the condition keys of a request;
//! - [`limits`]: quotas, request rate and bandwidth counters on this node;
//! - [`source_ip`]: `aws:SourceIp` behind trusted proxies;
//! - [`throttle`]: a response body paced to a bandwidth cap.

pub mod context;
pub mod limits;
pub mod source_ip;
pub mod throttle;

use std::sync::Arc;
use std::time::SystemTime;

use egress_access::Effect as PolicyEffect;
use egress_admin::access::{Compiled, GrantsCache};
use egress_ledger::{Decision, Effect};
use http::HeaderMap;

use self::context::Origin;
use self::limits::{LimitState, Meter, QuotaExceeded, Reservation};
use self::source_ip::Cidr;
use crate::s3::error::{ErrorCode, S3Error};
use crate::s3::permission;
use crate::s3::request::S3Request;

/// What authorization needs, shared by all connections.
#[derive(Debug)]
pub struct Authorizer {
    pub grants: Arc<GrantsCache>,
    pub limits: Arc<LimitState>,
    /// Peers whose `X-Forwarded-For` is believed (`--trusted-proxies`).
    pub trusted_proxies: Vec<Cidr>,
}

/// An allowed request: the decision to record, and what its limits need
/// while it runs.
#[derive(Debug)]
pub struct Granted {
    pub decision: Decision,
    principal: String,
    compiled: Arc<Compiled>,
    bucket: Option<String>,
    meter: Option<Arc<Meter>>,
}

/// A refused request: the decision to record and the answer.
#[derive(Debug)]
pub struct Refused {
    pub decision: Decision,
    pub error: S3Error,
}

fn decision(effect: Effect, action: &str, resource: &str) -> Decision {
    Decision {
        effect,
        action: Some(action.to_owned()),
        resource: Some(resource.to_owned()),
        policy: None,
        policy_sha256: None,
        sid: None,
        limit: None,
        detail: None,
    }
}

fn limit_decision(limit: String, detail: String) -> Decision {
    Decision {
        effect: Effect::LimitExceeded,
        action: None,
        resource: None,
        policy: None,
        policy_sha256: None,
        sid: None,
        limit: Some(limit),
        detail: Some(detail),
    }
}

impl Authorizer {
    /// Decides on `request` from `origin`. Reads the state store when a
    /// principal's compiled grants are stale, and the ledger when a quota
    /// counter is first used in its window (off the async workers).
    pub async fn authorize(
        &self,
        origin: &Origin<'_>,
        request: &S3Request,
        headers: &HeaderMap,
    ) -> Result<Granted, Box<Refused>> {
        let principal = origin.principal;
        let compiled = match self.grants.get(principal) {
            Ok(compiled) => compiled,
            Err(e) => {
                tracing::error!(principal, error = %e, "could not read the principal's grants; refusing");
                return Err(Box::new(Refused {
                    decision: Decision {
                        effect: Effect::ImplicitDeny,
                        action: None,
                        resource: None,
                        policy: None,
                        policy_sha256: None,
                        sid: None,
                        limit: None,
                        detail: Some(format!("the principal's grants could not be read: {e}")),
                    },
                    error: S3Error::new(ErrorCode::ServiceUnavailable, "The proxy cannot read its policies right now."),
                }));
            }
        };
        let context = context::request_context(origin, &compiled, request, headers);
        let mut allowed: Option<Decision> = None;
        for needed in permission::required(request, headers) {
            let action = needed.action.name();
            let evaluated = compiled.evaluate(action, &needed.resource, &context);
            let effect = match evaluated.effect {
                PolicyEffect::Allow => Effect::Allow,
                PolicyEffect::ExplicitDeny => Effect::ExplicitDeny,
                PolicyEffect::ImplicitDeny => Effect::ImplicitDeny,
            };
            let mut made = decision(effect, action, &needed.resource);
            made.policy = evaluated.attached.map(|a| a.name.clone());
            made.policy_sha256 = evaluated.attached.map(|a| a.sha256.clone());
            made.sid.clone_from(&evaluated.sid);
            if effect != Effect::Allow {
                let because = match (&made.policy, &made.sid) {
                    (Some(policy), Some(sid)) => format!("statement {sid} of policy {policy} denies it"),
                    (Some(policy), None) => format!("policy {policy} denies it"),
                    _ => "no policy attached to it allows it".to_owned(),
                };
                let message = format!(
                    "{principal} is not authorized to perform {action} on {} because {because}.",
                    needed.resource
                );
                return Err(Box::new(Refused {
                    decision: made,
                    error: S3Error::new(ErrorCode::AccessDenied, message),
                }));
            }
            // The first permission (the operation's own) is the one recorded.
            allowed.get_or_insert(made);
        }
        let Some(decision) = allowed else {
            unreachable!("every request needs at least its operation's own permission")
        };

        let limits = &compiled.limits;
        let meter = (!limits.is_empty()).then(|| self.limits.meter(principal));
        if let (Some(meter), Some(per_second)) = (&meter, limits.requests_per_second)
            && let Err(wait) = meter.admit_request(per_second, std::time::Instant::now())
        {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let detail = format!("request rate cap of {per_second} per second reached");
            return Err(Box::new(Refused {
                decision: limit_decision("rate".to_owned(), detail.clone()),
                error: S3Error::new(ErrorCode::SlowDown, format!("Please reduce your request rate: {detail}."))
                    .with_retry_after(seconds),
            }));
        }
        let bucket = request.target.bucket.clone();
        if !limits.quotas.is_empty() {
            if !self.limits.seeded(principal, limits, bucket.as_deref(), origin.now) {
                let (state, principal, compiled, bucket, now) =
                    (Arc::clone(&self.limits), principal.to_owned(), Arc::clone(&compiled), bucket.clone(), origin.now);
                let seeded = tokio::task::spawn_blocking(move || {
                    state.seed(&principal, &compiled.limits, bucket.as_deref(), now);
                })
                .await;
                if let Err(e) = seeded {
                    tracing::error!(error = %e, "quota seeding task failed");
                }
            }
            // Is anything left at all? (The length is checked once known.)
            if let Err(exceeded) = self.limits.reserve(principal, limits, bucket.as_deref(), 0, origin.now) {
                return Err(Box::new(quota_refusal(&exceeded)));
            }
        }
        Ok(Granted { decision, principal: principal.to_owned(), compiled, bucket, meter })
    }
}

/// The refusal of a transfer a quota cannot cover: 403, which clients do
/// not retry (a 503 they would).
#[must_use]
pub fn quota_refusal(exceeded: &QuotaExceeded) -> Refused {
    let detail = exceeded.detail();
    Refused {
        decision: limit_decision(exceeded.limit(), detail.clone()),
        error: S3Error::new(ErrorCode::AccessDenied, format!("Access Denied: {detail}.")),
    }
}

impl Granted {
    /// Reserves `bytes` (the response's length) on the principal's quotas
    /// before the body starts; the reservation settles when it ends.
    pub fn reserve(&self, authorizer: &Authorizer, bytes: u64) -> Result<Option<Reservation>, Box<Refused>> {
        let limits = &self.compiled.limits;
        if limits.quotas.is_empty() {
            return Ok(None);
        }
        authorizer
            .limits
            .reserve(&self.principal, limits, self.bucket.as_deref(), bytes, SystemTime::now())
            .map_err(|e| Box::new(quota_refusal(&e)))
    }

    /// The bandwidth cap and the bucket it draws from, if the principal
    /// has one.
    #[must_use]
    pub fn bandwidth(&self) -> Option<(Arc<Meter>, u64)> {
        let rate = self.compiled.limits.bandwidth_bytes_per_second?;
        self.meter.as_ref().map(|m| (Arc::clone(m), rate))
    }
}
