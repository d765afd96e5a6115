//! The egress ledger: an append-only, hash-chained log of every request the
//! proxy served, and the small state store beside it.
//!
//! The record of truth is a directory of JSON Lines segment files; each line
//! names the hash of the one before, so an auditor can verify the whole log
//! with nothing but `docs/LEDGER.md` and SHA-256. Appends go through one
//! writer that batches them and fsyncs once per batch (group commit); an
//! append resolves only once durable. Ed25519-signed checkpoints of the head
//! let a copy kept elsewhere catch truncation, rollback and forks. sled holds
//! what is derived (indexes) or small (principals and keys), and the indexes
//! can always be rebuilt from the segments.
//!
//! This crate knows nothing of HTTP or S3.

pub mod access;
pub mod checkpoint;
pub mod compact;
pub mod cursor;
pub mod export;
pub mod index;
pub mod issuing;
mod ledger;
pub mod principals;
pub mod prune;
pub mod reader;
pub mod record;
pub mod segment;
pub mod stats;
pub mod storage;
pub mod store;
pub mod verify;
pub mod writer;

pub use ledger::{DataDir, Head, Ledger, LedgerConfig, LedgerOpenError, checkpoint_file_name};
pub use record::{
    CheckpointRecord, Decision, Effect, EndRecord, Entry, LineHash, NoteRecord, ObjectRef, Outcome, StartRecord,
};
pub use stats::LedgerStats;
pub use writer::{AppendError, Appended, RecoveryReport, WriterOptions};
