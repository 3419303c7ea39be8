//! Deep storage: the durable home of published segment files, through `object_store`.
//!
//! By default a directory of the local file system (`file://<data-dir>/deep`); any URL that
//! `object_store` understands (`s3://`, `gs://`, `az://`, `https://`) works too, with
//! credentials taken from the usual environment variables of each cloud.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::error::{Error, Result};

/// A place segment files are uploaded to and fetched back from.
#[derive(Debug, Clone)]
pub struct DeepStorage {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl DeepStorage {
    /// Connects to the store at `url`. A `file://` directory is created if it is missing.
    pub fn open(url: &str) -> Result<DeepStorage> {
        let bad = |reason: String| Error::DeepStorage {
            url: url.to_owned(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if parsed.scheme() == "file" {
            let dir = parsed
                .to_file_path()
                .map_err(|_| bad("not a local path".into()))?;
            std::fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        }
        // Only the clouds' own variables (AWS_…, GOOGLE_…, AZURE_…): a generic name such as
        // TIMEOUT in the environment must not reconfigure the store.
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(key, _)| {
                let key = key.to_ascii_lowercase();
                ["aws_", "google_", "azure_"]
                    .iter()
                    .any(|p| key.starts_with(p))
            })
            .collect();
        let (store, prefix) =
            object_store::parse_url_opts(&parsed, env).map_err(|e| bad(e.to_string()))?;
        Ok(DeepStorage {
            url: url.to_owned(),
            store: Arc::from(store),
            prefix,
        })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }

    fn error(&self, name: &str, reason: impl ToString) -> Error {
        Error::DeepStorage {
            url: format!("{}/{name}", self.url.trim_end_matches('/')),
            reason: reason.to_string(),
        }
    }

    /// Uploads a file and reads it back to check that the stored copy has checksum `crc`.
    pub async fn upload(&self, name: &str, bytes: Bytes, crc: u32) -> Result<()> {
        let path = self.path(name);
        self.store
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.error(name, e))?;
        let stored = self.download(name).await?;
        if crc32fast::hash(&stored) != crc {
            return Err(self.error(name, "the uploaded copy does not match its checksum"));
        }
        Ok(())
    }

    /// The bytes of a file.
    pub async fn download(&self, name: &str) -> Result<Bytes> {
        let result = self
            .store
            .get(&self.path(name))
            .await
            .map_err(|e| self.error(name, e))?;
        result.bytes().await.map_err(|e| self.error(name, e))
    }

    /// Deletes a file; one that is already gone is not an error.
    pub async fn delete(&self, name: &str) -> Result<()> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_round_trip_and_uploads_are_verified() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/deep", dir.path().display());
        let deep = DeepStorage::open(&url).unwrap();
        let bytes = Bytes::from_static(b"segment bytes");
        deep.upload("a.hseg", bytes.clone(), crc32fast::hash(&bytes))
            .await
            .unwrap();
        assert_eq!(deep.download("a.hseg").await.unwrap(), bytes);
        // A copy that does not match the checksum it should have is refused.
        let error = deep.upload("b.hseg", bytes, 1).await.unwrap_err();
        assert!(error.to_string().contains("checksum"), "{error}");
        deep.delete("a.hseg").await.unwrap();
        deep.delete("a.hseg").await.unwrap();
        assert!(deep.download("a.hseg").await.is_err());
    }

    #[test]
    fn cloud_stores_are_compiled_in() {
        for url in [
            "s3://bucket/henge",
            "https://example.com/henge",
            "memory:///henge",
        ] {
            let deep = DeepStorage::open(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(deep.url(), url);
        }
        assert!(DeepStorage::open("ftp://example.com/henge").is_err());
        assert!(DeepStorage::open("not a url").is_err());
    }
}
