//! `egress-proxy serve`: flags into a [`ServeConfig`], then the server.

use std::time::Duration;

use anyhow::Context as _;
use http::Uri;

use super::default_origin;
use crate::cli::ServeArgs;
use crate::config::{Limits, ServeConfig, TlsConfig};

/// Builds the typed configuration from the command line.
pub fn config(args: ServeArgs) -> anyhow::Result<ServeConfig> {
    let upstream_text = args.upstream.context(
        "--upstream is required: the S3 endpoint to put the proxy in front of, e.g. https://s3.us-east-1.amazonaws.com",
    )?;
    let upstream: Uri = upstream_text.parse().with_context(|| format!("--upstream {upstream_text:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(upstream.scheme_str(), Some("http" | "https")) && upstream.host().is_some(),
        "--upstream {upstream_text:?} must be an http:// or https:// URL with a host"
    );
    let tls = match (args.tls_listen, args.tls_cert, args.tls_key) {
        (Some(listen), Some(cert), Some(key)) => Some(TlsConfig { listen, cert, key }),
        _ => None,
    };
    Ok(ServeConfig {
        listen: args.listen,
        data_dir: args.dir.data_dir,
        upstream,
        upstream_region: args.upstream_region.unwrap_or_else(|| args.region.clone()),
        upstream_addressing: args.upstream_addressing,
        upstream_credentials: None,
        region: args.region,
        virtual_host_domains: args.virtual_host_domains.into_iter().map(|d| d.to_ascii_lowercase()).collect(),
        tls,
        limits: Limits {
            max_concurrent_requests: args.max_concurrent_requests.max(1),
            body_idle_timeout: Duration::from_secs(args.body_idle_timeout_secs.max(1)),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            ..Limits::default()
        },
        origin: default_origin(),
    })
}

/// Runs the server on a multi-threaded runtime until a shutdown signal.
pub fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let config = config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::server::serve(config))?;
    Ok(0)
}
