//! The independent verifier (`tests/auditor/verify_ledger.py`, written from
//! docs/LEDGER.md alone) agrees with `egress-proxy ledger verify` on ledgers
//! the real binary wrote: intact, one byte edited, and truncated behind a
//! checkpoint kept elsewhere. It also checks the document's test vector.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use egress_e2e::{Run, run, run_in};

fn script() -> PathBuf {
    egress_e2e::repo_root().join("tests").join("auditor").join("verify_ledger.py")
}

/// Runs `python3 verify_ledger.py ARGS...`.
fn python(args: &[&str]) -> Run {
    Command::new("python3").arg(script()).args(args).output().expect("start python3 (is it on PATH?)").into()
}

/// A fresh data dir with a ledger of 3000 records written by `ledger bench`.
fn bench_ledger() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    let d = dir.to_str().expect("utf-8 temp path");
    let out = run(&["ledger", "bench", "--data-dir", d, "--records", "3000", "--concurrency", "8"]);
    assert_eq!(out.code, 0, "{out:?}");
    (tmp, dir)
}

/// The segment files, sorted by name (which sorts the log).
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = fs::read_dir(dir.join("ledger"))
        .expect("read ledger dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with("segment-") && p.extension().is_some_and(|e| e == "jsonl")
        })
        .collect();
    all.sort();
    assert!(!all.is_empty(), "no segment in {}", dir.display());
    all
}

#[test]
fn python_verifier_passes_the_documents_test_vector() {
    let out = python(&["--self-test"]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn both_verifiers_accept_an_intact_ledger() {
    let (_tmp, dir) = bench_ledger();
    let d = dir.to_str().unwrap();
    let py = python(&[d]);
    assert_eq!(py.code, 0, "{py:?}");
    assert!(py.stdout.starts_with("ledger intact:"), "{py:?}");
    assert_eq!(py.stdout.lines().count(), 1, "one line: {py:?}");
    let pubkey = dir.join("keys").join("checkpoint.pub");
    let latest = dir.join("checkpoints").join("latest.txt");
    let py = python(&[d, "--pubkey", pubkey.to_str().unwrap(), "--checkpoint", latest.to_str().unwrap()]);
    assert_eq!(py.code, 0, "{py:?}");
    let rs = run_in(&dir, &["ledger", "verify"]);
    assert_eq!(rs.code, 0, "{rs:?}");
}

#[test]
fn both_verifiers_catch_one_edited_byte_at_the_same_place() {
    let (_tmp, dir) = bench_ledger();
    let first = &segments(&dir)[0];
    let mut bytes = fs::read(first).unwrap();
    // The first digit from the middle on, changed to another digit: the line
    // stays JSON, so only the hash chain (or the seq) can tell.
    let at = (bytes.len() / 2..bytes.len()).find(|&i| bytes[i].is_ascii_digit()).expect("a digit");
    bytes[at] = if bytes[at] == b'9' { b'0' } else { bytes[at] + 1 };
    fs::write(first, &bytes).unwrap();

    let py = python(&[dir.to_str().unwrap()]);
    assert_eq!(py.code, 1, "{py:?}");
    let rs = run_in(&dir, &["ledger", "verify", "--json"]);
    assert_eq!(rs.code, 1, "{rs:?}");
    let problem = &rs.json()["problem"];
    let place = format!("seq {}, {} line {}", problem["seq"], problem["segment"].as_str().unwrap(), problem["line"]);
    assert!(py.stdout.contains(&place), "python and rust disagree on the place ({place}): {py:?}");
}

#[test]
fn both_verifiers_catch_truncation_behind_a_saved_checkpoint() {
    let (tmp, dir) = bench_ledger();
    let saved = tmp.path().join("saved.checkpoint");
    fs::copy(dir.join("checkpoints").join("latest.txt"), &saved).unwrap();
    let last = segments(&dir).pop().unwrap();
    let text = fs::read_to_string(&last).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 10, "{} lines", lines.len());
    let kept: String = lines[..lines.len() - 10].iter().flat_map(|l| [l, "\n"]).collect();
    fs::write(&last, kept).unwrap();

    let d = dir.to_str().unwrap();
    // Without any checkpoint the shorter log is a valid log.
    let py = python(&[d, "--no-local"]);
    assert_eq!(py.code, 0, "{py:?}");
    let py = python(&[d, "--checkpoint", saved.to_str().unwrap()]);
    assert_eq!(py.code, 2, "{py:?}");
    let rs = run_in(&dir, &["ledger", "verify", "--checkpoint", saved.to_str().unwrap()]);
    assert_eq!(rs.code, 2, "{rs:?}");
}
