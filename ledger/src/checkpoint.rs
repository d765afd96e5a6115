//! Signed checkpoints: the Ed25519 key that signs them, the text that is
//! signed, and the detached file written beside the ledger.
//!
//! The formats follow the C2SP signed-note and tlog-checkpoint conventions:
//! the signed text is four lines (origin, head seq, head hash in hex, time),
//! the detached file adds a blank line and a signature line
//! `— <origin> <base64(key id || signature)>`, and keys are written as note
//! verifier / signer keys: `<origin>+<key id hex>+<base64(0x01 || key)>`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::record::{CheckpointRecord, LineHash};
use crate::storage::write_file_durably;

/// Algorithm byte of Ed25519 in signed-note keys.
const ALG_ED25519: u8 = 0x01;
const SIGNER_PREFIX: &str = "PRIVATE+KEY+";

/// Errors with checkpoint keys and files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a checkpoint key: {why}")]
    BadKey { path: PathBuf, why: &'static str },
    #[error("not a checkpoint: {0}")]
    BadNote(&'static str),
    #[error("checkpoint signature does not verify for key {key}")]
    BadSignature { key: String },
    #[error("checkpoint is signed by key id {found}, the public key has id {expected}")]
    WrongKey { expected: String, found: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io { path: path.to_path_buf(), source }
}

/// Key id of a signed-note key: SHA-256(name || "\n" || 0x01 || key)[..4].
#[must_use]
pub fn key_id(origin: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The exact text a checkpoint's signature covers.
#[must_use]
pub fn signed_text(origin: &str, head_seq: u64, head: &str, time: &str) -> String {
    format!("{origin}\n{head_seq}\n{head}\n{time}\n")
}

/// The key that signs checkpoints, with the origin it signs for.
pub struct CheckpointSigner {
    origin: String,
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner").field("origin", &self.origin).field("key", &"<secret>").finish()
    }
}

/// File names inside `<data-dir>/keys/`.
pub const SIGNER_FILE: &str = "checkpoint.key";
pub const VERIFIER_FILE: &str = "checkpoint.pub";

impl CheckpointSigner {
    /// Reads the signer key at `path`.
    pub fn load(path: &Path) -> Result<CheckpointSigner, CheckpointError> {
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io_err(path))?);
        let bad = |why| CheckpointError::BadKey { path: path.to_path_buf(), why };
        let rest = text.trim().strip_prefix(SIGNER_PREFIX).ok_or_else(|| bad("missing PRIVATE+KEY+ prefix"))?;
        let (origin, id_hex, key_b64) = split_key(rest).ok_or_else(|| bad("expected NAME+KEYID+KEY"))?;
        let raw = Zeroizing::new(BASE64.decode(key_b64).map_err(|_| bad("key is not base64"))?);
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&raw[1..]);
        let signer = CheckpointSigner { origin: origin.to_owned(), key: SigningKey::from_bytes(&seed) };
        if hex::encode(signer.key_id()) != id_hex {
            return Err(bad("key id does not match the key"));
        }
        Ok(signer)
    }

    /// Loads `<keys_dir>/checkpoint.key`, or makes a new key for `origin`
    /// there (mode 0600) with its public half in `checkpoint.pub`.
    pub fn load_or_create(keys_dir: &Path, origin: &str) -> Result<CheckpointSigner, CheckpointError> {
        let path = keys_dir.join(SIGNER_FILE);
        if path.exists() {
            return CheckpointSigner::load(&path);
        }
        if origin.is_empty() || origin.contains(['+', ' ', '\n']) {
            return Err(CheckpointError::BadKey {
                path,
                why: "origin must be non-empty, without '+', spaces or newlines",
            });
        }
        crate::storage::create_private_dir(keys_dir).map_err(io_err(keys_dir))?;
        let signer = CheckpointSigner { origin: origin.to_owned(), key: SigningKey::generate(&mut rand::rngs::OsRng) };
        let mut raw = Zeroizing::new(vec![ALG_ED25519]);
        raw.extend_from_slice(signer.key.as_bytes());
        let text = Zeroizing::new(format!(
            "{SIGNER_PREFIX}{}+{}+{}\n",
            signer.origin,
            hex::encode(signer.key_id()),
            BASE64.encode(&raw)
        ));
        write_file_durably(&path, text.as_bytes(), 0o600, false).map_err(io_err(&path))?;
        let pub_path = keys_dir.join(VERIFIER_FILE);
        write_file_durably(&pub_path, format!("{}\n", signer.verifier_key_text()).as_bytes(), 0o644, false)
            .map_err(io_err(&pub_path))?;
        Ok(signer)
    }

    /// A signer from a known seed (test vectors, tests).
    #[must_use]
    pub fn from_seed(origin: &str, seed: &[u8; 32]) -> CheckpointSigner {
        CheckpointSigner { origin: origin.to_owned(), key: SigningKey::from_bytes(seed) }
    }

    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    #[must_use]
    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.origin, &self.verifying_key())
    }

    /// The public key as a note verifier key line.
    #[must_use]
    pub fn verifier_key_text(&self) -> String {
        CheckpointVerifier { origin: self.origin.clone(), key: self.verifying_key() }.to_text()
    }

    /// Signs the head (`head_seq`, `head`) at `time`.
    #[must_use]
    pub fn sign(&self, head_seq: u64, head: &LineHash, time: &str) -> CheckpointRecord {
        let head = head.to_hex();
        let signature = self.key.sign(signed_text(&self.origin, head_seq, &head, time).as_bytes());
        CheckpointRecord {
            origin: self.origin.clone(),
            head_seq,
            head,
            time: time.to_owned(),
            key_id: hex::encode(self.key_id()),
            signature: BASE64.encode(signature.to_bytes()),
        }
    }
}

fn split_key(s: &str) -> Option<(&str, &str, &str)> {
    // Base64 may contain '+', the name may not: split from the left.
    let mut parts = s.splitn(3, '+');
    let origin = parts.next()?;
    let id = parts.next()?;
    let key = parts.next()?;
    (!origin.is_empty() && id.len() == 8).then_some((origin, id, key))
}

/// A public key that checks checkpoints of one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    pub origin: String,
    pub key: VerifyingKey,
}

impl CheckpointVerifier {
    /// Parses a verifier key line `<origin>+<key id>+<base64(0x01 || key)>`.
    pub fn parse(text: &str) -> Result<CheckpointVerifier, &'static str> {
        let (origin, id_hex, key_b64) = split_key(text.trim()).ok_or("expected ORIGIN+KEYID+KEY")?;
        let raw = BASE64.decode(key_b64).map_err(|_| "key is not base64")?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err("not an Ed25519 public key");
        }
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&raw[1..]);
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 point")?;
        let verifier = CheckpointVerifier { origin: origin.to_owned(), key };
        if hex::encode(key_id(origin, &key)) != id_hex {
            return Err("key id does not match the key");
        }
        Ok(verifier)
    }

    /// Reads a verifier key file.
    pub fn load(path: &Path) -> Result<CheckpointVerifier, CheckpointError> {
        let text = fs::read_to_string(path).map_err(io_err(path))?;
        CheckpointVerifier::parse(&text).map_err(|why| CheckpointError::BadKey { path: path.to_path_buf(), why })
    }

    #[must_use]
    pub fn to_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.origin, hex::encode(key_id(&self.origin, &self.key)), BASE64.encode(raw))
    }

    /// Checks a checkpoint's key id, origin and signature.
    pub fn verify(&self, cp: &CheckpointRecord) -> Result<(), CheckpointError> {
        let expected = hex::encode(key_id(&self.origin, &self.key));
        if cp.key_id != expected || cp.origin != self.origin {
            return Err(CheckpointError::WrongKey { expected, found: cp.key_id.clone() });
        }
        let bad = || CheckpointError::BadSignature { key: expected.clone() };
        let sig_bytes = BASE64.decode(&cp.signature).map_err(|_| bad())?;
        let signature = Signature::from_slice(&sig_bytes).map_err(|_| bad())?;
        self.key
            .verify(signed_text(&cp.origin, cp.head_seq, &cp.head, &cp.time).as_bytes(), &signature)
            .map_err(|_| bad())
    }
}

/// The detached checkpoint file: the signed text, a blank line, and the
/// signature line.
#[must_use]
pub fn to_note(cp: &CheckpointRecord) -> String {
    let mut sig = hex::decode(&cp.key_id).unwrap_or_default();
    sig.extend(BASE64.decode(&cp.signature).unwrap_or_default());
    format!(
        "{}\n\u{2014} {} {}\n",
        signed_text(&cp.origin, cp.head_seq, &cp.head, &cp.time),
        cp.origin,
        BASE64.encode(sig)
    )
}

/// Parses a detached checkpoint file written by [`to_note`].
pub fn parse_note(text: &str) -> Result<CheckpointRecord, CheckpointError> {
    let bad = CheckpointError::BadNote;
    let (body, sigs) = text.split_once("\n\n").ok_or(bad("no blank line before the signature"))?;
    let mut lines = body.lines();
    let origin = lines.next().ok_or(bad("no origin line"))?;
    let head_seq: u64 = lines.next().and_then(|l| l.parse().ok()).ok_or(bad("line 2 is not a seq"))?;
    let head = lines.next().filter(|h| LineHash::from_hex(h).is_some()).ok_or(bad("line 3 is not a hash"))?;
    let time = lines.next().ok_or(bad("no time line"))?;
    let sig_line = sigs.lines().next().ok_or(bad("no signature line"))?;
    let rest = sig_line.strip_prefix("\u{2014} ").ok_or(bad("signature line must start with an em dash"))?;
    let (name, b64) = rest.rsplit_once(' ').ok_or(bad("signature line is not NAME SIG"))?;
    if name != origin {
        return Err(bad("signature name differs from the origin"));
    }
    let raw = BASE64.decode(b64).map_err(|_| bad("signature is not base64"))?;
    if raw.len() != 68 {
        return Err(bad("signature is not 4 + 64 bytes"));
    }
    Ok(CheckpointRecord {
        origin: origin.to_owned(),
        head_seq,
        head: head.to_owned(),
        time: time.to_owned(),
        key_id: hex::encode(&raw[..4]),
        signature: BASE64.encode(&raw[4..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_note_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let signer = CheckpointSigner::load_or_create(dir.path(), "test-origin").unwrap();
        let again = CheckpointSigner::load_or_create(dir.path(), "ignored").unwrap();
        assert_eq!(again.verifying_key(), signer.verifying_key());
        assert_eq!(again.origin(), "test-origin");

        let verifier = CheckpointVerifier::load(&dir.path().join(VERIFIER_FILE)).unwrap();
        let cp = signer.sign(41, &LineHash([7; 32]), "2026-11-27T00:00:00.000000Z");
        verifier.verify(&cp).unwrap();
        let parsed = parse_note(&to_note(&cp)).unwrap();
        assert_eq!(parsed, cp);

        let mut forged = cp.clone();
        forged.head_seq = 42;
        assert!(matches!(verifier.verify(&forged), Err(CheckpointError::BadSignature { .. })));

        let other = CheckpointSigner::load_or_create(tempfile::tempdir().unwrap().path(), "test-origin").unwrap();
        assert!(matches!(
            verifier.verify(&other.sign(41, &LineHash([7; 32]), "t")),
            Err(CheckpointError::WrongKey { .. })
        ));
    }

    #[test]
    fn key_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        CheckpointSigner::load_or_create(&keys, "o").unwrap();
        let mode = fs::metadata(keys.join(SIGNER_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
