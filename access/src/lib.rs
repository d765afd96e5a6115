//! The AWS IAM policy language, as far as S3 needs it: parsing, validation,
//! a canonical form with its hash, and evaluation of identity policies.
//!
//! This is the proxy's authorization boundary, and pure logic: it knows no
//! HTTP, no S3 request format and no storage. The proxy turns a request into
//! an action, a resource ARN and a [`Context`] of condition keys, and asks
//! [`evaluate`] (or a [`PolicySet`], which remembers per action which
//! statements can apply) about the principal's policies. docs/POLICIES.md specifies
//! the language as implemented, with the AWS documentation it follows.

mod condition;
mod context;
mod evaluate;
mod glob;
mod json;
pub mod keys;
mod pattern;
mod policy;
mod set;
mod values;

pub use context::Context;
pub use evaluate::{AccessRequest, Decision, Effect, evaluate};
pub use policy::{MAX_POLICY_BYTES, Parsed, Policy, PolicyError, Warning};
pub use set::PolicySet;
