//! The S3-compatible backend (`--blob-url s3://bucket?endpoint=…&region=…`), through the
//! `object_store` crate.
//!
//! Keys: `sha256/<first two hex>/<rest>`, the local layout's. An upload is PUT under a key of its
//! own, `incoming/<sha256>-<random>`, with the SHA-256 computed while staging in
//! `x-amz-checksum-sha256`, so the store checks the bytes it received against the hash otafleet
//! computed (not against one computed again from whatever was read back); only once the store
//! accepted them is the object copied, server-side, to its `sha256/…` key and the incoming one
//! deleted. A refused upload therefore never appears under a `sha256/` key, whatever the store
//! leaves behind (some keep a refused PUT's bytes), and the collector removes stray `incoming/`
//! objects past the grace period.
//!
//! Nothing is deleted on a firmware delete: [`super::BlobStore::collect`] removes an object only
//! when no firmware row refers to it and its last-modified time is older than the grace period,
//! so an import of the same bytes on another instance (it PUTs, then writes its row) is not raced.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    ClientOptions, HeaderMap, HeaderValue, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use crate::error::{CoreError, Result};

/// Where the bucket is: parsed from `s3://BUCKET?endpoint=URL&region=NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// The S3 API's base URL (`http://127.0.0.1:9000`, `https://s3.example.net`); `None`: AWS.
    pub endpoint: Option<String>,
    pub region: String,
}

impl S3Location {
    /// Parse a `--blob-url`. Only `s3://` URLs name a remote store; the message of every refusal
    /// says what is expected.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: String| {
            CoreError::invalid(
                "blob_url",
                format!(
                    "--blob-url {url:?}: {why}; expected s3://BUCKET?endpoint=http://HOST:PORT&region=REGION \
                     (endpoint and region optional; credentials from AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY)"
                ),
            )
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if parsed.scheme() != "s3" {
            return Err(bad(format!(
                "the scheme is {:?}, not s3 (leave --blob-url out to keep images in the data directory)",
                parsed.scheme()
            )));
        }
        let bucket = parsed.host_str().unwrap_or_default().to_string();
        if bucket.is_empty() {
            return Err(bad("no bucket name".into()));
        }
        if !matches!(parsed.path(), "" | "/") {
            return Err(bad(format!(
                "a key prefix ({}) is not supported: give the bucket alone",
                parsed.path()
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "credentials do not belong in the URL (they would show in process lists): set \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                    .into(),
            ));
        }
        let mut endpoint = None;
        let mut region = None;
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "endpoint" => {
                    let e = url::Url::parse(&v)
                        .map_err(|e| bad(format!("endpoint {v:?} is not a URL ({e})")))?;
                    if !matches!(e.scheme(), "http" | "https") {
                        return Err(bad(format!("endpoint {v:?} is not http:// or https://")));
                    }
                    endpoint = Some(v.trim_end_matches('/').to_string());
                }
                "region" => region = Some(v.into_owned()),
                other => return Err(bad(format!("unknown parameter {other:?}"))),
            }
        }
        let region = region
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        Ok(Self {
            bucket,
            endpoint,
            region,
        })
    }

    /// For logs and messages: `s3://bucket at http://host:port`.
    pub fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("s3://{} at {e}", self.bucket),
            None => format!("s3://{} (AWS, {})", self.bucket, self.region),
        }
    }
}

/// The object key of blob `sha256`.
pub(crate) fn key(sha256: &str) -> Key {
    Key::from(format!("sha256/{}/{}", &sha256[..2], &sha256[2..]))
}

const INCOMING: &str = "incoming";

/// One S3 bucket holding blobs.
pub(crate) struct S3Blobs {
    store: AmazonS3,
    /// The same configuration, for the one-request clients that carry an upload's checksum.
    builder: AmazonS3Builder,
    options: ClientOptions,
    pub(crate) location: S3Location,
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Blobs")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl S3Blobs {
    /// Connect to the bucket (credentials from the environment) and check that it answers.
    pub(crate) async fn open(location: S3Location) -> Result<Self> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (Some(key_id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(CoreError::BlobStore {
                code: "blob_store_credentials",
                message: format!(
                    "the blob store {} needs credentials: set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY in otafleet's environment",
                    location.describe()
                ),
            });
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&location.bucket)
            .with_region(&location.region)
            .with_access_key_id(key_id)
            .with_secret_access_key(secret)
            // A store that is down fails the request within seconds, with a message, instead of
            // the client's default of retrying for three minutes.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                ..Default::default()
            });
        if let Some(token) = env("AWS_SESSION_TOKEN") {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = &location.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let options = ClientOptions::new()
            .with_allow_http(
                location
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            )
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(300));
        let store = builder
            .clone()
            .with_client_options(options.clone())
            .build()
            .map_err(|e| unusable(&location, e))?;
        let this = Self {
            store,
            builder,
            options,
            location,
        };
        // Fail at start, with the reason, rather than at the first upload or download.
        this.store
            .list_with_delimiter(Some(&Key::from("sha256")))
            .await
            .map_err(|e| unusable(&this.location, e))?;
        Ok(this)
    }

    /// Store the staged file `path` (whose SHA-256 is `sha256`) under its key. `Ok` means the
    /// store verified the bytes against `sha256` and holds them under `sha256/…`.
    pub(crate) async fn put(&self, path: &std::path::Path, sha256: &str) -> Result<()> {
        let digest = hex::decode(sha256).map_err(std::io::Error::other)?;
        let checksum = base64::engine::general_purpose::STANDARD.encode(digest);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-checksum-sha256",
            HeaderValue::from_str(&checksum).map_err(std::io::Error::other)?,
        );
        // The header goes on this one client's requests; the client makes only the PUT. It is
        // signed with the rest (SigV4 signs every header), so it reaches the store as computed.
        let uploader = self
            .builder
            .clone()
            .with_client_options(self.options.clone().with_default_headers(headers))
            .build()
            .map_err(|e| self.failed("prepare the upload of", sha256, e))?;
        let body = tokio::fs::read(path).await?;
        let incoming = Key::from(format!(
            "{INCOMING}/{sha256}-{:016x}",
            rand::random::<u64>()
        ));
        if let Err(e) = uploader.put(&incoming, PutPayload::from(body)).await {
            // Some stores keep a refused PUT's bytes: this key is ours alone, so drop it.
            let _ = self.store.delete(&incoming).await;
            let text = e.to_string();
            // S3's codes for a body that does not match the checksum sent with it.
            if ["BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"]
                .iter()
                .any(|code| text.contains(code))
            {
                return Err(CoreError::BlobStore {
                    code: "blob_checksum_refused",
                    message: format!(
                        "the blob store {} refused the image's bytes: it checks them against the \
                         SHA-256 {sha256} otafleet computed while receiving the upload, so what \
                         reached it was not what otafleet hashed; nothing was stored, upload the \
                         file again ({text})",
                        self.location.describe()
                    ),
                });
            }
            return Err(self.failed("upload", sha256, e));
        }
        let dest = key(sha256);
        let copied = self.store.copy(&incoming, &dest).await;
        if let Err(e) = self.store.delete(&incoming).await {
            tracing::warn!(key = %incoming, error = %e, "could not delete an upload's incoming copy; the collector removes it after the grace period");
        }
        copied.map_err(|e| self.failed("move into place", sha256, e))
    }

    /// Whether the object of `sha256` exists.
    pub(crate) async fn exists(&self, sha256: &str) -> Result<bool> {
        match self.store.head(&key(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failed("look up", sha256, e)),
        }
    }

    /// The object's last-modified time, `None` when it does not exist.
    pub(crate) async fn modified(&self, sha256: &str) -> Result<Option<SystemTime>> {
        match self.store.head(&key(sha256)).await {
            Ok(meta) => Ok(Some(meta.last_modified.into())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("look up", sha256, e)),
        }
    }

    /// Every blob in the bucket, with its last-modified time.
    pub(crate) async fn list(&self) -> Result<Vec<(String, SystemTime)>> {
        let metas: Vec<_> = self
            .store
            .list(Some(&Key::from("sha256")))
            .try_collect()
            .await
            .map_err(|e| self.failed_all("list", e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let parts: Vec<_> = m.location.parts().collect();
                let [_, prefix, rest] = parts.as_slice() else {
                    return None;
                };
                let sha = format!("{}{}", prefix.as_ref(), rest.as_ref());
                (prefix.as_ref().len() == 2
                    && sha.len() == 64
                    && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then(|| (sha, m.last_modified.into()))
            })
            .collect())
    }

    /// Delete the object of `sha256` (the collector decided it may go).
    pub(crate) async fn delete(&self, sha256: &str) -> Result<()> {
        match self.store.delete(&key(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("delete", sha256, e)),
        }
    }

    /// Delete `incoming/` objects last modified before `cutoff` (uploads a killed process left
    /// half-done). Returns how many went.
    pub(crate) async fn sweep_incoming(&self, cutoff: SystemTime) -> Result<usize> {
        let metas: Vec<_> = self
            .store
            .list(Some(&Key::from(INCOMING)))
            .try_collect()
            .await
            .map_err(|e| self.failed_all("list", e))?;
        let mut removed = 0;
        for m in metas {
            if SystemTime::from(m.last_modified) < cutoff {
                match self.store.delete(&m.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                    Err(e) => return Err(self.failed_all("delete an unfinished upload in", e)),
                }
            }
        }
        Ok(removed)
    }

    /// The object's bytes as a stream, and its size.
    pub(crate) async fn get(
        &self,
        sha256: &str,
    ) -> Result<(
        u64,
        futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    )> {
        match self.store.get(&key(sha256)).await {
            Ok(r) => Ok((r.meta.size, r.into_stream())),
            Err(object_store::Error::NotFound { .. }) => Err(CoreError::BlobStore {
                code: "blob_missing",
                message: format!(
                    "image {sha256} is in the library but not in the blob store {}: upload the \
                     same file again to restore it",
                    self.location.describe()
                ),
            }),
            Err(e) => Err(self.failed("download", sha256, e)),
        }
    }

    pub(crate) fn failed(&self, what: &str, sha256: &str, e: object_store::Error) -> CoreError {
        CoreError::BlobStore {
            code: "blob_store_failed",
            message: format!(
                "could not {what} image {sha256} in the blob store {}: {e}; check that the store \
                 is up and reachable and that the credentials may use the bucket",
                self.location.describe()
            ),
        }
    }

    fn failed_all(&self, what: &str, e: object_store::Error) -> CoreError {
        CoreError::BlobStore {
            code: "blob_store_failed",
            message: format!(
                "could not {what} the blob store {}: {e}; check that the store is up and \
                 reachable and that the credentials may use the bucket",
                self.location.describe()
            ),
        }
    }
}

fn unusable(location: &S3Location, e: object_store::Error) -> CoreError {
    CoreError::BlobStore {
        code: "blob_store_unusable",
        message: format!(
            "the blob store {} (--blob-url) cannot be used: {e}. Check that it is up and \
             reachable, that the bucket {:?} exists, and that AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY may list, read, write and delete in it",
            location.describe(),
            location.bucket
        ),
    }
}
