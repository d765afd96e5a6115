//! Derived indexes in sled, kept per block of [`BLOCK`] seqs so that sled
//! sees a few large writes instead of one small write per line (sled's space
//! amplification on many small keys would take more disk than the ledger).
//!
//! All of it can be rebuilt from the segments (`egress-proxy ledger
//! reindex`), so sled's weaker durability is acceptable: `indexed_next` says
//! where the index ends, and on open it catches up from there. The lines
//! from `indexed_next` to the head (at most one block plus what is in
//! flight) are not in sled; readers scan them from the segments.
//!
//! Trees (integers big-endian, so keys sort by number):
//! - `blocks`: block no -> [`BlockInfo`] (JSON): first/last `ts`, and anchors
//!   `(seq, segment, offset)` for the block's first line and every segment
//!   start inside it. This is the seq -> (segment, offset) index: seek to
//!   the anchor at or before a seq, then read forward.
//! - `block_time`: first ts micros ‖ block no -> () (time range queries).
//! - `event_principal`, `event_bucket`: name ‖ 0x00 ‖ block no -> the start
//!   seqs of that principal's (bucket's) events in the block, as u16 offsets
//!   from the block's first seq.
//! - `event_end`: block no of a start -> `(start seq, end seq)` pairs, u64
//!   each, sorted by start seq (ends arriving later are merged in).
//! - `meta`: `indexed_next` -> first seq not in the index (a block start).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::reader::LedgerReader;
use crate::record::{Entry, decode_line, parse_ts_micros};
use crate::writer::Appended;

/// Seqs per index block.
pub const BLOCK: u64 = 1024;

fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

fn name_key(name: &str, block: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 9);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key.extend_from_slice(&be(block));
    key
}

/// Where a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub seq: u64,
    pub segment: u64,
    pub offset: u64,
}

/// What the index keeps per block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    pub first_ts: u64,
    pub last_ts: u64,
    pub anchors: Vec<Anchor>,
}

/// The block being built (not yet in sled).
#[derive(Debug, Default)]
struct Pending {
    block: u64,
    info: Option<BlockInfo>,
    principals: BTreeMap<String, Vec<u16>>,
    buckets: BTreeMap<String, Vec<u16>>,
    ends: Vec<(u64, u64)>,
}

/// The block indexes, and the block being built by the indexer.
#[derive(Debug)]
pub struct EventIndex {
    blocks: sled::Tree,
    block_time: sled::Tree,
    principal: sled::Tree,
    bucket: sled::Tree,
    end: sled::Tree,
    meta: sled::Tree,
    pending: std::sync::Mutex<Option<Pending>>,
}

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    #[error("state store: {0}")]
    Store(#[from] sled::Error),
    #[error("reading segments: {0}")]
    Io(#[from] std::io::Error),
    #[error("{segment} line {line} does not decode: {why}")]
    Line { segment: String, line: u64, why: String },
    #[error("index holds an unreadable record: {0}")]
    Corrupt(String),
}

/// Former name, kept for callers of the catch-up step.
pub type CatchUpError = IndexError;

fn pack_pairs(pairs: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 16);
    for (a, b) in pairs {
        out.extend_from_slice(&be(*a));
        out.extend_from_slice(&be(*b));
    }
    out
}

fn unpack_pairs(bytes: &[u8]) -> Vec<(u64, u64)> {
    bytes.chunks_exact(16).filter_map(|c| Some((read_u64(c)?, read_u64(&c[8..])?))).collect()
}

fn pack_offsets(offsets: &[u16]) -> Vec<u8> {
    offsets.iter().flat_map(|o| o.to_be_bytes()).collect()
}

fn merge_pairs(existing: &[u8], new: &[(u64, u64)]) -> Vec<u8> {
    let mut pairs = unpack_pairs(existing);
    pairs.extend_from_slice(new);
    pairs.sort_unstable();
    pairs.dedup();
    pack_pairs(&pairs)
}

impl EventIndex {
    pub(crate) fn open(db: &sled::Db) -> sled::Result<EventIndex> {
        Ok(EventIndex {
            blocks: db.open_tree("blocks")?,
            block_time: db.open_tree("block_time")?,
            principal: db.open_tree("event_principal")?,
            bucket: db.open_tree("event_bucket")?,
            end: db.open_tree("event_end")?,
            meta: db.open_tree("meta")?,
            pending: std::sync::Mutex::new(None),
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first seq not in sled; lines from here to the head must be read
    /// from the segments.
    pub fn indexed_next(&self) -> sled::Result<u64> {
        Ok(self.meta.get("indexed_next")?.and_then(|v| read_u64(&v)).unwrap_or(0))
    }

    /// Empties every index (before a rebuild).
    pub fn clear(&self) -> sled::Result<()> {
        for tree in [&self.blocks, &self.block_time, &self.principal, &self.bucket, &self.end, &self.meta] {
            tree.clear()?;
        }
        *self.pending() = None;
        Ok(())
    }

    /// Indexes lines just written, in seq order; lines before `indexed_next`
    /// are skipped, so feeding the same lines twice is harmless.
    pub fn apply(&self, written: &[(Appended, Entry)]) -> Result<(), IndexError> {
        let indexed_next = self.indexed_next()?;
        let mut pending_guard = self.pending();
        let mut late_ends: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
        for (at, entry) in written {
            if at.seq < indexed_next {
                continue;
            }
            let block = at.seq / BLOCK;
            let pending = match pending_guard.as_mut() {
                Some(p) if p.block == block => p,
                _ => {
                    if let Some(done) = pending_guard.take() {
                        self.write_block(done)?;
                    }
                    pending_guard.insert(Pending { block, ..Pending::default() })
                }
            };
            let info = pending.info.get_or_insert_with(|| BlockInfo {
                first_ts: at.ts_micros,
                last_ts: at.ts_micros,
                anchors: vec![Anchor { seq: at.seq, segment: at.segment, offset: at.offset }],
            });
            info.last_ts = info.last_ts.max(at.ts_micros);
            if at.seq == at.segment && info.anchors.first().is_some_and(|a| a.seq != at.seq) {
                info.anchors.push(Anchor { seq: at.seq, segment: at.segment, offset: at.offset });
            }
            let offset_in_block = (at.seq - block * BLOCK) as u16;
            match entry {
                Entry::Start(s) => {
                    if let Some(p) = &s.principal {
                        pending.principals.entry(p.clone()).or_default().push(offset_in_block);
                    }
                    if let Some(b) = &s.bucket {
                        pending.buckets.entry(b.clone()).or_default().push(offset_in_block);
                    }
                }
                Entry::End(e) if e.start_seq / BLOCK == block => pending.ends.push((e.start_seq, at.seq)),
                Entry::End(e) => late_ends.entry(e.start_seq / BLOCK).or_default().push((e.start_seq, at.seq)),
                Entry::Checkpoint(_) | Entry::Note(_) => {}
            }
        }
        drop(pending_guard);
        for (block, pairs) in late_ends {
            self.end.update_and_fetch(be(block), |old| Some(merge_pairs(old.unwrap_or_default(), &pairs)))?;
        }
        Ok(())
    }

    /// Writes a complete block. (A partial block at close is not written:
    /// `indexed_next` stays at its start and the next open reads it again.)
    fn write_block(&self, pending: Pending) -> Result<(), IndexError> {
        let Some(info) = pending.info else {
            return Ok(());
        };
        let block = pending.block;
        let info_bytes = serde_json::to_vec(&info).map_err(|e| IndexError::Corrupt(e.to_string()))?;
        self.blocks.insert(be(block), info_bytes)?;
        let mut time_key = [0u8; 16];
        time_key[..8].copy_from_slice(&be(info.first_ts));
        time_key[8..].copy_from_slice(&be(block));
        self.block_time.insert(time_key, &[])?;
        let mut principals = sled::Batch::default();
        for (name, offsets) in &pending.principals {
            principals.insert(name_key(name, block), pack_offsets(offsets));
        }
        self.principal.apply_batch(principals)?;
        let mut buckets = sled::Batch::default();
        for (name, offsets) in &pending.buckets {
            buckets.insert(name_key(name, block), pack_offsets(offsets));
        }
        self.bucket.apply_batch(buckets)?;
        if !pending.ends.is_empty() {
            self.end.update_and_fetch(be(block), |old| Some(merge_pairs(old.unwrap_or_default(), &pending.ends)))?;
        }
        // Written last: a crash before it only means this block is indexed again.
        self.meta.insert("indexed_next", &be((block + 1) * BLOCK))?;
        Ok(())
    }

    /// Where to start reading to find `seq`: the anchor at or before it in
    /// its block. `None` if the block is not indexed yet.
    pub fn seek(&self, seq: u64) -> Result<Option<Anchor>, IndexError> {
        let Some(info) = self.block(seq / BLOCK)? else {
            return Ok(None);
        };
        Ok(info.anchors.iter().rev().find(|a| a.seq <= seq).copied())
    }

    /// The index record of one block.
    pub fn block(&self, block: u64) -> Result<Option<BlockInfo>, IndexError> {
        self.blocks
            .get(be(block))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| IndexError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Seq of the `end` of the event that started at `start_seq`, if indexed.
    pub fn end_of(&self, start_seq: u64) -> Result<Option<u64>, IndexError> {
        let Some(v) = self.end.get(be(start_seq / BLOCK))? else {
            return Ok(None);
        };
        let pairs = unpack_pairs(&v);
        Ok(pairs.binary_search_by_key(&start_seq, |p| p.0).ok().map(|i| pairs[i].1))
    }

    /// Start seqs of a principal's indexed events, newest first, below `before`.
    pub fn principal_starts(&self, principal: &str, before: Option<u64>) -> Result<Vec<u64>, IndexError> {
        starts_by_name(&self.principal, principal, before, usize::MAX)
    }

    /// Start seqs of indexed events on a bucket, newest first, below `before`.
    pub fn bucket_starts(&self, bucket: &str, before: Option<u64>) -> Result<Vec<u64>, IndexError> {
        starts_by_name(&self.bucket, bucket, before, usize::MAX)
    }

    /// Blocks whose first line is in `[since, until)`, plus the block before
    /// (it may reach into the range), newest first.
    pub fn blocks_in_time(&self, since: u64, until: u64) -> Result<Vec<u64>, IndexError> {
        let mut hi = [0u8; 16];
        hi[..8].copy_from_slice(&be(until));
        let mut out = Vec::new();
        for item in self.block_time.range(..hi).rev() {
            let (k, _) = item?;
            let first_ts = read_u64(&k).unwrap_or(0);
            out.push(read_u64(&k[8..]).unwrap_or(0));
            if first_ts < since {
                break;
            }
        }
        Ok(out)
    }

    /// Indexes every line from `indexed_next` on, read from the segments.
    /// Returns how many lines were read.
    pub fn catch_up(&self, reader: &LedgerReader) -> Result<u64, IndexError> {
        let from = self.indexed_next()?;
        *self.pending() = None;
        let mut batch = Vec::with_capacity(4096);
        let mut count = 0u64;
        let mut failure = None;
        reader.for_each_line(from, |line| {
            let decoded = match decode_line(&line.bytes) {
                Ok(d) => d,
                Err(e) => {
                    failure = Some(IndexError::Line {
                        segment: line.segment_name.clone(),
                        line: line.line_no,
                        why: e.to_string(),
                    });
                    return false;
                }
            };
            if decoded.seq < from {
                return true;
            }
            let appended = Appended {
                seq: decoded.seq,
                hash: crate::record::line_hash(&line.bytes),
                segment: line.segment,
                offset: line.offset,
                ts_micros: parse_ts_micros(&decoded.ts).unwrap_or(0),
            };
            batch.push((appended, decoded.entry));
            count += 1;
            if batch.len() >= 4096 {
                if let Err(e) = self.apply(&batch) {
                    failure = Some(e);
                    return false;
                }
                batch.clear();
            }
            true
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        self.apply(&batch)?;
        Ok(count)
    }
}

fn starts_by_name(tree: &sled::Tree, name: &str, before: Option<u64>, limit: usize) -> Result<Vec<u64>, IndexError> {
    let before = before.unwrap_or(u64::MAX);
    let lo = name_key(name, 0);
    let hi = name_key(name, before / BLOCK);
    let mut out = Vec::new();
    for item in tree.range(lo..=hi).rev() {
        let (k, v) = item?;
        let block = read_u64(&k[k.len() - 8..]).unwrap_or(0);
        for pair in v.chunks_exact(2).rev() {
            let seq = block * BLOCK + u64::from(u16::from_be_bytes([pair[0], pair[1]]));
            if seq < before {
                out.push(seq);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{EndRecord, LineHash, Outcome, StartRecord};

    fn at(seq: u64) -> Appended {
        Appended { seq, hash: LineHash::GENESIS, segment: 0, offset: seq * 100, ts_micros: 1_000_000 + seq }
    }

    fn start(principal: &str, bucket: &str) -> Entry {
        Entry::Start(StartRecord {
            req: "r".into(),
            principal: Some(principal.into()),
            bucket: Some(bucket.into()),
            method: "GET".into(),
            operation: "GetObject".into(),
            ..StartRecord::default()
        })
    }

    fn end(start_seq: u64) -> Entry {
        Entry::End(EndRecord {
            req: "r".into(),
            start_seq,
            status: Some(200),
            bytes_sent: Some(1),
            bytes_acked: None,
            object_size: None,
            etag: None,
            upstream_request_id: None,
            upstream_id2: None,
            duration_ms: None,
            outcome: Outcome::Complete,
            error_code: None,
            decision: None,
        })
    }

    #[test]
    fn blocks_are_written_when_complete_and_late_ends_merge() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let index = EventIndex::open(&db).unwrap();
        // Events: start at even seqs, end at the next odd seq, except seq 1000
        // whose end arrives in the next block.
        let mut lines = Vec::new();
        let mut seq = 0;
        while seq < 2 * BLOCK + 10 {
            let who = if seq % 4 == 0 { "alice" } else { "bob" };
            lines.push((at(seq), start(who, "data")));
            if seq == 1000 {
                lines.push((at(seq + 1), Entry::Note(crate::record::NoteRecord::new("x"))));
            } else {
                lines.push((at(seq + 1), end(seq)));
            }
            seq += 2;
        }
        lines.push((at(seq), end(1000)));
        index.apply(&lines).unwrap();
        assert_eq!(index.indexed_next().unwrap(), 2 * BLOCK, "the third block is still being built");
        assert_eq!(index.end_of(2).unwrap(), Some(3));
        assert_eq!(index.end_of(1000).unwrap(), Some(seq), "late end merged into the start's block");
        assert_eq!(index.end_of(2 * BLOCK).unwrap(), None, "current block not in sled");
        let alice = index.principal_starts("alice", None).unwrap();
        assert_eq!(alice.first(), Some(&(2 * BLOCK - 4)));
        assert!(alice.iter().all(|s| s % 4 == 0));
        assert_eq!(alice.len() as u64, 2 * BLOCK / 4);
        assert_eq!(index.principal_starts("alice", Some(8)).unwrap(), vec![4, 0]);
        assert_eq!(index.bucket_starts("data", None).unwrap().len() as u64, BLOCK);
        assert_eq!(index.seek(5).unwrap(), Some(Anchor { seq: 0, segment: 0, offset: 0 }));
        assert_eq!(index.blocks_in_time(1_000_000 + BLOCK + 5, u64::MAX).unwrap(), vec![1]);
        assert_eq!(index.blocks_in_time(0, 1_000_000 + BLOCK).unwrap(), vec![0]);

        // Feeding the same lines again changes nothing.
        index.apply(&lines).unwrap();
        assert_eq!(index.principal_starts("alice", None).unwrap(), alice);
    }
}
