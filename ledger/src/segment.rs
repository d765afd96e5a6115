//! Segment files: their names, splitting them into lines, and the chain rule
//! that every line must satisfy (next seq, `prev` = hash of the line before).

use crate::record::{DecodeError, LineHash, LineHeader, decode_header, line_hash};

const PREFIX: &str = "segment-";
const SUFFIX: &str = ".jsonl";

/// File name of the segment whose first line has `first_seq`.
#[must_use]
pub fn segment_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:020}{SUFFIX}")
}

/// The first seq named by a segment file name, if it is one.
#[must_use]
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments among `names`, ordered by first seq.
#[must_use]
pub fn sorted_segments(names: impl IntoIterator<Item = String>) -> Vec<(u64, String)> {
    let mut segments: Vec<(u64, String)> =
        names.into_iter().filter_map(|n| parse_segment_name(&n).map(|seq| (seq, n))).collect();
    segments.sort_unstable();
    segments
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
    fn lines_mark_a_missing_newline() {
        let all: Vec<_> = lines(b"a\nbb\nccc").collect();
        assert_eq!(all.len(), 3);
        assert_eq!((all[1].offset, all[1].bytes, all[1].complete), (2, &b"bb"[..], true));
        assert_eq!((all[2].offset, all[2].bytes, all[2].complete), (5, &b"ccc"[..], false));
        assert_eq!(lines(b"").count(), 0);
    }
}
