//! The archive's keys. Under `PREFIX/ORIGIN/`:
//!
//! ```text
//! segments/<first>-<last>-<head>.jsonl.zst   a sealed segment, whole
//! parts/<first>-<last>-<head>.jsonl.zst      the open segment's growth
//! checkpoints/<head seq>-<head>.txt          a detached checkpoint
//! keys/<key id>.pub                          the checkpoint verifier key
//! events/date=YYYY-MM-DD/<first>-<last>-<head>.parquet
//! ```
//!
//! Seqs are 20 decimal digits (names sort as numbers sort), `head` is the
//! SHA-256 of the object's last line, hex: every key is derived from its
//! content, so a retried upload names the same object.

use egress_ledger::LineHash;

use crate::location::{ArchiveUrl, Origin};

/// The kinds of object that hold ledger lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinesKind {
    /// A sealed segment, whole.
    Segment,
    /// Lines of the open segment, shipped before it was sealed.
    Part,
}

impl LinesKind {
    fn folder(self) -> &'static str {
        match self {
            LinesKind::Segment => "segments/",
            LinesKind::Part => "parts/",
        }
    }
}

/// An object of lines `first..=last` whose last line hashes to `head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinesObject {
    pub kind: LinesKind,
    pub first: u64,
    pub last: u64,
    pub head: LineHash,
}

/// One origin's folder in an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Layout {
    #[must_use]
    pub fn new(url: &ArchiveUrl, origin: &Origin) -> Layout {
        Layout { root: format!("{}{origin}/", url.prefix) }
    }

    /// `PREFIX/ORIGIN/`.
    #[must_use]
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The folder of one kind of lines object.
    #[must_use]
    pub fn lines_prefix(&self, kind: LinesKind) -> String {
        format!("{}{}", self.root, kind.folder())
    }

    #[must_use]
    pub fn lines_key(&self, object: &LinesObject) -> String {
        format!(
            "{}{:020}-{:020}-{}.jsonl.zst",
            self.lines_prefix(object.kind),
            object.first,
            object.last,
            object.head.to_hex()
        )
    }

    /// The object a key under [`Layout::lines_prefix`] names, if it is one.
    #[must_use]
    pub fn parse_lines_key(&self, kind: LinesKind, key: &str) -> Option<LinesObject> {
        let name = key.strip_prefix(&self.lines_prefix(kind))?.strip_suffix(".jsonl.zst")?;
        let (first, last, head) = split_range(name)?;
        (first <= last).then_some(LinesObject { kind, first, last, head })
    }

    #[must_use]
    pub fn checkpoints_prefix(&self) -> String {
        format!("{}checkpoints/", self.root)
    }

    #[must_use]
    pub fn checkpoint_key(&self, head_seq: u64, head: &LineHash) -> String {
        format!("{}{head_seq:020}-{}.txt", self.checkpoints_prefix(), head.to_hex())
    }

    /// `(head seq, head)` of a key under [`Layout::checkpoints_prefix`].
    #[must_use]
    pub fn parse_checkpoint_key(&self, key: &str) -> Option<(u64, LineHash)> {
        let name = key.strip_prefix(&self.checkpoints_prefix())?.strip_suffix(".txt")?;
        let (seq, head) = name.split_once('-')?;
        Some((parse_seq(seq)?, LineHash::from_hex(head)?))
    }

    #[must_use]
    pub fn keys_prefix(&self) -> String {
        format!("{}keys/", self.root)
    }

    /// Where the verifier key with id `key_id` (8 hex digits) is kept.
    #[must_use]
    pub fn pubkey_key(&self, key_id: &str) -> String {
        format!("{}{key_id}.pub", self.keys_prefix())
    }

    #[must_use]
    pub fn events_prefix(&self) -> String {
        format!("{}events/", self.root)
    }

    /// The Parquet file of one segment's requests started on `date`
    /// (`YYYY-MM-DD`).
    #[must_use]
    pub fn events_key(&self, date: &str, segment: &LinesObject) -> String {
        format!(
            "{}date={date}/{:020}-{:020}-{}.parquet",
            self.events_prefix(),
            segment.first,
            segment.last,
            segment.head.to_hex()
        )
    }
}

fn parse_seq(digits: &str) -> Option<u64> {
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

fn split_range(name: &str) -> Option<(u64, u64, LineHash)> {
    let mut parts = name.splitn(3, '-');
    let first = parse_seq(parts.next()?)?;
    let last = parse_seq(parts.next()?)?;
    let head = LineHash::from_hex(parts.next()?)?;
    Some((first, last, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(&"s3://arch/ledger".parse().unwrap(), &"egress-proxy@n1".parse().unwrap())
    }

    #[test]
    fn lines_keys_round_trip_and_sort_by_first_seq() {
        let l = layout();
        let a = LinesObject { kind: LinesKind::Part, first: 9, last: 99, head: LineHash::GENESIS };
        let b = LinesObject { first: 100, last: 120, ..a };
        let key = l.lines_key(&a);
        assert_eq!(
            key,
            format!(
                "ledger/egress-proxy@n1/parts/00000000000000000009-00000000000000000099-{}.jsonl.zst",
                "0".repeat(64)
            )
        );
        assert_eq!(l.parse_lines_key(LinesKind::Part, &key), Some(a));
        assert_eq!(l.parse_lines_key(LinesKind::Segment, &key), None);
        assert!(l.lines_key(&a) < l.lines_key(&b));
        assert_eq!(l.parse_lines_key(LinesKind::Part, "ledger/egress-proxy@n1/parts/9-99-x.jsonl.zst"), None);
    }

    #[test]
    fn checkpoint_keys_round_trip() {
        let l = layout();
        let head = LineHash::from_hex(&"ab".repeat(32)).unwrap();
        let key = l.checkpoint_key(41, &head);
        assert_eq!(l.parse_checkpoint_key(&key), Some((41, head)));
        assert_eq!(l.parse_checkpoint_key("ledger/egress-proxy@n1/checkpoints/latest.txt"), None);
    }
}
