//! The scale benchmark of reconciliation (issue 17): N ledger reads against
//! M access-log lines, in two processes so that the run's peak memory is
//! its own.
//!
//! ```sh
//! cargo build --release -p egress-reconcile --example scale
//! B=$CARGO_TARGET_DIR/release/examples/scale
//! $B prepare /tmp/rscale --requests 1000000 --lines 1000000   # ledger + log files
//! $B run /tmp/rscale                                          # one JSON line: lines/s, CPU, peak RSS
//! ```
//!
//! The log lines are the ledger's reads as S3 would log them (request id
//! and `x-egress-req` tag), 10,000 to a file, plus 0.1 % bypass reads by
//! another identity; the run must find exactly those.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use egress_ledger::{EndRecord, Entry, Ledger, LedgerConfig, Outcome, StartRecord};
use egress_reconcile::ledger_reads::Window;
use egress_reconcile::matching::ProxyIdentity;
use egress_reconcile::report::DeliveryWindows;
use egress_reconcile::run::{Plan, run};
use egress_reconcile::store::DirLogStore;

/// As in the egress-proxy binary, which runs reconciliations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LINES_PER_FILE: u64 = 10_000;

fn usage() -> ! {
    eprintln!("usage: scale prepare DIR --requests N --lines M | scale run DIR");
    std::process::exit(64);
}

fn arg(args: &[String], name: &str) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| usage())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("prepare"), Some(dir)) => prepare(Path::new(dir), arg(&args, "--requests"), arg(&args, "--lines")),
        (Some("run"), Some(dir)) => run_once(Path::new(dir)),
        _ => usage(),
    }
}

fn now_micros() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros()).unwrap_or(0)
}

fn request_id(n: u64) -> String {
    format!("{n:016X}")
}

fn req(n: u64) -> String {
    format!("0190a5f2-0000-7000-8000-{n:012x}")
}

fn key(n: u64) -> String {
    format!("datasets/imagenet/train/part-{:05}.parquet", n % 100_000)
}

async fn append_read(ledger: &Ledger, n: u64) {
    let start = StartRecord {
        req: req(n),
        principal: Some(format!("principal-{:02}", n % 16)),
        access_key_id: Some(format!("EGRSBENCH{:011}", n % 16)),
        source_ip: Some("10.0.0.7".into()),
        user_agent: Some("Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux lang/python#3.11.7".into()),
        method: "GET".into(),
        operation: "GetObject".into(),
        bucket: Some("training-data".into()),
        key: Some(key(n)),
        range: Some("bytes=0-8388607".into()),
        ..StartRecord::default()
    };
    let appended = ledger.append(Entry::Start(start)).await.expect("append start");
    let mut end = EndRecord::unknown(&req(n), appended.seq, Outcome::Complete);
    end.status = Some(206);
    end.bytes_sent = Some(8_388_608);
    end.object_size = Some(134_217_728);
    end.upstream_request_id = Some(request_id(n));
    end.duration_ms = Some(41);
    ledger.append(Entry::End(end)).await.expect("append end");
}

fn log_time(micros: u64) -> String {
    let text = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_micros(micros)).to_string();
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [text[5..7].parse::<usize>().unwrap_or(1) - 1];
    format!("[{}/{month}/{}:{} +0000]", &text[8..10], &text[0..4], &text[11..19])
}

fn prepare(dir: &Path, requests: u64, lines: u64) {
    let started = Instant::now();
    let (ledger, _) = Ledger::open(&LedgerConfig::new(&dir.join("data"), "scale")).expect("open ledger");
    // Whole seconds: access logs time their lines to the second.
    let since = now_micros() / 1_000_000 * 1_000_000;
    // 256 writers, so that appends commit in groups (one fsync a batch).
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let writers = 256;
        let mut tasks = Vec::new();
        for w in 0..writers {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                for n in (w..requests).step_by(writers as usize) {
                    append_read(&ledger, n).await;
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
    });
    ledger.close_blocking().expect("close ledger");
    let until = now_micros() + 1_000_000;
    eprintln!("ledger: {requests} reads in {:.1} s", started.elapsed().as_secs_f64());

    let logs = dir.join("logs").join("s3-access");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let bypass_every = 1000;
    let mut file = None;
    for i in 0..lines {
        if i % LINES_PER_FILE == 0 {
            let name = format!(
                "{}-{:016X}",
                humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_micros(until)).to_string()[..19]
                    .replace(['T', ':'], "-"),
                i
            );
            file = Some(std::io::BufWriter::new(std::fs::File::create(logs.join(name)).expect("log file")));
        }
        let n = i % requests;
        let t = since + (until - since) * i / lines.max(1);
        let (requester, id, tag) = if i % bypass_every == bypass_every - 1 {
            ("arn:aws:iam::123456789012:user/mallory".to_owned(), format!("B{i:015X}"), String::new())
        } else {
            (
                "arn:aws:sts::123456789012:assumed-role/egress-proxy/i-0abc".to_owned(),
                request_id(n),
                format!("&x-egress-req={}", req(n)),
            )
        };
        let k = key(n);
        let line = format!(
            "79a5f0c1e2d3b4a5 training-data {} 10.0.0.7 {requester} {id} REST.GET.OBJECT {k} \
             \"GET /training-data/{k}?x-id=GetObject{tag} HTTP/1.1\" 206 - 8388608 134217728 41 12 \"-\" \
             \"aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0\" - Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL= SigV4 \
             TLS_AES_128_GCM_SHA256 AuthHeader training-data.s3.us-east-1.amazonaws.com TLSv1.3 - -\n",
            log_time(t)
        );
        if let Some(f) = file.as_mut() {
            f.write_all(line.as_bytes()).expect("write line");
        }
    }
    drop(file);
    std::fs::write(dir.join("window"), format!("{since} {until} {lines} {}", lines / bypass_every)).expect("window");
    eprintln!("prepared in {:.1} s", started.elapsed().as_secs_f64());
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let seconds = ticks as f64 / 100.0;
    seconds
}

#[allow(clippy::cast_precision_loss)]
fn run_once(dir: &Path) {
    let window = std::fs::read_to_string(dir.join("window")).expect("run prepare first");
    let parts: Vec<u64> = window.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    let [since, until, lines, bypass] = parts[..] else { usage() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (ledger, _) = Ledger::open(&LedgerConfig::new(&dir.join("data"), "scale")).expect("open ledger");
    let store = DirLogStore::new(PathBuf::from(dir).join("logs"));
    let plan = Plan {
        id: "scale".into(),
        spec: "scale".into(),
        data_bucket: "training-data".into(),
        log_bucket: "logs".into(),
        access_log_prefix: "s3-access/".into(),
        cloudtrail_prefix: String::new(),
        account: "123456789012".into(),
        region: "us-east-1".into(),
        window: Window { since, until },
        delivery: DeliveryWindows::default(),
        proxy: ProxyIdentity { arn: "arn:aws:iam::123456789012:role/egress-proxy".into(), access_key_ids: vec![] },
        now: until,
    };
    if std::env::var_os("SCALE_PHASES").is_some() {
        let store = ledger.store().expect("store");
        let reader = egress_ledger::cursor::open_reader(&ledger.data_dir().expect("dir").ledger()).expect("reader");
        let t = Instant::now();
        let reads =
            egress_reconcile::ledger_reads::LedgerReads::load(&reader, &store.index, plan.window).expect("load");
        eprintln!(
            "ledger side alone: {} reads, {} lines in {:.2} s",
            reads.reads.len(),
            reads.lines_read,
            t.elapsed().as_secs_f64()
        );
        if std::env::var("SCALE_PHASES").as_deref() == Ok("ledger") {
            return;
        }
    }
    let rss_before = status_kib("VmRSS:");
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let report = runtime.block_on(run(&ledger, &store, &plan));
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let access = &report.sources[&egress_reconcile::LogSource::AccessLog];
    let ok = report.counts.bypass == bypass && access.matched_by_rule.request_id == lines - bypass;
    println!(
        "{}",
        serde_json::json!({
            "lines": access.records,
            "ledger_reads": report.counts.ledger_reads,
            "seconds": seconds,
            "lines_per_sec": access.records as f64 / seconds,
            "cpu_seconds": cpu,
            "cpu_us_per_line": cpu * 1e6 / access.records.max(1) as f64,
            "rss_before_mib": rss_before as f64 / 1024.0,
            "peak_rss_mib": status_kib("VmHWM:") as f64 / 1024.0,
            "bypass": report.counts.bypass,
            "matched_by_request_id": access.matched_by_rule.request_id,
            "status": report.status,
            "as_expected": ok,
        })
    );
    ledger.close_blocking().expect("close");
    if !ok {
        std::process::exit(1);
    }
}
