//! The ledger off the host: its sealed segments, the open segment's growth
//! and its checkpoints shipped to an S3 bucket with Object Lock; the chain
//! verified from there alone; each segment's requests as Parquet.

pub mod events;
pub mod layout;
pub mod listing;
pub mod location;
pub mod shipper;
pub mod status;
pub mod store;
pub mod verify;
