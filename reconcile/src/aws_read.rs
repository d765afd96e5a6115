//! One object read as AWS recorded it, whichever log it came from.

use serde::{Deserialize, Serialize};

/// Which of AWS's records a read comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    /// S3 server access logs (best effort, usually delivered within hours).
    AccessLog,
    /// CloudTrail S3 data events (delivered within about 15 minutes).
    Cloudtrail,
}

impl LogSource {
    pub const ALL: [LogSource; 2] = [LogSource::AccessLog, LogSource::Cloudtrail];

    /// Position in per-source arrays (`[T; 2]`), in [`LogSource::ALL`] order.
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            LogSource::AccessLog => 0,
            LogSource::Cloudtrail => 1,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::AccessLog => "access_log",
            LogSource::Cloudtrail => "cloudtrail",
        }
    }
}

/// An object read (`REST.GET.OBJECT` in an access log, `GetObject` in
/// CloudTrail) with the evidence AWS gives for it. Fields AWS left empty
/// (`-` in an access log, absent in CloudTrail) are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AwsRead {
    pub source: LogSource,
    /// S3's request id (`x-amz-request-id`; CloudTrail's `requestID`).
    pub request_id: String,
    /// When S3 received the request, microseconds since the Unix epoch.
    pub time_micros: u64,
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    /// The requester's ARN (access log: the requester field; CloudTrail:
    /// `userIdentity.arn`), or the canonical user id AWS logged instead.
    pub requester: Option<String>,
    /// CloudTrail's `userIdentity.type` (`IAMUser`, `AssumedRole`, ...).
    pub identity_type: Option<String>,
    /// CloudTrail's `userIdentity.accessKeyId`; access logs do not carry it.
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// HTTP status (access log); CloudTrail has none, see `error_code`.
    pub status: Option<u16>,
    /// S3's error code, e.g. `AccessDenied`; `None` for a success.
    pub error_code: Option<String>,
    /// Response body bytes S3 sent (access log: bytes sent, `-` is 0;
    /// CloudTrail: `additionalEventData.bytesTransferredOut`).
    pub bytes_sent: Option<u64>,
    /// Size of the whole object (access log only).
    pub object_size: Option<u64>,
    /// The proxy's request id, from an `x-egress-req` query parameter in
    /// the access log's Request-URI ([`TAG_PARAM`]). Present only when the
    /// URI carries exactly one.
    pub tag: Option<String>,
}

/// The query parameter the proxy adds to every upstream request, naming its
/// ledger request (`req`). S3 ignores query parameters that begin with `x-`
/// and logs them in the access log's Request-URI.
pub const TAG_PARAM: &str = "x-egress-req";

impl AwsRead {
    /// Whether S3 answered with the object (a 2xx): bytes left AWS. A read
    /// S3 refused or failed is an attempt, not a read.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        match self.status {
            Some(status) => (200..300).contains(&status),
            None => self.error_code.is_none(),
        }
    }
}
