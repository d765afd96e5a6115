//! The request context: the condition keys a request carries and their
//! values, always as strings (each operator reads them as it needs:
//! numbers, dates, booleans, IP addresses). Keys are case-insensitive, as
//! IAM's are, and stored lowercased.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// Condition keys and their values for one request.
#[derive(Debug, Clone, Default)]
pub struct Context {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) values: Vec<String>,
    /// Set with [`Context::set_all`]: a multivalued key, never usable as a
    /// policy variable even when it holds one value.
    pub(crate) multi: bool,
}

impl Context {
    #[must_use]
    pub fn new() -> Context {
        Context::default()
    }

    /// Sets a single-valued key (replacing what it held).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.entries.insert(key.to_ascii_lowercase(), Entry { values: vec![value.into()], multi: false });
    }

    /// Sets a multivalued key (replacing what it held); an empty list is a
    /// key present with no values, which `ForAllValues` and `ForAnyValue`
    /// treat as missing.
    pub fn set_all(&mut self, key: &str, values: Vec<String>) {
        self.entries.insert(key.to_ascii_lowercase(), Entry { values, multi: true });
    }

    /// The values of a key, if it is set.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.lookup(&lower(key)).map(|entry| entry.values.as_slice())
    }

    /// Lookup by a key already lowercased (as compiled policies hold them).
    pub(crate) fn lookup(&self, lower_key: &str) -> Option<&Entry> {
        self.entries.get(lower_key)
    }

    /// The value of a single-valued key, as a policy variable reads it.
    pub(crate) fn single(&self, lower_key: &str) -> Option<&str> {
        match self.lookup(lower_key) {
            Some(Entry { values, multi: false }) if values.len() == 1 => Some(values[0].as_str()),
            _ => None,
        }
    }
}

fn lower(key: &str) -> Cow<'_, str> {
    if key.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(key.to_ascii_lowercase()) } else { Cow::Borrowed(key) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        let mut ctx = Context::new();
        ctx.set("aws:SourceIp", "10.0.0.1");
        assert_eq!(ctx.get("AWS:SOURCEIP"), Some(&["10.0.0.1".to_owned()][..]));
        assert_eq!(ctx.single("aws:sourceip"), Some("10.0.0.1"));
        ctx.set_all("s3:RequestObjectTagKeys", vec!["a".into()]);
        assert_eq!(ctx.single("s3:requestobjecttagkeys"), None);
        assert!(ctx.get("s3:requestobjecttagkeys").is_some());
    }
}
