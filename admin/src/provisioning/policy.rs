//! The bucket policies a spec asks for (data, log and, if asked, archive
//! bucket), and their comparison with what AWS holds: by meaning (statement
//! order, a single value or a list of one, `Sid`s and the case of action
//! names do not matter), never by string.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::spec::ProvisioningSpec;

/// The data bucket's policy: the proxy is the only road out.
///
/// Deny statements only, so it grants nothing by itself (the proxy's own
/// IAM policy grants the reads) and Block Public Access has nothing to
/// object to.
#[must_use]
pub fn data_bucket_policy(spec: &ProvisioningSpec) -> Value {
    let bucket = spec.bucket_arn(&spec.data_bucket);
    let objects = format!("{bucket}/*");
    let reads = json!(["s3:GetObject", "s3:GetObjectVersion"]);
    let mut statements = vec![
        json!({
            "Sid": "DenyRequestsWithoutTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket, objects],
            "Condition": { "Bool": { "aws:SecureTransport": "false" } },
        }),
        json!({
            "Sid": "OnlyTheProxyReadsObjects",
            "Effect": "Deny",
            "Principal": "*",
            "Action": reads,
            "Resource": objects,
            "Condition": { "ArnNotEquals": { "aws:PrincipalArn": spec.proxy_principal_arn } },
        }),
    ];
    if !spec.allowed_source_cidrs.is_empty() {
        statements.push(json!({
            "Sid": "ReadsOnlyFromAllowedNetworks",
            "Effect": "Deny",
            "Principal": "*",
            "Action": reads,
            "Resource": objects,
            "Condition": { "NotIpAddress": { "aws:SourceIp": spec.allowed_source_cidrs } },
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The log bucket's policy: S3 log delivery for the data bucket under the
/// prefix, CloudTrail for the trail under `AWSLogs/ACCOUNT/`, and no
/// request without TLS.
#[must_use]
pub fn log_bucket_policy(spec: &ProvisioningSpec) -> Value {
    let bucket = spec.bucket_arn(&spec.log_bucket);
    let account = spec.account_id();
    let trail = spec.trail_arn();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3ServerAccessLogDelivery",
                "Effect": "Allow",
                "Principal": { "Service": "logging.s3.amazonaws.com" },
                "Action": "s3:PutObject",
                "Resource": format!("{bucket}/{}*", spec.log_prefix),
                "Condition": {
                    "ArnLike": { "aws:SourceArn": spec.bucket_arn(&spec.data_bucket) },
                    "StringEquals": { "aws:SourceAccount": account },
                },
            },
            {
                "Sid": "CloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": { "Service": "cloudtrail.amazonaws.com" },
                "Action": "s3:GetBucketAcl",
                "Resource": bucket,
                "Condition": { "StringEquals": { "aws:SourceArn": trail } },
            },
            {
                "Sid": "CloudTrailWrite",
                "Effect": "Allow",
                "Principal": { "Service": "cloudtrail.amazonaws.com" },
                "Action": "s3:PutObject",
                "Resource": format!("{bucket}/AWSLogs/{account}/*"),
                "Condition": {
                    "StringEquals": { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail },
                },
            },
            {
                "Sid": "DenyRequestsWithoutTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket, format!("{bucket}/*")],
                "Condition": { "Bool": { "aws:SecureTransport": "false" } },
            },
        ],
    })
}

/// The archive bucket's policy: the proxy writes each key once and reads
/// back, each object locked in COMPLIANCE mode (its own date or the
/// bucket's default); nobody deletes a version, locks in GOVERNANCE mode
/// (which can be bypassed), or changes the lock or lifecycle configuration;
/// nothing without TLS.
///
/// The grant names the account as principal and the proxy by
/// `aws:PrincipalArn`, as the data bucket's policy does, so that it can be
/// put before the proxy's role exists (S3 refuses a policy naming a
/// principal that does not exist) and survives the role being recreated.
/// The denies back up Object Lock, which alone already refuses to delete or
/// overwrite a locked version: they also refuse delete markers, new
/// versions over a key (a write must carry `If-None-Match`), and changes to
/// the bucket's default retention or lifecycle.
#[must_use]
pub fn archive_bucket_policy(spec: &ProvisioningSpec, archive: &str) -> Value {
    let bucket = spec.bucket_arn(archive);
    let objects = format!("{bucket}/*");
    let account = json!({ "AWS": format!("arn:{}:iam::{}:root", spec.partition(), spec.account_id()) });
    let only_the_proxy = json!({ "ArnEquals": { "aws:PrincipalArn": spec.proxy_principal_arn } });
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyRequestsWithoutTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket, objects],
                "Condition": { "Bool": { "aws:SecureTransport": "false" } },
            },
            {
                "Sid": "TheProxyWritesAndReadsObjects",
                "Effect": "Allow",
                "Principal": account,
                // `s3:PutObjectRetention` too: a put that names its own
                // retention date needs it. In COMPLIANCE mode a date can
                // only be pushed later, by anyone; GOVERNANCE is denied below.
                "Action": [
                    "s3:PutObject",
                    "s3:PutObjectRetention",
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:GetObjectRetention",
                ],
                "Resource": objects,
                "Condition": only_the_proxy,
            },
            {
                "Sid": "TheProxyListsObjects",
                "Effect": "Allow",
                "Principal": account,
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": bucket,
                "Condition": only_the_proxy,
            },
            {
                "Sid": "NothingIsDeleted",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"],
                "Resource": objects,
            },
            {
                // Only COMPLIANCE locks: a GOVERNANCE one can be lifted by
                // whoever may bypass it.
                "Sid": "OnlyComplianceLocks",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:PutObject", "s3:PutObjectRetention"],
                "Resource": objects,
                "Condition": { "StringEquals": { "s3:object-lock-mode": "GOVERNANCE" } },
            },
            {
                "Sid": "TheLockStays",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:PutBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration"],
                "Resource": bucket,
            },
            {
                // S3's documented form (User Guide, "Enforce conditional
                // writes on Amazon S3 buckets"): the ObjectCreationOperation
                // clause keeps the deny off the multipart calls that cannot
                // carry the header; CompleteMultipartUpload still must.
                "Sid": "NoKeyIsWrittenTwice",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "Null": { "s3:if-none-match": "true" },
                    "Bool": { "s3:ObjectCreationOperation": "true" },
                },
            },
        ],
    })
}

/// Whether two policy documents mean the same.
#[must_use]
pub fn same_policy(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

/// A policy in one form per meaning: statements as a sorted list without
/// `Sid`, every value list as a sorted set of strings, action names and
/// condition keys in lower case (IAM compares both case-insensitively).
#[must_use]
pub fn canonical(policy: &Value) -> Value {
    let statements = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().map(canonical_statement).collect(),
        Some(one) => vec![canonical_statement(one)],
        None => Vec::new(),
    };
    let sorted: BTreeSet<String> = statements.iter().map(Value::to_string).collect();
    let statements: Vec<Value> = sorted.into_iter().filter_map(|s| serde_json::from_str(&s).ok()).collect();
    json!({ "Version": policy.get("Version").cloned().unwrap_or(Value::Null), "Statement": statements })
}

fn canonical_statement(statement: &Value) -> Value {
    let Value::Object(fields) = statement else { return statement.clone() };
    let mut out = Map::new();
    for (key, value) in fields {
        let value = match key.as_str() {
            "Sid" => continue,
            "Action" | "NotAction" => lowercase_set(value),
            "Resource" | "NotResource" => string_set(value),
            "Principal" | "NotPrincipal" => match value {
                Value::Object(kinds) => {
                    Value::Object(kinds.iter().map(|(kind, ids)| (kind.clone(), string_set(ids))).collect())
                }
                other => other.clone(),
            },
            "Condition" => match value {
                Value::Object(operators) => Value::Object(
                    operators
                        .iter()
                        .map(|(operator, keys)| {
                            let keys = match keys {
                                Value::Object(keys) => Value::Object(
                                    keys.iter().map(|(k, v)| (k.to_ascii_lowercase(), string_set(v))).collect(),
                                ),
                                other => other.clone(),
                            };
                            (operator.clone(), keys)
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn string_set(value: &Value) -> Value {
    let set: BTreeSet<String> = match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        one => std::iter::once(scalar(one)).collect(),
    };
    Value::Array(set.into_iter().map(Value::String).collect())
}

fn lowercase_set(value: &Value) -> Value {
    let set: BTreeSet<String> = match string_set(value) {
        Value::Array(items) => items.iter().map(|v| scalar(v).to_ascii_lowercase()).collect(),
        _ => BTreeSet::new(),
    };
    Value::Array(set.into_iter().map(Value::String).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ProvisioningSpec {
        let body = json!({
            "data_bucket": "acme-data",
            "log_bucket": "acme-logs",
            "trail_name": "acme-trail",
            "region": "eu-west-1",
            "proxy_principal_arn": "arn:aws:iam::123456789012:role/egress-proxy",
            "archive_bucket": "acme-archive",
            "archive_retention_days": 30,
        });
        ProvisioningSpec::from_json(body.to_string().as_bytes()).expect("valid")
    }

    /// The statements of `policy` with this effect whose actions include `action`.
    fn matching<'a>(policy: &'a Value, effect: &str, action: &str) -> Vec<&'a Value> {
        let actions = |s: &Value| match &s["Action"] {
            Value::Array(list) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Value::String(one) => vec![one.clone()],
            _ => Vec::new(),
        };
        policy["Statement"]
            .as_array()
            .map(|list| {
                list.iter().filter(|s| s["Effect"] == effect && actions(s).contains(&action.to_owned())).collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_archive_policy_lets_the_proxy_write_once_and_nobody_delete() {
        let policy = archive_bucket_policy(&spec(), "acme-archive");
        for action in [
            "s3:PutObject",
            "s3:PutObjectRetention",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:GetObjectRetention",
            "s3:ListBucket",
            "s3:ListBucketVersions",
        ] {
            let [allow] = matching(&policy, "Allow", action)[..] else { panic!("one allow of {action}: {policy}") };
            assert_eq!(allow["Principal"]["AWS"], "arn:aws:iam::123456789012:root", "{action}");
            assert_eq!(
                allow["Condition"]["ArnEquals"]["aws:PrincipalArn"], "arn:aws:iam::123456789012:role/egress-proxy",
                "{action}"
            );
            let resource =
                if action.starts_with("s3:List") { "arn:aws:s3:::acme-archive" } else { "arn:aws:s3:::acme-archive/*" };
            assert_eq!(allow["Resource"], resource, "{action}");
        }
        for action in [
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:BypassGovernanceRetention",
            "s3:PutBucketObjectLockConfiguration",
            "s3:PutLifecycleConfiguration",
        ] {
            let [deny] = matching(&policy, "Deny", action)[..] else { panic!("one deny of {action}: {policy}") };
            assert_eq!((&deny["Principal"], deny.get("Condition")), (&json!("*"), None), "{action} unconditionally");
        }
        let [governance, overwrite] = matching(&policy, "Deny", "s3:PutObject")[..] else {
            panic!("two denies of puts: {policy}")
        };
        assert_eq!(governance["Condition"], json!({"StringEquals": {"s3:object-lock-mode": "GOVERNANCE"}}));
        assert_eq!(matching(&policy, "Deny", "s3:PutObjectRetention"), [governance]);
        assert_eq!(overwrite["Principal"], "*");
        assert_eq!(overwrite["Resource"], "arn:aws:s3:::acme-archive/*");
        assert_eq!(
            overwrite["Condition"],
            json!({"Null": {"s3:if-none-match": "true"}, "Bool": {"s3:ObjectCreationOperation": "true"}})
        );
        let [tls] = matching(&policy, "Deny", "s3:*")[..] else { panic!("one deny without TLS: {policy}") };
        assert_eq!(tls["Condition"]["Bool"]["aws:SecureTransport"], "false");
        assert_eq!(tls["Resource"], json!(["arn:aws:s3:::acme-archive", "arn:aws:s3:::acme-archive/*"]));
        // Nothing else grants anything.
        let allows = policy["Statement"].as_array().map_or(0, |l| l.iter().filter(|s| s["Effect"] == "Allow").count());
        assert_eq!(allows, 2, "{policy}");
    }

    #[test]
    fn the_archive_policy_compares_by_meaning() {
        let policy = archive_bucket_policy(&spec(), "acme-archive");
        let mut rewritten = policy.clone();
        if let Some(list) = rewritten["Statement"].as_array_mut() {
            list.reverse();
            for s in list.iter_mut() {
                s.as_object_mut().map(|m| m.remove("Sid"));
            }
        }
        assert!(same_policy(&policy, &rewritten));
        // Dropping the If-None-Match condition makes the deny refuse every
        // write: a different policy, not the same one.
        let mut strict = policy.clone();
        if let Some(list) = strict["Statement"].as_array_mut() {
            for s in list.iter_mut().filter(|s| s["Sid"] == "NoKeyIsWrittenTwice") {
                s.as_object_mut().map(|m| m.remove("Condition"));
            }
        }
        assert!(!same_policy(&policy, &strict));
    }

    #[test]
    fn order_single_values_sids_and_case_do_not_matter() {
        let a = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "A", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
             "Condition": {"Bool": {"aws:SecureTransport": false}}},
            {"Sid": "B", "Effect": "Allow", "Principal": {"Service": "x.amazonaws.com"}, "Action": ["s3:PutObject", "s3:GetObject"],
             "Resource": ["arn:aws:s3:::b/*"]},
        ]});
        let b = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": ["x.amazonaws.com"]}, "Action": ["s3:getobject", "s3:PutObject"],
             "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "Other", "Effect": "Deny", "Principal": "*", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*",
             "Condition": {"Bool": {"aws:securetransport": ["false"]}}},
        ]});
        assert!(same_policy(&a, &b));
    }

    #[test]
    fn a_changed_value_or_a_missing_statement_is_drift() {
        let a = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        ]});
        let fewer = json!({"Version": "2012-10-17", "Statement":
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}});
        let changed = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::c/*"},
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        ]});
        assert!(!same_policy(&a, &fewer));
        assert!(!same_policy(&a, &changed));
        assert!(same_policy(&fewer, &fewer));
    }
}
