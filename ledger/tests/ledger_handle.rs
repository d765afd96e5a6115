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
async fn concurrent_appends_get_unique_gap_free_seqs_and_see_them_in_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(&LedgerConfig::new(dir.path(), "t")).unwrap();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50 {
                let seq = ledger.append(start(format!("{t}-{i}"), "alice")).await.unwrap().seq;
                // An appender that heard back sees its line in the head.
                let head = ledger.head().records;
                assert!(head > seq, "head at {head} records after seq {seq} was committed");
                seqs.push(seq);
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
                bytes_acked: None,
                object_size: Some(i),
                etag: None,
                upstream_request_id: None,
                upstream_id2: None,
                duration_ms: Some(0),
                outcome: egress_ledger::Outcome::Complete,
                error_code: None,
                decision: None,
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

/// `submit` queues without waking the writer, except when it waits with no
/// deadline: a submit to an idle ledger is committed within its window, one
/// under load rides along with the next append, and a close commits what is
/// queued and refuses what comes after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_entries_are_committed_by_the_window_the_next_append_or_close() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(&LedgerConfig::new(dir.path(), "t")).unwrap();
    let first = ledger.append(Entry::Note(NoteRecord::new("first"))).await.unwrap();

    // Nothing else is appended, so only the writer's own look at the queue
    // (while busy, within a second of a commit) or the wake-up (when idle)
    // can bring a submitted note to disk.
    let committed_within = |records: u64| {
        let ledger = ledger.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while ledger.head().records < records {
                assert!(std::time::Instant::now() < deadline, "the submitted note was never committed");
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    ledger.submit(Entry::Note(NoteRecord::new("busy-submit"))).unwrap();
    committed_within(first.seq + 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    ledger.submit(Entry::Note(NoteRecord::new("idle-submit"))).unwrap();
    committed_within(first.seq + 3).await;

    // Submitted, then an append: both in one commit, the older one first.
    ledger.submit(Entry::Note(NoteRecord::new("rides-along"))).unwrap();
    let after = ledger.append(Entry::Note(NoteRecord::new("appended"))).await.unwrap();
    assert_eq!(after.seq, first.seq + 4, "the submitted note went in before the append");

    // Queued just before a close: on disk when the close returns.
    ledger.submit(Entry::Note(NoteRecord::new("before-close"))).unwrap();
    ledger.close().await.unwrap();
    assert!(matches!(ledger.submit(Entry::Note(NoteRecord::new("late"))), Err(AppendError::Closed)));

    let report = verify(dir.path(), &VerifyOptions::default(), |_| {}).unwrap();
    assert!(report.ok, "{report:?}");
    let log = String::from_utf8(
        std::fs::read(dir.path().join("ledger").join(egress_ledger::segment::segment_name(0))).unwrap(),
    )
    .unwrap();
    let events: Vec<&str> = ["first", "busy-submit", "idle-submit", "rides-along", "appended", "before-close"]
        .into_iter()
        .filter(|e| log.contains(&format!("\"event\":\"{e}\"")))
        .collect();
    assert_eq!(events.len(), 6, "every note is in the log: {events:?}");
    assert!(!log.contains("\"event\":\"late\""));
    let positions: Vec<usize> = events.iter().map(|e| log.find(&format!("\"event\":\"{e}\"")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in submission order");
}
