//! One Parquet file of the requests a selection of the log holds, written
//! as it is read: memory holds one row group and the starts still waiting
//! for their end, whatever the log's size (`ledger export --format parquet`).

use std::io::Write;

use egress_ledger::export::ExportFilter;
use parquet::arrow::ArrowWriter;

use super::EventsError;
use super::join::Joiner;
use super::rows::{Rows, schema, writer_properties};

/// Rows per row group of a streamed file: a few MiB of Arrow builders.
pub const ROWS_PER_GROUP: usize = 64 * 1024;

/// Writes the requests whose start `select` keeps, one row each, to `out`.
///
/// A row is written when its end comes, so rows are in the order of their
/// ends; starts without an end when the log is over follow, with the end's
/// columns null. An end whose start was not selected (before `from_seq`,
/// outside the times) is left out: it is not a request of the selection.
#[derive(Debug)]
pub struct EventsWriter<W: Write + Send> {
    origin: String,
    select: ExportFilter,
    joiner: Joiner,
    rows: Rows,
    out: ArrowWriter<W>,
    written: u64,
    /// [`ROWS_PER_GROUP`]; smaller in tests.
    pub(super) rows_per_group: usize,
}

impl<W: Write + Send> EventsWriter<W> {
    /// Starts a file on `out` for the log named `origin`.
    pub fn new(origin: &str, select: ExportFilter, out: W) -> Result<EventsWriter<W>, EventsError> {
        let out = ArrowWriter::try_new(out, schema(), Some(writer_properties(ROWS_PER_GROUP)))?;
        Ok(EventsWriter {
            origin: origin.to_owned(),
            select,
            joiner: Joiner::default(),
            rows: Rows::default(),
            out,
            written: 0,
            rows_per_group: ROWS_PER_GROUP,
        })
    }

    /// The next line of the log (without its newline), in seq order.
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), EventsError> {
        if let Some(joined) = self.joiner.push(line, &self.select)?
            && let Some(start) = &joined.start
        {
            self.rows.append(&self.origin, Some(start), Some(&joined.end));
        }
        if self.rows.len() >= self.rows_per_group {
            self.flush_rows()?;
        }
        Ok(())
    }

    /// Whether later lines can still add a row: not once the log is past
    /// `to_seq` and every selected start has its end.
    #[must_use]
    pub fn wants_more(&self) -> bool {
        let past_the_end = match (self.select.to_seq, self.joiner.last_seq()) {
            (Some(to), Some(last)) => last >= to,
            _ => false,
        };
        !past_the_end || self.joiner.open_len() > 0
    }

    fn flush_rows(&mut self) -> Result<(), EventsError> {
        if self.rows.len() == 0 {
            return Ok(());
        }
        self.written += self.rows.len() as u64;
        let batch = self.rows.take_batch()?;
        self.out.write(&batch)?;
        self.out.flush()?;
        Ok(())
    }

    /// Writes the starts still open and the file's footer; returns the
    /// output and the number of rows.
    pub fn finish(mut self) -> Result<(W, u64), EventsError> {
        let joiner = std::mem::take(&mut self.joiner);
        for start in joiner.into_open_starts()? {
            self.rows.append(&self.origin, Some(&start), None);
            if self.rows.len() >= self.rows_per_group {
                self.flush_rows()?;
            }
        }
        self.flush_rows()?;
        Ok((self.out.into_inner()?, self.written))
    }
}
