//! Model-based crash-consistency tests: random sequences of appends, injected
//! faults (torn writes, failing fsyncs, full disk) and crashes that lose what
//! was not synced, run against the real writer on the fault-injecting
//! storage. After every reopen the log must verify from genesis, hold every
//! acknowledged record unchanged at its seq, and have an end for every start.

#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use egress_ledger::checkpoint::CheckpointSigner;
use egress_ledger::record::{EndRecord, Entry, LineHash, Outcome, StartRecord, decode_line};
use egress_ledger::segment::{Chain, lines, sorted_segments};
use egress_ledger::storage::Storage;
use egress_ledger::storage::faulty::FaultyStorage;
use egress_ledger::writer::{AppendError, WriterCore, WriterOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Commit this many new entries (starts, and ends for open starts).
    Append(usize),
    /// Write this many entries lazily (durable only with a later sync).
    AppendLazy(usize),
    /// Make everything written durable.
    Sync,
    FailNextSync,
    TearNextAppend(usize),
    DiskFull(bool),
    /// Power loss keeping this per-mille of each file's unsynced bytes.
    Crash(u16),
    Reopen,
    /// Accept appends again after a failure, without a reopen.
    Heal,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..12).prop_map(Op::Append),
        3 => (1usize..6).prop_map(Op::AppendLazy),
        1 => Just(Op::Sync),
        1 => Just(Op::FailNextSync),
        1 => (0usize..400).prop_map(Op::TearNextAppend),
        1 => any::<bool>().prop_map(Op::DiskFull),
        2 => (0u16..=1000).prop_map(Op::Crash),
        1 => Just(Op::Reopen),
        2 => Just(Op::Heal),
    ]
}

struct Harness {
    storage: FaultyStorage,
    signer: Arc<CheckpointSigner>,
    options: WriterOptions,
    core: Option<WriterCore>,
    /// seq -> hash of every acknowledged line.
    acked: BTreeMap<u64, LineHash>,
    /// Lines written lazily: acknowledged by the next successful sync.
    lazy: BTreeMap<u64, LineHash>,
    /// Starts we know of whose end we have not sent (req by start seq).
    open: BTreeMap<u64, String>,
    /// Ends written lazily and not yet synced (a failure loses them).
    pending_ends: Vec<Entry>,
    /// Ends lost with failed writes, handed to the next heal.
    lost_ends: Vec<Entry>,
    next_req: u64,
    _keys: tempfile::TempDir,
}

impl Harness {
    fn new(segment_max_bytes: u64, checkpoint_every_records: u64) -> Harness {
        let keys = tempfile::tempdir().unwrap();
        let signer = Arc::new(CheckpointSigner::load_or_create(keys.path(), "model-test").unwrap());
        let mut h = Harness {
            storage: FaultyStorage::new(),
            signer,
            options: WriterOptions { segment_max_bytes, checkpoint_every_records },
            core: None,
            acked: BTreeMap::new(),
            lazy: BTreeMap::new(),
            open: BTreeMap::new(),
            pending_ends: Vec::new(),
            lost_ends: Vec::new(),
            next_req: 0,
            _keys: keys,
        };
        h.reopen();
        h
    }

    fn reopen(&mut self) {
        self.core = None;
        // Whatever was written lazily either survived or not: no promise.
        self.lazy.clear();
        self.pending_ends.clear();
        self.lost_ends.clear();
        let (core, report) =
            WriterCore::open(Arc::new(self.storage.clone()), Arc::clone(&self.signer), self.options.clone()).unwrap();
        self.core = Some(core);
        // Recovery ended every open start; our own bookkeeping follows suit.
        self.open.clear();
        self.check_log(&report.interrupted);
    }

    fn append(&mut self, n: usize) {
        self.append_with(n, false);
    }

    fn append_with(&mut self, n: usize, lazy: bool) {
        let mut entries = Vec::new();
        let mut ending = BTreeSet::new();
        for i in 0..n {
            let end_target = self.open.keys().find(|s| !ending.contains(*s)).copied();
            match end_target {
                Some(start_seq) if i % 2 == 1 => {
                    ending.insert(start_seq);
                    entries.push(Entry::End(EndRecord {
                        req: self.open[&start_seq].clone(),
                        start_seq,
                        status: Some(200),
                        bytes_sent: Some(7),
                        bytes_acked: None,
                        object_size: Some(7),
                        etag: None,
                        upstream_request_id: None,
                        upstream_id2: None,
                        duration_ms: Some(1),
                        outcome: Outcome::Complete,
                        error_code: None,
                        decision: None,
                    }));
                }
                _ => {
                    self.next_req += 1;
                    entries.push(Entry::Start(StartRecord {
                        req: format!("req-{}", self.next_req),
                        method: "GET".into(),
                        operation: "GetObject".into(),
                        bucket: Some("b".into()),
                        key: Some(format!("k{}", self.next_req)),
                        ..StartRecord::default()
                    }));
                }
            }
        }
        let core = self.core.as_mut().unwrap();
        let result = if lazy { core.write_lazy(entries.clone()) } else { core.commit(entries.clone(), false) };
        let durable = !lazy || !core.has_unsynced();
        match result {
            Ok(committed) => {
                assert_eq!(committed.appended.len(), entries.len());
                let target = if durable { &mut self.acked } else { &mut self.lazy };
                for (appended, _) in &committed.written {
                    target.insert(appended.seq, appended.hash);
                }
                if durable {
                    // A sync makes every earlier lazy write durable too.
                    self.acked.append(&mut self.lazy);
                    self.pending_ends.clear();
                } else {
                    self.pending_ends.extend(entries.iter().filter(|e| matches!(e, Entry::End(_))).cloned());
                }
                for (appended, entry) in committed.appended.iter().zip(&entries) {
                    match entry {
                        Entry::Start(s) => {
                            self.open.insert(appended.seq, s.req.clone());
                        }
                        Entry::End(e) => {
                            self.open.remove(&e.start_seq);
                        }
                        _ => {}
                    }
                }
            }
            Err(AppendError::Io(_) | AppendError::Poisoned(_)) => {
                // Nothing of this batch was acknowledged; the core now refuses
                // everything until healed or reopened. Its ends are kept for
                // the heal, so they count as sent.
                assert!(matches!(core.commit(vec![], true), Err(AppendError::Poisoned(_))));
                for entry in &entries {
                    if let Entry::End(e) = entry {
                        self.open.remove(&e.start_seq);
                    }
                }
                self.writes_failed();
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    /// The whole durable log: chain from genesis, every acknowledged line
    /// unchanged, every start ended.
    fn check_log(&self, interrupted: &[u64]) {
        let names = self.storage.list().unwrap();
        let segments = sorted_segments(names);
        let mut chain = Chain::genesis();
        let mut starts = BTreeSet::new();
        let mut hashes = BTreeMap::new();
        for (first_seq, name) in &segments {
            assert_eq!(*first_seq, chain.next_seq, "segment {name} starts at the next seq");
            let bytes = self.storage.read(name).unwrap();
            for line in lines(&bytes) {
                assert!(line.complete, "no partial line after recovery in {name}");
                let (header, hash) = chain.advance(line.bytes).unwrap();
                hashes.insert(header.seq, hash);
                match decode_line(line.bytes).unwrap().entry {
                    Entry::Start(_) => {
                        starts.insert(header.seq);
                    }
                    Entry::End(e) => {
                        assert!(starts.remove(&e.start_seq), "end for an unknown or ended start {}", e.start_seq);
                    }
                    _ => {}
                }
            }
        }
        let unended: Vec<_> = starts.iter().filter(|s| !self.open.contains_key(s)).collect();
        assert!(unended.is_empty(), "starts without an end that recovery should have ended: {unended:?}");
        for (seq, hash) in &self.acked {
            assert_eq!(hashes.get(seq), Some(hash), "acknowledged seq {seq} lost or changed");
        }
        for seq in interrupted {
            assert!(hashes.contains_key(seq));
        }
    }

    /// Lazily written ends are lost with a failure, like the failed batch's.
    fn writes_failed(&mut self) {
        self.lost_ends.append(&mut self.pending_ends);
        self.lost_ends.extend(self.core.as_mut().unwrap().take_failed_ends());
    }

    fn heal(&mut self) {
        let core = self.core.as_mut().unwrap();
        if core.poisoned().is_none() {
            return;
        }
        match core.heal(std::mem::take(&mut self.lost_ends)) {
            Ok(committed) => {
                // The heal cut back to the last fsync: lazily written lines
                // below its first line survived (a rotation synced them), the
                // others are gone, starts among them too.
                let boundary = committed.written[0].0.seq;
                let lazy = std::mem::take(&mut self.lazy);
                self.acked.extend(lazy.into_iter().filter(|(seq, _)| *seq < boundary));
                self.open.retain(|seq, _| *seq < boundary);
                for (appended, _) in &committed.written {
                    self.acked.insert(appended.seq, appended.hash);
                }
                // Without a reopen: every start we ended has its end on disk.
                self.check_log(&[]);
            }
            Err(_) => self.lost_ends = core.take_failed_ends(),
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Append(n) => self.append(*n),
            Op::AppendLazy(n) => self.append_with(*n, true),
            Op::Sync => {
                if self.core.as_mut().unwrap().sync().is_ok() {
                    self.acked.append(&mut self.lazy);
                    self.pending_ends.clear();
                } else {
                    self.writes_failed();
                }
            }
            Op::Heal => self.heal(),
            Op::FailNextSync => self.storage.fail_next_sync(),
            Op::TearNextAppend(n) => self.storage.tear_next_append(*n),
            Op::DiskFull(full) => self.storage.set_fail_appends(*full),
            Op::Crash(per_mille) => {
                self.core = None;
                self.storage.crash(|unsynced| unsynced * usize::from(*per_mille) / 1000);
                self.reopen();
            }
            Op::Reopen => {
                self.core = None;
                self.storage.clear_faults();
                self.reopen();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn acknowledged_records_survive_any_crash(
        ops in proptest::collection::vec(op(), 1..60),
        segment_max_bytes in prop_oneof![Just(1200u64), Just(64 * 1024)],
        checkpoint_every in prop_oneof![Just(5u64), Just(10_000)],
    ) {
        let mut h = Harness::new(segment_max_bytes, checkpoint_every);
        for op in &ops {
            h.run(op);
        }
        h.run(&Op::Crash(500));
        h.run(&Op::Append(3));
        h.run(&Op::Reopen);
    }
}

#[test]
fn torn_write_is_cut_and_noted_and_kept_aside() {
    let mut h = Harness::new(64 * 1024, 10_000);
    h.append(4);
    h.storage.tear_next_append(37);
    h.append(3);
    h.core = None;
    h.storage.crash(|n| n); // the torn bytes reached the disk
    let (_, report) = WriterCore::open(Arc::new(h.storage.clone()), Arc::clone(&h.signer), h.options.clone()).unwrap();
    assert_eq!(report.cut_bytes, 37);
    let names = h.storage.list().unwrap();
    let torn: Vec<_> = names.iter().filter(|n| n.contains(".torn-")).collect();
    assert_eq!(torn.len(), 1, "{names:?}");
    assert_eq!(h.storage.read(torn[0]).unwrap().len(), 37);
    let log = String::from_utf8(h.storage.read(&sorted_segments(names)[0].1).unwrap()).unwrap();
    assert!(log.contains("\"event\":\"recovery\""), "{log}");
    assert!(log.contains("\"cut_bytes\":37"), "{log}");
    assert!(log.contains("\"outcome\":\"interrupted\""), "the open starts got an end: {log}");
}

#[test]
fn failed_fsync_poisons_until_reopen() {
    let mut h = Harness::new(64 * 1024, 10_000);
    h.append(2);
    h.storage.fail_next_sync();
    let core = h.core.as_mut().unwrap();
    assert!(matches!(
        core.commit(vec![Entry::Note(egress_ledger::NoteRecord::new("x"))], false),
        Err(AppendError::Io(_))
    ));
    assert!(matches!(core.commit(vec![], true), Err(AppendError::Poisoned(_))));
    h.reopen();
    h.append(2);
    h.check_log(&[]);
}

#[test]
fn full_disk_heals_and_writes_the_lost_ends() {
    let mut h = Harness::new(64 * 1024, 10_000);
    h.append(4); // four starts, all open
    let open: Vec<u64> = h.open.keys().copied().take(2).collect();
    h.append_with(2, true); // a start and an end, written lazily, not yet synced
    h.storage.set_fail_appends(true);
    h.append(2); // a start and the next end: refused, the end kept
    assert!(h.core.as_mut().unwrap().poisoned().is_some());
    assert_eq!(h.lost_ends.len(), 2, "the lazy end and the refused one wait for the heal");
    h.heal(); // the disk is still full: nothing changes
    assert!(h.core.as_mut().unwrap().poisoned().is_some());
    assert_eq!(h.lost_ends.len(), 2);
    h.storage.set_fail_appends(false);
    h.heal();
    assert!(h.core.as_mut().unwrap().poisoned().is_none());
    assert!(h.lost_ends.is_empty());
    let segment = sorted_segments(h.storage.list().unwrap())[0].1.clone();
    let log = String::from_utf8(h.storage.read(&segment).unwrap()).unwrap();
    assert_eq!(log.matches("\"kind\":\"start\"").count(), 4, "the lazy and the refused start are gone: {log}");
    assert!(log.contains("\"event\":\"recovery\"") && log.contains("\"retried_ends\":2"), "{log}");
    for start in &open {
        assert!(log.contains(&format!("\"start_seq\":{start},")), "start {start} got its end: {log}");
    }
    h.append(2);
    // A reopen finds nothing to interrupt: the heal wrote both ends.
    h.core = None;
    let (_, report) = WriterCore::open(Arc::new(h.storage.clone()), Arc::clone(&h.signer), h.options.clone()).unwrap();
    assert!(report.interrupted.iter().all(|seq| !open.contains(seq)), "{report:?}");
    h.reopen();
    h.check_log(&[]);
}

#[test]
fn damage_before_the_tail_refuses_to_open() {
    let mut h = Harness::new(64 * 1024, 10_000);
    h.append(6);
    h.core = None;
    let name = sorted_segments(h.storage.list().unwrap())[0].1.clone();
    let mut bytes = h.storage.read(&name).unwrap();
    let second_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 20;
    bytes[second_line] ^= 0x01;
    h.storage.set_contents(&name, bytes);
    let err = WriterCore::open(Arc::new(h.storage.clone()), Arc::clone(&h.signer), h.options.clone()).unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
}

#[test]
fn crash_right_after_rotation_removes_the_empty_segment() {
    let mut h = Harness::new(600, 10_000);
    h.append(1);
    h.append(1);
    h.append(1);
    h.storage.fail_next_sync();
    h.append(4); // rotates, then the sync of the new segment fails
    h.core = None;
    h.storage.crash(|_| 0);
    h.reopen();
    h.append(3);
    h.check_log(&[]);
}

/// Shrunk by proptest: data read back from the page cache after a failed
/// fsync was built on without being synced; a later power loss then left a
/// partial line in the middle of the log. Fixed by syncing the tail on open
/// and the closed segment at every rotation.
#[test]
fn regression_unsynced_tail_read_back_after_failed_fsync() {
    let mut h = Harness::new(1200, 5);
    for op in [Op::FailNextSync, Op::Append(4), Op::Reopen, Op::Crash(500), Op::Append(3), Op::Reopen] {
        h.run(&op);
    }
}

/// Shrunk by proptest: a fault armed but not fired must not outlive the
/// process that armed it (the open-time sync consumed it and failed open).
#[test]
fn regression_armed_fault_does_not_survive_reopen() {
    let mut h = Harness::new(1200, 5);
    for op in [Op::FailNextSync, Op::Reopen, Op::Append(3), Op::Reopen] {
        h.run(&op);
    }
}

/// Shrunk by proptest: an `end` whose own push failed (the rotation before
/// it could not sync the closed segment) was neither written nor kept, so
/// the heal could not write it.
#[test]
fn regression_end_whose_push_failed_is_kept_for_the_heal() {
    let mut h = Harness::new(1200, 5);
    for op in [Op::Append(1), Op::Append(2), Op::Append(5), Op::FailNextSync, Op::Append(2), Op::Heal] {
        h.run(&op);
    }
}
