//! Signs forwarded requests with SigV4 for the upstream, the way S3 wants
//! it: the path as it is (already encoded once, never normalised), the
//! query canonicalised as every S3 server does, and the payload hash given
//! by the caller (the client's own body hash where it signed one, so that
//! the upstream itself verifies the body).
//!
//! The canonical request, string to sign and signature come from the SigV4
//! core ([`crate::sigv4`]), the same code that recomputes clients'
//! signatures to verify them; the signing key, which takes four HMACs to
//! derive, is kept for the day. A test checks the result against the AWS
//! SDK's own signer (`aws-sigv4`), which did this job before at twice the
//! cost.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use http::HeaderValue;
use http::header::{AUTHORIZATION, HeaderName};
use zeroize::Zeroizing;

use super::CredentialSource;
use crate::sigv4::{
    ALGORITHM, CanonicalRequest, SigningKey, canonical_headers, canonical_query, format_amz_date, scope, unix_seconds,
};

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
    /// The last signing key derived, for the credentials and day it is for.
    key: Mutex<Option<CachedKey>>,
}

#[derive(Debug)]
struct CachedKey {
    access_key_id: String,
    secret: Zeroizing<String>,
    date: String,
    key: SigningKey,
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
        UpstreamSigner { region: region.to_owned(), credentials, key: Mutex::new(None) }
    }

    /// Signs `request` in place (adds `authorization`, `x-amz-date`,
    /// `x-amz-content-sha256` and, with temporary credentials,
    /// `x-amz-security-token`). `payload_hash` is the value for
    /// `x-amz-content-sha256`: a hex SHA-256, `UNSIGNED-PAYLOAD` or
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    pub async fn sign<B>(&self, request: &mut http::Request<B>, payload_hash: &str) -> Result<(), SignError> {
        let creds = self.credentials.get().await?;
        self.sign_at(request, payload_hash, &creds, SystemTime::now())
    }

    fn sign_at<B>(
        &self,
        request: &mut http::Request<B>,
        payload_hash: &str,
        creds: &Credentials,
        now: SystemTime,
    ) -> Result<(), SignError> {
        let amz_date = format_amz_date(unix_seconds(now));
        let date = &amz_date[..8];
        let value = |name: &str, v: &str| HeaderValue::from_str(v).map_err(|_| SignError::HeaderValue(name.to_owned()));
        let headers = request.headers_mut();
        headers.insert(HeaderName::from_static("x-amz-date"), value("x-amz-date", &amz_date)?);
        headers.insert(HeaderName::from_static("x-amz-content-sha256"), value("x-amz-content-sha256", payload_hash)?);
        if let Some(token) = creds.session_token() {
            headers.insert(HeaderName::from_static("x-amz-security-token"), value("x-amz-security-token", token)?);
        }

        let mut signed: Vec<&str> = Vec::with_capacity(headers.keys_len());
        for name in headers.keys() {
            let name = name.as_str();
            if name.starts_with("x-amz-") || SIGNED.contains(&name) {
                if headers.get_all(name).iter().any(|v| v.to_str().is_err()) {
                    return Err(SignError::HeaderValue(name.to_owned()));
                }
                signed.push(name);
            }
        }
        signed.sort_unstable();
        let canonical_headers = canonical_headers(headers, &signed).map_err(|e| SignError::Signing(e.to_string()))?;
        let signed_headers = signed.join(";");

        let uri = request.uri();
        let path = if uri.path().is_empty() { "/" } else { uri.path() };
        let query = canonical_query(uri.query(), false);
        let method = request.method().as_str();
        let canonical_request = CanonicalRequest {
            method,
            path,
            query: &query,
            headers: &canonical_headers,
            signed_headers: &signed_headers,
            payload_hash,
        };

        let scope = scope(date, &self.region, "s3");
        let signature = self.with_key(creds, date, |key| key.sign_request(&amz_date, &scope, &canonical_request));
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={}",
            creds.access_key_id(),
            hex::encode(signature)
        );
        let authorization = value("authorization", &authorization)?;
        request.headers_mut().insert(AUTHORIZATION, authorization);
        Ok(())
    }

    /// Runs `f` with the signing key for `creds` on `date`, derived again
    /// only when either changed.
    fn with_key<T>(&self, creds: &Credentials, date: &str, f: impl FnOnce(&SigningKey) -> T) -> T {
        let mut cached = self.key.lock().unwrap_or_else(PoisonError::into_inner);
        let current = cached.as_ref().is_some_and(|c| {
            c.date == date && c.access_key_id == creds.access_key_id() && *c.secret == creds.secret_access_key()
        });
        if !current {
            *cached = Some(CachedKey {
                access_key_id: creds.access_key_id().to_owned(),
                secret: Zeroizing::new(creds.secret_access_key().to_owned()),
                date: date.to_owned(),
                key: SigningKey::derive(creds.secret_access_key(), date, &self.region, "s3"),
            });
        }
        f(&cached.as_ref().expect("just set").key)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sigv4::http_request::{
        PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode, sign,
    };
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;

    use super::*;

    /// The request signed by `aws-sigv4` with the settings this signer
    /// replaced.
    fn sdk_signed(request: &http::Request<()>, payload_hash: &str, creds: &Credentials, now: SystemTime) -> String {
        let identity: Identity = creds.clone().into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let headers = request
            .headers()
            .iter()
            .filter(|(n, _)| n.as_str().starts_with("x-amz-") || SIGNED.contains(&n.as_str()))
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()));
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers,
            SignableBody::Precomputed(payload_hash.to_owned()),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut signed = request.clone();
        instructions.apply_to_request_http1x(&mut signed);
        signed.headers()[AUTHORIZATION].to_str().unwrap().to_owned()
    }

    #[test]
    fn signs_as_the_aws_sdk_does() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let permanent = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "t");
        let temporary = Credentials::new("ASIAEXAMPLE", "secret/with+slash", Some("token+/=".into()), None, "t");
        let requests = [
            (
                "GET",
                "http://127.0.0.1:8333/bucket/key%20with%20space.bin?x-id=GetObject",
                vec![("range", "bytes=0-99")],
            ),
            ("GET", "http://bucket.s3.example.com/a/b/%E2%82%AC.txt?versionId=3&partNumber=2", vec![]),
            (
                "GET",
                "http://h:1/b?list-type=2&prefix=a%2Fb&delimiter=%2F&encoding-type=url&start-after=",
                vec![("x-amz-request-payer", "requester")],
            ),
            (
                "PUT",
                "http://h/b/k",
                vec![
                    ("content-type", "text/plain"),
                    ("x-amz-meta-note", "  two  spaces  "),
                    ("x-amz-meta-note", "again"),
                    ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
                    ("user-agent", "not signed"),
                ],
            ),
            ("DELETE", "http://h/b?delete=", vec![]),
        ];
        let signer = UpstreamSigner::new("eu-west-3", CredentialSource::fixed("unused", "unused"));
        for creds in [&permanent, &temporary] {
            for (method, uri, headers) in &requests {
                for payload_hash in ["UNSIGNED-PAYLOAD", crate::sigv4::EMPTY_SHA256] {
                    let mut request = http::Request::builder().method(*method).uri(*uri);
                    let host = uri.split('/').nth(2).unwrap();
                    request = request.header("host", host);
                    for (name, value) in headers {
                        request = request.header(*name, *value);
                    }
                    let request = request.body(()).unwrap();
                    let expected = sdk_signed(&request, payload_hash, creds, now);
                    let mut ours = request.clone();
                    signer.sign_at(&mut ours, payload_hash, creds, now).unwrap();
                    assert_eq!(ours.headers()[AUTHORIZATION], expected.as_str(), "{method} {uri}");
                    assert_eq!(ours.headers()["x-amz-date"], "20261118T110640Z");
                    assert_eq!(
                        ours.headers().get("x-amz-security-token").map(|t| t.to_str().unwrap()),
                        creds.session_token()
                    );
                }
            }
        }
    }

    #[test]
    fn the_key_is_derived_again_for_another_day_or_secret() {
        let signer = UpstreamSigner::new("us-east-1", CredentialSource::fixed("unused", "unused"));
        let creds = Credentials::new("AKID", "one", None, None, "t");
        let key = |creds: &Credentials, date: &str| signer.with_key(creds, date, |k| *k.expose());
        let first = key(&creds, "20261128");
        assert_eq!(first, *SigningKey::derive("one", "20261128", "us-east-1", "s3").expose());
        assert_eq!(key(&creds, "20261128"), first);
        assert_ne!(key(&creds, "20261129"), first);
        let rotated = Credentials::new("AKID", "two", None, None, "t");
        assert_eq!(key(&rotated, "20261129"), *SigningKey::derive("two", "20261129", "us-east-1", "s3").expose());
    }
}
