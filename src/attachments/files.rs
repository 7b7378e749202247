//! Where attachment bytes live (an `object_store` store: a local directory
//! by default), what is accepted, and the signed download links.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, local::LocalFileSystem, path::Path};
use rand::RngCore;
use sea_orm::{ActiveValue::Set, EntityTrait, sea_query::OnConflict};
use sha2::Sha256;

use crate::{
    clock::now,
    config::{AttachmentSettings, DatabaseSettings},
    db::Db,
    entity::service_keys,
    error::{ApiError, ApiResult},
};

/// The name of the key that signs download links.
const URL_KEY: &str = "attachment-urls";

/// The attachment store and its rules.
#[derive(Clone)]
pub struct Files(Arc<Inner>);

struct Inner {
    store: Arc<dyn ObjectStore>,
    /// Largest file, in bytes.
    max_bytes: usize,
    /// Most attachments per ticket.
    max_per_ticket: u64,
    /// Accepted media types.
    types: Vec<String>,
    /// How long a download link lives.
    url_ttl: Duration,
    /// Where the link-signing key is kept.
    db: Db,
    /// Signs download links; the same on every replica. Read at first use,
    /// so a server started before its migrations still starts.
    key: tokio::sync::OnceCell<Vec<u8>>,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("store", &self.0.store.to_string())
            .finish_non_exhaustive()
    }
}

/// A download link's signed part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Unix time after which the link is refused.
    pub expires: i64,
    /// HMAC-SHA256 of the attachment id and `expires`, base64url.
    pub signature: String,
}

impl Files {
    /// Opens the store the settings name (an S3-compatible bucket, or a
    /// local directory, created if missing); the link-signing key is shared
    /// through `db`.
    pub fn open(
        settings: &AttachmentSettings,
        database: &DatabaseSettings,
        db: &Db,
    ) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = match settings.attachment_store.as_deref() {
            Some(url) if url.starts_with("s3://") => s3(url)?,
            Some(url) if url.contains("://") && !url.starts_with("file://") => anyhow::bail!(
                "ITSM_ATTACHMENT_STORE: `{url}` is not a directory or an S3 bucket; \
                 give a path, a file:// URL or an s3:// URL"
            ),
            _ => {
                let dir = settings.store_dir(database);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    anyhow::anyhow!("cannot create the attachment store {}: {e}", dir.display())
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(&dir)?)
            }
        };
        Ok(Self::with_store(settings, store, db))
    }

    /// The rules of `settings` over `store`.
    pub fn with_store(settings: &AttachmentSettings, store: Arc<dyn ObjectStore>, db: &Db) -> Self {
        Self(Arc::new(Inner {
            store,
            max_bytes: settings.attachment_max_bytes.max(1),
            max_per_ticket: settings.attachment_max_per_ticket.max(1),
            types: settings
                .attachment_types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
            url_ttl: settings.attachment_url_ttl.max(Duration::from_secs(1)),
            db: db.clone(),
            key: tokio::sync::OnceCell::new(),
        }))
    }

    /// Largest file, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.0.max_bytes
    }

    /// Most attachments per ticket.
    pub fn max_per_ticket(&self) -> u64 {
        self.0.max_per_ticket
    }

    /// Whether files of `media_type` are accepted.
    pub fn accepts(&self, media_type: &str) -> bool {
        self.0.types.iter().any(|t| t == media_type)
    }

    /// The accepted types, for error messages.
    pub fn types(&self) -> String {
        self.0.types.join(", ")
    }

    /// Stores `bytes` under `key`.
    pub async fn put(&self, key: &str, bytes: Bytes) -> ApiResult<()> {
        self.0
            .store
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await
            .map_err(ApiError::internal)?;
        Ok(())
    }

    /// The bytes under `key`; `None` when there are none.
    pub async fn get(&self, key: &str) -> ApiResult<Option<Bytes>> {
        match self.0.store.get(&Path::from(key)).await {
            Ok(found) => Ok(Some(found.bytes().await.map_err(ApiError::internal)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(ApiError::internal(error)),
        }
    }

    /// Deletes the bytes under `key` (nothing there is fine).
    pub async fn delete(&self, key: &str) -> ApiResult<()> {
        match self.0.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(ApiError::internal(error)),
        }
    }

    /// Every stored key under `prefix`, with when it was written.
    pub async fn list(
        &self,
        prefix: &str,
    ) -> ApiResult<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        use futures_util::TryStreamExt;
        let found: Vec<object_store::ObjectMeta> = self
            .0
            .store
            .list(Some(&Path::from(prefix)))
            .try_collect()
            .await
            .map_err(ApiError::internal)?;
        Ok(found
            .into_iter()
            .map(|meta| (meta.location.to_string(), meta.last_modified))
            .collect())
    }

    async fn mac(&self, id: i64, expires: i64) -> ApiResult<String> {
        let key = self
            .0
            .key
            .get_or_try_init(|| signing_key(&self.0.db))
            .await?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(format!("attachment:{id}:{expires}").as_bytes());
        Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// A fresh signature for downloading attachment `id`.
    pub async fn sign(&self, id: i64) -> ApiResult<Signed> {
        let ttl = i64::try_from(self.0.url_ttl.as_secs()).unwrap_or(300);
        let expires = now().timestamp() + ttl;
        Ok(Signed {
            expires,
            signature: self.mac(id, expires).await?,
        })
    }

    /// Whether `signed` lets attachment `id` be downloaded now (the outer
    /// error: the key could not be read).
    pub async fn verify(&self, id: i64, signed: &Signed) -> ApiResult<Result<(), &'static str>> {
        let expected = self.mac(id, signed.expires).await?;
        let same = expected.len() == signed.signature.len()
            && expected
                .bytes()
                .zip(signed.signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Ok(Err("the link's signature does not match"));
        }
        if signed.expires < now().timestamp() {
            return Ok(Err("the link has expired: ask for the attachment again"));
        }
        Ok(Ok(()))
    }
}

/// An S3-compatible bucket: `s3://bucket/prefix`, configured by the standard
/// `AWS_*` variables (credentials, region, endpoint) and, over them, by the
/// URL's query (`?endpoint=http://minio:9000&allow_http=true&region=eu-1`,
/// any key object_store's S3 builder knows).
fn s3(url: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let parsed = url::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("ITSM_ATTACHMENT_STORE: not an s3:// URL: {e}"))?;
    let bucket = parsed.host_str().unwrap_or_default();
    if bucket.is_empty() {
        anyhow::bail!("ITSM_ATTACHMENT_STORE names no bucket (s3://bucket/prefix)");
    }
    // The S3 client's TLS uses the process's rustls provider: ring, as
    // everywhere else in the service (a second call finds it installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    // An upload waits on the store: a few quick retries, not object_store's
    // default of three minutes.
    let retry = object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
        ..Default::default()
    };
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry);
    for (key, value) in parsed.query_pairs() {
        let key: AmazonS3ConfigKey = key
            .parse()
            .map_err(|_| anyhow::anyhow!("ITSM_ATTACHMENT_STORE: `{key}` is not an S3 setting"))?;
        builder = builder.with_config(key, value);
    }
    let store = builder
        .build()
        .map_err(|e| anyhow::anyhow!("ITSM_ATTACHMENT_STORE: {e}"))?;
    let prefix = parsed.path().trim_matches('/');
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    })
}

/// The link-signing key: made once, by whichever replica comes first.
async fn signing_key(db: &Db) -> ApiResult<Vec<u8>> {
    let mut fresh = vec![0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    service_keys::Entity::insert(service_keys::ActiveModel {
        name: Set(URL_KEY.into()),
        value: Set(URL_SAFE_NO_PAD.encode(&fresh)),
        created_at: Set(now()),
    })
    .on_conflict(
        OnConflict::column(service_keys::Column::Name)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db.writer())
    .await?;
    let stored = service_keys::Entity::find_by_id(URL_KEY.to_owned())
        .one(db.writer())
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the signing key vanished")))?;
    URL_SAFE_NO_PAD
        .decode(stored.value)
        .map_err(ApiError::internal)
}
