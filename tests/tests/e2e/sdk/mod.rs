//! The Rust SDK's configuration shared by the test files that drive it:
//! a principal's key, one region, no retries (a retry would hide a failure
//! and add ledger events), and the HTTP client the test chose.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider, SharedHttpClient};
use egress_e2e::servers::Key;

pub fn config(endpoint: &str, key: &Key, http: SharedHttpClient) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            &key.access_key_id,
            &key.secret_access_key,
            None,
            None,
            "egress-e2e",
        )))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .http_client(http)
        .build()
}
