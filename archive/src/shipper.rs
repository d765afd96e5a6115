//! The shipper: every sealed segment, the open segment's growth and every
//! checkpoint, uploaded to the archive and read back, then (with
//! `--local-retention`) shipped segments pruned locally.
//!
//! A round ([`Shipper::round`]), every `--archive-interval`:
//! 1. the verifier key, once;
//! 2. each sealed segment not shipped yet, whole (its zstd file as it is on
//!    disk), then its requests as Parquet;
//! 3. the open segment's lines after the last shipped seq, as a part;
//! 4. the checkpoint files whose head is shipped;
//! 5. pruning.
//!
//! Every key names its content (origin, first seq, last seq, hash of the
//! last line), every put is `If-None-Match: *` after a HEAD, and an upload
//! counts once a HEAD's SHA-256 checksum (or, from a store without
//! checksums, the bytes read back) equals what was sent. What is shipped is
//! recorded in `<data-dir>/archive/state.json`, durably, after each upload;
//! after a crash between an upload and that write, the next round finds
//! the upload by its key (segments and checkpoints: the same key again;
//! parts: [`Shipper::adopt_parts`]), so nothing is shipped twice and
//! nothing is skipped. Before shipping lines, the shipper checks they chain
//! onto the last shipped hash: a local ledger that was rolled back or
//! forked stops the shipping (`diverged`), loudly.

mod local;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use egress_ledger::checkpoint::{CheckpointVerifier, VERIFIER_FILE, parse_note};
use egress_ledger::record::{Entry, NoteRecord};
use egress_ledger::{Ledger, LineHash};

use crate::events::EventsBuilder;
use crate::layout::{Layout, LinesKind, LinesObject};
use crate::location::{ArchiveUrl, Origin};
use crate::status::ArchiveStatus;
use crate::store::{ObjectStore, PutOutcome, StoreError, sha256_base64};
use local::{LocalLines, SealedSegment};

/// Runs CPU work (reading and checking a segment, compressing, Parquet)
/// off the async threads, which also serve the admin API.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ShipError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ShipError::Local(format!("a shipping task failed: {e}")))?
        .map_err(ShipError::Local)
}
use state::{ShipState, Shipped};

/// How the shipper runs.
#[derive(Debug, Clone)]
pub struct ShipperConfig {
    pub data_dir: PathBuf,
    pub url: ArchiveUrl,
    pub origin: Origin,
    /// Object Lock retention each upload asks for (COMPLIANCE mode, until
    /// now + this); `None`: the bucket's default, if any.
    pub retention: Option<Duration>,
    /// Sealed segments shipped this long ago may be removed locally.
    pub local_retention: Option<Duration>,
    /// Time between rounds.
    pub interval: Duration,
    /// A lag beyond this is logged as an error.
    pub max_lag: Duration,
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("archive: {0}")]
    Store(#[from] StoreError),
    #[error("local ledger: {0}")]
    Local(String),
    /// The archive and the local ledger disagree.
    #[error("the local ledger does not extend the archive: {0}")]
    Diverged(String),
}

/// Ships one ledger to one archive.
#[derive(Debug)]
pub struct Shipper<S> {
    store: Arc<S>,
    config: ShipperConfig,
    layout: Layout,
    state: ShipState,
    status: Arc<ArchiveStatus>,
    ledger: Option<Ledger>,
    local: LocalLines,
    adopted: bool,
    /// The ledger is closed: nothing is pruned.
    closing: bool,
}

impl<S: ObjectStore + 'static> Shipper<S> {
    /// A shipper resuming from `<data-dir>/archive/state.json`. `ledger`,
    /// when given, receives a note for each pruned segment.
    ///
    /// # Errors
    /// When the state file exists and cannot be read.
    pub fn new(store: Arc<S>, config: ShipperConfig, ledger: Option<Ledger>) -> Result<Shipper<S>, ShipError> {
        let layout = Layout::new(&config.url, &config.origin);
        let archive = format!("{}{}", config.url, config.origin);
        let state = ShipState::load(&config.data_dir, &archive, config.origin.as_str()).map_err(ShipError::Local)?;
        let status = Arc::new(ArchiveStatus::new(format!("{archive}/"), config.origin.to_string(), config.max_lag));
        status.update(|s| s.shipped_seq = state.shipped.as_ref().map(|s| s.seq));
        let local = LocalLines::new(config.data_dir.join("ledger"));
        Ok(Shipper { store, config, layout, state, status, ledger, local, adopted: false, closing: false })
    }

    /// The status the admin API and metrics read.
    #[must_use]
    pub fn status(&self) -> Arc<ArchiveStatus> {
        Arc::clone(&self.status)
    }

    /// Rounds every interval until `stop` resolves; gives the shipper back
    /// for [`Shipper::last_round`] once the ledger is closed.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) -> Self {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_loud = None::<Instant>;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = ticker.tick() => {}
            }
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, archive = %self.layout.root(), "archive shipping round failed; retrying");
            }
            let snapshot = self.status.snapshot(None);
            if snapshot.lagging && last_loud.is_none_or(|t| t.elapsed() >= Duration::from_mins(1)) {
                last_loud = Some(Instant::now());
                tracing::error!(
                    lag_records = snapshot.lag_records,
                    lag_seconds = snapshot.lag_seconds,
                    max_lag_seconds = snapshot.max_lag_seconds,
                    last_error = snapshot.last_error.as_deref().unwrap_or(""),
                    "ARCHIVE LAG: ledger lines are only on this host beyond --archive-max-lag"
                );
            }
        }
        self
    }

    /// A round after the ledger was closed: ships what the close wrote (its
    /// last checkpoint) and prunes nothing (a pruning is noted on the
    /// chain, which is closed).
    ///
    /// # Errors
    /// As [`Shipper::round`]; the next start resumes.
    pub async fn last_round(&mut self) -> Result<(), ShipError> {
        self.closing = true;
        self.round().await
    }

    /// One round; see the module's doc.
    ///
    /// # Errors
    /// The first failure; what was shipped before it stays shipped.
    pub async fn round(&mut self) -> Result<(), ShipError> {
        if let Some(why) = self.status.snapshot(None).diverged {
            return Err(ShipError::Diverged(why));
        }
        let started = Instant::now();
        let result = self.round_inner().await;
        match &result {
            Ok(()) => self.status.caught_up(started),
            Err(ShipError::Diverged(why)) => {
                tracing::error!(error = %why, "ARCHIVE DIVERGED: shipping stopped; run `egress-proxy ledger verify --archive`");
                let why = why.clone();
                self.status.update(|s| s.diverged = Some(why.clone()));
                self.status.failed(why);
            }
            Err(e) => self.status.failed(e.to_string()),
        }
        result
    }

    async fn round_inner(&mut self) -> Result<(), ShipError> {
        let view = self.local.view().map_err(|e| ShipError::Local(e.to_string()))?;
        self.status.update(|s| s.local_head_seq = view.head_seq);
        if !self.state.key_shipped {
            self.ship_key().await?;
        }
        if !self.adopted {
            self.adopt_parts().await?;
            self.adopted = true;
        }
        for sealed in &view.sealed {
            if self.state.segments_through.is_some_and(|t| t >= sealed.last) {
                continue;
            }
            self.ship_segment(sealed).await?;
        }
        if let Some(open) = &view.open {
            // Only what the writer made durable (see `LocalLines::read_open`).
            let durable = self.ledger.as_ref().map(|l| l.head().records.checked_sub(1));
            if durable != Some(None) {
                self.ship_part(open.first, &open.name, durable.flatten()).await?;
            }
        }
        self.ship_checkpoints().await?;
        if let Some(keep) = self.config.local_retention.filter(|_| !self.closing) {
            self.prune(&view.sealed, keep).await?;
        }
        Ok(())
    }

    fn retain_until(&self) -> Option<SystemTime> {
        self.config.retention.map(|d| SystemTime::now() + d)
    }

    /// Puts `bytes` at `key` and reads it back. `same_content` decides,
    /// when the key exists with other bytes, whether they hold the same
    /// thing (a segment compressed differently holds the same lines).
    async fn put_confirmed(
        &self,
        key: &str,
        bytes: Vec<u8>,
        same_content: impl Fn(&[u8]) -> bool,
    ) -> Result<PutOutcome, ShipError> {
        let sum = sha256_base64(&bytes);
        let size = bytes.len() as u64;
        let outcome = self.store.put(key, bytes, self.retain_until()).await?;
        let info = self
            .store
            .head(key)
            .await?
            .ok_or_else(|| StoreError::Unreachable(format!("{key} is not there after it was written")))?;
        let same = match &info.sha256_base64 {
            Some(theirs) if *theirs == sum && info.size == size => true,
            _ => {
                let stored = self.store.get(key, None, crate::verify::MAX_OBJECT_BYTES).await?;
                sha256_base64(&stored) == sum || same_content(&stored)
            }
        };
        if !same {
            return Err(ShipError::Diverged(format!(
                "{key} is in the archive with other content than the local ledger's"
            )));
        }
        if outcome == PutOutcome::Created {
            self.status.update(|s| s.bytes_shipped += size);
        }
        Ok(outcome)
    }

    async fn ship_key(&mut self) -> Result<(), ShipError> {
        let path = self.config.data_dir.join("keys").join(VERIFIER_FILE);
        let verifier = CheckpointVerifier::load(&path).map_err(|e| ShipError::Local(e.to_string()))?;
        if verifier.origin != self.config.origin.as_str() {
            return Err(ShipError::Local(format!(
                "the checkpoint key is for origin {:?}, the archive for {:?}",
                verifier.origin, self.config.origin
            )));
        }
        let id = hex::encode(egress_ledger::checkpoint::key_id(&verifier.origin, &verifier.key));
        let text = format!("{}\n", verifier.to_text());
        self.put_confirmed(&self.layout.pubkey_key(&id), text.into_bytes(), |_| false).await?;
        self.state.key_shipped = true;
        self.save()
    }

    /// Parts uploaded before a crash let the state file record them: found
    /// by listing after the last shipped seq, kept if they chain on.
    async fn adopt_parts(&mut self) -> Result<(), ShipError> {
        let prefix = self.layout.lines_prefix(LinesKind::Part);
        loop {
            let next = self.state.shipped.as_ref().map_or(0, |s| s.seq + 1);
            let start_after = format!("{prefix}{next:020}");
            let page = self.store.list(&prefix, Some(&start_after), None, false).await?;
            let found = page
                .keys
                .iter()
                .filter_map(|k| self.layout.parse_lines_key(LinesKind::Part, k))
                .filter(|p| p.first == next)
                .max_by_key(|p| p.last);
            let Some(part) = found else { return Ok(()) };
            let local = self.local.hash_at(part.last).map_err(|e| ShipError::Local(e.to_string()))?;
            match local {
                Some(hash) if hash == part.head => {
                    tracing::info!(first = part.first, last = part.last, "found a part shipped before a crash");
                    self.state.shipped = Some(Shipped { seq: part.last, head: part.head });
                    self.save()?;
                }
                Some(_) => {
                    return Err(ShipError::Diverged(format!(
                        "{} names another hash for seq {} than the local ledger",
                        self.layout.lines_key(&part),
                        part.last
                    )));
                }
                // Not written locally (yet): a rollback, unless it appears.
                None => {
                    return Err(ShipError::Diverged(format!(
                        "{} holds seqs up to {}, beyond the local ledger's head",
                        self.layout.lines_key(&part),
                        part.last
                    )));
                }
            }
        }
    }

    /// Checks that lines `first..` whose first `prev` is `prev` extend what
    /// was shipped.
    fn check_extends(
        &self,
        first: u64,
        prev: &LineHash,
        hash_of: impl Fn(u64) -> Option<LineHash>,
    ) -> Result<(), ShipError> {
        let Some(shipped) = &self.state.shipped else { return Ok(()) };
        let want = if shipped.seq + 1 == first {
            Some(*prev)
        } else if shipped.seq >= first {
            hash_of(shipped.seq)
        } else {
            return Err(ShipError::Diverged(format!(
                "seqs {} to {} are neither shipped nor in the local ledger",
                shipped.seq + 1,
                first - 1
            )));
        };
        if want == Some(shipped.head) {
            Ok(())
        } else {
            Err(ShipError::Diverged(format!(
                "seq {} was shipped with hash {}, and the local ledger has another",
                shipped.seq, shipped.head
            )))
        }
    }

    async fn ship_segment(&mut self, sealed: &SealedSegment) -> Result<(), ShipError> {
        let (dir, owned) = (self.local.dir().to_path_buf(), sealed.clone());
        let local::Lines { first, last, first_prev, head, content, compressed } =
            blocking(move || local::read_sealed(&dir, &owned)).await?;
        let content = Arc::new(content);
        self.check_extends(first, &first_prev, |seq| local::hash_in(&content, first, seq))?;
        let segment = Shipped { seq: last, head };
        let object = LinesObject { kind: LinesKind::Segment, first, last, head };
        let key = self.layout.lines_key(&object);
        let lines = Arc::clone(&content);
        self.put_confirmed(&key, compressed, move |stored| {
            zstd::decode_all(stored).is_ok_and(|stored| stored == *lines)
        })
        .await?;
        // Its requests as Parquet.
        let (origin, carry) = (self.config.origin.to_string(), self.state.carry.clone());
        let events_of = move || {
            let mut builder = EventsBuilder::new(&origin);
            for line in &carry {
                builder.carry_start(line.as_bytes())?;
            }
            for line in content.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                builder.push_line(line)?;
            }
            builder.finish()
        };
        let (files, open) = blocking(move || events_of().map_err(|e| format!("{key}: making its events: {e}"))).await?;
        for file in files {
            let events_key = self.layout.events_key(&file.date, &object);
            // Parquet is derived: other bytes for the same key are an older
            // writer's, not a conflict.
            self.put_confirmed(&events_key, file.bytes, |_| true).await?;
            self.status.update(|s| s.events_files_shipped += 1);
        }
        self.state.carry = open.into_iter().map(|l| String::from_utf8_lossy(&l).into_owned()).collect();
        self.state.segments_through = Some(segment.seq);
        if self.state.shipped.as_ref().is_none_or(|s| s.seq < segment.seq) {
            self.state.shipped = Some(segment);
        }
        self.save()?;
        let shipped_seq = self.state.shipped.map(|s| s.seq);
        self.status.update(|s| {
            s.segments_shipped += 1;
            s.shipped_seq = shipped_seq;
        });
        tracing::debug!(first, last, "segment shipped");
        Ok(())
    }

    async fn ship_part(&mut self, segment_first: u64, name: &str, until: Option<u64>) -> Result<(), ShipError> {
        let from = self.state.shipped.as_ref().map_or(0, |s| s.seq + 1).max(segment_first);
        let Some(part) = self.local.read_open(segment_first, name, from, until).map_err(ShipError::Local)? else {
            return Ok(());
        };
        self.check_extends(part.first, &part.first_prev, |_| None)?;
        let object = LinesObject { kind: LinesKind::Part, first: part.first, last: part.last, head: part.head };
        let key = self.layout.lines_key(&object);
        let content = Arc::new(part.content);
        let plain = Arc::clone(&content);
        let compressed = blocking(move || zstd::bulk::compress(&plain, 3).map_err(|e| e.to_string())).await?;
        self.put_confirmed(&key, compressed, move |stored| zstd::decode_all(stored).is_ok_and(|l| l == *content))
            .await?;
        self.state.shipped = Some(Shipped { seq: part.last, head: part.head });
        self.save()?;
        self.status.update(|s| {
            s.parts_shipped += 1;
            s.shipped_seq = Some(part.last);
        });
        Ok(())
    }

    async fn ship_checkpoints(&mut self) -> Result<(), ShipError> {
        let Some(shipped) = self.state.shipped.as_ref().map(|s| s.seq) else { return Ok(()) };
        let dir = self.config.data_dir.join("checkpoints");
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        let seq = name.strip_prefix("checkpoint-")?.strip_suffix(".txt")?.parse().ok()?;
                        Some((seq, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort_unstable();
        for (seq, path) in files {
            if self.state.checkpoints_through.is_some_and(|t| t >= seq) || seq > shipped {
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| ShipError::Local(format!("{}: {e}", path.display())))?;
            let cp = parse_note(&text).map_err(|e| ShipError::Local(format!("{}: {e}", path.display())))?;
            let head = LineHash::from_hex(&cp.head)
                .ok_or_else(|| ShipError::Local(format!("{}: not a hash", path.display())))?;
            let key = self.layout.checkpoint_key(cp.head_seq, &head);
            self.put_confirmed(&key, text.into_bytes(), |_| false).await?;
            self.state.checkpoints_through = Some(seq);
            self.save()?;
            self.status.update(|s| s.checkpoints_shipped += 1);
        }
        Ok(())
    }

    /// Removes sealed segments that are shipped, covered by a shipped
    /// checkpoint and older than `keep`; notes each on the ledger.
    async fn prune(&mut self, sealed: &[SealedSegment], keep: Duration) -> Result<(), ShipError> {
        let (Some(through), Some(signed)) = (self.state.segments_through, self.state.checkpoints_through) else {
            return Ok(());
        };
        // The writer's recovery reads the newest sealed segment: never that one.
        let candidates = sealed.len().saturating_sub(1);
        for segment in &sealed[..candidates] {
            if segment.last > through || segment.last > signed || !segment.compressed {
                continue;
            }
            let age = segment.modified.elapsed().unwrap_or_default();
            if age < keep {
                continue;
            }
            let ledger_dir = self.config.data_dir.join("ledger");
            egress_ledger::prune::prune_segment(&ledger_dir, segment.first)
                .map_err(|e| ShipError::Local(format!("pruning {}: {e}", segment.name)))?;
            self.status.update(|s| s.segments_pruned += 1);
            tracing::info!(segment = %segment.name, "pruned a shipped segment");
            if let Some(ledger) = &self.ledger {
                let note = NoteRecord::new("archive_pruned")
                    .with("segment", segment.name.clone())
                    .with("first_seq", segment.first)
                    .with("last_seq", segment.last)
                    .with("archive", format!("{}{}", self.store.location(), self.layout.root()));
                if let Err(e) = ledger.append(Entry::Note(note)).await {
                    tracing::warn!(error = %e, "could not note a pruned segment on the ledger");
                }
            }
        }
        Ok(())
    }

    fn save(&self) -> Result<(), ShipError> {
        self.state.save(&self.config.data_dir).map_err(ShipError::Local)
    }
}
