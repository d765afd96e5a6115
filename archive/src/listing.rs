//! Streaming listings of one folder of the archive, key by key, a page
//! held at a time: memory stays bounded however large the archive is.
//!
//! In a bucket with versions (Object Lock turns them on), an object's
//! *first* version is the one written by the shipper and kept by Object
//! Lock; a later version or a delete marker is someone's attempt to
//! overwrite or hide it. [`Archived::version_id`] names the first version,
//! and [`Archived::later_versions`] counts the rest, so that a reader uses
//! what was shipped and reports what was tried.

use std::collections::VecDeque;

use crate::store::{ObjectStore, StoreError, Version};

/// One key of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub key: String,
    /// The first (oldest) version that is not a delete marker; `None` in a
    /// store without versions.
    pub version_id: Option<String>,
    /// Versions and delete markers written after it.
    pub later_versions: usize,
}

/// Keys under a prefix, in key order, with their first version.
#[derive(Debug)]
pub struct Lister {
    prefix: String,
    marker: Option<(String, String)>,
    done: bool,
    ready: VecDeque<Archived>,
    /// The last key of the last page: its versions may go on in the next.
    pending: Vec<Version>,
}

impl Lister {
    #[must_use]
    pub fn new(prefix: String) -> Lister {
        Lister { prefix, marker: None, done: false, ready: VecDeque::new(), pending: Vec::new() }
    }

    /// The next key without taking it.
    pub async fn peek(&mut self, store: &impl ObjectStore) -> Result<Option<&Archived>, StoreError> {
        while self.ready.is_empty() && !self.done {
            self.fetch(store).await?;
        }
        Ok(self.ready.front())
    }

    /// The next key.
    pub async fn next(&mut self, store: &impl ObjectStore) -> Result<Option<Archived>, StoreError> {
        self.peek(store).await?;
        Ok(self.ready.pop_front())
    }

    async fn fetch(&mut self, store: &impl ObjectStore) -> Result<(), StoreError> {
        let page = store.list_versions(&self.prefix, self.marker.take()).await?;
        self.marker = page.next;
        self.done = self.marker.is_none();
        for version in page.versions {
            if self.pending.last().is_some_and(|last| last.key != version.key) {
                let group = std::mem::take(&mut self.pending);
                self.ready.extend(group_of(&group));
            }
            self.pending.push(version);
        }
        if self.done {
            let group = std::mem::take(&mut self.pending);
            self.ready.extend(group_of(&group));
        }
        Ok(())
    }
}

/// A key's versions, newest first, as one [`Archived`]; `None` if it has
/// only delete markers.
fn group_of(versions: &[Version]) -> Option<Archived> {
    let first_real = versions.iter().rposition(|v| !v.delete_marker)?;
    let key = versions[first_real].key.clone();
    Some(Archived { key, version_id: versions[first_real].version_id.clone(), later_versions: versions.len() - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(key: &str, id: &str, marker: bool) -> Version {
        Version { key: key.into(), version_id: Some(id.into()), delete_marker: marker }
    }

    #[test]
    fn the_first_real_version_is_the_one_read() {
        let a = group_of(&[v("k", "3", true), v("k", "2", false), v("k", "1", false)]).unwrap();
        assert_eq!((a.version_id.as_deref(), a.later_versions), (Some("1"), 2));
        assert_eq!(group_of(&[v("k", "1", true)]), None);
    }

    #[tokio::test]
    async fn a_listing_streams_every_key_across_pages() {
        let store = crate::store::MemoryStore::default();
        for i in 0..10 {
            crate::store::ObjectStore::put(&store, &format!("p/{i:02}"), vec![1], None).await.unwrap();
        }
        crate::store::ObjectStore::put(&store, "q/other", vec![1], None).await.unwrap();
        let mut lister = Lister::new("p/".into());
        let mut keys = Vec::new();
        while let Some(a) = lister.next(&store).await.unwrap() {
            keys.push(a.key);
        }
        assert_eq!(keys, (0..10).map(|i| format!("p/{i:02}")).collect::<Vec<_>>());
    }
}
