//! The join: which ledger request accounts for each AWS read, by which
//! rule, and what is left over on either side.
//!
//! Rules, strongest first (`docs/RECONCILIATION.md`):
//! 1. `request_id`: the ledger's `end.upstream_request_id` is the record's
//!    request id. S3 makes request ids; nobody outside AWS can choose one.
//! 2. `tag`: the access log's Request-URI names a ledger request
//!    (`x-egress-req`) of the same object that has no upstream request id.
//!    A tag naming a request whose upstream request id is another one is a
//!    forgery (anyone may add a query parameter): that record is unaccounted.
//! 3. `fallback`: neither side has an id: a ledger read of the same bucket
//!    and key without an upstream request id, within [`Settings::tolerance`]
//!    in time, whose bytes fit.
//!
//! A ledger read accounts for at most one record per source; a second
//! record with the same request id is a duplicate delivery and is ignored.

use std::collections::BTreeMap;

use crate::fast_hash::FastMap;

use egress_ledger::Outcome;

use crate::aws_read::{AwsRead, LogSource};
use crate::ledger_reads::{LedgerRead, LedgerReads, NameId, Window, object_hash};
use crate::report::{Counts, MAX_ENTRIES, Rule, RuleCounts, Unaccounted, rfc3339};

/// Who the proxy is upstream, to tell its credentials used elsewhere.
#[derive(Debug, Clone, Default)]
pub struct ProxyIdentity {
    /// The provisioning spec's `proxy_principal_arn` (a user or a role).
    pub arn: String,
    /// The proxy's upstream access key ids, where known.
    pub access_key_ids: Vec<String>,
}

impl ProxyIdentity {
    /// Whether AWS's requester (or access key) is this identity. A role's
    /// sessions log as `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`.
    #[must_use]
    pub fn is(&self, read: &AwsRead) -> bool {
        if read.access_key_id.as_ref().is_some_and(|k| self.access_key_ids.contains(k)) {
            return true;
        }
        let Some(requester) = read.requester.as_deref() else { return false };
        if requester == self.arn {
            return true;
        }
        // arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME
        let parts: Vec<&str> = self.arn.splitn(6, ':').collect();
        if let [_, partition, "iam", _, account, resource] = parts.as_slice()
            && let Some(role) = resource.strip_prefix("role/")
        {
            let name = role.rsplit('/').next().unwrap_or(role);
            let prefix = format!("arn:{partition}:sts::{account}:assumed-role/{name}/");
            return requester.starts_with(&prefix);
        }
        false
    }
}

/// What a join needs to know besides the two sides.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The window asked for: AWS records outside it are not judged, and
    /// only ledger reads in it can be missing.
    pub window: Window,
    /// How far apart in time a ledger read and an AWS record may be under
    /// the fallback rule; the ledger is loaded this much wider than the
    /// window so that a read at an edge finds its record.
    pub tolerance: u64,
    /// Per source ([`LogSource::index`]): how long AWS may take to deliver
    /// a record, in microseconds.
    pub delivery: [u64; 2],
    /// The time the run judges "has the delivery window passed" at.
    pub now: u64,
    pub proxy: ProxyIdentity,
}

/// The join in progress: feed it every AWS read, then [`Join::finish`].
#[derive(Debug)]
pub struct Join {
    pub ledger: LedgerReads,
    settings: Settings,
    bypass: BTreeMap<String, Unaccounted>,
    attempts: BTreeMap<String, Unaccounted>,
    counts: Counts,
    /// (read, record, rule) of joins whose bytes disagree.
    mismatches: Vec<(u32, AwsRead, Rule)>,
    groups: FastMap<(NameId, NameId), [u64; 2]>,
    rules: [RuleCounts; 2],
    duplicates: [u64; 2],
    outside: [u64; 2],
}

/// The result of a join, before ledger evidence is read for its entries.
#[derive(Debug)]
pub struct Joined {
    pub counts: Counts,
    pub bypass: Vec<Unaccounted>,
    pub unaccounted_attempts: Vec<Unaccounted>,
    /// Reads missing from AWS: (read, the sources that lack it).
    pub missing: Vec<(u32, Vec<LogSource>)>,
    pub mismatches: Vec<(u32, AwsRead, Rule)>,
    /// (principal, bucket, [access log, cloudtrail]).
    pub groups: Vec<(String, String, [u64; 2])>,
    pub rules: [RuleCounts; 2],
    pub pending: [u64; 2],
    pub missing_per_source: [u64; 2],
    pub duplicates: [u64; 2],
    pub outside: [u64; 2],
}

impl Join {
    #[must_use]
    pub fn new(ledger: LedgerReads, settings: Settings) -> Join {
        Join {
            ledger,
            settings,
            bypass: BTreeMap::new(),
            attempts: BTreeMap::new(),
            counts: Counts::default(),
            mismatches: Vec::new(),
            groups: FastMap::default(),
            rules: [RuleCounts::default(), RuleCounts::default()],
            duplicates: [0; 2],
            outside: [0; 2],
        }
    }

    /// Whether `read` falls in the window (records outside it are counted
    /// and otherwise ignored).
    #[must_use]
    pub fn in_window(&self, read: &AwsRead) -> bool {
        self.settings.window.contains(read.time_micros)
    }

    /// Judges one AWS read. A record outside the window still joins the
    /// read it belongs to (the ledger is loaded wider than the window, and
    /// an access log's second-resolution time may fall just before a read
    /// that started inside it), but only one inside is held unaccounted.
    pub fn observe(&mut self, read: AwsRead) {
        let s = read.source.index();
        if let Some(i) = self.ledger.by_upstream_id(&read.request_id) {
            if self.ledger.get(i).matched[s] {
                self.duplicates[s] += 1;
            } else {
                self.join(i, read, Rule::RequestId);
            }
            return;
        }
        let mut note = None;
        if let Some(tag) = read.tag.clone() {
            match self.ledger.by_req(&tag) {
                Some(i) => {
                    let l = self.ledger.get(i);
                    if !l.reached_upstream() && l.outcome == Some(Outcome::Denied) {
                        note = Some(format!(
                            "its Request-URI names ledger request {tag} (seq {}), which the proxy refused before it \
                             went upstream: the tag was added by someone else",
                            l.start_seq
                        ));
                    } else if l.has_upstream_id {
                        note = Some(format!(
                            "its Request-URI names ledger request {tag} (seq {}), whose upstream request id is another: \
                             the tag was added by someone else",
                            l.start_seq
                        ));
                    } else if l.object != object_hash(&read.bucket, &read.key) {
                        note = Some(format!(
                            "its Request-URI names ledger request {tag} (seq {}), which read another object",
                            l.start_seq
                        ));
                    } else if l.matched[s] {
                        note = Some(format!(
                            "its Request-URI names ledger request {tag} (seq {}), already joined to another record",
                            l.start_seq
                        ));
                    } else {
                        self.join(i, read, Rule::Tag);
                        return;
                    }
                }
                None => note = Some(format!("its Request-URI names {tag}, which is no ledger read of the window")),
            }
        } else if let Some(i) = self.fallback(&read) {
            self.join(i, read, Rule::Fallback);
            return;
        }
        if self.in_window(&read) {
            self.unaccounted(read, note);
        } else {
            self.outside[s] += 1;
        }
    }

    fn fallback(&self, read: &AwsRead) -> Option<u32> {
        let s = read.source.index();
        self.ledger.without_upstream_id(&read.bucket, &read.key).iter().copied().find(|&i| {
            let l = self.ledger.get(i);
            !l.matched[s]
                && l.time_micros.abs_diff(read.time_micros) <= self.settings.tolerance
                && match (l.bytes_sent, read.bytes_sent) {
                    (Some(ours), Some(theirs)) if l.outcome == Some(Outcome::Complete) => ours == theirs,
                    (Some(ours), Some(theirs)) => theirs >= ours,
                    _ => true,
                }
        })
    }

    fn join(&mut self, i: u32, read: AwsRead, rule: Rule) {
        let s = read.source.index();
        let l = self.ledger.get_mut(i);
        l.matched[s] = true;
        let key = (l.principal, l.bucket);
        let explained = bytes_explained(l, read.bytes_sent);
        self.rules[s].add(rule);
        self.groups.entry(key).or_default()[s] += 1;
        if !explained {
            self.mismatches.push((i, read, rule));
        }
    }

    fn unaccounted(&mut self, read: AwsRead, note: Option<String>) {
        let succeeded = read.succeeded();
        let map = if succeeded { &mut self.bypass } else { &mut self.attempts };
        if let Some(entry) = map.get_mut(&read.request_id) {
            if entry.sources.contains(&read.source) {
                self.duplicates[read.source.index()] += 1;
            } else {
                entry.sources.push(read.source);
                entry.bytes_sent = entry.bytes_sent.max(read.bytes_sent);
                entry.access_key_id = entry.access_key_id.take().or_else(|| read.access_key_id.clone());
                entry.requester = entry.requester.take().or_else(|| read.requester.clone());
                entry.status = entry.status.or(read.status);
                entry.proxy_identity |= self.settings.proxy.is(&read);
                entry.note = entry.note.take().or(note);
                entry.evidence.push(read);
            }
            return;
        }
        if succeeded {
            self.counts.bypass += 1;
        } else {
            self.counts.unaccounted_attempts += 1;
        }
        if map.len() >= MAX_ENTRIES {
            return;
        }
        let entry = Unaccounted {
            request_id: read.request_id.clone(),
            time: rfc3339(read.time_micros),
            bucket: read.bucket.clone(),
            key: read.key.clone(),
            requester: read.requester.clone(),
            access_key_id: read.access_key_id.clone(),
            source_ip: read.source_ip.clone(),
            user_agent: read.user_agent.clone(),
            status: read.status,
            error_code: read.error_code.clone(),
            bytes_sent: read.bytes_sent,
            proxy_identity: self.settings.proxy.is(&read),
            sources: vec![read.source],
            note,
            evidence: vec![read],
        };
        map.insert(entry.request_id.clone(), entry);
    }

    /// What is left over: ledger reads in the window no source joined
    /// (`active` says which sources had any file to join with).
    #[must_use]
    pub fn finish(mut self, active: [bool; 2]) -> (Joined, LedgerReads) {
        let mut missing = Vec::new();
        let mut pending = [0u64; 2];
        let mut missing_per_source = [0u64; 2];
        for (i, l) in self.ledger.reads.iter().enumerate() {
            if !self.settings.window.contains(l.time_micros) {
                continue;
            }
            self.counts.ledger_reads += 1;
            if l.matched.iter().any(|m| *m) {
                self.counts.matched += 1;
            }
            if !l.reached_upstream() {
                self.counts.ledger_reads_not_forwarded += 1;
                continue;
            }
            let mut lacking = Vec::new();
            for source in LogSource::ALL {
                let s = source.index();
                if !active[s] || l.matched[s] {
                    continue;
                }
                if self.settings.now >= l.time_micros.saturating_add(self.settings.delivery[s]) {
                    missing_per_source[s] += 1;
                    lacking.push(source);
                } else {
                    pending[s] += 1;
                }
            }
            if !lacking.is_empty() {
                self.counts.missing_from_aws += 1;
                if missing.len() < MAX_ENTRIES {
                    missing.push((u32::try_from(i).unwrap_or(u32::MAX), lacking));
                }
            }
        }
        self.counts.bytes_mismatch = self.mismatches.len() as u64;
        self.mismatches.truncate(MAX_ENTRIES);
        let mut groups: Vec<(String, String, [u64; 2])> = self
            .groups
            .iter()
            .map(|(&(p, b), n)| (self.ledger.names.get(p).to_owned(), self.ledger.names.get(b).to_owned(), *n))
            .collect();
        groups.sort();
        let joined = Joined {
            counts: self.counts,
            bypass: self.bypass.into_values().collect(),
            unaccounted_attempts: self.attempts.into_values().collect(),
            missing,
            mismatches: self.mismatches,
            groups,
            rules: self.rules,
            pending,
            missing_per_source,
            duplicates: self.duplicates,
            outside: self.outside,
        };
        (joined, self.ledger)
    }
}

/// Whether AWS's byte count for a joined read agrees with the ledger's, or
/// the read's outcome explains the difference: after a client abort (or a
/// timeout, an upstream failure, a refusal once the answer began) S3 may
/// have sent more than reached the client, never less.
fn bytes_explained(l: &LedgerRead, aws: Option<u64>) -> bool {
    match (l.outcome, l.bytes_sent, aws) {
        (_, None, _) | (_, _, None) | (None, _, _) => true,
        // A copy's bytes are its answer's; S3 logs the source side's own.
        _ if l.refused_after_head() || l.copy => true,
        (Some(Outcome::Complete), Some(ours), Some(theirs)) => ours == theirs,
        (Some(_), Some(ours), Some(theirs)) => theirs >= ours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(source: LogSource, requester: &str, key: Option<&str>) -> AwsRead {
        AwsRead {
            source,
            request_id: "R".into(),
            time_micros: 0,
            bucket: "b".into(),
            key: "k".into(),
            requester: Some(requester.into()),
            identity_type: None,
            access_key_id: key.map(str::to_owned),
            source_ip: None,
            user_agent: None,
            status: None,
            error_code: None,
            bytes_sent: None,
            object_size: None,
            tag: None,
        }
    }

    #[test]
    fn the_proxy_is_known_by_its_arn_its_role_sessions_and_its_keys() {
        let role = ProxyIdentity {
            arn: "arn:aws:iam::123456789012:role/service/egress-proxy".into(),
            access_key_ids: vec!["AKIAPROXY".into()],
        };
        let s = LogSource::Cloudtrail;
        assert!(role.is(&read(s, "arn:aws:sts::123456789012:assumed-role/egress-proxy/i-0abc", None)));
        assert!(!role.is(&read(s, "arn:aws:sts::123456789012:assumed-role/egress-proxy-2/i-0abc", None)));
        assert!(!role.is(&read(s, "arn:aws:sts::999999999999:assumed-role/egress-proxy/i-0abc", None)));
        assert!(role.is(&read(s, "arn:aws:iam::123456789012:user/mallory", Some("AKIAPROXY"))));
        let user = ProxyIdentity { arn: "arn:aws:iam::123456789012:user/proxy".into(), access_key_ids: vec![] };
        assert!(user.is(&read(s, "arn:aws:iam::123456789012:user/proxy", None)));
        assert!(!user.is(&read(s, "arn:aws:iam::123456789012:user/proxy2", None)));
    }
}
