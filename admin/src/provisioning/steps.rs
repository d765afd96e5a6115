//! The provisioning steps, one per piece of AWS configuration: how each is
//! read back (and compared with the spec) and how it is put in place.
//!
//! Every step is idempotent on its own: enforcing one that is already right
//! changes nothing. Reading a step whose bucket or trail does not exist yet
//! answers "missing", so a plan can be made before anything is created.

use std::collections::BTreeSet;
use std::fmt::Debug;

use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};
use aws_sdk_s3::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketLoggingStatus, CreateBucketConfiguration, LoggingEnabled, ObjectOwnership,
    OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use serde::Serialize;

use super::policy;
use super::spec::ProvisioningSpec;

/// One piece of the upstream configuration, in the order they are applied:
/// the log bucket and its policy before the data bucket logs into it, and
/// both before the trail (CloudTrail checks the bucket policy on creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum Step {
    #[serde(rename = "log_bucket")]
    LogBucket,
    #[serde(rename = "log_bucket.public_access_block")]
    LogBucketPublicAccessBlock,
    #[serde(rename = "log_bucket.ownership_controls")]
    LogBucketOwnership,
    #[serde(rename = "log_bucket.policy")]
    LogBucketPolicy,
    #[serde(rename = "data_bucket")]
    DataBucket,
    #[serde(rename = "data_bucket.public_access_block")]
    DataBucketPublicAccessBlock,
    #[serde(rename = "data_bucket.encryption")]
    DataBucketEncryption,
    #[serde(rename = "data_bucket.logging")]
    DataBucketLogging,
    #[serde(rename = "data_bucket.policy")]
    DataBucketPolicy,
    #[serde(rename = "trail")]
    Trail,
    #[serde(rename = "trail.event_selectors")]
    TrailEventSelectors,
    #[serde(rename = "trail.logging")]
    TrailLogging,
}

impl Step {
    pub const ALL: [Step; 12] = [
        Step::LogBucket,
        Step::LogBucketPublicAccessBlock,
        Step::LogBucketOwnership,
        Step::LogBucketPolicy,
        Step::DataBucket,
        Step::DataBucketPublicAccessBlock,
        Step::DataBucketEncryption,
        Step::DataBucketLogging,
        Step::DataBucketPolicy,
        Step::Trail,
        Step::TrailEventSelectors,
        Step::TrailLogging,
    ];

    /// The bucket or trail a configuration step belongs to; `None` for the
    /// steps that create a bucket or trail.
    #[must_use]
    pub fn parent(self) -> Option<Step> {
        match self {
            Step::LogBucket | Step::DataBucket | Step::Trail => None,
            Step::LogBucketPublicAccessBlock | Step::LogBucketOwnership | Step::LogBucketPolicy => {
                Some(Step::LogBucket)
            }
            Step::DataBucketPublicAccessBlock
            | Step::DataBucketEncryption
            | Step::DataBucketLogging
            | Step::DataBucketPolicy => Some(Step::DataBucket),
            Step::TrailEventSelectors | Step::TrailLogging => Some(Step::Trail),
        }
    }

    /// The ARN of what the step configures.
    #[must_use]
    pub fn resource(self, spec: &ProvisioningSpec) -> String {
        match self {
            Step::LogBucket | Step::LogBucketPublicAccessBlock | Step::LogBucketOwnership | Step::LogBucketPolicy => {
                spec.bucket_arn(&spec.log_bucket)
            }
            Step::DataBucket
            | Step::DataBucketPublicAccessBlock
            | Step::DataBucketEncryption
            | Step::DataBucketLogging
            | Step::DataBucketPolicy => spec.bucket_arn(&spec.data_bucket),
            Step::Trail | Step::TrailEventSelectors | Step::TrailLogging => spec.trail_arn(),
        }
    }
}

/// How a step's live configuration compares with the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    InSync,
    Missing,
    /// Present but different; says how.
    Drifted(String),
}

/// An AWS call that failed: the AWS error code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsFailure {
    /// The AWS error code (`AccessDenied`, `BucketAlreadyExists`, ...), or
    /// `DispatchFailure`/`Timeout`/... when no answer came.
    pub code: String,
    pub message: String,
}

impl AwsFailure {
    fn from_sdk<E, R>(err: &SdkError<E, R>) -> AwsFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: Debug,
    {
        let kind = match err {
            SdkError::ServiceError(_) => err.code().unwrap_or("Unknown"),
            SdkError::ConstructionFailure(_) => "ConstructionFailure",
            SdkError::TimeoutError(_) => "Timeout",
            SdkError::DispatchFailure(_) => "DispatchFailure",
            _ => "ResponseError",
        };
        let message = match err.message() {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
        };
        AwsFailure { code: kind.to_owned(), message }
    }

    fn build(err: &BuildError) -> AwsFailure {
        AwsFailure { code: "InvalidRequest".to_owned(), message: err.to_string() }
    }
}

/// Error codes that mean "this configuration (or its bucket or trail) does
/// not exist".
const ABSENT: [&str; 7] = [
    "NoSuchBucket",
    "NoSuchBucketPolicy",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "OwnershipControlsNotFoundError",
    "TrailNotFoundException",
    "NotFound",
];

/// `Some(output)`, `None` when the thing is absent, or the failure.
fn found<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<Option<T>, AwsFailure>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Debug,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(err) if err.code().is_some_and(|code| ABSENT.contains(&code)) => Ok(None),
        Err(err) => Err(AwsFailure::from_sdk(&err)),
    }
}

fn done<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<(), AwsFailure>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Debug,
{
    result.map(|_| ()).map_err(|err| AwsFailure::from_sdk(&err))
}

/// The AWS clients of one region.
#[derive(Debug, Clone)]
pub struct Aws {
    pub s3: aws_sdk_s3::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
}

impl Aws {
    /// Reads the step's live configuration and compares it with the spec.
    pub async fn observe(&self, spec: &ProvisioningSpec, step: Step) -> Result<Observed, AwsFailure> {
        match step {
            Step::LogBucket => self.observe_bucket(&spec.log_bucket).await,
            Step::DataBucket => self.observe_bucket(&spec.data_bucket).await,
            Step::LogBucketPublicAccessBlock => self.observe_public_access_block(&spec.log_bucket).await,
            Step::DataBucketPublicAccessBlock => self.observe_public_access_block(&spec.data_bucket).await,
            Step::LogBucketOwnership => self.observe_ownership(&spec.log_bucket).await,
            Step::LogBucketPolicy => self.observe_policy(&spec.log_bucket, &policy::log_bucket_policy(spec)).await,
            Step::DataBucketPolicy => self.observe_policy(&spec.data_bucket, &policy::data_bucket_policy(spec)).await,
            Step::DataBucketEncryption => self.observe_encryption(spec).await,
            Step::DataBucketLogging => self.observe_logging(spec).await,
            Step::Trail => self.observe_trail(spec).await,
            Step::TrailEventSelectors => self.observe_event_selectors(spec).await,
            Step::TrailLogging => Ok(match self.trail_is_logging(spec).await? {
                None => Observed::Missing,
                Some(true) => Observed::InSync,
                Some(false) => Observed::Drifted("the trail is not logging".to_owned()),
            }),
        }
    }

    /// Puts the step's configuration in place; `observed` says whether it
    /// is to be created or corrected.
    pub async fn enforce(&self, spec: &ProvisioningSpec, step: Step, observed: &Observed) -> Result<(), AwsFailure> {
        let s3 = &self.s3;
        match step {
            Step::LogBucket => self.create_bucket(&spec.log_bucket, &spec.region).await,
            Step::DataBucket => self.create_bucket(&spec.data_bucket, &spec.region).await,
            Step::LogBucketPublicAccessBlock => self.block_public_access(&spec.log_bucket).await,
            Step::DataBucketPublicAccessBlock => self.block_public_access(&spec.data_bucket).await,
            Step::LogBucketOwnership => {
                let rule = OwnershipControlsRule::builder()
                    .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                    .build()
                    .map_err(|e| AwsFailure::build(&e))?;
                let controls = OwnershipControls::builder().rules(rule).build().map_err(|e| AwsFailure::build(&e))?;
                done(
                    s3.put_bucket_ownership_controls()
                        .bucket(&spec.log_bucket)
                        .ownership_controls(controls)
                        .send()
                        .await,
                )
            }
            Step::LogBucketPolicy => self.put_policy(&spec.log_bucket, &policy::log_bucket_policy(spec)).await,
            Step::DataBucketPolicy => self.put_policy(&spec.data_bucket, &policy::data_bucket_policy(spec)).await,
            Step::DataBucketEncryption => {
                let default = match &spec.kms_key_id {
                    Some(key) => ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::AwsKms)
                        .kms_master_key_id(key),
                    None => ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256),
                }
                .build()
                .map_err(|e| AwsFailure::build(&e))?;
                let rule = ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(default)
                    .bucket_key_enabled(spec.kms_key_id.is_some())
                    .build();
                let config = ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(|e| AwsFailure::build(&e))?;
                done(
                    s3.put_bucket_encryption()
                        .bucket(&spec.data_bucket)
                        .server_side_encryption_configuration(config)
                        .send()
                        .await,
                )
            }
            Step::DataBucketLogging => {
                let target = LoggingEnabled::builder()
                    .target_bucket(&spec.log_bucket)
                    .target_prefix(&spec.log_prefix)
                    .build()
                    .map_err(|e| AwsFailure::build(&e))?;
                let status = BucketLoggingStatus::builder().logging_enabled(target).build();
                done(s3.put_bucket_logging().bucket(&spec.data_bucket).bucket_logging_status(status).send().await)
            }
            Step::Trail => {
                if *observed == Observed::Missing {
                    done(
                        self.cloudtrail
                            .create_trail()
                            .name(&spec.trail_name)
                            .s3_bucket_name(&spec.log_bucket)
                            .enable_log_file_validation(true)
                            .is_multi_region_trail(false)
                            .send()
                            .await,
                    )
                } else {
                    // An empty prefix removes one someone set out of band.
                    done(
                        self.cloudtrail
                            .update_trail()
                            .name(&spec.trail_name)
                            .s3_bucket_name(&spec.log_bucket)
                            .s3_key_prefix("")
                            .enable_log_file_validation(true)
                            .is_multi_region_trail(false)
                            .send()
                            .await,
                    )
                }
            }
            Step::TrailEventSelectors => {
                let selector = desired_selector(spec).map_err(|e| AwsFailure::build(&e))?;
                // Advanced selectors replace the basic ones, and with no
                // management selector among them management events are off.
                done(
                    self.cloudtrail
                        .put_event_selectors()
                        .trail_name(&spec.trail_name)
                        .advanced_event_selectors(selector)
                        .send()
                        .await,
                )
            }
            Step::TrailLogging => done(self.cloudtrail.start_logging().name(&spec.trail_name).send().await),
        }
    }

    /// `GetTrailStatus.IsLogging`, `None` when the trail does not exist.
    pub async fn trail_is_logging(&self, spec: &ProvisioningSpec) -> Result<Option<bool>, AwsFailure> {
        let status = found(self.cloudtrail.get_trail_status().name(&spec.trail_name).send().await)?;
        Ok(status.map(|s| s.is_logging().unwrap_or(false)))
    }

    async fn observe_bucket(&self, bucket: &str) -> Result<Observed, AwsFailure> {
        match self.s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(Observed::InSync),
            // HEAD answers have no body, hence no error code: the status says it.
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(Observed::Missing),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Err(AwsFailure {
                code: "AccessDenied".to_owned(),
                message: format!(
                    "bucket {bucket} exists but these credentials may not use it (another account's bucket, \
                     or missing s3:ListBucket)"
                ),
            }),
            Err(err) => Err(AwsFailure::from_sdk(&err)),
        }
    }

    async fn create_bucket(&self, bucket: &str, region: &str) -> Result<(), AwsFailure> {
        let mut request = self.s3.create_bucket().bucket(bucket);
        // us-east-1 is the one region that refuses its own name as a
        // location constraint.
        if region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match request.send().await {
            Err(err) if err.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            other => done(other),
        }
    }

    async fn observe_public_access_block(&self, bucket: &str) -> Result<Observed, AwsFailure> {
        let Some(output) = found(self.s3.get_public_access_block().bucket(bucket).send().await)? else {
            return Ok(Observed::Missing);
        };
        let Some(config) = output.public_access_block_configuration() else {
            return Ok(Observed::Missing);
        };
        let off: Vec<&str> = [
            ("BlockPublicAcls", config.block_public_acls()),
            ("IgnorePublicAcls", config.ignore_public_acls()),
            ("BlockPublicPolicy", config.block_public_policy()),
            ("RestrictPublicBuckets", config.restrict_public_buckets()),
        ]
        .into_iter()
        .filter(|(_, on)| *on != Some(true))
        .map(|(name, _)| name)
        .collect();
        Ok(if off.is_empty() { Observed::InSync } else { Observed::Drifted(format!("off: {}", off.join(", "))) })
    }

    async fn block_public_access(&self, bucket: &str) -> Result<(), AwsFailure> {
        let config = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        done(self.s3.put_public_access_block().bucket(bucket).public_access_block_configuration(config).send().await)
    }

    async fn observe_ownership(&self, bucket: &str) -> Result<Observed, AwsFailure> {
        let Some(output) = found(self.s3.get_bucket_ownership_controls().bucket(bucket).send().await)? else {
            return Ok(Observed::Missing);
        };
        let rules: Vec<&ObjectOwnership> = output
            .ownership_controls()
            .map(OwnershipControls::rules)
            .unwrap_or_default()
            .iter()
            .map(OwnershipControlsRule::object_ownership)
            .collect();
        Ok(match rules[..] {
            [ObjectOwnership::BucketOwnerEnforced] => Observed::InSync,
            [] => Observed::Missing,
            _ => Observed::Drifted(format!(
                "object ownership is {}, want BucketOwnerEnforced (ACLs off)",
                rules.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
            )),
        })
    }

    async fn observe_policy(&self, bucket: &str, want: &serde_json::Value) -> Result<Observed, AwsFailure> {
        let Some(output) = found(self.s3.get_bucket_policy().bucket(bucket).send().await)? else {
            return Ok(Observed::Missing);
        };
        let Some(text) = output.policy() else { return Ok(Observed::Missing) };
        Ok(match serde_json::from_str::<serde_json::Value>(text) {
            Ok(live) if policy::same_policy(&live, want) => Observed::InSync,
            Ok(live) => Observed::Drifted(format!("the live policy differs: {live}")),
            Err(e) => Observed::Drifted(format!("the live policy is not JSON: {e}")),
        })
    }

    async fn put_policy(&self, bucket: &str, policy: &serde_json::Value) -> Result<(), AwsFailure> {
        done(self.s3.put_bucket_policy().bucket(bucket).policy(policy.to_string()).send().await)
    }

    async fn observe_encryption(&self, spec: &ProvisioningSpec) -> Result<Observed, AwsFailure> {
        let Some(output) = found(self.s3.get_bucket_encryption().bucket(&spec.data_bucket).send().await)? else {
            return Ok(Observed::Missing);
        };
        let default = output
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        let Some(default) = default else { return Ok(Observed::Missing) };
        let live = (default.sse_algorithm(), default.kms_master_key_id());
        let in_sync = match &spec.kms_key_id {
            Some(key) => live == (&ServerSideEncryption::AwsKms, Some(key.as_str())),
            None => *live.0 == ServerSideEncryption::Aes256,
        };
        Ok(if in_sync {
            Observed::InSync
        } else {
            let want = spec.kms_key_id.as_ref().map_or_else(|| "AES256".to_owned(), |k| format!("aws:kms with {k}"));
            Observed::Drifted(format!(
                "default encryption is {} {}, want {want}",
                live.0.as_str(),
                live.1.unwrap_or("")
            ))
        })
    }

    async fn observe_logging(&self, spec: &ProvisioningSpec) -> Result<Observed, AwsFailure> {
        let Some(output) = found(self.s3.get_bucket_logging().bucket(&spec.data_bucket).send().await)? else {
            return Ok(Observed::Missing);
        };
        Ok(match output.logging_enabled() {
            None => Observed::Missing,
            Some(l) if l.target_bucket() == spec.log_bucket && l.target_prefix() == spec.log_prefix => Observed::InSync,
            Some(l) => Observed::Drifted(format!(
                "logs go to {}/{}, want {}/{}",
                l.target_bucket(),
                l.target_prefix(),
                spec.log_bucket,
                spec.log_prefix
            )),
        })
    }

    async fn observe_trail(&self, spec: &ProvisioningSpec) -> Result<Observed, AwsFailure> {
        let output = found(self.cloudtrail.get_trail().name(&spec.trail_name).send().await)?;
        let Some(trail) = output.as_ref().and_then(|o| o.trail()) else { return Ok(Observed::Missing) };
        let mut drift = Vec::new();
        if trail.s3_bucket_name() != Some(spec.log_bucket.as_str()) {
            drift.push(format!("writes to bucket {:?}", trail.s3_bucket_name().unwrap_or("")));
        }
        if trail.s3_key_prefix().is_some_and(|p| !p.is_empty()) {
            drift.push(format!("has key prefix {:?}", trail.s3_key_prefix().unwrap_or("")));
        }
        if trail.log_file_validation_enabled() != Some(true) {
            drift.push("log file validation is off".to_owned());
        }
        if trail.is_multi_region_trail() == Some(true) {
            drift.push("is multi-region".to_owned());
        }
        Ok(if drift.is_empty() { Observed::InSync } else { Observed::Drifted(drift.join("; ")) })
    }

    async fn observe_event_selectors(&self, spec: &ProvisioningSpec) -> Result<Observed, AwsFailure> {
        let Some(output) = found(self.cloudtrail.get_event_selectors().trail_name(&spec.trail_name).send().await)?
        else {
            return Ok(Observed::Missing);
        };
        let want = desired_selector(spec).map_err(|e| AwsFailure::build(&e))?;
        let live: BTreeSet<SelectorShape> = output.advanced_event_selectors().iter().map(selector_shape).collect();
        let in_sync = output.event_selectors().is_empty() && live == BTreeSet::from([selector_shape(&want)]);
        Ok(if in_sync {
            Observed::InSync
        } else if output.event_selectors().is_empty() && live.is_empty() {
            Observed::Missing
        } else {
            Observed::Drifted(format!(
                "{} basic and {} advanced selectors, want only S3 object read events on {}",
                output.event_selectors().len(),
                output.advanced_event_selectors().len(),
                spec.data_bucket
            ))
        })
    }
}

/// Data events for reads (`GetObject` and the like) of the data bucket's
/// objects, and nothing else.
fn desired_selector(spec: &ProvisioningSpec) -> Result<AdvancedEventSelector, BuildError> {
    let field = |name: &str, equals: &str| AdvancedFieldSelector::builder().field(name).equals(equals).build();
    AdvancedEventSelector::builder()
        .name(format!("egress-proxy: reads of {}", spec.data_bucket))
        .field_selectors(field("eventCategory", "Data")?)
        .field_selectors(field("resources.type", "AWS::S3::Object")?)
        .field_selectors(field("readOnly", "true")?)
        .field_selectors(
            AdvancedFieldSelector::builder()
                .field("resources.ARN")
                .starts_with(format!("{}/", spec.bucket_arn(&spec.data_bucket)))
                .build()?,
        )
        .build()
}

/// A selector by meaning: its field selectors as a set, each with its
/// value lists as sets; the selector's name does not count.
type SelectorShape = BTreeSet<(String, [BTreeSet<String>; 6])>;

fn selector_shape(selector: &AdvancedEventSelector) -> SelectorShape {
    let set = |values: &[String]| values.iter().cloned().collect::<BTreeSet<String>>();
    selector
        .field_selectors()
        .iter()
        .map(|f| {
            (
                f.field().to_owned(),
                [
                    set(f.equals()),
                    set(f.starts_with()),
                    set(f.ends_with()),
                    set(f.not_equals()),
                    set(f.not_starts_with()),
                    set(f.not_ends_with()),
                ],
            )
        })
        .collect()
}
