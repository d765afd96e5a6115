//! The shipper over a real ledger into an in-memory archive, and the
//! archive verified alone: shipping, resuming, outages, tampering,
//! divergence, pruning.
#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

use std::sync::Arc;
use std::time::Duration;

use egress_archive::layout::{Layout, LinesKind};
use egress_archive::location::{ArchiveUrl, Origin};
use egress_archive::shipper::{ShipError, Shipper, ShipperConfig};
use egress_archive::store::{MemoryStore, ObjectStore};
use egress_archive::verify::{ArchiveVerifyOptions, verify_archive};
use egress_ledger::record::{Entry, NoteRecord};
use egress_ledger::verify::ProblemKind;
use egress_ledger::{Ledger, LedgerConfig};

const ORIGIN: &str = "egress-proxy@test";

fn open(dir: &std::path::Path) -> Ledger {
    open_with(dir, 4096)
}

fn open_with(dir: &std::path::Path, segment_max_bytes: u64) -> Ledger {
    let mut config = LedgerConfig::new(dir, ORIGIN);
    config.writer.segment_max_bytes = segment_max_bytes;
    Ledger::open(&config).unwrap().0
}

fn config(dir: &std::path::Path) -> ShipperConfig {
    ShipperConfig {
        data_dir: dir.to_path_buf(),
        url: "s3://archive/ledger".parse::<ArchiveUrl>().unwrap(),
        origin: ORIGIN.parse::<Origin>().unwrap(),
        retention: Some(Duration::from_hours(24)),
        local_retention: None,
        interval: Duration::from_secs(1),
        max_lag: Duration::from_mins(5),
    }
}

fn layout() -> Layout {
    Layout::new(&"s3://archive/ledger".parse().unwrap(), &ORIGIN.parse().unwrap())
}

async fn write(ledger: &Ledger, n: usize, tag: &str) {
    for i in 0..n {
        let note = NoteRecord::new("test").with("i", i).with("tag", tag).with("pad", "x".repeat(200));
        ledger.append(Entry::Note(note)).await.unwrap();
    }
}

/// Waits for the compactor to have compressed every sealed segment.
fn wait_compacted(dir: &std::path::Path) {
    for _ in 0..200 {
        let reader = egress_ledger::reader::LedgerReader::open(&dir.join("ledger")).unwrap();
        let segments = reader.segments();
        if segments[..segments.len() - 1]
            .iter()
            .all(|(_, name)| std::path::Path::new(name).extension().is_some_and(|e| e == "zst"))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the compactor did not compress the sealed segments");
}

async fn verify(store: &Arc<MemoryStore>) -> egress_archive::verify::ArchiveReport {
    verify_archive(Arc::clone(store), &layout(), ORIGIN, ArchiveVerifyOptions::default()).await.unwrap()
}

fn keys_of(store: &MemoryStore, folder: &str) -> Vec<String> {
    store.keys().into_iter().filter(|k| k.contains(folder)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_history_verifies_from_the_archive_alone() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    write(&ledger, 60, "a").await;
    ledger.checkpoint().await.unwrap();
    wait_compacted(dir.path());
    let store = Arc::new(MemoryStore::default());
    let mut shipper = Shipper::new(Arc::clone(&store), config(dir.path()), None).unwrap();
    shipper.round().await.unwrap();

    let segments = keys_of(&store, "/segments/");
    assert!(segments.len() >= 3, "{segments:?}");
    assert_eq!(keys_of(&store, "/parts/").len(), 1, "the open segment's lines go as one part");
    assert_eq!(keys_of(&store, "/checkpoints/").len(), 1);
    assert_eq!(keys_of(&store, "/keys/").len(), 1);
    let head = ledger.head();
    let status = shipper.status().snapshot(None);
    assert_eq!(status.shipped_seq, Some(head.records - 1));
    assert_eq!(status.lag_records, 0);

    let report = verify(&store).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.head_seq, Some(head.records - 1));
    assert_eq!(report.head, Some(head.hash.to_hex()));
    assert_eq!(report.records, head.records);
    assert_eq!(report.checkpoint_objects, 1);
    assert!(report.checkpoints_in_log >= 1);

    // More lines: sealed segments replace the part that held some of them.
    write(&ledger, 40, "b").await;
    wait_compacted(dir.path());
    shipper.round().await.unwrap();
    let report = verify(&store).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.head_seq, Some(ledger.head().records - 1));
    assert!(report.parts_checked_by_name >= 1, "the first part is now inside a segment: {report:?}");

    // A round with nothing new uploads nothing.
    let before = store.keys();
    shipper.round().await.unwrap();
    assert_eq!(store.keys(), before);
    ledger.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_byte_in_a_shipped_segment_is_found_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    write(&ledger, 60, "a").await;
    wait_compacted(dir.path());
    let store = Arc::new(MemoryStore::default());
    Shipper::new(Arc::clone(&store), config(dir.path()), None).unwrap().round().await.unwrap();

    let key = keys_of(&store, "/segments/")[1].clone();
    let object = layout().parse_lines_key(LinesKind::Segment, &key).unwrap();
    let lines = zstd::decode_all(store.get(&key, None, u64::MAX).await.unwrap().as_slice()).unwrap();
    let text = String::from_utf8(lines).unwrap();
    // The third line of the object: its `"i":N` becomes `"i":9N`.
    let mut out: Vec<String> = text.lines().map(str::to_owned).collect();
    out[2] = out[2].replacen("\"i\":", "\"i\":9", 1);
    let tampered = out.join("\n") + "\n";
    store.replace(&key, zstd::bulk::compress(tampered.as_bytes(), 3).unwrap());

    let report = verify(&store).await;
    assert!(!report.ok);
    let problem = report.problem.unwrap();
    assert_eq!(problem.kind, ProblemKind::Tampered);
    // The changed line's successor no longer chains: the first bad seq is
    // the one after the edited line.
    assert_eq!(problem.seq, Some(object.first + 3), "{problem:?}");
    assert_eq!(problem.segment.as_deref(), Some(key.as_str()));

    // A deleted object is a gap.
    store.replace(&key, zstd::bulk::compress(text.as_bytes(), 3).unwrap());
    assert!(verify(&store).await.ok);
    store.remove(&key);
    let report = verify(&store).await;
    assert_eq!(report.problem.as_ref().unwrap().kind, ProblemKind::Tampered);
    assert_eq!(report.problem.unwrap().seq, Some(object.first));
    ledger.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_shipping_and_a_crash_ships_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    // One segment: every upload is a part.
    let ledger = open_with(dir.path(), 1 << 20);
    write(&ledger, 5, "a").await;
    let store = Arc::new(MemoryStore::default());
    let mut shipper = Shipper::new(Arc::clone(&store), config(dir.path()), None).unwrap();
    shipper.round().await.unwrap();

    store.set_down(true);
    write(&ledger, 3, "b").await;
    assert!(matches!(shipper.round().await, Err(ShipError::Store(_))));
    let status = shipper.status().snapshot(None);
    assert_eq!(status.lag_records, 3);
    assert_eq!(status.failures_in_a_row, 1);
    assert!(status.last_error.is_some());
    store.set_down(false);
    shipper.round().await.unwrap();
    assert_eq!(shipper.status().snapshot(None).lag_records, 0);

    // A crash after an upload and before the state file recorded it: the
    // state file from before the upload comes back.
    let state = dir.path().join("archive/state.json");
    let saved = std::fs::read(&state).unwrap();
    write(&ledger, 2, "c").await;
    shipper.round().await.unwrap();
    std::fs::write(&state, saved).unwrap();
    write(&ledger, 2, "d").await;
    let parts_before = keys_of(&store, "/parts/").len();
    let mut restarted = Shipper::new(Arc::clone(&store), config(dir.path()), None).unwrap();
    restarted.round().await.unwrap();
    assert_eq!(keys_of(&store, "/parts/").len(), parts_before + 1, "the found part is not shipped again");
    let report = verify(&store).await;
    assert!(report.ok, "{report:?}");
    let mut parts: Vec<_> =
        keys_of(&store, "/parts/").iter().map(|k| layout().parse_lines_key(LinesKind::Part, k).unwrap()).collect();
    parts.sort_by_key(|p| p.first);
    assert!(parts.windows(2).all(|w| w[0].last < w[1].first), "no two parts hold the same line: {parts:?}");
    assert_eq!(report.head_seq, Some(ledger.head().records - 1));
    ledger.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_ledger_stops_the_shipping() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    write(&ledger, 5, "a").await;
    let copy = tempfile::tempdir().unwrap();
    ledger.close().await.unwrap();
    drop(ledger);
    copy_dir(dir.path(), copy.path());
    let ledger = open(dir.path());
    write(&ledger, 5, "b").await;
    let store = Arc::new(MemoryStore::default());
    Shipper::new(Arc::clone(&store), config(dir.path()), None).unwrap().round().await.unwrap();
    ledger.close().await.unwrap();
    drop(ledger);

    // The copy from before goes on with other lines, and its state file
    // is the original's: it must not ship over the archive.
    let rolled = open(copy.path());
    write(&rolled, 8, "other").await;
    std::fs::create_dir_all(copy.path().join("archive")).unwrap();
    std::fs::copy(dir.path().join("archive/state.json"), copy.path().join("archive/state.json")).unwrap();
    let mut shipper = Shipper::new(Arc::clone(&store), config(copy.path()), None).unwrap();
    let err = shipper.round().await.unwrap_err();
    assert!(matches!(err, ShipError::Diverged(_)), "{err}");
    assert!(shipper.status().snapshot(None).diverged.is_some());
    // And without the state file, the part after seq 0 it finds disagrees.
    std::fs::remove_file(copy.path().join("archive/state.json")).unwrap();
    let mut fresh = Shipper::new(Arc::clone(&store), config(copy.path()), None).unwrap();
    assert!(matches!(fresh.round().await, Err(ShipError::Diverged(_))));
    rolled.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_and_signed_segments_are_pruned_after_the_local_retention() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    write(&ledger, 80, "a").await;
    ledger.checkpoint().await.unwrap();
    wait_compacted(dir.path());
    let store = Arc::new(MemoryStore::default());
    let mut config = config(dir.path());
    config.local_retention = Some(Duration::ZERO);
    let mut shipper = Shipper::new(Arc::clone(&store), config, Some(ledger.clone())).unwrap();
    let segments_before =
        egress_ledger::reader::LedgerReader::open(&dir.path().join("ledger")).unwrap().segments().len();
    shipper.round().await.unwrap();
    let reader = egress_ledger::reader::LedgerReader::open(&dir.path().join("ledger")).unwrap();
    assert!(reader.first_seq() > 0, "old segments were pruned");
    assert_eq!(
        reader.segments().len(),
        2.max(segments_before - shipper.status().snapshot(None).segments_pruned as usize)
    );
    // The archive still holds everything, and the pruning is on the chain.
    shipper.round().await.unwrap();
    let report = verify(&store).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.head_seq, Some(ledger.head().records - 1));
    ledger.close().await.unwrap();
    let local =
        egress_ledger::verify::verify(dir.path(), &egress_ledger::verify::VerifyOptions::default(), |_| {}).unwrap();
    assert!(local.ok, "{local:?}");
    let mut found = false;
    reader
        .for_each_line(0, |line| {
            found |= String::from_utf8_lossy(&line.bytes).contains("\"event\":\"archive_pruned\"");
            true
        })
        .unwrap();
    let reader = egress_ledger::reader::LedgerReader::open(&dir.path().join("ledger")).unwrap();
    reader
        .for_each_line(0, |line| {
            found |= String::from_utf8_lossy(&line.bytes).contains("\"event\":\"archive_pruned\"");
            true
        })
        .unwrap();
    assert!(found, "a note records each pruned segment");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
