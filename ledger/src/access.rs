//! Who may do what, as state: named policy documents and the grants each
//! principal carries (attached policies, tags, egress limits), in sled.
//!
//! Documents are opaque here: the admin layer parses and canonicalises them
//! (crate `egress-access`) before they are stored, and this crate knows
//! nothing of their language. Every change bumps a generation counter
//! shared by all clones of the store, so the data plane sees on its next
//! request that its compiled view is stale. Changes on the record (a ledger
//! note for each) are in [`crate::Ledger`]'s `*_blocking` methods below.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::principals::now;
use crate::{AppendError, Entry, Ledger, NoteRecord};

/// A stored policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPolicy {
    pub name: String,
    /// The canonical JSON of the document.
    pub document: String,
    /// SHA-256 of `document`, lowercase hex.
    pub sha256: String,
    /// RFC 3339, when this version was stored.
    pub updated: String,
}

/// What a principal carries besides its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// Names of the attached policies, in the order given.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Tags, for `aws:PrincipalTag/<key>` conditions.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: Limits,
}

/// Egress limits of one principal. Empty means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Byte quotas, each over a calendar window (UTC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<Quota>,
    /// Response bytes per second, shared by all of the principal's
    /// transfers on one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_bytes_per_second: Option<u64>,
    /// Requests per second (token bucket with a burst of as many).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
}

impl Limits {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.quotas.is_empty() && self.bandwidth_bytes_per_second.is_none() && self.requests_per_second.is_none()
    }
}

/// At most `bytes` of response bodies per calendar `per`, for one bucket
/// or (without one) all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub bytes: u64,
    pub per: Window,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
}

/// A calendar window in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Hour,
    Day,
    Month,
}

impl Window {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }
}

/// Errors of the access store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    #[error("no policy named {0:?}")]
    NoSuchPolicy(String),
    #[error("policy {policy:?} is attached to {principals:?}; detach it first")]
    Attached { policy: String, principals: Vec<String> },
    #[error("state store: {0}")]
    Store(#[from] sled::Error),
    #[error("state store holds an unreadable record: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The ledger refused the note; the change was taken back.
    #[error(transparent)]
    Ledger(#[from] AppendError),
}

/// Policies (tree `policies`: name -> [`StoredPolicy`]) and grants (tree
/// `grants`: principal -> [`Grants`]).
#[derive(Debug, Clone)]
pub struct AccessStore {
    db: sled::Db,
    policies: sled::Tree,
    grants: sled::Tree,
    generation: Arc<AtomicU64>,
}

impl AccessStore {
    pub(crate) fn open(db: &sled::Db) -> Result<AccessStore, sled::Error> {
        Ok(AccessStore {
            db: db.clone(),
            policies: db.open_tree("policies")?,
            grants: db.open_tree("grants")?,
            // Starts at 1 so that a cache built at 0 is stale from the start.
            generation: Arc::new(AtomicU64::new(1)),
        })
    }

    /// Changes with every write through any clone of this store.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) -> Result<(), AccessError> {
        self.db.flush()?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    pub fn policy(&self, name: &str) -> Result<Option<StoredPolicy>, AccessError> {
        Ok(match self.policies.get(name)? {
            Some(bytes) => Some(serde_json::from_slice(&bytes)?),
            None => None,
        })
    }

    /// Every stored policy, by name.
    pub fn policies(&self) -> Result<Vec<StoredPolicy>, AccessError> {
        self.policies.iter().map(|item| Ok(serde_json::from_slice(&item?.1)?)).collect()
    }

    /// Stores a policy; returns the version it replaced.
    pub fn put_policy(&self, policy: &StoredPolicy) -> Result<Option<StoredPolicy>, AccessError> {
        let previous = self.policies.insert(policy.name.as_bytes(), serde_json::to_vec(policy)?)?;
        self.changed()?;
        Ok(previous.map(|bytes| serde_json::from_slice(&bytes)).transpose()?)
    }

    /// Deletes a policy no principal has attached.
    pub fn delete_policy(&self, name: &str) -> Result<StoredPolicy, AccessError> {
        let policy = self.policy(name)?.ok_or_else(|| AccessError::NoSuchPolicy(name.to_owned()))?;
        let principals = self.attached_to(name)?;
        if !principals.is_empty() {
            return Err(AccessError::Attached { policy: name.to_owned(), principals });
        }
        self.policies.remove(name.as_bytes())?;
        self.changed()?;
        Ok(policy)
    }

    /// The principals that have `policy` attached.
    pub fn attached_to(&self, policy: &str) -> Result<Vec<String>, AccessError> {
        let mut out = Vec::new();
        for (principal, grants) in self.all_grants()? {
            if grants.policies.iter().any(|p| p == policy) {
                out.push(principal);
            }
        }
        Ok(out)
    }

    /// A principal's grants (empty ones if it has none).
    pub fn grants(&self, principal: &str) -> Result<Grants, AccessError> {
        Ok(match self.grants.get(principal)? {
            Some(bytes) => serde_json::from_slice(&bytes)?,
            None => Grants::default(),
        })
    }

    /// Replaces a principal's grants; returns the previous ones.
    pub fn set_grants(&self, principal: &str, grants: &Grants) -> Result<Grants, AccessError> {
        let previous = self.grants(principal)?;
        self.grants.insert(principal.as_bytes(), serde_json::to_vec(grants)?)?;
        self.changed()?;
        Ok(previous)
    }

    /// Forgets a principal's grants (when it is deleted).
    pub fn remove_grants(&self, principal: &str) -> Result<(), AccessError> {
        if self.grants.remove(principal.as_bytes())?.is_some() {
            self.changed()?;
        }
        Ok(())
    }

    /// Every principal's grants, by name.
    pub fn all_grants(&self) -> Result<Vec<(String, Grants)>, AccessError> {
        self.grants
            .iter()
            .map(|item| {
                let (name, bytes) = item?;
                Ok((String::from_utf8_lossy(&name).into_owned(), serde_json::from_slice(&bytes)?))
            })
            .collect()
    }
}

/// Who made a change: `admin:<token id>` or `cli:<user>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// The notes of access changes (see `docs/LEDGER.md`).
pub mod notes {
    use super::{Actor, Entry, Grants, NoteRecord, StoredPolicy};

    #[must_use]
    pub fn policy_put(policy: &StoredPolicy, by: &Actor) -> Entry {
        Entry::Note(
            NoteRecord::new("policy_put")
                .with("policy", policy.name.as_str())
                .with("sha256", policy.sha256.as_str())
                .with("document", policy.document.as_str())
                .with("by", by.0.as_str()),
        )
    }

    #[must_use]
    pub fn policy_deleted(policy: &StoredPolicy, by: &Actor) -> Entry {
        Entry::Note(
            NoteRecord::new("policy_deleted")
                .with("policy", policy.name.as_str())
                .with("sha256", policy.sha256.as_str())
                .with("by", by.0.as_str()),
        )
    }

    /// The whole of a principal's grants after a change, each attached
    /// policy with the hash of the version in force.
    #[must_use]
    pub fn grants_set(principal: &str, grants: &Grants, hashes: &[(String, String)], by: &Actor) -> Entry {
        let policies: Vec<serde_json::Value> =
            hashes.iter().map(|(name, sha256)| serde_json::json!({ "policy": name, "sha256": sha256 })).collect();
        Entry::Note(
            NoteRecord::new("grants_set")
                .with("principal", principal)
                .with("policies", policies)
                .with("tags", serde_json::to_value(&grants.tags).unwrap_or_default())
                .with("limits", serde_json::to_value(&grants.limits).unwrap_or_default())
                .with("by", by.0.as_str()),
        )
    }
}

impl Ledger {
    fn access_store(&self) -> Result<&AccessStore, AccessError> {
        self.store().map(|s| &s.access).ok_or(AccessError::Ledger(AppendError::Closed))
    }

    /// Stores a policy (already validated and canonical) and records it;
    /// taken back if the ledger refuses the note. Blocking.
    pub fn put_policy_blocking(&self, policy: &StoredPolicy, by: &Actor) -> Result<(), AccessError> {
        let store = self.access_store()?;
        let previous = store.put_policy(policy)?;
        if let Err(e) = self.append_blocking(notes::policy_put(policy, by)) {
            let undo = match &previous {
                Some(previous) => store.put_policy(previous).map(|_| ()),
                None => store.delete_policy(&policy.name).map(|_| ()),
            };
            if let Err(undo) = undo {
                tracing::error!(error = %undo, policy = policy.name, "could not take back a policy the ledger did not record");
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Deletes a policy no principal has attached, and records it.
    pub fn delete_policy_blocking(&self, name: &str, by: &Actor) -> Result<(), AccessError> {
        let store = self.access_store()?;
        let deleted = store.delete_policy(name)?;
        if let Err(e) = self.append_blocking(notes::policy_deleted(&deleted, by)) {
            if let Err(undo) = store.put_policy(&deleted) {
                tracing::error!(error = %undo, policy = name, "could not restore a policy whose deletion the ledger did not record");
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Replaces a principal's grants and records the result. Every policy
    /// named must exist (built-in ones are passed in `builtin` as
    /// (name, sha256)).
    pub fn set_grants_blocking(
        &self,
        principal: &str,
        grants: &Grants,
        builtin: &[(&str, &str)],
        by: &Actor,
    ) -> Result<(), AccessError> {
        let store = self.access_store()?;
        let mut hashes = Vec::with_capacity(grants.policies.len());
        for name in &grants.policies {
            let sha256 = match builtin.iter().find(|(b, _)| b == name) {
                Some((_, sha256)) => (*sha256).to_owned(),
                None => store.policy(name)?.ok_or_else(|| AccessError::NoSuchPolicy(name.clone()))?.sha256,
            };
            hashes.push((name.clone(), sha256));
        }
        let previous = store.set_grants(principal, grants)?;
        if let Err(e) = self.append_blocking(notes::grants_set(principal, grants, &hashes, by)) {
            if let Err(undo) = store.set_grants(principal, &previous) {
                tracing::error!(error = %undo, principal, "could not take back grants the ledger did not record");
            }
            return Err(e.into());
        }
        Ok(())
    }
}

/// Now as RFC 3339 (seconds), as stored records carry it.
#[must_use]
pub fn timestamp() -> String {
    now()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use super::*;

    fn store() -> (tempfile::TempDir, AccessStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("state")).unwrap();
        (dir, AccessStore::open(&db).unwrap())
    }

    fn policy(name: &str) -> StoredPolicy {
        StoredPolicy { name: name.into(), document: "{}".into(), sha256: "00".into(), updated: now() }
    }

    #[test]
    fn policies_grants_and_generation() {
        let (_dir, store) = store();
        let clone = store.clone();
        let g0 = clone.generation();
        assert!(store.put_policy(&policy("p")).unwrap().is_none());
        assert!(clone.generation() > g0, "a clone sees the change");
        assert_eq!(store.policies().unwrap().len(), 1);

        let grants = Grants { policies: vec!["p".into()], ..Grants::default() };
        assert_eq!(store.set_grants("alice", &grants).unwrap(), Grants::default());
        assert_eq!(store.grants("alice").unwrap(), grants);
        assert_eq!(store.attached_to("p").unwrap(), vec!["alice".to_owned()]);
        assert!(matches!(store.delete_policy("p"), Err(AccessError::Attached { .. })));

        store.remove_grants("alice").unwrap();
        assert_eq!(store.delete_policy("p").unwrap().name, "p");
        assert!(matches!(store.delete_policy("p"), Err(AccessError::NoSuchPolicy(_))));
    }

    #[test]
    fn limits_read_back_and_refuse_unknown_fields() {
        let limits: Limits = serde_json::from_str(
            r#"{"quotas":[{"bytes":10,"per":"day","bucket":"data"}],"bandwidth_bytes_per_second":5}"#,
        )
        .unwrap();
        assert_eq!(limits.quotas[0].per, Window::Day);
        assert_eq!(
            serde_json::to_string(&limits).unwrap(),
            r#"{"quotas":[{"bytes":10,"per":"day","bucket":"data"}],"bandwidth_bytes_per_second":5}"#
        );
        assert!(serde_json::from_str::<Limits>(r#"{"quota":[]}"#).is_err());
        assert!(serde_json::from_str::<Limits>(r#"{"quotas":[{"bytes":1,"per":"week"}]}"#).is_err());
    }
}
