//! The end-to-end suites: the real `egress-proxy` binary against real S3
//! servers and real clients. One test binary with a module per suite, so
//! that the AWS SDK is linked once (`cargo test -p egress-e2e --test e2e
//! <module>::` runs one suite).
#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

mod admin_api;
mod archive;
mod auditor;
mod compose;
mod config_check;
mod connections;
mod crash;
mod exact_bytes;
mod first_run;
mod ledger_cli;
mod operator;
mod parquet_export;
mod policies;
mod reconciliation;
mod s3_aws_cli;
mod s3_boto3;
mod s3_client_faults;
mod s3_denied;
mod s3_faults;
mod s3_http2;
mod s3_keep_alive;
mod s3_malformed;
mod s3_presigned;
mod s3_rust_sdk;
mod s3_tls_trailer;
mod s3_upstream_faults;
mod sdk;
mod secrets;
