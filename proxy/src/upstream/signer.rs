//! Signs forwarded requests with SigV4 (`aws-sigv4`) for the upstream, the way
//! S3 wants it: no double encoding, no path normalisation, the payload hash
//! given by the caller (the client's own body hash where it signed one, so
//! that the upstream itself verifies the body).

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::CredentialSource;

/// Headers signed toward the upstream besides `x-amz-*` ones: those S3 reads
/// and a client means (never hop-by-hop ones or `user-agent`, which
/// intermediaries rewrite).
const SIGNED: &[&str] = &[
    "host",
    "content-md5",
    "content-type",
    "content-encoding",
    "content-language",
    "content-disposition",
    "cache-control",
    "expires",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// Signs requests for the upstream.
#[derive(Debug)]
pub struct UpstreamSigner {
    region: String,
    credentials: CredentialSource,
}

/// Signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error(transparent)]
    Credentials(#[from] super::credentials::CredentialsError),
    #[error("request cannot be signed: {0}")]
    Signing(String),
    #[error("header {0} has a value that is not visible ASCII and cannot be signed")]
    HeaderValue(String),
}

impl UpstreamSigner {
    #[must_use]
    pub fn new(region: &str, credentials: CredentialSource) -> UpstreamSigner {
        UpstreamSigner { region: region.to_owned(), credentials }
    }

    /// Signs `request` in place (adds `authorization`, `x-amz-date`,
    /// `x-amz-content-sha256` and, with temporary credentials,
    /// `x-amz-security-token`). `payload_hash` is the value for
    /// `x-amz-content-sha256`: a hex SHA-256, `UNSIGNED-PAYLOAD` or
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    pub async fn sign<B>(&self, request: &mut http::Request<B>, payload_hash: &str) -> Result<(), SignError> {
        let creds = self.credentials.get().await?;
        let identity: Identity = creds.into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| SignError::Signing(e.to_string()))?
            .into();

        let mut headers = Vec::new();
        for (name, value) in request.headers() {
            let name = name.as_str();
            if name.starts_with("x-amz-") || SIGNED.contains(&name) {
                let value = value.to_str().map_err(|_| SignError::HeaderValue(name.to_owned()))?;
                headers.push((name, value));
            }
        }
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.into_iter(),
            SignableBody::Precomputed(payload_hash.to_owned()),
        )
        .map_err(|e| SignError::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| SignError::Signing(e.to_string()))?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}
