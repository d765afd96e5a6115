//! Full verification of a ledger directory, read-only: every hash and link,
//! gap-free seqs, every checkpoint's signature and that it matches the chain,
//! and checkpoints kept elsewhere (truncation, rollback, forks). Segments
//! are read in either form (plain or zstd); the chain is over the plain
//! bytes.
//!
//! **A pruned ledger** (its oldest segments removed once archived) starts at
//! a later seq, [`VerifyReport::from_seq`]. The `prev` of its first line
//! names a line this host no longer has, so the walk takes it on trust
//! and starts there; checkpoints of seqs before it cannot be compared with
//! anything here and are counted in
//! [`VerifyReport::checkpoint_files_skipped`] (their signatures are still
//! checked). From the host alone, a pruned ledger and one whose oldest
//! segments were deleted look the same: the history before `from_seq` is
//! proved by verifying the archive, and [`VerifyOptions::start`] links the
//! two.
//!
//! Exit codes of `egress-proxy ledger verify` come from [`ProblemKind`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::checkpoint::{CheckpointVerifier, VERIFIER_FILE, parse_note};
use crate::reader::LedgerReader;
use crate::record::{CheckpointRecord, Entry, LineHash, decode_header, decode_line};
use crate::segment::{Chain, lines};

/// What kind of problem verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Content changed, inserted, deleted or reordered (exit 1).
    Tampered,
    /// The log ends before a checkpoint's head: truncated or rolled back (exit 2).
    Truncated,
    /// Same seq, other hash than a checkpoint says (exit 3).
    Fork,
    /// A checkpoint signature or key does not check out (exit 4).
    Signature,
}

impl ProblemKind {
    #[must_use]
    pub fn exit_code(self) -> i32 {
        match self {
            ProblemKind::Tampered => 1,
            ProblemKind::Truncated => 2,
            ProblemKind::Fork => 3,
            ProblemKind::Signature => 4,
        }
    }
}

/// The first problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
    pub seq: Option<u64>,
    pub segment: Option<String>,
    /// 1-based line number in `segment`.
    pub line: Option<u64>,
}

/// The result of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub exit_code: i32,
    pub records: u64,
    pub segments: usize,
    /// Bytes of the log walked (plain content: compressed segments count
    /// as decompressed).
    pub bytes: u64,
    /// The first seq on this host, where the walk started: 0 unless the
    /// oldest segments were pruned. The `prev` of that line could not be
    /// checked here (see [`VerifyOptions::start`]).
    pub from_seq: u64,
    pub head_seq: Option<u64>,
    pub head: Option<String>,
    /// Checkpoint records in the log whose signature was checked.
    pub checkpoints_in_log: u64,
    /// Checkpoint files (given and local) compared with the log.
    pub checkpoint_files: u64,
    /// Checkpoint files whose signature checked out but whose head is in
    /// pruned history (before `from_seq`), so that they could not be
    /// compared with the log here.
    pub checkpoint_files_skipped: u64,
    /// [`VerifyOptions::start`] was given and the local chain was checked
    /// against it (false when the local ledger starts after it).
    pub start_checked: bool,
    /// The last line has no newline yet: a write in progress, not counted.
    pub partial_tail: bool,
    pub problem: Option<Problem>,
}

/// What to verify against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Public key for checkpoint signatures; default `<data-dir>/keys/checkpoint.pub`.
    pub pubkey: Option<PathBuf>,
    /// Checkpoint files kept elsewhere.
    pub checkpoints: Vec<PathBuf>,
    /// `(seq, prev)`: what history verified elsewhere (the archive) says
    /// line `seq`'s `prev` is, i.e. the hash of line `seq - 1`. The local
    /// walk must agree where it can, or it is a fork (exit 3):
    /// - the local ledger starts at `seq` (pruned up to it): its first
    ///   line's `prev` must be this, which is what links it to the archive;
    /// - it starts before `seq` (pruned less, or not at all): the lines
    ///   before `seq` are walked and chain-checked as always, and the line
    ///   at `seq` must have this `prev` (if the log ends at `seq - 1`, its
    ///   head hash must be this; if it ends before, it was truncated or
    ///   rolled back behind what the archive holds: exit 2);
    /// - it starts after `seq` (pruned further than the archive verified):
    ///   nothing local links to it; it is not checked and
    ///   [`VerifyReport::start_checked`] says so. Give a later seed.
    pub start: Option<(u64, LineHash)>,
}

/// Errors that stop verification before it can judge (exit 64).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("{path}: no ledger here ({source}); give the data dir the proxy writes to (--data-dir)")]
    NoLedger { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

struct Expected {
    hash: String,
    source: String,
}

/// Verifies the ledger in `data_dir`; `progress` gets the bytes read so far.
pub fn verify(
    data_dir: &Path,
    options: &VerifyOptions,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let ledger_dir = data_dir.join("ledger");
    let reader =
        LedgerReader::open(&ledger_dir).map_err(|source| VerifyError::NoLedger { path: ledger_dir.clone(), source })?;
    let from_seq = reader.first_seq();
    let mut report = VerifyReport {
        ok: true,
        exit_code: 0,
        records: 0,
        segments: reader.segments().len(),
        bytes: 0,
        from_seq,
        head_seq: None,
        head: None,
        checkpoints_in_log: 0,
        checkpoint_files: 0,
        checkpoint_files_skipped: 0,
        start_checked: false,
        partial_tail: false,
        problem: None,
    };

    let pubkey_path = options.pubkey.clone().unwrap_or_else(|| data_dir.join("keys").join(VERIFIER_FILE));
    let verifier = match CheckpointVerifier::load(&pubkey_path) {
        Ok(v) => Some(v),
        Err(e) if options.pubkey.is_some() => {
            return Ok(finish(report, problem(ProblemKind::Signature, format!("public key: {e}"))));
        }
        Err(_) => None,
    };

    // Checkpoints to compare with the log: given ones, then local files.
    let mut expected: BTreeMap<u64, Expected> = BTreeMap::new();
    let mut files = options.checkpoints.clone();
    files.extend(local_checkpoint_files(&data_dir.join("checkpoints")));
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|source| VerifyError::Io { path: path.clone(), source })?;
        let source = path.display().to_string();
        let cp = match parse_note(&text) {
            Ok(cp) => cp,
            Err(e) => {
                return Ok(finish(report, problem(ProblemKind::Signature, format!("{source}: {e}"))));
            }
        };
        if let Some(p) = check_signature(verifier.as_ref(), &cp, &source) {
            return Ok(finish(report, p));
        }
        // The line before the first local one is not here, but its hash is:
        // the first line's `prev`. Anything older is only in the archive.
        if cp.head_seq.saturating_add(1) < from_seq {
            report.checkpoint_files_skipped += 1;
        } else {
            report.checkpoint_files += 1;
        }
        if let Some(prior) = expected.get(&cp.head_seq)
            && prior.hash != cp.head
        {
            let msg = format!("{source} and {} name different hashes for seq {}: a fork", prior.source, cp.head_seq);
            return Ok(finish(report, Problem { seq: Some(cp.head_seq), ..problem(ProblemKind::Fork, msg) }));
        }
        expected.insert(cp.head_seq, Expected { hash: cp.head, source });
    }

    let mut chain = Chain::genesis();
    // A mismatch with a checkpoint is a fork only if the log's own chain is
    // intact; an edited line that a checkpoint covers is reported as the
    // chain break it causes. So the first mismatch waits for the walk's end.
    let mut fork: Option<Problem> = None;
    // Hashes known for the line before a seq: a checkpoint of the line
    // before the first local one, and the seed given.
    let mut prev_known: Vec<(u64, String, String)> = Vec::new();
    if from_seq > 0
        && let Some(want) = expected.get(&(from_seq - 1))
    {
        prev_known.push((from_seq, want.hash.clone(), format!("checkpoint {}", want.source)));
    }
    if let Some((seq, prev)) = options.start
        && seq >= from_seq
    {
        prev_known.push((seq, prev.to_hex(), "the start given (history verified elsewhere)".to_owned()));
    }
    let segment_count = reader.segments().len();
    let mut disk_bytes = 0u64;
    for (i, (first_seq, name)) in reader.segments().iter().enumerate() {
        let at = |line: Option<u64>, seq: Option<u64>, kind, message: String| Problem {
            kind,
            message,
            seq,
            segment: Some(name.clone()),
            line,
        };
        let bytes = match reader.read_segment(name) {
            Ok(bytes) => bytes,
            // A compressed segment that does not decompress was changed.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Ok(finish(report, at(None, Some(*first_seq), ProblemKind::Tampered, e.to_string())));
            }
            Err(source) => return Err(VerifyError::Io { path: ledger_dir.join(name), source }),
        };
        if i == 0 && *first_seq > 0 {
            // Pruned: start from what the first line says came before it.
            match lines(&bytes).next().map(|l| decode_header(l.bytes)) {
                Some(Ok((_, prev))) => chain = Chain { next_seq: *first_seq, prev },
                Some(Err(e)) => {
                    let msg = format!("the first local line does not decode: {e}");
                    return Ok(finish(report, at(Some(1), Some(*first_seq), ProblemKind::Tampered, msg)));
                }
                None => {
                    let msg = "the first local segment is empty".to_owned();
                    return Ok(finish(report, at(None, Some(*first_seq), ProblemKind::Tampered, msg)));
                }
            }
        }
        if *first_seq != chain.next_seq {
            let msg = format!("segment is named for seq {first_seq} but seq {} comes next", chain.next_seq);
            return Ok(finish(report, at(None, Some(chain.next_seq), ProblemKind::Tampered, msg)));
        }
        for (n, line) in lines(&bytes).enumerate() {
            let line_no = Some(n as u64 + 1);
            let seq = chain.next_seq;
            for (_, want, source) in prev_known.iter().filter(|(at_seq, _, _)| *at_seq == seq) {
                if options.start.is_some_and(|(s, _)| s == seq) {
                    report.start_checked = true;
                }
                if *want != chain.prev.to_hex() && fork.is_none() {
                    let msg =
                        format!("the line before seq {seq} has hash {}, but {source} says {want}: a fork", chain.prev);
                    fork = Some(at(line_no, Some(seq), ProblemKind::Fork, msg));
                }
            }
            if !line.complete {
                if i + 1 == segment_count {
                    report.partial_tail = true;
                    break;
                }
                let msg = "line without newline inside the log".to_owned();
                return Ok(finish(report, at(line_no, Some(seq), ProblemKind::Tampered, msg)));
            }
            let (header, hash) = match chain.advance(line.bytes) {
                Ok(ok) => ok,
                Err(e) => {
                    return Ok(finish(report, at(line_no, Some(seq), ProblemKind::Tampered, e.to_string())));
                }
            };
            if header.kind == "checkpoint" {
                let prev_hex = header.prev.to_owned();
                let cp = match decode_line(line.bytes) {
                    Ok(decoded) => match decoded.entry {
                        Entry::Checkpoint(cp) => cp,
                        _ => unreachable_kind(),
                    },
                    Err(e) => {
                        let msg = format!("checkpoint does not decode: {e}");
                        return Ok(finish(report, at(line_no, Some(seq), ProblemKind::Tampered, msg)));
                    }
                };
                if seq == 0 || cp.head_seq != seq - 1 || cp.head != prev_hex {
                    let msg = "checkpoint does not sign the line before it".to_owned();
                    return Ok(finish(report, at(line_no, Some(seq), ProblemKind::Tampered, msg)));
                }
                if let Some(p) = check_signature(verifier.as_ref(), &cp, &format!("{name} line {}", n + 1)) {
                    return Ok(finish(
                        report,
                        Problem { seq: Some(seq), segment: Some(name.clone()), line: line_no, ..p },
                    ));
                }
                report.checkpoints_in_log += 1;
            }
            if let Some(want) = expected.get(&seq)
                && want.hash != hash.to_hex()
                && fork.is_none()
            {
                let msg =
                    format!("seq {seq} has hash {hash}, but checkpoint {} says {}: a fork", want.source, want.hash);
                fork = Some(at(line_no, Some(seq), ProblemKind::Fork, msg));
            }
            report.records += 1;
        }
        report.bytes += bytes.len() as u64;
        disk_bytes += std::fs::metadata(ledger_dir.join(name)).map_or(0, |m| m.len());
        progress(disk_bytes);
    }
    if chain.next_seq > 0 {
        report.head_seq = Some(chain.next_seq - 1);
        report.head = Some(chain.prev.to_hex());
    }
    // A seed just past the head: the head's hash is what it names.
    if fork.is_none()
        && let Some((seq, want, source)) = prev_known.iter().find(|(seq, _, _)| *seq == chain.next_seq)
    {
        if options.start.is_some_and(|(s, _)| s == *seq) {
            report.start_checked = true;
        }
        if *want != chain.prev.to_hex() {
            let msg = format!("the log's head has hash {}, but {source} says {want} for it: a fork", chain.prev);
            fork = Some(Problem { seq: Some(seq - 1), ..problem(ProblemKind::Fork, msg) });
        }
    }
    if let Some(fork) = fork {
        return Ok(finish(report, fork));
    }
    if let Some((seq, _)) = options.start
        && seq > chain.next_seq
        && seq > from_seq
    {
        let msg = format!(
            "the log ends before seq {}, but the history verified elsewhere goes on to seq {}: truncated or rolled back",
            chain.next_seq,
            seq - 1
        );
        return Ok(finish(report, Problem { seq: Some(seq - 1), ..problem(ProblemKind::Truncated, msg) }));
    }
    if let Some((&seq, want)) = expected.range(chain.next_seq..).next_back() {
        let msg = match report.head_seq {
            Some(head) => format!(
                "the log ends at seq {head}, but checkpoint {} covers seq {seq}: truncated or rolled back",
                want.source
            ),
            None => {
                format!("the log is empty, but checkpoint {} covers seq {seq}: truncated or rolled back", want.source)
            }
        };
        return Ok(finish(report, Problem { seq: Some(seq), ..problem(ProblemKind::Truncated, msg) }));
    }
    Ok(report)
}

fn unreachable_kind() -> CheckpointRecord {
    // decode_line tags by `kind`, which the header said is "checkpoint".
    CheckpointRecord {
        origin: String::new(),
        head_seq: u64::MAX,
        head: String::new(),
        time: String::new(),
        key_id: String::new(),
        signature: String::new(),
    }
}

fn check_signature(verifier: Option<&CheckpointVerifier>, cp: &CheckpointRecord, source: &str) -> Option<Problem> {
    let Some(verifier) = verifier else {
        let msg = format!("{source}: no public key to check the checkpoint signature; give --pubkey");
        return Some(problem(ProblemKind::Signature, msg));
    };
    verifier.verify(cp).err().map(|e| problem(ProblemKind::Signature, format!("{source}: {e}")))
}

fn problem(kind: ProblemKind, message: String) -> Problem {
    Problem { kind, message, seq: None, segment: None, line: None }
}

fn finish(mut report: VerifyReport, problem: Problem) -> VerifyReport {
    report.ok = false;
    report.exit_code = problem.kind.exit_code();
    report.problem = Some(problem);
    report
}

fn local_checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("checkpoint-") || n == "latest.txt")
        })
        .collect();
    files.sort();
    files
}
