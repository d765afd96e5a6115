//! What has been shipped, kept in `<data-dir>/archive/state.json` (written
//! durably after each upload): the archive and origin it is for, the last
//! seq whose lines (and all before) are in the archive with its hash, the
//! last sealed segment shipped whole, the last checkpoint shipped, and the
//! start lines still open at the end of that segment (their requests' rows
//! go into the next segment's Parquet).

use std::path::{Path, PathBuf};

use egress_ledger::LineHash;
use serde::{Deserialize, Serialize};

/// The last shipped line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    pub seq: u64,
    pub head: LineHash,
}

/// The shipper's progress.
#[derive(Debug, Clone, Default)]
pub struct ShipState {
    archive: String,
    origin: String,
    pub shipped: Option<Shipped>,
    pub segments_through: Option<u64>,
    pub checkpoints_through: Option<u64>,
    pub key_shipped: bool,
    pub carry: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    archive: String,
    origin: String,
    shipped_seq: Option<u64>,
    shipped_head: Option<String>,
    segments_through: Option<u64>,
    checkpoints_through: Option<u64>,
    key_shipped: bool,
    carry: Vec<String>,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("archive").join("state.json")
}

impl ShipState {
    /// The state for `archive`/`origin`; a fresh one if none was kept or
    /// the kept one is for another archive.
    pub fn load(data_dir: &Path, archive: &str, origin: &str) -> Result<ShipState, String> {
        let fresh = ShipState { archive: archive.to_owned(), origin: origin.to_owned(), ..ShipState::default() };
        let path = path(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if disk.archive != archive || disk.origin != origin {
            tracing::info!(was = %disk.archive, now = %archive, "a new archive: shipping from the start");
            return Ok(fresh);
        }
        let shipped = match (disk.shipped_seq, disk.shipped_head) {
            (Some(seq), Some(head)) => Some(Shipped {
                seq,
                head: LineHash::from_hex(&head)
                    .ok_or_else(|| format!("{}: shipped_head is not a hash", path.display()))?,
            }),
            _ => None,
        };
        Ok(ShipState {
            shipped,
            segments_through: disk.segments_through,
            checkpoints_through: disk.checkpoints_through,
            key_shipped: disk.key_shipped,
            carry: disk.carry,
            ..fresh
        })
    }

    /// Writes the state durably.
    pub fn save(&self, data_dir: &Path) -> Result<(), String> {
        let disk = OnDisk {
            version: 1,
            archive: self.archive.clone(),
            origin: self.origin.clone(),
            shipped_seq: self.shipped.map(|s| s.seq),
            shipped_head: self.shipped.map(|s| s.head.to_hex()),
            segments_through: self.segments_through,
            checkpoints_through: self.checkpoints_through,
            key_shipped: self.key_shipped,
            carry: self.carry.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&disk).map_err(|e| e.to_string())?;
        let path = path(data_dir);
        egress_ledger::storage::write_file_durably(&path, &bytes, 0o600, true)
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}
