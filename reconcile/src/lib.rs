//! `egress-reconcile`: did anything read the data without going through the
//! proxy, and does the proxy's account agree with AWS's?
//!
//! A run reads AWS's two records of object reads from the log bucket — S3
//! server access logs ([`access_log`]) and CloudTrail data events
//! ([`cloudtrail`], checked against its digest files first) — and joins them
//! with the ledger's reads of the same window ([`ledger_reads`]). The join
//! ([`matching`]) says for every AWS read which ledger request accounts for
//! it and by which rule; what is left over on either side becomes the
//! report's findings ([`report`]). `docs/RECONCILIATION.md` is the contract.
//!
//! This crate knows the ledger's records and the S3 API it reads logs with;
//! it knows nothing of the admin API or the data path.

pub mod access_log;
pub mod aws_read;
mod civil;
pub mod cloudtrail;
pub mod fast_hash;
pub mod ledger_reads;
pub mod matching;
pub mod report;
pub mod run;
pub mod store;

pub use aws_read::{AwsRead, LogSource};
