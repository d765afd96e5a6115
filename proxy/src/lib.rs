//! egress-proxy: an S3-compatible reverse proxy that records every request,
//! with the bytes that really reached the client, in a hash-chained ledger.
//!
//! This crate is the data plane and the `egress-proxy` command line; the
//! ledger lives in `egress-ledger`, the admin API in `egress-admin`.

pub mod acked;
pub mod allocator;
pub mod auth;
pub mod authz;
pub mod body;
pub mod cli;
pub mod commands;
pub mod config;
pub mod denials;
pub mod embedded;
pub mod error_code;
pub mod idle;
pub mod meter;
pub mod pipeline;
pub mod s3;
pub mod server;
pub mod sigv4;
pub mod source;
pub mod stall;
pub mod tls;
pub mod upstream;

/// Response header carrying our request id (the ledger's `req`).
pub const REQUEST_ID_HEADER: &str = "x-egress-request-id";

/// Errors that travel inside bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
