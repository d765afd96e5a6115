//! [`Ledger`], the handle the rest of the program holds: opening a data dir
//! (or any [`Storage`], for tests), appending, checkpointing, closing, and
//! what it reports (head, counters, the sled store, the verifier key).
//! Opening a data dir also starts the compactor of sealed segments (unless
//! [`LedgerConfig::compress_sealed`] is off); closing stops it.
//!
//! Every clone talks to the one writer thread (see `writer_thread`); the
//! handle itself holds no chain state.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::config::{LedgerConfig, LedgerOpenError};
use super::data_dir::{DataDir, DirLock, lock_dir};
use super::writer_thread::{self, Command, Head, Shared};
use crate::checkpoint::CheckpointSigner;
use crate::reader::LedgerReader;
use crate::record::{CheckpointRecord, Entry};
use crate::storage::{FsStorage, Storage};
use crate::store::Store;
use crate::writer::{AppendError, Appended, RecoveryReport, WriterCore};

/// An open ledger. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Ledger {
    shared: Arc<Shared>,
    store: Option<Store>,
    data_dir: Option<DataDir>,
    verifier_key: String,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("data_dir", &self.data_dir).field("head", &self.head()).finish_non_exhaustive()
    }
}

impl Ledger {
    /// Opens the ledger in `config.data_dir`: takes its lock, recovers the
    /// segments, loads or makes the signing key, opens sled and brings its
    /// indexes up to date.
    pub fn open(config: &LedgerConfig) -> Result<(Ledger, RecoveryReport), LedgerOpenError> {
        let dirs = DataDir::new(&config.data_dir);
        let dir_err = |path: PathBuf| move |source| LedgerOpenError::Io { path, source };
        crate::storage::create_private_dir(&dirs.root).map_err(dir_err(dirs.root.clone()))?;
        let storage = FsStorage::new(&dirs.ledger()).map_err(dir_err(dirs.ledger()))?;
        let lock = lock_dir(&dirs.ledger())?;
        let signer = match &config.signing_key {
            Some(path) => CheckpointSigner::load(path)?,
            None => CheckpointSigner::load_or_create(&dirs.keys(), &config.origin)?,
        };
        crate::storage::create_private_dir(&dirs.checkpoints()).map_err(dir_err(dirs.checkpoints()))?;
        let store =
            Store::open(&dirs.state()).map_err(|source| LedgerOpenError::Store { path: dirs.state(), source })?;
        let (ledger, report) = Ledger::start(
            Arc::new(storage),
            Arc::new(signer),
            config,
            Some(store.clone()),
            Some(dirs.clone()),
            Some(lock),
        )?;
        // Lines committed before a crash may not have reached sled.
        let reader = LedgerReader::open(&dirs.ledger()).map_err(dir_err(dirs.ledger()))?;
        store.index.catch_up(&reader)?;
        Ok((ledger, report))
    }

    /// Opens a ledger on any storage, without sled or checkpoint files: for
    /// tests of the writer under faults.
    pub fn open_on(
        storage: Arc<dyn Storage>,
        signer: Arc<CheckpointSigner>,
        config: &LedgerConfig,
    ) -> Result<(Ledger, RecoveryReport), LedgerOpenError> {
        Ledger::start(storage, signer, config, None, None, None)
    }

    fn start(
        storage: Arc<dyn Storage>,
        signer: Arc<CheckpointSigner>,
        config: &LedgerConfig,
        store: Option<Store>,
        dirs: Option<DataDir>,
        lock: Option<DirLock>,
    ) -> Result<(Ledger, RecoveryReport), LedgerOpenError> {
        let verifier_key = signer.verifier_key_text();
        let (core, report) = WriterCore::open(storage, signer, config.writer.clone())?;
        // Only a data dir's segments are compacted: other storage is a test's.
        let compact_dir = dirs.as_ref().filter(|_| config.compress_sealed).map(DataDir::ledger);
        let shared = writer_thread::spawn(
            core,
            store.clone(),
            dirs.as_ref().map(DataDir::checkpoints),
            config.checkpoint_interval,
            lock,
            compact_dir,
        )
        .map_err(|source| LedgerOpenError::Io { path: config.data_dir.clone(), source })?;
        Ok((Ledger { shared, store, data_dir: dirs, verifier_key }, report))
    }

    /// Appends one entry; resolves once it is durable (group commit).
    pub async fn append(&self, entry: Entry) -> Result<Appended, AppendError> {
        let (tx, rx) = oneshot::channel();
        self.shared.send(Command::Append(entry, tx))?;
        rx.await.map_err(|_| AppendError::Closed)?
    }

    /// Queues an append nobody waits for, such as the `end` written as a
    /// response body is dropped. The writer appends queued entries in order;
    /// this one becomes durable with the next commit someone waits on, or
    /// within 10 ms, and always before a close returns. A crash inside that
    /// window loses it (recovery then records the event as `interrupted`).
    /// Failures are logged by the writer.
    pub fn submit(&self, entry: Entry) -> Result<(), AppendError> {
        self.shared.send(Command::Submit(entry))
    }

    /// [`Ledger::append`] for code outside an async runtime.
    pub fn append_blocking(&self, entry: Entry) -> Result<Appended, AppendError> {
        let (tx, rx) = oneshot::channel();
        self.shared.send(Command::Append(entry, tx))?;
        rx.blocking_recv().map_err(|_| AppendError::Closed)?
    }

    /// Writes a checkpoint now if anything was appended since the last one.
    pub async fn checkpoint(&self) -> Result<Option<CheckpointRecord>, AppendError> {
        let (tx, rx) = oneshot::channel();
        self.shared.send(Command::Checkpoint(tx))?;
        rx.await.map_err(|_| AppendError::Closed)?
    }

    /// Closes the ledger: a final checkpoint, indexes flushed, threads joined.
    /// Appends after this fail with [`AppendError::Closed`].
    pub fn close_blocking(&self) -> Result<(), AppendError> {
        let (tx, rx) = oneshot::channel();
        let sent = self.shared.send(Command::Close(tx));
        self.shared.hang_up();
        let result = match sent {
            Ok(()) => rx.blocking_recv().unwrap_or(Err(AppendError::Closed)),
            Err(AppendError::Closed) => Ok(()),
            Err(e) => Err(e),
        };
        self.shared.join_threads();
        result
    }

    /// [`Ledger::close_blocking`] from async code.
    pub async fn close(&self) -> Result<(), AppendError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.close_blocking()).await.unwrap_or(Err(AppendError::Closed))
    }

    /// Whether the writer accepts appends: false from a failed write until
    /// it heals. A hint (it may change the next moment), for skipping work
    /// whose record would be refused anyway.
    #[must_use]
    pub fn writable(&self) -> bool {
        self.shared.stats().writable()
    }

    /// The writer's counters since open (for `/metrics`).
    #[must_use]
    pub fn stats(&self) -> crate::LedgerStats {
        self.shared.stats().snapshot()
    }

    /// The head as of the last commit.
    #[must_use]
    pub fn head(&self) -> Head {
        self.shared.head()
    }

    /// The sled store (absent for ledgers opened with [`Ledger::open_on`]).
    #[must_use]
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    #[must_use]
    pub fn data_dir(&self) -> Option<&DataDir> {
        self.data_dir.as_ref()
    }

    /// The checkpoint public key as a note verifier key line.
    #[must_use]
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Rebuilds every sled index from the segments; returns the lines
    /// indexed. On a pruned ledger the index starts at the first local seq.
    pub fn reindex(&self) -> Result<u64, crate::index::IndexError> {
        let (Some(store), Some(dirs)) = (&self.store, &self.data_dir) else {
            return Ok(0);
        };
        store.index.clear()?;
        let count = store.index.catch_up(&LedgerReader::open(&dirs.ledger())?)?;
        store.flush()?;
        Ok(count)
    }
}
