//! Issuing keys on the record: a principal or key exists only if the
//! ledger took the note that says so (`principal_created`, never the
//! secret). The CLI, the admin API and the first start all issue through
//! here.

use crate::access::Actor;
use crate::principals::{IssuedKey, PrincipalError};
use crate::{AppendError, Entry, Ledger, NoteRecord};

/// Why a key was not issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    #[error(transparent)]
    Principal(#[from] PrincipalError),
    /// The ledger refused the note; the principal or key was taken back.
    #[error(transparent)]
    Ledger(#[from] AppendError),
}

/// The note that records a key being issued or revoked, and by whom.
#[must_use]
pub fn key_note(event: &str, principal: &str, access_key_id: &str, by: &Actor) -> Entry {
    Entry::Note(
        NoteRecord::new(event)
            .with("principal", principal)
            .with("access_key_id", access_key_id)
            .with("by", by.0.as_str()),
    )
}

impl Ledger {
    fn principal_store(&self) -> Result<&crate::principals::PrincipalStore, IssueError> {
        self.store().map(|s| &s.principals).ok_or(IssueError::Ledger(AppendError::Closed))
    }

    /// Creates a principal with one key and records it. Blocking (sled and a
    /// durable append): call from a blocking context.
    pub fn create_principal_blocking(
        &self,
        name: &str,
        description: Option<&str>,
        by: &Actor,
    ) -> Result<IssuedKey, IssueError> {
        let store = self.principal_store()?;
        let issued = store.create(name, description)?;
        if let Err(e) = self.append_blocking(key_note("principal_created", name, &issued.access_key_id, by)) {
            if let Err(undo) = store.delete(name) {
                tracing::error!(error = %undo, principal = name, "could not remove a principal whose creation the ledger refused");
            }
            return Err(e.into());
        }
        Ok(issued)
    }

    /// Adds a key to a principal and records it (blocking, as above).
    pub fn add_key_blocking(&self, name: &str, by: &Actor) -> Result<IssuedKey, IssueError> {
        let store = self.principal_store()?;
        let issued = store.add_key(name)?;
        if let Err(e) = self.append_blocking(key_note("principal_created", name, &issued.access_key_id, by)) {
            if let Err(undo) = store.revoke_key(&issued.access_key_id) {
                tracing::error!(error = %undo, access_key_id = %issued.access_key_id, "could not revoke a key whose issue the ledger refused");
            }
            return Err(e.into());
        }
        Ok(issued)
    }
}
