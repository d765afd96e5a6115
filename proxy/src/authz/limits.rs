//! Egress limits on one node: byte quotas over calendar windows, request
//! rates and bandwidth, per principal.
//!
//! - A quota counts response body bytes (the ledger's `bytes_sent`) of the
//!   principal, in one bucket or all, within the current UTC hour, day or
//!   month. A transfer reserves its `Content-Length` before its body starts
//!   and settles to what it really sent when it ends, so transfers in
//!   parallel never overrun the quota by more than what is unreserved in
//!   flight (bodies without a length). When a counter is first used in a
//!   window it is seeded from the ledger (what the principal already sent
//!   in that window), so a restart does not reset a quota.
//! - Request rate and bandwidth are GCRA buckets ("virtual scheduling"):
//!   the time at which the bucket is next empty moves forward by the cost
//!   of each request or byte; a burst of one second's worth of requests and
//!   of [`BANDWIDTH_BURST`] of bytes is allowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use egress_admin::usage::{QuotaUsage, Usage, UsageSource};
use egress_ledger::access::{Limits, Quota, Window};

/// Bytes a capped transfer may send ahead of its rate, as time at the rate.
pub const BANDWIDTH_BURST: Duration = Duration::from_millis(250);

/// The UTC calendar window of `per` that contains `now` (seconds since the
/// epoch), as [start, end).
#[must_use]
pub fn window_at(per: Window, now: u64) -> (u64, u64) {
    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;
    match per {
        Window::Hour => {
            let start = now - now % HOUR;
            (start, start + HOUR)
        }
        Window::Day => {
            let start = now - now % DAY;
            (start, start + DAY)
        }
        Window::Month => {
            // The first of this month and of the next, by the calendar
            // humantime prints and parses (UTC).
            let text = rfc3339(now);
            let (year, month) = (&text[..4], &text[5..7]);
            let next = match month {
                "12" => format!("{:04}-01", year.parse::<u32>().unwrap_or(1970) + 1),
                _ => format!("{year}-{:02}", month.parse::<u32>().unwrap_or(1) + 1),
            };
            (first_of(&text[..7]), first_of(&next))
        }
    }
}

/// Seconds since the epoch of `YYYY-MM-01T00:00:00Z`.
fn first_of(year_month: &str) -> u64 {
    humantime::parse_rfc3339(&format!("{year_month}-01T00:00:00Z")).map_or(0, epoch_secs)
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Which counter a quota uses: usage is kept across changes of the limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotaKey {
    pub per: Window,
    pub bucket: Option<String>,
}

#[derive(Debug, Default)]
struct Counter {
    window_start: u64,
    used: u64,
    reserved: u64,
    /// Whether `used` includes what the ledger says was sent earlier in
    /// the window.
    seeded: bool,
}

/// A GCRA bucket: `tat` is the theoretical arrival time of the next unit.
#[derive(Debug)]
struct Gcra {
    tat: Instant,
}

impl Gcra {
    /// Takes `cost` of time; answers how long the caller must wait before
    /// going ahead, given that it may run `tolerance` ahead.
    fn take(&mut self, now: Instant, cost: Duration, tolerance: Duration) -> Duration {
        let tat = self.tat.max(now) + cost;
        self.tat = tat;
        tat.saturating_duration_since(now + tolerance)
    }

    /// Like [`Gcra::take`], but takes nothing and answers the wait if the
    /// caller would have to wait at all.
    fn try_take(&mut self, now: Instant, cost: Duration, tolerance: Duration) -> Result<(), Duration> {
        let tat = self.tat.max(now) + cost;
        let wait = tat.saturating_duration_since(now + tolerance);
        if wait.is_zero() {
            self.tat = tat;
            Ok(())
        } else {
            Err(wait)
        }
    }
}

/// The live counters of one principal on this node.
#[derive(Debug)]
pub struct Meter {
    quotas: Mutex<HashMap<QuotaKey, Counter>>,
    requests: Mutex<Gcra>,
    bandwidth: Mutex<Gcra>,
}

impl Meter {
    pub(crate) fn new(now: Instant) -> Meter {
        Meter {
            quotas: Mutex::default(),
            requests: Mutex::new(Gcra { tat: now }),
            bandwidth: Mutex::new(Gcra { tat: now }),
        }
    }

    /// Admits one request under a cap of `per_second`, or answers how
    /// long to wait.
    pub fn admit_request(&self, per_second: u32, now: Instant) -> Result<(), Duration> {
        let cost = Duration::from_secs(1) / per_second.max(1);
        // A burst of one second's worth.
        let tolerance = Duration::from_secs(1);
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).try_take(now, cost, tolerance)
    }

    /// Takes `bytes` from the bandwidth bucket; answers how long to wait
    /// before sending them.
    pub fn pace(&self, bytes: u64, bytes_per_second: u64, now: Instant) -> Duration {
        let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(bytes_per_second.max(1));
        let cost = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.bandwidth.lock().unwrap_or_else(PoisonError::into_inner).take(now, cost, BANDWIDTH_BURST)
    }
}

/// A quota that would be exceeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub quota: Quota,
    pub used: u64,
    pub reserved: u64,
    pub requested: u64,
    pub window_end: u64,
}

impl QuotaExceeded {
    /// `quota:<per>` or `quota:<per>:<bucket>`.
    #[must_use]
    pub fn limit(&self) -> String {
        match &self.quota.bucket {
            Some(bucket) => format!("quota:{}:{bucket}", self.quota.per.as_str()),
            None => format!("quota:{}", self.quota.per.as_str()),
        }
    }

    /// One sentence for the client and the record.
    #[must_use]
    pub fn detail(&self) -> String {
        let scope = self.quota.bucket.as_ref().map_or_else(String::new, |b| format!(" in bucket {b}"));
        format!(
            "egress quota of {} bytes per {}{scope} exceeded: {} used and {} reserved in this window, {} requested; \
             the window ends at {}",
            self.quota.bytes,
            self.quota.per.as_str(),
            self.used,
            self.reserved,
            self.requested,
            rfc3339(self.window_end),
        )
    }
}

/// Bytes reserved on some quota counters, settled when the transfer ends
/// (or, if it is dropped unsettled, counted in full).
#[derive(Debug)]
pub struct Reservation {
    meter: Arc<Meter>,
    keys: Vec<(QuotaKey, u64)>,
    bytes: u64,
}

impl Reservation {
    /// The transfer sent `sent` bytes: they are used, the reservation is
    /// released.
    pub fn settle(mut self, sent: u64) {
        self.release(sent);
    }

    fn release(&mut self, sent: u64) {
        let mut quotas = self.meter.quotas.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, window_start) in std::mem::take(&mut self.keys) {
            if let Some(counter) = quotas.get_mut(&key)
                && counter.window_start == window_start
            {
                counter.reserved = counter.reserved.saturating_sub(self.bytes);
                counter.used = counter.used.saturating_add(sent);
            }
            // A counter of an earlier window: the bytes belong to a window
            // that is over.
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.keys.is_empty() {
            let bytes = self.bytes;
            self.release(bytes);
        }
    }
}

/// What an unseeded counter needs from the ledger: bytes the principal
/// sent (in `bucket`, or all) since `since` (seconds since the epoch).
pub trait UsageHistory: Send + Sync + std::fmt::Debug {
    fn sent_since(&self, principal: &str, bucket: Option<&str>, since: u64) -> Result<u64, String>;
}

/// The counters of every principal on this node.
#[derive(Debug)]
pub struct LimitState {
    meters: Mutex<HashMap<String, Arc<Meter>>>,
    history: Arc<dyn UsageHistory>,
}

impl LimitState {
    #[must_use]
    pub fn new(history: Arc<dyn UsageHistory>) -> LimitState {
        LimitState { meters: Mutex::default(), history }
    }

    /// The meter of `principal`, made on first use. Principals are the ones
    /// we issued (and `anonymous`), so the map is bounded by them.
    #[must_use]
    pub fn meter(&self, principal: &str) -> Arc<Meter> {
        let mut meters = self.meters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(meter) = meters.get(principal) {
            return Arc::clone(meter);
        }
        let meter = Arc::new(Meter::new(Instant::now()));
        meters.insert(principal.to_owned(), Arc::clone(&meter));
        meter
    }

    /// The quotas of `limits` that count a response from `bucket`.
    fn applicable<'a>(limits: &'a Limits, bucket: Option<&'a str>) -> impl Iterator<Item = &'a Quota> + 'a {
        limits.quotas.iter().filter(move |q| q.bucket.is_none() || q.bucket.as_deref() == bucket)
    }

    /// Seeds, from the ledger, every counter `limits` needs now that is
    /// not seeded for its current window. Blocking (it reads the ledger).
    pub fn seed(&self, principal: &str, limits: &Limits, bucket: Option<&str>, now: SystemTime) {
        let meter = self.meter(principal);
        let now = epoch_secs(now);
        for quota in Self::applicable(limits, bucket) {
            let key = QuotaKey { per: quota.per, bucket: quota.bucket.clone() };
            let (start, _) = window_at(quota.per, now);
            let seeded = meter
                .quotas
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .is_some_and(|c| c.window_start == start && c.seeded);
            if seeded {
                continue;
            }
            match self.history.sent_since(principal, quota.bucket.as_deref(), start) {
                Ok(sent) => {
                    let mut quotas = meter.quotas.lock().unwrap_or_else(PoisonError::into_inner);
                    let counter = quotas.entry(key).or_default();
                    if counter.window_start != start {
                        *counter = Counter { window_start: start, ..Counter::default() };
                    }
                    if !counter.seeded {
                        // What this node counted since it started is in
                        // the ledger's figure already, or in flight.
                        counter.used = counter.used.max(sent);
                        counter.seeded = true;
                    }
                }
                Err(e) => tracing::error!(principal, error = %e, "could not read quota usage from the ledger"),
            }
        }
    }

    /// Whether every counter `limits` needs for `bucket` is seeded for its
    /// current window (else call [`LimitState::seed`] off the async workers).
    #[must_use]
    pub fn seeded(&self, principal: &str, limits: &Limits, bucket: Option<&str>, now: SystemTime) -> bool {
        let meter = self.meter(principal);
        let now = epoch_secs(now);
        let quotas = meter.quotas.lock().unwrap_or_else(PoisonError::into_inner);
        Self::applicable(limits, bucket).all(|q| {
            let key = QuotaKey { per: q.per, bucket: q.bucket.clone() };
            quotas.get(&key).is_some_and(|c| c.seeded && c.window_start == window_at(q.per, now).0)
        })
    }

    /// Reserves `bytes` on every quota that counts a response from
    /// `bucket`, or names the first quota it would exceed (and reserves
    /// nothing). `bytes` of 0 checks that some budget is left.
    pub fn reserve(
        &self,
        principal: &str,
        limits: &Limits,
        bucket: Option<&str>,
        bytes: u64,
        now: SystemTime,
    ) -> Result<Option<Reservation>, QuotaExceeded> {
        if limits.quotas.is_empty() {
            return Ok(None);
        }
        let meter = self.meter(principal);
        let now = epoch_secs(now);
        let mut keys = Vec::new();
        {
            let mut quotas = meter.quotas.lock().unwrap_or_else(PoisonError::into_inner);
            for quota in Self::applicable(limits, bucket) {
                let key = QuotaKey { per: quota.per, bucket: quota.bucket.clone() };
                let (start, end) = window_at(quota.per, now);
                let counter = quotas.entry(key.clone()).or_default();
                if counter.window_start != start {
                    // A new window: nothing used in it yet, beyond what is
                    // reserved by transfers that started in the last one.
                    *counter = Counter { window_start: start, seeded: true, ..Counter::default() };
                }
                let taken = counter.used.saturating_add(counter.reserved);
                let over = if bytes == 0 { taken >= quota.bytes } else { taken.saturating_add(bytes) > quota.bytes };
                if over {
                    return Err(QuotaExceeded {
                        quota: quota.clone(),
                        used: counter.used,
                        reserved: counter.reserved,
                        requested: bytes,
                        window_end: end,
                    });
                }
                keys.push((key, start));
            }
            for (key, _) in &keys {
                if let Some(counter) = quotas.get_mut(key) {
                    counter.reserved = counter.reserved.saturating_add(bytes);
                }
            }
        }
        Ok((!keys.is_empty()).then(|| Reservation { meter, keys, bytes }))
    }

    fn quota_usage(&self, principal: &str, limits: &Limits, now: u64) -> Vec<QuotaUsage> {
        let meter = self.meter(principal);
        let quotas = meter.quotas.lock().unwrap_or_else(PoisonError::into_inner);
        limits
            .quotas
            .iter()
            .map(|quota| {
                let (start, end) = window_at(quota.per, now);
                let key = QuotaKey { per: quota.per, bucket: quota.bucket.clone() };
                let (used, reserved) =
                    quotas.get(&key).filter(|c| c.window_start == start).map_or((0, 0), |c| (c.used, c.reserved));
                QuotaUsage {
                    bytes: quota.bytes,
                    per: quota.per,
                    bucket: quota.bucket.clone(),
                    window_start: rfc3339(start),
                    window_end: rfc3339(end),
                    used,
                    reserved,
                    remaining: quota.bytes.saturating_sub(used.saturating_add(reserved)),
                }
            })
            .collect()
    }
}

impl UsageSource for LimitState {
    fn usage(&self, principal: &str, limits: &Limits) -> Usage {
        let now = SystemTime::now();
        // The figures are only meaningful once seeded from the ledger.
        for quota in &limits.quotas {
            if !self.seeded(principal, limits, quota.bucket.as_deref(), now) {
                self.seed(principal, limits, quota.bucket.as_deref(), now);
            }
        }
        Usage {
            principal: principal.to_owned(),
            quotas: self.quota_usage(principal, limits, epoch_secs(now)),
            bandwidth_bytes_per_second: limits.bandwidth_bytes_per_second,
            requests_per_second: limits.requests_per_second,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use super::*;

    #[derive(Debug)]
    struct History(u64);

    impl UsageHistory for History {
        fn sent_since(&self, _: &str, _: Option<&str>, _: u64) -> Result<u64, String> {
            Ok(self.0)
        }
    }

    fn at(text: &str) -> u64 {
        epoch_secs(humantime::parse_rfc3339(text).unwrap())
    }

    #[test]
    fn calendar_windows_in_utc() {
        let now = at("2026-12-03T11:40:55Z");
        assert_eq!(window_at(Window::Hour, now), (at("2026-12-03T11:00:00Z"), at("2026-12-03T12:00:00Z")));
        assert_eq!(window_at(Window::Day, now), (at("2026-12-03T00:00:00Z"), at("2026-12-04T00:00:00Z")));
        assert_eq!(window_at(Window::Month, now), (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z")));
        let leap = at("2028-02-29T23:59:59Z");
        assert_eq!(window_at(Window::Month, leap), (at("2028-02-01T00:00:00Z"), at("2028-03-01T00:00:00Z")));
    }

    #[test]
    fn reservations_cover_parallel_transfers_and_settle_to_what_was_sent() {
        let state = LimitState::new(Arc::new(History(0)));
        let limits =
            Limits { quotas: vec![Quota { bytes: 2_621_440, per: Window::Day, bucket: None }], ..Limits::default() };
        let now = SystemTime::now();
        state.seed("alice", &limits, Some("data"), now);
        let mib = 1_048_576;
        let first = state.reserve("alice", &limits, Some("data"), mib, now).unwrap().unwrap();
        let second = state.reserve("alice", &limits, Some("data"), mib, now).unwrap().unwrap();
        // Two in flight: a third MiB would go past 2.5 MiB.
        let refused = state.reserve("alice", &limits, Some("data"), mib, now).unwrap_err();
        assert_eq!((refused.used, refused.reserved, refused.requested), (0, 2 * mib, mib));
        assert!(refused.detail().contains("2621440 bytes per day"), "{}", refused.detail());
        first.settle(mib);
        // A transfer cut short gives back what it did not send.
        second.settle(1000);
        let usage = state.usage("alice", &limits);
        assert_eq!((usage.quotas[0].used, usage.quotas[0].reserved), (mib + 1000, 0));
        assert!(state.reserve("alice", &limits, Some("data"), mib, now).is_ok());
    }

    #[test]
    fn seeded_from_the_ledger_and_per_bucket() {
        let state = LimitState::new(Arc::new(History(900)));
        let limits = Limits {
            quotas: vec![Quota { bytes: 1000, per: Window::Month, bucket: Some("data".into()) }],
            ..Limits::default()
        };
        let now = SystemTime::now();
        assert!(!state.seeded("bob", &limits, Some("data"), now));
        state.seed("bob", &limits, Some("data"), now);
        assert!(state.seeded("bob", &limits, Some("data"), now));
        assert!(state.reserve("bob", &limits, Some("data"), 101, now).is_err());
        assert!(state.reserve("bob", &limits, Some("data"), 100, now).is_ok());
        // Another bucket is not counted by a bucket's quota.
        assert!(state.reserve("bob", &limits, Some("other"), 10_000, now).unwrap().is_none());
    }

    #[test]
    fn request_rate_and_bandwidth_buckets() {
        let meter = Meter::new(Instant::now());
        let now = Instant::now();
        let admitted = (0..20).filter(|_| meter.admit_request(10, now).is_ok()).count();
        assert_eq!(admitted, 10, "a burst of one second's worth");
        let wait = meter.admit_request(10, now).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(meter.admit_request(10, now + Duration::from_millis(100)).is_ok());

        // 10 MiB at 2 MiB/s: all but the burst is waited for.
        let rate = 2 * 1_048_576;
        let mut waited = Duration::ZERO;
        let start = Instant::now();
        for _ in 0..160 {
            waited = meter.pace(65_536, rate, start);
        }
        assert!(waited >= Duration::from_millis(4_700), "{waited:?}");
    }
}
