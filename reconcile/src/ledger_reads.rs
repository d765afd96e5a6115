//! The ledger's side of the join: every object read (a `GetObject`, or a
//! copy's source) that started in the window, reduced to what matching
//! needs, with its `end`.
//!
//! Read once, forward, with a [`LineCursor`] from the index block at or
//! before the window's start; the scan stops past the window once every
//! read in it has its end. What a report shows of a read beyond these few
//! numbers (key, request id, principal) is read again by seq for the
//! entries it lists ([`LedgerReads::details`]), so memory grows with the
//! reads in the window (about 260 bytes each, measured), never with their
//! keys.

use std::borrow::Cow;

use crate::fast_hash::FastMap;

use egress_ledger::cursor::{CursorLine, LineCursor, ReadError};
use egress_ledger::index::{BLOCK, EventIndex};
use egress_ledger::reader::LedgerReader;
use egress_ledger::record::{decode_header, parse_ts_micros};
use egress_ledger::segment::segment_name;
use egress_ledger::{Entry, Outcome};
use serde::{Deserialize, Serialize};

/// The operation whose reads AWS logs as `REST.GET.OBJECT` / `GetObject`.
const GET_OBJECT: &str = "GetObject";
/// Operations that read their `copy_source` (AWS logs the source's side as
/// `REST.COPY.OBJECT_GET` / `REST.COPY.PART_GET`).
const COPIES: [&str; 2] = ["CopyObject", "UploadPartCopy"];

/// A half-open time range, microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: u64,
    pub until: u64,
}

impl Window {
    #[must_use]
    pub fn contains(&self, micros: u64) -> bool {
        (self.since..self.until).contains(&micros)
    }

    /// The window widened by `pad` on both sides.
    #[must_use]
    pub fn padded(&self, pad: u64) -> Window {
        Window { since: self.since.saturating_sub(pad), until: self.until.saturating_add(pad) }
    }
}

/// A small index into [`Names`].
pub type NameId = u32;

/// Principal and bucket names, each stored once.
#[derive(Debug, Default)]
pub struct Names {
    names: Vec<Box<str>>,
    ids: FastMap<Box<str>, NameId>,
}

impl Names {
    pub fn intern(&mut self, name: &str) -> NameId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = NameId::try_from(self.names.len()).unwrap_or(NameId::MAX);
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    #[must_use]
    pub fn get(&self, id: NameId) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

/// One ledger `GetObject`, as matching sees it.
#[derive(Debug, Clone)]
pub struct LedgerRead {
    pub start_seq: u64,
    pub end_seq: Option<u64>,
    /// The start's `ts`.
    pub time_micros: u64,
    pub principal: NameId,
    pub bucket: NameId,
    /// Hash of (bucket, key), for the last-resort rule.
    pub object: u64,
    /// A `CopyObject` or `UploadPartCopy` reading its source: its bytes
    /// are the copy's answer, not the object's.
    pub copy: bool,
    pub bytes_sent: Option<u64>,
    pub status: Option<u16>,
    /// `None` while the read has no `end` (still in flight).
    pub outcome: Option<Outcome>,
    /// The end names the upstream's request id.
    pub has_upstream_id: bool,
    /// Per [`egress_ledger`]-independent source index: matched already.
    pub matched: [bool; 2],
}

impl LedgerRead {
    /// Whether the request reached the upstream, so that AWS logs it: the
    /// upstream answered (its request id is recorded) or bytes flowed.
    #[must_use]
    pub fn reached_upstream(&self) -> bool {
        self.has_upstream_id || matches!(self.outcome, Some(Outcome::Complete | Outcome::ClientAbort))
    }

    /// Refused by a limit after the upstream's answer had begun: the
    /// upstream sent (some of) the object to the proxy, none of it left.
    #[must_use]
    pub fn refused_after_head(&self) -> bool {
        self.outcome == Some(Outcome::Denied) && self.has_upstream_id
    }
}

/// What the report says of one ledger read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEvidence {
    /// Seq of the `start` record.
    pub seq: u64,
    /// Seq of the `end` record, if written.
    pub end_seq: Option<u64>,
    pub req: String,
    /// The start's `ts` (RFC 3339).
    pub time: String,
    pub principal: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub range: Option<String>,
    pub status: Option<u16>,
    pub bytes_sent: Option<u64>,
    /// The end's outcome (`complete`, `client_abort`, ...); absent while
    /// the read is in flight.
    #[schema(value_type = Option<String>)]
    pub outcome: Option<Outcome>,
    pub upstream_request_id: Option<String>,
}

/// The ledger reads of a window and the ways to find one.
#[derive(Debug, Default)]
pub struct LedgerReads {
    pub reads: Vec<LedgerRead>,
    pub names: Names,
    /// Our request ids (uuids) -> read.
    by_req: FastMap<u128, u32>,
    /// Request ids that are not uuids (older ledgers, tests) -> read.
    by_other_req: FastMap<Box<str>, u32>,
    /// Upstream request ids that are 16 hex digits (S3's own) -> read.
    by_upstream_id: FastMap<u64, u32>,
    /// Other upstream request ids (other S3 servers) -> read.
    by_other_upstream_id: FastMap<Box<str>, u32>,
    /// (bucket, key) -> reads without an upstream request id.
    by_object: FastMap<u64, Vec<u32>>,
    /// Ledger lines read to build this.
    pub lines_read: u64,
}

#[derive(Deserialize)]
struct Lean<'a> {
    seq: u64,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    req: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operation: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    principal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    bucket: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    copy_source: Option<LeanObject<'a>>,
    #[serde(default)]
    start_seq: Option<u64>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    bytes_sent: Option<u64>,
    #[serde(default)]
    outcome: Option<Outcome>,
    #[serde(borrow, default)]
    upstream_request_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LeanObject<'a> {
    #[serde(borrow)]
    bucket: Cow<'a, str>,
    #[serde(borrow)]
    key: Cow<'a, str>,
}

/// One ledger line as the merge needs it, parsed on a worker thread.
enum Parsed {
    /// A read that started in the window.
    Start {
        seq: u64,
        ts: u64,
        req: Option<Id<u128>>,
        principal: Option<String>,
        bucket: String,
        object: u64,
        copy: bool,
    },
    End {
        seq: u64,
        start_seq: u64,
        status: Option<u16>,
        bytes_sent: Option<u64>,
        outcome: Option<Outcome>,
        upstream_request_id: Option<Id<u64>>,
    },
    /// Any other line: its seq and time (for knowing when to stop).
    Other { seq: u64, ts: Option<u64> },
}

/// An id packed into bits where it has the usual form (a uuid, S3's 16 hex
/// digits), else kept as text: packed on the parsers' threads, so that the
/// merge allocates nothing for it.
enum Id<T> {
    Packed(T),
    Text(String),
}

impl Id<u128> {
    fn req(text: &str) -> Id<u128> {
        uuid_bits(text).map_or_else(|| Id::Text(text.to_owned()), Id::Packed)
    }
}

impl Id<u64> {
    fn upstream(text: &str) -> Id<u64> {
        hex_id(text).map_or_else(|| Id::Text(text.to_owned()), Id::Packed)
    }
}

/// Lines handed to a parser at once.
const BATCH_LINES: usize = 4096;

/// A batch of raw lines: the bytes, where each line ends, and where each
/// was in the ledger (segment, offset), to say where damage is.
struct Batch {
    no: u64,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    at: Vec<(u64, u64)>,
}

fn parse(line: &[u8], window: Window) -> Result<Parsed, String> {
    let lean: Lean<'_> = match serde_json::from_slice(line) {
        Ok(lean) => lean,
        // `Lean` reads the fields of starts and ends; a note or checkpoint
        // may use the same names for other things (a reconciliation note's
        // `status` is a word). Only a start or end that does not decode is
        // damage.
        Err(e) => {
            return match decode_header(line) {
                Ok((header, _)) if !matches!(header.kind, "start" | "end") => {
                    Ok(Parsed::Other { seq: header.seq, ts: parse_ts_micros(header.ts) })
                }
                _ => Err(e.to_string()),
            };
        }
    };
    Ok(match lean.kind.as_ref() {
        "start" => {
            let ts = parse_ts_micros(&lean.ts).unwrap_or(0);
            let object = match lean.operation.as_deref() {
                Some(GET_OBJECT) => Some((lean.bucket.unwrap_or_default(), lean.key.unwrap_or_default(), false)),
                Some(op) if COPIES.contains(&op) => lean.copy_source.map(|c| (c.bucket, c.key, true)),
                _ => None,
            };
            match object {
                Some((bucket, key, copy)) if window.contains(ts) => Parsed::Start {
                    seq: lean.seq,
                    ts,
                    object: object_hash(&bucket, &key),
                    req: lean.req.as_deref().map(Id::req),
                    principal: lean.principal.map(Cow::into_owned),
                    bucket: bucket.into_owned(),
                    copy,
                },
                _ => Parsed::Other { seq: lean.seq, ts: Some(ts) },
            }
        }
        "end" => match lean.start_seq {
            Some(start_seq) => Parsed::End {
                seq: lean.seq,
                start_seq,
                status: lean.status,
                bytes_sent: lean.bytes_sent,
                outcome: lean.outcome,
                upstream_request_id: lean.upstream_request_id.as_deref().filter(|id| !id.is_empty()).map(Id::upstream),
            },
            None => Parsed::Other { seq: lean.seq, ts: parse_ts_micros(&lean.ts) },
        },
        _ => Parsed::Other { seq: lean.seq, ts: parse_ts_micros(&lean.ts) },
    })
}

/// FNV-1a over bucket, a NUL and key: only ever compared for equality
/// between a ledger read and an AWS record, then confirmed by the rest of
/// the rule (time, bytes).
#[must_use]
pub fn object_hash(bucket: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bucket.bytes().chain(std::iter::once(0)).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// An S3 request id's 64 bits, from its 16 upper-case hex digits (as S3
/// writes them); `None` for anything else, which is kept as text.
fn hex_id(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// A uuid's 128 bits, from its 36-character text; `None` for anything else.
fn uuid_bits(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut out: u128 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        out = (out << 4) | u128::from(digit);
    }
    Some(out)
}

impl LedgerReads {
    /// Reads every object read (`GetObject`, and the source of a
    /// `CopyObject` or `UploadPartCopy`) whose start is in `window`, and
    /// its end.
    ///
    /// One thread reads lines, two parse them (JSON decoding is most of the
    /// cost), and this one puts them together in seq order; the readers
    /// stop when this one has seen enough.
    pub fn load(reader: &LedgerReader, index: &EventIndex, window: Window) -> Result<LedgerReads, ReadError> {
        let blocks = index.blocks_in_time(window.since, window.until)?;
        let first_block = blocks.iter().copied().min().unwrap_or(0);
        let first_seq = first_block * BLOCK;
        let mut cursor = LineCursor::open_at(reader, index, first_seq)?;
        let mut out = LedgerReads::default();
        // At most half the lines of the window's blocks are starts: room
        // for them at once instead of growing (and rehashing) many times.
        let expected = usize::try_from(blocks.len() as u64 * BLOCK / 2).unwrap_or(0).min(64 << 20);
        out.reads.reserve(expected);
        out.by_req.reserve(expected);
        out.by_upstream_id.reserve(expected);

        std::thread::scope(|scope| {
            let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Batch>(4);
            // Shared by the parsers, and dropped with the last of them: a
            // reader blocked on a full channel then stops.
            let work_rx = std::sync::Arc::new(std::sync::Mutex::new(work_rx));
            let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(u64, Vec<Result<Parsed, ReadError>>)>(4);
            // Batches parsed go back to the reader to be filled again: a
            // fresh 2 MiB buffer per batch would be fresh pages (zeroed by
            // the kernel) every time, a tenth of the run's CPU.
            let (free_tx, free_rx) = std::sync::mpsc::channel::<Batch>();
            let reading = scope.spawn(move || -> Result<(), ReadError> {
                let mut line = CursorLine::default();
                let mut no = 0;
                loop {
                    let mut batch = free_rx.try_recv().unwrap_or_else(|_| Batch {
                        no,
                        bytes: Vec::with_capacity(BATCH_LINES * 512),
                        ends: Vec::with_capacity(BATCH_LINES),
                        at: Vec::with_capacity(BATCH_LINES),
                    });
                    batch.no = no;
                    batch.bytes.clear();
                    batch.ends.clear();
                    batch.at.clear();
                    while batch.ends.len() < BATCH_LINES && cursor.next_raw(&mut line)? {
                        batch.bytes.extend_from_slice(&line.bytes);
                        batch.ends.push(batch.bytes.len());
                        batch.at.push((line.segment, line.offset));
                    }
                    let last = batch.ends.len() < BATCH_LINES;
                    if work_tx.send(batch).is_err() || last {
                        return Ok(());
                    }
                    no += 1;
                }
            });
            for _ in 0..2 {
                let done_tx = done_tx.clone();
                let free_tx = free_tx.clone();
                let work_rx = std::sync::Arc::clone(&work_rx);
                scope.spawn(move || {
                    loop {
                        let next = work_rx.lock().map(|rx| rx.recv());
                        let Ok(Ok(batch)) = next else { return };
                        let mut start = 0;
                        let parsed = batch
                            .ends
                            .iter()
                            .zip(&batch.at)
                            .map(|(&end, &(segment, offset))| {
                                let line = &batch.bytes[start..end];
                                start = end;
                                parse(line, window).map_err(|why| ReadError::Damaged {
                                    segment: segment_name(segment),
                                    offset,
                                    why,
                                })
                            })
                            .collect();
                        let no = batch.no;
                        // The reader may be gone (the merge stopped early).
                        let _ = free_tx.send(batch);
                        if done_tx.send((no, parsed)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop((done_tx, free_tx, work_rx));
            let merged = out.merge(done_rx, first_seq, window);
            // Whatever stopped the merge, the threads end once their
            // channels are gone; a read error beats a parse error.
            reading.join().unwrap_or(Ok(())).and(merged)
        })?;
        Ok(out)
    }

    /// Takes the parsed batches in order until the window is over and
    /// every read in it has its end, or the ledger ends.
    fn merge(
        &mut self,
        done: std::sync::mpsc::Receiver<(u64, Vec<Result<Parsed, ReadError>>)>,
        first_seq: u64,
        window: Window,
    ) -> Result<(), ReadError> {
        let mut waiting = std::collections::BTreeMap::new();
        let mut next = 0u64;
        // Reads whose end is not met yet.
        let mut open = 0usize;
        for (no, batch) in done {
            waiting.insert(no, batch);
            while let Some(batch) = waiting.remove(&next) {
                next += 1;
                for parsed in batch {
                    match parsed? {
                        Parsed::Start { seq, .. } | Parsed::End { seq, .. } | Parsed::Other { seq, .. }
                            if seq < first_seq => {}
                        Parsed::Start { seq, ts, req, principal, bucket, object, copy } => {
                            self.lines_read += 1;
                            self.push_start(seq, ts, req, principal.as_deref(), &bucket, object, copy);
                            open += 1;
                        }
                        Parsed::End { seq, start_seq, status, bytes_sent, outcome, upstream_request_id } => {
                            self.lines_read += 1;
                            if let Ok(i) = self.reads.binary_search_by_key(&start_seq, |r| r.start_seq)
                                && self.reads[i].end_seq.is_none()
                            {
                                let i = u32::try_from(i).unwrap_or(u32::MAX);
                                self.set_end(i, seq, status, bytes_sent, outcome, upstream_request_id);
                                open -= 1;
                            }
                        }
                        Parsed::Other { ts, .. } => {
                            self.lines_read += 1;
                            if open == 0 && ts.is_some_and(|ts| ts >= window.until) {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // one parsed start, taken apart by the match that calls it
    fn push_start(
        &mut self,
        seq: u64,
        ts: u64,
        req: Option<Id<u128>>,
        principal: Option<&str>,
        bucket: &str,
        object: u64,
        copy: bool,
    ) {
        let i = u32::try_from(self.reads.len()).unwrap_or(u32::MAX);
        let principal = self.names.intern(principal.unwrap_or("-"));
        let bucket = self.names.intern(bucket);
        self.reads.push(LedgerRead {
            start_seq: seq,
            end_seq: None,
            time_micros: ts,
            principal,
            bucket,
            object,
            copy,
            bytes_sent: None,
            status: None,
            outcome: None,
            has_upstream_id: false,
            matched: [false; 2],
        });
        match req {
            Some(Id::Packed(bits)) => {
                self.by_req.insert(bits, i);
            }
            Some(Id::Text(req)) => {
                self.by_other_req.insert(req.into_boxed_str(), i);
            }
            None => {}
        }
    }

    fn set_end(
        &mut self,
        i: u32,
        seq: u64,
        status: Option<u16>,
        bytes_sent: Option<u64>,
        outcome: Option<Outcome>,
        upstream_request_id: Option<Id<u64>>,
    ) {
        let Some(read) = self.reads.get_mut(i as usize) else { return };
        read.end_seq = Some(seq);
        read.bytes_sent = bytes_sent;
        read.status = status;
        read.outcome = outcome;
        match upstream_request_id {
            Some(id) => {
                read.has_upstream_id = true;
                match id {
                    Id::Packed(bits) => self.by_upstream_id.insert(bits, i),
                    Id::Text(id) => self.by_other_upstream_id.insert(id.into_boxed_str(), i),
                };
            }
            // Refused by the proxy before it went upstream: nothing in AWS's
            // logs can be it.
            _ if outcome == Some(Outcome::Denied) => {}
            _ => self.by_object.entry(read.object).or_default().push(i),
        }
    }

    /// The read whose end names this upstream request id.
    #[must_use]
    pub fn by_upstream_id(&self, request_id: &str) -> Option<u32> {
        match hex_id(request_id) {
            Some(bits) => self.by_upstream_id.get(&bits).copied(),
            None => self.by_other_upstream_id.get(request_id).copied(),
        }
    }

    /// The read with this `req` (the proxy's request id).
    #[must_use]
    pub fn by_req(&self, req: &str) -> Option<u32> {
        match uuid_bits(req) {
            Some(bits) => self.by_req.get(&bits).copied(),
            None => self.by_other_req.get(req).copied(),
        }
    }

    /// Reads of this object that have no upstream request id.
    #[must_use]
    pub fn without_upstream_id(&self, bucket: &str, key: &str) -> &[u32] {
        self.by_object.get(&object_hash(bucket, key)).map_or(&[], Vec::as_slice)
    }

    #[must_use]
    pub fn get(&self, i: u32) -> &LedgerRead {
        &self.reads[i as usize]
    }

    pub fn get_mut(&mut self, i: u32) -> &mut LedgerRead {
        &mut self.reads[i as usize]
    }

    /// The full evidence of one read, read again from the segments.
    pub fn details(reader: &LedgerReader, index: &EventIndex, read: &LedgerRead) -> Result<LedgerEvidence, ReadError> {
        let mut evidence = LedgerEvidence {
            seq: read.start_seq,
            end_seq: read.end_seq,
            req: String::new(),
            time: String::new(),
            principal: None,
            access_key_id: None,
            source_ip: None,
            bucket: None,
            key: None,
            range: None,
            status: read.status,
            bytes_sent: read.bytes_sent,
            outcome: read.outcome,
            upstream_request_id: None,
        };
        let mut line = CursorLine::default();
        if LineCursor::open_at(reader, index, read.start_seq)?.find(read.start_seq, &mut line)?
            && let Ok(decoded) = egress_ledger::record::decode_line(&line.bytes)
        {
            evidence.time = decoded.ts;
            if let Entry::Start(start) = decoded.entry {
                evidence.req = start.req;
                evidence.principal = start.principal;
                evidence.access_key_id = start.access_key_id;
                evidence.source_ip = start.source_ip;
                evidence.bucket = start.bucket;
                evidence.key = start.key;
                evidence.range = start.range;
            }
        }
        if let Some(end_seq) = read.end_seq
            && LineCursor::open_at(reader, index, end_seq)?.find(end_seq, &mut line)?
            && let Ok(decoded) = egress_ledger::record::decode_line(&line.bytes)
            && let Entry::End(end) = decoded.entry
        {
            evidence.upstream_request_id = end.upstream_request_id;
        }
        Ok(evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_pack_into_128_bits_and_nothing_else_does() {
        assert_eq!(uuid_bits("0190a5f2-0000-7000-8000-000000000001"), Some(0x0190_a5f2_0000_7000_8000_0000_0000_0001));
        assert_eq!(uuid_bits("0190A5F2-0000-7000-8000-000000000001"), None);
        assert_eq!(uuid_bits("0190a5f2x0000-7000-8000-000000000001"), None);
        assert_eq!(uuid_bits("r1"), None);
    }

    #[test]
    fn s3_request_ids_pack_into_64_bits_and_nothing_else_does() {
        assert_eq!(hex_id("3E57427F33A59F07"), Some(0x3E57_427F_33A5_9F07));
        // Lower case would pack to the same bits as its upper-case twin: kept as text.
        assert_eq!(hex_id("3e57427f33a59f07"), None);
        assert_eq!(hex_id("3E57427F33A59F0"), None);
        assert_eq!(hex_id("+E57427F33A59F07"), None);
    }

    #[test]
    fn object_hash_separates_bucket_from_key() {
        assert_ne!(object_hash("ab", "c"), object_hash("a", "bc"));
        assert_eq!(object_hash("a", "b"), object_hash("a", "b"));
    }
}
