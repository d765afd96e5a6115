//! SigV4 for the tests' own clients, by the AWS SDK's signer (`aws-sigv4`)
//! with the settings S3 wants: the path signed exactly as given (encoded
//! once, never normalised) and the payload hash in `x-amz-content-sha256`.
//! Region `us-east-1`, service `s3`, the time now.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// An access key and its secret.
#[derive(Clone)]
pub struct Signer {
    identity: Identity,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    #[must_use]
    pub fn new(access_key: &str, secret: &str) -> Signer {
        Signer { identity: Credentials::new(access_key, secret, None, None, "egress-e2e").into() }
    }

    fn instructions(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: SignableBody<'_>,
        presign_for: Option<Duration>,
    ) -> anyhow::Result<aws_sigv4::http_request::SigningInstructions> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        match presign_for {
            Some(expires) => {
                settings.signature_location = SignatureLocation::QueryParams;
                settings.expires_in = Some(expires);
            }
            None => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
        }
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let signable = SignableRequest::new(method, url, headers.iter().copied(), body)?;
        Ok(sign(signable, &params)?.into_parts().0)
    }

    /// The headers that sign `method url` carrying `headers` (which are
    /// signed too, `host` among them) and `body`.
    pub fn headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: SignableBody<'_>,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let instructions = self.instructions(method, url, headers, body, None)?;
        Ok(instructions.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
    }

    /// Signs `request` in place, over all its headers, for `url` (its URI
    /// as the client writes it) and the payload hash `payload`.
    pub fn sign<B>(&self, request: &mut http::Request<B>, url: &str, payload: &str) -> anyhow::Result<()> {
        let headers: Vec<(&str, &str)> =
            request.headers().iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))).collect();
        let instructions = self.instructions(
            request.method().as_str(),
            url,
            &headers,
            SignableBody::Precomputed(payload.to_owned()),
            None,
        )?;
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    /// A presigned URL's path and query for `method url`, valid for
    /// `expires`, signing only `host`.
    pub fn presign(&self, method: &str, url: &str, host: &str, expires: Duration) -> anyhow::Result<String> {
        let instructions =
            self.instructions(method, url, &[("host", host)], SignableBody::UnsignedPayload, Some(expires))?;
        let mut request = http::Request::builder().method(method).uri(url).body(())?;
        instructions.apply_to_request_http1x(&mut request);
        request.uri().path_and_query().map(ToString::to_string).ok_or_else(|| anyhow::anyhow!("no path in {url}"))
    }
}
