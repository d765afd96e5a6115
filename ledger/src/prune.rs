//! Pruning: removing a sealed, compressed segment from this host once it is
//! safely elsewhere (the archive decides when; this is only the mechanism).
//!
//! Segments are pruned oldest first, one at a time, so the local ledger is
//! always one unbroken run of segments starting at a later seq
//! ([`LedgerReader::first_seq`]). Refused, with the reason
//! ([`PruneRefused`], inside the returned `io::Error`):
//! - the last segment (the writer appends to it) and the newest sealed one
//!   (the writer's recovery reads it to find where the chain stands);
//! - a segment not compressed yet (the compactor has not reached it, or is
//!   in the middle of it): pruning goes after compaction, so that what was
//!   shipped is what is removed;
//! - any segment but the oldest local one (a hole would break the chain).
//!
//! Pruning a seq before the first local segment succeeds and does nothing:
//! it was pruned already (a retry after a crash).

use std::fs;
use std::io;
use std::path::Path;

use crate::compact::sync_dir;
use crate::reader::LedgerReader;
use crate::segment::{SegmentForm, form_of, segment_file_name};

/// Why a segment was not pruned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PruneRefused {
    #[error("segment {first_seq} is the last segment: the writer appends to it")]
    Last { first_seq: u64 },
    #[error(
        "segment {first_seq} is the newest sealed segment: the writer's recovery reads it; \
         it can be pruned once the segment after it is sealed"
    )]
    NewestSealed { first_seq: u64 },
    #[error("segment {first_seq} is not compressed yet: prune it after the compactor has (within a minute)")]
    NotCompressed { first_seq: u64 },
    #[error("segment {first_seq} is not the oldest local segment ({oldest}): segments are pruned oldest first")]
    NotOldest { first_seq: u64, oldest: u64 },
    #[error("no segment starts at seq {first_seq} (the local segments start at {segments:?})")]
    NoSuchSegment { first_seq: u64, segments: Vec<u64> },
}

impl PruneRefused {
    fn into_io(self) -> io::Error {
        let kind = match self {
            PruneRefused::NotCompressed { .. } => io::ErrorKind::ResourceBusy,
            PruneRefused::NoSuchSegment { .. } => io::ErrorKind::NotFound,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, self)
    }

    /// The refusal an I/O error from [`prune_segment`] stands for, if it is one.
    #[must_use]
    pub fn of(error: &io::Error) -> Option<&PruneRefused> {
        error.get_ref().and_then(|inner| inner.downcast_ref::<PruneRefused>())
    }
}

/// Removes the segment starting at `first_seq` from `ledger_dir`
/// (`<data-dir>/ledger`) durably (the directory fsynced), if the rules in
/// the module docs allow it; otherwise an error carrying [`PruneRefused`]
/// (`InvalidInput`, or `ResourceBusy` for a segment not compressed yet, or
/// `NotFound` for a seq no segment starts at). Safe while the ledger is
/// open: readers that have the file open keep reading it, and readers that
/// come to it later get [`crate::cursor::ReadError::Pruned`].
pub fn prune_segment(ledger_dir: &Path, first_seq: u64) -> io::Result<()> {
    let reader = LedgerReader::open(ledger_dir)?;
    let segments = reader.segments();
    let firsts: Vec<u64> = segments.iter().map(|(first, _)| *first).collect();
    if !firsts.is_empty() && first_seq < reader.first_seq() {
        return Ok(());
    }
    let Some(position) = firsts.iter().position(|first| *first == first_seq) else {
        return Err(PruneRefused::NoSuchSegment { first_seq, segments: firsts }.into_io());
    };
    if position + 1 == segments.len() {
        return Err(PruneRefused::Last { first_seq }.into_io());
    }
    if position + 2 == segments.len() {
        return Err(PruneRefused::NewestSealed { first_seq }.into_io());
    }
    if position != 0 {
        return Err(PruneRefused::NotOldest { first_seq, oldest: firsts[0] }.into_io());
    }
    // The listing prefers a plain file: one is there, alone or beside a
    // compressed copy the compactor has not finished with.
    if form_of(&segments[position].1) != SegmentForm::Zstd {
        return Err(PruneRefused::NotCompressed { first_seq }.into_io());
    }
    match fs::remove_file(ledger_dir.join(segment_file_name(first_seq, SegmentForm::Zstd))) {
        Ok(()) => {}
        // Pruned by someone else meanwhile: done all the same.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    sync_dir(ledger_dir)
}
