//! What opening a ledger takes ([`LedgerConfig`]) and the ways opening can
//! fail ([`LedgerOpenError`]).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::checkpoint::CheckpointError;
use crate::writer::{OpenError, WriterOptions};

/// Everything needed to open a ledger.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    pub data_dir: PathBuf,
    pub writer: WriterOptions,
    /// A checkpoint is written this long after the last one if anything was appended.
    pub checkpoint_interval: Duration,
    /// Name of this log, used when a new signing key is made.
    pub origin: String,
    /// Signing key file to use instead of `<data-dir>/keys/checkpoint.key`.
    pub signing_key: Option<PathBuf>,
    /// Compress sealed segments with zstd in a background thread (see
    /// `crate::compact`). Default true; off, segments stay plain (readers
    /// read both forms either way).
    pub compress_sealed: bool,
}

impl LedgerConfig {
    #[must_use]
    pub fn new(data_dir: &Path, origin: &str) -> LedgerConfig {
        LedgerConfig {
            data_dir: data_dir.to_path_buf(),
            writer: WriterOptions::default(),
            checkpoint_interval: Duration::from_mins(1),
            origin: origin.to_owned(),
            signing_key: None,
            compress_sealed: true,
        }
    }
}

/// Why a ledger could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerOpenError {
    #[error(transparent)]
    Recovery(#[from] OpenError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("data dir {0} is in use by another egress-proxy process ({1}); stop it or use its admin API")]
    Locked(PathBuf, String),
    #[error("checkpoint key: {0}")]
    Key(#[from] CheckpointError),
    #[error("state store in {path}: {source}")]
    Store { path: PathBuf, source: sled::Error },
    #[error("rebuilding the index: {0}")]
    Index(#[from] crate::index::CatchUpError),
}
