#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

use std::io::{Seek, Write};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use egress_ledger::export::ExportFilter;
use egress_ledger::record::{LineHash, encode_line, line_hash, parse_ts_micros};
use egress_ledger::{
    CheckpointRecord, Decision, Effect, EndRecord, Entry, NoteRecord, ObjectRef, Outcome, StartRecord,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;

/// A chained log, line by line, as the writer would write it.
struct Log {
    prev: LineHash,
    next_seq: u64,
}

impl Log {
    fn new() -> Log {
        Log { prev: LineHash::GENESIS, next_seq: 0 }
    }

    fn add(&mut self, ts: &str, entry: &Entry) -> Vec<u8> {
        let line = encode_line(self.next_seq, &self.prev, ts, entry);
        self.prev = line_hash(&line);
        self.next_seq += 1;
        line
    }
}

fn start(req: &str, principal: &str, key: &str) -> StartRecord {
    StartRecord {
        req: req.into(),
        principal: Some(principal.into()),
        access_key_id: Some(format!("EGRS{principal:0>16}").to_uppercase()),
        source_ip: Some("192.0.2.10".into()),
        user_agent: Some("Boto3/1.44.8".into()),
        method: "GET".into(),
        operation: "GetObject".into(),
        bucket: Some("training-data".into()),
        key: Some(key.into()),
        version_id: None,
        range: None,
        decision: Some(Decision {
            effect: Effect::Allow,
            action: Some("s3:GetObject".into()),
            resource: Some(format!("arn:aws:s3:::training-data/{key}")),
            policy: Some("read-only".into()),
            policy_sha256: None,
            sid: None,
            limit: None,
            detail: None,
        }),
        ..StartRecord::default()
    }
}

fn end(req: &str, start_seq: u64, status: u16, bytes: u64) -> EndRecord {
    EndRecord {
        status: Some(status),
        bytes_sent: Some(bytes),
        duration_ms: Some(41),
        ..EndRecord::unknown(req, start_seq, Outcome::Complete)
    }
}

/// The one batch of a Parquet file.
fn read(bytes: &[u8]) -> RecordBatch {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(bytes).unwrap();
    file.rewind().unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().with_batch_size(1 << 20).build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1);
    batches.into_iter().next().unwrap()
}

fn text(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch.column_by_name(column).unwrap().as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()
}

fn int(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
    let array = batch.column_by_name(column).unwrap();
    match array.data_type() {
        arrow_schema::DataType::Int32 => array.as_primitive::<Int32Type>().iter().map(|v| v.map(i64::from)).collect(),
        arrow_schema::DataType::Timestamp(..) => array.as_primitive::<TimestampMicrosecondType>().iter().collect(),
        _ => array.as_primitive::<Int64Type>().iter().collect(),
    }
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some((*v).to_owned())).collect()
}

fn micros(ts: &str) -> Option<i64> {
    parse_ts_micros(ts).map(|t| i64::try_from(t).unwrap())
}

#[test]
fn a_start_and_its_end_make_one_row_with_every_column() {
    let mut log = Log::new();
    let mut lines = Vec::new();
    let mut ranged = start("r-ranged", "alice", "imagenet/part-00001.parquet");
    ranged.range = Some("bytes=0-1048575".into());
    lines.push(log.add("2026-11-27T12:00:00.000000Z", &Entry::Start(ranged)));
    lines.push(log.add("2026-11-27T12:00:00.001000Z", &Entry::Note(NoteRecord::new("principal_created"))));
    let mut denied = start("r-denied", "bob", "raw/0001.jpg");
    denied.decision = Some(Decision {
        effect: Effect::ExplicitDeny,
        action: Some("s3:GetObject".into()),
        resource: None,
        policy: Some("no-raw".into()),
        policy_sha256: None,
        sid: Some("NoRaw".into()),
        limit: None,
        detail: None,
    });
    lines.push(log.add("2026-11-27T12:00:00.002000Z", &Entry::Start(denied)));
    lines.push(log.add(
        "2026-11-27T12:00:00.003000Z",
        &Entry::End(EndRecord {
            error_code: Some("AccessDenied".into()),
            outcome: Outcome::Denied,
            ..end("r-denied", 2, 403, 387)
        }),
    ));
    lines.push(log.add(
        "2026-11-27T12:00:00.041000Z",
        &Entry::End(EndRecord {
            bytes_acked: Some(1_048_000),
            object_size: Some(134_217_728),
            etag: Some("\"9b2c\"".into()),
            upstream_request_id: Some("4442587FB7D0A2F9".into()),
            ..end("r-ranged", 0, 206, 1_048_576)
        }),
    ));
    lines.push(log.add(
        "2026-11-27T12:00:01.000000Z",
        &Entry::Checkpoint(CheckpointRecord {
            origin: "o".into(),
            head_seq: 4,
            head: "x".into(),
            time: "t".into(),
            key_id: "k".into(),
            signature: "s".into(),
        }),
    ));
    // A copy refused by a byte quota once the upstream said how big it was:
    // the end's decision supersedes the start's allow.
    let mut copy = start("r-copy", "carol", "copies/a.bin");
    copy.method = "PUT".into();
    copy.operation = "CopyObject".into();
    copy.copy_source = Some(ObjectRef { bucket: "src".into(), key: "a.bin".into(), version_id: None });
    lines.push(log.add("2026-11-27T12:00:02.000000Z", &Entry::Start(copy)));
    lines.push(log.add(
        "2026-11-27T12:00:02.500000Z",
        &Entry::End(EndRecord {
            outcome: Outcome::Denied,
            error_code: Some("AccessDenied".into()),
            decision: Some(Decision {
                effect: Effect::LimitExceeded,
                action: Some("s3:GetObject".into()),
                resource: None,
                policy: None,
                policy_sha256: None,
                sid: None,
                limit: Some("quota:day".into()),
                detail: Some("over".into()),
            }),
            ..end("r-copy", 6, 403, 300)
        }),
    ));
    // Still running when the segment ends.
    lines.push(log.add("2026-11-27T12:00:03.000000Z", &Entry::Start(start("r-open", "alice", "k"))));

    let mut builder = EventsBuilder::new("egress-proxy@test");
    for line in &lines {
        builder.push_line(line).unwrap();
    }
    let (files, open) = builder.finish().unwrap();
    assert_eq!(open, vec![lines[8].clone()], "the running request is handed back as its line");
    assert_eq!(files.len(), 1);
    assert_eq!((files[0].date.as_str(), files[0].rows), ("2026-11-27", 3));
    let batch = read(&files[0].bytes);
    assert_eq!(batch.schema(), schema());

    // Rows come in the order of their ends.
    assert_eq!(text(&batch, "origin"), some(&["egress-proxy@test"; 3]));
    assert_eq!(text(&batch, "req"), some(&["r-denied", "r-ranged", "r-copy"]));
    assert_eq!(int(&batch, "start_seq"), [Some(2), Some(0), Some(6)]);
    assert_eq!(int(&batch, "end_seq"), [Some(3), Some(4), Some(7)]);
    assert_eq!(int(&batch, "start_ts")[1], micros("2026-11-27T12:00:00.000000Z"));
    assert_eq!(int(&batch, "end_ts")[1], micros("2026-11-27T12:00:00.041000Z"));
    assert_eq!(text(&batch, "principal"), some(&["bob", "alice", "carol"]));
    assert_eq!(text(&batch, "access_key_id")[1].as_deref(), Some("EGRS00000000000ALICE"));
    assert_eq!(text(&batch, "source_ip")[0].as_deref(), Some("192.0.2.10"));
    assert_eq!(text(&batch, "user_agent")[0].as_deref(), Some("Boto3/1.44.8"));
    assert_eq!(text(&batch, "method"), some(&["GET", "GET", "PUT"]));
    assert_eq!(text(&batch, "operation"), some(&["GetObject", "GetObject", "CopyObject"]));
    assert_eq!(text(&batch, "bucket"), some(&["training-data"; 3]));
    assert_eq!(text(&batch, "key"), some(&["raw/0001.jpg", "imagenet/part-00001.parquet", "copies/a.bin"]));
    assert_eq!(text(&batch, "version_id"), [None, None, None]);
    assert_eq!(text(&batch, "range"), [None, Some("bytes=0-1048575".into()), None]);
    assert_eq!(text(&batch, "copy_source_bucket"), [None, None, Some("src".into())]);
    assert_eq!(text(&batch, "copy_source_key"), [None, None, Some("a.bin".into())]);
    assert_eq!(int(&batch, "status"), [Some(403), Some(206), Some(403)]);
    assert_eq!(int(&batch, "bytes_sent"), [Some(387), Some(1_048_576), Some(300)]);
    assert_eq!(int(&batch, "bytes_acked"), [None, Some(1_048_000), None]);
    assert_eq!(int(&batch, "object_size"), [None, Some(134_217_728), None]);
    assert_eq!(text(&batch, "etag"), [None, Some("\"9b2c\"".into()), None]);
    assert_eq!(text(&batch, "upstream_request_id"), [None, Some("4442587FB7D0A2F9".into()), None]);
    assert_eq!(int(&batch, "duration_ms"), [Some(41); 3]);
    assert_eq!(text(&batch, "outcome"), some(&["denied", "complete", "denied"]));
    assert_eq!(text(&batch, "error_code"), [Some("AccessDenied".into()), None, Some("AccessDenied".into())]);
    assert_eq!(text(&batch, "decision_effect"), some(&["explicit_deny", "allow", "limit_exceeded"]));
    assert_eq!(text(&batch, "decision_action"), some(&["s3:GetObject"; 3]));
    assert_eq!(text(&batch, "decision_policy"), [Some("no-raw".into()), Some("read-only".into()), None]);
    assert_eq!(text(&batch, "decision_limit"), [None, None, Some("quota:day".into())]);
    let hex = |i: usize| Some(line_hash(&lines[i]).to_hex());
    assert_eq!(text(&batch, "start_hash"), [hex(2), hex(0), hex(6)]);
    assert_eq!(text(&batch, "end_hash"), [hex(3), hex(4), hex(7)]);
}

#[test]
fn a_request_spanning_two_segments_is_one_row_in_the_second() {
    let mut log = Log::new();
    let first = log.add("2026-11-27T12:00:00.000000Z", &Entry::Start(start("r1", "alice", "a")));
    let second = log.add("2026-11-27T12:00:00.100000Z", &Entry::Start(start("r2", "bob", "b")));
    let first_end = log.add("2026-11-27T12:00:00.200000Z", &Entry::End(end("r1", 0, 200, 10)));
    let mut one = EventsBuilder::new("o");
    for line in [&first, &second, &first_end] {
        one.push_line(line).unwrap();
    }
    let (files, open) = one.finish().unwrap();
    assert_eq!(text(&read(&files[0].bytes), "req"), some(&["r1"]));
    assert_eq!(open, vec![second.clone()]);

    let note = log.add("2026-11-27T12:00:01.000000Z", &Entry::Note(NoteRecord::new("segment")));
    let second_end = log.add("2026-11-27T12:00:01.500000Z", &Entry::End(end("r2", 1, 200, 20)));
    let mut two = EventsBuilder::new("o");
    for line in &open {
        two.carry_start(line).unwrap();
    }
    two.push_line(&note).unwrap();
    two.push_line(&second_end).unwrap();
    let (files, open) = two.finish().unwrap();
    assert!(open.is_empty());
    let batch = read(&files[0].bytes);
    assert_eq!(text(&batch, "req"), some(&["r2"]));
    assert_eq!(text(&batch, "principal"), some(&["bob"]));
    assert_eq!((int(&batch, "start_seq"), int(&batch, "end_seq")), (vec![Some(1)], vec![Some(4)]));
    assert_eq!(text(&batch, "start_hash"), [Some(line_hash(&second).to_hex())]);
    assert_eq!(int(&batch, "bytes_sent"), [Some(20)]);

    assert!(matches!(two_builder_carry(&note), Err(EventsError::NotAStart { seq: 3, .. })));
}

fn two_builder_carry(line: &[u8]) -> Result<(), EventsError> {
    EventsBuilder::new("o").carry_start(line)
}

#[test]
fn an_end_without_its_start_has_null_start_columns_and_the_end_s_date() {
    let mut log = Log::new();
    log.next_seq = 41;
    let end_line = log
        .add("2026-11-28T00:00:00.500000Z", &Entry::End(EndRecord::unknown("r-recovered", 40, Outcome::Interrupted)));
    let mut builder = EventsBuilder::new("o");
    builder.push_line(&end_line).unwrap();
    let (files, open) = builder.finish().unwrap();
    assert!(open.is_empty());
    assert_eq!(files[0].date, "2026-11-28");
    let batch = read(&files[0].bytes);
    assert_eq!(text(&batch, "req"), some(&["r-recovered"]));
    assert_eq!((int(&batch, "start_seq"), int(&batch, "end_seq")), (vec![Some(40)], vec![Some(41)]));
    assert_eq!(int(&batch, "start_ts"), [None]);
    for column in ["principal", "method", "operation", "bucket", "start_hash", "decision_effect"] {
        assert_eq!(text(&batch, column), [None], "{column}");
    }
    assert_eq!(int(&batch, "bytes_sent"), [None], "unknown stays null");
    assert_eq!(text(&batch, "outcome"), some(&["interrupted"]));
}

#[test]
fn requests_of_two_dates_make_two_files_by_their_start() {
    let mut log = Log::new();
    let lines = [
        log.add("2026-03-01T23:59:59.900000Z", &Entry::Start(start("late", "alice", "a"))),
        log.add("2026-03-01T23:59:59.950000Z", &Entry::Start(start("quick", "alice", "b"))),
        log.add("2026-03-01T23:59:59.990000Z", &Entry::End(end("quick", 1, 200, 1))),
        log.add("2026-03-02T00:00:00.100000Z", &Entry::Start(start("next-day", "bob", "c"))),
        log.add("2026-03-02T00:00:00.200000Z", &Entry::End(end("next-day", 3, 200, 2))),
        log.add("2026-03-02T00:00:01.000000Z", &Entry::End(end("late", 0, 200, 3))),
    ];
    let mut builder = EventsBuilder::new("o");
    for line in &lines {
        builder.push_line(line).unwrap();
    }
    let (files, _) = builder.finish().unwrap();
    let dates: Vec<(&str, u64)> = files.iter().map(|f| (f.date.as_str(), f.rows)).collect();
    assert_eq!(dates, [("2026-03-01", 2), ("2026-03-02", 1)]);
    assert_eq!(text(&read(&files[0].bytes), "req"), some(&["quick", "late"]));
    assert_eq!(text(&read(&files[1].bytes), "req"), some(&["next-day"]));
}

#[test]
fn lines_that_are_not_ledger_lines_are_refused() {
    let mut builder = EventsBuilder::new("o");
    assert!(matches!(builder.push_line(b"not json"), Err(EventsError::Header(_))));
    let mut log = Log::new();
    let mut bad = log.add("2026-11-27T12:00:00.000000Z", &Entry::End(end("r", 0, 200, 1)));
    let text = String::from_utf8(bad).unwrap().replace("\"bytes_sent\":1", "\"bytes_sent\":\"many\"");
    bad = text.into_bytes();
    assert!(matches!(builder.push_line(&bad), Err(EventsError::Record { seq: 0, kind: "end", .. })));
}

#[test]
fn the_writer_keeps_the_selected_starts_and_writes_open_ones_last() {
    let mut log = Log::new();
    let lines = [
        log.add("2026-11-27T12:00:00.000000Z", &Entry::Start(start("before", "alice", "a"))),
        log.add("2026-11-27T12:00:01.000000Z", &Entry::Start(start("in", "alice", "b"))),
        log.add("2026-11-27T12:00:01.500000Z", &Entry::End(end("before", 0, 200, 1))),
        log.add("2026-11-27T12:00:02.000000Z", &Entry::Start(start("running", "bob", "c"))),
        log.add("2026-11-27T12:00:03.000000Z", &Entry::Start(start("after", "bob", "d"))),
        log.add("2026-11-27T12:00:04.000000Z", &Entry::End(end("in", 1, 200, 2))),
        log.add("2026-11-27T12:00:05.000000Z", &Entry::End(end("after", 4, 200, 3))),
    ];
    let select = ExportFilter { from_seq: Some(1), to_seq: Some(3), ..ExportFilter::default() };
    let mut writer = EventsWriter::new("o", select, Vec::new()).unwrap();
    let mut pushed = 0;
    for line in &lines {
        if !writer.wants_more() {
            break;
        }
        writer.push_line(line).unwrap();
        pushed += 1;
    }
    assert_eq!(pushed, 7, "`running` never ends: the writer reads on to the end of the log");
    let (bytes, rows) = writer.finish().unwrap();
    assert_eq!(rows, 2);
    let batch = read(&bytes);
    assert_eq!(text(&batch, "req"), some(&["in", "running"]));
    assert_eq!(int(&batch, "end_seq"), [Some(5), None]);
    assert_eq!(text(&batch, "outcome"), [Some("complete".into()), None]);

    // Selected by time; once past to_seq with nothing open, it is done.
    let select = ExportFilter {
        since_micros: parse_ts_micros("2026-11-27T12:00:00.500000Z"),
        until_micros: parse_ts_micros("2026-11-27T12:00:01.000000Z"),
        to_seq: Some(2),
        ..ExportFilter::default()
    };
    let mut writer = EventsWriter::new("o", select, Vec::new()).unwrap();
    let mut pushed = 0;
    for line in &lines {
        if !writer.wants_more() {
            break;
        }
        writer.push_line(line).unwrap();
        pushed += 1;
    }
    assert_eq!(pushed, 6, "it stops after the end of `in`");
    let (bytes, rows) = writer.finish().unwrap();
    assert_eq!((rows, text(&read(&bytes), "req")), (1, some(&["in"])));
}

#[test]
fn the_writer_writes_a_row_group_per_rows_per_group_rows() {
    let mut log = Log::new();
    let mut writer = EventsWriter::new("o", ExportFilter::default(), Vec::new()).unwrap();
    writer.rows_per_group = 100;
    for i in 0..250u64 {
        let req = format!("r{i}");
        writer.push_line(&log.add("2026-11-27T12:00:00.000000Z", &Entry::Start(start(&req, "a", "k")))).unwrap();
        writer.push_line(&log.add("2026-11-27T12:00:00.000000Z", &Entry::End(end(&req, 2 * i, 200, i)))).unwrap();
    }
    let (bytes, rows) = writer.finish().unwrap();
    assert_eq!(rows, 250);
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&bytes).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let groups: Vec<i64> =
        builder.metadata().row_groups().iter().map(parquet::file::metadata::RowGroupMetaData::num_rows).collect();
    assert_eq!(groups, [100, 100, 50]);
}

#[test]
fn utc_dates_of_micros() {
    assert_eq!(utc_date(0), "1970-01-01");
    assert_eq!(utc_date(-1), "1969-12-31");
    assert_eq!(utc_date(micros("2024-02-29T23:59:59.999999Z").unwrap()), "2024-02-29");
    assert_eq!(utc_date(micros("2026-11-27T12:00:00.041000Z").unwrap()), "2026-11-27");
    assert_eq!(utc_date(micros("2100-03-01T00:00:00Z").unwrap()), "2100-03-01");
}
