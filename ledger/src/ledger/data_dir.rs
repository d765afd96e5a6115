//! The data dir: where each part of it lives ([`DataDir`]), the `LOCK` file
//! that keeps a second process out of it, and the detached checkpoint files
//! in its `checkpoints/` folder (named, written durably, the oldest pruned).
//!
//! Layout (`docs/LEDGER.md`): `ledger/` segments and `LOCK`, `state/` sled,
//! `keys/` checkpoint key pair, `checkpoints/` detached checkpoint files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::config::LedgerOpenError;
use crate::record::CheckpointRecord;

/// How many detached checkpoint files are kept (older ones stay in the ledger).
const CHECKPOINT_FILES_KEPT: usize = 100;

/// Paths inside a data dir.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    #[must_use]
    pub fn new(root: &Path) -> DataDir {
        DataDir { root: root.to_path_buf() }
    }
    #[must_use]
    pub fn ledger(&self) -> PathBuf {
        self.root.join("ledger")
    }
    #[must_use]
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }
    #[must_use]
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    #[must_use]
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
}

/// Holds the data dir's lock for as long as the writer runs.
pub(super) struct DirLock(#[allow(dead_code)] fs::File);

/// Takes the OS lock on `dir/LOCK` and writes this process's id into it,
/// or says which process holds it.
pub(super) fn lock_dir(dir: &Path) -> Result<DirLock, LedgerOpenError> {
    use std::io::Write;
    let path = dir.join("LOCK");
    let io_err = |source| LedgerOpenError::Io { path: path.clone(), source };
    let mut file =
        fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            return Err(LedgerOpenError::Locked(dir.to_path_buf(), holder.trim().to_owned()));
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    file.set_len(0).map_err(io_err)?;
    write!(file, "pid {}", std::process::id()).map_err(io_err)?;
    Ok(DirLock(file))
}

/// File name of a detached checkpoint.
#[must_use]
pub fn checkpoint_file_name(head_seq: u64) -> String {
    format!("checkpoint-{head_seq:020}.txt")
}

/// Writes `cp` as its own file and as `latest.txt`, then removes all but
/// the newest [`CHECKPOINT_FILES_KEPT`] checkpoint files.
pub(super) fn write_checkpoint_file(dir: &Path, cp: &CheckpointRecord) -> io::Result<()> {
    let text = crate::checkpoint::to_note(cp);
    crate::storage::write_file_durably(&dir.join(checkpoint_file_name(cp.head_seq)), text.as_bytes(), 0o600, true)?;
    crate::storage::write_file_durably(&dir.join("latest.txt"), text.as_bytes(), 0o600, true)?;
    let mut files: Vec<_> = fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("checkpoint-"))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(CHECKPOINT_FILES_KEPT);
    for old in &files[..excess] {
        fs::remove_file(dir.join(old))?;
    }
    fs::File::open(dir)?.sync_all()
}
