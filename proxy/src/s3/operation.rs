//! The S3 operation a request is, from its method, address and query, as
//! named in the S3 API reference (recorded in the ledger's `operation`).

/// The operation name of a request.
#[must_use]
pub fn operation(
    method: &str,
    has_bucket: bool,
    has_key: bool,
    query: Option<&str>,
    headers: &http::HeaderMap,
) -> String {
    let params: Vec<&str> =
        query.unwrap_or("").split('&').filter(|p| !p.is_empty()).map(|p| p.split('=').next().unwrap_or(p)).collect();
    let has = |name: &str| params.contains(&name);
    let copy = headers.contains_key("x-amz-copy-source");
    let name = match (method, has_bucket, has_key) {
        ("GET", false, _) => "ListBuckets",
        ("GET", true, false) => bucket_get(&params),
        ("HEAD", true, false) => "HeadBucket",
        ("PUT", true, false) => {
            return bucket_sub(&params).map_or_else(|| "CreateBucket".to_owned(), |s| format!("PutBucket{s}"));
        }
        ("DELETE", true, false) => {
            return bucket_sub(&params).map_or_else(|| "DeleteBucket".to_owned(), |s| format!("DeleteBucket{s}"));
        }
        ("POST", true, false) if has("delete") => "DeleteObjects",
        ("GET", true, true) if has("uploadId") => "ListParts",
        ("GET", true, true) if has("tagging") => "GetObjectTagging",
        ("GET", true, true) if has("acl") => "GetObjectAcl",
        ("GET", true, true) if has("attributes") => "GetObjectAttributes",
        ("GET", true, true) if has("retention") => "GetObjectRetention",
        ("GET", true, true) if has("legal-hold") => "GetObjectLegalHold",
        ("GET", true, true) if has("torrent") => "GetObjectTorrent",
        ("GET", true, true) => "GetObject",
        ("HEAD", true, true) => "HeadObject",
        ("PUT", true, true) if has("partNumber") && has("uploadId") && copy => "UploadPartCopy",
        ("PUT", true, true) if has("partNumber") && has("uploadId") => "UploadPart",
        ("PUT", true, true) if has("tagging") => "PutObjectTagging",
        ("PUT", true, true) if has("acl") => "PutObjectAcl",
        ("PUT", true, true) if has("retention") => "PutObjectRetention",
        ("PUT", true, true) if has("legal-hold") => "PutObjectLegalHold",
        ("PUT", true, true) if copy => "CopyObject",
        ("PUT", true, true) => "PutObject",
        ("POST", true, true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true, true) if has("uploadId") => "CompleteMultipartUpload",
        ("POST", true, true) if has("restore") => "RestoreObject",
        ("POST", true, true) if has("select") => "SelectObjectContent",
        ("DELETE", true, true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true, true) if has("tagging") => "DeleteObjectTagging",
        ("DELETE", true, true) => "DeleteObject",
        _ => "Unknown",
    };
    name.to_owned()
}

fn bucket_get(params: &[&str]) -> &'static str {
    let has = |name: &str| params.contains(&name);
    if params.contains(&"list-type") {
        return "ListObjectsV2";
    }
    if has("uploads") {
        return "ListMultipartUploads";
    }
    if has("versions") {
        return "ListObjectVersions";
    }
    if has("location") {
        return "GetBucketLocation";
    }
    match bucket_sub(params) {
        Some("Acl") => "GetBucketAcl",
        Some("Policy") => "GetBucketPolicy",
        Some("PolicyStatus") => "GetBucketPolicyStatus",
        Some("Logging") => "GetBucketLogging",
        Some("Tagging") => "GetBucketTagging",
        Some("Versioning") => "GetBucketVersioning",
        Some("Encryption") => "GetBucketEncryption",
        Some("Lifecycle") => "GetBucketLifecycleConfiguration",
        Some("Cors") => "GetBucketCors",
        Some("ObjectLockConfiguration") => "GetObjectLockConfiguration",
        Some("PublicAccessBlock") => "GetPublicAccessBlock",
        Some("OwnershipControls") => "GetBucketOwnershipControls",
        Some("NotificationConfiguration") => "GetBucketNotificationConfiguration",
        Some("Website") => "GetBucketWebsite",
        Some("Replication") => "GetBucketReplication",
        Some("RequestPayment") => "GetBucketRequestPayment",
        Some(_) => "GetBucketConfiguration",
        None => "ListObjects",
    }
}

/// The bucket sub-resource in the query, as it appears in operation names.
fn bucket_sub(params: &[&str]) -> Option<&'static str> {
    const SUBS: &[(&str, &str)] = &[
        ("acl", "Acl"),
        ("policyStatus", "PolicyStatus"),
        ("policy", "Policy"),
        ("logging", "Logging"),
        ("tagging", "Tagging"),
        ("versioning", "Versioning"),
        ("encryption", "Encryption"),
        ("lifecycle", "Lifecycle"),
        ("cors", "Cors"),
        ("object-lock", "ObjectLockConfiguration"),
        ("publicAccessBlock", "PublicAccessBlock"),
        ("ownershipControls", "OwnershipControls"),
        ("notification", "NotificationConfiguration"),
        ("website", "Website"),
        ("replication", "Replication"),
        ("requestPayment", "RequestPayment"),
    ];
    SUBS.iter().find(|(param, _)| params.contains(param)).map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: &str, bucket: bool, key: bool, query: &str) -> String {
        operation(method, bucket, key, Some(query), &http::HeaderMap::new())
    }

    #[test]
    fn names() {
        assert_eq!(op("GET", false, false, ""), "ListBuckets");
        assert_eq!(op("GET", true, false, "list-type=2&prefix=a"), "ListObjectsV2");
        assert_eq!(op("GET", true, false, "prefix=a"), "ListObjects");
        assert_eq!(op("GET", true, false, "location"), "GetBucketLocation");
        assert_eq!(op("PUT", true, false, ""), "CreateBucket");
        assert_eq!(op("PUT", true, false, "logging"), "PutBucketLogging");
        assert_eq!(op("DELETE", true, false, "policy"), "DeleteBucketPolicy");
        assert_eq!(op("POST", true, false, "delete"), "DeleteObjects");
        assert_eq!(op("GET", true, true, "x-id=GetObject"), "GetObject");
        assert_eq!(op("GET", true, true, "uploadId=1"), "ListParts");
        assert_eq!(op("HEAD", true, true, ""), "HeadObject");
        assert_eq!(op("PUT", true, true, "partNumber=1&uploadId=x"), "UploadPart");
        assert_eq!(op("POST", true, true, "uploads"), "CreateMultipartUpload");
        assert_eq!(op("POST", true, true, "uploadId=x"), "CompleteMultipartUpload");
        assert_eq!(op("DELETE", true, true, "uploadId=x"), "AbortMultipartUpload");
        let mut copy = http::HeaderMap::new();
        copy.insert("x-amz-copy-source", http::HeaderValue::from_static("/b/k"));
        assert_eq!(operation("PUT", true, true, None, &copy), "CopyObject");
    }
}
