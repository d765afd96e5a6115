//! Sealed segments compressed with zstd, and pruning: the compactor thread
//! compresses every sealed segment and never the last; every reader (the
//! segment reader, the line cursor, verify, export, the index, the
//! writer's recovery) reads both forms and a mix of them; crashes in the
//! middle of a compaction are recovered; pruned history is reported as
//! such, and verify links a pruned ledger to history verified elsewhere.

#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egress_ledger::checkpoint::CheckpointSigner;
use egress_ledger::compact::{SealBoundary, compact_sealed, compact_segment, compress, decompress};
use egress_ledger::cursor::{CursorLine, LineCursor, ReadError};
use egress_ledger::export::{ExportFilter, ExportFormat, export};
use egress_ledger::prune::{PruneRefused, prune_segment};
use egress_ledger::reader::{LedgerReader, PrunedHistory};
use egress_ledger::record::{LineHash, line_hash};
use egress_ledger::segment::{
    SegmentForm, compressed_segment_name, form_of, is_segment_temp_file, parse_segment_file, segment_name,
};
use egress_ledger::storage::Storage;
use egress_ledger::storage::faulty::FaultyStorage;
use egress_ledger::verify::{ProblemKind, VerifyOptions, VerifyReport, verify};
use egress_ledger::writer::WriterCore;
use egress_ledger::{EndRecord, Entry, Ledger, LedgerConfig, Outcome, StartRecord, WriterOptions};

const SEGMENT_BYTES: u64 = 16 * 1024;

fn config(dir: &Path, compress_sealed: bool) -> LedgerConfig {
    let mut config = LedgerConfig::new(dir, "t");
    config.writer.segment_max_bytes = SEGMENT_BYTES;
    config.writer.checkpoint_every_records = 100;
    config.compress_sealed = compress_sealed;
    config
}

fn start(i: u64) -> Entry {
    Entry::Start(StartRecord {
        req: format!("req-{i:08}"),
        principal: Some(if i.is_multiple_of(3) { "carol" } else { "dave" }.into()),
        user_agent: Some("Boto3/1.43.11".into()),
        method: "GET".into(),
        operation: "GetObject".into(),
        bucket: Some("training-data".into()),
        key: Some(format!("imagenet/train/part-{:05}.parquet", i % 977)),
        range: Some(format!("bytes={}-{}", i * 1024, i * 1024 + 1023)),
        ..StartRecord::default()
    })
}

fn end(i: u64, start_seq: u64) -> Entry {
    Entry::End(EndRecord {
        req: format!("req-{i:08}"),
        start_seq,
        status: Some(206),
        bytes_sent: Some(1024),
        bytes_acked: None,
        object_size: Some(134_217_728),
        etag: None,
        upstream_request_id: Some(format!("{:016X}", i * 7919)),
        upstream_id2: None,
        duration_ms: Some(i % 50),
        outcome: Outcome::Complete,
        error_code: None,
        decision: None,
    })
}

/// Appends `pairs` start/end pairs numbered from `from`.
fn append_pairs(ledger: &Ledger, from: u64, pairs: u64) {
    for i in from..from + pairs {
        let s = ledger.append_blocking(start(i)).unwrap();
        ledger.append_blocking(end(i, s.seq)).unwrap();
    }
}

/// A closed ledger of `pairs` requests over many small segments.
fn written(dir: &Path, compress_sealed: bool, pairs: u64) {
    let (ledger, _) = Ledger::open(&config(dir, compress_sealed)).unwrap();
    append_pairs(&ledger, 0, pairs);
    ledger.close_blocking().unwrap();
}

fn ledger_dir(dir: &Path) -> PathBuf {
    dir.join("ledger")
}

fn forms(dir: &Path) -> Vec<(u64, SegmentForm)> {
    LedgerReader::open(&ledger_dir(dir))
        .unwrap()
        .segments()
        .iter()
        .map(|(first, name)| (*first, parse_segment_file(name).unwrap().1))
        .collect()
}

/// Compacts every segment but the last, as the compactor would with no writer.
fn compact_all_sealed(dir: &Path) {
    let last = *LedgerReader::open(&ledger_dir(dir)).unwrap().segments().last().map(|(first, _)| first).unwrap();
    for (seq, result) in compact_sealed(&ledger_dir(dir), &SealBoundary::at(last), || false).unwrap() {
        result.unwrap_or_else(|e| panic!("segment {seq}: {e}"));
    }
}

fn all_lines(reader: &LedgerReader) -> Vec<(u64, u64, Vec<u8>)> {
    let mut lines = Vec::new();
    reader
        .for_each_line(0, |line| {
            lines.push((line.segment, line.offset, line.bytes.clone()));
            true
        })
        .unwrap();
    lines
}

fn cursor_lines(ledger: &Ledger, reader: &LedgerReader, from: u64) -> Vec<(u64, u64, u64, Vec<u8>)> {
    let index = &ledger.store().unwrap().index;
    let mut cursor = LineCursor::open_at(reader, index, from).unwrap();
    let mut line = CursorLine::default();
    let mut out = Vec::new();
    while cursor.next_line(&mut line).unwrap() {
        if line.seq >= from {
            out.push((line.seq, line.segment, line.offset, line.bytes.clone()));
        }
    }
    out
}

fn verified(dir: &Path, options: &VerifyOptions) -> VerifyReport {
    verify(dir, options, |_| {}).unwrap()
}

#[test]
fn the_compactor_compresses_every_sealed_segment_and_never_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(&config(dir.path(), true)).unwrap();
    append_pairs(&ledger, 0, 300);
    // Woken by the rotations; a pass takes a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let forms = forms(dir.path());
        let (last, sealed) = forms.split_last().unwrap();
        if sealed.iter().all(|(_, form)| *form == SegmentForm::Zstd) {
            assert_eq!(last.1, SegmentForm::Plain, "the open segment stays plain");
            assert!(sealed.len() >= 10, "{} sealed segments", sealed.len());
            break;
        }
        assert!(Instant::now() < deadline, "sealed segments left plain: {forms:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Verified while the ledger is open, and after.
    let report = verified(dir.path(), &VerifyOptions::default());
    assert!(report.ok, "{report:?}");
    append_pairs(&ledger, 300, 10);
    ledger.close_blocking().unwrap();
    let report = verified(dir.path(), &VerifyOptions::default());
    assert!(report.ok, "{report:?}");
    assert_eq!(report.from_seq, 0);
    assert!(report.records >= 620);
    assert!(report.checkpoint_files > 0 && report.checkpoint_files_skipped == 0, "{report:?}");
    assert!(
        std::fs::read_dir(ledger_dir(dir.path()))
            .unwrap()
            .all(|e| { !is_segment_temp_file(&e.unwrap().file_name().into_string().unwrap()) })
    );
}

#[test]
fn every_reader_reads_the_same_lines_before_and_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), false, 400);
    let (ledger, _) = Ledger::open(&config(dir.path(), false)).unwrap();
    let before = LedgerReader::open(&ledger_dir(dir.path())).unwrap();
    let lines_before = all_lines(&before);
    let cursor_before = cursor_lines(&ledger, &before, 0);
    let head_before = before.head().unwrap();
    let bytes_before = before.total_bytes().unwrap();
    let segments_before: Vec<Vec<u8>> =
        before.segments().iter().map(|(_, name)| before.read_segment(name).unwrap()).collect();
    assert!(before.segments().len() > 10);

    // Half compacted (a mix of forms), then all.
    let half = before.segments()[before.segments().len() / 2].0;
    for (first, _) in before.segments().iter().filter(|(first, _)| *first < half) {
        compact_segment(&ledger_dir(dir.path()), *first, &SealBoundary::at(half)).unwrap().unwrap();
    }
    for stage in ["mixed", "all sealed compressed"] {
        let reader = LedgerReader::open(&ledger_dir(dir.path())).unwrap();
        assert_eq!(reader.segments().iter().map(|(f, _)| *f).collect::<Vec<_>>(), {
            before.segments().iter().map(|(f, _)| *f).collect::<Vec<_>>()
        });
        assert_eq!(all_lines(&reader), lines_before, "{stage}: for_each_line");
        assert_eq!(cursor_lines(&ledger, &reader, 0), cursor_before, "{stage}: cursor from 0");
        for (seq, _, _, bytes) in cursor_before.iter().step_by(37) {
            let from = cursor_lines(&ledger, &reader, *seq);
            assert_eq!(&from[0].3, bytes, "{stage}: cursor opened at seq {seq}");
            assert_eq!(from.len(), cursor_before.len() - *seq as usize);
        }
        for (segment, offset, bytes) in lines_before.iter().step_by(11) {
            assert_eq!(&reader.read_line_at(*segment, *offset).unwrap(), bytes, "{stage}: read_line_at");
        }
        let segments: Vec<Vec<u8>> =
            reader.segments().iter().map(|(_, name)| reader.read_segment(name).unwrap()).collect();
        assert_eq!(segments, segments_before, "{stage}: read_segment gives the plain bytes");
        assert_eq!(reader.head().unwrap(), head_before);
        // A reader listed before the compaction falls back to the compressed file.
        assert_eq!(all_lines(&before), lines_before, "{stage}: a reader listed before");
        assert_eq!(before.read_line_at(lines_before[3].0, lines_before[3].1).unwrap(), lines_before[3].2);
        assert_eq!(cursor_lines(&ledger, &before, 0), cursor_before, "{stage}: a cursor listed before");
        let report = verified(dir.path(), &VerifyOptions::default());
        assert!(report.ok, "{stage}: {report:?}");
        assert_eq!(report.bytes, segments_before.iter().map(|s| s.len() as u64).sum::<u64>(), "plain bytes");
        compact_all_sealed(dir.path());
    }
    let forms = forms(dir.path());
    assert!(forms[..forms.len() - 1].iter().all(|(_, f)| *f == SegmentForm::Zstd));
    assert_eq!(forms.last().unwrap().1, SegmentForm::Plain);
    let after = LedgerReader::open(&ledger_dir(dir.path())).unwrap().total_bytes().unwrap();
    assert!(after * 3 < bytes_before, "compressed: {after} bytes on disk, plain {bytes_before}");

    // Export and the index read the compressed segments too.
    let mut out = Vec::new();
    let reader = LedgerReader::open(&ledger_dir(dir.path())).unwrap();
    export(&reader, ExportFilter::default(), ExportFormat::Jsonl, &mut out).unwrap();
    let expected: Vec<u8> = lines_before.iter().flat_map(|(_, _, l)| [l.as_slice(), b"\n"].concat()).collect();
    assert_eq!(out, expected);
    let carol_before = ledger.store().unwrap().index.principal_starts("carol", None).unwrap();
    assert_eq!(ledger.reindex().unwrap() as usize, lines_before.len());
    assert_eq!(ledger.store().unwrap().index.principal_starts("carol", None).unwrap(), carol_before);
    ledger.close_blocking().unwrap();
}

/// Decompresses a segment, applies `change`, compresses it again.
fn tamper_compressed(dir: &Path, first_seq: u64, change: impl FnOnce(&mut Vec<u8>)) {
    let path = ledger_dir(dir).join(compressed_segment_name(first_seq));
    let mut plain = decompress(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut plain);
    std::fs::write(&path, compress(&plain).unwrap()).unwrap();
}

#[test]
fn a_byte_changed_inside_a_compressed_segment_is_found_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), false, 200);
    compact_all_sealed(dir.path());
    let reader = LedgerReader::open(&ledger_dir(dir.path())).unwrap();
    let (first_seq, name) = reader.segments()[4].clone();
    assert_eq!(form_of(&name), SegmentForm::Zstd);
    // Line 3 of that segment: a digit of its `duration_ms` changes. Its own
    // header still checks out; the next line's `prev` no longer does.
    let changed_seq = first_seq + 2;
    tamper_compressed(dir.path(), first_seq, |plain| {
        let third = plain.split(|b| *b == b'\n').take(2).map(|l| l.len() + 1).sum::<usize>();
        let line_len = plain[third..].iter().position(|b| *b == b'\n').unwrap();
        let line = &mut plain[third..third + line_len];
        let at = line.windows(3).position(|w| w == b"\"v\"").unwrap() + 4;
        assert_eq!(line[at], b'1');
        line[at] = b'2';
    });
    let report = verified(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code, 1, "{report:?}");
    let problem = report.problem.unwrap();
    assert_eq!(problem.kind, ProblemKind::Tampered);
    assert_eq!(problem.seq, Some(changed_seq), "{problem:?}");
    assert_eq!(problem.segment.as_deref(), Some(name.as_str()));
    assert_eq!(problem.line, Some(3));

    // A compressed file that is not a zstd frame any more: tampered, at its segment.
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), false, 100);
    compact_all_sealed(dir.path());
    let (first_seq, name) = LedgerReader::open(&ledger_dir(dir.path())).unwrap().segments()[2].clone();
    let path = ledger_dir(dir.path()).join(&name);
    let mut raw = std::fs::read(&path).unwrap();
    raw.truncate(raw.len() / 2);
    std::fs::write(&path, raw).unwrap();
    let report = verified(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code, 1, "{report:?}");
    let problem = report.problem.unwrap();
    assert_eq!((problem.seq, problem.segment.as_deref()), (Some(first_seq), Some(name.as_str())));
}

#[test]
fn a_crash_in_the_middle_of_a_compaction_leaves_a_ledger_that_opens_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), false, 150);
    let ledger = ledger_dir(dir.path());
    let segments = LedgerReader::open(&ledger).unwrap().segments().to_vec();
    let (a, b, c) = (segments[1].0, segments[2].0, segments[3].0);
    // a: crashed after the rename, before the plain file's removal (both forms).
    let plain_a = std::fs::read(ledger.join(segment_name(a))).unwrap();
    std::fs::write(ledger.join(compressed_segment_name(a)), compress(&plain_a).unwrap()).unwrap();
    // b: crashed while writing the temporary file (a partial frame).
    let plain_b = std::fs::read(ledger.join(segment_name(b))).unwrap();
    let partial = compress(&plain_b).unwrap()[..20].to_vec();
    std::fs::write(ledger.join(format!("{}.tmp", compressed_segment_name(b))), partial).unwrap();
    // c: a stale compressed file that is not what the plain file holds (both forms).
    let plain_c = std::fs::read(ledger.join(segment_name(c))).unwrap();
    std::fs::write(ledger.join(compressed_segment_name(c)), compress(b"garbage\n").unwrap()).unwrap();

    let reader = LedgerReader::open(&ledger).unwrap();
    assert_eq!(reader.segments().len(), segments.len(), "each segment listed once");
    assert!(reader.segments().iter().all(|(_, name)| form_of(name) == SegmentForm::Plain), "the plain file wins");
    let report = verified(dir.path(), &VerifyOptions::default());
    assert!(report.ok, "{report:?}");

    // Opening removes the temporary file (seen with the compactor off: its
    // own work in progress uses the same name)...
    let (opened, _) = Ledger::open(&config(dir.path(), false)).unwrap();
    assert!(!ledger.join(format!("{}.tmp", compressed_segment_name(b))).exists());
    opened.close_blocking().unwrap();
    drop(opened);
    // ...and the compactor redoes a and c.
    let (opened, _) = Ledger::open(&config(dir.path(), true)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while forms(dir.path()).iter().rev().skip(1).any(|(_, f)| *f == SegmentForm::Plain) {
        assert!(Instant::now() < deadline, "{:?}", forms(dir.path()));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!ledger.join(segment_name(a)).exists() && !ledger.join(segment_name(c)).exists());
    assert_eq!(decompress(&std::fs::read(ledger.join(compressed_segment_name(c))).unwrap()).unwrap(), plain_c);
    assert_eq!(decompress(&std::fs::read(ledger.join(compressed_segment_name(a))).unwrap()).unwrap(), plain_a);
    append_pairs(&opened, 1000, 5);
    opened.close_blocking().unwrap();
    let report = verified(dir.path(), &VerifyOptions::default());
    assert!(report.ok, "{report:?}");
}

#[test]
fn the_writer_reopens_onto_a_compressed_previous_segment_and_restores_a_compressed_last_one() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), false, 100);
    compact_all_sealed(dir.path());
    // Recovery reads the segment before the last, compressed.
    let (ledger, report) = Ledger::open(&config(dir.path(), false)).unwrap();
    assert!(report.restored_segments.is_empty());
    append_pairs(&ledger, 100, 20);
    ledger.close_blocking().unwrap();
    drop(ledger);
    assert!(verified(dir.path(), &VerifyOptions::default()).ok);

    // A crash right after a rotation: the new last segment empty, and the
    // one before it compressed already. Recovery removes the empty one and
    // appends to the one before, in its plain form again.
    compact_all_sealed(dir.path());
    let reader = LedgerReader::open(&ledger_dir(dir.path())).unwrap();
    let (last, _) = reader.segments().last().cloned().unwrap();
    let next = reader.head().unwrap().unwrap().0 + 1;
    compact_segment(&ledger_dir(dir.path()), last, &SealBoundary::at(next)).unwrap().unwrap();
    std::fs::write(ledger_dir(dir.path()).join(segment_name(next)), b"").unwrap();
    let (ledger, report) = Ledger::open(&config(dir.path(), false)).unwrap();
    assert_eq!(report.removed_segments, vec![segment_name(next)]);
    assert_eq!(report.restored_segments, vec![segment_name(last)]);
    assert!(!ledger_dir(dir.path()).join(compressed_segment_name(last)).exists());
    append_pairs(&ledger, 120, 3);
    ledger.close_blocking().unwrap();
    let report = verified(dir.path(), &VerifyOptions::default());
    assert!(report.ok, "{report:?}");
}

/// The writer heals after a failed write that followed a rotation: it cuts
/// the new segment back to nothing, removes it, and goes back to the one
/// before, which the compactor compressed meanwhile.
#[test]
fn healing_steps_back_onto_a_segment_compressed_meanwhile() {
    let keys = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let signer = Arc::new(CheckpointSigner::load_or_create(keys.path(), "t").unwrap());
    let options = WriterOptions { segment_max_bytes: 2048, checkpoint_every_records: 1000 };
    let (mut core, _) = WriterCore::open(Arc::new(storage.clone()), signer, options).unwrap();
    let mut i = 0;
    while core.segment() == 0 {
        core.commit(vec![start(i)], false).unwrap();
        i += 1;
    }
    let sealed = core.segment();
    let boundary = core.seal_boundary();
    assert_eq!(boundary.open_segment(), Some(sealed));
    // Full: the next line goes into a new segment, created before the
    // batch's write (which fails).
    while storage.contents(&segment_name(sealed)).unwrap().len() < 2048 {
        core.commit(vec![start(i)], false).unwrap();
        i += 1;
    }
    assert_eq!(core.segment(), sealed);
    storage.set_fail_appends(true);
    assert!(core.commit(vec![start(i)], false).is_err());
    let rotated_to = core.segment();
    assert!(rotated_to > sealed, "the failed batch rotated");
    assert_eq!(boundary.open_segment(), Some(rotated_to));
    // The compactor's work, on this storage: the segment left is compressed.
    let plain = storage.contents(&segment_name(sealed)).unwrap();
    storage.set_contents(&compressed_segment_name(sealed), compress(&plain).unwrap());
    storage.remove(&segment_name(sealed)).unwrap();

    storage.set_fail_appends(false);
    let healed = core.heal(Vec::new()).unwrap();
    // Recovery went back to the sealed segment, restored its plain form,
    // found it full, and rotated again for the heal's own note.
    assert!(storage.contents(&compressed_segment_name(sealed)).is_none());
    assert_eq!(storage.contents(&segment_name(sealed)).unwrap(), plain, "restored byte for byte");
    assert_eq!(core.segment(), rotated_to);
    assert_eq!(healed.written[0].0.segment, rotated_to);
    assert_eq!(boundary.open_segment(), Some(rotated_to), "the compactor is told");
    let opening = String::from_utf8(storage.contents(&segment_name(rotated_to)).unwrap()).unwrap();
    assert!(opening.starts_with(&format!("{{\"v\":1,\"seq\":{rotated_to},")), "{opening}");
    assert!(opening.contains("\"event\":\"segment\""));
    assert!(storage.list().unwrap().iter().all(|n| !is_segment_temp_file(n)));
}

#[test]
fn pruning_refuses_the_last_two_an_uncompressed_one_and_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), false, 120);
    let ledger = ledger_dir(dir.path());
    let firsts: Vec<u64> = LedgerReader::open(&ledger).unwrap().segments().iter().map(|(f, _)| *f).collect();
    let n = firsts.len();
    assert!(n >= 5);
    let refused = |seq: u64| {
        let e = prune_segment(&ledger, seq).unwrap_err();
        (e.kind(), PruneRefused::of(&e).cloned().unwrap(), e.to_string())
    };
    let (kind, why, _) = refused(firsts[0]);
    assert_eq!((kind, why), (std::io::ErrorKind::ResourceBusy, PruneRefused::NotCompressed { first_seq: firsts[0] }));
    compact_all_sealed(dir.path());
    let (kind, why, message) = refused(firsts[n - 1]);
    assert_eq!((kind, why), (std::io::ErrorKind::InvalidInput, PruneRefused::Last { first_seq: firsts[n - 1] }));
    assert!(message.contains("appends"), "{message}");
    let (_, why, message) = refused(firsts[n - 2]);
    assert_eq!(why, PruneRefused::NewestSealed { first_seq: firsts[n - 2] });
    assert!(message.contains("recovery"), "{message}");
    assert!(matches!(refused(firsts[1]).1, PruneRefused::NotOldest { .. }));
    assert!(matches!(refused(firsts[1] + 1).1, PruneRefused::NoSuchSegment { .. }));
    assert_eq!(LedgerReader::open(&ledger).unwrap().segments().len(), n, "nothing removed");
    prune_segment(&ledger, firsts[0]).unwrap();
    prune_segment(&ledger, firsts[0]).unwrap();
    assert_eq!(LedgerReader::open(&ledger).unwrap().first_seq(), firsts[1]);
}

/// Prunes the oldest `count` segments; returns the first local seq after.
fn prune_oldest(dir: &Path, count: usize) -> u64 {
    let firsts: Vec<u64> = LedgerReader::open(&ledger_dir(dir)).unwrap().segments().iter().map(|(f, _)| *f).collect();
    for first in &firsts[..count] {
        prune_segment(&ledger_dir(dir), *first).unwrap();
    }
    firsts[count]
}

#[test]
fn a_pruned_ledger_verifies_from_its_first_local_seq_and_says_pruned_before_it() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), false, 1500);
    compact_all_sealed(dir.path());
    let full = LedgerReader::open(&ledger_dir(dir.path())).unwrap();
    let hashes: Vec<LineHash> = all_lines(&full).iter().map(|(_, _, l)| line_hash(l)).collect();
    let first_local = prune_oldest(dir.path(), 40);
    assert!(first_local > 1024, "a whole index block and more pruned: {first_local}");

    let report = verified(dir.path(), &VerifyOptions::default());
    assert!(report.ok, "{report:?}");
    assert_eq!(report.from_seq, first_local);
    assert_eq!(report.records, hashes.len() as u64 - first_local);
    assert!(report.checkpoint_files_skipped > 0, "checkpoint files of pruned seqs: {report:?}");
    assert!(!report.start_checked);

    // The cursor says pruned, with the first local seq; the reader knows it.
    let (ledger, _) = Ledger::open(&config(dir.path(), false)).unwrap();
    let reader = LedgerReader::open(&ledger_dir(dir.path())).unwrap();
    assert_eq!(reader.first_seq(), first_local);
    assert!(reader.is_pruned(first_local - 1) && !reader.is_pruned(first_local));
    let index = &ledger.store().unwrap().index;
    let err = LineCursor::open_at(&reader, index, 5).unwrap_err();
    assert!(matches!(err, ReadError::Pruned { first_local_seq } if first_local_seq == first_local), "{err}");
    assert_eq!(
        err.to_string(),
        format!("the history before seq {first_local} is no longer on this host; it is in the archive")
    );
    let lines = cursor_lines(&ledger, &reader, first_local);
    assert_eq!(lines[0].0, first_local);
    assert_eq!(lines.len() as u64, hashes.len() as u64 - first_local);

    // An export asked for pruned history refuses; one from the first local seq works.
    let mut out = Vec::new();
    let err = export(&reader, ExportFilter::default(), ExportFormat::Jsonl, &mut out).unwrap_err();
    assert_eq!(PruneRefused::of(&err), None);
    assert_eq!(PrunedHistory::of(&err), Some(PrunedHistory { first_local_seq: first_local }));
    let from = ExportFilter { from_seq: Some(first_local), ..ExportFilter::default() };
    assert_eq!(export(&reader, from, ExportFormat::Jsonl, &mut out).unwrap(), hashes.len() as u64 - first_local);

    // The index rebuilt from scratch starts at the first local segment.
    let indexed = ledger.reindex().unwrap();
    assert_eq!(indexed, hashes.len() as u64 - first_local, "every local line");
    let carol = index.principal_starts("carol", None).unwrap();
    assert!(!carol.is_empty() && carol.iter().all(|s| *s >= first_local), "{:?}", carol.last());
    let end_seq = index.end_of(carol[0]).unwrap().unwrap();
    let mut cursor = LineCursor::open_at(&reader, index, end_seq).unwrap();
    let mut line = CursorLine::default();
    assert!(cursor.find(end_seq, &mut line).unwrap());
    append_pairs(&ledger, 5000, 3);
    ledger.close_blocking().unwrap();
    drop(ledger);

    // The writer reopens a pruned ledger, and it still verifies.
    let (ledger, _) = Ledger::open(&config(dir.path(), false)).unwrap();
    append_pairs(&ledger, 6000, 3);
    ledger.close_blocking().unwrap();
    let report = verified(dir.path(), &VerifyOptions::default());
    assert!(report.ok && report.from_seq == first_local, "{report:?}");
}

#[test]
fn a_start_from_elsewhere_must_match_where_the_local_ledger_can_tell() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), false, 300);
    compact_all_sealed(dir.path());
    let full = LedgerReader::open(&ledger_dir(dir.path())).unwrap();
    let hashes: Vec<LineHash> = all_lines(&full).iter().map(|(_, _, l)| line_hash(l)).collect();
    let head = hashes.len() as u64 - 1;
    let seed = |seq: u64| VerifyOptions { start: Some((seq, hashes[seq as usize - 1])), ..VerifyOptions::default() };
    let wrong = |seq: u64| VerifyOptions { start: Some((seq, hashes[seq as usize])), ..VerifyOptions::default() };

    // Nothing pruned: the line at the seed's seq must chain onto it.
    let report = verified(dir.path(), &seed(100));
    assert!(report.ok && report.start_checked, "{report:?}");
    let report = verified(dir.path(), &wrong(100));
    assert_eq!(report.exit_code, 3, "{report:?}");
    assert_eq!(report.problem.as_ref().unwrap().seq, Some(100));
    // Just past the head: the head's hash; further: the log was cut behind it.
    let report = verified(dir.path(), &seed(head + 1));
    assert!(report.ok && report.start_checked, "{report:?}");
    let past = VerifyOptions { start: Some((head + 1, hashes[1])), ..VerifyOptions::default() };
    assert_eq!(verified(dir.path(), &past).exit_code, 3);
    let beyond = VerifyOptions { start: Some((head + 10, hashes[1])), ..VerifyOptions::default() };
    assert_eq!(verified(dir.path(), &beyond).exit_code, 2);

    // Pruned up to the seed: the first local line's `prev` is what links them.
    let first_local = prune_oldest(dir.path(), 3);
    let report = verified(dir.path(), &seed(first_local));
    assert!(report.ok && report.start_checked && report.from_seq == first_local, "{report:?}");
    let report = verified(dir.path(), &wrong(first_local));
    assert_eq!(report.exit_code, 3, "{report:?}");
    assert_eq!(report.problem.as_ref().unwrap().kind, ProblemKind::Fork);
    assert_eq!(report.problem.as_ref().unwrap().seq, Some(first_local));
    // A seed inside the local history is checked there.
    assert!(verified(dir.path(), &seed(first_local + 7)).start_checked);
    assert_eq!(verified(dir.path(), &wrong(first_local + 7)).exit_code, 3);
    // The local ledger starts after the seed: nothing links to it, not a problem.
    let report = verified(dir.path(), &seed(first_local - 2));
    assert!(report.ok && !report.start_checked, "{report:?}");

    // The first local line's `prev` changed (and nothing else): the host
    // alone cannot tell, the seed can.
    let (_, first_name) = LedgerReader::open(&ledger_dir(dir.path())).unwrap().segments()[0].clone();
    assert_eq!(form_of(&first_name), SegmentForm::Zstd);
    let first_seq = first_local;
    tamper_compressed(dir.path(), first_seq, |plain| {
        let at = plain.windows(8).position(|w| w == b"\"prev\":\"").unwrap() + 8;
        plain[at] = if plain[at] == b'0' { b'1' } else { b'0' };
    });
    // The line's own hash changed too, so the next line breaks: a seed
    // check first would call it a fork, the chain calls it tampering.
    let report = verified(dir.path(), &seed(first_local));
    assert_eq!(report.exit_code, 1, "{report:?}");
}
