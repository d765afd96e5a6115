//! The upstream S3 endpoint: where requests go, the HTTP client that takes
//! them there, and the signer that signs them with the upstream's
//! credentials.

pub mod client;
pub mod credentials;
pub mod signer;

pub use client::{Addressing, Upstream, UpstreamError, UpstreamResponseBody};
pub use credentials::CredentialSource;
pub use signer::UpstreamSigner;
