//! Compaction of sealed segments: `segment-<N>.jsonl` becomes
//! `segment-<N>.jsonl.zst`, one zstd frame whose content is the plain file
//! byte for byte, so the chain (defined over the plain lines) is unchanged.
//!
//! A compaction never loses a byte: the compressed file is written beside
//! the plain one as `segment-<N>.jsonl.zst.tmp`, fsynced, read back from the
//! file system and decompressed, and only if that gives exactly the plain
//! bytes is it renamed into place (directory fsynced), and only then is the
//! plain file removed (directory fsynced). A crash leaves one of: a stray
//! `.tmp` (removed at open), both forms (the plain one is the segment; the
//! next pass redoes it), or the compressed form alone (done).
//!
//! Only sealed segments are touched: the writer publishes, in a
//! [`SealBoundary`], the segment it appends to, and every segment before it
//! is sealed. The boundary is also a lock: the compactor holds it while it
//! swaps a segment's files, and the writer holds it while recovery looks
//! for the tail (which can step back to the segment before an empty last
//! one), so the two never act on the same segment at once.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::segment::{SegmentForm, compressed_segment_name, parse_segment_file, segment_name, sorted_segments};

/// The zstd level segments are compressed at: at ledger lines, level 3
/// gives most of what higher levels give, at several times their speed
/// (`ledger/examples/disk_per_million.rs` measures it).
pub const ZSTD_LEVEL: i32 = 3;

/// Compresses a segment's bytes into one zstd frame (with its content size
/// in the frame header).
pub fn compress(plain: &[u8]) -> io::Result<Vec<u8>> {
    zstd::bulk::compress(plain, ZSTD_LEVEL)
}

/// The plain bytes of a compressed segment. A file that is not zstd, or
/// is cut short, is `InvalidData`.
pub fn decompress(compressed: &[u8]) -> io::Result<Vec<u8>> {
    // The frame header says how much comes out; a header that claims more
    // than a segment ever holds is not trusted with the allocation.
    let declared = zstd::zstd_safe::get_frame_content_size(compressed).ok().flatten();
    let capacity = declared.filter(|n| *n <= 1 << 30).map_or(compressed.len().saturating_mul(4), |n| n as usize);
    let mut plain = Vec::with_capacity(capacity);
    zstd::stream::read::Decoder::with_buffer(compressed)
        .and_then(|mut decoder| decoder.read_to_end(&mut plain))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a valid zstd frame: {e}")))?;
    Ok(plain)
}

/// Which segments are sealed: those before the one the writer appends to.
/// Shared by the writer (which moves it) and the compactor (which reads
/// it); see the module docs for why it is a lock.
#[derive(Debug, Default)]
pub struct SealBoundary {
    /// First seq of the segment the writer appends to; `None` while no
    /// writer says (nothing counts as sealed then).
    open: Mutex<Option<u64>>,
}

impl SealBoundary {
    /// A boundary at `open_segment`: every segment before it is sealed.
    /// For compacting a ledger no writer has open (tests, tools).
    #[must_use]
    pub fn at(open_segment: u64) -> SealBoundary {
        SealBoundary { open: Mutex::new(Some(open_segment)) }
    }

    /// First seq of the segment the writer appends to, if known.
    #[must_use]
    pub fn open_segment(&self) -> Option<u64> {
        *self.lock()
    }

    /// Whether the segment starting at `first_seq` is sealed.
    #[must_use]
    pub fn is_sealed(&self, first_seq: u64) -> bool {
        self.open_segment().is_some_and(|open| first_seq < open)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<u64>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub first_seq: u64,
    pub plain_bytes: u64,
    pub compressed_bytes: u64,
}

/// Compresses the sealed segment starting at `first_seq` in `dir` (the
/// ledger dir), as the module docs describe. `Ok(None)` if there is
/// nothing to do: the segment is not sealed (or stopped being so meanwhile)
/// or has no plain file. An error leaves the plain file in place.
pub fn compact_segment(dir: &Path, first_seq: u64, boundary: &SealBoundary) -> io::Result<Option<Compacted>> {
    if !boundary.is_sealed(first_seq) {
        return Ok(None);
    }
    let plain_path = dir.join(segment_name(first_seq));
    let plain = match fs::read(&plain_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let zst_name = compressed_segment_name(first_seq);
    let tmp_path = dir.join(format!("{zst_name}.tmp"));
    let written = write_checked(&tmp_path, &plain);
    let compressed_bytes = match written {
        Ok(len) => len,
        Err(e) => {
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
    };
    let open = boundary.lock();
    // The writer may have stepped back to this segment (recovery from a
    // failed write after a rotation) while it was being compressed.
    if !open.is_some_and(|open| first_seq < open) || !plain_path.exists() {
        drop(open);
        fs::remove_file(&tmp_path)?;
        return Ok(None);
    }
    fs::rename(&tmp_path, dir.join(&zst_name))?;
    sync_dir(dir)?;
    fs::remove_file(&plain_path)?;
    sync_dir(dir)?;
    drop(open);
    Ok(Some(Compacted { first_seq, plain_bytes: plain.len() as u64, compressed_bytes }))
}

/// Writes `plain` compressed to `path`, fsyncs it, and reads it back from
/// the file system: it must decompress to exactly `plain`. Returns the
/// compressed size.
fn write_checked(path: &Path, plain: &[u8]) -> io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let compressed = compress(plain)?;
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(&compressed)?;
    file.sync_all()?;
    drop(file);
    let back = fs::read(path)?;
    if decompress(&back)? != plain {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: does not decompress to the segment's bytes; the segment is kept as it is", path.display()),
        ));
    }
    Ok(back.len() as u64)
}

/// Compacts every sealed segment of `dir` that is still plain, oldest
/// first, until `stop` says so (checked between segments). Failures are
/// returned per segment; the pass goes on with the next one.
pub fn compact_sealed(
    dir: &Path,
    boundary: &SealBoundary,
    mut stop: impl FnMut() -> bool,
) -> io::Result<Vec<(u64, io::Result<Option<Compacted>>)>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    let mut done = Vec::new();
    for (first_seq, name) in sorted_segments(names) {
        if !boundary.is_sealed(first_seq) {
            break;
        }
        if parse_segment_file(&name).is_some_and(|(_, form)| form == SegmentForm::Zstd) {
            continue;
        }
        if stop() {
            break;
        }
        done.push((first_seq, compact_segment(dir, first_seq, boundary)));
    }
    Ok(done)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

    use super::*;

    #[test]
    fn a_sealed_segment_is_swapped_for_its_compressed_form_and_the_open_one_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..5000).flat_map(|i| format!("{{\"seq\":{i}}}\n").into_bytes()).collect();
        fs::write(dir.path().join(segment_name(0)), &bytes).unwrap();
        fs::write(dir.path().join(segment_name(5000)), b"{}\n").unwrap();
        let boundary = SealBoundary::at(5000);
        let done = compact_sealed(dir.path(), &boundary, || false).unwrap();
        assert_eq!(done.len(), 1);
        let compacted = done[0].1.as_ref().unwrap().unwrap();
        assert_eq!(compacted.plain_bytes, bytes.len() as u64);
        assert!(compacted.compressed_bytes < compacted.plain_bytes / 4, "{compacted:?}");
        assert!(!dir.path().join(segment_name(0)).exists());
        let zst = fs::read(dir.path().join(compressed_segment_name(0))).unwrap();
        assert_eq!(decompress(&zst).unwrap(), bytes);
        assert!(dir.path().join(segment_name(5000)).exists(), "the open segment is never compacted");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left");
        assert_eq!(compact_segment(dir.path(), 5000, &boundary).unwrap(), None);
        assert_eq!(
            compact_segment(dir.path(), 0, &SealBoundary::default()).unwrap(),
            None,
            "no writer: nothing sealed"
        );
    }

    #[test]
    fn garbage_does_not_decompress() {
        let e = decompress(b"not zstd at all").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let mut cut = compress(b"hello\n").unwrap();
        cut.truncate(cut.len() - 2);
        assert!(decompress(&cut).is_err(), "a frame cut short is not the segment");
    }
}
