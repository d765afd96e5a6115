//! Where the logs are read from: the log bucket through the S3 API
//! ([`S3LogStore`]), or memory in tests ([`MemoryLogStore`]).

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Why the log bucket could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// AWS refused (`AccessDenied`, `NoSuchBucket`, ...): its code and message.
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// The endpoint could not be reached or answered nonsense.
    #[error("the log bucket could not be reached: {0}")]
    Unreachable(String),
    /// An object is larger than a run reads.
    #[error("larger than {limit} bytes")]
    TooLarge { limit: u64 },
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub keys: Vec<String>,
    /// Pass back to get the next page; `None` on the last.
    pub next: Option<String>,
}

/// Read access to one log bucket.
pub trait LogStore: Send + Sync {
    /// Keys under `prefix` that sort after `start_after`, in key order, one
    /// page at a time (`token` from the previous [`Page::next`]).
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// The whole object, refused if larger than `limit` bytes.
    fn get(&self, key: &str, limit: u64) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// `s3://bucket/` for reports.
    fn location(&self) -> String;
}

/// A bucket through aws-sdk-s3 (the provisioning's AWS configuration, so
/// `--aws-endpoint` applies).
#[derive(Debug, Clone)]
pub struct S3LogStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3LogStore {
    #[must_use]
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> S3LogStore {
        S3LogStore { client, bucket }
    }
}

fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> StoreError {
    match e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            StoreError::Refused {
                code: err.code().unwrap_or("Unknown").to_owned(),
                message: err.message().unwrap_or_default().to_owned(),
            }
        }
        other => StoreError::Unreachable(aws_sdk_s3::error::DisplayErrorContext(other).to_string()),
    }
}

impl LogStore for S3LogStore {
    async fn list(&self, prefix: &str, start_after: Option<&str>, token: Option<String>) -> Result<Page, StoreError> {
        let mut request = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix);
        if let Some(after) = start_after {
            request = request.start_after(after);
        }
        if let Some(token) = token {
            request = request.continuation_token(token);
        }
        let out = request.send().await.map_err(|e| sdk_error(&e))?;
        let keys = out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        let next =
            if out.is_truncated() == Some(true) { out.next_continuation_token().map(str::to_owned) } else { None };
        Ok(Page { keys, next })
    }

    async fn get(&self, key: &str, limit: u64) -> Result<Vec<u8>, StoreError> {
        let out = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|e| sdk_error(&e))?;
        if out.content_length().is_some_and(|n| u64::try_from(n).unwrap_or(u64::MAX) > limit) {
            return Err(StoreError::TooLarge { limit });
        }
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| StoreError::Unreachable(e.to_string()))? {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(StoreError::TooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    fn location(&self) -> String {
        format!("s3://{}/", self.bucket)
    }
}

/// Objects in memory, for tests.
#[derive(Debug, Clone, Default)]
pub struct MemoryLogStore {
    pub objects: BTreeMap<String, Vec<u8>>,
    /// Every call fails with this, when set.
    pub failure: Option<StoreError>,
    /// Keys whose `get` fails with [`StoreError::Refused`].
    pub unreadable: Vec<String>,
}

impl LogStore for MemoryLogStore {
    async fn list(&self, prefix: &str, start_after: Option<&str>, token: Option<String>) -> Result<Page, StoreError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        // Pages of two keys, to exercise paging.
        let after = token.as_deref().or(start_after).unwrap_or("");
        let keys: Vec<String> =
            self.objects.keys().filter(|k| k.starts_with(prefix) && k.as_str() > after).take(3).cloned().collect();
        let next = (keys.len() == 3).then(|| keys[1].clone());
        Ok(Page { keys: keys.into_iter().take(2).collect(), next })
    }

    async fn get(&self, key: &str, limit: u64) -> Result<Vec<u8>, StoreError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        if self.unreadable.iter().any(|k| k == key) {
            return Err(StoreError::Refused { code: "AccessDenied".into(), message: "Access Denied".into() });
        }
        let bytes = self
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::Refused { code: "NoSuchKey".into(), message: key.to_owned() })?;
        if bytes.len() as u64 > limit {
            return Err(StoreError::TooLarge { limit });
        }
        Ok(bytes)
    }

    fn location(&self) -> String {
        "memory://".to_owned()
    }
}

/// A local copy of a log bucket (e.g. made with `aws s3 sync`): keys are
/// paths under `root` with `/` between parts. Used by the scale benchmark
/// (`reconcile/examples/scale.rs`).
#[derive(Debug, Clone)]
pub struct DirLogStore {
    root: std::path::PathBuf,
}

impl DirLogStore {
    #[must_use]
    pub fn new(root: impl Into<std::path::PathBuf>) -> DirLogStore {
        DirLogStore { root: root.into() }
    }

    fn walk(&self, dir: &std::path::Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                self.walk(&path, out)?;
            } else if let Ok(relative) = path.strip_prefix(&self.root) {
                let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
}

fn io_error(e: &std::io::Error) -> StoreError {
    StoreError::Unreachable(e.to_string())
}

impl LogStore for DirLogStore {
    async fn list(&self, prefix: &str, start_after: Option<&str>, _token: Option<String>) -> Result<Page, StoreError> {
        let mut keys = Vec::new();
        match self.walk(&self.root, &mut keys) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Refused {
                    code: "NoSuchBucket".into(),
                    message: self.root.display().to_string(),
                });
            }
            Err(e) => return Err(io_error(&e)),
        }
        keys.retain(|k| k.starts_with(prefix) && start_after.is_none_or(|after| k.as_str() > after));
        keys.sort();
        Ok(Page { keys, next: None })
    }

    async fn get(&self, key: &str, limit: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.root.join(key);
        let len = std::fs::metadata(&path).map_err(|e| io_error(&e))?.len();
        if len > limit {
            return Err(StoreError::TooLarge { limit });
        }
        tokio::fs::read(&path).await.map_err(|e| io_error(&e))
    }

    fn location(&self) -> String {
        format!("file://{}/", self.root.display())
    }
}
