//! The S3 error codes the proxy itself answers (a leaf: authentication,
//! authorization and the S3 model all speak it), each with the HTTP status S3
//! pairs it with (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>).
//! A code and its status are one value, so no answer can pair them wrongly.
//!
//! `BadGateway` and `GatewayTimeout` are not S3's: they are what a gateway
//! answers when the server behind it failed, and SDKs retry both.

use http::StatusCode;

macro_rules! error_codes {
    ($($code:ident => $status:ident,)+) => {
        /// An S3 error code the proxy answers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($code,)+
        }

        impl ErrorCode {
            /// Every code, for tests and documentation.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$code,)+];

            /// The code as S3 spells it in `<Code>`.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => stringify!($code),)+
                }
            }

            /// The HTTP status S3 answers with this code.
            #[must_use]
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$code => StatusCode::$status,)+
                }
            }
        }
    };
}

error_codes! {
    AccessDenied => FORBIDDEN,
    AuthorizationHeaderMalformed => BAD_REQUEST,
    AuthorizationQueryParametersError => BAD_REQUEST,
    BadDigest => BAD_REQUEST,
    BadGateway => BAD_GATEWAY,
    GatewayTimeout => GATEWAY_TIMEOUT,
    IncompleteBody => BAD_REQUEST,
    InternalError => INTERNAL_SERVER_ERROR,
    InvalidAccessKeyId => FORBIDDEN,
    InvalidArgument => BAD_REQUEST,
    InvalidBucketName => BAD_REQUEST,
    InvalidRequest => BAD_REQUEST,
    InvalidURI => BAD_REQUEST,
    KeyTooLongError => BAD_REQUEST,
    NotImplemented => NOT_IMPLEMENTED,
    RequestTimeTooSkewed => FORBIDDEN,
    RequestTimeout => BAD_REQUEST,
    ServiceUnavailable => SERVICE_UNAVAILABLE,
    SignatureDoesNotMatch => FORBIDDEN,
    SlowDown => SERVICE_UNAVAILABLE,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tests compare a code with its spelling; the proxy itself compares codes.
#[cfg(test)]
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelled_as_s3_spells_them_and_carry_an_error_status() {
        assert_eq!(ErrorCode::KeyTooLongError.as_str(), "KeyTooLongError");
        assert_eq!(ErrorCode::InvalidURI.to_string(), "InvalidURI");
        assert_eq!(ErrorCode::SlowDown.status(), StatusCode::SERVICE_UNAVAILABLE);
        for code in ErrorCode::ALL {
            assert!(code.status().is_client_error() || code.status().is_server_error(), "{code}");
            assert!(code.as_str().chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
        }
    }
}
