//! The one error type of request authentication and aws-chunked decoding.
//!
//! Every variant maps to the S3 error code and HTTP status that AWS S3 answers
//! in the same situation ([`AuthError::code`], [`AuthError::status`]), so the
//! edge of the proxy turns it into an S3 XML error without looking at the
//! message. Messages say what was wrong and what the client can do; they never
//! contain a secret, a signing key or a signature computed by us.

use http::StatusCode;

use crate::error_code::ErrorCode;

/// Why a request was not authenticated, or why its aws-chunked body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Anonymous request, expired or not-yet-valid presigned URL, or an
    /// authentication scheme we do not support (S3 `AccessDenied`, 403).
    #[error("access denied: {reason}")]
    AccessDenied { access_key_id: Option<String>, reason: String },

    /// The access key id is not one we issued, or it was revoked.
    #[error("the access key id {access_key_id:?} does not exist or was revoked; ask for a key issued by this proxy")]
    InvalidAccessKeyId { access_key_id: String },

    /// The signature (request, chunk or trailer) is not the one we computed.
    #[error("the signature does not match: {reason}")]
    SignatureDoesNotMatch { access_key_id: Option<String>, reason: String },

    /// The request time is more than 15 minutes away from ours.
    #[error(
        "the request time {request_time} differs from the server time {server_time} by more than 15 minutes; \
         check the client's clock"
    )]
    RequestTimeTooSkewed { access_key_id: String, request_time: String, server_time: String },

    /// The `Authorization` header cannot be parsed or its credential scope is wrong.
    #[error("the authorization header is malformed: {reason}")]
    AuthorizationHeaderMalformed { access_key_id: Option<String>, reason: String },

    /// The presigned-URL query parameters cannot be parsed or are out of range.
    #[error("the authorization query parameters are invalid: {reason}")]
    AuthorizationQueryParametersError { access_key_id: Option<String>, reason: String },

    /// A required header is missing or an authentication-related value is
    /// malformed (S3 `InvalidRequest`, 400).
    #[error("invalid request: {reason}")]
    InvalidRequest { access_key_id: Option<String>, reason: String },

    /// An argument has a value S3 does not accept, e.g. an unknown
    /// `x-amz-content-sha256` (S3 `InvalidArgument`, 400).
    #[error("invalid argument: {reason}")]
    InvalidArgument { access_key_id: Option<String>, reason: String },

    /// The aws-chunked body ended early or does not add up to the declared length.
    #[error("incomplete body: {reason}")]
    IncompleteBody { reason: String },

    /// The aws-chunked framing is broken or exceeds our limits.
    #[error("malformed aws-chunked body: {reason}")]
    MalformedChunkedBody { reason: String },

    /// A checksum trailer does not match the decoded payload (S3 `BadDigest`).
    #[error("the {algorithm} checksum sent by the client does not match the body received")]
    ChecksumMismatch { algorithm: &'static str },
}

impl AuthError {
    /// The S3 error code for the XML error body.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::AccessDenied { .. } => ErrorCode::AccessDenied,
            AuthError::InvalidAccessKeyId { .. } => ErrorCode::InvalidAccessKeyId,
            AuthError::SignatureDoesNotMatch { .. } => ErrorCode::SignatureDoesNotMatch,
            AuthError::RequestTimeTooSkewed { .. } => ErrorCode::RequestTimeTooSkewed,
            AuthError::AuthorizationHeaderMalformed { .. } => ErrorCode::AuthorizationHeaderMalformed,
            AuthError::AuthorizationQueryParametersError { .. } => ErrorCode::AuthorizationQueryParametersError,
            // S3 has no dedicated code for broken aws-chunked framing; it answers InvalidRequest.
            AuthError::InvalidRequest { .. } | AuthError::MalformedChunkedBody { .. } => ErrorCode::InvalidRequest,
            AuthError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            AuthError::IncompleteBody { .. } => ErrorCode::IncompleteBody,
            AuthError::ChecksumMismatch { .. } => ErrorCode::BadDigest,
        }
    }

    /// The HTTP status S3 answers with this code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    /// The access key id the client claimed, when we got far enough to read it
    /// (for the ledger record of a denied request). Not proof of identity.
    #[must_use]
    pub fn access_key_id(&self) -> Option<&str> {
        match self {
            AuthError::InvalidAccessKeyId { access_key_id } | AuthError::RequestTimeTooSkewed { access_key_id, .. } => {
                Some(access_key_id)
            }
            AuthError::AccessDenied { access_key_id, .. }
            | AuthError::SignatureDoesNotMatch { access_key_id, .. }
            | AuthError::AuthorizationHeaderMalformed { access_key_id, .. }
            | AuthError::AuthorizationQueryParametersError { access_key_id, .. }
            | AuthError::InvalidRequest { access_key_id, .. }
            | AuthError::InvalidArgument { access_key_id, .. } => access_key_id.as_deref(),
            AuthError::IncompleteBody { .. }
            | AuthError::MalformedChunkedBody { .. }
            | AuthError::ChecksumMismatch { .. } => None,
        }
    }

    /// Attaches the claimed access key id to an error raised before it was known.
    #[must_use]
    pub(crate) fn with_access_key_id(mut self, id: &str) -> AuthError {
        match &mut self {
            AuthError::AccessDenied { access_key_id, .. }
            | AuthError::SignatureDoesNotMatch { access_key_id, .. }
            | AuthError::AuthorizationHeaderMalformed { access_key_id, .. }
            | AuthError::AuthorizationQueryParametersError { access_key_id, .. }
            | AuthError::InvalidRequest { access_key_id, .. }
            | AuthError::InvalidArgument { access_key_id, .. } => {
                if access_key_id.is_none() {
                    *access_key_id = Some(id.to_owned());
                }
            }
            AuthError::InvalidAccessKeyId { .. }
            | AuthError::RequestTimeTooSkewed { .. }
            | AuthError::IncompleteBody { .. }
            | AuthError::MalformedChunkedBody { .. }
            | AuthError::ChecksumMismatch { .. } => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_s3() {
        let denied = AuthError::AccessDenied { access_key_id: None, reason: "anonymous".into() };
        assert_eq!((denied.code().as_str(), denied.status()), ("AccessDenied", StatusCode::FORBIDDEN));
        let chunk = AuthError::SignatureDoesNotMatch { access_key_id: None, reason: "chunk 3".into() };
        assert_eq!((chunk.code().as_str(), chunk.status()), ("SignatureDoesNotMatch", StatusCode::FORBIDDEN));
        let short = AuthError::IncompleteBody { reason: "no final chunk".into() };
        assert_eq!((short.code().as_str(), short.status()), ("IncompleteBody", StatusCode::BAD_REQUEST));
        let crc = AuthError::ChecksumMismatch { algorithm: "CRC32" };
        assert_eq!((crc.code().as_str(), crc.status()), ("BadDigest", StatusCode::BAD_REQUEST));
    }

    #[test]
    fn access_key_id_is_kept_once_known() {
        let e = AuthError::InvalidRequest { access_key_id: None, reason: "x".into() }.with_access_key_id("AK");
        assert_eq!(e.access_key_id(), Some("AK"));
        let e = e.with_access_key_id("OTHER");
        assert_eq!(e.access_key_id(), Some("AK"));
        assert_eq!(AuthError::IncompleteBody { reason: String::new() }.access_key_id(), None);
    }
}
