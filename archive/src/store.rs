//! Where archived objects go: an S3 bucket through aws-sdk-s3
//! ([`S3Store`]), or memory in tests ([`MemoryStore`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ObjectLockMode};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Why the archive could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// S3 refused (`AccessDenied`, `NoSuchBucket`, ...): its code and message.
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// The endpoint could not be reached or answered nonsense.
    #[error("the archive could not be reached: {0}")]
    Unreachable(String),
    /// An object is larger than anything the archive writes.
    #[error("{key}: larger than {limit} bytes")]
    TooLarge { key: String, limit: u64 },
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub keys: Vec<String>,
    /// Folders under the prefix when listed with a delimiter.
    pub folders: Vec<String>,
    /// Pass back to get the next page; `None` on the last.
    pub next: Option<String>,
}

/// One version of a key, or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub key: String,
    /// `None` for a store without versions (S3 says `null`).
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// One page of a version listing.
#[derive(Debug, Clone, Default)]
pub struct VersionPage {
    pub versions: Vec<Version>,
    /// `(key marker, version id marker)` of the next page; `None` on the last.
    pub next: Option<(String, String)>,
}

/// What a HEAD says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// `x-amz-checksum-sha256` (base64), when the store keeps checksums.
    pub sha256_base64: Option<String>,
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// The key was there already (a retried upload: keys name their content).
    Exists,
}

/// The base64 SHA-256 S3 checksums use.
#[must_use]
pub fn sha256_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// An object store holding one archive.
pub trait ObjectStore: Send + Sync {
    /// Writes `bytes` under `key` unless the key exists (`If-None-Match: *`),
    /// with a SHA-256 checksum the store checks, and Object Lock retention in
    /// COMPLIANCE mode until `retain_until` when given.
    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        retain_until: Option<SystemTime>,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// Size and checksum of `key`, `None` if there is no such object.
    fn head(&self, key: &str) -> impl Future<Output = Result<Option<ObjectInfo>, StoreError>> + Send;

    /// The whole object (its `version` if given, else the latest),
    /// refused if larger than `limit` bytes.
    fn get(
        &self,
        key: &str,
        version: Option<&str>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Every version of the keys under `prefix` (delete markers too), in
    /// key order, newest first within a key, a page at a time (`marker`
    /// from [`VersionPage::next`]).
    fn list_versions(
        &self,
        prefix: &str,
        marker: Option<(String, String)>,
    ) -> impl Future<Output = Result<VersionPage, StoreError>> + Send;

    /// Keys under `prefix` after `start_after`, in key order, a page at a
    /// time (`token` from [`Page::next`]). With `delimiter`, the folders
    /// below `prefix` instead of what is in them.
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
        delimiter: bool,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// `s3://bucket/` for messages.
    fn location(&self) -> String;
}

/// A bucket through aws-sdk-s3.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    #[must_use]
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> S3Store {
        S3Store { client, bucket }
    }

    /// A client from the standard AWS chain (environment, profile, role),
    /// at `endpoint` if given (an emulator, another S3 server: path-style).
    pub async fn connect(endpoint: Option<&str>, region: &str, bucket: String) -> S3Store {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_config::Region::new(region.to_owned()));
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk = loader.load().await;
        let conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(endpoint.is_some()).build();
        S3Store::new(aws_sdk_s3::Client::from_conf(conf), bucket)
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

fn status_of<E, R: HttpStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HttpStatus::status_code)
}

/// The status of a raw response, whatever the SDK's response type.
trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

impl ObjectStore for S3Store {
    async fn put(&self, key: &str, bytes: Vec<u8>, retain_until: Option<SystemTime>) -> Result<PutOutcome, StoreError> {
        // A HEAD first: a store that ignores If-None-Match would otherwise
        // keep a second version of a retried upload.
        if self.head(key).await?.is_some() {
            return Ok(PutOutcome::Exists);
        }
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256_base64(&bytes))
            .body(ByteStream::from(bytes));
        if let Some(until) = retain_until {
            put = put.object_lock_mode(ObjectLockMode::Compliance).object_lock_retain_until_date(DateTime::from(until));
        }
        match put.send().await {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) if status_of(&e) == Some(412) => Ok(PutOutcome::Exists),
            Err(e) => Err(sdk_error(&e)),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let head =
            self.client.head_object().bucket(&self.bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await;
        match head {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                sha256_base64: out.checksum_sha256().map(str::to_owned),
            })),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(sdk_error(&e)),
        }
    }

    async fn get(&self, key: &str, version: Option<&str>, limit: u64) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error(&e))?;
        if out.content_length().and_then(|n| u64::try_from(n).ok()).is_some_and(|n| n > limit) {
            return Err(StoreError::TooLarge { key: key.to_owned(), limit });
        }
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) =
            body.try_next().await.map_err(|e| StoreError::Unreachable(format!("reading {key}: {e}")))?
        {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(StoreError::TooLarge { key: key.to_owned(), limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
        delimiter: bool,
    ) -> Result<Page, StoreError> {
        let mut req = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix);
        if let Some(after) = start_after {
            req = req.start_after(after);
        }
        if let Some(token) = token {
            req = req.continuation_token(token);
        }
        if delimiter {
            req = req.delimiter("/");
        }
        let out = req.send().await.map_err(|e| sdk_error(&e))?;
        Ok(Page {
            keys: out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect(),
            folders: out.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_owned)).collect(),
            next: out.next_continuation_token().filter(|_| out.is_truncated() == Some(true)).map(str::to_owned),
        })
    }

    async fn list_versions(&self, prefix: &str, marker: Option<(String, String)>) -> Result<VersionPage, StoreError> {
        let mut req = self.client.list_object_versions().bucket(&self.bucket).prefix(prefix);
        if let Some((key, version)) = marker {
            req = req.key_marker(key).version_id_marker(version);
        }
        let out = req.send().await.map_err(|e| sdk_error(&e))?;
        let id = |v: Option<&str>| v.filter(|v| *v != "null").map(str::to_owned);
        let mut versions: Vec<Version> = out
            .versions()
            .iter()
            .filter_map(|v| {
                Some(Version { key: v.key()?.to_owned(), version_id: id(v.version_id()), delete_marker: false })
            })
            .chain(out.delete_markers().iter().filter_map(|m| {
                Some(Version { key: m.key()?.to_owned(), version_id: id(m.version_id()), delete_marker: true })
            }))
            .collect();
        // Two lists, each in key order and newest first within a key: a
        // stable sort by key keeps each key's versions newest first.
        versions.sort_by(|a, b| a.key.cmp(&b.key));
        let next = match (out.is_truncated(), out.next_key_marker(), out.next_version_id_marker()) {
            (Some(true), Some(key), Some(version)) => Some((key.to_owned(), version.to_owned())),
            _ => None,
        };
        Ok(VersionPage { versions, next })
    }

    fn location(&self) -> String {
        format!("s3://{}/", self.bucket)
    }
}

/// An archive in memory, for tests: it keeps every put, can be made to
/// fail (an outage), and to refuse changing or deleting (Object Lock).
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    down: AtomicBool,
}

impl MemoryStore {
    /// While `down`, every call fails as if the endpoint were unreachable.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) { Err(StoreError::Unreachable("down".into())) } else { Ok(()) }
    }

    /// Every key, in order.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner).keys().cloned().collect()
    }

    /// Replaces an object behind the archive's back (a bucket without
    /// Object Lock), for tamper tests.
    pub fn replace(&self, key: &str, bytes: Vec<u8>) {
        self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.to_owned(), bytes);
    }

    /// Deletes an object behind the archive's back.
    pub fn remove(&self, key: &str) {
        self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

impl ObjectStore for MemoryStore {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _retain_until: Option<SystemTime>,
    ) -> Result<PutOutcome, StoreError> {
        self.check()?;
        let mut objects = self.objects.lock().map_err(|_| StoreError::Unreachable("poisoned".into()))?;
        if objects.contains_key(key) {
            return Ok(PutOutcome::Exists);
        }
        objects.insert(key.to_owned(), bytes);
        Ok(PutOutcome::Created)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        self.check()?;
        let objects = self.objects.lock().map_err(|_| StoreError::Unreachable("poisoned".into()))?;
        Ok(objects.get(key).map(|b| ObjectInfo { size: b.len() as u64, sha256_base64: Some(sha256_base64(b)) }))
    }

    async fn get(&self, key: &str, _version: Option<&str>, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.check()?;
        let objects = self.objects.lock().map_err(|_| StoreError::Unreachable("poisoned".into()))?;
        let bytes = objects
            .get(key)
            .ok_or_else(|| StoreError::Refused { code: "NoSuchKey".into(), message: key.to_owned() })?;
        if bytes.len() as u64 > limit {
            return Err(StoreError::TooLarge { key: key.to_owned(), limit });
        }
        Ok(bytes.clone())
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
        delimiter: bool,
    ) -> Result<Page, StoreError> {
        const PAGE: usize = 3;
        self.check()?;
        let objects = self.objects.lock().map_err(|_| StoreError::Unreachable("poisoned".into()))?;
        let after = token.as_deref().or(start_after).unwrap_or("");
        let mut page = Page::default();
        let mut seen = std::collections::BTreeSet::new();
        for key in objects.keys().filter(|k| k.starts_with(prefix) && k.as_str() > after) {
            if delimiter {
                if let Some((folder, _)) = key[prefix.len()..].split_once('/') {
                    seen.insert(format!("{prefix}{folder}/"));
                }
                continue;
            }
            if page.keys.len() == PAGE {
                page.next = page.keys.last().cloned();
                break;
            }
            page.keys.push(key.clone());
        }
        page.folders = seen.into_iter().collect();
        Ok(page)
    }

    async fn list_versions(&self, prefix: &str, marker: Option<(String, String)>) -> Result<VersionPage, StoreError> {
        let page = self.list(prefix, None, marker.map(|(key, _)| key), false).await?;
        Ok(VersionPage {
            versions: page
                .keys
                .into_iter()
                .map(|key| Version { key, version_id: None, delete_marker: false })
                .collect(),
            next: page.next.map(|key| (key, String::new())),
        })
    }

    fn location(&self) -> String {
        "memory://".into()
    }
}
