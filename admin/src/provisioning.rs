//! Provisioning of the upstream AWS side: the data bucket, the log bucket,
//! their policies and a CloudTrail trail, from a declarative spec kept in
//! the sled store.
//!
//! Applying is a plan followed by its execution: every [`Step`] is read
//! back and compared with the spec first, then only the steps that are
//! missing or drifted are put in place. So applying twice changes nothing
//! the second time, a dry run is the plan alone, and `GET` is the plan
//! read as drift. `docs/PROVISIONING.md` describes what each step sets and
//! why.
//!
//! The one state an apply does not correct is an archive bucket that exists
//! without Object Lock: that step and the ones under it fail, and nothing is
//! sent for them.

pub mod policy;
pub mod spec;
pub mod steps;

use aws_smithy_http_client::tls::Provider;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_types::region::Region;
use serde::Serialize;

pub use spec::{ProvisioningSpec, SpecError};
use steps::{Aws, Observed};
pub use steps::{AwsFailure, NO_OBJECT_LOCK, Step};

/// Applies provisioning specs with the AWS SDK and keeps them by name.
#[derive(Debug)]
pub struct Provisioner {
    sdk: aws_types::SdkConfig,
    /// Path-style addressing is needed for an emulator at a plain URL.
    custom_endpoint: bool,
    specs: sled::Tree,
    /// One apply at a time: two interleaved applies of overlapping specs
    /// would each undo the other's corrections.
    applying: tokio::sync::Mutex<()>,
}

/// Provisioning could not be answered (AWS refusals are not errors here:
/// they are step results).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisioningError {
    #[error("no provisioning spec named {0:?}; PUT one first")]
    NotFound(String),
    #[error("the provisioning store failed: {0}")]
    Store(#[from] sled::Error),
    #[error("the stored spec {name:?} is unreadable ({reason}); PUT it again")]
    Corrupt { name: String, reason: String },
}

/// What applying did, or would do, to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    Created,
    Updated,
    Unchanged,
    Failed,
    /// Dry run: missing, would be created.
    WouldCreate,
    /// Dry run: drifted, would be corrected.
    WouldUpdate,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepOutcome {
    pub step: Step,
    /// ARN of the bucket or trail the step configures.
    pub resource: String,
    pub result: StepResult,
    /// How a drifted step differed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The AWS error of a failed step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<AwsFailure>,
}

/// The answer to `PUT /v1/provisioning/{name}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApplyReport {
    pub name: String,
    pub dry_run: bool,
    pub spec: ProvisioningSpec,
    pub steps: Vec<StepOutcome>,
    /// `GetTrailStatus.IsLogging` after applying; absent if the trail does
    /// not exist or its status could not be read.
    pub trail_is_logging: Option<bool>,
}

impl ApplyReport {
    pub fn failures(&self) -> impl Iterator<Item = &StepOutcome> {
        self.steps.iter().filter(|s| s.result == StepResult::Failed)
    }
}

/// A step's live configuration against the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    InSync,
    Missing,
    Drifted,
    /// It could not be read (see `error`).
    Unknown,
    /// It differs in a way no apply corrects (an archive bucket made
    /// without Object Lock); `error` says what to do.
    Unfixable,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepStatus {
    pub step: Step,
    pub resource: String,
    pub state: StepState,
    /// Whether the next apply would change this step.
    pub drift: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<AwsFailure>,
}

/// The answer to `GET /v1/provisioning/{name}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StateReport {
    pub name: String,
    pub spec: ProvisioningSpec,
    /// Whether any step is missing or drifted.
    pub drift: bool,
    pub steps: Vec<StepStatus>,
    pub trail_is_logging: Option<bool>,
}

/// The HTTP client of every AWS call: hyper 1 and rustls with ring, the
/// stack the data plane uses, instead of the SDK's default one.
#[must_use]
pub fn https_client() -> aws_types::sdk_config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

impl Provisioner {
    /// AWS clients come from the standard chain; `aws_endpoint` points all of
    /// them at an emulator (moto) for dev and tests. `region` is where the
    /// chain itself looks things up; each spec names its own region.
    pub async fn new(aws_endpoint: Option<String>, region: String, specs: sled::Tree) -> Provisioner {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(https_client())
            .region(Region::new(region));
        if let Some(endpoint) = aws_endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        Provisioner::with_sdk_config(loader.load().await, specs)
    }

    /// Over an AWS configuration built by the caller (tests: fixed
    /// credentials and an emulator's endpoint).
    #[must_use]
    pub fn with_sdk_config(sdk: aws_types::SdkConfig, specs: sled::Tree) -> Provisioner {
        let custom_endpoint = sdk.endpoint_url().is_some();
        Provisioner { sdk, custom_endpoint, specs, applying: tokio::sync::Mutex::new(()) }
    }

    fn aws(&self, region: &str) -> Aws {
        let s3 = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_owned()))
            .force_path_style(self.custom_endpoint)
            .build();
        let cloudtrail =
            aws_sdk_cloudtrail::config::Builder::from(&self.sdk).region(Region::new(region.to_owned())).build();
        Aws { s3: aws_sdk_s3::Client::from_conf(s3), cloudtrail: aws_sdk_cloudtrail::Client::from_conf(cloudtrail) }
    }

    /// An S3 client for `region` on this AWS configuration (reconciliation
    /// reads the log bucket with it).
    #[must_use]
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        self.aws(region).s3
    }

    /// The names of the stored specs, in order.
    pub fn names(&self) -> Result<Vec<String>, ProvisioningError> {
        let mut names = Vec::new();
        for item in &self.specs {
            let (key, _) = item?;
            names.push(String::from_utf8_lossy(&key).into_owned());
        }
        Ok(names)
    }

    /// The stored spec called `name`.
    pub fn spec(&self, name: &str) -> Result<ProvisioningSpec, ProvisioningError> {
        let bytes = self.specs.get(name.as_bytes())?.ok_or_else(|| ProvisioningError::NotFound(name.to_owned()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ProvisioningError::Corrupt { name: name.to_owned(), reason: e.to_string() })
    }

    /// Stores `spec` as `name` and applies it; with `dry_run`, stores
    /// nothing and changes nothing, and answers the plan.
    pub async fn apply(
        &self,
        name: &str,
        spec: ProvisioningSpec,
        dry_run: bool,
    ) -> Result<ApplyReport, ProvisioningError> {
        let _one_at_a_time = self.applying.lock().await;
        if !dry_run {
            // Kept before applying, so that a half-applied spec can be
            // looked at with GET and applied again.
            let bytes = serde_json::to_vec(&spec)
                .map_err(|e| ProvisioningError::Corrupt { name: name.to_owned(), reason: e.to_string() })?;
            self.specs.insert(name.as_bytes(), bytes)?;
            self.specs.flush_async().await?;
        }
        let aws = self.aws(&spec.region);
        let planned = Step::of(&spec);
        let mut plan = Vec::with_capacity(planned.len());
        for step in planned {
            plan.push((step, aws.observe(&spec, step).await));
        }
        // A configuration missing from a bucket or trail that exists was
        // removed, so putting it back is an update; on a new one, a creation.
        let new_parents: Vec<Step> =
            plan.iter().filter(|(_, o)| matches!(o, Ok(Observed::Missing))).map(|(step, _)| *step).collect();
        // Nothing is sent to a bucket that cannot be made what the spec says.
        let unfixable: Vec<(Step, AwsFailure)> = plan
            .iter()
            .filter_map(|(step, o)| match o {
                Ok(Observed::Unfixable(why)) => Some((*step, why.clone())),
                _ => None,
            })
            .collect();
        let mut steps = Vec::with_capacity(plan.len());
        for (step, observed) in plan {
            let creates = step.parent().is_none_or(|parent| new_parents.contains(&parent));
            let blocked = step.parent().and_then(|parent| unfixable.iter().find(|(p, _)| *p == parent));
            let (result, detail, error) = match (observed, blocked) {
                (Err(e), _) => (StepResult::Failed, None, Some(e)),
                (Ok(Observed::Unfixable(why)), _) => (StepResult::Failed, None, Some(why)),
                (Ok(Observed::Missing | Observed::Drifted(_)), Some((_, why))) => {
                    let message = format!("not attempted: {}", why.message);
                    (StepResult::Failed, None, Some(AwsFailure { code: why.code.clone(), message }))
                }
                (Ok(observed), _) => match observed {
                    Observed::InSync => (StepResult::Unchanged, None, None),
                    Observed::Missing if dry_run && creates => (StepResult::WouldCreate, None, None),
                    Observed::Missing if dry_run => (StepResult::WouldUpdate, Some("missing".to_owned()), None),
                    Observed::Drifted(how) if dry_run => (StepResult::WouldUpdate, Some(how), None),
                    observed => {
                        let (done, detail) = match &observed {
                            Observed::Drifted(how) => (StepResult::Updated, Some(how.clone())),
                            Observed::Missing if !creates => (StepResult::Updated, Some("missing".to_owned())),
                            _ => (StepResult::Created, None),
                        };
                        match aws.enforce(&spec, step, &observed).await {
                            Ok(()) => (done, detail, None),
                            Err(e) => (StepResult::Failed, detail, Some(e)),
                        }
                    }
                },
            };
            if let Some(e) = &error {
                tracing::warn!(provisioning = name, step = ?step, code = %e.code, message = %e.message, "provisioning step failed");
            } else if matches!(result, StepResult::Created | StepResult::Updated) {
                tracing::info!(provisioning = name, step = ?step, result = ?result, "provisioning step applied");
            }
            steps.push(StepOutcome { step, resource: step.resource(&spec), result, detail, error });
        }
        let trail_is_logging = aws.trail_is_logging(&spec).await.ok().flatten();
        Ok(ApplyReport { name: name.to_owned(), dry_run, spec, steps, trail_is_logging })
    }

    /// The stored spec and how the live configuration compares with it.
    pub async fn state(&self, name: &str) -> Result<StateReport, ProvisioningError> {
        let spec = self.spec(name)?;
        let aws = self.aws(&spec.region);
        let planned = Step::of(&spec);
        let mut steps = Vec::with_capacity(planned.len());
        for step in planned {
            let (state, detail, error) = match aws.observe(&spec, step).await {
                Ok(Observed::InSync) => (StepState::InSync, None, None),
                Ok(Observed::Missing) => (StepState::Missing, None, None),
                Ok(Observed::Drifted(how)) => (StepState::Drifted, Some(how), None),
                Ok(Observed::Unfixable(why)) => (StepState::Unfixable, None, Some(why)),
                Err(e) => (StepState::Unknown, None, Some(e)),
            };
            let drift = matches!(state, StepState::Missing | StepState::Drifted | StepState::Unfixable);
            steps.push(StepStatus { step, resource: step.resource(&spec), state, drift, detail, error });
        }
        let trail_is_logging = aws.trail_is_logging(&spec).await.ok().flatten();
        let drift = steps.iter().any(|s| s.drift);
        Ok(StateReport { name: name.to_owned(), spec, drift, steps, trail_is_logging })
    }
}
