//! The declarative provisioning spec: what one `PUT /v1/provisioning/{name}`
//! asks for, read field by field so that every refusal names its field.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where S3 server access logs go under the log bucket unless told otherwise.
pub const DEFAULT_LOG_PREFIX: &str = "s3-access/";

/// What the upstream AWS side should look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProvisioningSpec {
    /// The bucket the proxy serves; made private, encrypted, logged.
    #[schema(example = "acme-egress-data")]
    pub data_bucket: String,
    /// Receives the data bucket's server access logs and the trail's files.
    #[schema(example = "acme-egress-logs")]
    pub log_bucket: String,
    /// Key prefix of the server access logs in the log bucket.
    #[schema(example = "s3-access/")]
    pub log_prefix: String,
    /// The CloudTrail trail that records the data bucket's read events.
    #[schema(example = "egress-data-reads")]
    pub trail_name: String,
    /// Region of both buckets and the trail.
    #[schema(example = "eu-west-1")]
    pub region: String,
    /// The IAM user or role the proxy signs upstream requests as: the only
    /// principal the data bucket lets read objects.
    #[schema(example = "arn:aws:iam::123456789012:role/egress-proxy")]
    pub proxy_principal_arn: String,
    /// If given, the proxy may read only from these networks.
    #[serde(default)]
    pub allowed_source_cidrs: Vec<String>,
    /// Object Lock retention on the log bucket. Always refused: S3 does not
    /// deliver server access logs into a bucket with Object Lock. Use
    /// `archive_bucket` with `archive_retention_days` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Default encryption of the data bucket (and of the archive bucket) with
    /// this KMS key instead of SSE-S3 (key id, key ARN or alias ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// A bucket with S3 Object Lock (COMPLIANCE mode) that the proxy ships
    /// its ledger to: it writes each key once and nobody, the account root
    /// included, deletes or rewrites a version before its retention ends.
    /// Must differ from `data_bucket` and `log_bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "acme-egress-archive")]
    pub archive_bucket: Option<String>,
    /// Default retention of every object version put in `archive_bucket`,
    /// in days (1 to 36500); required with `archive_bucket`, refused
    /// without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 2557, minimum = 1, maximum = 36500)]
    pub archive_retention_days: Option<u32>,
}

/// The longest default retention S3 Object Lock takes, in days (100 years).
pub const MAX_ARCHIVE_RETENTION_DAYS: u32 = 36_500;

/// A spec field that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SpecError {
    pub field: String,
    pub reason: String,
}

impl SpecError {
    fn new(field: &str, reason: impl Into<String>) -> SpecError {
        SpecError { field: field.to_owned(), reason: reason.into() }
    }
}

const FIELDS: [&str; 11] = [
    "data_bucket",
    "log_bucket",
    "log_prefix",
    "trail_name",
    "region",
    "proxy_principal_arn",
    "allowed_source_cidrs",
    "retention_days",
    "kms_key_id",
    "archive_bucket",
    "archive_retention_days",
];

impl ProvisioningSpec {
    /// Reads and validates a spec from a JSON request body.
    pub fn from_json(body: &[u8]) -> Result<ProvisioningSpec, SpecError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| SpecError::new("body", format!("not valid JSON ({e}); send a JSON object")))?;
        let Value::Object(mut map) = value else {
            return Err(SpecError::new("body", "must be a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(SpecError::new(unknown, format!("unknown field; the fields are {}", FIELDS.join(", "))));
        }
        let spec = ProvisioningSpec {
            data_bucket: required_string(&mut map, "data_bucket")?,
            log_bucket: required_string(&mut map, "log_bucket")?,
            log_prefix: optional_string(&mut map, "log_prefix")?.unwrap_or_else(|| DEFAULT_LOG_PREFIX.to_owned()),
            trail_name: required_string(&mut map, "trail_name")?,
            region: required_string(&mut map, "region")?,
            proxy_principal_arn: required_string(&mut map, "proxy_principal_arn")?,
            allowed_source_cidrs: string_list(&mut map, "allowed_source_cidrs")?,
            retention_days: optional_days(&mut map, "retention_days")?,
            kms_key_id: optional_string(&mut map, "kms_key_id")?,
            archive_bucket: optional_string(&mut map, "archive_bucket")?,
            archive_retention_days: optional_days(&mut map, "archive_retention_days")?,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every field against the rules AWS applies, so that a bad spec
    /// is refused before any AWS call.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_bucket_name("data_bucket", &self.data_bucket)?;
        check_bucket_name("log_bucket", &self.log_bucket)?;
        if self.log_bucket == self.data_bucket {
            return Err(SpecError::new(
                "log_bucket",
                "must differ from data_bucket: a bucket that logs into itself logs its own log writes forever",
            ));
        }
        check_log_prefix(&self.log_prefix)?;
        check_trail_name(&self.trail_name)?;
        check_region(&self.region)?;
        principal_account(&self.proxy_principal_arn)?;
        for (i, cidr) in self.allowed_source_cidrs.iter().enumerate() {
            check_cidr(cidr).map_err(|why| SpecError::new(&format!("allowed_source_cidrs[{i}]"), why))?;
        }
        if self.retention_days.is_some() {
            return Err(SpecError::new(
                "retention_days",
                "not supported: S3 refuses a bucket with Object Lock as the destination of server access logs, \
                 and the log bucket is that destination; leave retention_days out, and for an archive nobody can \
                 rewrite give archive_bucket (a separate bucket, made with Object Lock) with archive_retention_days",
            ));
        }
        self.check_archive()?;
        if let Some(key) = &self.kms_key_id
            && (key.is_empty() || key.len() > 2048 || key.chars().any(char::is_whitespace))
        {
            return Err(SpecError::new("kms_key_id", "must be a KMS key id, key ARN or alias ARN"));
        }
        Ok(())
    }

    fn check_archive(&self) -> Result<(), SpecError> {
        let Some(archive) = &self.archive_bucket else {
            return match self.archive_retention_days {
                Some(_) => Err(SpecError::new(
                    "archive_retention_days",
                    "only with archive_bucket: it is the default retention of that bucket; give archive_bucket too, \
                     or leave archive_retention_days out",
                )),
                None => Ok(()),
            };
        };
        check_bucket_name("archive_bucket", archive)?;
        if archive == &self.data_bucket || archive == &self.log_bucket {
            return Err(SpecError::new(
                "archive_bucket",
                "must differ from data_bucket and log_bucket: the archive bucket has Object Lock, which S3 \
                 refuses on a bucket that receives access logs, and nothing in it can ever be deleted",
            ));
        }
        match self.archive_retention_days {
            None => Err(SpecError::new(
                "archive_retention_days",
                "required with archive_bucket: how many days each archived object version stays locked \
                 (COMPLIANCE mode: nobody, the account root included, can shorten it)",
            )),
            Some(days) if days > MAX_ARCHIVE_RETENTION_DAYS => Err(SpecError::new(
                "archive_retention_days",
                format!("{days} is more than S3 Object Lock takes: at most {MAX_ARCHIVE_RETENTION_DAYS} days"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The partition of the proxy's ARN (`aws`, `aws-cn`, `aws-us-gov`):
    /// every ARN the policies name lives in it.
    #[must_use]
    pub fn partition(&self) -> &str {
        self.proxy_principal_arn.split(':').nth(1).unwrap_or("aws")
    }

    /// The account that owns the buckets and the trail, taken from
    /// `proxy_principal_arn` (the proxy's identity lives in that account).
    #[must_use]
    pub fn account_id(&self) -> &str {
        self.proxy_principal_arn.split(':').nth(4).unwrap_or_default()
    }

    #[must_use]
    pub fn bucket_arn(&self, bucket: &str) -> String {
        format!("arn:{}:s3:::{bucket}", self.partition())
    }

    #[must_use]
    pub fn trail_arn(&self) -> String {
        format!("arn:{}:cloudtrail:{}:{}:trail/{}", self.partition(), self.region, self.account_id(), self.trail_name)
    }
}

/// A provisioning name (the `{name}` of the route): the key the spec is
/// stored under.
pub fn check_name(name: &str) -> Result<(), SpecError> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(SpecError::new("name", "1 to 64 characters of a-z, 0-9, '-' and '_'")) }
}

fn required_string(map: &mut Map<String, Value>, field: &str) -> Result<String, SpecError> {
    optional_string(map, field)?.ok_or_else(|| SpecError::new(field, "required"))
}

fn optional_string(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>, SpecError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SpecError::new(field, "must be a string")),
    }
}

fn string_list(map: &mut Map<String, Value>, field: &str) -> Result<Vec<String>, SpecError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                _ => Err(SpecError::new(&format!("{field}[{i}]"), "must be a string")),
            })
            .collect(),
        Some(_) => Err(SpecError::new(field, "must be a list of strings")),
    }
}

fn optional_days(map: &mut Map<String, Value>, field: &str) -> Result<Option<u32>, SpecError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64().and_then(|d| u32::try_from(d).ok()) {
            Some(days) if days > 0 => Ok(Some(days)),
            _ => Err(SpecError::new(field, "must be a whole number of days, at least 1")),
        },
        Some(_) => Err(SpecError::new(field, "must be a number of days")),
    }
}

/// S3's naming rules for general purpose buckets.
fn check_bucket_name(field: &str, name: &str) -> Result<(), SpecError> {
    let bad = |why: &str| Err(SpecError::new(field, format!("{name:?} is not a valid S3 bucket name: {why}")));
    if !(3..=63).contains(&name.len()) {
        return bad("it must be 3 to 63 characters long");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return bad("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad("it must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return bad("it must not contain two adjacent periods");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it must not look like an IP address");
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return bad(&format!("the prefix {prefix:?} is reserved"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return bad(&format!("the suffix {suffix:?} is reserved"));
        }
    }
    Ok(())
}

fn check_log_prefix(prefix: &str) -> Result<(), SpecError> {
    let why = if prefix.is_empty() {
        "must not be empty (the default is \"s3-access/\")"
    } else if prefix.len() > 512 {
        "must be at most 512 characters"
    } else if prefix.starts_with('/') {
        "must not start with '/'"
    } else if prefix.starts_with("AWSLogs/") {
        "must not start with \"AWSLogs/\", where CloudTrail writes"
    } else if prefix.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(SpecError::new("log_prefix", why))
}

/// CloudTrail's naming rules for trails.
fn check_trail_name(name: &str) -> Result<(), SpecError> {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let punct = |c: char| matches!(c, '.' | '_' | '-');
    let ok = (3..=128).contains(&name.len())
        && name.chars().all(|c| alnum(c) || punct(c))
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && !name.as_bytes().windows(2).any(|w| punct(char::from(w[0])) && punct(char::from(w[1])));
    if ok {
        Ok(())
    } else {
        Err(SpecError::new(
            "trail_name",
            "3 to 128 letters, digits, '.', '_' and '-', beginning and ending with a letter or digit, \
             without two of '.', '_', '-' next to each other",
        ))
    }
}

fn check_region(region: &str) -> Result<(), SpecError> {
    // `us-east-1`, `ap-southeast-4`, `us-gov-west-1`, `cn-north-1`.
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if ok {
        Ok(())
    } else {
        Err(SpecError::new("region", format!("{region:?} is not an AWS region name like eu-west-1")))
    }
}

/// The account of an IAM user or role ARN
/// (`arn:PARTITION:iam::ACCOUNT:user/NAME` or `...:role/PATH/NAME`).
fn principal_account(arn: &str) -> Result<&str, SpecError> {
    let bad = || {
        Err(SpecError::new(
            "proxy_principal_arn",
            format!(
                "{arn:?} is not an IAM user or role ARN like arn:aws:iam::123456789012:role/egress-proxy \
                 (for an assumed role, give the role's ARN, not the session's)"
            ),
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return bad();
    };
    let resource_ok = resource
        .split_once('/')
        .is_some_and(|(kind, rest)| matches!(kind, "user" | "role") && !rest.is_empty() && !rest.ends_with('/'));
    let ok = scheme == "arn"
        && matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource_ok
        && !resource.contains(['*', '?', ' ']);
    if ok { Ok(account) } else { bad() }
}

fn check_cidr(cidr: &str) -> Result<(), String> {
    let bad = || format!("{cidr:?} is not a CIDR block like 203.0.113.0/24 or 2001:db8::/32");
    let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(over: &[(&str, Value)]) -> Vec<u8> {
        let mut spec = serde_json::json!({
            "data_bucket": "acme-data",
            "log_bucket": "acme-logs",
            "trail_name": "acme-trail",
            "region": "eu-west-1",
            "proxy_principal_arn": "arn:aws:iam::123456789012:role/egress-proxy",
        });
        for (k, v) in over {
            if v.is_null() {
                spec.as_object_mut().map(|m| m.remove(*k));
            } else {
                spec[*k] = v.clone();
            }
        }
        serde_json::to_vec(&spec).unwrap_or_default()
    }

    fn field_of(over: &[(&str, Value)]) -> String {
        ProvisioningSpec::from_json(&body(over)).err().map(|e| e.field).unwrap_or_default()
    }

    #[test]
    fn a_minimal_spec_gets_the_default_prefix() {
        let spec = ProvisioningSpec::from_json(&body(&[])).expect("valid");
        assert_eq!(spec.log_prefix, "s3-access/");
        assert_eq!(spec.account_id(), "123456789012");
        assert_eq!(spec.trail_arn(), "arn:aws:cloudtrail:eu-west-1:123456789012:trail/acme-trail");
    }

    #[test]
    fn each_refusal_names_its_field() {
        assert_eq!(field_of(&[("data_bucket", Value::Null)]), "data_bucket");
        assert_eq!(field_of(&[("data_bucket", "Bad_Bucket".into())]), "data_bucket");
        assert_eq!(field_of(&[("log_bucket", "a..b".into())]), "log_bucket");
        assert_eq!(field_of(&[("log_bucket", "192.168.1.1".into())]), "log_bucket");
        assert_eq!(field_of(&[("log_bucket", "acme-data".into())]), "log_bucket");
        assert_eq!(field_of(&[("trail_name", "a--b".into())]), "trail_name");
        assert_eq!(field_of(&[("region", "Europe".into())]), "region");
        assert_eq!(field_of(&[("proxy_principal_arn", "arn:aws:iam::12345:role/x".into())]), "proxy_principal_arn");
        assert_eq!(
            field_of(&[("proxy_principal_arn", "arn:aws:sts::123456789012:assumed-role/r/s".into())]),
            "proxy_principal_arn"
        );
        assert_eq!(
            field_of(&[("allowed_source_cidrs", serde_json::json!(["10.0.0.0/8", "10.0.0.0/33"]))]),
            "allowed_source_cidrs[1]"
        );
        assert_eq!(field_of(&[("surprise", 1.into())]), "surprise");
        assert_eq!(field_of(&[("retention_days", 30.into())]), "retention_days");
        assert_eq!(field_of(&[("log_prefix", "AWSLogs/x/".into())]), "log_prefix");
    }

    #[test]
    fn archive_refusals_name_their_field() {
        let days = ("archive_retention_days", Value::from(30));
        assert_eq!(field_of(std::slice::from_ref(&days)), "archive_retention_days");
        assert_eq!(field_of(&[("archive_bucket", "acme-archive".into())]), "archive_retention_days");
        assert_eq!(field_of(&[("archive_bucket", "Acme_Archive".into()), days.clone()]), "archive_bucket");
        assert_eq!(field_of(&[("archive_bucket", "acme-data".into()), days.clone()]), "archive_bucket");
        assert_eq!(field_of(&[("archive_bucket", "acme-logs".into()), days]), "archive_bucket");
        assert_eq!(field_of(&[("archive_bucket", 7.into()), ("archive_retention_days", 30.into())]), "archive_bucket");
        for bad in [Value::from(0), Value::from(36_501), Value::from(-1), Value::from(1.5), Value::from("30")] {
            assert_eq!(
                field_of(&[("archive_bucket", "acme-archive".into()), ("archive_retention_days", bad.clone())]),
                "archive_retention_days",
                "{bad}"
            );
        }
        for good in [1, 36_500] {
            let spec = ProvisioningSpec::from_json(&body(&[
                ("archive_bucket", "acme-archive".into()),
                ("archive_retention_days", good.into()),
            ]));
            assert_eq!(spec.ok().and_then(|s| s.archive_retention_days), Some(good));
        }
    }

    #[test]
    fn a_stored_spec_without_the_archive_fields_still_reads() {
        // Specs stored before the archive fields existed.
        let old = body(&[("log_prefix", "s3-access/".into())]);
        let spec: ProvisioningSpec = serde_json::from_slice(&old).expect("reads");
        assert_eq!((spec.archive_bucket, spec.archive_retention_days), (None, None));
    }

    #[test]
    fn an_archive_bucket_with_its_retention_is_accepted() {
        let spec = ProvisioningSpec::from_json(&body(&[
            ("archive_bucket", "acme-archive".into()),
            ("archive_retention_days", 365.into()),
        ]))
        .expect("valid");
        assert_eq!(serde_json::to_value(&spec).unwrap_or_default()["archive_bucket"], "acme-archive");
    }

    #[test]
    fn retention_days_is_refused_pointing_at_the_archive_bucket() {
        let err = ProvisioningSpec::from_json(&body(&[("retention_days", 30.into())])).err();
        let err = err.expect("refused");
        assert_eq!(err.field, "retention_days");
        assert!(err.reason.contains("archive_bucket") && err.reason.contains("archive_retention_days"), "{err}");
    }

    #[test]
    fn good_values_pass() {
        let spec = ProvisioningSpec::from_json(&body(&[
            ("allowed_source_cidrs", serde_json::json!(["203.0.113.0/24", "2001:db8::/32"])),
            ("proxy_principal_arn", "arn:aws-us-gov:iam::123456789012:role/path/egress".into()),
            ("region", "us-gov-west-1".into()),
            ("data_bucket", "my.data-bucket.1".into()),
        ]))
        .expect("valid");
        assert_eq!(spec.partition(), "aws-us-gov");
        assert_eq!(spec.bucket_arn("b"), "arn:aws-us-gov:s3:::b");
    }
}
