//! [`DenialLimiter`]: how many refused unauthenticated requests from one
//! source address get a record each, and the count of the rest.
//!
//! An unauthenticated client can send refused requests as fast as its
//! network allows; one record pair each, fsynced, would let it fill the
//! ledger's disk and slow every legitimate request behind the fsyncs. So
//! per source address and wall-clock minute, the first
//! `per_minute` refusals are recorded one by one, and the rest are counted:
//! when the minute is over, one `denied_summary` note says how many there
//! were and with which error codes. Nothing is dropped silently, and the
//! ledger grows by at most `per_minute` record pairs plus one note per
//! address and minute.
//!
//! Sources are [`Source`]s (an IPv4 address, an IPv6 /64). The table holds
//! at most [`MAX_SOURCES`] of them; beyond that, new sources share one
//! overflow entry, summarised as source `"other"`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use egress_ledger::NoteRecord;

use crate::error_code::ErrorCode;
use crate::source::Source;

/// Most source addresses tracked at once.
pub const MAX_SOURCES: usize = 65_536;

/// Whom a refusal is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Counted {
    Source(Source),
    /// Every source that came when the table was full.
    Overflow,
}

impl Counted {
    fn label(self) -> String {
        match self {
            Counted::Source(source) => source.to_string(),
            Counted::Overflow => "other".to_owned(),
        }
    }
}

/// One source's refusals in one minute.
#[derive(Debug)]
struct Window {
    minute: u64,
    recorded: u32,
    summarised: u64,
    codes: BTreeMap<ErrorCode, u64>,
}

impl Window {
    fn new(minute: u64) -> Window {
        Window { minute, recorded: 0, summarised: 0, codes: BTreeMap::new() }
    }
}

/// What to do with a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Record it: a `start` and an `end`.
    Record,
    /// Count it into the minute's summary; no record of its own.
    Summarise,
}

/// Counts refusals per source and minute; see the module docs.
#[derive(Debug)]
pub struct DenialLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<Counted, Window>>,
}

fn minute_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60)
}

fn rfc3339(minute: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(minute * 60)).to_string()
}

impl DenialLimiter {
    /// Records at most `per_minute` refusals per source and minute.
    #[must_use]
    pub fn new(per_minute: u32) -> DenialLimiter {
        DenialLimiter { per_minute, windows: Mutex::new(HashMap::new()) }
    }

    /// Counts a refusal from `ip` with S3 error `code` at `now`: whether to
    /// record it, and the summary of an earlier minute of this source that
    /// is now complete (to append).
    pub fn admit(&self, ip: IpAddr, code: ErrorCode, now: SystemTime) -> (Admission, Option<NoteRecord>) {
        let minute = minute_of(now);
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut source = Counted::Source(Source::of(ip));
        if !windows.contains_key(&source) && windows.len() >= MAX_SOURCES {
            source = Counted::Overflow;
        }
        let window = windows.entry(source).or_insert_with(|| Window::new(minute));
        let finished = if window.minute == minute {
            None
        } else {
            summary(source, &std::mem::replace(window, Window::new(minute)))
        };
        let admission = if window.recorded < self.per_minute {
            window.recorded += 1;
            Admission::Record
        } else {
            window.summarised += 1;
            *window.codes.entry(code).or_default() += 1;
            Admission::Summarise
        };
        (admission, finished)
    }

    /// Removes every window of a minute before `now`'s and returns the
    /// summaries of those that counted refusals (run periodically, so that
    /// a source that stopped still gets its summary and leaves the table).
    pub fn take_finished(&self, now: SystemTime) -> Vec<NoteRecord> {
        let minute = minute_of(now);
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut notes = Vec::new();
        windows.retain(|source, window| {
            if window.minute >= minute {
                return true;
            }
            notes.extend(summary(*source, window));
            false
        });
        notes
    }

    /// Every pending summary, the current minute's included (at shutdown).
    pub fn take_all(&self) -> Vec<NoteRecord> {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        windows.drain().filter_map(|(source, window)| summary(source, &window)).collect()
    }
}

/// How often finished minutes are looked for.
const SUMMARY_PERIOD: Duration = Duration::from_secs(10);

/// Appends the summaries of finished minutes as they finish, until `stop`
/// turns true (run as a task for the server's life).
pub async fn write_summaries(
    limiter: std::sync::Arc<DenialLimiter>,
    ledger: egress_ledger::Ledger,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SUMMARY_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        for note in limiter.take_finished(SystemTime::now()) {
            if let Err(e) = ledger.append(egress_ledger::Entry::Note(note)).await {
                tracing::error!(error = %e, "could not append a denied_summary note");
            }
        }
    }
}

/// Appends every pending summary, the current minute's too (at shutdown,
/// before the ledger closes).
pub async fn write_all_summaries(limiter: &DenialLimiter, ledger: &egress_ledger::Ledger) {
    for note in limiter.take_all() {
        if let Err(e) = ledger.append(egress_ledger::Entry::Note(note)).await {
            tracing::error!(error = %e, "could not append a denied_summary note");
        }
    }
}

/// The `denied_summary` note of a window, if it summarised anything.
fn summary(source: Counted, window: &Window) -> Option<NoteRecord> {
    if window.summarised == 0 {
        return None;
    }
    let codes: serde_json::Map<String, serde_json::Value> =
        window.codes.iter().map(|(code, n)| (code.as_str().to_owned(), (*n).into())).collect();
    Some(
        NoteRecord::new("denied_summary")
            .with("source_ip", source.label())
            .with("from", rfc3339(window.minute))
            .with("until", rfc3339(window.minute + 1))
            .with("recorded", window.recorded)
            .with("denied", window.summarised)
            .with("codes", codes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_first_refusals_are_recorded_the_rest_summarised_per_minute() {
        let limiter = DenialLimiter::new(2);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t = 1_799_999_940; // a whole minute
        assert_eq!(limiter.admit(ip, ErrorCode::AccessDenied, at(t)).0, Admission::Record);
        assert_eq!(limiter.admit(ip, ErrorCode::AccessDenied, at(t + 1)).0, Admission::Record);
        for _ in 0..5 {
            assert_eq!(limiter.admit(ip, ErrorCode::AccessDenied, at(t + 2)).0, Admission::Summarise);
        }
        assert_eq!(limiter.admit(ip, ErrorCode::InvalidURI, at(t + 3)).0, Admission::Summarise);
        assert_eq!(limiter.admit(other, ErrorCode::AccessDenied, at(t + 3)).0, Admission::Record, "per source");
        assert!(limiter.take_finished(at(t + 59)).is_empty(), "the minute is not over");

        // The next minute: recorded again, and the last minute's summary comes out.
        let (admission, finished) = limiter.admit(ip, ErrorCode::AccessDenied, at(t + 60));
        assert_eq!(admission, Admission::Record);
        let note = finished.unwrap();
        assert_eq!(note.event, "denied_summary");
        assert_eq!(note.details["source_ip"], "192.0.2.7");
        assert_eq!(note.details["denied"], 6);
        assert_eq!(note.details["recorded"], 2);
        assert_eq!(note.details["codes"], serde_json::json!({"AccessDenied": 5, "InvalidURI": 1}));
        assert_eq!(note.details["from"], rfc3339(t / 60));

        // `other` summarised nothing: no note, but it leaves the table.
        assert!(limiter.take_finished(at(t + 61)).is_empty());
        assert_eq!(limiter.windows.lock().unwrap().len(), 1);
        limiter.admit(ip, ErrorCode::AccessDenied, at(t + 61));
        limiter.admit(ip, ErrorCode::AccessDenied, at(t + 62));
        let all = limiter.take_all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].details["denied"], 1);
    }

    #[test]
    fn ipv6_counts_per_64_and_the_table_is_bounded() {
        let limiter = DenialLimiter::new(1);
        let t = at(1_800_000_000);
        assert_eq!(limiter.admit("2001:db8::1".parse().unwrap(), ErrorCode::AccessDenied, t).0, Admission::Record);
        assert_eq!(limiter.admit("2001:db8::2".parse().unwrap(), ErrorCode::AccessDenied, t).0, Admission::Summarise);
        assert_eq!(Counted::Source(Source::of("2001:db8::2".parse().unwrap())).label(), "2001:db8::/64");

        for i in 0..MAX_SOURCES as u32 {
            limiter.admit(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), ErrorCode::AccessDenied, t);
        }
        let windows = limiter.windows.lock().unwrap();
        assert_eq!(windows.len(), MAX_SOURCES + 1, "the table stops growing at the overflow entry");
        assert!(windows.contains_key(&Counted::Overflow));
    }
}
