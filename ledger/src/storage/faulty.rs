//! An in-memory [`Storage`] that fails on command, for crash-consistency
//! tests: torn writes, failing fsyncs, and crashes that lose what was not
//! synced (all of it, or a prefix survives, as a page cache may leave it).
//!
//! Built only with the `faulty-storage` feature, which this crate's tests
//! turn on: no release build carries it.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{SegmentFile, Storage};

#[derive(Debug, Default)]
struct MemFile {
    data: Vec<u8>,
    synced_len: usize,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<String, MemFile>,
    fail_next_sync: bool,
    /// Next append writes only this many bytes, then fails.
    torn_next_append: Option<usize>,
    fail_appends: bool,
}

/// In-memory segment storage with injectable faults. Clones share state, so a
/// test keeps one clone while the ledger owns another.
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    state: Arc<Mutex<State>>,
}

impl FaultyStorage {
    #[must_use]
    pub fn new() -> FaultyStorage {
        FaultyStorage::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the others.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next fsync fails (once).
    pub fn fail_next_sync(&self) {
        self.lock().fail_next_sync = true;
    }

    /// The next append writes only `n` bytes of its buffer, then fails (once).
    pub fn tear_next_append(&self, n: usize) {
        self.lock().torn_next_append = Some(n);
    }

    /// Every append fails until turned off (a full disk).
    pub fn set_fail_appends(&self, fail: bool) {
        self.lock().fail_appends = fail;
    }

    /// Disarms every fault not yet fired (a restarted process starts clean).
    pub fn clear_faults(&self) {
        let mut state = self.lock();
        state.fail_next_sync = false;
        state.torn_next_append = None;
        state.fail_appends = false;
    }

    /// Simulates power loss: of each file's unsynced bytes, only the first
    /// `keep(unsynced_len)` survive. Faults armed but not fired are cleared.
    pub fn crash(&self, mut keep: impl FnMut(usize) -> usize) {
        let mut state = self.lock();
        for file in state.files.values_mut() {
            let unsynced = file.data.len() - file.synced_len;
            let kept = keep(unsynced).min(unsynced);
            file.data.truncate(file.synced_len + kept);
            file.synced_len = file.data.len();
        }
        drop(state);
        self.clear_faults();
    }

    /// A file's current bytes (synced or not).
    #[must_use]
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().files.get(name).map(|f| f.data.clone())
    }

    /// Replaces a file's bytes (as if tampered with), all counted as synced.
    pub fn set_contents(&self, name: &str, bytes: Vec<u8>) {
        let mut state = self.lock();
        let file = state.files.entry(name.to_owned()).or_default();
        file.synced_len = bytes.len();
        file.data = bytes;
    }
}

struct FaultyFile {
    storage: FaultyStorage,
    name: String,
}

impl SegmentFile for FaultyFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.storage.lock();
        if state.fail_appends {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "injected: no space left"));
        }
        let torn = state.torn_next_append.take();
        let file = state.files.get_mut(&self.name).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        match torn {
            Some(n) => {
                file.data.extend_from_slice(&buf[..n.min(buf.len())]);
                Err(io::Error::other("injected: torn write"))
            }
            None => {
                file.data.extend_from_slice(buf);
                Ok(())
            }
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.storage.lock();
        if std::mem::take(&mut state.fail_next_sync) {
            return Err(io::Error::other("injected: fsync failed"));
        }
        let file = state.files.get_mut(&self.name).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        file.synced_len = file.data.len();
        Ok(())
    }
}

impl Storage for FaultyStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().files.keys().cloned().collect())
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        self.lock().files.get(name).map(|f| f.data.clone()).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn SegmentFile>> {
        let mut state = self.lock();
        if state.files.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        state.files.insert(name.to_owned(), MemFile::default());
        Ok(Box::new(FaultyFile { storage: self.clone(), name: name.to_owned() }))
    }

    fn open_append(&self, name: &str) -> io::Result<Box<dyn SegmentFile>> {
        if !self.lock().files.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(Box::new(FaultyFile { storage: self.clone(), name: name.to_owned() }))
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        let file = state.files.get_mut(name).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        file.data.truncate(len as usize);
        file.synced_len = file.data.len();
        Ok(())
    }

    fn write_side_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.set_contents(name, bytes.to_vec());
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.lock().files.remove(name).map(|_| ()).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.lock();
        let file = state.files.remove(from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        state.files.insert(to.to_owned(), file);
        Ok(())
    }
}
