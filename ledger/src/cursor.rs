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

use std::fs::File;
use std::io::{self, BufRead as _, BufReader, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use crate::index::{Anchor, BLOCK, EventIndex, IndexError};
use crate::reader::LedgerReader;
use crate::record::decode_header;
use crate::segment::segment_name;

/// Why reading lines failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the ledger: {0}")]
    Io(#[from] io::Error),
    #[error("reading the index: {0}")]
    Index(#[from] IndexError),
    #[error("{segment} at byte {offset}: {why}; run `egress-proxy ledger verify`")]
    Damaged { segment: String, offset: u64, why: String },
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
    /// First seqs of the segments listed at open, in order.
    segments: Vec<u64>,
    /// Position in `segments` of the open file.
    current: usize,
    file: Option<BufReader<File>>,
    /// Offset of the next line in the open file.
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
    pub fn open_at(reader: &LedgerReader, index: &EventIndex, seq: u64) -> Result<LineCursor, ReadError> {
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
        let mut cursor = LineCursor { dir: reader.dir().to_path_buf(), segments, current: 0, file: None, offset: 0 };
        if let Some(at) = best {
            cursor.current = cursor.segments.iter().position(|s| *s == at.segment).unwrap_or(0);
            cursor.open_current(at.offset)?;
        } else if !cursor.segments.is_empty() {
            cursor.open_current(0)?;
        }
        Ok(cursor)
    }

    fn open_current(&mut self, offset: u64) -> io::Result<()> {
        let path = self.dir.join(segment_name(self.segments[self.current]));
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        self.file = Some(BufReader::with_capacity(256 * 1024, file));
        self.offset = offset;
        Ok(())
    }

    fn segment_name(&self) -> String {
        self.segments.get(self.current).map_or_else(String::new, |s| segment_name(*s))
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
            let n = file.read_until(b'\n', &mut line.bytes)? as u64;
            let offset = self.offset;
            self.offset += n;
            if line.bytes.last() == Some(&b'\n') {
                line.bytes.pop();
                line.segment = self.segments.get(self.current).copied().unwrap_or(0);
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
