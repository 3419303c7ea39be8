//! The local segment cache: published segment files on local disk, memory-mapped for
//! queries, and fetched again from deep storage when a file is missing or damaged.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use bytes::Bytes;

use crate::deep::DeepStorage;
use crate::error::{Error, Result};
use crate::metadata::{write_atomically, SegmentMeta};
use crate::segment::SegmentReader;

/// Segment files on local disk, backed by deep storage.
#[derive(Debug)]
pub struct SegmentCache {
    dir: PathBuf,
    deep: DeepStorage,
    open: Mutex<HashMap<String, Arc<SegmentReader>>>,
    /// One repair at a time, so two queries never fetch and replace the same file at once.
    healing: tokio::sync::Mutex<()>,
}

impl SegmentCache {
    /// A cache in `dir` (created if missing) in front of `deep`.
    pub fn new(dir: &Path, deep: DeepStorage) -> Result<SegmentCache> {
        fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        Ok(SegmentCache {
            dir: dir.to_path_buf(),
            deep,
            open: Mutex::new(HashMap::new()),
            healing: tokio::sync::Mutex::new(()),
        })
    }

    /// Where a segment's local copy lives.
    pub fn path(&self, segment: &SegmentMeta) -> PathBuf {
        self.dir.join(segment.file_name())
    }

    /// Uploads the contents of a segment file just written to the cache directory,
    /// verifying the copy.
    pub async fn upload(&self, segment: &SegmentMeta, contents: Bytes) -> Result<()> {
        self.deep
            .upload(&segment.file_name(), contents, segment.crc)
            .await
    }

    /// Reads the columns in `projection` (all when `None`) of a published segment, healing
    /// the local copy from deep storage if it is missing or fails a checksum. `name` names
    /// the segment in errors.
    pub async fn read(
        &self,
        segment: &SegmentMeta,
        name: &str,
        projection: Option<&[usize]>,
    ) -> Result<Vec<RecordBatch>> {
        let reader = self.reader(segment, name).await?;
        match reader.read(projection) {
            Err(Error::CorruptSegment { reason, .. }) => {
                tracing::warn!(segment = name, %reason, "damaged segment file; fetching it again from deep storage");
                self.heal(segment, name, &reason).await?.read(projection)
            }
            result => result,
        }
    }

    /// An open reader of the local copy, fetching the file first when it is missing or has
    /// the wrong length.
    pub async fn reader(&self, segment: &SegmentMeta, name: &str) -> Result<Arc<SegmentReader>> {
        let file_name = segment.file_name();
        let path = self.path(segment);
        let on_disk = fs::metadata(&path).map(|m| m.len()).ok();
        if on_disk == Some(segment.bytes) {
            if let Some(reader) = self.lock().get(&file_name) {
                return Ok(reader.clone());
            }
            match SegmentReader::open(&path, name) {
                Ok(reader) => {
                    let reader = Arc::new(reader);
                    self.lock().insert(file_name, reader.clone());
                    return Ok(reader);
                }
                Err(Error::CorruptSegment { reason, .. }) => {
                    tracing::warn!(segment = name, %reason, "damaged segment file; fetching it again from deep storage");
                    return self.heal(segment, name, &reason).await;
                }
                Err(e) => return Err(e),
            }
        }
        let reason = match on_disk {
            None => "the local file is missing".to_owned(),
            Some(len) => format!("the local file has {len} bytes, not {}", segment.bytes),
        };
        tracing::warn!(segment = name, %reason, "fetching segment from deep storage");
        self.heal(segment, name, &reason).await
    }

    /// Replaces the local copy with the one in deep storage, after checking its checksum
    /// (`damage` says what was wrong with it, for the error when that fails too).
    pub async fn heal(
        &self,
        segment: &SegmentMeta,
        name: &str,
        damage: &str,
    ) -> Result<Arc<SegmentReader>> {
        let file_name = segment.file_name();
        let seen = self.lock().get(&file_name).cloned();
        let _one = self.healing.lock().await;
        // Another query may have repaired the file while this one waited.
        if let Some(now) = self.lock().get(&file_name).cloned() {
            if seen.as_ref().is_none_or(|seen| !Arc::ptr_eq(seen, &now)) {
                return Ok(now);
            }
        }
        self.lock().remove(&file_name);
        let unhealable = |why: String| Error::CorruptSegment {
            segment: name.to_owned(),
            reason: format!("{damage}, and deep storage has no good copy: {why}"),
        };
        let bytes = self
            .deep
            .download(&file_name)
            .await
            .map_err(|e| unhealable(e.to_string()))?;
        if bytes.len() as u64 != segment.bytes || crc32fast::hash(&bytes) != segment.crc {
            return Err(unhealable("its checksum does not match".into()));
        }
        let path = self.path(segment);
        write_atomically(&path, &bytes)?;
        let reader = Arc::new(SegmentReader::open(&path, name)?);
        self.lock().insert(file_name, reader.clone());
        tracing::info!(segment = name, "segment file restored from deep storage");
        Ok(reader)
    }

    /// Forgets and deletes a segment, in deep storage and then locally (a piece only
    /// locally: it never left the machine).
    pub async fn remove(&self, segment: &SegmentMeta) -> Result<()> {
        let file_name = segment.file_name();
        if !segment.is_piece() {
            self.deep.delete(&file_name).await?;
        }
        self.remove_local(&file_name)
    }

    /// Forgets and deletes the local file called `file_name`; one already gone is fine.
    pub fn remove_local(&self, file_name: &str) -> Result<()> {
        self.lock().remove(file_name);
        let path = self.dir.join(file_name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("delete", &path)(e)),
        }
    }

    /// Deletes in deep storage, then locally, a file the metadata store does not know.
    pub async fn remove_orphan(&self, file_name: &str) -> Result<()> {
        self.deep.delete(file_name).await?;
        self.remove_local(file_name)
    }

    /// Files of the cache directory that `known` does not name: segment or piece files a
    /// crash left between writing and publishing (or between unpublishing and deleting),
    /// and temporary files. Temporary files and unknown pieces are deleted at once (they
    /// never left the machine); the names of unknown segment files, which may have reached
    /// deep storage, are returned for [`SegmentCache::remove_orphan`].
    pub fn sweep_unknown(&self, known: &HashSet<String>) -> Result<(usize, Vec<String>)> {
        let mut removed = 0;
        let mut uploaded = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(Error::io("list", &self.dir))? {
            let entry = entry.map_err(Error::io("list", &self.dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.ends_with(".tmp") || (name.ends_with(".hseg") && !known.contains(&name)) {
                if name.ends_with(".hseg") && !name.contains("_v0_") {
                    uploaded.push(name);
                    continue;
                }
                self.remove_local(&name)?;
                removed += 1;
            }
        }
        Ok((removed, uploaded))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SegmentReader>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}
