//! The row of a request: its columns, and the Arrow builders that collect
//! rows until they are written as a Parquet row group.
//!
//! `docs/ARCHIVE.md` documents the columns; [`schema`] is their one
//! definition and [`Rows::append`] fills them in the same order.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use egress_ledger::{Decision, Effect, LineHash};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::join::{EndLine, StartLine};

/// The zstd level of the Parquet pages. On the log of the `events_size`
/// example, level 3 made files 4 % larger than level 1 and took 10 to 15 %
/// more CPU: most bytes are hashes and ids, which no level compresses.
const ZSTD_LEVEL: i32 = 1;

/// Columns whose values are (nearly) all different: a dictionary would
/// only be built to be thrown away.
const UNIQUE_COLUMNS: &[&str] = &["req", "start_hash", "end_hash", "upstream_request_id"];

/// Columns that grow by small steps from row to row.
const SEQ_COLUMNS: &[&str] = &["start_seq", "end_seq", "start_ts", "end_ts"];

/// The columns of a row, in order. All nullable but `origin`, `req` and
/// `start_seq`, which every row has.
#[must_use]
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let int = |name: &str| Field::new(name, DataType::Int64, true);
        let time = |name: &str| Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true);
        Arc::new(Schema::new(vec![
            Field::new("origin", DataType::Utf8, false),
            Field::new("req", DataType::Utf8, false),
            Field::new("start_seq", DataType::Int64, false),
            int("end_seq"),
            time("start_ts"),
            time("end_ts"),
            text("principal"),
            text("access_key_id"),
            text("source_ip"),
            text("user_agent"),
            text("method"),
            text("operation"),
            text("bucket"),
            text("key"),
            text("version_id"),
            text("range"),
            text("copy_source_bucket"),
            text("copy_source_key"),
            Field::new("status", DataType::Int32, true),
            int("bytes_sent"),
            int("bytes_acked"),
            int("object_size"),
            text("etag"),
            text("upstream_request_id"),
            int("duration_ms"),
            text("outcome"),
            text("error_code"),
            text("decision_effect"),
            text("decision_action"),
            text("decision_policy"),
            text("decision_limit"),
            text("start_hash"),
            text("end_hash"),
        ]))
    });
    Arc::clone(&SCHEMA)
}

/// How the files are written: zstd pages; `rows_per_group` rows at most in
/// a row group.
pub(super) fn writer_properties(rows_per_group: usize) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default()))
        .set_max_row_group_row_count(Some(rows_per_group.max(1)));
    for column in UNIQUE_COLUMNS {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*column), false);
    }
    for column in SEQ_COLUMNS {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(*column), false)
            .set_column_encoding(ColumnPath::from(*column), Encoding::DELTA_BINARY_PACKED);
    }
    props.build()
}

/// Rows being collected, column by column.
#[derive(Debug)]
pub(super) struct Rows {
    origin: StringBuilder,
    req: StringBuilder,
    start_seq: Int64Builder,
    end_seq: Int64Builder,
    start_ts: TimestampMicrosecondBuilder,
    end_ts: TimestampMicrosecondBuilder,
    principal: StringBuilder,
    access_key_id: StringBuilder,
    source_ip: StringBuilder,
    user_agent: StringBuilder,
    method: StringBuilder,
    operation: StringBuilder,
    bucket: StringBuilder,
    key: StringBuilder,
    version_id: StringBuilder,
    range: StringBuilder,
    copy_source_bucket: StringBuilder,
    copy_source_key: StringBuilder,
    status: Int32Builder,
    bytes_sent: Int64Builder,
    bytes_acked: Int64Builder,
    object_size: Int64Builder,
    etag: StringBuilder,
    upstream_request_id: StringBuilder,
    duration_ms: Int64Builder,
    outcome: StringBuilder,
    error_code: StringBuilder,
    decision_effect: StringBuilder,
    decision_action: StringBuilder,
    decision_policy: StringBuilder,
    decision_limit: StringBuilder,
    start_hash: StringBuilder,
    end_hash: StringBuilder,
    len: usize,
}

impl Default for Rows {
    fn default() -> Rows {
        let time = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
        Rows {
            origin: StringBuilder::new(),
            req: StringBuilder::new(),
            start_seq: Int64Builder::new(),
            end_seq: Int64Builder::new(),
            start_ts: time(),
            end_ts: time(),
            principal: StringBuilder::new(),
            access_key_id: StringBuilder::new(),
            source_ip: StringBuilder::new(),
            user_agent: StringBuilder::new(),
            method: StringBuilder::new(),
            operation: StringBuilder::new(),
            bucket: StringBuilder::new(),
            key: StringBuilder::new(),
            version_id: StringBuilder::new(),
            range: StringBuilder::new(),
            copy_source_bucket: StringBuilder::new(),
            copy_source_key: StringBuilder::new(),
            status: Int32Builder::new(),
            bytes_sent: Int64Builder::new(),
            bytes_acked: Int64Builder::new(),
            object_size: Int64Builder::new(),
            etag: StringBuilder::new(),
            upstream_request_id: StringBuilder::new(),
            duration_ms: Int64Builder::new(),
            outcome: StringBuilder::new(),
            error_code: StringBuilder::new(),
            decision_effect: StringBuilder::new(),
            decision_action: StringBuilder::new(),
            decision_policy: StringBuilder::new(),
            decision_limit: StringBuilder::new(),
            start_hash: StringBuilder::new(),
            end_hash: StringBuilder::new(),
            len: 0,
        }
    }
}

/// A count or size as a signed 64-bit column (what Athena and Hive read);
/// none comes near 2^63.
fn signed(value: Option<u64>) -> Option<i64> {
    value.and_then(|v| i64::try_from(v).ok())
}

/// A line hash as lowercase hex, written into `buf` (`LineHash::to_hex`
/// allocates a string, one char at a time: a visible share of the time
/// when every row has two).
fn hex_of<'a>(hash: &LineHash, buf: &'a mut [u8; 64]) -> &'a str {
    if hex::encode_to_slice(hash.0, buf).is_err() {
        return "";
    }
    std::str::from_utf8(buf).unwrap_or_default()
}

fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::ExplicitDeny => "explicit_deny",
        Effect::ImplicitDeny => "implicit_deny",
        Effect::LimitExceeded => "limit_exceeded",
    }
}

impl Rows {
    pub fn len(&self) -> usize {
        self.len
    }

    /// One request: a start and its end, a start still open (`end` none),
    /// or an end whose start is not known (`start` none). At least one of
    /// the two is given.
    pub fn append(&mut self, origin: &str, start: Option<&StartLine>, end: Option<&EndLine>) {
        let s = start.map(|s| &s.record);
        let e = end.map(|e| &e.record);
        self.origin.append_value(origin);
        self.req.append_value(s.map_or_else(|| e.map_or("", |e| e.req.as_str()), |s| s.req.as_str()));
        self.start_seq.append_option(signed(start.map(|s| s.seq).or(e.map(|e| e.start_seq))));
        self.end_seq.append_option(signed(end.map(|e| e.seq)));
        self.start_ts.append_option(start.map(|s| s.ts_micros));
        self.end_ts.append_option(end.map(|e| e.ts_micros));

        self.principal.append_option(s.and_then(|s| s.principal.as_deref()));
        self.access_key_id.append_option(s.and_then(|s| s.access_key_id.as_deref()));
        self.source_ip.append_option(s.and_then(|s| s.source_ip.as_deref()));
        self.user_agent.append_option(s.and_then(|s| s.user_agent.as_deref()));
        self.method.append_option(s.map(|s| s.method.as_str()));
        self.operation.append_option(s.map(|s| s.operation.as_str()));
        self.bucket.append_option(s.and_then(|s| s.bucket.as_deref()));
        self.key.append_option(s.and_then(|s| s.key.as_deref()));
        self.version_id.append_option(s.and_then(|s| s.version_id.as_deref()));
        self.range.append_option(s.and_then(|s| s.range.as_deref()));
        let copy = s.and_then(|s| s.copy_source.as_ref());
        self.copy_source_bucket.append_option(copy.map(|c| c.bucket.as_str()));
        self.copy_source_key.append_option(copy.map(|c| c.key.as_str()));

        self.status.append_option(e.and_then(|e| e.status).map(i32::from));
        self.bytes_sent.append_option(signed(e.and_then(|e| e.bytes_sent)));
        self.bytes_acked.append_option(signed(e.and_then(|e| e.bytes_acked)));
        self.object_size.append_option(signed(e.and_then(|e| e.object_size)));
        self.etag.append_option(e.and_then(|e| e.etag.as_deref()));
        self.upstream_request_id.append_option(e.and_then(|e| e.upstream_request_id.as_deref()));
        self.duration_ms.append_option(signed(e.and_then(|e| e.duration_ms)));
        self.outcome.append_option(e.map(|e| e.outcome.as_str()));
        self.error_code.append_option(e.and_then(|e| e.error_code.as_deref()));

        // An end's decision (a limit that refused after the start) supersedes the start's.
        let decision: Option<&Decision> =
            e.and_then(|e| e.decision.as_ref()).or_else(|| s.and_then(|s| s.decision.as_ref()));
        self.decision_effect.append_option(decision.map(|d| effect_name(d.effect)));
        self.decision_action.append_option(decision.and_then(|d| d.action.as_deref()));
        self.decision_policy.append_option(decision.and_then(|d| d.policy.as_deref()));
        self.decision_limit.append_option(decision.and_then(|d| d.limit.as_deref()));

        let mut buf = [0u8; 64];
        self.start_hash.append_option(start.map(|s| hex_of(&s.hash, &mut buf)));
        self.end_hash.append_option(end.map(|e| hex_of(&e.hash, &mut buf)));
        self.len += 1;
    }

    /// The rows collected so far as one batch; the builders start empty again.
    pub fn take_batch(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.origin.finish()),
            Arc::new(self.req.finish()),
            Arc::new(self.start_seq.finish()),
            Arc::new(self.end_seq.finish()),
            Arc::new(self.start_ts.finish()),
            Arc::new(self.end_ts.finish()),
            Arc::new(self.principal.finish()),
            Arc::new(self.access_key_id.finish()),
            Arc::new(self.source_ip.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.operation.finish()),
            Arc::new(self.bucket.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.version_id.finish()),
            Arc::new(self.range.finish()),
            Arc::new(self.copy_source_bucket.finish()),
            Arc::new(self.copy_source_key.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.bytes_sent.finish()),
            Arc::new(self.bytes_acked.finish()),
            Arc::new(self.object_size.finish()),
            Arc::new(self.etag.finish()),
            Arc::new(self.upstream_request_id.finish()),
            Arc::new(self.duration_ms.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.error_code.finish()),
            Arc::new(self.decision_effect.finish()),
            Arc::new(self.decision_action.finish()),
            Arc::new(self.decision_policy.finish()),
            Arc::new(self.decision_limit.finish()),
            Arc::new(self.start_hash.finish()),
            Arc::new(self.end_hash.finish()),
        ];
        self.len = 0;
        RecordBatch::try_new(schema(), columns)
    }
}
