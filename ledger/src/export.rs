//! Export of ledger lines: raw JSON Lines (unchanged bytes, so an export
//! verifies by itself) or CSV for spreadsheets. Compressed segments are
//! exported as their plain lines.
//!
//! On a pruned ledger an export must start at or after the first local seq
//! (`from_seq`, which defaults to 0): asking for history that is only in
//! the archive is an error ([`crate::reader::PrunedHistory`]), not a
//! silently shorter export.

use std::io::{self, Write};

use crate::reader::{LedgerReader, PrunedHistory};
use crate::record::parse_ts_micros;

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// Which lines to export; all bounds inclusive, times in µs since the epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportFilter {
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
    pub since_micros: Option<u64>,
    pub until_micros: Option<u64>,
}

/// CSV columns, in order: the line's fields by name, then its hash.
pub const CSV_COLUMNS: &[&str] = &[
    "seq",
    "ts",
    "kind",
    "req",
    "principal",
    "access_key_id",
    "source_ip",
    "user_agent",
    "method",
    "operation",
    "bucket",
    "key",
    "version_id",
    "range",
    "start_seq",
    "status",
    "bytes_sent",
    "object_size",
    "etag",
    "upstream_request_id",
    "upstream_id2",
    "duration_ms",
    "outcome",
    "error_code",
    "event",
    "head_seq",
    "head",
    // Added after the others, so that column positions stay as they were.
    "copy_source",
];

fn csv_field(value: Option<&serde_json::Value>) -> String {
    let text = match value {
        None | Some(serde_json::Value::Null) => return String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    // Quote anything a spreadsheet could misread; a leading = + - @ would
    // otherwise be taken for a formula.
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(['=', '+', '-', '@']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Writes the selected lines; returns how many were written. An error of
/// kind `NotFound` carrying [`PrunedHistory`] if `filter.from_seq` (0 if
/// not given) is before the first local seq.
pub fn export(
    reader: &LedgerReader,
    filter: ExportFilter,
    format: ExportFormat,
    out: &mut dyn Write,
) -> io::Result<u64> {
    if reader.is_pruned(filter.from_seq.unwrap_or(0)) {
        return Err(PrunedHistory { first_local_seq: reader.first_seq() }.into_io());
    }
    if format == ExportFormat::Csv {
        writeln!(out, "{},hash", CSV_COLUMNS.join(","))?;
    }
    let mut count = 0u64;
    let mut failure = None;
    reader.for_each_line(filter.from_seq.unwrap_or(0), |line| {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line.bytes) else {
            failure = Some(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} line {} is not JSON; run `egress-proxy ledger verify`", line.segment_name, line.line_no),
            ));
            return false;
        };
        let seq = value["seq"].as_u64().unwrap_or(0);
        if filter.to_seq.is_some_and(|to| seq > to) {
            return false;
        }
        if filter.from_seq.is_some_and(|from| seq < from) {
            return true;
        }
        if filter.since_micros.is_some() || filter.until_micros.is_some() {
            let ts = value["ts"].as_str().and_then(parse_ts_micros).unwrap_or(0);
            if filter.since_micros.is_some_and(|s| ts < s) || filter.until_micros.is_some_and(|u| ts > u) {
                return true;
            }
        }
        let written = match format {
            ExportFormat::Jsonl => out.write_all(&line.bytes).and_then(|()| out.write_all(b"\n")),
            ExportFormat::Csv => {
                let mut row: Vec<String> = CSV_COLUMNS.iter().map(|c| csv_field(value.get(*c))).collect();
                row.push(crate::record::line_hash(&line.bytes).to_hex());
                writeln!(out, "{}", row.join(","))
            }
        };
        if let Err(e) = written {
            failure = Some(e);
            return false;
        }
        count += 1;
        true
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(count),
    }
}
