//! The embedded dev upstream: what `serve` forwards to when no upstream is
//! configured, so that a fresh checkout runs with one command and no
//! account anywhere.
//!
//! It is an S3-compatible store on the local file system (`s3s-fs`, under
//! `<data-dir>/objects`), served by `s3s` on a loopback port that only this
//! process knows, with `SigV4` enforced under an internal key kept in
//! `<data-dir>/keys/embedded-upstream.json` (0600). The proxy reaches it
//! through the same client, signer and pipeline as a real S3 endpoint, so
//! every request is authenticated, re-signed, metered and recorded exactly
//! as in production; only the bytes end up on the local disk.
//!
//! It is a development store: no durability promises beyond the file
//! system's, no versioning, no bucket policies.

pub mod first_start;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use egress_ledger::principals::SecretKey;
use http::Uri;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

/// The internal key's file, under `<data-dir>/keys/`.
pub const KEY_FILE: &str = "embedded-upstream.json";

/// The objects' directory, under the data dir.
pub const OBJECTS_DIR: &str = "objects";

/// Why the embedded store did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    #[error("embedded store: creating {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("embedded store: internal key file {path}: {source}")]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error(
        "embedded store: internal key file {path} is not valid ({source}); delete it to make a new key (objects are kept)"
    )]
    KeyFormat { path: PathBuf, source: serde_json::Error },
    #[error("embedded store: opening {path}: {message}")]
    Objects { path: PathBuf, message: String },
    #[error("embedded store: binding a loopback port: {0}")]
    Bind(std::io::Error),
}

/// The internal key the proxy signs with and the store checks.
#[derive(Deserialize, Serialize)]
struct InternalKey {
    access_key_id: String,
    secret_access_key: String,
}

impl Drop for InternalKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret_access_key);
    }
}

/// The running store; it stops when dropped.
#[derive(Debug)]
pub struct EmbeddedStore {
    endpoint: Uri,
    objects: PathBuf,
    access_key_id: String,
    secret: SecretKey,
    task: JoinHandle<()>,
}

impl EmbeddedStore {
    /// Starts the store for `data_dir` on `127.0.0.1:<free port>`, making
    /// the objects' directory and the internal key on first use.
    pub async fn start(data_dir: &Path) -> Result<EmbeddedStore, EmbeddedError> {
        let objects = data_dir.join(OBJECTS_DIR);
        std::fs::create_dir_all(&objects)
            .map_err(|source| EmbeddedError::CreateDir { path: objects.clone(), source })?;
        let key = load_or_create_key(&data_dir.join("keys").join(KEY_FILE))?;
        let fs = s3s_fs::FileSystem::new(&objects)
            .map_err(|e| EmbeddedError::Objects { path: objects.clone(), message: format!("{e:?}") })?;
        let service = {
            let mut builder = s3s::service::S3ServiceBuilder::new(fs);
            builder.set_auth(s3s::auth::SimpleAuth::from_single(
                key.access_key_id.clone(),
                key.secret_access_key.as_str(),
            ));
            builder.build()
        };
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(EmbeddedError::Bind)?;
        let addr = listener.local_addr().map_err(EmbeddedError::Bind)?;
        let task = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "embedded store: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small responses otherwise wait for the peer's delayed ACK
                // (Nagle): ~40 ms per GET on loopback.
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                tokio::spawn(async move {
                    let builder = auto::Builder::new(TokioExecutor::new());
                    if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                        tracing::debug!(error = %e, "embedded store: connection ended with an error");
                    }
                });
            }
        });
        let endpoint: Uri = format!("http://{addr}").parse().map_err(|e: http::uri::InvalidUri| {
            EmbeddedError::Bind(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })?;
        Ok(EmbeddedStore {
            endpoint,
            objects,
            access_key_id: key.access_key_id.clone(),
            secret: SecretKey::new(key.secret_access_key.clone()),
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, the upstream endpoint to forward to.
    #[must_use]
    pub fn endpoint(&self) -> &Uri {
        &self.endpoint
    }

    /// Where the objects are stored.
    #[must_use]
    pub fn objects(&self) -> &Path {
        &self.objects
    }

    /// The internal key, as fixed upstream credentials.
    #[must_use]
    pub fn credentials(&self) -> (String, SecretKey) {
        (self.access_key_id.clone(), SecretKey::new(self.secret.expose().to_owned()))
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn load_or_create_key(path: &Path) -> Result<InternalKey, EmbeddedError> {
    let key_error = |source| EmbeddedError::KeyFile { path: path.to_owned(), source };
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            return serde_json::from_slice(&bytes)
                .map_err(|source| EmbeddedError::KeyFormat { path: path.to_owned(), source });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(key_error(e)),
    }
    let mut rng = rand::rngs::OsRng;
    let id: String =
        std::iter::repeat_with(|| char::from(rng.sample(Alphanumeric)).to_ascii_uppercase()).take(16).collect();
    let key = InternalKey {
        access_key_id: format!("EMBD{id}"),
        secret_access_key: (&mut rng).sample_iter(Alphanumeric).take(40).map(char::from).collect(),
    };
    let json = Zeroizing::new(serde_json::to_vec(&key).map_err(|e| key_error(std::io::Error::other(e)))?);
    egress_ledger::storage::write_file_durably(path, &json, 0o600, true).map_err(key_error)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[tokio::test]
    async fn the_internal_key_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = EmbeddedStore::start(dir.path()).await.unwrap();
        let path = dir.path().join("keys").join(KEY_FILE);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (id, _) = first.credentials();
        drop(first);
        let second = EmbeddedStore::start(dir.path()).await.unwrap();
        assert_eq!(second.credentials().0, id, "the same key on a second start");
        assert!(second.objects().is_dir());
        assert_eq!(second.endpoint().host(), Some("127.0.0.1"));
    }
}
