//! Requests as Parquet: one row per request, its `start` and `end` lines
//! joined by the end's `start_seq`, for SQL engines (`DuckDB`, Athena) that
//! would otherwise parse JSON Lines. `docs/ARCHIVE.md` documents the
//! columns and the queries.
//!
//! Two ways in, one row-building path (`rows`, fed by `join`):
//!
//! - [`EventsBuilder`], for the archive shipper: the rows of one segment,
//!   held in memory (a segment is at most 64 MiB of lines) and written as
//!   one file per UTC date of the requests' starts, for a
//!   `events/date=YYYY-MM-DD/` layout. The starts still open at the
//!   segment's end are handed back, to be carried into the next segment's
//!   builder, so a request that spans two segments is one row.
//! - [`EventsWriter`], for `ledger export --format parquet`: one file, row
//!   groups of [`ROWS_PER_GROUP`] rows written as the log is read.
//!
//! A row carries the SHA-256 of each of its lines (`start_hash`,
//! `end_hash`), so that any row can be traced back to the chained lines it
//! came from; the Parquet files themselves are derived, not evidence.
//! Values cut short in the ledger (`truncated`) are as cut: the original's
//! length and hash are only in the line.

mod join;
mod rows;
mod writer;

use std::collections::BTreeMap;

use egress_ledger::export::ExportFilter;
use parquet::arrow::ArrowWriter;

pub use rows::schema;
pub use writer::{EventsWriter, ROWS_PER_GROUP};

use join::Joiner;
use rows::{Rows, writer_properties};

/// Why lines could not be turned into rows, or rows into Parquet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventsError {
    /// Not a ledger line: not JSON, no `seq`/`ts`/`kind`, another version.
    #[error("a line is not a ledger line ({0}); run `egress-proxy ledger verify`")]
    Header(#[source] egress_ledger::record::DecodeError),
    /// A start or end whose payload is not what `docs/LEDGER.md` says.
    #[error("seq {seq} is not a valid {kind} line: {source}")]
    Record {
        seq: u64,
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("seq {seq}: ts {ts:?} is not an RFC 3339 time")]
    Time { seq: u64, ts: String },
    /// [`EventsBuilder::carry_start`] was given another kind of line.
    #[error("seq {seq} was carried over as a start but is a {kind} line")]
    NotAStart { seq: u64, kind: String },
    #[error("building the rows: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// The rows of one UTC date, as one Parquet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsFile {
    /// `YYYY-MM-DD`: the UTC date of the requests' start (of the end, for a
    /// request whose start is not known).
    pub date: String,
    pub rows: u64,
    pub bytes: Vec<u8>,
}

/// The rows of one segment of the log, by date.
///
/// A request becomes a row when its end is pushed. An end whose start was
/// neither pushed nor carried (the log was picked up after it started)
/// still makes a row: its start columns (`start_ts`, `principal`,
/// `operation`, … and `start_hash`) are null, `start_seq` and `req` come
/// from the end, and its date is the end's.
#[derive(Debug)]
pub struct EventsBuilder {
    origin: String,
    joiner: Joiner,
    by_date: BTreeMap<String, Rows>,
}

impl EventsBuilder {
    /// A builder for the log named `origin` (the checkpoints' origin).
    #[must_use]
    pub fn new(origin: &str) -> EventsBuilder {
        EventsBuilder { origin: origin.to_owned(), joiner: Joiner::default(), by_date: BTreeMap::new() }
    }

    /// A start line from an earlier segment whose end may come in this one
    /// (the shipper carries them over from the previous segment).
    pub fn carry_start(&mut self, start_line: &[u8]) -> Result<(), EventsError> {
        self.joiner.carry(start_line)
    }

    /// The next line of the log (without its newline), in seq order; lines
    /// that are not start/end are ignored.
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), EventsError> {
        let Some(joined) = self.joiner.push(line, &ExportFilter::default())? else {
            return Ok(());
        };
        let day_of = joined.start.as_ref().map_or(joined.end.ts_micros, |s| s.ts_micros);
        self.by_date.entry(utc_date(day_of)).or_default().append(
            &self.origin,
            joined.start.as_ref(),
            Some(&joined.end),
        );
        Ok(())
    }

    /// The finished rows as Parquet files, one per UTC date of the request's
    /// start `ts` ("YYYY-MM-DD"), in date order, and the start lines still
    /// open (no end yet), in seq order, to carry into the next segment.
    pub fn finish(self) -> Result<(Vec<EventsFile>, Vec<Vec<u8>>), EventsError> {
        let mut files = Vec::with_capacity(self.by_date.len());
        for (date, mut rows) in self.by_date {
            let count = rows.len();
            let batch = rows.take_batch()?;
            let mut out = ArrowWriter::try_new(Vec::new(), schema(), Some(writer_properties(count)))?;
            out.write(&batch)?;
            files.push(EventsFile { date, rows: count as u64, bytes: out.into_inner()? });
        }
        Ok((files, self.joiner.into_open_lines()))
    }
}

/// `YYYY-MM-DD` of a time in µs since the Unix epoch, in UTC.
fn utc_date(micros: i64) -> String {
    // Howard Hinnant's days-to-civil, over the proleptic Gregorian calendar.
    let days = micros.div_euclid(86_400_000_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests;
