//! The S3 protocol as the proxy needs it: which bucket and key a request
//! names, its query, which operation it is — parsed once, in [`request`] —
//! and S3's XML errors.

pub mod addressing;
pub mod copy_source;
pub mod error;
pub mod operation;
pub mod permission;
pub mod query;
pub mod request;
