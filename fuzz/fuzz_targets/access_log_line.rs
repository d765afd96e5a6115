//! The S3 server access log parser on arbitrary bytes, read as UTF-8
//! lossily and split into lines: never a panic; every field of a parsed
//! line is a slice of that line; a line is a read exactly when its
//! operation is one, and the read keeps its time. The first line is also
//! tried as a log object key, which must print back as itself and be found
//! by the listing computed for its own time.
#![no_main]

use egress_reconcile::access_log::{
    AccessLogLine, KeyLayout, parse_line, parse_log_key, partitioned_day_prefixes, simple_start_after,
};
use libfuzzer_sys::fuzz_target;

fn inside(line: &str, field: &str) -> bool {
    let (outer, inner) = (line.as_bytes().as_ptr_range(), field.as_bytes().as_ptr_range());
    outer.start <= inner.start && inner.end <= outer.end
}

fn check_line(text: &str, line: &AccessLogLine<'_>) {
    for field in line.text_fields().into_iter().flatten() {
        assert!(inside(text, field), "{field:?} is not from {text:?}");
    }
    let _ = line.key();
    assert!(line.tag().is_none_or(|tag| !tag.is_empty()));
    match line.object_read() {
        Some(read) => {
            assert!(line.is_object_read());
            assert_eq!(read.time_micros, line.time_micros);
            assert!(read.bytes_sent.is_some());
        }
        None => assert!(!line.is_object_read()),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for raw in text.split('\n') {
        if let Ok(line) = parse_line(raw) {
            check_line(raw, &line);
        }
    }

    let key = text.split('\n').next().unwrap_or_default();
    for prefix in ["", "logs/"] {
        let Some(parsed) = parse_log_key(prefix, key) else { continue };
        assert_eq!(parsed.to_key(prefix), key);
        match &parsed.layout {
            KeyLayout::Simple => assert!(key > simple_start_after(prefix, parsed.name_time_micros).as_str()),
            KeyLayout::Partitioned { account_id, region, source_bucket } => {
                let t = parsed.name_time_micros;
                let days = partitioned_day_prefixes(prefix, account_id, region, source_bucket, t, t);
                assert!(days.len() == 1 && key.starts_with(&days[0]), "{key:?} not under {days:?}");
            }
        }
    }
});
