//! Principals (people or services) and the access keys we issue to them.
//!
//! Kept in the sled store under the data dir (0700; files 0600). A secret
//! leaves this module only inside a [`SecretKey`], which never prints itself
//! and is wiped from memory when dropped. Secrets never go into the ledger.

use std::time::SystemTime;

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret access key: wiped on drop, hidden from `Debug`, compared in
/// constant time, readable only through [`SecretKey::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    #[must_use]
    pub fn new(secret: String) -> SecretKey {
        SecretKey(Zeroizing::new(secret))
    }

    /// The secret itself; every call site is a place a secret could leak.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison.
    #[must_use]
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(other).into()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A principal as listed (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub name: String,
    pub description: Option<String>,
    pub created: String,
    pub keys: Vec<AccessKeyInfo>,
}

/// An access key as listed (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyInfo {
    pub access_key_id: String,
    pub created: String,
    pub revoked: Option<String>,
}

/// A freshly issued key: the only time its secret is shown.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub principal: String,
    pub access_key_id: String,
    pub secret_access_key: SecretKey,
}

/// What the data plane needs to check a signature.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    pub principal: String,
    pub secret_access_key: SecretKey,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    principal: String,
    secret: String,
    created: String,
    revoked: Option<String>,
}

impl Drop for StoredKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

#[derive(Serialize, Deserialize)]
struct StoredPrincipal {
    name: String,
    description: Option<String>,
    created: String,
    key_ids: Vec<String>,
}

/// Errors of the principal store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrincipalError {
    #[error("principal name {0:?} is invalid: use 1-64 characters from A-Z a-z 0-9 . _ - @ +")]
    InvalidName(String),
    #[error("{0:?} is the built-in principal of unsigned requests; it has no keys and cannot be created")]
    Reserved(String),
    #[error("principal {0:?} already exists")]
    Exists(String),
    #[error("no principal named {0:?}")]
    NoSuchPrincipal(String),
    #[error("no access key {0:?}")]
    NoSuchKey(String),
    #[error("state store: {0}")]
    Store(#[from] sled::Error),
    #[error("state store holds an unreadable record: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// Principals and keys in sled: tree `principals` (name -> principal) and
/// tree `access_keys` (access key id -> key with secret). Active keys are
/// also cached in memory (every request looks one up); revoking or deleting
/// through this store drops them from the cache at once.
#[derive(Debug, Clone)]
pub struct PrincipalStore {
    db: sled::Db,
    principals: sled::Tree,
    keys: sled::Tree,
    cache: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, KeyLookup>>>,
}

pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The built-in principal of requests that carry no signature: it has no
/// keys and cannot be created, but policies can be attached to it.
pub const ANONYMOUS: &str = "anonymous";

/// Checks a principal name.
pub fn validate_name(name: &str) -> Result<(), PrincipalError> {
    let ok = (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b));
    if ok { Ok(()) } else { Err(PrincipalError::InvalidName(name.to_owned())) }
}

fn new_key() -> (String, SecretKey) {
    let mut rng = rand::rngs::OsRng;
    // Same shape as AWS keys (20 upper-case characters, 40-character secret),
    // which some clients check, with a prefix that says whose key it is.
    let id: String = std::iter::repeat_with(|| {
        let c = rng.sample(Alphanumeric);
        c.to_ascii_uppercase() as char
    })
    .take(16)
    .collect();
    let secret: String = (&mut rng).sample_iter(Alphanumeric).take(40).map(char::from).collect();
    (format!("EGRS{id}"), SecretKey::new(secret))
}

impl PrincipalStore {
    pub(crate) fn open(db: &sled::Db) -> Result<PrincipalStore, sled::Error> {
        Ok(PrincipalStore {
            db: db.clone(),
            principals: db.open_tree("principals")?,
            keys: db.open_tree("access_keys")?,
            cache: std::sync::Arc::default(),
        })
    }

    fn get_principal(&self, name: &str) -> Result<Option<StoredPrincipal>, PrincipalError> {
        Ok(match self.principals.get(name)? {
            Some(bytes) => Some(serde_json::from_slice(&bytes)?),
            None => None,
        })
    }

    fn put_principal(&self, p: &StoredPrincipal) -> Result<(), PrincipalError> {
        self.principals.insert(p.name.as_bytes(), serde_json::to_vec(p)?)?;
        Ok(())
    }

    fn issue(&self, principal: &mut StoredPrincipal) -> Result<IssuedKey, PrincipalError> {
        let (id, secret) = new_key();
        let stored = StoredKey {
            principal: principal.name.clone(),
            secret: secret.expose().to_owned(),
            created: now(),
            revoked: None,
        };
        self.keys.insert(id.as_bytes(), Zeroizing::new(serde_json::to_vec(&stored)?).as_slice())?;
        principal.key_ids.push(id.clone());
        Ok(IssuedKey { principal: principal.name.clone(), access_key_id: id, secret_access_key: secret })
    }

    /// Creates a principal with one key.
    pub fn create(&self, name: &str, description: Option<&str>) -> Result<IssuedKey, PrincipalError> {
        validate_name(name)?;
        if name == ANONYMOUS {
            return Err(PrincipalError::Reserved(name.to_owned()));
        }
        if self.get_principal(name)?.is_some() {
            return Err(PrincipalError::Exists(name.to_owned()));
        }
        let mut principal = StoredPrincipal {
            name: name.to_owned(),
            description: description.map(str::to_owned),
            created: now(),
            key_ids: Vec::new(),
        };
        let issued = self.issue(&mut principal)?;
        self.put_principal(&principal)?;
        self.db.flush()?;
        Ok(issued)
    }

    /// Adds a key to a principal (rotation: older keys keep working until revoked).
    pub fn add_key(&self, name: &str) -> Result<IssuedKey, PrincipalError> {
        let mut principal =
            self.get_principal(name)?.ok_or_else(|| PrincipalError::NoSuchPrincipal(name.to_owned()))?;
        let issued = self.issue(&mut principal)?;
        self.put_principal(&principal)?;
        self.db.flush()?;
        Ok(issued)
    }

    fn forget(&self, access_key_id: &str) {
        self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(access_key_id);
    }

    /// The principal and secret of an active (not revoked) key.
    pub fn lookup(&self, access_key_id: &str) -> Result<Option<KeyLookup>, PrincipalError> {
        if let Some(hit) = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(access_key_id) {
            return Ok(Some(hit.clone()));
        }
        let Some(bytes) = self.keys.get(access_key_id)? else {
            return Ok(None);
        };
        let stored: StoredKey = serde_json::from_slice(&Zeroizing::new(bytes.to_vec()))?;
        if stored.revoked.is_some() {
            return Ok(None);
        }
        let found =
            KeyLookup { principal: stored.principal.clone(), secret_access_key: SecretKey::new(stored.secret.clone()) };
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(access_key_id.to_owned(), found.clone());
        Ok(Some(found))
    }

    /// Revokes a key; its next request fails. Returns the principal's name.
    pub fn revoke_key(&self, access_key_id: &str) -> Result<String, PrincipalError> {
        self.forget(access_key_id);
        let bytes = self.keys.get(access_key_id)?.ok_or_else(|| PrincipalError::NoSuchKey(access_key_id.to_owned()))?;
        let mut stored: StoredKey = serde_json::from_slice(&Zeroizing::new(bytes.to_vec()))?;
        if stored.revoked.is_none() {
            stored.revoked = Some(now());
            self.keys.insert(access_key_id.as_bytes(), Zeroizing::new(serde_json::to_vec(&stored)?).as_slice())?;
            self.db.flush()?;
        }
        Ok(stored.principal.clone())
    }

    /// Deletes a principal and all its keys.
    pub fn delete(&self, name: &str) -> Result<(), PrincipalError> {
        let principal = self.get_principal(name)?.ok_or_else(|| PrincipalError::NoSuchPrincipal(name.to_owned()))?;
        for id in &principal.key_ids {
            self.forget(id);
            self.keys.remove(id.as_bytes())?;
        }
        self.principals.remove(name.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// One principal, without secrets.
    pub fn get(&self, name: &str) -> Result<Option<Principal>, PrincipalError> {
        self.get_principal(name)?.map(|p| self.describe(&p)).transpose()
    }

    /// All principals, by name, without secrets.
    pub fn list(&self) -> Result<Vec<Principal>, PrincipalError> {
        let mut out = Vec::new();
        for item in &self.principals {
            let (_, bytes) = item?;
            out.push(self.describe(&serde_json::from_slice(&bytes)?)?);
        }
        Ok(out)
    }

    fn describe(&self, p: &StoredPrincipal) -> Result<Principal, PrincipalError> {
        let mut keys = Vec::new();
        for id in &p.key_ids {
            if let Some(bytes) = self.keys.get(id)? {
                let stored: StoredKey = serde_json::from_slice(&Zeroizing::new(bytes.to_vec()))?;
                keys.push(AccessKeyInfo {
                    access_key_id: id.clone(),
                    created: stored.created.clone(),
                    revoked: stored.revoked.clone(),
                });
            }
        }
        Ok(Principal { name: p.name.clone(), description: p.description.clone(), created: p.created.clone(), keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, PrincipalStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("state")).unwrap();
        (dir, PrincipalStore::open(&db).unwrap())
    }

    #[test]
    fn create_lookup_rotate_revoke_delete() {
        let (_dir, store) = store();
        let first = store.create("alice", Some("data scientist")).unwrap();
        assert_eq!(first.access_key_id.len(), 20);
        assert_eq!(first.secret_access_key.expose().len(), 40);
        let found = store.lookup(&first.access_key_id).unwrap().unwrap();
        assert_eq!(found.principal, "alice");
        assert!(found.secret_access_key.ct_eq(first.secret_access_key.expose().as_bytes()));

        let second = store.add_key("alice").unwrap();
        assert!(store.lookup(&first.access_key_id).unwrap().is_some(), "old key works until revoked");
        assert_eq!(store.revoke_key(&first.access_key_id).unwrap(), "alice");
        assert!(store.lookup(&first.access_key_id).unwrap().is_none());
        assert!(store.lookup(&second.access_key_id).unwrap().is_some());

        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].keys.len(), 2);
        assert!(listed[0].keys[0].revoked.is_some());

        assert!(matches!(store.create("alice", None), Err(PrincipalError::Exists(_))));
        store.delete("alice").unwrap();
        assert!(store.lookup(&second.access_key_id).unwrap().is_none());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn names_are_checked_and_secrets_do_not_print() {
        let (_dir, store) = store();
        assert!(matches!(store.create("bad name", None), Err(PrincipalError::InvalidName(_))));
        assert!(matches!(store.create("", None), Err(PrincipalError::InvalidName(_))));
        let issued = store.create("svc-trainer@team", None).unwrap();
        let debug = format!("{issued:?}");
        assert!(!debug.contains(issued.secret_access_key.expose()), "{debug}");
    }
}
