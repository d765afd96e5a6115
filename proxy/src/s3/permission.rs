//! The IAM permissions a request needs: each operation's action and
//! resource as AWS defines them (the Service Authorization Reference's
//! "Actions, resources, and condition keys for Amazon S3" and the
//! "Permissions" section of each operation in the S3 API Reference), and the
//! further permissions some requests need for what they carry: a copy
//! source, ACL, tagging and Object Lock headers. `docs/POLICY_ACTIONS.md`
//! is the same table, checked against this code by a test.
//!
//! Each operation's own action, versioned action and resource kind are
//! declared with the operation itself (`operations!` in
//! [`super::operation`]), so none can be added without them.
//!
//! Where the proxy cannot read what AWS decides on, it asks for more than
//! AWS would, never less: `DeleteObjects` names its keys (and versions) in a
//! body the proxy does not parse, so it needs `s3:DeleteObject` and
//! `s3:DeleteObjectVersion` on every object of the bucket (`BUCKET/*`).

use std::fmt;

use http::HeaderMap;

use super::operation::Operation;
use super::request::S3Request;

/// `s3:` and the variant's name, or the name given when it differs from the
/// variant's (`CORS`, which Rust would spell `Cors`).
macro_rules! action_name {
    ($variant:ident) => {
        concat!("s3:", stringify!($variant))
    };
    ($variant:ident $iam:literal) => {
        concat!("s3:", $iam)
    };
}

macro_rules! actions {
    ($($variant:ident $(= $iam:literal)?),* $(,)?) => {
        /// An IAM action of the `s3` service.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            /// Every action the proxy asks for.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The name in IAM policies (`s3:GetObject`).
            #[must_use]
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => action_name!($variant $($iam)?),)*
                }
            }
        }
    };
}

actions! {
    // Account.
    ListAllMyBuckets,
    // Buckets.
    CreateBucket,
    DeleteBucket,
    ListBucket,
    ListBucketVersions,
    ListBucketMultipartUploads,
    GetBucketLocation,
    GetBucketAcl,
    PutBucketAcl,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    GetBucketLogging,
    PutBucketLogging,
    GetBucketTagging,
    PutBucketTagging,
    GetBucketVersioning,
    PutBucketVersioning,
    GetEncryptionConfiguration,
    PutEncryptionConfiguration,
    GetLifecycleConfiguration,
    PutLifecycleConfiguration,
    GetBucketCors = "GetBucketCORS",
    PutBucketCors = "PutBucketCORS",
    GetBucketObjectLockConfiguration,
    PutBucketObjectLockConfiguration,
    GetBucketPublicAccessBlock,
    PutBucketPublicAccessBlock,
    GetBucketOwnershipControls,
    PutBucketOwnershipControls,
    GetBucketNotification,
    PutBucketNotification,
    GetBucketWebsite,
    PutBucketWebsite,
    DeleteBucketWebsite,
    GetReplicationConfiguration,
    PutReplicationConfiguration,
    GetBucketRequestPayment,
    PutBucketRequestPayment,
    GetAccelerateConfiguration,
    PutAccelerateConfiguration,
    GetAnalyticsConfiguration,
    PutAnalyticsConfiguration,
    GetInventoryConfiguration,
    PutInventoryConfiguration,
    GetMetricsConfiguration,
    PutMetricsConfiguration,
    GetIntelligentTieringConfiguration,
    PutIntelligentTieringConfiguration,
    // Objects.
    GetObject,
    GetObjectVersion,
    GetObjectAcl,
    GetObjectVersionAcl,
    GetObjectTagging,
    GetObjectVersionTagging,
    GetObjectAttributes,
    GetObjectVersionAttributes,
    GetObjectRetention,
    GetObjectLegalHold,
    GetObjectTorrent,
    GetObjectVersionTorrent,
    ListMultipartUploadParts,
    PutObject,
    PutObjectAcl,
    PutObjectVersionAcl,
    PutObjectTagging,
    PutObjectVersionTagging,
    PutObjectRetention,
    PutObjectLegalHold,
    BypassGovernanceRetention,
    DeleteObject,
    DeleteObjectVersion,
    DeleteObjectTagging,
    DeleteObjectVersionTagging,
    RestoreObject,
    AbortMultipartUpload,
}

impl Action {
    /// The action a policy names (`s3:getobject` too: IAM compares action
    /// names without regard to case). `None` for `s3:*`-style patterns and
    /// for actions the proxy never asks for.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an action is on: the resource type in the Service Authorization
/// Reference's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// `*`: the action takes no resource (`s3:ListAllMyBuckets`).
    All,
    /// `arn:aws:s3:::BUCKET`.
    Bucket,
    /// `arn:aws:s3:::BUCKET/KEY`.
    Object,
}

/// One permission: an action on a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub action: Action,
    /// `*`, `arn:aws:s3:::BUCKET` or `arn:aws:s3:::BUCKET/KEY` (the key as
    /// decoded, not percent-encoded; `*` for every key of a bucket).
    pub resource: String,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)
    }
}

/// The object a further permission is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// The resource the operation is on.
    Target,
    /// The object named by `x-amz-copy-source`; its `versionId`, not the
    /// request's, chooses the versioned action.
    CopySource,
}

/// When a further permission is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Any of these headers is given (a name ending in `*` is a prefix).
    AnyHeader(&'static [&'static str]),
    /// The header is given, with any value but `false`.
    HeaderTrue(&'static str),
    /// `x-amz-grant-*` is given, or `x-amz-acl` with a value other than
    /// `private` (`CreateBucket`).
    AclOtherThanPrivate,
}

/// A permission a request needs besides its operation's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extra {
    pub action: Action,
    /// The action instead when a version is named.
    pub versioned: Option<Action>,
    pub on: On,
    pub when: When,
}

const ACL_HEADERS: &[&str] = &["x-amz-acl", "x-amz-grant-*"];

const fn extra(action: Action, when: When) -> Extra {
    Extra { action, versioned: None, on: On::Target, when }
}

/// What a new object's headers may ask for besides `s3:PutObject`: the
/// `PutObject` API reference ("s3:PutObjectAcl - To successfully change the
/// objects ACL…", "s3:PutObjectTagging - To successfully set the
/// tag-set…") and the Service Authorization Reference's operations table,
/// which lists `s3:PutObjectRetention` and `s3:PutObjectLegalHold` for the
/// operations that take the Object Lock headers.
const NEW_OBJECT: [Extra; 4] = [
    extra(Action::PutObjectAcl, When::AnyHeader(ACL_HEADERS)),
    extra(Action::PutObjectTagging, When::AnyHeader(&["x-amz-tagging"])),
    extra(
        Action::PutObjectRetention,
        When::AnyHeader(&["x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date"]),
    ),
    extra(Action::PutObjectLegalHold, When::AnyHeader(&["x-amz-object-lock-legal-hold"])),
];

/// The copy source is read (`CopyObject` and `UploadPartCopy` API reference:
/// "you must have s3:GetObject permission to read the source object";
/// a source `versionId` makes it `s3:GetObjectVersion`, as for `GetObject`).
const READ_COPY_SOURCE: Extra = Extra {
    action: Action::GetObject,
    versioned: Some(Action::GetObjectVersion),
    on: On::CopySource,
    when: When::Always,
};

const COPY_OBJECT: [Extra; 5] = [READ_COPY_SOURCE, NEW_OBJECT[0], NEW_OBJECT[1], NEW_OBJECT[2], NEW_OBJECT[3]];

/// "To use this header, you must have the s3:BypassGovernanceRetention
/// permission" (`DeleteObject`, `DeleteObjects`, `PutObjectRetention`).
const BYPASS_GOVERNANCE: Extra =
    extra(Action::BypassGovernanceRetention, When::HeaderTrue("x-amz-bypass-governance-retention"));

const DELETE_OBJECTS: [Extra; 2] = [extra(Action::DeleteObjectVersion, When::Always), BYPASS_GOVERNANCE];

const CREATE_BUCKET: [Extra; 4] = [
    extra(Action::PutBucketAcl, When::AclOtherThanPrivate),
    extra(Action::PutBucketObjectLockConfiguration, When::HeaderTrue("x-amz-bucket-object-lock-enabled")),
    extra(Action::PutBucketVersioning, When::HeaderTrue("x-amz-bucket-object-lock-enabled")),
    extra(Action::PutBucketOwnershipControls, When::AnyHeader(&["x-amz-object-ownership"])),
];

/// The permissions some operations need besides their own action, and
/// when.
#[must_use]
pub fn extras(operation: Operation) -> &'static [Extra] {
    match operation {
        Operation::PutObject | Operation::CreateMultipartUpload => &NEW_OBJECT,
        Operation::CopyObject => &COPY_OBJECT,
        Operation::UploadPartCopy => &[READ_COPY_SOURCE],
        // "If you pass a version ID in your request, you need both the
        // s3:GetObjectVersion and s3:GetObjectVersionAttributes
        // permissions. If you do not pass a version ID in your request, you
        // need the s3:GetObject and s3:GetObjectAttributes permissions."
        Operation::GetObjectAttributes => &[Extra {
            action: Action::GetObject,
            versioned: Some(Action::GetObjectVersion),
            on: On::Target,
            when: When::Always,
        }],
        Operation::DeleteObject | Operation::PutObjectRetention => &[BYPASS_GOVERNANCE],
        // The body may name versions, which need s3:DeleteObjectVersion;
        // the proxy does not read it, so it always asks.
        Operation::DeleteObjects => &DELETE_OBJECTS,
        // CreateBucket API reference: ACLs other than private need
        // s3:PutBucketAcl; x-amz-bucket-object-lock-enabled: true needs
        // s3:PutBucketObjectLockConfiguration and s3:PutBucketVersioning;
        // x-amz-object-ownership needs s3:PutBucketOwnershipControls.
        Operation::CreateBucket => &CREATE_BUCKET,
        _ => &[],
    }
}

/// The resource an operation's action is on, as a pattern
/// (`arn:aws:s3:::BUCKET/KEY`).
#[must_use]
pub fn resource_pattern(operation: Operation) -> &'static str {
    match (operation, operation.resource_kind()) {
        (Operation::DeleteObjects, _) => "arn:aws:s3:::BUCKET/*",
        (_, ResourceKind::All) => "*",
        (_, ResourceKind::Bucket) => "arn:aws:s3:::BUCKET",
        (_, ResourceKind::Object) => "arn:aws:s3:::BUCKET/KEY",
    }
}

/// Every permission the request needs; all must be allowed.
#[must_use]
pub fn required(request: &S3Request, headers: &HeaderMap) -> Vec<Permission> {
    let operation = request.operation;
    let versioned = request.version_id().is_some();
    let resource = target_resource(request);
    let extras = extras(operation);
    let mut out = Vec::with_capacity(1 + extras.len());
    out.push(Permission { action: pick(operation.action(), operation.versioned_action(), versioned), resource });
    for extra in extras {
        if !applies(extra.when, request, headers) {
            continue;
        }
        let (resource, versioned) = match (extra.on, &request.copy_source) {
            (On::Target, _) => (out[0].resource.clone(), versioned),
            (On::CopySource, Some(source)) => (object_arn(&source.bucket, &source.key), source.version_id.is_some()),
            // Only CopyObject and UploadPartCopy read one, and they have one.
            (On::CopySource, None) => continue,
        };
        out.push(Permission { action: pick(extra.action, extra.versioned, versioned), resource });
    }
    out
}

fn pick(action: Action, versioned_action: Option<Action>, versioned: bool) -> Action {
    match versioned_action {
        Some(v) if versioned => v,
        _ => action,
    }
}

fn target_resource(request: &S3Request) -> String {
    let bucket = request.target.bucket.as_deref().unwrap_or_default();
    match (request.operation.resource_kind(), &request.target.key) {
        (ResourceKind::All, _) => "*".to_owned(),
        (ResourceKind::Bucket, _) => format!("arn:aws:s3:::{bucket}"),
        (ResourceKind::Object, Some(key)) => object_arn(bucket, key),
        // DeleteObjects: its keys are in the body.
        (ResourceKind::Object, None) => object_arn(bucket, "*"),
    }
}

fn object_arn(bucket: &str, key: &str) -> String {
    let mut arn = String::with_capacity("arn:aws:s3:::/".len() + bucket.len() + key.len());
    arn.push_str("arn:aws:s3:::");
    arn.push_str(bucket);
    arn.push('/');
    arn.push_str(key);
    arn
}

/// The values a header has in the request: as headers, and as the
/// parameters of a presigned URL that stand for headers.
fn header_values<'r>(
    request: &'r S3Request,
    headers: &'r HeaderMap,
    name: &'r str,
) -> impl Iterator<Item = &'r http::HeaderValue> + 'r {
    let matches = move |header: &str| match name.strip_suffix('*') {
        Some(prefix) => header.starts_with(prefix),
        None => header == name,
    };
    headers
        .iter()
        .filter(move |(n, _)| matches(n.as_str()))
        .map(|(_, v)| v)
        .chain(request.query.hoisted().iter().filter(move |h| matches(h.name.as_str())).map(|h| &h.value))
}

fn applies(when: When, request: &S3Request, headers: &HeaderMap) -> bool {
    match when {
        When::Always => true,
        When::AnyHeader(names) => names.iter().any(|name| header_values(request, headers, name).next().is_some()),
        When::HeaderTrue(name) => header_values(request, headers, name)
            .any(|v| !v.to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("false"))),
        When::AclOtherThanPrivate => {
            header_values(request, headers, "x-amz-grant-*").next().is_some()
                || header_values(request, headers, "x-amz-acl").any(|v| v.as_bytes().trim_ascii() != b"private")
        }
    }
}

/// The "Also needs" column of `docs/POLICY_ACTIONS.md`.
#[must_use]
pub fn describe_extras(operation: Operation) -> String {
    use std::fmt::Write as _;

    let mut text = String::new();
    for (i, extra) in extras(operation).iter().enumerate() {
        let separator = if i == 0 { "" } else { "; " };
        // Writing to a String cannot fail.
        let _ = write!(text, "{separator}`{}`", extra.action);
        if let Some(versioned) = extra.versioned {
            let _ = write!(text, " (`{versioned}` with a versionId)");
        }
        if extra.on == On::CopySource {
            text.push_str(" on the copy source");
        }
        match extra.when {
            When::Always => {}
            When::AnyHeader(names) => {
                for (j, name) in names.iter().enumerate() {
                    let _ = write!(text, "{}`{name}`", if j == 0 { " with " } else { " or " });
                }
            }
            When::HeaderTrue(name) => {
                let _ = write!(text, " with `{name}: true`");
            }
            When::AclOtherThanPrivate => {
                text.push_str(" with `x-amz-grant-*` or an `x-amz-acl` other than `private`");
            }
        }
    }
    if text.is_empty() {
        text.push('—');
    }
    text
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue, Method};

    use super::*;
    use crate::s3::addressing;

    /// Each operation with its action, its action when a `versionId` is
    /// given, and its resource type, written out from AWS's documentation
    /// (the Service Authorization Reference's S3 page and each operation's
    /// "Permissions" in the S3 API Reference), not from the code.
    const AWS: &[(&str, &str, Option<&str>, ResourceKind)] = {
        use ResourceKind::{All, Bucket, Object};
        &[
            ("ListBuckets", "s3:ListAllMyBuckets", None, All),
            ("ListObjects", "s3:ListBucket", None, Bucket),
            ("ListObjectsV2", "s3:ListBucket", None, Bucket),
            ("ListObjectVersions", "s3:ListBucketVersions", None, Bucket),
            ("ListMultipartUploads", "s3:ListBucketMultipartUploads", None, Bucket),
            ("HeadBucket", "s3:ListBucket", None, Bucket),
            ("GetBucketLocation", "s3:GetBucketLocation", None, Bucket),
            ("GetBucketAcl", "s3:GetBucketAcl", None, Bucket),
            ("GetBucketPolicy", "s3:GetBucketPolicy", None, Bucket),
            ("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus", None, Bucket),
            ("GetBucketLogging", "s3:GetBucketLogging", None, Bucket),
            ("GetBucketTagging", "s3:GetBucketTagging", None, Bucket),
            ("GetBucketVersioning", "s3:GetBucketVersioning", None, Bucket),
            ("GetBucketEncryption", "s3:GetEncryptionConfiguration", None, Bucket),
            ("GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration", None, Bucket),
            ("GetBucketCors", "s3:GetBucketCORS", None, Bucket),
            ("GetObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration", None, Bucket),
            ("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock", None, Bucket),
            ("GetBucketOwnershipControls", "s3:GetBucketOwnershipControls", None, Bucket),
            ("GetBucketNotificationConfiguration", "s3:GetBucketNotification", None, Bucket),
            ("GetBucketWebsite", "s3:GetBucketWebsite", None, Bucket),
            ("GetBucketReplication", "s3:GetReplicationConfiguration", None, Bucket),
            ("GetBucketRequestPayment", "s3:GetBucketRequestPayment", None, Bucket),
            ("GetBucketAccelerateConfiguration", "s3:GetAccelerateConfiguration", None, Bucket),
            ("GetBucketAnalyticsConfiguration", "s3:GetAnalyticsConfiguration", None, Bucket),
            ("ListBucketAnalyticsConfigurations", "s3:GetAnalyticsConfiguration", None, Bucket),
            ("GetBucketInventoryConfiguration", "s3:GetInventoryConfiguration", None, Bucket),
            ("ListBucketInventoryConfigurations", "s3:GetInventoryConfiguration", None, Bucket),
            ("GetBucketMetricsConfiguration", "s3:GetMetricsConfiguration", None, Bucket),
            ("ListBucketMetricsConfigurations", "s3:GetMetricsConfiguration", None, Bucket),
            ("GetBucketIntelligentTieringConfiguration", "s3:GetIntelligentTieringConfiguration", None, Bucket),
            ("ListBucketIntelligentTieringConfigurations", "s3:GetIntelligentTieringConfiguration", None, Bucket),
            ("CreateBucket", "s3:CreateBucket", None, Bucket),
            ("DeleteBucket", "s3:DeleteBucket", None, Bucket),
            ("PutBucketAcl", "s3:PutBucketAcl", None, Bucket),
            ("PutBucketPolicy", "s3:PutBucketPolicy", None, Bucket),
            ("DeleteBucketPolicy", "s3:DeleteBucketPolicy", None, Bucket),
            ("PutBucketLogging", "s3:PutBucketLogging", None, Bucket),
            ("PutBucketTagging", "s3:PutBucketTagging", None, Bucket),
            ("DeleteBucketTagging", "s3:PutBucketTagging", None, Bucket),
            ("PutBucketVersioning", "s3:PutBucketVersioning", None, Bucket),
            ("PutBucketEncryption", "s3:PutEncryptionConfiguration", None, Bucket),
            ("DeleteBucketEncryption", "s3:PutEncryptionConfiguration", None, Bucket),
            ("PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration", None, Bucket),
            ("DeleteBucketLifecycle", "s3:PutLifecycleConfiguration", None, Bucket),
            ("PutBucketCors", "s3:PutBucketCORS", None, Bucket),
            ("DeleteBucketCors", "s3:PutBucketCORS", None, Bucket),
            ("PutObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration", None, Bucket),
            ("PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock", None, Bucket),
            ("DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock", None, Bucket),
            ("PutBucketOwnershipControls", "s3:PutBucketOwnershipControls", None, Bucket),
            ("DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls", None, Bucket),
            ("PutBucketNotificationConfiguration", "s3:PutBucketNotification", None, Bucket),
            ("PutBucketWebsite", "s3:PutBucketWebsite", None, Bucket),
            ("DeleteBucketWebsite", "s3:DeleteBucketWebsite", None, Bucket),
            ("PutBucketReplication", "s3:PutReplicationConfiguration", None, Bucket),
            ("DeleteBucketReplication", "s3:PutReplicationConfiguration", None, Bucket),
            ("PutBucketRequestPayment", "s3:PutBucketRequestPayment", None, Bucket),
            ("PutBucketAccelerateConfiguration", "s3:PutAccelerateConfiguration", None, Bucket),
            ("PutBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration", None, Bucket),
            ("DeleteBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration", None, Bucket),
            ("PutBucketInventoryConfiguration", "s3:PutInventoryConfiguration", None, Bucket),
            ("DeleteBucketInventoryConfiguration", "s3:PutInventoryConfiguration", None, Bucket),
            ("PutBucketMetricsConfiguration", "s3:PutMetricsConfiguration", None, Bucket),
            ("DeleteBucketMetricsConfiguration", "s3:PutMetricsConfiguration", None, Bucket),
            ("PutBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration", None, Bucket),
            ("DeleteBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration", None, Bucket),
            ("DeleteObjects", "s3:DeleteObject", None, Object),
            ("GetObject", "s3:GetObject", Some("s3:GetObjectVersion"), Object),
            ("HeadObject", "s3:GetObject", Some("s3:GetObjectVersion"), Object),
            ("GetObjectAcl", "s3:GetObjectAcl", Some("s3:GetObjectVersionAcl"), Object),
            ("GetObjectTagging", "s3:GetObjectTagging", Some("s3:GetObjectVersionTagging"), Object),
            ("GetObjectAttributes", "s3:GetObjectAttributes", Some("s3:GetObjectVersionAttributes"), Object),
            ("GetObjectRetention", "s3:GetObjectRetention", None, Object),
            ("GetObjectLegalHold", "s3:GetObjectLegalHold", None, Object),
            ("GetObjectTorrent", "s3:GetObjectTorrent", Some("s3:GetObjectVersionTorrent"), Object),
            ("ListParts", "s3:ListMultipartUploadParts", None, Object),
            ("PutObject", "s3:PutObject", None, Object),
            ("CopyObject", "s3:PutObject", None, Object),
            ("DeleteObject", "s3:DeleteObject", Some("s3:DeleteObjectVersion"), Object),
            ("PutObjectAcl", "s3:PutObjectAcl", Some("s3:PutObjectVersionAcl"), Object),
            ("PutObjectTagging", "s3:PutObjectTagging", Some("s3:PutObjectVersionTagging"), Object),
            ("DeleteObjectTagging", "s3:DeleteObjectTagging", Some("s3:DeleteObjectVersionTagging"), Object),
            ("PutObjectRetention", "s3:PutObjectRetention", None, Object),
            ("PutObjectLegalHold", "s3:PutObjectLegalHold", None, Object),
            ("RestoreObject", "s3:RestoreObject", None, Object),
            // AWS's SelectObjectContent takes no versionId; one given is
            // read as naming the version (the proxy's stricter reading).
            ("SelectObjectContent", "s3:GetObject", Some("s3:GetObjectVersion"), Object),
            ("CreateMultipartUpload", "s3:PutObject", None, Object),
            ("UploadPart", "s3:PutObject", None, Object),
            ("UploadPartCopy", "s3:PutObject", None, Object),
            ("CompleteMultipartUpload", "s3:PutObject", None, Object),
            ("AbortMultipartUpload", "s3:AbortMultipartUpload", None, Object),
        ]
    };

    #[test]
    fn every_operation_has_the_action_aws_documents() {
        assert_eq!(AWS.len(), Operation::ALL.len(), "an operation is missing from the expected table");
        for op in Operation::ALL {
            let Some(&(_, action, versioned, kind)) = AWS.iter().find(|e| e.0 == op.name()) else {
                panic!("{} is not in the expected table", op.name());
            };
            let got = (op.action().name(), op.versioned_action().map(Action::name), op.resource_kind());
            assert_eq!(got, (action, versioned, kind), "{}", op.name());
        }
    }

    #[test]
    fn action_names_are_unique_and_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(*action));
            assert!(action.name().starts_with("s3:"));
        }
        assert_eq!(Action::from_name("S3:getbucketcors"), Some(Action::GetBucketCors));
        assert_eq!(Action::from_name("s3:*"), None);
    }

    fn request(method: &str, path: &str, query: Option<&str>, headers: &[(&str, &str)]) -> Vec<Permission> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        let target = addressing::resolve(None, path, &[]).unwrap();
        let method: Method = method.parse().unwrap();
        let parsed = S3Request::parse(&method, target, query, &map).unwrap();
        required(&parsed, &map)
    }

    fn perms(list: &[(Action, &str)]) -> Vec<Permission> {
        list.iter().map(|(action, resource)| Permission { action: *action, resource: (*resource).to_owned() }).collect()
    }

    #[test]
    fn list_buckets_is_on_everything() {
        assert_eq!(request("GET", "/", None, &[]), perms(&[(Action::ListAllMyBuckets, "*")]));
    }

    #[test]
    fn bucket_operations_are_on_the_bucket() {
        assert_eq!(
            request("GET", "/bkt", Some("list-type=2"), &[]),
            perms(&[(Action::ListBucket, "arn:aws:s3:::bkt")])
        );
        assert_eq!(request("HEAD", "/bkt", None, &[]), perms(&[(Action::ListBucket, "arn:aws:s3:::bkt")]));
        assert_eq!(
            request("DELETE", "/bkt", Some("tagging"), &[]),
            perms(&[(Action::PutBucketTagging, "arn:aws:s3:::bkt")])
        );
    }

    #[test]
    fn object_arns_name_the_decoded_key() {
        assert_eq!(
            request("GET", "/bkt/dir/my%20file%20%E2%82%AC%2510.txt", None, &[]),
            perms(&[(Action::GetObject, "arn:aws:s3:::bkt/dir/my file €%10.txt")])
        );
        assert_eq!(
            request("HEAD", "/bkt/k", Some("versionId=3"), &[]),
            perms(&[(Action::GetObjectVersion, "arn:aws:s3:::bkt/k")])
        );
        assert_eq!(
            request("DELETE", "/bkt/k", Some("versionId=3"), &[]),
            perms(&[(Action::DeleteObjectVersion, "arn:aws:s3:::bkt/k")])
        );
    }

    #[test]
    fn get_object_attributes_also_reads_the_object() {
        assert_eq!(
            request("GET", "/bkt/k", Some("attributes"), &[]),
            perms(&[(Action::GetObjectAttributes, "arn:aws:s3:::bkt/k"), (Action::GetObject, "arn:aws:s3:::bkt/k")])
        );
        assert_eq!(
            request("GET", "/bkt/k", Some("attributes&versionId=v"), &[]),
            perms(&[
                (Action::GetObjectVersionAttributes, "arn:aws:s3:::bkt/k"),
                (Action::GetObjectVersion, "arn:aws:s3:::bkt/k")
            ])
        );
    }

    #[test]
    fn copies_read_their_source() {
        assert_eq!(
            request("PUT", "/dst/new", None, &[("x-amz-copy-source", "/src/dir/old%20one")]),
            perms(&[(Action::PutObject, "arn:aws:s3:::dst/new"), (Action::GetObject, "arn:aws:s3:::src/dir/old one")])
        );
        assert_eq!(
            request("PUT", "/dst/new", None, &[("x-amz-copy-source", "src/old?versionId=7")]),
            perms(&[(Action::PutObject, "arn:aws:s3:::dst/new"), (Action::GetObjectVersion, "arn:aws:s3:::src/old")])
        );
        assert_eq!(
            request(
                "PUT",
                "/dst/new",
                Some("partNumber=1&uploadId=u"),
                &[("x-amz-copy-source", "src/old?versionId=7")]
            ),
            perms(&[(Action::PutObject, "arn:aws:s3:::dst/new"), (Action::GetObjectVersion, "arn:aws:s3:::src/old")])
        );
        // The destination's own versionId (none is defined) does not make
        // the source read versioned, nor the other way round.
        assert_eq!(
            request("PUT", "/dst/new", None, &[("x-amz-copy-source", "src/old"), ("x-amz-tagging", "a=b")]),
            perms(&[
                (Action::PutObject, "arn:aws:s3:::dst/new"),
                (Action::GetObject, "arn:aws:s3:::src/old"),
                (Action::PutObjectTagging, "arn:aws:s3:::dst/new")
            ])
        );
    }

    #[test]
    fn new_objects_headers_need_their_permissions() {
        assert_eq!(request("PUT", "/bkt/k", None, &[]), perms(&[(Action::PutObject, "arn:aws:s3:::bkt/k")]));
        assert_eq!(
            request("PUT", "/bkt/k", None, &[("x-amz-acl", "private"), ("x-amz-tagging", "a=b")]),
            perms(&[
                (Action::PutObject, "arn:aws:s3:::bkt/k"),
                (Action::PutObjectAcl, "arn:aws:s3:::bkt/k"),
                (Action::PutObjectTagging, "arn:aws:s3:::bkt/k")
            ])
        );
        assert_eq!(
            request(
                "POST",
                "/bkt/k",
                Some("uploads"),
                &[("x-amz-grant-read", "id=1"), ("x-amz-object-lock-legal-hold", "ON")]
            ),
            perms(&[
                (Action::PutObject, "arn:aws:s3:::bkt/k"),
                (Action::PutObjectAcl, "arn:aws:s3:::bkt/k"),
                (Action::PutObjectLegalHold, "arn:aws:s3:::bkt/k")
            ])
        );
        assert_eq!(
            request("PUT", "/bkt/k", None, &[("x-amz-object-lock-mode", "GOVERNANCE")]),
            perms(&[(Action::PutObject, "arn:aws:s3:::bkt/k"), (Action::PutObjectRetention, "arn:aws:s3:::bkt/k")])
        );
        // x-amz-tagging-directive is not x-amz-tagging; UploadPart takes
        // no ACL.
        assert_eq!(
            request("PUT", "/bkt/k", None, &[("x-amz-copy-source", "srcb/k"), ("x-amz-tagging-directive", "COPY")]),
            perms(&[(Action::PutObject, "arn:aws:s3:::bkt/k"), (Action::GetObject, "arn:aws:s3:::srcb/k")])
        );
    }

    #[test]
    fn presigned_header_parameters_count_as_headers() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=c&X-Amz-Signature=s&x-amz-acl=public-read";
        assert_eq!(
            request("PUT", "/bkt/k", Some(q), &[]),
            perms(&[(Action::PutObject, "arn:aws:s3:::bkt/k"), (Action::PutObjectAcl, "arn:aws:s3:::bkt/k")])
        );
    }

    #[test]
    fn delete_objects_needs_every_key_of_the_bucket() {
        assert_eq!(
            request("POST", "/bkt", Some("delete"), &[]),
            perms(&[(Action::DeleteObject, "arn:aws:s3:::bkt/*"), (Action::DeleteObjectVersion, "arn:aws:s3:::bkt/*")])
        );
        assert_eq!(
            request("POST", "/bkt", Some("delete"), &[("x-amz-bypass-governance-retention", "true")]),
            perms(&[
                (Action::DeleteObject, "arn:aws:s3:::bkt/*"),
                (Action::DeleteObjectVersion, "arn:aws:s3:::bkt/*"),
                (Action::BypassGovernanceRetention, "arn:aws:s3:::bkt/*")
            ])
        );
        assert_eq!(
            request("DELETE", "/bkt/k", None, &[("x-amz-bypass-governance-retention", "False")]),
            perms(&[(Action::DeleteObject, "arn:aws:s3:::bkt/k")])
        );
    }

    #[test]
    fn create_bucket_headers_need_their_permissions() {
        assert_eq!(
            request("PUT", "/bkt", None, &[("x-amz-acl", "private")]),
            perms(&[(Action::CreateBucket, "arn:aws:s3:::bkt")])
        );
        assert_eq!(
            request(
                "PUT",
                "/bkt",
                None,
                &[
                    ("x-amz-acl", "public-read"),
                    ("x-amz-bucket-object-lock-enabled", "true"),
                    ("x-amz-object-ownership", "BucketOwnerEnforced")
                ]
            ),
            perms(&[
                (Action::CreateBucket, "arn:aws:s3:::bkt"),
                (Action::PutBucketAcl, "arn:aws:s3:::bkt"),
                (Action::PutBucketObjectLockConfiguration, "arn:aws:s3:::bkt"),
                (Action::PutBucketVersioning, "arn:aws:s3:::bkt"),
                (Action::PutBucketOwnershipControls, "arn:aws:s3:::bkt")
            ])
        );
    }

    /// `docs/POLICY_ACTIONS.md`'s table is this code's table.
    #[test]
    fn the_documented_table_is_the_code() {
        let doc = include_str!("../../../docs/POLICY_ACTIONS.md");
        let rows: Vec<Vec<&str>> = doc
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| line.trim().trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        let expected: Vec<[String; 5]> = Operation::ALL
            .iter()
            .map(|op| {
                [
                    format!("`{}`", op.name()),
                    format!("`{}`", op.action()),
                    op.versioned_action().map_or_else(|| "—".to_owned(), |a| format!("`{a}`")),
                    format!("`{}`", resource_pattern(*op)),
                    describe_extras(*op),
                ]
            })
            .collect();
        let table = expected.iter().map(|row| format!("| {} |", row.join(" | "))).collect::<Vec<_>>().join("\n");
        assert_eq!(rows.len(), expected.len(), "the documented table's rows; the table is:\n{table}");
        for (row, want) in rows.iter().zip(&expected) {
            assert_eq!(row.as_slice(), want.as_slice(), "the table is:\n{table}");
        }
    }
}
