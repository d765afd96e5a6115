//! Upstream credentials from the standard AWS chain (environment, shared
//! config and credentials files, web identity, container and instance
//! metadata), cached and refreshed before they expire.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::RwLock;

/// Refresh this long before expiry.
const REFRESH_BEFORE: Duration = Duration::from_mins(5);

/// Where the proxy's upstream credentials come from.
#[derive(Debug)]
pub struct CredentialSource {
    provider: SharedCredentialsProvider,
    cached: RwLock<Option<Credentials>>,
}

/// Credentials could not be had.
#[derive(Debug, thiserror::Error)]
#[error("no upstream credentials: {0}")]
pub struct CredentialsError(String);

impl CredentialSource {
    /// The default AWS chain. `region` is given so that loading does not ask
    /// the instance metadata service for one.
    pub async fn from_environment(region: &str) -> Result<CredentialSource, CredentialsError> {
        // The chain's own HTTP needs (IMDS, STS, SSO, containers) go through
        // this client: the same hyper 1 / rustls stack as the data plane.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_types::region::Region::new(region.to_owned()))
            .load()
            .await;
        let provider = config
            .credentials_provider()
            .ok_or_else(|| CredentialsError("the AWS default chain has no credentials provider".into()))?;
        Ok(CredentialSource { provider, cached: RwLock::new(None) })
    }

    /// Fixed credentials (tests, the embedded store).
    #[must_use]
    pub fn fixed(access_key_id: &str, secret: &str) -> CredentialSource {
        let creds = Credentials::new(access_key_id, secret, None, None, "egress-proxy");
        CredentialSource { provider: SharedCredentialsProvider::new(creds), cached: RwLock::new(None) }
    }

    fn fresh(creds: &Credentials) -> bool {
        creds.expiry().is_none_or(|expiry| expiry > SystemTime::now() + REFRESH_BEFORE)
    }

    /// Current credentials, fetched again when close to expiry.
    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        if let Some(creds) = self.cached.read().await.as_ref()
            && Self::fresh(creds)
        {
            return Ok(creds.clone());
        }
        let mut cached = self.cached.write().await;
        if let Some(creds) = cached.as_ref()
            && Self::fresh(creds)
        {
            return Ok(creds.clone());
        }
        let creds = self.provider.provide_credentials().await.map_err(|e| CredentialsError(e.to_string()))?;
        *cached = Some(creds.clone());
        Ok(creds)
    }
}
