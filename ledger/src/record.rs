//! The records of the ledger and their exact line encoding.
//!
//! A ledger line is one JSON object on one line. Its first five fields are
//! always, in this order: `v`, `seq`, `prev`, `ts`, `kind`; the payload of the
//! kind follows. The hash of a line is SHA-256 over its exact bytes without
//! the trailing newline, so verifying needs no canonical form: whatever bytes
//! are on disk are what is hashed. `docs/LEDGER.md` specifies the format.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Format version written into every line's `v`.
pub const FORMAT_VERSION: u32 = 1;

/// `prev` of the first line (seq 0): 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 of a line's bytes (without the newline), as lowercase hex.
#[must_use]
pub fn line_hash(line: &[u8]) -> LineHash {
    LineHash(Sha256::digest(line).into())
}

/// The SHA-256 of one line.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineHash(pub [u8; 32]);

impl LineHash {
    /// The `prev` of seq 0.
    pub const GENESIS: LineHash = LineHash([0; 32]);

    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 lowercase hex digits; anything else is `None`.
    #[must_use]
    pub fn from_hex(s: &str) -> Option<LineHash> {
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(LineHash(out))
    }
}

impl std::fmt::Debug for LineHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Display for LineHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// How an egress event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The whole response body reached the client.
    Complete,
    /// The client went away before the body ended.
    ClientAbort,
    /// The upstream failed (unreachable, refused, reset mid-body).
    UpstreamError,
    /// A timeout ended the exchange.
    Timeout,
    /// We refused the request (authentication or authorization).
    Denied,
    /// The process stopped before the exchange ended; written by recovery.
    Interrupted,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::ClientAbort => "client_abort",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Timeout => "timeout",
            Outcome::Denied => "denied",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// The beginning of an egress event: who asked for what.
///
/// Unknown fields are `None` (written as `null`), never invented.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRecord {
    /// Our request id, returned to the client in a response header.
    pub req: String,
    pub principal: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub method: String,
    /// S3 operation name, e.g. `GetObject`.
    pub operation: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version_id: Option<String>,
    /// The `Range` header as the client sent it.
    pub range: Option<String>,
    /// The object a `CopyObject` or `UploadPartCopy` reads; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_source: Option<ObjectRef>,
    /// Fields cut to a bounded length ([`StartRecord::bound`]), by field
    /// name; absent when none was.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub truncated: std::collections::BTreeMap<String, Truncated>,
    /// Why the request was allowed or refused, once it was authenticated
    /// (or allowed as `anonymous`); absent before any decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// An authorization decision: the policy and statement that decided, or
/// the limit that refused. `docs/LEDGER.md` lists the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub effect: Effect,
    /// The IAM action that decided, e.g. `s3:GetObject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The resource it was on, e.g. `arn:aws:s3:::data/a.csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The deciding policy (absent for an implicit deny).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// SHA-256 of the deciding policy's canonical document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The limit that refused: `quota`, `rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// What the limit was and what the request would have needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How a decision went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// A policy statement allowed every permission the request needs.
    Allow,
    /// A Deny statement matched.
    ExplicitDeny,
    /// No statement allowed it (the default).
    ImplicitDeny,
    /// A policy allowed it but a limit (quota, rate) refused it.
    LimitExceeded,
}

/// An object by bucket, key and version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

/// What a field cut short was: its length and hash, so that the original
/// can still be matched against other evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncated {
    /// Length of the original value in bytes (UTF-8).
    pub length: usize,
    /// SHA-256 of the original value, lowercase hex.
    pub sha256: String,
}

/// Appended to a value cut short.
pub const TRUNCATION_MARK: &str = "\u{2026}";

impl StartRecord {
    /// Cuts every field a client chooses freely (method, bucket, key,
    /// version id, range, user agent, access key id) to at most `max` bytes
    /// (on a character boundary) followed by [`TRUNCATION_MARK`], and notes
    /// each cut field's original length and SHA-256 in `truncated`. Bounds
    /// what one request can put on the chain.
    pub fn bound(&mut self, max: usize) {
        let mut cut = |name: &str, field: &mut String| {
            if field.len() <= max {
                return;
            }
            let original = hex::encode(Sha256::digest(field.as_bytes()));
            let length = field.len();
            let mut end = max;
            while !field.is_char_boundary(end) {
                end -= 1;
            }
            field.truncate(end);
            field.push_str(TRUNCATION_MARK);
            self.truncated.insert(name.to_owned(), Truncated { length, sha256: original });
        };
        cut("method", &mut self.method);
        for (name, field) in [
            ("bucket", &mut self.bucket),
            ("key", &mut self.key),
            ("version_id", &mut self.version_id),
            ("range", &mut self.range),
            ("user_agent", &mut self.user_agent),
            ("access_key_id", &mut self.access_key_id),
        ] {
            if let Some(value) = field.as_mut() {
                cut(name, value);
            }
        }
    }
}

/// The end of an egress event: what really left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndRecord {
    pub req: String,
    /// Seq of the matching `start` record.
    pub start_seq: u64,
    /// HTTP status sent to the client; `None` if no response head was sent.
    pub status: Option<u16>,
    /// Body bytes handed to the client connection; `None` only where nobody
    /// can know (an `interrupted` end written by recovery).
    pub bytes_sent: Option<u64>,
    /// Of those, the bytes the client's TCP stack had acknowledged when the
    /// response ended (capped at `bytes_sent`; the response head and TLS
    /// framing count too). Absent where nobody can know: HTTP/2, a response
    /// the proxy answered itself, recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    pub object_size: Option<u64>,
    pub etag: Option<String>,
    pub upstream_request_id: Option<String>,
    pub upstream_id2: Option<String>,
    pub duration_ms: Option<u64>,
    pub outcome: Outcome,
    pub error_code: Option<String>,
    /// Set only when a limit refused the request after its start was
    /// written (a byte quota, checked against the response's length); it
    /// then supersedes the start's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl EndRecord {
    /// The end of the event `req` (started at `start_seq`) with `outcome`,
    /// everything else unknown (null) until filled in.
    #[must_use]
    pub fn unknown(req: &str, start_seq: u64, outcome: Outcome) -> EndRecord {
        EndRecord {
            req: req.to_owned(),
            start_seq,
            status: None,
            bytes_sent: None,
            bytes_acked: None,
            object_size: None,
            etag: None,
            upstream_request_id: None,
            upstream_id2: None,
            duration_ms: None,
            outcome,
            error_code: None,
            decision: None,
        }
    }
}

/// A signed statement of the chain's head, also kept as a detached file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Name of the log (its origin line); also the signing key's name.
    pub origin: String,
    /// Seq of the line this checkpoint covers: the line just before it.
    pub head_seq: u64,
    /// Hash of that line, lowercase hex.
    pub head: String,
    /// When the checkpoint was made (RFC 3339, microseconds), as signed.
    pub time: String,
    /// Key id: first 4 bytes of SHA-256(origin || "\n" || 0x01 || pubkey), hex.
    pub key_id: String,
    /// Ed25519 signature over the checkpoint text, base64 (standard, padded).
    pub signature: String,
}

/// Something the ledger itself says: recovery, segment starts, key events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteRecord {
    pub event: String,
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl NoteRecord {
    #[must_use]
    pub fn new(event: &str) -> NoteRecord {
        NoteRecord { event: event.to_owned(), details: serde_json::Map::new() }
    }

    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> NoteRecord {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// The payload of one line; the tag is the line's `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    Start(StartRecord),
    End(EndRecord),
    Checkpoint(CheckpointRecord),
    Note(NoteRecord),
}

impl Entry {
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Start(_) => "start",
            Entry::End(_) => "end",
            Entry::Checkpoint(_) => "checkpoint",
            Entry::Note(_) => "note",
        }
    }
}

#[derive(Serialize)]
struct LineOut<'a> {
    v: u32,
    seq: u64,
    prev: &'a str,
    ts: &'a str,
    #[serde(flatten)]
    entry: &'a Entry,
}

/// Encodes one line (without the newline) in the field order of the format.
///
/// # Panics
/// Never in practice: serialising these types to JSON cannot fail (no maps
/// with non-string keys, no failing `Serialize` impls).
#[must_use]
pub fn encode_line(seq: u64, prev: &LineHash, ts: &str, entry: &Entry) -> Vec<u8> {
    let prev = prev.to_hex();
    let out = LineOut { v: FORMAT_VERSION, seq, prev: &prev, ts, entry };
    #[allow(clippy::expect_used)] // see the doc: this serialisation is infallible
    serde_json::to_vec(&out).expect("ledger records always serialise")
}

/// The fields every line has, as needed to check the chain.
#[derive(Debug, Deserialize)]
pub struct LineHeader<'a> {
    pub v: u32,
    pub seq: u64,
    #[serde(borrow)]
    pub prev: &'a str,
    #[serde(borrow)]
    pub ts: &'a str,
    #[serde(borrow)]
    pub kind: &'a str,
}

/// One whole decoded line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Line {
    pub v: u32,
    pub seq: u64,
    pub prev: String,
    pub ts: String,
    #[serde(flatten)]
    pub entry: Entry,
}

/// Why a line could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("not a JSON ledger line: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported format version {0}")]
    Version(u32),
    #[error("prev is not 64 lowercase hex digits")]
    Prev,
}

/// Decodes the chain fields of a line; the payload is not checked.
pub fn decode_header(line: &[u8]) -> Result<(LineHeader<'_>, LineHash), DecodeError> {
    let header: LineHeader<'_> = serde_json::from_slice(line)?;
    if header.v != FORMAT_VERSION {
        return Err(DecodeError::Version(header.v));
    }
    let prev = LineHash::from_hex(header.prev).ok_or(DecodeError::Prev)?;
    Ok((header, prev))
}

/// Decodes a whole line, payload included.
pub fn decode_line(line: &[u8]) -> Result<Line, DecodeError> {
    let decoded: Line = serde_json::from_slice(line)?;
    if decoded.v != FORMAT_VERSION {
        return Err(DecodeError::Version(decoded.v));
    }
    if LineHash::from_hex(&decoded.prev).is_none() {
        return Err(DecodeError::Prev);
    }
    Ok(decoded)
}

/// Now as RFC 3339 UTC with microseconds, e.g. `2026-11-27T21:21:12.123456Z`.
#[must_use]
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// Parses an RFC 3339 time into microseconds since the Unix epoch.
#[must_use]
pub fn parse_ts_micros(ts: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(ts).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_micros()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_line_has_fixed_field_order_and_nulls() {
        let entry = Entry::Start(StartRecord {
            req: "r1".into(),
            method: "GET".into(),
            operation: "GetObject".into(),
            bucket: Some("b".into()),
            key: Some("k".into()),
            ..StartRecord::default()
        });
        let line = encode_line(0, &LineHash::GENESIS, "2026-01-01T00:00:00.000000Z", &entry);
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(text.starts_with(&format!(
            "{{\"v\":1,\"seq\":0,\"prev\":\"{GENESIS_PREV}\",\"ts\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"start\",\"req\":\"r1\",\"principal\":null"
        )));
        let decoded = decode_line(&line).unwrap();
        assert_eq!(decoded.entry, entry);
        let (header, prev) = decode_header(&line).unwrap();
        assert_eq!(header.kind, "start");
        assert_eq!(prev, LineHash::GENESIS);
    }

    #[test]
    fn copy_source_and_truncation_appear_only_when_set() {
        let plain = StartRecord { req: "r".into(), method: "GET".into(), ..StartRecord::default() };
        let text = String::from_utf8(encode_line(0, &LineHash::GENESIS, "t", &Entry::Start(plain))).unwrap();
        assert!(text.ends_with("\"range\":null}"), "{text}");

        let mut long = StartRecord {
            req: "r".into(),
            method: "GET".into(),
            key: Some("é".repeat(20)),
            user_agent: Some("ua".into()),
            copy_source: Some(ObjectRef { bucket: "b".into(), key: "k".into(), version_id: None }),
            ..StartRecord::default()
        };
        let key = long.key.clone().unwrap();
        long.bound(9);
        // 9 bytes fall inside the fifth 'é': four are kept.
        assert_eq!(long.key.as_deref(), Some("éééé\u{2026}"));
        assert_eq!(long.user_agent.as_deref(), Some("ua"));
        let cut = &long.truncated["key"];
        assert_eq!((cut.length, cut.sha256.as_str()), (40, hex::encode(Sha256::digest(key.as_bytes())).as_str()));
        assert_eq!(long.truncated.len(), 1);
        let line = encode_line(0, &LineHash::GENESIS, "t", &Entry::Start(long.clone()));
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(text.contains("\"copy_source\":{\"bucket\":\"b\",\"key\":\"k\",\"version_id\":null}"), "{text}");
        assert!(text.contains("\"truncated\":{\"key\":{\"length\":40,"), "{text}");
        assert_eq!(decode_line(&line).unwrap().entry, Entry::Start(long));
    }

    #[test]
    fn note_details_are_flattened() {
        let entry = Entry::Note(NoteRecord::new("recovery").with("cut_bytes", 12).with("reason", "partial line"));
        let line = encode_line(3, &LineHash([1; 32]), "2026-01-01T00:00:00.000000Z", &entry);
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(
            text.ends_with("\"kind\":\"note\",\"event\":\"recovery\",\"cut_bytes\":12,\"reason\":\"partial line\"}"),
            "{text}"
        );
        assert_eq!(decode_line(&line).unwrap().entry, entry);
    }

    #[test]
    fn hex_hash_rejects_uppercase_and_wrong_length() {
        assert!(LineHash::from_hex(GENESIS_PREV).is_some());
        assert!(LineHash::from_hex(&"A".repeat(64)).is_none());
        assert!(LineHash::from_hex("00").is_none());
    }

    #[test]
    fn timestamps_have_microseconds_and_parse_back() {
        let ts = now_rfc3339();
        assert_eq!(ts.len(), "2026-11-27T21:21:12.123456Z".len(), "{ts}");
        assert!(parse_ts_micros(&ts).is_some());
        assert_eq!(parse_ts_micros("1970-01-01T00:00:01.000002Z"), Some(1_000_002));
    }
}
