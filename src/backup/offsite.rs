//! The off-site copy: a directory (a mounted volume) or an S3-compatible bucket, both
//! through `object_store`. A backup's files go up first and its manifest last, so a
//! backup with a manifest off-site is complete.

use std::fs::{self, File};
use std::future::Future;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use secrecy::ExposeSecret;

use super::{BackupError, BackupId, MANIFEST_FILE};
use crate::config::OffsiteTarget;

const CHUNK: usize = 8 * 1024 * 1024;
const UPLOAD_CONCURRENCY: usize = 4;

pub struct Offsite {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl Offsite {
    pub fn new(target: &OffsiteTarget) -> Result<Self, BackupError> {
        match target {
            OffsiteTarget::Dir { path } => {
                fs::create_dir_all(path).map_err(BackupError::io(path))?;
                Ok(Self {
                    store: Arc::new(LocalFileSystem::new_with_prefix(path)?),
                    prefix: ObjectPath::default(),
                })
            }
            OffsiteTarget::S3 {
                bucket,
                prefix,
                region,
                endpoint,
                access_key_id,
                secret_access_key,
                allow_http,
            } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_allow_http(*allow_http);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint.as_str());
                }
                if let Some(id) = access_key_id {
                    builder = builder.with_access_key_id(id);
                }
                if let Some(secret) = secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose_secret());
                }
                Ok(Self {
                    store: Arc::new(builder.build()?),
                    prefix: ObjectPath::from(prefix.as_str()),
                })
            }
        }
    }

    fn object(&self, id: &BackupId, name: &str) -> ObjectPath {
        let mut path = self.prefix.clone().join(id.as_str());
        for part in name.split('/') {
            path = path.join(part);
        }
        path
    }

    /// Copies the backup in `dir` up: `names` first, then its manifest.
    pub fn upload(&self, dir: &Path, id: &BackupId, names: &[String]) -> Result<(), BackupError> {
        for name in names.iter().map(String::as_str).chain([MANIFEST_FILE]) {
            let local = dir.join(name);
            let object = self.object(id, name);
            block_on(upload_file(&self.store, &local, &object))??;
        }
        Ok(())
    }

    /// The backups off-site that have a manifest.
    pub fn list(&self) -> Result<Vec<BackupId>, BackupError> {
        let store = Arc::clone(&self.store);
        let prefix = self.prefix.clone();
        let listing = block_on(async move { store.list_with_delimiter(Some(&prefix)).await })??;
        let mut ids = Vec::new();
        for dir in listing.common_prefixes {
            let Some(Ok(id)) = dir.filename().map(str::parse::<BackupId>) else {
                continue;
            };
            if self.read_manifest(&id).is_ok() {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn read_manifest(&self, id: &BackupId) -> Result<Vec<u8>, BackupError> {
        let store = Arc::clone(&self.store);
        let object = self.object(id, MANIFEST_FILE);
        let fetched = block_on(async move { store.get(&object).await?.bytes().await })?;
        match fetched {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(BackupError::NotFound(id.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Copies `names` of the backup down into `dir`, which must exist.
    pub fn download(&self, id: &BackupId, names: &[String], dir: &Path) -> Result<(), BackupError> {
        for name in names {
            let local = dir.join(name);
            if let Some(parent) = local.parent() {
                fs::create_dir_all(parent).map_err(BackupError::io(parent))?;
            }
            let object = self.object(id, name);
            match block_on(download_file(&self.store, &object, &local))? {
                Err(BackupError::Offsite(object_store::Error::NotFound { .. })) => {
                    return Err(BackupError::FileMissing {
                        id: id.to_string(),
                        file: name.clone(),
                    });
                }
                other => other?,
            }
        }
        Ok(())
    }

    /// Deletes every object of the backup, the manifest first so a half-deleted backup is
    /// never listed.
    pub fn delete(&self, id: &BackupId) -> Result<(), BackupError> {
        let store = Arc::clone(&self.store);
        let manifest = self.object(id, MANIFEST_FILE);
        let prefix = self.prefix.clone().join(id.as_str());
        block_on(async move {
            match store.delete(&manifest).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            let mut objects = store.list(Some(&prefix));
            while let Some(meta) = objects.next().await {
                store.delete(&meta?.location).await?;
            }
            Ok(())
        })??;
        Ok(())
    }
}

async fn upload_file(
    store: &Arc<dyn ObjectStore>,
    local: &Path,
    object: &ObjectPath,
) -> Result<(), BackupError> {
    let mut file = File::open(local).map_err(BackupError::io(local))?;
    let mut upload = WriteMultipart::new_with_chunk_size(store.put_multipart(object).await?, CHUNK);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).map_err(BackupError::io(local))?;
        if n == 0 {
            break;
        }
        upload.wait_for_capacity(UPLOAD_CONCURRENCY).await?;
        upload.write(&buf[..n]);
    }
    upload.finish().await?;
    Ok(())
}

async fn download_file(
    store: &Arc<dyn ObjectStore>,
    object: &ObjectPath,
    local: &Path,
) -> Result<(), BackupError> {
    let mut stream = store.get(object).await?.into_stream();
    let mut file = File::create_new(local).map_err(BackupError::io(local))?;
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk?).map_err(BackupError::io(local))?;
    }
    file.sync_all().map_err(BackupError::io(local))
}

/// Runs an `object_store` future to completion on a thread with a small runtime of its
/// own, so it works the same from the CLI and from a job's blocking thread.
fn block_on<F>(future: F) -> Result<F::Output, BackupError>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(future))
            })
            .join()
    })
    .map_err(|_| BackupError::OffsiteWorker)?
    .map_err(|_| BackupError::OffsiteWorker)
}
