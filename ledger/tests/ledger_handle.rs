//! The threaded ledger handle: group commit under concurrency, failure
//! fan-out to every waiter of a batch, close with a final checkpoint, and
//! the sled indexes and principals on a real data dir.

#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

use std::collections::BTreeSet;
use std::sync::Arc;

use egress_ledger::checkpoint::CheckpointSigner;
use egress_ledger::storage::faulty::FaultyStorage;
use egress_ledger::verify::{VerifyOptions, verify};
use egress_ledger::{AppendError, Entry, Ledger, LedgerConfig, NoteRecord, StartRecord};

fn start(req: String, principal: &str) -> Entry {
    Entry::Start(StartRecord {
        req,
        principal: Some(principal.into()),
        method: "GET".into(),
        operation: "GetObject".into(),
        bucket: Some("data".into()),
        key: Some("k".into()),
        ..StartRecord::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_unique_gap_free_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(&LedgerConfig::new(dir.path(), "t")).unwrap();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50 {
                seqs.push(ledger.append(start(format!("{t}-{i}"), "alice")).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        for seq in task.await.unwrap() {
            assert!(all.insert(seq), "seq {seq} handed out twice");
        }
    }
    assert_eq!(all.len(), 64 * 50);
    ledger.close().await.unwrap();
    assert!(matches!(ledger.append(Entry::Note(NoteRecord::new("late"))).await, Err(AppendError::Closed)));

    let report = verify(dir.path(), &VerifyOptions::default(), |_| {}).unwrap();
    assert!(report.ok, "{report:?}");
    // The appends, plus the checkpoint written at close (count-based ones, if any, in between).
    assert!(report.records > 64 * 50);
    assert!(report.checkpoints_in_log >= 1);
    assert!(report.checkpoint_files >= 1);

    // Reopening recovers: every start was left open, so each gets an end.
    drop(ledger); // releases sled's lock on the state dir
    let (ledger, recovery) = Ledger::open(&LedgerConfig::new(dir.path(), "t")).unwrap();
    assert_eq!(recovery.interrupted.len(), 64 * 50);
    let alice = ledger.store().unwrap().index.principal_starts("alice", None).unwrap();
    assert_eq!(alice.len() as u64, 64 * 50, "every start indexed after recovery's catch-up and close");
    ledger.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_fails_every_waiter_and_then_everything() {
    let keys = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let signer = Arc::new(CheckpointSigner::load_or_create(keys.path(), "t").unwrap());
    let config = LedgerConfig::new(keys.path(), "t");
    let (ledger, _) = Ledger::open_on(Arc::new(storage.clone()), Arc::clone(&signer), &config).unwrap();
    ledger.append(Entry::Note(NoteRecord::new("before"))).await.unwrap();
    storage.fail_next_sync();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move { ledger.append(start(format!("r{i}"), "bob")).await }));
    }
    for task in tasks {
        let result = task.await.unwrap();
        assert!(matches!(result, Err(AppendError::Io(_) | AppendError::Poisoned(_))), "{result:?}");
    }
    assert!(matches!(ledger.append(Entry::Note(NoteRecord::new("after"))).await, Err(AppendError::Poisoned(_))));
    let _ = ledger.close().await;

    // Reopened, it works again and the acknowledged line is still first.
    let (ledger, _) = Ledger::open_on(Arc::new(storage.clone()), signer, &config).unwrap();
    ledger.append(Entry::Note(NoteRecord::new("reopened"))).await.unwrap();
    ledger.close().await.unwrap();
    let log = String::from_utf8(storage.contents(&egress_ledger::segment::segment_name(0)).unwrap()).unwrap();
    assert!(log.lines().next().unwrap().contains("\"event\":\"before\""));
    assert!(log.contains("\"event\":\"reopened\""));
}

#[test]
fn indexes_find_events_by_principal_bucket_and_end() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(&LedgerConfig::new(dir.path(), "t")).unwrap();
    let mut starts = Vec::new();
    for i in 0..3000u64 {
        let who = if i % 3 == 0 { "carol" } else { "dave" };
        let s = ledger.append_blocking(start(format!("r{i}"), who)).unwrap();
        let e = ledger
            .append_blocking(Entry::End(egress_ledger::EndRecord {
                req: format!("r{i}"),
                start_seq: s.seq,
                status: Some(200),
                bytes_sent: Some(i),
                object_size: Some(i),
                etag: None,
                upstream_request_id: None,
                upstream_id2: None,
                duration_ms: Some(0),
                outcome: egress_ledger::Outcome::Complete,
                error_code: None,
            }))
            .unwrap();
        starts.push((s.seq, e.seq, who));
    }
    ledger.close_blocking().unwrap();
    drop(ledger);
    let (ledger, _) = Ledger::open(&LedgerConfig::new(dir.path(), "t")).unwrap();
    let index = &ledger.store().unwrap().index;
    let indexed_next = index.indexed_next().unwrap();
    assert!(indexed_next >= 5 * 1024, "complete blocks are indexed: {indexed_next}");
    let carol: Vec<u64> =
        starts.iter().filter(|(s, _, w)| *w == "carol" && *s < indexed_next).map(|x| x.0).rev().collect();
    assert_eq!(index.principal_starts("carol", None).unwrap(), carol);
    let (s, e, _) = starts[100];
    assert_eq!(index.end_of(s).unwrap(), Some(e));
    let anchor = index.seek(s).unwrap().unwrap();
    assert!(anchor.seq <= s);

    // A rebuild from the segments gives the same answers.
    assert!(ledger.reindex().unwrap() > 0);
    assert_eq!(index.principal_starts("carol", None).unwrap(), carol);
    assert_eq!(index.end_of(s).unwrap(), Some(e));
    ledger.close_blocking().unwrap();
}
