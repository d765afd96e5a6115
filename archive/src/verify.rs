//! Verifying a chain from the archive alone: every line's link, every
//! checkpoint's signature (lines and detached files), every object's name
//! against its content, and that nothing is missing between seq 0 and the
//! archived head. Streaming: one listing page per folder and two objects
//! (the one being checked, the next one being fetched) are in memory at a
//! time, whatever the archive's size.
//!
//! What is read: sealed segments whole; parts where no sealed segment
//! covers their lines (the open segment's growth). A part whose lines a
//! segment also holds is checked by its name: the hash its name gives for
//! its last seq must be the chain's. Of each key, the first version is
//! read (see [`crate::listing`]); later versions are reported.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader};
use std::sync::Arc;

use egress_ledger::checkpoint::{CheckpointVerifier, parse_note};
use egress_ledger::record::{Entry, decode_line};
use egress_ledger::segment::Chain;
use egress_ledger::verify::{Problem, ProblemKind};
use egress_ledger::{CheckpointRecord, LineHash};
use serde::Serialize;

use crate::layout::{Layout, LinesKind, LinesObject};
use crate::listing::{Archived, Lister};
use crate::store::{ObjectStore, StoreError};

/// Largest object read (a segment is 64 MiB before compression by default).
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;
/// Longest line read from an object: far beyond any the writer makes (a
/// segment's opening note lists the open starts, ~60 bytes each), and a
/// bound on what a hostile object can make verify hold.
const MAX_LINE_BYTES: u64 = 64 << 20;
/// Largest checkpoint or key file read.
const MAX_SMALL_BYTES: u64 = 64 * 1024;
/// Keys named in a report's `overwritten`, at most.
const MAX_LISTED: usize = 100;

/// What to verify with.
#[derive(Debug, Clone, Default)]
pub struct ArchiveVerifyOptions {
    /// The verifier key; default: the keys the archive holds under `keys/`.
    pub pubkey: Option<CheckpointVerifier>,
}

/// The result of verifying one origin.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveReport {
    pub archive: String,
    pub origin: String,
    pub ok: bool,
    pub exit_code: i32,
    /// Lines checked.
    pub records: u64,
    /// Bytes of lines checked (uncompressed) and as stored.
    pub bytes: u64,
    pub stored_bytes: u64,
    pub segments_read: u64,
    pub parts_read: u64,
    /// Parts whose lines a segment holds too, checked by their name.
    pub parts_checked_by_name: u64,
    pub checkpoints_in_log: u64,
    pub checkpoint_objects: u64,
    pub head_seq: Option<u64>,
    pub head: Option<String>,
    /// Where the verifier key came from: `given`, or the archive's key file.
    pub key: String,
    /// Keys with versions or delete markers after the shipped one: someone
    /// tried to overwrite or delete them (the first version was read).
    pub overwritten: Vec<String>,
    pub overwritten_count: u64,
    pub problem: Option<Problem>,
}

impl ArchiveReport {
    fn fail(&mut self, problem: Problem) {
        if self.problem.is_none() {
            self.ok = false;
            self.exit_code = problem.kind.exit_code();
            self.problem = Some(problem);
        }
    }
}

/// One object to read, and what to check while reading it.
#[derive(Debug)]
struct Plan {
    object: LinesObject,
    archived: Archived,
    /// Parts whose lines this object holds too: seq → (key, head).
    claims: BTreeMap<u64, Vec<(String, LineHash)>>,
}

/// Chooses, seq after seq, the objects that hold the chain.
struct Planner {
    layout: Layout,
    segments: Lister,
    parts: Lister,
    next_seq: u64,
}

fn problem(kind: ProblemKind, seq: Option<u64>, key: Option<&str>, message: String) -> Problem {
    Problem { kind, message, seq, segment: key.map(str::to_owned), line: None }
}

impl Planner {
    async fn peek_lines(
        lister: &mut Lister,
        store: &impl ObjectStore,
        layout: &Layout,
        kind: LinesKind,
    ) -> Result<Option<(LinesObject, Archived)>, StoreError> {
        while let Some(archived) = lister.peek(store).await? {
            if let Some(object) = layout.parse_lines_key(kind, &archived.key) {
                return Ok(Some((object, archived.clone())));
            }
            // Not an object of ours (a stray upload): not part of the chain.
            tracing::warn!(key = %archived.key, "not an archive object name; ignored");
            lister.next(store).await?;
        }
        Ok(None)
    }

    /// The next object, `Ok(None)` at the end, `Err` for a gap or overlap.
    async fn next(&mut self, store: &impl ObjectStore) -> Result<Result<Option<Plan>, Problem>, StoreError> {
        let next = self.next_seq;
        let segment = Self::peek_lines(&mut self.segments, store, &self.layout, LinesKind::Segment).await?;
        let segment_first = segment.as_ref().map(|s| s.0.first);
        let chosen = match segment {
            Some((object, archived)) if object.first == next => {
                self.segments.next(store).await?;
                if let Some((other, archived_other)) =
                    Self::peek_lines(&mut self.segments, store, &self.layout, LinesKind::Segment).await?
                    && other.first <= object.last
                {
                    let msg = format!(
                        "{} and {} both hold seq {}: two histories (a fork)",
                        archived.key, archived_other.key, other.first
                    );
                    return Ok(Err(problem(ProblemKind::Fork, Some(other.first), Some(&archived_other.key), msg)));
                }
                Some((object, archived))
            }
            Some((object, archived)) if object.first < next => {
                let msg =
                    format!("{} starts at seq {} inside lines already read: two histories", archived.key, object.first);
                return Ok(Err(problem(ProblemKind::Fork, Some(object.first), Some(&archived.key), msg)));
            }
            _ => None,
        };
        let Some(chosen) = chosen else {
            // No segment starts here: the longest part that does.
            let mut best: Option<(LinesObject, Archived)> = None;
            let mut shorter = Vec::new();
            while let Some((part, archived)) =
                Self::peek_lines(&mut self.parts, store, &self.layout, LinesKind::Part).await?
            {
                if part.first != next {
                    break;
                }
                self.parts.next(store).await?;
                if let Some(prior) = best.take_if(|b| b.0.last < part.last) {
                    shorter.push(prior);
                }
                match &best {
                    None => best = Some((part, archived)),
                    Some(_) => shorter.push((part, archived)),
                }
            }
            let Some(best) = best else {
                let after = Self::peek_lines(&mut self.parts, store, &self.layout, LinesKind::Part)
                    .await?
                    .map(|p| p.0.first)
                    .into_iter()
                    .chain(segment_first)
                    .min();
                return Ok(match after {
                    None => Ok(None),
                    Some(first) if first > next => {
                        let msg =
                            format!("seqs {next} to {} are in no archived object: deleted or never shipped", first - 1);
                        Err(problem(ProblemKind::Tampered, Some(next), None, msg))
                    }
                    Some(first) => {
                        let msg = format!("a part starts at seq {first}, inside lines already read: two histories");
                        Err(problem(ProblemKind::Fork, Some(first), None, msg))
                    }
                });
            };
            let mut plan = Plan { object: best.0, archived: best.1, claims: BTreeMap::new() };
            for (part, archived) in shorter {
                plan.claims.entry(part.last).or_default().push((archived.key, part.head));
            }
            return self.claim_parts(store, plan).await;
        };
        let plan = Plan { object: chosen.0, archived: chosen.1, claims: BTreeMap::new() };
        self.claim_parts(store, plan).await
    }

    /// Takes the parts that start inside `plan`'s lines as claims on them.
    async fn claim_parts(
        &mut self,
        store: &impl ObjectStore,
        mut plan: Plan,
    ) -> Result<Result<Option<Plan>, Problem>, StoreError> {
        while let Some((part, archived)) =
            Self::peek_lines(&mut self.parts, store, &self.layout, LinesKind::Part).await?
        {
            if part.first > plan.object.last {
                break;
            }
            if part.first < plan.object.first || part.last > plan.object.last {
                let msg =
                    format!("{} overlaps {} without being inside it: two histories", archived.key, plan.archived.key);
                return Ok(Err(problem(
                    ProblemKind::Fork,
                    Some(part.first.max(plan.object.first)),
                    Some(&archived.key),
                    msg,
                )));
            }
            self.parts.next(store).await?;
            plan.claims.entry(part.last).or_default().push((archived.key, part.head));
        }
        self.next_seq = plan.object.last + 1;
        Ok(Ok(Some(plan)))
    }
}

/// An object being fetched.
type Fetch = tokio::task::JoinHandle<Result<Vec<u8>, StoreError>>;

/// The walk's state between objects.
struct Walk {
    chain: Chain,
    records: u64,
    bytes: u64,
    checkpoints_in_log: u64,
}

/// Verifies one origin's chain in the archive.
///
/// # Errors
/// When the archive cannot be listed or read: nothing was judged.
pub async fn verify_archive<S: ObjectStore + 'static>(
    store: Arc<S>,
    layout: &Layout,
    origin: &str,
    options: ArchiveVerifyOptions,
) -> Result<ArchiveReport, StoreError> {
    let mut report = ArchiveReport {
        archive: format!("{}{}", store.location(), layout.root()),
        origin: origin.to_owned(),
        ok: true,
        exit_code: 0,
        records: 0,
        bytes: 0,
        stored_bytes: 0,
        segments_read: 0,
        parts_read: 0,
        parts_checked_by_name: 0,
        checkpoints_in_log: 0,
        checkpoint_objects: 0,
        head_seq: None,
        head: None,
        key: String::new(),
        overwritten: Vec::new(),
        overwritten_count: 0,
        problem: None,
    };
    let verifiers = match load_verifiers(store.as_ref(), layout, origin, options.pubkey, &mut report).await? {
        Ok(v) => Arc::new(v),
        Err(p) => {
            report.fail(p);
            return Ok(report);
        }
    };
    let mut planner = Planner {
        layout: layout.clone(),
        segments: Lister::new(layout.lines_prefix(LinesKind::Segment)),
        parts: Lister::new(layout.lines_prefix(LinesKind::Part)),
        next_seq: 0,
    };
    let mut checkpoints = Lister::new(layout.checkpoints_prefix());
    let mut walk = Walk { chain: Chain::genesis(), records: 0, bytes: 0, checkpoints_in_log: 0 };
    let mut inflight: Option<(Plan, Fetch)> = None;
    let mut pending_problem = None;
    loop {
        let plan = match planner.next(store.as_ref()).await? {
            Ok(plan) => plan,
            Err(p) => {
                pending_problem = Some(p);
                None
            }
        };
        let fetch = plan.map(|plan| {
            let store = Arc::clone(&store);
            let (key, version) = (plan.archived.key.clone(), plan.archived.version_id.clone());
            let handle = tokio::spawn(async move { store.get(&key, version.as_deref(), MAX_OBJECT_BYTES).await });
            (plan, handle)
        });
        if let Some((plan, handle)) = inflight.take() {
            let bytes = handle.await.map_err(|e| StoreError::Unreachable(e.to_string()))??;
            note_versions(&mut report, &plan.archived);
            let expects =
                match checkpoints_up_to(store.as_ref(), layout, &mut checkpoints, &plan, &verifiers, &mut report)
                    .await?
                {
                    Ok(expects) => expects,
                    Err(p) => {
                        report.fail(p);
                        break;
                    }
                };
            report.stored_bytes += bytes.len() as u64;
            match plan.object.kind {
                LinesKind::Segment => report.segments_read += 1,
                LinesKind::Part => report.parts_read += 1,
            }
            report.parts_checked_by_name += plan.claims.values().map(|c| c.len() as u64).sum::<u64>();
            let verifiers = Arc::clone(&verifiers);
            let (result, back) = tokio::task::spawn_blocking(move || {
                let result = chain_object(&mut walk, &bytes, &plan, &expects, &verifiers);
                (result, walk)
            })
            .await
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
            walk = back;
            if let Err(p) = result {
                report.fail(p);
                break;
            }
        }
        match fetch {
            Some(next) => inflight = Some(next),
            None => break,
        }
    }
    if let Some(p) = pending_problem {
        report.fail(p);
    }
    report.records = walk.records;
    report.bytes = walk.bytes;
    report.checkpoints_in_log = walk.checkpoints_in_log;
    if walk.chain.next_seq > 0 {
        report.head_seq = Some(walk.chain.next_seq - 1);
        report.head = Some(walk.chain.prev.to_hex());
    }
    if report.ok {
        // A checkpoint beyond the archived head: lines it signed are gone.
        while let Some(archived) = checkpoints.next(store.as_ref()).await? {
            if let Some((seq, _)) = layout.parse_checkpoint_key(&archived.key)
                && seq >= walk.chain.next_seq
            {
                let msg = match report.head_seq {
                    Some(head) => {
                        format!("the archive ends at seq {head}, but {} covers seq {seq}: truncated", archived.key)
                    }
                    None => format!("the archive holds no lines, but {} covers seq {seq}: truncated", archived.key),
                };
                report.fail(problem(ProblemKind::Truncated, Some(seq), Some(&archived.key), msg));
                break;
            }
        }
    }
    Ok(report)
}

fn note_versions(report: &mut ArchiveReport, archived: &Archived) {
    if archived.later_versions > 0 {
        report.overwritten_count += 1;
        if report.overwritten.len() < MAX_LISTED {
            report.overwritten.push(archived.key.clone());
        }
    }
}

type Verifiers = HashMap<String, CheckpointVerifier>;

/// The verifier keys: the one given, or those the archive holds.
async fn load_verifiers(
    store: &impl ObjectStore,
    layout: &Layout,
    origin: &str,
    given: Option<CheckpointVerifier>,
    report: &mut ArchiveReport,
) -> Result<Result<Verifiers, Problem>, StoreError> {
    let id = |v: &CheckpointVerifier| hex::encode(egress_ledger::checkpoint::key_id(&v.origin, &v.key));
    if let Some(v) = given {
        if v.origin != origin {
            let msg = format!("the key given is for origin {:?}, not {origin:?}", v.origin);
            return Ok(Err(problem(ProblemKind::Signature, None, None, msg)));
        }
        report.key = "given".into();
        return Ok(Ok(HashMap::from([(id(&v), v)])));
    }
    let mut keys = Lister::new(layout.keys_prefix());
    let mut verifiers = HashMap::new();
    let mut names = Vec::new();
    while let Some(archived) = keys.next(store).await? {
        note_versions(report, &archived);
        let bytes = store.get(&archived.key, archived.version_id.as_deref(), MAX_SMALL_BYTES).await?;
        let parsed = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8").and_then(CheckpointVerifier::parse);
        match parsed {
            Ok(v) if v.origin == origin && archived.key == layout.pubkey_key(&id(&v)) => {
                names.push(archived.key.clone());
                verifiers.insert(id(&v), v);
            }
            Ok(_) => {
                let msg = format!("{} is not a key of origin {origin:?} under its own id", archived.key);
                return Ok(Err(problem(ProblemKind::Signature, None, Some(&archived.key), msg)));
            }
            Err(why) => {
                let msg = format!("{}: {why}", archived.key);
                return Ok(Err(problem(ProblemKind::Signature, None, Some(&archived.key), msg)));
            }
        }
    }
    report.key = format!("archive: {}", names.join(", "));
    Ok(Ok(verifiers))
}

/// Fetches and checks the checkpoint files whose head is in `plan`'s lines:
/// head seq → (key, hash) to compare while the lines are read.
async fn checkpoints_up_to(
    store: &impl ObjectStore,
    layout: &Layout,
    lister: &mut Lister,
    plan: &Plan,
    verifiers: &Verifiers,
    report: &mut ArchiveReport,
) -> Result<Result<BTreeMap<u64, (String, LineHash)>, Problem>, StoreError> {
    let mut expects = BTreeMap::new();
    while let Some(archived) = lister.peek(store).await? {
        let Some((seq, head)) = layout.parse_checkpoint_key(&archived.key) else {
            tracing::warn!(key = %archived.key, "not a checkpoint object name; ignored");
            lister.next(store).await?;
            continue;
        };
        if seq > plan.object.last {
            break;
        }
        let archived = archived.clone();
        lister.next(store).await?;
        note_versions(report, &archived);
        let bytes = store.get(&archived.key, archived.version_id.as_deref(), MAX_SMALL_BYTES).await?;
        let key = archived.key;
        let cp = match std::str::from_utf8(&bytes)
            .map_err(|_| "not UTF-8".to_owned())
            .and_then(|t| parse_note(t).map_err(|e| e.to_string()))
        {
            Ok(cp) => cp,
            Err(why) => return Ok(Err(problem(ProblemKind::Tampered, Some(seq), Some(&key), format!("{key}: {why}")))),
        };
        if cp.head_seq != seq || cp.head != head.to_hex() {
            let msg = format!("{key} holds a checkpoint of seq {} but is named for seq {seq}", cp.head_seq);
            return Ok(Err(problem(ProblemKind::Tampered, Some(seq), Some(&key), msg)));
        }
        if let Err(p) = check_signature(verifiers, &cp, &key) {
            return Ok(Err(Problem { seq: Some(seq), ..p }));
        }
        report.checkpoint_objects += 1;
        if seq < plan.object.first {
            // Its lines were read before: only a gap in the listing gets here.
            let msg = format!("{key} covers seq {seq}, which no object read before it holds");
            return Ok(Err(problem(ProblemKind::Tampered, Some(seq), Some(&key), msg)));
        }
        expects.insert(seq, (key, head));
    }
    Ok(Ok(expects))
}

fn check_signature(verifiers: &Verifiers, cp: &CheckpointRecord, source: &str) -> Result<(), Problem> {
    let Some(verifier) = verifiers.get(&cp.key_id) else {
        let msg = format!("{source}: signed by key {}, which is neither given nor in the archive", cp.key_id);
        return Err(problem(ProblemKind::Signature, None, Some(source), msg));
    };
    verifier.verify(cp).map_err(|e| problem(ProblemKind::Signature, None, Some(source), format!("{source}: {e}")))
}

/// Reads one object's lines onto the chain.
fn chain_object(
    walk: &mut Walk,
    compressed: &[u8],
    plan: &Plan,
    expects: &BTreeMap<u64, (String, LineHash)>,
    verifiers: &Verifiers,
) -> Result<(), Problem> {
    let key = plan.archived.key.as_str();
    let object = &plan.object;
    let at = |seq: u64, line: u64, kind: ProblemKind, message: String| Problem {
        kind,
        message,
        seq: Some(seq),
        segment: Some(key.to_owned()),
        line: Some(line),
    };
    let decoder = zstd::stream::read::Decoder::with_buffer(compressed)
        .map_err(|e| at(object.first, 1, ProblemKind::Tampered, format!("not zstd: {e}")))?;
    let mut reader = BufReader::with_capacity(1 << 20, decoder);
    let mut line = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    let mut last_hash = None;
    loop {
        line.clear();
        let seq = walk.chain.next_seq;
        // At most one line longer than any the writer makes: an object
        // from the archive is not trusted to end its lines.
        let n = std::io::Read::take(&mut reader, MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| at(seq, line_no + 1, ProblemKind::Tampered, format!("does not decompress: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.len() as u64 > MAX_LINE_BYTES {
            return Err(at(seq, line_no, ProblemKind::Tampered, format!("a line longer than {MAX_LINE_BYTES} bytes")));
        }
        if line.pop() != Some(b'\n') {
            return Err(at(seq, line_no, ProblemKind::Tampered, "the object ends inside a line".into()));
        }
        if seq > object.last {
            let msg = format!("the object is named for seqs {} to {} but goes on", object.first, object.last);
            return Err(at(seq, line_no, ProblemKind::Tampered, msg));
        }
        let (header, hash) =
            walk.chain.advance(&line).map_err(|e| at(seq, line_no, ProblemKind::Tampered, e.to_string()))?;
        if header.kind == "checkpoint" {
            let Ok(Entry::Checkpoint(cp)) = decode_line(&line).map(|d| d.entry) else {
                return Err(at(seq, line_no, ProblemKind::Tampered, "checkpoint does not decode".into()));
            };
            if seq == 0 || cp.head_seq != seq - 1 || cp.head != header.prev {
                return Err(at(
                    seq,
                    line_no,
                    ProblemKind::Tampered,
                    "checkpoint does not sign the line before it".into(),
                ));
            }
            check_signature(verifiers, &cp, &format!("{key} line {line_no}")).map_err(|p| Problem {
                seq: Some(seq),
                line: Some(line_no),
                segment: Some(key.to_owned()),
                ..p
            })?;
            walk.checkpoints_in_log += 1;
        }
        if let Some((source, want)) = expects.get(&seq)
            && *want != hash
        {
            let msg = format!("seq {seq} has hash {hash}, but checkpoint {source} says {want}: a fork");
            return Err(at(seq, line_no, ProblemKind::Fork, msg));
        }
        if let Some(claims) = plan.claims.get(&seq) {
            for (part, want) in claims {
                if *want != hash {
                    let msg = format!("seq {seq} has hash {hash}, but part {part} is named for {want}: two histories");
                    return Err(at(seq, line_no, ProblemKind::Fork, msg));
                }
            }
        }
        walk.records += 1;
        walk.bytes += line.len() as u64 + 1;
        last_hash = Some((seq, hash));
    }
    match last_hash {
        Some((seq, hash)) if seq == object.last && hash == object.head => Ok(()),
        Some((seq, hash)) if seq == object.last => {
            let msg =
                format!("the object's name says its last line hashes to {}, but it hashes to {hash}", object.head);
            Err(at(seq, line_no, ProblemKind::Tampered, msg))
        }
        Some((seq, _)) => {
            let msg = format!("the object is named for seqs {} to {} but ends at {seq}", object.first, object.last);
            Err(at(seq + 1, line_no, ProblemKind::Tampered, msg))
        }
        None => Err(at(object.first, 1, ProblemKind::Tampered, "the object holds no line".into())),
    }
}
