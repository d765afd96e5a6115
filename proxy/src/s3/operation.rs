//! The S3 operation a request is, from its method, what it addresses
//! (service, bucket or object), its parsed query and whether it names a copy
//! source — named as in the S3 API reference (the ledger's `operation`).
//!
//! Classification reads only the decoded query ([`Query`]), the same parse
//! the forwarded request is built from. A combination S3 does not define is
//! refused rather than forwarded under a name that might not be what the
//! upstream does.

use http::Method;

use super::permission::{Action, ResourceKind};
use super::query::{Query, Role, role};

/// `Some(Action::…)` for a declared versioned action, `None` otherwise.
macro_rules! versioned_action {
    () => {
        None
    };
    ($action:ident) => {
        Some(Action::$action)
    };
}

/// Each operation is declared with the IAM action AWS authorizes it with,
/// the action instead when the request names a version (`versionId`), where
/// AWS has one, and the kind of resource the action is on — see
/// [`super::permission`] for what else a request may need.
macro_rules! operations {
    ($($name:ident => ($action:ident, $kind:ident $(, versioned: $versioned:ident)?)),* $(,)?) => {
        /// An S3 operation the proxy recognises and forwards.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Operation {
            $($name,)*
        }

        impl Operation {
            /// Every operation, for tests and tables.
            pub const ALL: &'static [Operation] = &[$(Operation::$name,)*];

            /// The name in the S3 API reference.
            #[must_use]
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name),)*
                }
            }

            /// The IAM action AWS authorizes the operation with.
            #[must_use]
            pub fn action(self) -> Action {
                match self {
                    $(Operation::$name => Action::$action,)*
                }
            }

            /// The IAM action instead when the request names a version
            /// (`versionId`); `None` where AWS uses the same action.
            #[must_use]
            pub fn versioned_action(self) -> Option<Action> {
                match self {
                    $(Operation::$name => versioned_action!($($versioned)?),)*
                }
            }

            /// What the action is on.
            #[must_use]
            pub fn resource_kind(self) -> ResourceKind {
                match self {
                    $(Operation::$name => ResourceKind::$kind,)*
                }
            }
        }
    };
}

// Sources: the Service Authorization Reference's "Actions, resources, and
// condition keys for Amazon S3" and each operation's "Permissions" in the S3
// API Reference. Deletes of bucket configurations are authorized by the
// `Put…` action (DeleteBucketTagging: "you must have permission to perform
// the s3:PutBucketTagging action"; likewise CORS, encryption, lifecycle,
// public access block, ownership controls, replication, analytics,
// inventory, metrics, Intelligent-Tiering), and `List…Configurations` by the
// `Get…` one; HeadBucket is s3:ListBucket, HeadObject s3:GetObject.
operations! {
    ListBuckets => (ListAllMyBuckets, All),
    // Bucket reads.
    ListObjects => (ListBucket, Bucket),
    ListObjectsV2 => (ListBucket, Bucket),
    ListObjectVersions => (ListBucketVersions, Bucket),
    ListMultipartUploads => (ListBucketMultipartUploads, Bucket),
    HeadBucket => (ListBucket, Bucket),
    GetBucketLocation => (GetBucketLocation, Bucket),
    GetBucketAcl => (GetBucketAcl, Bucket),
    GetBucketPolicy => (GetBucketPolicy, Bucket),
    GetBucketPolicyStatus => (GetBucketPolicyStatus, Bucket),
    GetBucketLogging => (GetBucketLogging, Bucket),
    GetBucketTagging => (GetBucketTagging, Bucket),
    GetBucketVersioning => (GetBucketVersioning, Bucket),
    GetBucketEncryption => (GetEncryptionConfiguration, Bucket),
    GetBucketLifecycleConfiguration => (GetLifecycleConfiguration, Bucket),
    GetBucketCors => (GetBucketCors, Bucket),
    GetObjectLockConfiguration => (GetBucketObjectLockConfiguration, Bucket),
    GetPublicAccessBlock => (GetBucketPublicAccessBlock, Bucket),
    GetBucketOwnershipControls => (GetBucketOwnershipControls, Bucket),
    GetBucketNotificationConfiguration => (GetBucketNotification, Bucket),
    GetBucketWebsite => (GetBucketWebsite, Bucket),
    GetBucketReplication => (GetReplicationConfiguration, Bucket),
    GetBucketRequestPayment => (GetBucketRequestPayment, Bucket),
    GetBucketAccelerateConfiguration => (GetAccelerateConfiguration, Bucket),
    GetBucketAnalyticsConfiguration => (GetAnalyticsConfiguration, Bucket),
    ListBucketAnalyticsConfigurations => (GetAnalyticsConfiguration, Bucket),
    GetBucketInventoryConfiguration => (GetInventoryConfiguration, Bucket),
    ListBucketInventoryConfigurations => (GetInventoryConfiguration, Bucket),
    GetBucketMetricsConfiguration => (GetMetricsConfiguration, Bucket),
    ListBucketMetricsConfigurations => (GetMetricsConfiguration, Bucket),
    GetBucketIntelligentTieringConfiguration => (GetIntelligentTieringConfiguration, Bucket),
    ListBucketIntelligentTieringConfigurations => (GetIntelligentTieringConfiguration, Bucket),
    // Bucket writes.
    CreateBucket => (CreateBucket, Bucket),
    DeleteBucket => (DeleteBucket, Bucket),
    PutBucketAcl => (PutBucketAcl, Bucket),
    PutBucketPolicy => (PutBucketPolicy, Bucket),
    DeleteBucketPolicy => (DeleteBucketPolicy, Bucket),
    PutBucketLogging => (PutBucketLogging, Bucket),
    PutBucketTagging => (PutBucketTagging, Bucket),
    DeleteBucketTagging => (PutBucketTagging, Bucket),
    PutBucketVersioning => (PutBucketVersioning, Bucket),
    PutBucketEncryption => (PutEncryptionConfiguration, Bucket),
    DeleteBucketEncryption => (PutEncryptionConfiguration, Bucket),
    PutBucketLifecycleConfiguration => (PutLifecycleConfiguration, Bucket),
    DeleteBucketLifecycle => (PutLifecycleConfiguration, Bucket),
    PutBucketCors => (PutBucketCors, Bucket),
    DeleteBucketCors => (PutBucketCors, Bucket),
    PutObjectLockConfiguration => (PutBucketObjectLockConfiguration, Bucket),
    PutPublicAccessBlock => (PutBucketPublicAccessBlock, Bucket),
    DeletePublicAccessBlock => (PutBucketPublicAccessBlock, Bucket),
    PutBucketOwnershipControls => (PutBucketOwnershipControls, Bucket),
    DeleteBucketOwnershipControls => (PutBucketOwnershipControls, Bucket),
    PutBucketNotificationConfiguration => (PutBucketNotification, Bucket),
    PutBucketWebsite => (PutBucketWebsite, Bucket),
    DeleteBucketWebsite => (DeleteBucketWebsite, Bucket),
    PutBucketReplication => (PutReplicationConfiguration, Bucket),
    DeleteBucketReplication => (PutReplicationConfiguration, Bucket),
    PutBucketRequestPayment => (PutBucketRequestPayment, Bucket),
    PutBucketAccelerateConfiguration => (PutAccelerateConfiguration, Bucket),
    PutBucketAnalyticsConfiguration => (PutAnalyticsConfiguration, Bucket),
    DeleteBucketAnalyticsConfiguration => (PutAnalyticsConfiguration, Bucket),
    PutBucketInventoryConfiguration => (PutInventoryConfiguration, Bucket),
    DeleteBucketInventoryConfiguration => (PutInventoryConfiguration, Bucket),
    PutBucketMetricsConfiguration => (PutMetricsConfiguration, Bucket),
    DeleteBucketMetricsConfiguration => (PutMetricsConfiguration, Bucket),
    PutBucketIntelligentTieringConfiguration => (PutIntelligentTieringConfiguration, Bucket),
    DeleteBucketIntelligentTieringConfiguration => (PutIntelligentTieringConfiguration, Bucket),
    // On `arn:aws:s3:::BUCKET/*`: the keys are in the body.
    DeleteObjects => (DeleteObject, Object),
    // Object reads.
    GetObject => (GetObject, Object, versioned: GetObjectVersion),
    HeadObject => (GetObject, Object, versioned: GetObjectVersion),
    GetObjectAcl => (GetObjectAcl, Object, versioned: GetObjectVersionAcl),
    GetObjectTagging => (GetObjectTagging, Object, versioned: GetObjectVersionTagging),
    // Also s3:GetObject / s3:GetObjectVersion (`permission::extras`).
    GetObjectAttributes => (GetObjectAttributes, Object, versioned: GetObjectVersionAttributes),
    GetObjectRetention => (GetObjectRetention, Object),
    GetObjectLegalHold => (GetObjectLegalHold, Object),
    GetObjectTorrent => (GetObjectTorrent, Object, versioned: GetObjectVersionTorrent),
    ListParts => (ListMultipartUploadParts, Object),
    // Object writes.
    PutObject => (PutObject, Object),
    CopyObject => (PutObject, Object),
    DeleteObject => (DeleteObject, Object, versioned: DeleteObjectVersion),
    PutObjectAcl => (PutObjectAcl, Object, versioned: PutObjectVersionAcl),
    PutObjectTagging => (PutObjectTagging, Object, versioned: PutObjectVersionTagging),
    DeleteObjectTagging => (DeleteObjectTagging, Object, versioned: DeleteObjectVersionTagging),
    PutObjectRetention => (PutObjectRetention, Object),
    PutObjectLegalHold => (PutObjectLegalHold, Object),
    RestoreObject => (RestoreObject, Object),
    // AWS's SelectObjectContent takes no versionId; one given is read as
    // naming that version (stricter than ignoring it).
    SelectObjectContent => (GetObject, Object, versioned: GetObjectVersion),
    CreateMultipartUpload => (PutObject, Object),
    UploadPart => (PutObject, Object),
    UploadPartCopy => (PutObject, Object),
    CompleteMultipartUpload => (PutObject, Object),
    AbortMultipartUpload => (AbortMultipartUpload, Object),
}

/// What a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Service,
    Bucket,
    Object,
}

/// A method and query that name no S3 operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} on {scope} with the query parameters given is not an S3 operation this proxy forwards")]
pub struct UnknownOperation {
    pub method: String,
    pub scope: &'static str,
}

/// The bucket sub-resources that select a configuration, with the names of
/// their get, put and delete operations (`None`: S3 has no such operation).
struct BucketConfig {
    param: &'static str,
    get: Operation,
    put: Option<Operation>,
    delete: Option<Operation>,
}

const BUCKET_CONFIGS: &[BucketConfig] = &[
    BucketConfig { param: "acl", get: Operation::GetBucketAcl, put: Some(Operation::PutBucketAcl), delete: None },
    BucketConfig { param: "policyStatus", get: Operation::GetBucketPolicyStatus, put: None, delete: None },
    BucketConfig {
        param: "policy",
        get: Operation::GetBucketPolicy,
        put: Some(Operation::PutBucketPolicy),
        delete: Some(Operation::DeleteBucketPolicy),
    },
    BucketConfig {
        param: "logging",
        get: Operation::GetBucketLogging,
        put: Some(Operation::PutBucketLogging),
        delete: None,
    },
    BucketConfig {
        param: "tagging",
        get: Operation::GetBucketTagging,
        put: Some(Operation::PutBucketTagging),
        delete: Some(Operation::DeleteBucketTagging),
    },
    BucketConfig {
        param: "versioning",
        get: Operation::GetBucketVersioning,
        put: Some(Operation::PutBucketVersioning),
        delete: None,
    },
    BucketConfig {
        param: "encryption",
        get: Operation::GetBucketEncryption,
        put: Some(Operation::PutBucketEncryption),
        delete: Some(Operation::DeleteBucketEncryption),
    },
    BucketConfig {
        param: "lifecycle",
        get: Operation::GetBucketLifecycleConfiguration,
        put: Some(Operation::PutBucketLifecycleConfiguration),
        delete: Some(Operation::DeleteBucketLifecycle),
    },
    BucketConfig {
        param: "cors",
        get: Operation::GetBucketCors,
        put: Some(Operation::PutBucketCors),
        delete: Some(Operation::DeleteBucketCors),
    },
    BucketConfig {
        param: "object-lock",
        get: Operation::GetObjectLockConfiguration,
        put: Some(Operation::PutObjectLockConfiguration),
        delete: None,
    },
    BucketConfig {
        param: "publicAccessBlock",
        get: Operation::GetPublicAccessBlock,
        put: Some(Operation::PutPublicAccessBlock),
        delete: Some(Operation::DeletePublicAccessBlock),
    },
    BucketConfig {
        param: "ownershipControls",
        get: Operation::GetBucketOwnershipControls,
        put: Some(Operation::PutBucketOwnershipControls),
        delete: Some(Operation::DeleteBucketOwnershipControls),
    },
    BucketConfig {
        param: "notification",
        get: Operation::GetBucketNotificationConfiguration,
        put: Some(Operation::PutBucketNotificationConfiguration),
        delete: None,
    },
    BucketConfig {
        param: "website",
        get: Operation::GetBucketWebsite,
        put: Some(Operation::PutBucketWebsite),
        delete: Some(Operation::DeleteBucketWebsite),
    },
    BucketConfig {
        param: "replication",
        get: Operation::GetBucketReplication,
        put: Some(Operation::PutBucketReplication),
        delete: Some(Operation::DeleteBucketReplication),
    },
    BucketConfig {
        param: "requestPayment",
        get: Operation::GetBucketRequestPayment,
        put: Some(Operation::PutBucketRequestPayment),
        delete: None,
    },
    BucketConfig {
        param: "accelerate",
        get: Operation::GetBucketAccelerateConfiguration,
        put: Some(Operation::PutBucketAccelerateConfiguration),
        delete: None,
    },
    BucketConfig {
        param: "analytics",
        get: Operation::GetBucketAnalyticsConfiguration,
        put: Some(Operation::PutBucketAnalyticsConfiguration),
        delete: Some(Operation::DeleteBucketAnalyticsConfiguration),
    },
    BucketConfig {
        param: "inventory",
        get: Operation::GetBucketInventoryConfiguration,
        put: Some(Operation::PutBucketInventoryConfiguration),
        delete: Some(Operation::DeleteBucketInventoryConfiguration),
    },
    BucketConfig {
        param: "metrics",
        get: Operation::GetBucketMetricsConfiguration,
        put: Some(Operation::PutBucketMetricsConfiguration),
        delete: Some(Operation::DeleteBucketMetricsConfiguration),
    },
    BucketConfig {
        param: "intelligent-tiering",
        get: Operation::GetBucketIntelligentTieringConfiguration,
        put: Some(Operation::PutBucketIntelligentTieringConfiguration),
        delete: Some(Operation::DeleteBucketIntelligentTieringConfiguration),
    },
];

/// The `List…Configurations` form of a configuration read without `id`.
fn listing_of(get: Operation) -> Operation {
    match get {
        Operation::GetBucketAnalyticsConfiguration => Operation::ListBucketAnalyticsConfigurations,
        Operation::GetBucketInventoryConfiguration => Operation::ListBucketInventoryConfigurations,
        Operation::GetBucketMetricsConfiguration => Operation::ListBucketMetricsConfigurations,
        Operation::GetBucketIntelligentTieringConfiguration => Operation::ListBucketIntelligentTieringConfigurations,
        other => other,
    }
}

impl Operation {
    /// The operation of a request; `copy_source` says whether it names one
    /// (`x-amz-copy-source`).
    pub fn classify(
        method: &Method,
        scope: Scope,
        query: &Query,
        copy_source: bool,
    ) -> Result<Operation, UnknownOperation> {
        let found = match scope {
            Scope::Service => (*method == Method::GET && only_selector(query, &[])).then_some(Operation::ListBuckets),
            Scope::Bucket => bucket_operation(method, query),
            Scope::Object => object_operation(method, query, copy_source),
        };
        found.ok_or_else(|| UnknownOperation {
            method: method.as_str().chars().take(32).collect(),
            scope: match scope {
                Scope::Service => "the service",
                Scope::Bucket => "a bucket",
                Scope::Object => "an object",
            },
        })
    }

    /// Operations whose answer is (part of) an object, with its size.
    #[must_use]
    pub fn reads_object(self) -> bool {
        matches!(self, Operation::GetObject | Operation::HeadObject)
    }
}

fn bucket_operation(method: &Method, query: &Query) -> Option<Operation> {
    let config = BUCKET_CONFIGS.iter().find(|c| query.has(c.param));
    let (op, selector) = match (method, config) {
        (&Method::GET, Some(c)) if query.has("id") => (c.get, Some(c.param)),
        (&Method::GET, Some(c)) => (listing_of(c.get), Some(c.param)),
        (&Method::PUT, Some(c)) => (c.put?, Some(c.param)),
        (&Method::DELETE, Some(c)) => (c.delete?, Some(c.param)),
        (&Method::GET, None) if query.has("list-type") => {
            (query.get("list-type") == Some("2")).then_some((Operation::ListObjectsV2, Some("list-type")))?
        }
        (&Method::GET, None) if query.has("uploads") => (Operation::ListMultipartUploads, Some("uploads")),
        (&Method::GET, None) if query.has("versions") => (Operation::ListObjectVersions, Some("versions")),
        (&Method::GET, None) if query.has("location") => (Operation::GetBucketLocation, Some("location")),
        (&Method::GET, None) => (Operation::ListObjects, None),
        (&Method::HEAD, None) => (Operation::HeadBucket, None),
        (&Method::PUT, None) => (Operation::CreateBucket, None),
        (&Method::DELETE, None) => (Operation::DeleteBucket, None),
        (&Method::POST, None) if query.has("delete") => (Operation::DeleteObjects, Some("delete")),
        _ => return None,
    };
    only_selector(query, selector.as_slice()).then_some(op)
}

/// Whether every operation-selecting parameter present is among `allowed`:
/// `GET ?tagging&acl` is no single S3 operation.
fn only_selector(query: &Query, allowed: &[&str]) -> bool {
    query.params().iter().all(|p| role(&p.name) != Some(Role::Selector) || allowed.contains(&p.name.as_str()))
}

fn object_operation(method: &Method, query: &Query, copy: bool) -> Option<Operation> {
    let has = |name: &str| query.has(name);
    // Each operation with the selectors it may carry: the one that chose it,
    // and those it takes as arguments.
    let (op, selectors): (Operation, &[&str]) = match *method {
        Method::GET if has("uploadId") => (Operation::ListParts, &["uploadId"]),
        Method::GET if has("tagging") => (Operation::GetObjectTagging, &["tagging"]),
        Method::GET if has("acl") => (Operation::GetObjectAcl, &["acl"]),
        Method::GET if has("attributes") => (Operation::GetObjectAttributes, &["attributes"]),
        Method::GET if has("retention") => (Operation::GetObjectRetention, &["retention"]),
        Method::GET if has("legal-hold") => (Operation::GetObjectLegalHold, &["legal-hold"]),
        Method::GET if has("torrent") => (Operation::GetObjectTorrent, &["torrent"]),
        Method::GET => (Operation::GetObject, &["partNumber"]),
        Method::HEAD => (Operation::HeadObject, &["partNumber"]),
        Method::PUT if has("partNumber") && has("uploadId") && copy => {
            (Operation::UploadPartCopy, &["uploadId", "partNumber"])
        }
        Method::PUT if has("partNumber") && has("uploadId") => (Operation::UploadPart, &["uploadId", "partNumber"]),
        Method::PUT if has("tagging") => (Operation::PutObjectTagging, &["tagging"]),
        Method::PUT if has("acl") => (Operation::PutObjectAcl, &["acl"]),
        Method::PUT if has("retention") => (Operation::PutObjectRetention, &["retention"]),
        Method::PUT if has("legal-hold") => (Operation::PutObjectLegalHold, &["legal-hold"]),
        Method::PUT if copy => (Operation::CopyObject, &[]),
        Method::PUT => (Operation::PutObject, &[]),
        Method::POST if has("uploads") => (Operation::CreateMultipartUpload, &["uploads"]),
        Method::POST if has("uploadId") => (Operation::CompleteMultipartUpload, &["uploadId"]),
        Method::POST if has("restore") => (Operation::RestoreObject, &["restore"]),
        Method::POST if has("select") => (Operation::SelectObjectContent, &["select"]),
        Method::DELETE if has("uploadId") => (Operation::AbortMultipartUpload, &["uploadId"]),
        Method::DELETE if has("tagging") => (Operation::DeleteObjectTagging, &["tagging"]),
        Method::DELETE => (Operation::DeleteObject, &[]),
        _ => return None,
    };
    only_selector(query, selectors).then_some(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: &str, scope: Scope, query: &str) -> Option<&'static str> {
        let query = Query::parse(Some(query)).unwrap();
        Operation::classify(&method.parse().unwrap(), scope, &query, false).ok().map(Operation::name)
    }

    #[test]
    fn names() {
        use Scope::{Bucket, Object, Service};
        assert_eq!(op("GET", Service, ""), Some("ListBuckets"));
        assert_eq!(op("GET", Bucket, "list-type=2&prefix=a"), Some("ListObjectsV2"));
        assert_eq!(op("GET", Bucket, "prefix=a"), Some("ListObjects"));
        assert_eq!(op("GET", Bucket, "location"), Some("GetBucketLocation"));
        assert_eq!(op("PUT", Bucket, ""), Some("CreateBucket"));
        assert_eq!(op("PUT", Bucket, "logging"), Some("PutBucketLogging"));
        assert_eq!(op("PUT", Bucket, "versioning"), Some("PutBucketVersioning"));
        assert_eq!(op("DELETE", Bucket, "policy"), Some("DeleteBucketPolicy"));
        assert_eq!(op("POST", Bucket, "delete"), Some("DeleteObjects"));
        assert_eq!(op("GET", Bucket, "analytics"), Some("ListBucketAnalyticsConfigurations"));
        assert_eq!(op("GET", Bucket, "analytics&id=a"), Some("GetBucketAnalyticsConfiguration"));
        assert_eq!(op("GET", Object, "x-id=GetObject"), Some("GetObject"));
        assert_eq!(op("GET", Object, "partNumber=2"), Some("GetObject"));
        assert_eq!(op("GET", Object, "uploadId=1"), Some("ListParts"));
        assert_eq!(op("GET", Object, "attributes"), Some("GetObjectAttributes"));
        assert_eq!(op("HEAD", Object, ""), Some("HeadObject"));
        assert_eq!(op("PUT", Object, "partNumber=1&uploadId=x"), Some("UploadPart"));
        assert_eq!(op("PUT", Object, "retention"), Some("PutObjectRetention"));
        assert_eq!(op("POST", Object, "uploads"), Some("CreateMultipartUpload"));
        assert_eq!(op("POST", Object, "uploadId=x"), Some("CompleteMultipartUpload"));
        assert_eq!(op("DELETE", Object, "uploadId=x"), Some("AbortMultipartUpload"));
        assert_eq!(op("DELETE", Object, "versionId=3"), Some("DeleteObject"));
        let copy = Operation::classify(&Method::PUT, Object, &Query::default(), true).unwrap();
        assert_eq!(copy, Operation::CopyObject);
    }

    #[test]
    fn what_s3_does_not_define_is_no_operation() {
        use Scope::{Bucket, Object, Service};
        assert_eq!(op("PUT", Service, ""), None);
        assert_eq!(op("GET", Service, "acl"), None);
        assert_eq!(op("GET", Service, "max-buckets=5&prefix=a"), Some("ListBuckets"));
        assert_eq!(op("PATCH", Object, ""), None);
        assert_eq!(op("POST", Object, ""), None);
        assert_eq!(op("POST", Bucket, ""), None);
        assert_eq!(op("GET", Object, "tagging&acl"), None);
        assert_eq!(op("PUT", Object, "tagging&retention"), None);
        assert_eq!(op("DELETE", Bucket, "versioning"), None);
        assert_eq!(op("PUT", Bucket, "uploads"), None);
        assert_eq!(op("GET", Bucket, "list-type=3"), None);
        assert_eq!(op("HEAD", Bucket, "acl"), None);
    }

    #[test]
    fn every_name_is_unique() {
        let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
