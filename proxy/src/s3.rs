//! The S3 protocol as the proxy needs it: which bucket and key a request
//! names, which operation it is, and S3's XML errors.

pub mod addressing;
pub mod error;
pub mod operation;
