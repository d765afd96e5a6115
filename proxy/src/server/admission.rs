//! Admission: how many connections the S3 listeners hold open, all sources
//! together and per source address.
//!
//! A connection over a cap is accepted and closed at once, not left in the
//! listen backlog, where it would wait for a client timeout and keep
//! others waiting behind it. The accept loop takes a [`Ticket`] for every
//! connection it hands to a worker; the ticket is given back when the
//! connection ends, wherever that is.
//!
//! A source is a [`Source`]: an IPv4 address, or an IPv6 /64.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::ConnectionCaps;
use crate::source::Source;

/// Refusals from one source are logged at most this often.
const LOG_EVERY: Duration = Duration::from_mins(1);
/// Sources remembered for that; beyond it, refusals from further sources
/// are counted but not logged one by one.
const LOGGED_SOURCES: usize = 1024;

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections`: the proxy as a whole is full.
    Total,
    /// `max_connections_per_ip`: this source holds its share.
    PerSource,
}

/// The open connections, counted against the caps.
#[derive(Debug)]
pub struct Admission {
    caps: ConnectionCaps,
    state: Mutex<State>,
    /// Where the counts are shown (`/metrics`).
    metrics: Arc<egress_metrics::Metrics>,
}

#[derive(Debug, Default)]
struct State {
    open: usize,
    by_source: HashMap<Source, usize>,
    /// Connections refused since start.
    refused: u64,
    /// When refusals from a source were last logged, and how many came
    /// since.
    logged: HashMap<Source, (Instant, u64)>,
}

impl Admission {
    #[must_use]
    pub fn new(caps: ConnectionCaps, metrics: Arc<egress_metrics::Metrics>) -> Arc<Admission> {
        Arc::new(Admission { caps, state: Mutex::default(), metrics })
    }

    fn show(&self, state: &State) {
        self.metrics.connections_open.store(state.open as u64, Ordering::Relaxed);
        self.metrics.connections_refused.store(state.refused, Ordering::Relaxed);
    }

    #[must_use]
    pub fn caps(&self) -> ConnectionCaps {
        self.caps
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a connection from `ip` in, if the caps allow it; a refusal is
    /// counted, and logged at most once a minute per source.
    pub fn admit(self: &Arc<Admission>, ip: IpAddr) -> Result<Ticket, Refused> {
        let source = Source::of(ip);
        let mut state = self.lock();
        let from_source = state.by_source.get(&source).copied().unwrap_or(0);
        let refused = if state.open >= self.caps.total {
            Refused::Total
        } else if from_source >= self.caps.per_address {
            Refused::PerSource
        } else {
            state.open += 1;
            *state.by_source.entry(source).or_default() += 1;
            self.show(&state);
            return Ok(Ticket { admission: Arc::clone(self), source });
        };
        state.refused += 1;
        self.show(&state);
        if let Some(since_last) = state.log_refusal(source, Instant::now()) {
            let (open, refused_total) = (state.open, state.refused);
            drop(state);
            match refused {
                Refused::Total => tracing::warn!(
                    %source, refused = since_last, refused_total, open, max_connections = self.caps.total,
                    "connection refused: max_connections reached (logged once a minute per source)"
                ),
                Refused::PerSource => tracing::warn!(
                    %source, refused = since_last, refused_total, open = from_source,
                    max_connections_per_ip = self.caps.per_address,
                    "connection refused: this source holds max_connections_per_ip (logged once a minute per source)"
                ),
            }
        }
        Err(refused)
    }

    /// Connections open now, and refused since start.
    #[must_use]
    pub fn counts(&self) -> (usize, u64) {
        let state = self.lock();
        (state.open, state.refused)
    }
}

impl State {
    /// Counts a refusal from `source`; returns how many to report if it is
    /// time to log them.
    fn log_refusal(&mut self, source: Source, now: Instant) -> Option<u64> {
        if let Some((at, count)) = self.logged.get_mut(&source) {
            *count += 1;
            if now.duration_since(*at) < LOG_EVERY {
                return None;
            }
            let report = *count;
            *at = now;
            *count = 0;
            return Some(report);
        }
        if self.logged.len() >= LOGGED_SOURCES {
            self.logged.retain(|_, (at, _)| now.duration_since(*at) < LOG_EVERY);
            if self.logged.len() >= LOGGED_SOURCES {
                return None;
            }
        }
        self.logged.insert(source, (now, 0));
        Some(1)
    }
}

/// One admitted connection; given back on drop.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    source: Source,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        state.open -= 1;
        self.admission.show(&state);
        if let Some(count) = state.by_source.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                state.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_source_gets_its_share_and_all_together_the_total() {
        let admission = Admission::new(ConnectionCaps { total: 5, per_address: 2 }, Arc::default());
        let a: Vec<_> = (0..2).map(|_| admission.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(admission.admit(ip("10.0.0.1")).unwrap_err(), Refused::PerSource);
        assert_eq!(admission.admit(ip("::ffff:10.0.0.1")).unwrap_err(), Refused::PerSource, "mapped is the same");
        let b: Vec<_> = (0..2).map(|_| admission.admit(ip("10.0.0.2")).unwrap()).collect();
        let _c = admission.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(admission.admit(ip("10.0.0.4")).unwrap_err(), Refused::Total);
        assert_eq!(admission.counts(), (5, 3));
        assert_eq!(admission.metrics.connections_open.load(Ordering::Relaxed), 5);
        assert_eq!(admission.metrics.connections_refused.load(Ordering::Relaxed), 3);
        drop(a);
        let _again = admission.admit(ip("10.0.0.1")).unwrap();
        drop(b);
        assert_eq!(admission.counts().0, 2);
        assert!(!admission.lock().by_source.contains_key(&Source::of(ip("10.0.0.2"))), "no entry for a gone source");
    }

    #[test]
    fn an_ipv6_host_is_its_slash_64() {
        let admission = Admission::new(ConnectionCaps { total: 10, per_address: 1 }, Arc::default());
        let _one = admission.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(admission.admit(ip("2001:db8:1:2:ffff::9")).unwrap_err(), Refused::PerSource);
        let _other = admission.admit(ip("2001:db8:1:3::1")).unwrap();
    }

    #[test]
    fn refusals_are_logged_once_a_minute_per_source_with_their_count() {
        let mut state = State::default();
        let t0 = Instant::now();
        let source = Source::of(ip("10.0.0.1"));
        assert_eq!(state.log_refusal(source, t0), Some(1));
        for s in 1..10 {
            assert_eq!(state.log_refusal(source, t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(state.log_refusal(source, t0 + Duration::from_secs(61)), Some(10), "the nine since, and this one");
        // The memory of logged sources is bounded.
        for i in 0..(LOGGED_SOURCES as u32 + 10) {
            let _ = state.log_refusal(Source::of(IpAddr::from(i.to_be_bytes())), t0 + Duration::from_secs(61));
        }
        assert!(state.logged.len() <= LOGGED_SOURCES);
    }
}
