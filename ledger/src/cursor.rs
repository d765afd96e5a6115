//! Reading ledger lines from a position in the segments, found through the
//! block index: [`LedgerReader::for_each_line`] reads whole segments (up to
//! 64 MiB), which a query touching a few blocks cannot afford, and a scan
//! over millions of lines need not hold.
//!
//! A [`LineCursor`] starts at an anchor at or before the wanted seq (the
//! first line of its block, a segment start, or the last anchor of the last
//! indexed block for the unindexed tail) and reads forward, across segment
//! files, up to the end of the segments listed when it was opened. A last
//! line without its newline is a write in progress and ends the read.
//!
//! A plain segment is read with a seek to the anchor's offset; a compressed
//! one through a streaming decoder, skipping the plain bytes before the
//! offset (offsets are always in the plain content). A seq before the first
//! local segment is pruned history: [`ReadError::Pruned`].

use std::io;
use std::path::{Path, PathBuf};

use crate::index::{Anchor, BLOCK, EventIndex, IndexError};
use crate::reader::{LedgerReader, PrunedHistory, SegmentStream};
use crate::record::decode_header;
use crate::segment::form_of;

/// Why reading lines failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("reading the ledger: {0}")]
    Io(io::Error),
    #[error("reading the index: {0}")]
    Index(#[from] IndexError),
    #[error("{segment} at byte {offset}: {why}; run `egress-proxy ledger verify`")]
    Damaged { segment: String, offset: u64, why: String },
    /// The seq asked for is before the first segment on this host: its
    /// segment was pruned once archived (`crate::prune`).
    #[error("the history before seq {first_local_seq} is no longer on this host; it is in the archive")]
    Pruned { first_local_seq: u64 },
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        match PrunedHistory::of(&e) {
            Some(PrunedHistory { first_local_seq }) => ReadError::Pruned { first_local_seq },
            None => ReadError::Io(e),
        }
    }
}

impl From<sled::Error> for ReadError {
    fn from(e: sled::Error) -> ReadError {
        ReadError::Index(IndexError::Store(e))
    }
}

/// A forward reader over the ledger's lines.
#[derive(Debug)]
pub struct LineCursor {
    dir: PathBuf,
    /// `(first seq, file name)` of the segments listed at open, in order.
    segments: Vec<(u64, String)>,
    /// Position in `segments` of the open file.
    current: usize,
    file: Option<SegmentStream>,
    /// Offset of the next line in the open segment's plain content.
    offset: u64,
}

/// One line read by a [`LineCursor`]; `bytes` is without the newline.
#[derive(Debug, Default)]
pub struct CursorLine {
    pub seq: u64,
    /// The segment file the line is in (its first seq), and where in it
    /// the line starts.
    pub segment: u64,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

impl CursorLine {
    /// The line's `kind`, from a line that decoded once already.
    #[must_use]
    pub fn kind(&self) -> &str {
        decode_header(&self.bytes).map_or("", |(header, _)| header.kind)
    }
}

impl LineCursor {
    /// A cursor at a line at or before `seq`, so that reading forward
    /// reaches `seq` (callers skip the lines before it).
    /// [`ReadError::Pruned`] if `seq` is before the first local segment.
    pub fn open_at(reader: &LedgerReader, index: &EventIndex, seq: u64) -> Result<LineCursor, ReadError> {
        if reader.is_pruned(seq) {
            return Err(ReadError::Pruned { first_local_seq: reader.first_seq() });
        }
        let segments: Vec<u64> = reader.segments().iter().map(|(first, _)| *first).collect();
        let mut best = segments.iter().rev().find(|first| **first <= seq).map(|&first| Anchor {
            seq: first,
            segment: first,
            offset: 0,
        });
        let indexed_next = index.indexed_next()?;
        let anchor = if seq < indexed_next {
            index.seek(seq)?
        } else if indexed_next > 0 {
            // The tail is not in sled: start at the last anchor of the last
            // indexed block, at most two blocks before it.
            index.block(indexed_next / BLOCK - 1)?.and_then(|info| info.anchors.last().copied())
        } else {
            None
        };
        if let Some(anchor) = anchor
            && segments.contains(&anchor.segment)
            && best.is_none_or(|b| anchor.seq > b.seq)
        {
            best = Some(anchor);
        }
        let mut cursor = LineCursor {
            dir: reader.dir().to_path_buf(),
            segments: reader.segments().to_vec(),
            current: 0,
            file: None,
            offset: 0,
        };
        if let Some(at) = best {
            cursor.current = segments.iter().position(|s| *s == at.segment).unwrap_or(0);
            cursor.open_current(at.offset)?;
        } else if !cursor.segments.is_empty() {
            cursor.open_current(0)?;
        }
        Ok(cursor)
    }

    fn open_current(&mut self, offset: u64) -> Result<(), ReadError> {
        let (first_seq, name) = &self.segments[self.current];
        self.file = Some(SegmentStream::open(&self.dir, *first_seq, form_of(name), offset, 256 * 1024)?);
        self.offset = offset;
        Ok(())
    }

    fn segment_name(&self) -> String {
        self.segments.get(self.current).map_or_else(String::new, |(_, name)| name.clone())
    }

    /// Reads the next complete line into `line`; `false` at the end.
    pub fn next_line(&mut self, line: &mut CursorLine) -> Result<bool, ReadError> {
        if !self.next_raw(line)? {
            return Ok(false);
        }
        let (header, _) = decode_header(&line.bytes).map_err(|e| ReadError::Damaged {
            segment: self.segment_name(),
            offset: line.offset,
            why: e.to_string(),
        })?;
        line.seq = header.seq;
        Ok(true)
    }

    /// Reads the next complete line into `line` without decoding it:
    /// `line.seq` is left as it was, for a caller that decodes the line
    /// itself anyway (a scan over millions of lines need not parse each
    /// twice). `false` at the end.
    pub fn next_raw(&mut self, line: &mut CursorLine) -> Result<bool, ReadError> {
        loop {
            let Some(file) = self.file.as_mut() else {
                return Ok(false);
            };
            line.bytes.clear();
            let n = file.reader().read_until(b'\n', &mut line.bytes)? as u64;
            let offset = self.offset;
            self.offset += n;
            if line.bytes.last() == Some(&b'\n') {
                line.bytes.pop();
                line.segment = self.segments.get(self.current).map_or(0, |(first, _)| *first);
                line.offset = offset;
                return Ok(true);
            }
            let last = self.current + 1 >= self.segments.len();
            if n > 0 && !last {
                return Err(ReadError::Damaged {
                    segment: self.segment_name(),
                    offset,
                    why: "a line without its newline before the last segment".into(),
                });
            }
            if last {
                // End of the log, or a write in progress: stop before it.
                self.file = None;
                return Ok(false);
            }
            self.current += 1;
            self.open_current(0)?;
        }
    }

    /// Reads forward to the line with `seq`; `None` if the log ends first.
    pub fn find(&mut self, seq: u64, line: &mut CursorLine) -> Result<bool, ReadError> {
        while self.next_line(line)? {
            if line.seq == seq {
                return Ok(true);
            }
            if line.seq > seq {
                return Ok(false);
            }
        }
        Ok(false)
    }
}

/// The ledger's segment directory.
pub fn open_reader(dir: &Path) -> Result<LedgerReader, ReadError> {
    Ok(LedgerReader::open(dir)?)
}
