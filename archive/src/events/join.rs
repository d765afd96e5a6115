//! Ledger lines decoded into the halves of a row, and the join of a `start`
//! with its `end` by the end's `start_seq`.
//!
//! A start waits as its raw line (it may have to be carried, byte for byte,
//! into the next segment's builder); it is decoded once, when its end comes
//! or when the rows are finished.

use std::collections::HashMap;

use egress_ledger::export::ExportFilter;
use egress_ledger::record::{LineHash, decode_header, line_hash, parse_ts_micros};
use egress_ledger::{EndRecord, StartRecord};

use super::EventsError;

/// A `start` line, decoded.
#[derive(Debug)]
pub(super) struct StartLine {
    pub seq: u64,
    /// The line's `ts`, in µs since the Unix epoch.
    pub ts_micros: i64,
    pub hash: LineHash,
    pub record: StartRecord,
}

/// An `end` line, decoded.
#[derive(Debug)]
pub(super) struct EndLine {
    pub seq: u64,
    pub ts_micros: i64,
    pub hash: LineHash,
    pub record: EndRecord,
}

/// A request whose end came: its start, unless it was never seen.
#[derive(Debug)]
pub(super) struct Joined {
    pub start: Option<StartLine>,
    pub end: EndLine,
}

/// A start waiting for its end: its line, and its `ts` read once.
#[derive(Debug)]
struct OpenStart {
    line: Vec<u8>,
    ts_micros: i64,
}

/// Starts waiting for their end, by seq.
#[derive(Debug, Default)]
pub(super) struct Joiner {
    open: HashMap<u64, OpenStart>,
    /// Seq of the last line pushed.
    last_seq: Option<u64>,
}

impl Joiner {
    /// A start from an earlier segment: it must be a `start` line.
    pub fn carry(&mut self, line: &[u8]) -> Result<(), EventsError> {
        let (header, _) = decode_header(line).map_err(EventsError::Header)?;
        if header.kind != "start" {
            return Err(EventsError::NotAStart { seq: header.seq, kind: header.kind.to_owned() });
        }
        let ts_micros = micros(header.seq, header.ts)?;
        self.open.insert(header.seq, OpenStart { line: line.to_vec(), ts_micros });
        Ok(())
    }

    /// The next line: a start that `select` keeps waits for its end; an end
    /// answers its request (with its start, if waiting); anything else is
    /// passed over.
    pub fn push(&mut self, line: &[u8], select: &ExportFilter) -> Result<Option<Joined>, EventsError> {
        let (header, _) = decode_header(line).map_err(EventsError::Header)?;
        self.last_seq = Some(header.seq);
        match header.kind {
            "start" => {
                let ts_micros = micros(header.seq, header.ts)?;
                if selected(select, header.seq, ts_micros) {
                    self.open.insert(header.seq, OpenStart { line: line.to_vec(), ts_micros });
                }
                Ok(None)
            }
            "end" => {
                let end = decode_end(line, header.seq, header.ts)?;
                let start_seq = end.record.start_seq;
                let start = match self.open.remove(&start_seq) {
                    Some(start) => Some(decode_start(start_seq, &start)?),
                    None => None,
                };
                Ok(Some(Joined { start, end }))
            }
            _ => Ok(None),
        }
    }

    pub fn open_len(&self) -> usize {
        self.open.len()
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    fn into_sorted(self) -> Vec<(u64, OpenStart)> {
        let mut open: Vec<(u64, OpenStart)> = self.open.into_iter().collect();
        open.sort_unstable_by_key(|(seq, _)| *seq);
        open
    }

    /// The starts still waiting, as lines, in seq order.
    pub fn into_open_lines(self) -> Vec<Vec<u8>> {
        self.into_sorted().into_iter().map(|(_, start)| start.line).collect()
    }

    /// The starts still waiting, decoded, in seq order.
    pub fn into_open_starts(self) -> Result<Vec<StartLine>, EventsError> {
        self.into_sorted().iter().map(|(seq, start)| decode_start(*seq, start)).collect()
    }
}

/// Whether a start at `seq`, written at `ts_micros`, is in the selection.
fn selected(select: &ExportFilter, seq: u64, ts_micros: i64) -> bool {
    let ts = u64::try_from(ts_micros).unwrap_or(0);
    !(select.from_seq.is_some_and(|from| seq < from) || select.to_seq.is_some_and(|to| seq > to))
        && select.since_micros.is_none_or(|s| ts >= s)
        && select.until_micros.is_none_or(|u| ts <= u)
}

fn micros(seq: u64, ts: &str) -> Result<i64, EventsError> {
    parse_ts_micros(ts).and_then(|t| i64::try_from(t).ok()).ok_or_else(|| EventsError::Time { seq, ts: ts.to_owned() })
}

/// Decodes the payload of a waiting start. The payload is read on its own
/// (not through `Entry`, whose tag makes serde buffer the whole line first).
fn decode_start(seq: u64, start: &OpenStart) -> Result<StartLine, EventsError> {
    let record: StartRecord =
        serde_json::from_slice(&start.line).map_err(|source| EventsError::Record { seq, kind: "start", source })?;
    Ok(StartLine { seq, ts_micros: start.ts_micros, hash: line_hash(&start.line), record })
}

fn decode_end(line: &[u8], seq: u64, ts: &str) -> Result<EndLine, EventsError> {
    let record: EndRecord =
        serde_json::from_slice(line).map_err(|source| EventsError::Record { seq, kind: "end", source })?;
    Ok(EndLine { seq, ts_micros: micros(seq, ts)?, hash: line_hash(line), record })
}
