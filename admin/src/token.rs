//! The admin bearer token: from `--admin-token-file`, `EGRESS_ADMIN_TOKEN`,
//! or generated on first start into `<data-dir>/admin.token` (0600). It is
//! never printed, and compared by SHA-256 digest in constant time: the
//! time a comparison takes depends on neither the token nor its length.

use std::path::{Path, PathBuf};

use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The admin token, kept as its SHA-256 digest (all a comparison needs).
pub struct AdminToken(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Where the token came from, for the start-up log (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    File(PathBuf),
    Environment,
    Generated(PathBuf),
}

/// Why the token could not be had.
#[derive(Debug, thiserror::Error)]
#[error("admin token: {0}")]
pub struct TokenError(String);

impl AdminToken {
    /// A token from its text (at least 16 characters, surrounding space trimmed).
    pub fn new(text: &str) -> Result<AdminToken, TokenError> {
        let text = text.trim();
        if text.len() < 16 {
            return Err(TokenError("must be at least 16 characters".into()));
        }
        Ok(AdminToken::from_checked(text))
    }

    fn from_checked(text: &str) -> AdminToken {
        AdminToken(Zeroizing::new(Sha256::digest(text.as_bytes()).into()))
    }

    /// The token to use: the file if given, else the environment value if
    /// given, else `<data_dir>/admin.token`, generated there (0600) if missing.
    pub fn load(
        file: Option<&Path>,
        env: Option<&str>,
        data_dir: &Path,
    ) -> Result<(AdminToken, TokenSource), TokenError> {
        if let Some(path) = file {
            let text = Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| TokenError(format!("reading {}: {e}", path.display())))?,
            );
            return Ok((AdminToken::new(&text)?, TokenSource::File(path.to_path_buf())));
        }
        if let Some(text) = env {
            return Ok((AdminToken::new(text)?, TokenSource::Environment));
        }
        let path = data_dir.join("admin.token");
        if path.exists() {
            let text = Zeroizing::new(
                std::fs::read_to_string(&path).map_err(|e| TokenError(format!("reading {}: {e}", path.display())))?,
            );
            return Ok((AdminToken::new(&text)?, TokenSource::File(path)));
        }
        let token: String =
            rand::rngs::OsRng.sample_iter(rand::distributions::Alphanumeric).take(40).map(char::from).collect();
        egress_ledger::storage::write_file_durably(&path, format!("{token}\n").as_bytes(), 0o600, false)
            .map_err(|e| TokenError(format!("writing {}: {e}", path.display())))?;
        Ok((AdminToken::from_checked(&token), TokenSource::Generated(path)))
    }

    /// Names the token in records of who changed what (`admin:<id>`):
    /// 8 hex digits of a hash of its digest, which tells nothing of it.
    #[must_use]
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_slice())[..4])
    }

    /// Whether a client sent the token. Digests of one length are compared,
    /// in constant time: comparing the texts themselves returns at once on
    /// a length mismatch, and so would tell the token's length.
    #[must_use]
    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        self.0.ct_eq(&presented).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = AdminToken::load(None, None, dir.path()).unwrap();
        assert!(matches!(source, TokenSource::Generated(_)));
        let mode = std::fs::metadata(dir.path().join("admin.token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, source) = AdminToken::load(None, None, dir.path()).unwrap();
        assert!(matches!(source, TokenSource::File(_)));
        let text = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
        assert!(first.matches(text.trim().as_bytes()) && again.matches(text.trim().as_bytes()));
        assert!(!first.matches(b"wrong"));
        let token = text.trim().as_bytes();
        assert!(!first.matches(&token[..token.len() - 1]), "a prefix");
        assert!(!first.matches(&[token, b"x"].concat()), "a longer text");
        assert!(!first.matches(b""));
        assert!(!format!("{first:?}").contains(text.trim()));
        assert!(AdminToken::load(None, Some("short"), dir.path()).is_err());
    }
}
