//! What the verifiers' tests share: one principal's key, a fixed clock, and
//! requests signed by the AWS SDK's own signer (`aws-sigv4`) as a client
//! would send them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use egress_ledger::principals::SecretKey;
use http::Request;

use crate::auth::{AuthError, Authenticated, RequestParts, SecretLookup, authenticate};

pub(crate) const AKID: &str = "EGRSTESTKEY0000001";
pub(crate) const SECRET: &str = "s3cr3t/with+plus=and spaces";
pub(crate) const HOST: &str = "proxy.test:8080";

/// 2026-11-27T10:00:00Z.
pub(crate) fn t0() -> SystemTime {
    at_unix(1_795_773_600)
}

pub(crate) fn at_unix(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// One principal, "alice", with one key.
pub(crate) fn keys(access_key_id: &'static str, secret: &'static str) -> impl SecretLookup {
    move |id: &str| (id == access_key_id).then(|| ("alice".to_owned(), SecretKey::new(secret.to_owned())))
}

/// A request as a client sends it, signed by the AWS SDK's signer.
pub(crate) struct ClientRequest {
    pub(crate) request: Request<()>,
    pub(crate) signature: String,
}

impl ClientRequest {
    pub(crate) fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: self.request.method().as_str(),
            raw_path: self.request.uri().path(),
            raw_query: self.request.uri().query(),
            headers: self.request.headers(),
        }
    }
}

/// Signs with aws-sigv4 configured as the S3 SDKs do (single encoding, no
/// path normalisation); `presign` puts the signature in the query.
pub(crate) fn sdk_sign(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: SignableBody<'_>,
    presign: Option<Duration>,
    secret: &str,
    time: SystemTime,
) -> ClientRequest {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    if let Some(expires) = presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
    } else {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity: Identity = Credentials::new(AKID, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-central-1")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let mut all_headers = vec![("host", HOST)];
    all_headers.extend_from_slice(headers);
    let signable = SignableRequest::new(method, url, all_headers.iter().copied(), body).unwrap();
    let (instructions, signature) = sign(signable, &params).unwrap().into_parts();
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in &all_headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    ClientRequest { request, signature }
}

pub(crate) fn url(path_and_query: &str) -> String {
    format!("http://{HOST}{path_and_query}")
}

/// A GET of `path_and_query` with a signed `range` header, signed at [`t0`].
pub(crate) fn header_signed(path_and_query: &str, body: SignableBody<'_>) -> ClientRequest {
    sdk_sign("GET", &url(path_and_query), &[("range", "bytes=0-9")], body, None, SECRET, t0())
}

/// Authenticates `req` against [`AKID`]'s key at `now`.
pub(crate) fn check(req: &ClientRequest, now: SystemTime) -> Result<Authenticated, AuthError> {
    authenticate(&req.parts(), &keys(AKID, SECRET), now)
}

/// The S3 error code of a failure, or "ok".
pub(crate) fn code(result: Result<Authenticated, AuthError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    }
}
