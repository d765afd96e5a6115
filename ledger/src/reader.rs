//! Read-only access to the segments of a ledger directory, for verify,
//! export, indexing and queries. Safe to use while the writer runs: a last
//! line without its newline is a write in progress and is not returned.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::segment::{lines, sorted_segments};

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
    pub segment_name: String,
    /// 1-based line number within the segment.
    pub line_no: u64,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

impl LedgerReader {
    /// Lists the segments in `dir` (`<data-dir>/ledger`).
    pub fn open(dir: &Path) -> io::Result<LedgerReader> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(LedgerReader { dir: dir.to_path_buf(), segments: sorted_segments(names) })
    }

    /// `(first seq, file name)` of every segment, in order.
    #[must_use]
    pub fn segments(&self) -> &[(u64, String)] {
        &self.segments
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total size of the segment files in bytes.
    pub fn total_bytes(&self) -> io::Result<u64> {
        self.segments.iter().map(|(_, name)| Ok(fs::metadata(self.dir.join(name))?.len())).sum()
    }

    /// Reads a whole segment.
    pub fn read_segment(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.dir.join(name))
    }

    /// Reads the complete line that starts at `offset` of segment `segment`.
    pub fn read_line_at(&self, segment: u64, offset: u64) -> io::Result<Vec<u8>> {
        let mut file = fs::File::open(self.dir.join(crate::segment::segment_name(segment)))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut out = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        loop {
            let n = file.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "line has no end"));
            }
            if let Some(end) = chunk[..n].iter().position(|&b| b == b'\n') {
                out.extend_from_slice(&chunk[..end]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }

    /// Calls `f` for every complete line of every segment whose lines may
    /// reach `from_seq` or beyond (segments wholly before it are skipped),
    /// in order. `f` returns `false` to stop.
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
        for (_, name) in self.segments.iter().rev() {
            let mut file = fs::File::open(self.dir.join(name))?;
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
                    None if start == 0 => break,
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
                let line = &complete[line_start..];
                let (header, _) = crate::record::decode_header(line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: last line: {e}")))?;
                return Ok(Some((header.seq, crate::record::line_hash(line))));
            }
        }
        Ok(None)
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
