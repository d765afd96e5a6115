//! The sled store beside the segments: principals, indexes, small state.

use std::path::Path;

use crate::access::AccessStore;
use crate::index::EventIndex;
use crate::principals::PrincipalStore;

/// The sled database under `<data-dir>/state`.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    pub principals: PrincipalStore,
    pub access: AccessStore,
    pub index: std::sync::Arc<EventIndex>,
}

/// sled's page cache for the state store (principals and indexes).
const STATE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the store in `dir`; the directory is made 0700 and
    /// every file in it 0600, since it holds secret keys.
    pub fn open(dir: &Path) -> Result<Store, sled::Error> {
        crate::storage::create_private_dir(dir)?;
        // sled's page cache defaults to 1 GiB: with every request indexed,
        // the proxy's RSS grew toward it over a long load run. Index reads
        // are per block and sequential; the OS page cache serves them.
        let db = sled::Config::new().path(dir).cache_capacity(STATE_CACHE_BYTES).flush_every_ms(Some(500)).open()?;
        restrict_files(dir)?;
        Ok(Store {
            principals: PrincipalStore::open(&db)?,
            access: AccessStore::open(&db)?,
            index: std::sync::Arc::new(EventIndex::open(&db)?),
            db,
        })
    }

    /// A tree for small state of other crates (e.g. provisioning specs).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, sled::Error> {
        self.db.open_tree(name)
    }

    /// Writes everything out.
    pub fn flush(&self) -> Result<(), sled::Error> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, sled::Error> {
        self.db.size_on_disk()
    }
}

fn restrict_files(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let mode = if entry.file_type()?.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))?;
        if mode == 0o700 {
            restrict_files(&entry.path())?;
        }
    }
    Ok(())
}
