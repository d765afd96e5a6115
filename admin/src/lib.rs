//! `egress-admin`: the admin REST API of egress-proxy (axum): principals, AWS
//! provisioning of the upstream (buckets, server access logging, a
//! CloudTrail trail, bucket policies) and ledger queries.
//!
//! It depends on `egress-ledger` for the state store and the ledger, and
//! knows nothing of the S3 data path. The routes arrive with the admin API
//! issue; the crate is in the workspace now so the dependency chain
//! `proxy -> admin -> ledger` is in place from the start.
