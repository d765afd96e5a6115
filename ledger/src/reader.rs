//! Read-only access to the segments of a ledger directory, for verify,
//! export, indexing and queries. Safe to use while the writer and the
//! compactor run: a last line without its newline is a write in progress
//! and is not returned, and a segment listed plain that the compactor has
//! since replaced is read from its compressed form.
//!
//! Everything here speaks of a segment's plain bytes: [`LedgerReader::read_segment`]
//! decompresses, and offsets are offsets in the plain content whatever the
//! form on disk (the index stores those).
//!
//! A ledger whose oldest segments were pruned (`crate::prune`, once they are
//! in the archive) starts at a later seq: [`LedgerReader::first_seq`].

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::compact::decompress;
use crate::segment::{SegmentForm, form_of, lines, parse_segment_file, segment_file_name, sorted_segments};

/// The segments of one ledger directory.
#[derive(Debug, Clone)]
pub struct LedgerReader {
    dir: PathBuf,
    segments: Vec<(u64, String)>,
}

/// One complete line and where it is.
#[derive(Debug, Clone)]
pub struct LocatedLine {
    pub segment: u64,
    /// The file the segment was listed as (plain or compressed).
    pub segment_name: String,
    /// 1-based line number within the segment.
    pub line_no: u64,
    /// Offset of the line in the segment's plain content.
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// A read reached into history pruned from this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the history before seq {first_local_seq} is no longer on this host; it is in the archive")]
pub struct PrunedHistory {
    /// The first seq this host still has.
    pub first_local_seq: u64,
}

impl PrunedHistory {
    /// As an I/O error (kind `NotFound`) for functions that return those;
    /// [`PrunedHistory::of`] finds it again.
    #[must_use]
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, self)
    }

    /// The pruned history an I/O error stands for, if it is one.
    #[must_use]
    pub fn of(error: &io::Error) -> Option<PrunedHistory> {
        error.get_ref().and_then(|inner| inner.downcast_ref::<PrunedHistory>()).copied()
    }
}

impl LedgerReader {
    /// Lists the segments in `dir` (`<data-dir>/ledger`).
    pub fn open(dir: &Path) -> io::Result<LedgerReader> {
        Ok(LedgerReader { dir: dir.to_path_buf(), segments: sorted_segments(list(dir)?) })
    }

    /// `(first seq, file name)` of every segment, in order; the name is that
    /// of the file found when listing (`segment-<N>.jsonl` or
    /// `segment-<N>.jsonl.zst`).
    #[must_use]
    pub fn segments(&self) -> &[(u64, String)] {
        &self.segments
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The first seq on this host: 0, unless segments were pruned (or the
    /// ledger is empty, when it is 0 too).
    #[must_use]
    pub fn first_seq(&self) -> u64 {
        self.segments.first().map_or(0, |(first, _)| *first)
    }

    /// Whether `seq` is in history pruned from this host.
    #[must_use]
    pub fn is_pruned(&self, seq: u64) -> bool {
        seq < self.first_seq()
    }

    /// Total size of the segment files on disk, in bytes (compressed
    /// segments count as compressed).
    pub fn total_bytes(&self) -> io::Result<u64> {
        let mut total = 0;
        for (first_seq, name) in &self.segments {
            let (file, _) = open_segment_file(&self.dir, *first_seq, form_of(name))?;
            total += file.metadata()?.len();
        }
        Ok(total)
    }

    /// Reads a whole segment, given by a name [`LedgerReader::segments`]
    /// listed: its plain bytes, decompressed if it is compressed (or was
    /// compressed since it was listed).
    pub fn read_segment(&self, name: &str) -> io::Result<Vec<u8>> {
        let (first_seq, form) = parse_segment_file(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: not a segment file name")))?;
        read_segment_file(&self.dir, first_seq, form)
    }

    /// Reads the complete line that starts at `offset` (in the plain
    /// content) of segment `segment`.
    pub fn read_line_at(&self, segment: u64, offset: u64) -> io::Result<Vec<u8>> {
        let form =
            self.segments.iter().find(|(first, _)| *first == segment).map_or(SegmentForm::Plain, |(_, n)| form_of(n));
        let mut stream = SegmentStream::open(&self.dir, segment, form, offset, 4096)?;
        let mut out = Vec::with_capacity(512);
        stream.reader().read_until(b'\n', &mut out)?;
        if out.pop() != Some(b'\n') {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "line has no end"));
        }
        Ok(out)
    }

    /// Calls `f` for every complete line of every segment whose lines may
    /// reach `from_seq` or beyond (segments wholly before it are skipped),
    /// in order. `f` returns `false` to stop. Lines before the first local
    /// segment (pruned) are not there to be read: the walk starts at
    /// [`LedgerReader::first_seq`].
    pub fn for_each_line(&self, from_seq: u64, mut f: impl FnMut(&LocatedLine) -> bool) -> io::Result<()> {
        for (i, (first_seq, name)) in self.segments.iter().enumerate() {
            if self.segments.get(i + 1).is_some_and(|(next, _)| *next <= from_seq) {
                continue;
            }
            let bytes = self.read_segment(name)?;
            for (n, line) in lines(&bytes).enumerate() {
                if !line.complete {
                    break;
                }
                let located = LocatedLine {
                    segment: *first_seq,
                    segment_name: name.clone(),
                    line_no: n as u64 + 1,
                    offset: line.offset as u64,
                    bytes: line.bytes.to_vec(),
                };
                if !f(&located) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

impl LedgerReader {
    /// Seq and hash of the last complete line, read from the tail of the
    /// last non-empty segment; `None` for an empty ledger.
    pub fn head(&self) -> io::Result<Option<(u64, crate::record::LineHash)>> {
        for (first_seq, name) in self.segments.iter().rev() {
            let (file, form) = open_segment_file(&self.dir, *first_seq, form_of(name))?;
            let found = match form {
                SegmentForm::Plain => last_line_of_plain(file)?,
                // Only a sealed segment is compressed, and one is the last
                // non-empty segment only in the moment after a rotation.
                SegmentForm::Zstd => {
                    let bytes = read_segment_file(&self.dir, *first_seq, form)?;
                    lines(&bytes).filter(|l| l.complete).last().map(|l| l.bytes.to_vec())
                }
            };
            if let Some(line) = found {
                let (header, _) = crate::record::decode_header(&line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: last line: {e}")))?;
                return Ok(Some((header.seq, crate::record::line_hash(&line))));
            }
        }
        Ok(None)
    }
}

/// The last complete line of a plain segment, read from its tail.
fn last_line_of_plain(mut file: File) -> io::Result<Option<Vec<u8>>> {
    let len = file.metadata()?.len();
    // A line is far shorter than this; read more only if it is not.
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::with_capacity(window as usize);
        file.by_ref().take(window).read_to_end(&mut tail)?;
        let complete = match tail.iter().rposition(|&b| b == b'\n') {
            Some(end) => &tail[..end],
            None if start == 0 => return Ok(None),
            None => {
                window *= 4;
                continue;
            }
        };
        let line_start = complete.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        if line_start == 0 && start > 0 {
            window *= 4;
            continue;
        }
        return Ok(Some(complete[line_start..].to_vec()));
    }
}

fn list(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Opens the segment starting at `first_seq` in the form it was listed in,
/// or in the other one if that file is gone: the compactor replaced a
/// plain file since (or, rarely, recovery restored a compressed one).
/// Returns the form found. `NotFound` if neither is there, as
/// [`PrunedHistory`] if the segment is now before the first local one.
pub(crate) fn open_segment_file(dir: &Path, first_seq: u64, listed: SegmentForm) -> io::Result<(File, SegmentForm)> {
    for form in [listed, listed.other()] {
        match File::open(dir.join(segment_file_name(first_seq, form))) {
            Ok(file) => return Ok((file, form)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let first_local_seq = sorted_segments(list(dir)?).first().map_or(0, |(first, _)| *first);
    if first_seq < first_local_seq {
        return Err(PrunedHistory { first_local_seq }.into_io());
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not in {} in either form", segment_file_name(first_seq, listed), dir.display()),
    ))
}

/// The plain bytes of a segment, in either form.
fn read_segment_file(dir: &Path, first_seq: u64, listed: SegmentForm) -> io::Result<Vec<u8>> {
    let (mut file, form) = open_segment_file(dir, first_seq, listed)?;
    let mut raw = Vec::with_capacity(file.metadata().map_or(0, |m| m.len() as usize));
    file.read_to_end(&mut raw)?;
    match form {
        SegmentForm::Plain => Ok(raw),
        SegmentForm::Zstd => decompress(&raw)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", segment_file_name(first_seq, SegmentForm::Zstd)))),
    }
}

/// A segment open for reading forward from an offset of its plain content:
/// a plain file is seeked to it, a compressed one decoded from its start
/// and the bytes before the offset skipped.
pub(crate) enum SegmentStream {
    Plain(BufReader<File>),
    Zstd(BufReader<zstd::stream::read::Decoder<'static, BufReader<File>>>),
}

impl std::fmt::Debug for SegmentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SegmentStream::Plain(_) => "SegmentStream::Plain",
            SegmentStream::Zstd(_) => "SegmentStream::Zstd",
        })
    }
}

impl SegmentStream {
    /// Opens the segment (see [`open_segment_file`]) at plain offset
    /// `offset`, with a read buffer of `capacity` bytes.
    pub(crate) fn open(
        dir: &Path,
        first_seq: u64,
        listed: SegmentForm,
        offset: u64,
        capacity: usize,
    ) -> io::Result<SegmentStream> {
        let (mut file, form) = open_segment_file(dir, first_seq, listed)?;
        match form {
            SegmentForm::Plain => {
                file.seek(SeekFrom::Start(offset))?;
                Ok(SegmentStream::Plain(BufReader::with_capacity(capacity, file)))
            }
            SegmentForm::Zstd => {
                let decoder = zstd::stream::read::Decoder::new(file)?;
                let mut stream = BufReader::with_capacity(capacity, decoder);
                let skipped = io::copy(&mut stream.by_ref().take(offset), &mut io::sink())?;
                if skipped < offset {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{}: offset {offset} is past the end ({skipped} bytes)",
                            segment_file_name(first_seq, SegmentForm::Zstd)
                        ),
                    ));
                }
                Ok(SegmentStream::Zstd(stream))
            }
        }
    }

    pub(crate) fn reader(&mut self) -> &mut dyn BufRead {
        match self {
            SegmentStream::Plain(r) => r,
            SegmentStream::Zstd(r) => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_is_the_last_complete_line_of_the_last_segment() {
        let dir = tempfile::tempdir().unwrap();
        let ledger_dir = dir.path();
        assert_eq!(LedgerReader::open(ledger_dir).unwrap().head().unwrap(), None);
        let mut text = String::new();
        let mut prev = crate::record::LineHash::GENESIS;
        let mut last = None;
        for seq in 0..2000u64 {
            let entry = crate::record::Entry::Note(crate::record::NoteRecord::new("x").with("pad", "y".repeat(100)));
            let line = crate::record::encode_line(seq, &prev, "2026-01-01T00:00:00.000000Z", &entry);
            prev = crate::record::line_hash(&line);
            last = Some((seq, prev));
            text.push_str(std::str::from_utf8(&line).unwrap());
            text.push('\n');
        }
        text.push_str("{\"v\":1,\"seq\":2000,\"partial");
        std::fs::write(ledger_dir.join(crate::segment::segment_name(0)), text).unwrap();
        assert_eq!(LedgerReader::open(ledger_dir).unwrap().head().unwrap(), last);
    }
}
