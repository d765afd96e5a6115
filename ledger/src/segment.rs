//! Segment files: their names (plain and compressed), splitting them into
//! lines, and the chain rule that every line must satisfy (next seq, `prev`
//! = hash of the line before).
//!
//! A segment is `segment-<N>.jsonl` while the writer may append to it; once
//! sealed, the compactor may replace it with `segment-<N>.jsonl.zst`, one
//! zstd frame whose content is the plain file byte for byte. Seqs, hashes
//! and offsets are always those of the plain bytes.

use crate::record::{DecodeError, LineHash, LineHeader, decode_header, line_hash};

const PREFIX: &str = "segment-";
const SUFFIX: &str = ".jsonl";
const ZSTD_SUFFIX: &str = ".jsonl.zst";

/// How a segment is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SegmentForm {
    /// `segment-<N>.jsonl`: the lines themselves.
    Plain,
    /// `segment-<N>.jsonl.zst`: one zstd frame of the plain file's bytes.
    Zstd,
}

impl SegmentForm {
    /// The other form (where a reader looks when a file vanished under it).
    #[must_use]
    pub fn other(self) -> SegmentForm {
        match self {
            SegmentForm::Plain => SegmentForm::Zstd,
            SegmentForm::Zstd => SegmentForm::Plain,
        }
    }
}

/// File name of the segment whose first line has `first_seq` (plain form).
#[must_use]
pub fn segment_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:020}{SUFFIX}")
}

/// File name of the compressed form of that segment.
#[must_use]
pub fn compressed_segment_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:020}{ZSTD_SUFFIX}")
}

/// File name of that segment in `form`.
#[must_use]
pub fn segment_file_name(first_seq: u64, form: SegmentForm) -> String {
    match form {
        SegmentForm::Plain => segment_name(first_seq),
        SegmentForm::Zstd => compressed_segment_name(first_seq),
    }
}

/// The first seq named by a plain segment file name, if it is one.
#[must_use]
pub fn parse_segment_name(name: &str) -> Option<u64> {
    match parse_segment_file(name) {
        Some((seq, SegmentForm::Plain)) => Some(seq),
        _ => None,
    }
}

/// The first seq and form named by a segment file name, plain or compressed.
#[must_use]
pub fn parse_segment_file(name: &str) -> Option<(u64, SegmentForm)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (digits, form) = match rest.strip_suffix(ZSTD_SUFFIX) {
        Some(digits) => (digits, SegmentForm::Zstd),
        None => (rest.strip_suffix(SUFFIX)?, SegmentForm::Plain),
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, form))
}

/// The segments among `names`, ordered by first seq, each once with the
/// name of the file that holds it. When both forms of a segment are there
/// (a crash between the compactor's rename and its removal of the plain
/// file), the plain one is the segment and the compressed one is ignored:
/// the compactor redoes it.
#[must_use]
pub fn sorted_segments(names: impl IntoIterator<Item = String>) -> Vec<(u64, String)> {
    let mut found: Vec<(u64, SegmentForm, String)> =
        names.into_iter().filter_map(|n| parse_segment_file(&n).map(|(seq, form)| (seq, form, n))).collect();
    // Plain sorts before Zstd, so the dedup keeps the plain file.
    found.sort_unstable();
    found.dedup_by_key(|(seq, _, _)| *seq);
    found.into_iter().map(|(seq, _, name)| (seq, name)).collect()
}

/// The form of a file name that [`sorted_segments`] returned.
#[must_use]
pub fn form_of(name: &str) -> SegmentForm {
    parse_segment_file(name).map_or(SegmentForm::Plain, |(_, form)| form)
}

/// Whether `name` is a temporary file of the compactor or of recovery
/// (`segment-….tmp`): never part of the log, removed at open.
#[must_use]
pub fn is_segment_temp_file(name: &str) -> bool {
    // Our own names, exactly as we write them: lowercase.
    name.starts_with(PREFIX) && name.as_bytes().ends_with(b".tmp")
}

/// One line of a segment.
#[derive(Debug, Clone, Copy)]
pub struct RawLine<'a> {
    /// Byte offset of the line's first byte in the segment.
    pub offset: usize,
    /// The line without its newline.
    pub bytes: &'a [u8],
    /// False for a last line with no newline (a torn or in-progress write).
    pub complete: bool,
}

/// Splits a segment's bytes into lines.
#[must_use]
pub fn lines(buf: &[u8]) -> Lines<'_> {
    Lines { buf, pos: 0 }
}

/// Iterator over the lines of a segment; see [`lines`].
#[derive(Debug)]
pub struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = RawLine<'a>;

    fn next(&mut self) -> Option<RawLine<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let offset = self.pos;
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.pos += end + 1;
                Some(RawLine { offset, bytes: &rest[..end], complete: true })
            }
            None => {
                self.pos = self.buf.len();
                Some(RawLine { offset, bytes: rest, complete: false })
            }
        }
    }
}

/// Why a line breaks the chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("seq {found} where {expected} was due (a line was deleted, inserted or moved)")]
    Seq { expected: u64, found: u64 },
    #[error("prev does not match the hash of line {prev_seq} (a line before it was changed, or this one was moved)")]
    Prev { prev_seq: u64 },
}

/// The state of a chain walk: which seq comes next and what its `prev` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    pub next_seq: u64,
    pub prev: LineHash,
}

impl Chain {
    /// A chain before its first line.
    #[must_use]
    pub fn genesis() -> Chain {
        Chain { next_seq: 0, prev: LineHash::GENESIS }
    }

    /// Checks that `line` is the next link and, if so, advances past it.
    /// Returns the line's header and its hash.
    pub fn advance<'a>(&mut self, line: &'a [u8]) -> Result<(LineHeader<'a>, LineHash), ChainError> {
        let (header, prev) = decode_header(line)?;
        if header.seq != self.next_seq {
            return Err(ChainError::Seq { expected: self.next_seq, found: header.seq });
        }
        if prev != self.prev {
            return Err(ChainError::Prev { prev_seq: self.next_seq.wrapping_sub(1) });
        }
        let hash = line_hash(line);
        self.next_seq += 1;
        self.prev = hash;
        Ok((header, hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_numerically() {
        assert_eq!(segment_name(42), "segment-00000000000000000042.jsonl");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("segment-42.jsonl"), None);
        assert_eq!(parse_segment_name("segment-00000000000000000042.jsonl.torn"), None);
        let sorted = sorted_segments(vec![segment_name(100), "LOCK".into(), segment_name(7)]);
        assert_eq!(sorted, vec![(7, segment_name(7)), (100, segment_name(100))]);
    }

    #[test]
    fn both_forms_parse_and_the_plain_one_wins() {
        assert_eq!(compressed_segment_name(42), "segment-00000000000000000042.jsonl.zst");
        assert_eq!(parse_segment_file(&compressed_segment_name(42)), Some((42, SegmentForm::Zstd)));
        assert_eq!(parse_segment_file(&segment_name(42)), Some((42, SegmentForm::Plain)));
        assert_eq!(parse_segment_name(&compressed_segment_name(42)), None, "the plain name only");
        assert_eq!(parse_segment_file("segment-00000000000000000042.jsonl.zst.tmp"), None);
        assert!(is_segment_temp_file("segment-00000000000000000042.jsonl.zst.tmp"));
        assert!(!is_segment_temp_file(&segment_name(42)));
        let sorted = sorted_segments(vec![
            compressed_segment_name(9),
            segment_name(20),
            compressed_segment_name(20),
            compressed_segment_name(0),
            "segment-00000000000000000030.jsonl.zst.tmp".into(),
        ]);
        assert_eq!(
            sorted,
            vec![(0, compressed_segment_name(0)), (9, compressed_segment_name(9)), (20, segment_name(20))]
        );
        assert_eq!(form_of(&sorted[0].1), SegmentForm::Zstd);
        assert_eq!(form_of(&sorted[2].1), SegmentForm::Plain);
    }

    #[test]
    fn lines_mark_a_missing_newline() {
        let all: Vec<_> = lines(b"a\nbb\nccc").collect();
        assert_eq!(all.len(), 3);
        assert_eq!((all[1].offset, all[1].bytes, all[1].complete), (2, &b"bb"[..], true));
        assert_eq!((all[2].offset, all[2].bytes, all[2].complete), (5, &b"ccc"[..], false));
        assert_eq!(lines(b"").count(), 0);
    }
}
