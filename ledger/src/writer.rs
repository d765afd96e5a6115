//! The single writer of the ledger: recovery on open, then group commits.
//!
//! [`WriterCore`] is synchronous and owns the segment being appended to. It
//! turns a batch of entries into lines (assigning `seq`, `prev` and `ts`),
//! writes them with one `write` and makes them durable with one fdatasync;
//! only then is the batch acknowledged. A failed write or fsync poisons the
//! core: after a failed fsync nobody knows what the file holds (the kernel
//! may have dropped the dirty pages), so every later commit fails until
//! [`WriterCore::heal`] (or a reopen) cuts the segment back to what was last
//! made durable and reads the chain from disk again. The `end` records of
//! failed commits are kept ([`WriterCore::take_failed_ends`]) to be written
//! once the ledger heals: the requests they close did happen.
//!
//! The writer appends only to the last segment, always in its plain form.
//! Every segment before it is sealed, and may have been compressed by the
//! compactor (`crate::compact`): recovery reads the segment before the last
//! in either form, and if it has to step back to a segment that was
//! compressed (the last one was left empty by a crash and is removed), it
//! first restores that segment's plain file. The [`SealBoundary`] it shares
//! with the compactor says which segment it appends to.
//!
//! The thread that drives it, and the channel handles reach it by, live in
//! `crate::ledger::writer_thread`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::checkpoint::CheckpointSigner;
use crate::compact::{SealBoundary, decompress};
use crate::record::{
    CheckpointRecord, EndRecord, Entry, LineHash, NoteRecord, Outcome, decode_header, decode_line, encode_line,
    now_rfc3339,
};
use crate::segment::{Chain, SegmentForm, form_of, is_segment_temp_file, lines, segment_name, sorted_segments};
use crate::storage::{SegmentFile, Storage};

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// A segment is closed once it holds at least this many bytes.
    pub segment_max_bytes: u64,
    /// A checkpoint follows once this many records were appended since the last.
    pub checkpoint_every_records: u64,
}

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        WriterOptions { segment_max_bytes: 64 * 1024 * 1024, checkpoint_every_records: 10_000 }
    }
}

/// Where one appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: LineHash,
    /// First seq of the segment holding the line (names the file).
    pub segment: u64,
    /// Byte offset of the line in its segment.
    pub offset: u64,
    /// The line's `ts` as microseconds since the epoch.
    pub ts_micros: u64,
}

/// The result of one durable commit.
#[derive(Debug, Default)]
pub struct Committed {
    /// One per entry handed in, in order.
    pub appended: Vec<Appended>,
    /// Checkpoints written in this commit (the writer's own records).
    pub checkpoints: Vec<CheckpointRecord>,
    /// Every line written, the writer's own included, with its entry.
    pub written: Vec<(Appended, Entry)>,
}

/// Why an append failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    #[error("ledger write failed: {0}")]
    Io(String),
    #[error("ledger refuses appends after an earlier write failure ({0}); reopen it")]
    Poisoned(String),
    #[error("ledger is closed")]
    Closed,
}

/// Why the ledger could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("ledger storage: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "ledger is damaged in {segment} at line {line} (not a torn tail: valid lines follow): {why}; \
         run `egress-proxy ledger verify` and restore the segment from a copy"
    )]
    Damaged { segment: String, line: u64, why: String },
    #[error("ledger write during recovery failed: {0}")]
    Append(#[from] AppendError),
}

/// What recovery did on open.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from the tail of the last segment.
    pub cut_bytes: u64,
    /// Seqs of `start` records that got an `interrupted` end.
    pub interrupted: Vec<u64>,
    /// Empty trailing segments removed.
    pub removed_segments: Vec<String>,
    /// Compressed segments restored to their plain form, to be appended to
    /// again (the segment after them was left empty by a crash).
    pub restored_segments: Vec<String>,
}

/// The writer state: chain head, open segment, starts still waiting for ends.
pub struct WriterCore {
    storage: Arc<dyn Storage>,
    signer: Arc<CheckpointSigner>,
    options: WriterOptions,
    chain: Chain,
    file: Box<dyn SegmentFile>,
    segment: u64,
    segment_len: u64,
    /// Bytes of the current segment known durable (the last successful fsync).
    synced_len: u64,
    /// `start` seq -> its `req`, for every start without an end yet.
    open_starts: BTreeMap<u64, String>,
    since_checkpoint: u64,
    poisoned: Option<String>,
    /// `end` entries of commits that failed, to be written after a heal.
    failed_ends: Vec<Entry>,
    buf: Vec<u8>,
    /// Bytes were written to the file since its last fsync.
    unsynced: bool,
    /// Which segment this writer appends to, shared with the compactor.
    seal: Arc<SealBoundary>,
}

impl std::fmt::Debug for WriterCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterCore")
            .field("next_seq", &self.chain.next_seq)
            .field("segment", &self.segment)
            .field("segment_len", &self.segment_len)
            .field("open_starts", &self.open_starts.len())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// The state found at the end of the last segment.
struct Tail {
    chain: Chain,
    segment: u64,
    name: String,
    len: u64,
    open_starts: BTreeMap<u64, String>,
}

impl WriterCore {
    /// Opens the ledger in `storage`, recovering from a crash if needed: a
    /// torn tail is cut (kept beside the segment as `<segment>.torn-<offset>`)
    /// and noted, and every `start` without an `end` gets an `interrupted` end.
    pub fn open(
        storage: Arc<dyn Storage>,
        signer: Arc<CheckpointSigner>,
        options: WriterOptions,
    ) -> Result<(WriterCore, RecoveryReport), OpenError> {
        let mut report = RecoveryReport::default();
        let mut notes = Vec::new();
        remove_temp_files(storage.as_ref())?;
        let tail = find_tail(storage.as_ref(), &mut report, &mut notes)?;
        let seal = Arc::new(SealBoundary::at(tail.segment));

        let mut file = storage.open_append(&tail.name)?;
        // What we just read may have come from the page cache of a process
        // that died before its fsync: make it durable before building on it.
        file.sync()?;
        let mut core = WriterCore {
            storage,
            signer,
            options,
            chain: tail.chain,
            file,
            segment: tail.segment,
            segment_len: tail.len,
            synced_len: tail.len,
            open_starts: tail.open_starts,
            since_checkpoint: 0,
            poisoned: None,
            failed_ends: Vec::new(),
            buf: Vec::with_capacity(1 << 20),
            unsynced: false,
            seal,
        };
        if !core.open_starts.is_empty() {
            notes.push(
                NoteRecord::new("recovery")
                    .with("interrupted", core.open_starts.len())
                    .with("reason", "starts without an end after an unclean stop: each gets an `interrupted` end"),
            );
        }
        let mut entries: Vec<Entry> = notes.into_iter().map(Entry::Note).collect();
        for (&start_seq, req) in &core.open_starts {
            report.interrupted.push(start_seq);
            entries.push(Entry::End(EndRecord::unknown(req, start_seq, Outcome::Interrupted)));
        }
        if !entries.is_empty() {
            core.commit(entries, false)?;
        }
        Ok((core, report))
    }

    /// Seq the next line will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.chain.next_seq
    }

    /// Hash of the last line (64 zeros when empty).
    #[must_use]
    pub fn head_hash(&self) -> LineHash {
        self.chain.prev
    }

    /// Records appended since the last checkpoint.
    #[must_use]
    pub fn since_checkpoint(&self) -> u64 {
        self.since_checkpoint
    }

    /// Starts still waiting for their end.
    #[must_use]
    pub fn open_starts(&self) -> usize {
        self.open_starts.len()
    }

    /// First seq of the segment being appended to (it names the file).
    #[must_use]
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Which segments are sealed (all before the one appended to), for the
    /// compactor; the writer moves it as it rotates and recovers.
    #[must_use]
    pub fn seal_boundary(&self) -> Arc<SealBoundary> {
        Arc::clone(&self.seal)
    }

    /// Appends `entries` and, if due or `force_checkpoint` (and anything was
    /// appended since the last one), a checkpoint; durable on return, and so
    /// is everything written lazily before.
    pub fn commit(&mut self, entries: Vec<Entry>, force_checkpoint: bool) -> Result<Committed, AppendError> {
        self.commit_inner(entries, force_checkpoint, true)
    }

    /// Appends `entries` without an fsync of their own: they become durable
    /// with the next [`WriterCore::commit`] or [`WriterCore::sync`]. For
    /// records nobody waits on (an `end`), so that they ride along with the
    /// next fsync instead of costing one each. A checkpoint that falls due
    /// is still made durable at once.
    pub fn write_lazy(&mut self, entries: Vec<Entry>) -> Result<Committed, AppendError> {
        self.commit_inner(entries, false, false)
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> Result<(), AppendError> {
        if let Some(why) = &self.poisoned {
            return Err(AppendError::Poisoned(why.clone()));
        }
        self.sync_file().inspect_err(|e| self.poison(e))
    }

    /// Whether lines were written that are not durable yet.
    #[must_use]
    pub fn has_unsynced(&self) -> bool {
        self.unsynced
    }

    /// Why appends are refused, if they are (see [`WriterCore::heal`]).
    #[must_use]
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// The `end` entries of commits that failed since the last call, in order.
    /// Lines written lazily before the failure are not among them: whoever
    /// wrote them holds them (see `ledger::WriterThread`), and some may have
    /// become durable after all (a rotation syncs the segment it closes).
    pub fn take_failed_ends(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.failed_ends)
    }

    /// Accepts appends again after a write failure, without a restart: cuts
    /// the segment back to what the last successful fsync made durable,
    /// reads the chain head and the open starts from disk as an open does
    /// (without ending those starts: their requests are still running), and
    /// commits a `recovery` note followed by the `end` records of `retry`
    /// (those lost with the failure) whose start is open on disk, once each.
    /// Lines before the note (seq below its seq) are durable. If the
    /// storage still fails, the core stays poisoned and those `end` records
    /// are kept for the next try ([`WriterCore::take_failed_ends`]).
    pub fn heal(&mut self, mut retry: Vec<Entry>) -> Result<Committed, AppendError> {
        let Some(why) = self.poisoned.clone() else {
            return self.commit(retry, false);
        };
        let name = segment_name(self.segment);
        let mut report = RecoveryReport::default();
        let mut notes = Vec::new();
        // Held while the tail is found again: cutting the segment back can
        // leave it empty, and the tail then steps back to the segment
        // before, which the compactor must not be swapping meanwhile.
        let seal = Arc::clone(&self.seal);
        let mut open_segment = seal.lock();
        let reread = self
            .storage
            .truncate(&name, self.synced_len)
            .map_err(OpenError::from)
            .and_then(|()| find_tail(self.storage.as_ref(), &mut report, &mut notes))
            .and_then(|tail| {
                let mut file = self.storage.open_append(&tail.name)?;
                file.sync()?;
                Ok((tail, file))
            });
        // Until a heal succeeds nobody can say which segment is appended to.
        *open_segment = reread.as_ref().ok().map(|(tail, _)| tail.segment);
        drop(open_segment);
        let (tail, file) = match reread {
            Ok(found) => found,
            Err(e) => {
                self.failed_ends.extend(retry.into_iter().filter(|e| matches!(e, Entry::End(_))));
                return Err(AppendError::Io(format!("healing after `{why}`: {e}")));
            }
        };
        // An end whose start did not survive (it was never acknowledged) or
        // already has its end on disk would break the one-end-per-start rule.
        let mut ending = std::collections::BTreeSet::new();
        retry.retain(|entry| {
            matches!(entry, Entry::End(end)
                if tail.open_starts.contains_key(&end.start_seq) && ending.insert(end.start_seq))
        });
        self.chain = tail.chain;
        self.file = file;
        self.segment = tail.segment;
        self.segment_len = tail.len;
        self.synced_len = tail.len;
        self.open_starts = tail.open_starts;
        self.poisoned = None;
        self.unsynced = false;
        self.buf.clear();
        let note = NoteRecord::new("recovery")
            .with("reason", "appends failed; the segment was cut back to its last fsync and writing resumed")
            .with("error", why)
            .with("segment", name)
            .with("offset", self.synced_len)
            .with("retried_ends", retry.len());
        let mut entries: Vec<Entry> = notes.into_iter().map(Entry::Note).collect();
        entries.push(Entry::Note(note));
        entries.extend(retry);
        self.commit(entries, false)
    }

    fn poison(&mut self, error: &AppendError) {
        if let AppendError::Io(why) = error {
            self.poisoned = Some(why.clone());
        }
    }

    fn commit_inner(
        &mut self,
        entries: Vec<Entry>,
        force_checkpoint: bool,
        sync: bool,
    ) -> Result<Committed, AppendError> {
        let mut committed = Committed { appended: Vec::with_capacity(entries.len()), ..Committed::default() };
        let mut entries = entries.into_iter();
        let result = match &self.poisoned {
            Some(why) => Err(AppendError::Poisoned(why.clone())),
            None => self.write_entries(&mut entries, &mut committed, force_checkpoint, sync),
        };
        match result {
            Ok(()) => Ok(committed),
            Err(e) => {
                self.poison(&e);
                let failed = committed.written.into_iter().map(|(_, entry)| entry).chain(entries);
                self.failed_ends.extend(failed.filter(|entry| matches!(entry, Entry::End(_))));
                Err(e)
            }
        }
    }

    fn write_entries(
        &mut self,
        entries: &mut std::vec::IntoIter<Entry>,
        committed: &mut Committed,
        force_checkpoint: bool,
        sync: bool,
    ) -> Result<(), AppendError> {
        self.buf.clear();
        for entry in entries.by_ref() {
            let appended = match self.push(&entry) {
                Ok(appended) => appended,
                Err(e) => {
                    // Neither written nor left in `entries`: keep it here.
                    if matches!(entry, Entry::End(_)) {
                        self.failed_ends.push(entry);
                    }
                    return Err(e);
                }
            };
            committed.appended.push(appended);
            committed.written.push((appended, entry));
            if self.since_checkpoint >= self.options.checkpoint_every_records {
                self.push_checkpoint(committed)?;
            }
        }
        if force_checkpoint && self.since_checkpoint > 0 {
            self.push_checkpoint(committed)?;
        }
        self.flush()?;
        // A checkpoint's detached file is written once its record is durable.
        if sync || !committed.checkpoints.is_empty() {
            self.sync_file()?;
        }
        Ok(())
    }

    fn push_checkpoint(&mut self, committed: &mut Committed) -> Result<(), AppendError> {
        let cp = self.signer.sign(self.chain.next_seq - 1, &self.chain.prev, &now_rfc3339());
        let entry = Entry::Checkpoint(cp.clone());
        let appended = self.push(&entry)?;
        self.since_checkpoint = 0;
        committed.checkpoints.push(cp);
        committed.written.push((appended, entry));
        Ok(())
    }

    /// Encodes one entry into the batch buffer, rotating first if the segment is full.
    fn push(&mut self, entry: &Entry) -> Result<Appended, AppendError> {
        if self.segment_len + self.buf.len() as u64 >= self.options.segment_max_bytes {
            self.rotate()?;
        }
        let now = SystemTime::now();
        let ts = humantime::format_rfc3339_micros(now).to_string();
        let ts_micros = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let seq = self.chain.next_seq;
        let line = encode_line(seq, &self.chain.prev, &ts, entry);
        let hash = crate::record::line_hash(&line);
        let offset = self.segment_len + self.buf.len() as u64;
        self.buf.extend_from_slice(&line);
        self.buf.push(b'\n');
        self.chain = Chain { next_seq: seq + 1, prev: hash };
        self.since_checkpoint += 1;
        match entry {
            Entry::Start(start) => {
                self.open_starts.insert(seq, start.req.clone());
            }
            Entry::End(end) => {
                self.open_starts.remove(&end.start_seq);
            }
            Entry::Checkpoint(_) | Entry::Note(_) => {}
        }
        Ok(Appended { seq, hash, segment: self.segment, offset, ts_micros })
    }

    fn flush(&mut self) -> Result<(), AppendError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.unsynced = true;
        self.file.append(&self.buf).map_err(|e| AppendError::Io(e.to_string()))?;
        self.segment_len += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn sync_file(&mut self) -> Result<(), AppendError> {
        if self.unsynced {
            self.file.sync().map_err(|e| AppendError::Io(e.to_string()))?;
            self.unsynced = false;
            self.synced_len = self.segment_len;
        }
        Ok(())
    }

    /// Closes the current segment (durably) and opens the next, whose first
    /// line carries the starts still open so recovery need read only it.
    fn rotate(&mut self) -> Result<(), AppendError> {
        self.flush()?;
        if self.segment_len > 0 {
            // Even with nothing buffered or marked unsynced (lines read back
            // at open): a closed segment must be durable before a later one
            // is, or a power loss leaves a gap.
            self.file.sync().map_err(|e| AppendError::Io(e.to_string()))?;
            self.unsynced = false;
            self.synced_len = self.segment_len;
        }
        let first_seq = self.chain.next_seq;
        let name = segment_name(first_seq);
        self.file = self.storage.create(&name).map_err(|e| AppendError::Io(e.to_string()))?;
        // The segment just closed is durable and sealed: the compactor may take it.
        *self.seal.lock() = Some(first_seq);
        self.segment = first_seq;
        self.segment_len = 0;
        self.synced_len = 0;
        let open: Vec<serde_json::Value> =
            self.open_starts.iter().map(|(seq, req)| serde_json::json!({ "seq": seq, "req": req })).collect();
        let note = Entry::Note(NoteRecord::new("segment").with("open_starts", open));
        // The opening note is part of the caller's batch: it becomes durable
        // with it, and a segment left empty by a crash is removed on open.
        self.push(&note)?;
        Ok(())
    }
}

/// Finds the end of the log: the last segment, its torn tail cut (and
/// noted in `notes`), an empty trailing segment removed.
fn find_tail(
    storage: &dyn Storage,
    report: &mut RecoveryReport,
    notes: &mut Vec<NoteRecord>,
) -> Result<Tail, OpenError> {
    loop {
        let segments = sorted_segments(storage.list()?);
        let Some((first_seq, mut name)) = segments.last().cloned() else {
            storage.create(&segment_name(0))?;
            return Ok(Tail {
                chain: Chain::genesis(),
                segment: 0,
                name: segment_name(0),
                len: 0,
                open_starts: BTreeMap::new(),
            });
        };
        if form_of(&name) == SegmentForm::Zstd {
            name = restore_plain(storage, first_seq, &name)?;
            report.restored_segments.push(name.clone());
        }
        let chain = match segments.len() {
            1 if first_seq == 0 => Chain::genesis(),
            // The segments before it were pruned: take its first line's word
            // for what came before (verify says the same of a pruned ledger).
            1 => chain_before(storage, &name)?,
            n => chain_after(storage, &segments[n - 2].1)?,
        };
        if chain.next_seq != first_seq {
            return Err(OpenError::Damaged {
                segment: name,
                line: 1,
                why: format!("segment should start at seq {} (the previous one ends there)", chain.next_seq),
            });
        }
        let (tail, cut) = scan_last_segment(storage, first_seq, &name, chain)?;
        if let Some((offset, reason)) = cut {
            report.cut_bytes += tail_cut(storage, &name, offset)?;
            notes.push(
                NoteRecord::new("recovery")
                    .with("segment", name.clone())
                    .with("offset", offset)
                    .with("cut_bytes", report.cut_bytes)
                    .with("reason", reason)
                    .with("kept_in", format!("{name}.torn-{offset}")),
            );
        }
        // A segment created just before a crash holds nothing, not even its
        // opening note: drop it and continue from the one before.
        if tail.len == 0 && segments.len() > 1 {
            storage.remove(&name)?;
            report.removed_segments.push(name);
            continue;
        }
        return Ok(tail);
    }
}

/// The bytes of a segment as written (decompressed if it is compressed).
fn read_segment(storage: &dyn Storage, name: &str) -> Result<Vec<u8>, OpenError> {
    let raw = storage.read(name)?;
    match form_of(name) {
        SegmentForm::Plain => Ok(raw),
        SegmentForm::Zstd => {
            decompress(&raw).map_err(|e| OpenError::Damaged { segment: name.to_owned(), line: 0, why: e.to_string() })
        }
    }
}

/// Puts the plain form of a compressed segment back in place (through a
/// temporary file, so that a crash never leaves a partial plain file,
/// which would win over the compressed one), then removes the compressed
/// file. Returns the plain name.
fn restore_plain(storage: &dyn Storage, first_seq: u64, name: &str) -> Result<String, OpenError> {
    let bytes = read_segment(storage, name)?;
    let plain = segment_name(first_seq);
    let tmp = format!("{plain}.tmp");
    storage.write_side_file(&tmp, &bytes)?;
    storage.rename(&tmp, &plain)?;
    storage.remove(name)?;
    tracing::warn!(segment = %plain, "the last segment was compressed: restored its plain form to append to it");
    Ok(plain)
}

/// Removes what a crash left of a compaction or a restore (`segment-….tmp`).
fn remove_temp_files(storage: &dyn Storage) -> Result<(), OpenError> {
    for name in storage.list()? {
        if is_segment_temp_file(&name) {
            storage.remove(&name)?;
        }
    }
    Ok(())
}

/// Chain state before the first line of `name`, from that line's own `seq`
/// and `prev`: for the first local segment of a pruned ledger.
fn chain_before(storage: &dyn Storage, name: &str) -> Result<Chain, OpenError> {
    let bytes = read_segment(storage, name)?;
    let damaged = |why: String| OpenError::Damaged { segment: name.to_owned(), line: 1, why };
    let Some(first) = lines(&bytes).next() else {
        // Nothing to chain onto and nothing to check: an empty segment
        // after pruned history cannot be continued.
        return Err(damaged("the first local segment is empty and the history before it is pruned".into()));
    };
    let (header, prev) = decode_header(first.bytes).map_err(|e| damaged(e.to_string()))?;
    Ok(Chain { next_seq: header.seq, prev })
}

/// Chain state after the last line of a closed (full, synced) segment.
fn chain_after(storage: &dyn Storage, name: &str) -> Result<Chain, OpenError> {
    let bytes = read_segment(storage, name)?;
    let damaged = |why: String| OpenError::Damaged { segment: name.to_owned(), line: 0, why };
    let last = lines(&bytes).last().ok_or_else(|| damaged("a closed segment is empty".into()))?;
    if !last.complete {
        return Err(damaged("a closed segment ends with a partial line".into()));
    }
    let (header, _) = decode_header(last.bytes).map_err(|e| damaged(e.to_string()))?;
    Ok(Chain { next_seq: header.seq + 1, prev: crate::record::line_hash(last.bytes) })
}

/// Walks the last segment. Returns the tail and, if the end is torn, the
/// offset to cut at and why.
fn scan_last_segment(
    storage: &dyn Storage,
    first_seq: u64,
    name: &str,
    mut chain: Chain,
) -> Result<(Tail, Option<(usize, String)>), OpenError> {
    let bytes = storage.read(name)?;
    let mut open_starts = BTreeMap::new();
    let mut good_len = 0usize;
    let mut cut = None;
    let mut all = lines(&bytes).enumerate().peekable();
    while let Some((index, line)) = all.next() {
        let checked = if line.complete {
            chain.advance(line.bytes).map_err(|e| e.to_string())
        } else {
            Err("partial line (no newline): a write that never completed".to_owned())
        };
        if let Err(why) = checked {
            // Torn only if nothing readable follows; otherwise it is damage.
            let later_valid = all.any(|(_, l)| l.complete && crate::record::decode_header(l.bytes).is_ok());
            if later_valid {
                return Err(OpenError::Damaged { segment: name.to_owned(), line: index as u64 + 1, why });
            }
            cut = Some((line.offset, why));
            break;
        }
        good_len = line.offset + line.bytes.len() + 1;
        track_open_starts(&mut open_starts, line.bytes, index == 0 && first_seq > 0);
    }
    let tail = Tail { chain, segment: first_seq, name: name.to_owned(), len: good_len as u64, open_starts };
    Ok((tail, cut))
}

fn track_open_starts(open: &mut BTreeMap<u64, String>, line: &[u8], segment_opening: bool) {
    // The chain check passed, so a line that does not decode fully has a
    // payload we do not know (a newer kind): it opens or closes nothing.
    let Ok(decoded) = decode_line(line) else {
        return;
    };
    match decoded.entry {
        Entry::Start(start) => {
            open.insert(decoded.seq, start.req);
        }
        Entry::End(end) => {
            open.remove(&end.start_seq);
        }
        Entry::Note(note) if segment_opening && note.event == "segment" => {
            if let Some(serde_json::Value::Array(items)) = note.details.get("open_starts") {
                for item in items {
                    if let (Some(seq), Some(req)) = (item["seq"].as_u64(), item["req"].as_str()) {
                        open.insert(seq, req.to_owned());
                    }
                }
            }
        }
        Entry::Note(_) | Entry::Checkpoint(_) => {}
    }
}

/// Cuts `name` at `offset`, keeping the cut bytes in a side file.
fn tail_cut(storage: &dyn Storage, name: &str, offset: usize) -> Result<u64, OpenError> {
    let bytes = storage.read(name)?;
    let cut = &bytes[offset.min(bytes.len())..];
    storage.write_side_file(&format!("{name}.torn-{offset}"), cut)?;
    storage.truncate(name, offset as u64)?;
    Ok(cut.len() as u64)
}
