//! The ledger and principal commands of the real binary: the tamper suite
//! (each kind of tampering caught with its exit code), export, pubkey,
//! reindex, principals, and clean errors for bad input.

use std::fs;
use std::path::{Path, PathBuf};

use egress_e2e::{copy_dir, run, run_in};

/// A data dir with a ledger of about `records` lines written by the binary.
fn ledger_with(records: u64) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let out = run(&[
        "ledger",
        "bench",
        "--data-dir",
        dir.to_str().unwrap(),
        "--records",
        &records.to_string(),
        "--concurrency",
        "8",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    (tmp, dir)
}

fn segment(dir: &Path) -> PathBuf {
    dir.join("ledger").join("segment-00000000000000000000.jsonl")
}

fn lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(segment(dir)).unwrap().lines().map(str::to_owned).collect()
}

fn write_lines(dir: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(segment(dir), text).unwrap();
}

fn verify(dir: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["ledger", "verify", "--json"];
    args.extend_from_slice(extra);
    let out = run_in(dir, &args);
    (out.code, out.json())
}

#[test]
fn intact_ledger_verifies() {
    let (_tmp, dir) = ledger_with(500);
    let (code, report) = verify(&dir, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["records"].as_u64(), Some(lines(&dir).len() as u64));
    assert!(report["checkpoints_in_log"].as_u64().unwrap() >= 1, "close writes a checkpoint");
    let human = run_in(&dir, &["ledger", "verify"]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.starts_with("ledger intact:"), "{}", human.stdout);
}

#[test]
fn one_edited_byte_is_caught_with_its_place() {
    let (_tmp, dir) = ledger_with(500);
    let mut all = lines(&dir);
    // A start line (ends have no method) in the middle of the log.
    let edited = (100..all.len()).find(|&i| all[i].contains("\"method\":\"GET\"")).unwrap();
    all[edited] = all[edited].replacen("\"method\":\"GET\"", "\"method\":\"PUT\"", 1);
    write_lines(&dir, &all);
    let (code, report) = verify(&dir, &[]);
    assert_eq!(code, 1, "{report}");
    // The edited line hashes differently, so the next line's prev breaks.
    assert_eq!(report["problem"]["seq"], edited as u64 + 1);
    assert_eq!(report["problem"]["line"], edited as u64 + 2);
    assert_eq!(report["problem"]["segment"], "segment-00000000000000000000.jsonl");
}

#[test]
fn deleted_swapped_and_inserted_lines_are_caught() {
    let (_tmp, dir) = ledger_with(300);
    let original = lines(&dir);

    let mut deleted = original.clone();
    deleted.remove(50);
    write_lines(&dir, &deleted);
    let (code, report) = verify(&dir, &[]);
    assert_eq!((code, report["problem"]["seq"].as_u64()), (1, Some(50)), "{report}");

    let mut swapped = original.clone();
    swapped.swap(70, 71);
    write_lines(&dir, &swapped);
    let (code, report) = verify(&dir, &[]);
    assert_eq!((code, report["problem"]["seq"].as_u64()), (1, Some(70)), "{report}");

    // A forged line that chains to its predecessor, with the right seq: the
    // line after it no longer chains, and every later seq is off by one.
    let mut inserted = original.clone();
    let prev_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(original[9].as_bytes()));
    let forged = format!(
        "{{\"v\":1,\"seq\":10,\"prev\":\"{prev_hash}\",\"ts\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"note\",\"event\":\"forged\"}}"
    );
    inserted.insert(10, forged);
    write_lines(&dir, &inserted);
    let (code, report) = verify(&dir, &[]);
    assert_eq!((code, report["problem"]["seq"].as_u64()), (1, Some(11)), "{report}");
}

#[test]
fn truncation_behind_a_saved_checkpoint_is_caught() {
    let (tmp, dir) = ledger_with(400);
    let saved = tmp.path().join("saved.checkpoint");
    fs::copy(dir.join("checkpoints").join("latest.txt"), &saved).unwrap();
    let mut all = lines(&dir);
    all.truncate(all.len() - 20);
    write_lines(&dir, &all);
    // The attacker also removes the local checkpoint files.
    fs::remove_dir_all(dir.join("checkpoints")).unwrap();
    let (code, report) = verify(&dir, &[]);
    assert_eq!(code, 0, "without a checkpoint the shorter log is a valid log: {report}");
    let (code, report) = verify(&dir, &["--checkpoint", saved.to_str().unwrap()]);
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["problem"]["kind"], "truncated");
}

#[test]
fn rollback_to_an_older_copy_is_caught() {
    let (tmp, dir) = ledger_with(200);
    let old = tmp.path().join("old");
    copy_dir(&dir, &old);
    assert_eq!(run_in(&dir, &["principal", "create", "later"]).code, 0);
    let saved = tmp.path().join("saved.checkpoint");
    fs::copy(dir.join("checkpoints").join("latest.txt"), &saved).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    copy_dir(&old, &dir);
    let (code, report) = verify(&dir, &["--checkpoint", saved.to_str().unwrap()]);
    assert_eq!(code, 2, "{report}");
}

#[test]
fn fork_is_caught() {
    let (tmp, dir) = ledger_with(200);
    let other = tmp.path().join("other");
    copy_dir(&dir, &other);
    assert_eq!(run_in(&dir, &["principal", "create", "alice"]).code, 0);
    assert_eq!(run_in(&other, &["principal", "create", "mallory"]).code, 0);
    let (code, report) = verify(&other, &["--checkpoint", dir.join("checkpoints/latest.txt").to_str().unwrap()]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["problem"]["kind"], "fork");
}

#[test]
fn bad_signature_or_wrong_key_is_caught() {
    let (tmp, dir) = ledger_with(200);
    let cp_path = dir.join("checkpoints").join("latest.txt");
    let forged = tmp.path().join("forged.checkpoint");
    let text = fs::read_to_string(&cp_path).unwrap();
    // Claim one more record than signed.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let seq: u64 = lines[1].parse().unwrap();
    lines[1] = (seq + 1).to_string();
    fs::write(&forged, lines.join("\n") + "\n").unwrap();
    let (code, report) = verify(&dir, &["--checkpoint", forged.to_str().unwrap()]);
    assert_eq!(code, 4, "{report}");

    let (_tmp2, stranger) = ledger_with(10);
    let (code, report) = verify(&dir, &["--pubkey", stranger.join("keys/checkpoint.pub").to_str().unwrap()]);
    assert_eq!(code, 4, "{report}");
}

#[test]
fn pubkey_export_and_reindex() {
    let (_tmp, dir) = ledger_with(300);
    let pubkey = run_in(&dir, &["ledger", "pubkey"]);
    assert_eq!(pubkey.code, 0);
    assert_eq!(pubkey.stdout.trim(), fs::read_to_string(dir.join("keys/checkpoint.pub")).unwrap().trim());

    let jsonl = run_in(&dir, &["ledger", "export"]);
    assert_eq!(jsonl.code, 0, "{jsonl:?}");
    assert_eq!(jsonl.stdout, fs::read_to_string(segment(&dir)).unwrap(), "jsonl export is the raw bytes");
    let part = run_in(&dir, &["ledger", "export", "--from-seq", "10", "--to-seq", "19"]);
    assert_eq!(part.stdout.lines().count(), 10);
    assert!(part.stdout.starts_with("{\"v\":1,\"seq\":10,"));

    let csv = run_in(&dir, &["ledger", "export", "--format", "csv", "--to-seq", "4"]);
    let rows: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(rows.len(), 6, "{}", csv.stdout);
    assert!(rows[0].starts_with("seq,ts,kind,req,principal"));
    assert!(rows[1].starts_with("0,"));

    let bad = run_in(&dir, &["ledger", "export", "--since", "yesterday"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("RFC 3339"), "{}", bad.stderr);

    let reindex = run_in(&dir, &["ledger", "reindex"]);
    assert_eq!(reindex.code, 0, "{reindex:?}");
    assert!(reindex.stdout.starts_with("reindexed "), "{}", reindex.stdout);
}

#[test]
fn principals_are_created_listed_and_revoked_without_leaking_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let created = run_in(&dir, &["principal", "create", "trainer", "--description", "nightly training"]);
    assert_eq!(created.code, 0, "{created:?}");
    let key = created.json();
    assert_eq!(key["name"], "trainer");
    let id = key["access_key_id"].as_str().unwrap().to_owned();
    let secret = key["secret_access_key"].as_str().unwrap().to_owned();
    assert_eq!((id.len(), secret.len()), (20, 40));

    let listed = run_in(&dir, &["principal", "list"]);
    assert!(!listed.stdout.contains(&secret));
    assert_eq!(listed.json()[0]["keys"][0]["access_key_id"], id.as_str());

    let dup = run_in(&dir, &["principal", "create", "trainer"]);
    assert_eq!(dup.code, 1);
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);
    let bad = run_in(&dir, &["principal", "create", "has space"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("invalid"), "{}", bad.stderr);

    let revoked = run_in(&dir, &["principal", "revoke", &id]);
    assert_eq!(revoked.code, 0, "{revoked:?}");
    assert!(run_in(&dir, &["principal", "list"]).json()[0]["keys"][0]["revoked"].is_string());
    assert_eq!(run_in(&dir, &["principal", "revoke", "NOSUCHKEY"]).code, 1);

    // The ledger says who got and lost a key, never the secret.
    let log = fs::read_to_string(segment(&dir)).unwrap();
    assert!(log.contains("\"event\":\"principal_created\""));
    assert!(log.contains("\"event\":\"access_key_revoked\""));
    assert!(!log.contains(&secret));
    for entry in walk(&dir) {
        if entry.starts_with(dir.join("state")) {
            continue; // the state store is where secrets live
        }
        let bytes = fs::read(&entry).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(&secret), "secret found in {}", entry.display());
    }
    assert_eq!(run_in(&dir, &["ledger", "verify"]).code, 0);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn usage_errors_and_missing_dirs_exit_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = run_in(&tmp.path().join("nope"), &["ledger", "verify"]);
    assert_eq!(missing.code, 64, "{missing:?}");
    assert!(missing.stderr.contains("no ledger here"), "{}", missing.stderr);
    let bad_flag = run(&["ledger", "verify", "--no-such-flag"]);
    assert_eq!(bad_flag.code, 64);
    assert!(!bad_flag.stderr.contains("panicked"));
    let bench_on_existing = {
        let (_t, dir) = ledger_with(10);
        run(&["ledger", "bench", "--data-dir", dir.to_str().unwrap(), "--records", "10"])
    };
    assert_eq!(bench_on_existing.code, 1);
    assert!(bench_on_existing.stderr.contains("already holds a ledger"), "{}", bench_on_existing.stderr);
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_dir() {
    let (_tmp, dir) = ledger_with(10);
    let lock = fs::OpenOptions::new().write(true).open(dir.join("ledger/LOCK")).unwrap();
    lock.lock().unwrap();
    let out = run_in(&dir, &["principal", "create", "x"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("in use"), "{}", out.stderr);
    // Verify is read-only and works while the directory is held.
    assert_eq!(run_in(&dir, &["ledger", "verify"]).code, 0);
}
