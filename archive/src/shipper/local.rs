//! The local ledger as the shipper reads it: which segments are sealed,
//! their content (the zstd file as it is, or compressed here), and the
//! open segment's lines after a seq.

use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::time::SystemTime;

use egress_ledger::LineHash;
use egress_ledger::reader::LedgerReader;
use egress_ledger::record::{decode_header, line_hash};
use egress_ledger::segment::Chain;

/// A sealed segment on disk.
#[derive(Debug, Clone)]
pub struct SealedSegment {
    pub first: u64,
    pub last: u64,
    pub name: String,
    /// In its zstd form already.
    pub compressed: bool,
    pub modified: SystemTime,
}

/// The open segment.
#[derive(Debug, Clone)]
pub struct OpenSegment {
    pub first: u64,
    pub name: String,
}

/// The segments as listed at the start of a round.
#[derive(Debug, Clone)]
pub struct View {
    pub sealed: Vec<SealedSegment>,
    pub open: Option<OpenSegment>,
    pub head_seq: Option<u64>,
}

/// Complete, chained lines `first..=last` and their bytes.
#[derive(Debug, Clone)]
pub struct Lines {
    pub first: u64,
    pub last: u64,
    /// The first line's `prev`.
    pub first_prev: LineHash,
    /// Hash of the last line.
    pub head: LineHash,
    /// The lines, each ending in `\n`.
    pub content: Vec<u8>,
    /// `content` as one zstd frame (sealed segments only).
    pub compressed: Vec<u8>,
}

impl Lines {
    /// Hash of the line with `seq`, if these lines hold it.
    #[must_use]
    #[cfg(test)]
    pub fn hash_at(&self, seq: u64) -> Option<LineHash> {
        hash_in(&self.content, self.first, seq)
    }
}

/// Hash of line `seq` in `content`, lines whose first has seq `first`.
#[must_use]
pub fn hash_in(content: &[u8], first: u64, seq: u64) -> Option<LineHash> {
    let index = usize::try_from(seq.checked_sub(first)?).ok()?;
    content.split(|&b| b == b'\n').nth(index).filter(|l| !l.is_empty()).map(line_hash)
}

/// Reads the local ledger.
#[derive(Debug)]
pub struct LocalLines {
    dir: PathBuf,
    /// `(segment, seq, offset)`: where the open segment's line `seq` starts.
    marks: Vec<(u64, u64, u64)>,
}

/// Checks that `content` is complete lines chained from its first, and
/// says which seqs they are.
fn check_lines(content: &[u8], what: &str) -> Result<Option<(u64, u64, LineHash, LineHash)>, String> {
    let mut chain: Option<Chain> = None;
    let mut first = None;
    for line in content.split_inclusive(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\n") else {
            return Err(format!("{what}: a line without its newline"));
        };
        let (header, prev) = decode_header(line).map_err(|e| format!("{what}: {e}"))?;
        let chain = chain.get_or_insert_with(|| {
            first = Some((header.seq, prev));
            Chain { next_seq: header.seq, prev }
        });
        chain.advance(line).map_err(|e| format!("{what}: {e}; run `egress-proxy ledger verify`"))?;
    }
    Ok(match (first, chain) {
        (Some((seq, prev)), Some(chain)) => Some((seq, chain.next_seq - 1, prev, chain.prev)),
        _ => None,
    })
}

impl LocalLines {
    #[must_use]
    pub fn new(dir: PathBuf) -> LocalLines {
        LocalLines { dir, marks: Vec::new() }
    }

    /// The segments now.
    pub fn view(&self) -> std::io::Result<View> {
        let reader = LedgerReader::open(&self.dir)?;
        let segments = reader.segments().to_vec();
        let mut sealed = Vec::new();
        for pair in segments.windows(2) {
            let ((first, name), (next, _)) = (&pair[0], &pair[1]);
            let modified = fs::metadata(self.dir.join(name)).and_then(|m| m.modified()).unwrap_or(SystemTime::now());
            sealed.push(SealedSegment {
                first: *first,
                last: next.saturating_sub(1),
                name: name.clone(),
                compressed: std::path::Path::new(name).extension().is_some_and(|e| e.eq_ignore_ascii_case("zst")),
                modified,
            });
        }
        let open = segments.last().map(|(first, name)| OpenSegment { first: *first, name: name.clone() });
        let head_seq = reader.head()?.map(|(seq, _)| seq);
        Ok(View { sealed, open, head_seq })
    }

    /// The ledger directory.
    #[must_use]
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// A sealed segment's lines in ledger directory `dir`, checked, and its
/// zstd form (CPU work: callers in async code run it on a blocking thread).
pub fn read_sealed(dir: &std::path::Path, segment: &SealedSegment) -> Result<Lines, String> {
    {
        let mut path = dir.join(&segment.name);
        let mut compressed_form = segment.compressed;
        let mut read = fs::read(&path);
        if !compressed_form && read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            // Compressed since it was listed.
            path = dir.join(format!("{}.zst", segment.name));
            compressed_form = true;
            read = fs::read(&path);
        }
        let raw = read.map_err(|e| format!("{}: {e}", path.display()))?;
        let (content, compressed) = if compressed_form {
            (zstd::decode_all(raw.as_slice()).map_err(|e| format!("{}: {e}", path.display()))?, raw)
        } else {
            let compressed = zstd::bulk::compress(&raw, 3).map_err(|e| e.to_string())?;
            (raw, compressed)
        };
        let what = segment.name.as_str();
        let (first, last, first_prev, head) =
            check_lines(&content, what)?.ok_or_else(|| format!("{what}: a sealed segment without lines"))?;
        if first != segment.first || last != segment.last {
            return Err(format!(
                "{what}: holds seqs {first} to {last}, but its place says {} to {}",
                segment.first, segment.last
            ));
        }
        Ok(Lines { first, last, first_prev, head, content, compressed })
    }
}

impl LocalLines {
    /// The open segment's complete lines from seq `from` on, up to seq
    /// `until` if given (the durable head: a line written but not yet
    /// fsynced could still be lost to a power cut, and the archive must
    /// never hold a line the host then writes differently); `None` if
    /// there are none yet.
    pub fn read_open(
        &mut self,
        segment: u64,
        name: &str,
        from: u64,
        until: Option<u64>,
    ) -> Result<Option<Lines>, String> {
        if until.is_some_and(|until| until < from) {
            return Ok(None);
        }
        let path = self.dir.join(name);
        let mut file = fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mark = self.marks.iter().find(|(s, seq, _)| *s == segment && *seq == from).map(|m| m.2);
        let offset = match mark {
            Some(offset) => offset,
            None if from == segment => 0,
            None => {
                // Find where line `from` starts (once per start or after a failure).
                let mut all = Vec::new();
                file.read_to_end(&mut all).map_err(|e| format!("{}: {e}", path.display()))?;
                let mut offset = 0u64;
                let mut found = None;
                for line in all.split_inclusive(|&b| b == b'\n') {
                    if !line.ends_with(b"\n") {
                        break;
                    }
                    if decode_header(&line[..line.len() - 1]).is_ok_and(|(h, _)| h.seq == from) {
                        found = Some(offset);
                        break;
                    }
                    offset += line.len() as u64;
                }
                match found {
                    Some(offset) => offset,
                    None => return Ok(None),
                }
            }
        };
        file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
        let mut content = Vec::new();
        file.read_to_end(&mut content).map_err(|e| format!("{}: {e}", path.display()))?;
        // A line being written has no newline yet: not part of this part.
        let mut complete = content.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        if let Some(until) = until {
            // Cut after line `until` (seqs go up by one from `from`).
            let keep = usize::try_from(until - from + 1).unwrap_or(usize::MAX);
            if let Some(end) = content[..complete].iter().enumerate().filter(|(_, b)| **b == b'\n').nth(keep - 1) {
                complete = end.0 + 1;
            }
        }
        content.truncate(complete);
        let Some((first, last, first_prev, head)) = check_lines(&content, name)? else {
            return Ok(None);
        };
        if first != from {
            return Err(format!("{name}: the line at the shipper's mark is seq {first}, not {from}"));
        }
        self.marks.retain(|(s, seq, _)| *s == segment && *seq == from);
        self.marks.push((segment, last + 1, offset + content.len() as u64));
        Ok(Some(Lines { first, last, first_prev, head, content, compressed: Vec::new() }))
    }

    /// Hash of the local line `seq`; `None` if the ledger ends before it.
    pub fn hash_at(&self, seq: u64) -> std::io::Result<Option<LineHash>> {
        let reader = LedgerReader::open(&self.dir)?;
        let Some((_, name)) = reader.segments().iter().rev().find(|(first, _)| *first <= seq) else {
            return Ok(None);
        };
        let content = reader.read_segment(name)?;
        for line in content.split_inclusive(|&b| b == b'\n') {
            let Some(line) = line.strip_suffix(b"\n") else { break };
            if let Ok((header, _)) = decode_header(line)
                && header.seq == seq
            {
                return Ok(Some(line_hash(line)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use super::*;
    use egress_ledger::record::{Entry, NoteRecord, encode_line};

    fn segment(dir: &std::path::Path, lines: u64, partial: bool) -> String {
        let mut text = Vec::new();
        let mut prev = LineHash::GENESIS;
        for seq in 0..lines {
            let line = encode_line(seq, &prev, "2026-12-03T00:00:00.000000Z", &Entry::Note(NoteRecord::new("t")));
            prev = line_hash(&line);
            text.extend_from_slice(&line);
            text.push(b'\n');
        }
        if partial {
            text.extend_from_slice(b"{\"v\":1,\"seq\":");
        }
        let name = egress_ledger::segment::segment_name(0);
        fs::write(dir.join(&name), text).unwrap();
        name
    }

    #[test]
    fn the_open_segment_is_read_up_to_the_durable_head_and_never_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let name = segment(dir.path(), 5, true);
        let mut local = LocalLines::new(dir.path().to_path_buf());
        let part = local.read_open(0, &name, 0, Some(2)).unwrap().unwrap();
        assert_eq!((part.first, part.last), (0, 2));
        assert_eq!(part.content.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(), 3);
        // From the mark left at seq 3, without the durable cap.
        let rest = local.read_open(0, &name, 3, None).unwrap().unwrap();
        assert_eq!((rest.first, rest.last), (3, 4), "the partial line is left out");
        assert!(rest.content.ends_with(b"\n"));
        // Found by scanning when there is no mark.
        let mut fresh = LocalLines::new(dir.path().to_path_buf());
        let found = fresh.read_open(0, &name, 4, None).unwrap().unwrap();
        assert_eq!((found.first, found.last, found.first_prev), (4, 4, rest.hash_at(3).unwrap()));
        assert!(fresh.read_open(0, &name, 5, None).unwrap().is_none());
        assert!(local.read_open(0, &name, 3, Some(2)).unwrap().is_none());
    }
}
