//! The provisioning steps, one per piece of AWS configuration: how each is
//! read back (and compared with the spec) and how it is put in place.
//!
//! Every step is idempotent on its own: enforcing one that is already right
//! changes nothing. Reading a step whose bucket or trail does not exist yet
//! answers "missing", so a plan can be made before anything is created.
//!
//! One state cannot be corrected: an archive bucket that exists without
//! Object Lock. Enabling Object Lock on it is possible but irreversible and
//! leaves the objects already there unlocked, so it is reported
//! ([`Observed::Unfixable`]) and never done here.

use std::collections::BTreeSet;
use std::fmt::Debug;

use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};
use aws_sdk_s3::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketLoggingStatus, BucketVersioningStatus, CreateBucketConfiguration, DefaultRetention,
    LoggingEnabled, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    ObjectOwnership, OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};
use serde::Serialize;

use super::policy;
use super::spec::ProvisioningSpec;

/// One piece of the upstream configuration, in the order they are applied:
/// the log bucket and its policy before the data bucket logs into it, and
/// both before the trail (CloudTrail checks the bucket policy on creation).
/// The archive bucket, when the spec has one, comes last, its policy after
/// its lock configuration (the policy denies changing it).
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
    #[serde(rename = "archive_bucket")]
    ArchiveBucket,
    #[serde(rename = "archive_bucket.versioning")]
    ArchiveBucketVersioning,
    #[serde(rename = "archive_bucket.object_lock")]
    ArchiveBucketObjectLock,
    #[serde(rename = "archive_bucket.public_access_block")]
    ArchiveBucketPublicAccessBlock,
    #[serde(rename = "archive_bucket.ownership_controls")]
    ArchiveBucketOwnership,
    #[serde(rename = "archive_bucket.encryption")]
    ArchiveBucketEncryption,
    #[serde(rename = "archive_bucket.policy")]
    ArchiveBucketPolicy,
}

impl Step {
    /// The steps of every spec.
    pub const BASE: [Step; 12] = [
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

    /// The steps of a spec with an `archive_bucket`, after the others.
    pub const ARCHIVE: [Step; 7] = [
        Step::ArchiveBucket,
        Step::ArchiveBucketVersioning,
        Step::ArchiveBucketObjectLock,
        Step::ArchiveBucketPublicAccessBlock,
        Step::ArchiveBucketOwnership,
        Step::ArchiveBucketEncryption,
        Step::ArchiveBucketPolicy,
    ];

    /// The steps `spec` asks for, in the order they are applied.
    #[must_use]
    pub fn of(spec: &ProvisioningSpec) -> Vec<Step> {
        let archive: &[Step] = if spec.archive_bucket.is_some() { &Step::ARCHIVE } else { &[] };
        Step::BASE.iter().chain(archive).copied().collect()
    }

    /// The bucket or trail a configuration step belongs to; `None` for the
    /// steps that create a bucket or trail.
    #[must_use]
    pub fn parent(self) -> Option<Step> {
        match self {
            Step::LogBucket | Step::DataBucket | Step::Trail | Step::ArchiveBucket => None,
            Step::LogBucketPublicAccessBlock | Step::LogBucketOwnership | Step::LogBucketPolicy => {
                Some(Step::LogBucket)
            }
            Step::DataBucketPublicAccessBlock
            | Step::DataBucketEncryption
            | Step::DataBucketLogging
            | Step::DataBucketPolicy => Some(Step::DataBucket),
            Step::TrailEventSelectors | Step::TrailLogging => Some(Step::Trail),
            Step::ArchiveBucketVersioning
            | Step::ArchiveBucketObjectLock
            | Step::ArchiveBucketPublicAccessBlock
            | Step::ArchiveBucketOwnership
            | Step::ArchiveBucketEncryption
            | Step::ArchiveBucketPolicy => Some(Step::ArchiveBucket),
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
            Step::ArchiveBucket
            | Step::ArchiveBucketVersioning
            | Step::ArchiveBucketObjectLock
            | Step::ArchiveBucketPublicAccessBlock
            | Step::ArchiveBucketOwnership
            | Step::ArchiveBucketEncryption
            | Step::ArchiveBucketPolicy => spec.bucket_arn(spec.archive_bucket.as_deref().unwrap_or_default()),
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
    /// Different in a way no apply corrects (an archive bucket without
    /// Object Lock): the apply fails the step with this, sending nothing.
    Unfixable(AwsFailure),
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

    /// The archive bucket exists but was made without Object Lock.
    fn no_object_lock(bucket: &str) -> AwsFailure {
        AwsFailure {
            code: NO_OBJECT_LOCK.to_owned(),
            message: format!(
                "bucket {bucket} exists without Object Lock, so it cannot be the archive bucket; nothing was \
                 changed on it. Name a bucket that does not exist yet in archive_bucket (the apply creates it \
                 with Object Lock), or, if this bucket is meant to be the archive, enable Object Lock on it \
                 yourself (PutBucketVersioning Enabled, then PutObjectLockConfiguration ObjectLockEnabled=Enabled: \
                 irreversible, and the objects already in it stay unlocked) and PUT again"
            ),
        }
    }
}

/// The code of [`AwsFailure::no_object_lock`] (not an AWS code: S3 has no
/// such error, the apply refuses).
pub const NO_OBJECT_LOCK: &str = "ObjectLockNotEnabled";

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

/// The Object Lock configuration of a bucket as far as this code cares.
enum Lock {
    NoBucket,
    /// The bucket exists without Object Lock.
    NotEnabled,
    /// Enabled, with this default retention (`None`: no default).
    Enabled(Option<Retention>),
}

/// A default retention: mode, days, years (S3 takes days or years).
#[derive(Debug, PartialEq, Eq)]
struct Retention {
    mode: String,
    days: Option<i32>,
    years: Option<i32>,
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.days, self.years) {
            (Some(days), None) => write!(f, "{} {days} days", self.mode),
            (None, Some(years)) => write!(f, "{} {years} years", self.mode),
            (days, years) => write!(f, "{} days {days:?} years {years:?}", self.mode),
        }
    }
}

/// COMPLIANCE for `archive_retention_days` days.
fn wanted_retention(spec: &ProvisioningSpec) -> Retention {
    Retention {
        mode: ObjectLockRetentionMode::Compliance.as_str().to_owned(),
        // Validated to at most 36500.
        days: spec.archive_retention_days.and_then(|d| i32::try_from(d).ok()),
        years: None,
    }
}

/// The name of the spec's archive bucket (only archive steps ask).
fn archive(spec: &ProvisioningSpec) -> Result<&str, AwsFailure> {
    spec.archive_bucket.as_deref().ok_or_else(|| AwsFailure {
        code: "InvalidRequest".to_owned(),
        message: "the spec has no archive_bucket".to_owned(),
    })
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
            Step::DataBucketEncryption => self.observe_encryption(spec, &spec.data_bucket).await,
            Step::DataBucketLogging => self.observe_logging(spec).await,
            Step::Trail => self.observe_trail(spec).await,
            Step::TrailEventSelectors => self.observe_event_selectors(spec).await,
            Step::TrailLogging => Ok(match self.trail_is_logging(spec).await? {
                None => Observed::Missing,
                Some(true) => Observed::InSync,
                Some(false) => Observed::Drifted("the trail is not logging".to_owned()),
            }),
            Step::ArchiveBucket => {
                let bucket = archive(spec)?;
                match self.observe_bucket(bucket).await? {
                    Observed::InSync => Ok(match self.lock(bucket).await? {
                        Lock::Enabled(_) => Observed::InSync,
                        Lock::NotEnabled => Observed::Unfixable(AwsFailure::no_object_lock(bucket)),
                        // Deleted between the two calls.
                        Lock::NoBucket => Observed::Missing,
                    }),
                    other => Ok(other),
                }
            }
            Step::ArchiveBucketVersioning => self.observe_versioning(archive(spec)?).await,
            Step::ArchiveBucketObjectLock => self.observe_lock(spec).await,
            Step::ArchiveBucketPublicAccessBlock => self.observe_public_access_block(archive(spec)?).await,
            Step::ArchiveBucketOwnership => self.observe_ownership(archive(spec)?).await,
            Step::ArchiveBucketEncryption => self.observe_encryption(spec, archive(spec)?).await,
            Step::ArchiveBucketPolicy => {
                let bucket = archive(spec)?;
                self.observe_policy(bucket, &policy::archive_bucket_policy(spec, bucket)).await
            }
        }
    }

    /// Puts the step's configuration in place; `observed` says whether it
    /// is to be created or corrected.
    pub async fn enforce(&self, spec: &ProvisioningSpec, step: Step, observed: &Observed) -> Result<(), AwsFailure> {
        if let Observed::Unfixable(why) = observed {
            return Err(why.clone());
        }
        let s3 = &self.s3;
        match step {
            Step::LogBucket => self.create_bucket(&spec.log_bucket, &spec.region).await,
            Step::DataBucket => self.create_bucket(&spec.data_bucket, &spec.region).await,
            Step::LogBucketPublicAccessBlock => self.block_public_access(&spec.log_bucket).await,
            Step::DataBucketPublicAccessBlock => self.block_public_access(&spec.data_bucket).await,
            Step::LogBucketOwnership => self.enforce_ownership(&spec.log_bucket).await,
            Step::LogBucketPolicy => self.put_policy(&spec.log_bucket, &policy::log_bucket_policy(spec)).await,
            Step::DataBucketPolicy => self.put_policy(&spec.data_bucket, &policy::data_bucket_policy(spec)).await,
            Step::DataBucketEncryption => self.enforce_encryption(spec, &spec.data_bucket).await,
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
            Step::ArchiveBucket => self.create_archive_bucket(archive(spec)?, &spec.region).await,
            Step::ArchiveBucketVersioning => {
                let config = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
                done(s3.put_bucket_versioning().bucket(archive(spec)?).versioning_configuration(config).send().await)
            }
            Step::ArchiveBucketObjectLock => self.enforce_lock(spec).await,
            Step::ArchiveBucketPublicAccessBlock => self.block_public_access(archive(spec)?).await,
            Step::ArchiveBucketOwnership => self.enforce_ownership(archive(spec)?).await,
            Step::ArchiveBucketEncryption => self.enforce_encryption(spec, archive(spec)?).await,
            Step::ArchiveBucketPolicy => {
                let bucket = archive(spec)?;
                self.put_policy(bucket, &policy::archive_bucket_policy(spec, bucket)).await
            }
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
        self.create(bucket, region, false).await
    }

    /// Creates the archive bucket with Object Lock (which turns versioning
    /// on). One found in its place, made in the meantime without Object
    /// Lock, fails the step: the next ones must not enable it there.
    async fn create_archive_bucket(&self, bucket: &str, region: &str) -> Result<(), AwsFailure> {
        self.create(bucket, region, true).await?;
        match self.lock(bucket).await? {
            Lock::Enabled(_) => Ok(()),
            Lock::NotEnabled => Err(AwsFailure::no_object_lock(bucket)),
            Lock::NoBucket => Err(AwsFailure {
                code: "NoSuchBucket".to_owned(),
                message: format!("bucket {bucket} was created and is gone (deleted in the meantime?)"),
            }),
        }
    }

    async fn create(&self, bucket: &str, region: &str, object_lock: bool) -> Result<(), AwsFailure> {
        let mut request = self.s3.create_bucket().bucket(bucket);
        if object_lock {
            request = request.object_lock_enabled_for_bucket(true);
        }
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

    async fn enforce_ownership(&self, bucket: &str) -> Result<(), AwsFailure> {
        let rule = OwnershipControlsRule::builder()
            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
            .build()
            .map_err(|e| AwsFailure::build(&e))?;
        let controls = OwnershipControls::builder().rules(rule).build().map_err(|e| AwsFailure::build(&e))?;
        done(self.s3.put_bucket_ownership_controls().bucket(bucket).ownership_controls(controls).send().await)
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

    /// Default encryption of `bucket` (data or archive): SSE-S3, or SSE-KMS
    /// with the spec's key and the bucket key on.
    async fn enforce_encryption(&self, spec: &ProvisioningSpec, bucket: &str) -> Result<(), AwsFailure> {
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
        let config =
            ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(|e| AwsFailure::build(&e))?;
        done(self.s3.put_bucket_encryption().bucket(bucket).server_side_encryption_configuration(config).send().await)
    }

    async fn observe_encryption(&self, spec: &ProvisioningSpec, bucket: &str) -> Result<Observed, AwsFailure> {
        let Some(output) = found(self.s3.get_bucket_encryption().bucket(bucket).send().await)? else {
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

    async fn observe_versioning(&self, bucket: &str) -> Result<Observed, AwsFailure> {
        let status = match self.s3.get_bucket_versioning().bucket(bucket).send().await {
            Ok(output) => output.status().map(|s| s.as_str().to_owned()),
            // moto 5.2 names the answer's root element
            // GetBucketVersioningResponse where S3 says
            // VersioningConfiguration, and the SDK refuses the whole answer;
            // the one element wanted is the same in both.
            Err(SdkError::ServiceError(err)) if err.raw().status().is_success() => {
                versioning_status(err.raw().body().bytes().unwrap_or_default())
            }
            Err(err) if err.code() == Some("NoSuchBucket") => return Ok(Observed::Missing),
            Err(err) => return Err(AwsFailure::from_sdk(&err)),
        };
        Ok(match status.as_deref() {
            Some("Enabled") => Observed::InSync,
            None | Some("") => Observed::Missing,
            Some(other) => Observed::Drifted(format!("versioning is {other}, want Enabled")),
        })
    }

    /// `GetObjectLockConfiguration`, read into [`Lock`].
    async fn lock(&self, bucket: &str) -> Result<Lock, AwsFailure> {
        let output = match self.s3.get_object_lock_configuration().bucket(bucket).send().await {
            Ok(output) => output,
            Err(err) if err.code() == Some("ObjectLockConfigurationNotFoundError") => return Ok(Lock::NotEnabled),
            Err(err) if err.code() == Some("NoSuchBucket") => return Ok(Lock::NoBucket),
            Err(err) => return Err(AwsFailure::from_sdk(&err)),
        };
        let Some(config) = output.object_lock_configuration() else { return Ok(Lock::NotEnabled) };
        if config.object_lock_enabled() != Some(&ObjectLockEnabled::Enabled) {
            return Ok(Lock::NotEnabled);
        }
        // Emulators answer an unset field as 0.
        let set = |n: Option<i32>| n.filter(|n| *n != 0);
        let retention = config.rule().and_then(ObjectLockRule::default_retention).map(|d| Retention {
            mode: d.mode().map(|m| m.as_str().to_owned()).unwrap_or_default(),
            days: set(d.days()),
            years: set(d.years()),
        });
        Ok(Lock::Enabled(retention))
    }

    async fn observe_lock(&self, spec: &ProvisioningSpec) -> Result<Observed, AwsFailure> {
        let bucket = archive(spec)?;
        let want = wanted_retention(spec);
        Ok(match self.lock(bucket).await? {
            Lock::NoBucket | Lock::Enabled(None) => Observed::Missing,
            Lock::NotEnabled => Observed::Unfixable(AwsFailure::no_object_lock(bucket)),
            Lock::Enabled(Some(live)) if live == want => Observed::InSync,
            Lock::Enabled(Some(live)) => Observed::Drifted(format!("the default retention is {live}, want {want}")),
        })
    }

    /// The default retention, on a bucket that has Object Lock: it is read
    /// again first, so that this never enables Object Lock on a bucket that
    /// was made without it.
    async fn enforce_lock(&self, spec: &ProvisioningSpec) -> Result<(), AwsFailure> {
        let bucket = archive(spec)?;
        match self.lock(bucket).await? {
            Lock::Enabled(_) => {}
            Lock::NotEnabled => return Err(AwsFailure::no_object_lock(bucket)),
            Lock::NoBucket => {
                return Err(AwsFailure {
                    code: "NoSuchBucket".to_owned(),
                    message: format!("bucket {bucket} does not exist (its creation failed or it was deleted)"),
                });
            }
        }
        let mut retention = DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance);
        if let Some(days) = wanted_retention(spec).days {
            retention = retention.days(days);
        }
        let retention = retention.build();
        let config = ObjectLockConfiguration::builder()
            .object_lock_enabled(ObjectLockEnabled::Enabled)
            .rule(ObjectLockRule::builder().default_retention(retention).build())
            .build();
        match self.s3.put_object_lock_configuration().bucket(bucket).object_lock_configuration(config).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let mut failure = AwsFailure::from_sdk(&err);
                if failure.code == "AccessDenied" {
                    failure.message.push_str(
                        " (the archive bucket's policy denies s3:PutBucketObjectLockConfiguration to everyone, \
                         this apply included: to change the default retention on purpose, delete the bucket's \
                         policy and PUT again; the apply sets the retention and puts the policy back)",
                    );
                }
                Err(failure)
            }
        }
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

/// The text of the `Status` element of a `GetBucketVersioning` answer
/// (absent: versioning was never turned on).
fn versioning_status(xml: &[u8]) -> Option<String> {
    let xml = std::str::from_utf8(xml).ok()?;
    let (_, rest) = xml.split_once("<Status>")?;
    let (status, _) = rest.split_once("</Status>")?;
    Some(status.trim().to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_versioning_status_is_read_from_either_root_element() {
        let s3 = b"<?xml version=\"1.0\"?><VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                   <Status>Enabled</Status></VersioningConfiguration>";
        let moto = b"<GetBucketVersioningResponse xmlns=\"x\"><Status>Suspended</Status></GetBucketVersioningResponse>";
        assert_eq!(versioning_status(s3).as_deref(), Some("Enabled"));
        assert_eq!(versioning_status(moto).as_deref(), Some("Suspended"));
        assert_eq!(versioning_status(b"<GetBucketVersioningResponse xmlns=\"x\"/>"), None);
        assert_eq!(versioning_status(b"\xff<Status>"), None);
    }

    #[test]
    fn a_retention_says_its_mode_and_period() {
        let days = Retention { mode: "COMPLIANCE".to_owned(), days: Some(30), years: None };
        let years = Retention { mode: "GOVERNANCE".to_owned(), days: None, years: Some(2) };
        assert_eq!(
            (days.to_string(), years.to_string()),
            ("COMPLIANCE 30 days".to_owned(), "GOVERNANCE 2 years".to_owned())
        );
    }
}
