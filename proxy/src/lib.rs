//! egress-proxy: an S3-compatible reverse proxy that records every request,
//! with the bytes that really reached the client, in a hash-chained ledger.
//!
//! This crate is the data plane and the `egress-proxy` command line; the
//! ledger lives in `egress-ledger`, the admin API in `egress-admin`.

pub mod cli;
pub mod commands;
