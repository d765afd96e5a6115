//! Egress events (a `start` joined with its `end`) found through the sled
//! block indexes, and per-group totals of them.
//!
//! A search works on a snapshot taken as it begins: `indexed_next` read
//! once; everything below it comes from sled (candidate start seqs from the
//! principal and bucket indexes or the block time index, or the blocks
//! walked newest first), and every line at or above it — the block being
//! built, and whatever is in flight — is read from the segments at once, so
//! a request answered a moment ago is found. Lines are read where the block
//! anchors say they are, never by scanning the log from its start.
//!
//! Filters without an index (key prefix, outcome, or none at all) walk
//! blocks; one page examines at most [`BLOCKS_PER_PAGE`] blocks and then
//! answers what it found with a cursor to go on from, so no request reads
//! the whole ledger.
//!
//! On a ledger whose oldest segments were pruned, a search that reaches a
//! block starting before the first local seq fails with
//! `ReadError::Pruned` (410): the answer would be missing what only the
//! archive holds.

use std::collections::{BTreeMap, HashMap, HashSet};

use egress_ledger::index::{BLOCK, EventIndex};
use egress_ledger::record::{Entry, decode_line, parse_ts_micros};
use egress_ledger::{EndRecord, Ledger, Outcome, StartRecord};

use super::{EgressEvent, GroupBy, SummaryGroup};
use crate::ApiError;
use egress_ledger::cursor::{CursorLine, LineCursor, ReadError};

/// Most index blocks one page of results may read before it answers.
pub const BLOCKS_PER_PAGE: usize = 64;

/// What an event must match; times in µs since the epoch.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub principal: Option<String>,
    pub bucket: Option<String>,
    pub key_prefix: Option<String>,
    /// Inclusive.
    pub since: Option<u64>,
    /// Exclusive.
    pub until: Option<u64>,
    pub outcome: Option<Outcome>,
}

impl Filter {
    fn has_time(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }

    fn in_time(&self, ts_micros: u64) -> bool {
        self.since.is_none_or(|s| ts_micros >= s) && self.until.is_none_or(|u| ts_micros < u)
    }

    fn matches_start(&self, start: &StartLine) -> bool {
        let s = &start.record;
        self.principal.as_ref().is_none_or(|p| s.principal.as_ref() == Some(p))
            && self.bucket.as_ref().is_none_or(|b| s.bucket.as_ref() == Some(b))
            && self.key_prefix.as_ref().is_none_or(|prefix| s.key.as_ref().is_some_and(|k| k.starts_with(prefix)))
            && self.in_time(start.ts_micros)
    }

    fn matches_end(&self, end: Option<&EndLine>) -> bool {
        self.outcome.is_none_or(|o| end.is_some_and(|e| e.record.outcome == o))
    }
}

/// A `start` line, decoded.
#[derive(Debug, Clone)]
struct StartLine {
    seq: u64,
    ts: String,
    ts_micros: u64,
    record: StartRecord,
}

/// An `end` line, decoded.
#[derive(Debug, Clone)]
struct EndLine {
    seq: u64,
    record: EndRecord,
}

fn event(start: &StartLine, end: Option<&EndLine>) -> EgressEvent {
    let s = &start.record;
    let e = end.map(|e| &e.record);
    EgressEvent {
        req: s.req.clone(),
        start_seq: start.seq,
        ts: start.ts.clone(),
        principal: s.principal.clone(),
        access_key_id: s.access_key_id.clone(),
        source_ip: s.source_ip.clone(),
        operation: s.operation.clone(),
        method: s.method.clone(),
        bucket: s.bucket.clone(),
        key: s.key.clone(),
        range: s.range.clone(),
        status: e.and_then(|e| e.status),
        bytes_sent: e.and_then(|e| e.bytes_sent),
        object_size: e.and_then(|e| e.object_size),
        outcome: e.map(|e| e.outcome.as_str().to_owned()),
        error_code: e.and_then(|e| e.error_code.clone()),
        duration_ms: e.and_then(|e| e.duration_ms),
        end_seq: end.map(|e| e.seq),
    }
}

/// The ledger as a search sees it: sled below `indexed_next`, the decoded
/// tail above it, and the ends met while reading.
struct Snapshot<'a> {
    index: &'a EventIndex,
    reader: egress_ledger::reader::LedgerReader,
    indexed_next: u64,
    /// Starts at or above `indexed_next`, by seq.
    tail_starts: Vec<StartLine>,
    /// Ends at or above `indexed_next`, by their start's seq.
    tail_ends: HashMap<u64, EndLine>,
    /// Ends met while reading blocks, by their start's seq.
    seen_ends: HashMap<u64, EndLine>,
    /// Blocks read so far.
    blocks_read: usize,
    /// Blocks a page may read before it answers.
    budget: usize,
    /// The unindexed tail reaches into pruned history: the first local seq
    /// and the time of its line.
    tail_pruned: Option<(u64, Option<u64>)>,
}

impl<'a> Snapshot<'a> {
    fn take(ledger: &'a Ledger) -> Result<Snapshot<'a>, ApiError> {
        let store = ledger.store().ok_or_else(|| ApiError::internal("the ledger was opened without its index"))?;
        let dirs = ledger.data_dir().ok_or_else(|| ApiError::internal("the ledger was opened without a data dir"))?;
        let index = store.index.as_ref();
        let indexed_next = index.indexed_next().map_err(ReadError::from)?;
        let reader = egress_ledger::cursor::open_reader(&dirs.ledger())?;
        let mut snapshot = Snapshot {
            index,
            reader,
            indexed_next,
            tail_starts: Vec::new(),
            tail_ends: HashMap::new(),
            seen_ends: HashMap::new(),
            blocks_read: 0,
            budget: BLOCKS_PER_PAGE,
            tail_pruned: None,
        };
        // Lines pruned from this host are not in the tail to read; whether
        // an answer may do without them depends on its filter
        // ([`Snapshot::check_tail`]).
        let first_local = snapshot.reader.first_seq();
        let tail_from = indexed_next.max(first_local);
        let mut cursor = LineCursor::open_at(&snapshot.reader, index, tail_from)?;
        let mut line = CursorLine::default();
        while cursor.next_line(&mut line)? {
            if line.seq < indexed_next {
                continue;
            }
            if indexed_next < first_local && snapshot.tail_pruned.is_none() {
                let ts = decode_line(&line.bytes).ok().and_then(|d| parse_ts_micros(&d.ts));
                snapshot.tail_pruned = Some((first_local, ts));
            }
            match decode(&line)? {
                Some(Decoded::Start(start)) => snapshot.tail_starts.push(start),
                Some(Decoded::End(end)) => {
                    snapshot.tail_ends.insert(end.record.start_seq, end);
                }
                None => {}
            }
        }
        Ok(snapshot)
    }

    /// Fails with [`ReadError::Pruned`] (410) when the unindexed tail
    /// reaches into pruned history and `filter` could want lines from it:
    /// only a `since` after the first local line's time rules them out
    /// (line times never go back).
    fn check_tail(&self, filter: &Filter) -> Result<(), ReadError> {
        match self.tail_pruned {
            Some((_, Some(first_ts))) if filter.since.is_some_and(|since| since > first_ts) => Ok(()),
            Some((first_local_seq, _)) => Err(ReadError::Pruned { first_local_seq }),
            None => Ok(()),
        }
    }

    /// Every start of an indexed block, by seq; its ends go to `seen_ends`.
    fn read_block(&mut self, block: u64) -> Result<Vec<StartLine>, ApiError> {
        self.blocks_read += 1;
        let first = block * BLOCK;
        let last = ((block + 1) * BLOCK).min(self.indexed_next);
        // A block reaching before the first local seq is pruned history
        // (410, `ReadError::Pruned`): a part of it would be a wrong answer.
        let mut cursor = LineCursor::open_at(&self.reader, self.index, first)?;
        let mut line = CursorLine::default();
        let mut starts = Vec::new();
        while cursor.next_line(&mut line)? {
            if line.seq < first {
                continue;
            }
            if line.seq >= last {
                break;
            }
            match decode(&line)? {
                Some(Decoded::Start(start)) => starts.push(start),
                Some(Decoded::End(end)) => {
                    self.seen_ends.insert(end.record.start_seq, end);
                }
                None => {}
            }
        }
        Ok(starts)
    }

    /// The end of the event that started at `start_seq`, if written.
    fn end_of(&mut self, start_seq: u64) -> Result<Option<EndLine>, ApiError> {
        if let Some(end) = self.seen_ends.get(&start_seq).or_else(|| self.tail_ends.get(&start_seq)) {
            return Ok(Some(end.clone()));
        }
        let Some(end_seq) = self.index.end_of(start_seq).map_err(ReadError::from)? else {
            return Ok(None);
        };
        if end_seq >= self.indexed_next {
            // Written after this snapshot's tail was read.
            return Ok(None);
        }
        let mut cursor = LineCursor::open_at(&self.reader, self.index, end_seq)?;
        let mut line = CursorLine::default();
        if !cursor.find(end_seq, &mut line)? {
            return Err(ApiError::internal(format!(
                "the index places the end of seq {start_seq} at seq {end_seq}, which the segments do not hold; run `egress-proxy ledger reindex`"
            )));
        }
        match decode(&line)? {
            Some(Decoded::End(end)) if end.record.start_seq == start_seq => Ok(Some(end)),
            _ => Err(ApiError::internal(format!(
                "seq {end_seq} is not the end of seq {start_seq} as the index says; run `egress-proxy ledger reindex`"
            ))),
        }
    }
}

// Short-lived (one line at a time): the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Decoded {
    Start(StartLine),
    End(EndLine),
}

fn decode(line: &CursorLine) -> Result<Option<Decoded>, ApiError> {
    let kind = line.kind();
    if kind != "start" && kind != "end" {
        return Ok(None);
    }
    let decoded = decode_line(&line.bytes).map_err(|e| {
        ApiError::internal(format!("seq {} does not decode: {e}; run `egress-proxy ledger verify`", line.seq))
    })?;
    Ok(match decoded.entry {
        Entry::Start(record) => Some(Decoded::Start(StartLine {
            seq: decoded.seq,
            ts_micros: parse_ts_micros(&decoded.ts).unwrap_or(0),
            ts: decoded.ts,
            record,
        })),
        Entry::End(record) => Some(Decoded::End(EndLine { seq: decoded.seq, record })),
        Entry::Checkpoint(_) | Entry::Note(_) => None,
    })
}

/// One page of events, newest first, with start seq below `below`; the
/// cursor to continue from if there may be more.
/// `budget` is the most blocks to read ([`BLOCKS_PER_PAGE`]).
pub fn search(
    ledger: &Ledger,
    filter: &Filter,
    below: Option<u64>,
    limit: usize,
    budget: usize,
) -> Result<(Vec<EgressEvent>, Option<u64>), ApiError> {
    let mut snapshot = Snapshot::take(ledger)?;
    snapshot.check_tail(filter)?;
    snapshot.budget = budget;
    let below = below.unwrap_or(u64::MAX);
    // One more than asked, to know whether there is a next page.
    let want = limit + 1;
    let mut found = Vec::with_capacity(want.min(1024));

    let tail = std::mem::take(&mut snapshot.tail_starts);
    for start in tail.iter().rev() {
        if found.len() >= want {
            break;
        }
        if start.seq >= below || !filter.matches_start(start) {
            continue;
        }
        let end = snapshot.tail_ends.get(&start.seq);
        if filter.matches_end(end) {
            found.push(event(start, end));
        }
    }

    let upper = below.min(snapshot.indexed_next);
    let mut stopped_at = None;
    if found.len() < want && upper > 0 {
        stopped_at = if filter.principal.is_some() || filter.bucket.is_some() {
            search_by_name(&mut snapshot, filter, upper, want, &mut found)?
        } else {
            search_by_blocks(&mut snapshot, filter, upper, want, &mut found)?
        };
    }

    if found.len() > limit {
        found.truncate(limit);
        let next = found.last().map(|e| e.start_seq);
        return Ok((found, next));
    }
    // The page budget ran out: go on below the last block read.
    Ok((found, stopped_at))
}

/// Time-range blocks (newest first) below `upper`, or `None` without a time filter.
fn time_blocks(index: &EventIndex, filter: &Filter, upper: u64) -> Result<Option<Vec<u64>>, ApiError> {
    if !filter.has_time() {
        return Ok(None);
    }
    let blocks =
        index.blocks_in_time(filter.since.unwrap_or(0), filter.until.unwrap_or(u64::MAX)).map_err(ReadError::from)?;
    Ok(Some(blocks.into_iter().filter(|b| b * BLOCK < upper).collect()))
}

/// Candidates from the principal and bucket indexes, read block by block.
/// Returns the cursor to go on from if the page budget ran out.
fn search_by_name(
    snapshot: &mut Snapshot<'_>,
    filter: &Filter,
    upper: u64,
    want: usize,
    found: &mut Vec<EgressEvent>,
) -> Result<Option<u64>, ApiError> {
    let index = snapshot.index;
    let by_principal = filter
        .principal
        .as_deref()
        .map(|p| index.principal_starts(p, Some(upper)))
        .transpose()
        .map_err(ReadError::from)?;
    let by_bucket =
        filter.bucket.as_deref().map(|b| index.bucket_starts(b, Some(upper))).transpose().map_err(ReadError::from)?;
    let candidates = match (by_principal, by_bucket) {
        (Some(p), Some(b)) => intersect_descending(&p, &b),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => Vec::new(),
    };
    let allowed: Option<HashSet<u64>> = time_blocks(index, filter, upper)?.map(|b| b.into_iter().collect());

    let mut rest = candidates.as_slice();
    while let Some(&newest) = rest.first() {
        let block = newest / BLOCK;
        let in_block = rest.iter().take_while(|s| **s / BLOCK == block).count();
        let (group, after) = rest.split_at(in_block);
        rest = after;
        if allowed.as_ref().is_some_and(|a| !a.contains(&block)) {
            continue;
        }
        if snapshot.blocks_read >= snapshot.budget {
            return Ok(Some((block + 1) * BLOCK));
        }
        let starts: HashMap<u64, StartLine> = snapshot.read_block(block)?.into_iter().map(|s| (s.seq, s)).collect();
        for seq in group {
            let Some(start) = starts.get(seq) else {
                return Err(ApiError::internal(format!(
                    "the index names seq {seq} as a start, which the segments do not hold; run `egress-proxy ledger reindex`"
                )));
            };
            if !filter.matches_start(start) {
                continue;
            }
            let end = snapshot.end_of(*seq)?;
            if filter.matches_end(end.as_ref()) {
                found.push(event(start, end.as_ref()));
                if found.len() >= want {
                    return Ok(None);
                }
            }
        }
    }
    Ok(None)
}

/// Walks blocks newest first (those of the time range, or all).
/// Returns the cursor to go on from if the page budget ran out.
fn search_by_blocks(
    snapshot: &mut Snapshot<'_>,
    filter: &Filter,
    upper: u64,
    want: usize,
    found: &mut Vec<EgressEvent>,
) -> Result<Option<u64>, ApiError> {
    let blocks: Box<dyn Iterator<Item = u64>> = match time_blocks(snapshot.index, filter, upper)? {
        Some(blocks) => Box::new(blocks.into_iter()),
        None => Box::new((0..=(upper - 1) / BLOCK).rev()),
    };
    for block in blocks {
        if snapshot.blocks_read >= snapshot.budget {
            return Ok(Some((block + 1) * BLOCK));
        }
        let starts = snapshot.read_block(block)?;
        for start in starts.iter().rev() {
            if start.seq >= upper || !filter.matches_start(start) {
                continue;
            }
            let end = snapshot.end_of(start.seq)?;
            if filter.matches_end(end.as_ref()) {
                found.push(event(start, end.as_ref()));
                if found.len() >= want {
                    return Ok(None);
                }
            }
        }
    }
    Ok(None)
}

/// The seqs in both lists; both sorted newest (largest) first.
fn intersect_descending(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Greater => i += 1,
            std::cmp::Ordering::Less => j += 1,
        }
    }
    out
}

/// Requests and bytes sent per group, for events that started in the range.
///
/// Reads the blocks of the range (every block without one) oldest first,
/// keeping only events still waiting for their end in memory.
pub fn summarize(ledger: &Ledger, group_by: GroupBy, filter: &Filter) -> Result<Vec<SummaryGroup>, ApiError> {
    let mut snapshot = Snapshot::take(ledger)?;
    snapshot.check_tail(filter)?;
    let mut groups: BTreeMap<Option<String>, (u64, u64)> = BTreeMap::new();
    let mut waiting: HashMap<u64, Option<String>> = HashMap::new();
    let key_of = |start: &StartLine| match group_by {
        GroupBy::Principal => start.record.principal.clone(),
        GroupBy::Bucket => start.record.bucket.clone(),
        GroupBy::Day => Some(start.ts.get(..10).unwrap_or(&start.ts).to_owned()),
    };

    let upper = snapshot.indexed_next;
    let blocks: Vec<u64> = match time_blocks(snapshot.index, filter, upper)? {
        Some(mut blocks) => {
            blocks.reverse();
            blocks
        }
        None => (0..upper / BLOCK).collect(),
    };
    for block in blocks {
        for start in snapshot.read_block(block)? {
            if filter.in_time(start.ts_micros) {
                groups.entry(key_of(&start)).or_default().0 += 1;
                waiting.insert(start.seq, key_of(&start));
            }
        }
        for (start_seq, end) in snapshot.seen_ends.drain() {
            if let Some(key) = waiting.remove(&start_seq) {
                groups.entry(key).or_default().1 += end.record.bytes_sent.unwrap_or(0);
            }
        }
    }
    for start in std::mem::take(&mut snapshot.tail_starts) {
        if filter.in_time(start.ts_micros) {
            groups.entry(key_of(&start)).or_default().0 += 1;
            waiting.insert(start.seq, key_of(&start));
        }
    }
    for (start_seq, key) in waiting {
        if let Some(end) = snapshot.end_of(start_seq)? {
            groups.entry(key).or_default().1 += end.record.bytes_sent.unwrap_or(0);
        }
    }
    Ok(groups.into_iter().map(|(key, (requests, bytes_sent))| SummaryGroup { key, requests, bytes_sent }).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use egress_ledger::{LedgerConfig, Outcome};

    use super::*;

    fn start(i: u64) -> Entry {
        Entry::Start(StartRecord {
            req: format!("r{i}"),
            principal: Some(if i.is_multiple_of(3) { "alice" } else { "bob" }.to_owned()),
            method: "GET".into(),
            operation: "GetObject".into(),
            bucket: Some("data".into()),
            key: Some(format!("k{}/{i}", i % 50)),
            ..StartRecord::default()
        })
    }

    fn end(i: u64, start_seq: u64) -> Entry {
        Entry::End(EndRecord {
            req: format!("r{i}"),
            start_seq,
            status: Some(200),
            bytes_sent: Some(i),
            bytes_acked: None,
            object_size: None,
            etag: None,
            upstream_request_id: None,
            upstream_id2: None,
            duration_ms: None,
            outcome: Outcome::Complete,
            error_code: None,
            decision: None,
        })
    }

    /// Pages with a budget of one block still yield every event once, in
    /// order, even where a page comes back empty.
    #[tokio::test]
    async fn a_spent_budget_answers_a_cursor_to_go_on_from() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(&LedgerConfig::new(dir.path(), "test")).unwrap();
        for i in 0..2600 {
            let at = ledger.append(start(i)).await.unwrap();
            ledger.submit(end(i, at.seq)).unwrap();
        }
        ledger.checkpoint().await.unwrap();
        let index = ledger.store().unwrap().index.clone();
        for _ in 0..500 {
            if index.indexed_next().unwrap() >= 4 * BLOCK {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(index.indexed_next().unwrap() >= 4 * BLOCK);

        for filter in [
            Filter::default(),
            Filter { key_prefix: Some("k7/57".into()), ..Filter::default() },
            Filter { principal: Some("alice".into()), key_prefix: Some("k9/".into()), ..Filter::default() },
        ] {
            let (everything, none) = search(&ledger, &filter, None, 1000, usize::MAX).unwrap();
            assert!(none.is_none() || filter.key_prefix.is_none());
            let mut paged = Vec::new();
            let mut cursor = None;
            let mut empty_pages = 0;
            loop {
                let (events, next) = search(&ledger, &filter, cursor, 1000, 1).unwrap();
                empty_pages += usize::from(events.is_empty());
                paged.extend(events);
                match next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
            let all: Vec<EgressEvent> = if filter.key_prefix.is_none() {
                // 2600 events do not fit one page of 1000: gather them all.
                let mut all = everything;
                let mut cursor = none;
                while let Some(c) = cursor {
                    let (more, next) = search(&ledger, &filter, Some(c), 1000, usize::MAX).unwrap();
                    all.extend(more);
                    cursor = next;
                }
                all
            } else {
                everything
            };
            if filter.key_prefix.as_deref() == Some("k7/57") {
                assert_eq!(all.len(), 1);
                assert!(empty_pages > 0, "a sparse filter leaves some pages empty");
            }
            assert_eq!(paged, all, "{filter:?}");
            let seqs: HashSet<u64> = paged.iter().map(|e| e.start_seq).collect();
            assert_eq!(seqs.len(), paged.len());
        }
        ledger.close().await.unwrap();
    }
}
