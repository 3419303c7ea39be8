//! The metadata store: the table catalog, the published segments and where the write-ahead
//! log must be replayed from, all in one JSON file, `metadata.json`, in the data directory.
//!
//! Every change writes a complete new file beside it, fsyncs it, renames it over the old one
//! and fsyncs the directory, so after a crash the file holds either the old state or the new
//! one, never a mix. That one rename is what makes publishing atomic: a CHECKPOINT's segments
//! and the log position behind them become durable together. Tables and segments change a
//! few times a minute at most and number in the thousands, so a plain file is fast enough;
//! it needs no extra dependency and is easy to inspect and back up. (An embedded key-value
//! store would pay off only with far more segments than one machine serves.)

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::TableDef;

const FILE_NAME: &str = "metadata.json";
/// The table catalog of data directories written before segments existed.
const OLD_CATALOG: &str = "catalog.json";
const FORMAT_VERSION: u32 = 1;

/// A published segment: (table, interval, version, partition), with what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub table_id: u64,
    /// Start of the interval, microseconds since the epoch (`i64::MIN` for a table without a
    /// time column).
    pub start: i64,
    /// End of the interval, exclusive (`i64::MAX` for a table without a time column).
    pub end: i64,
    /// Higher versions of an interval overshadow lower ones.
    pub version: u64,
    /// Segments of one interval and version are partitions of it; all of them are read.
    pub partition: u32,
    pub rows: u64,
    /// Size of the file.
    pub bytes: u64,
    /// CRC-32 of the whole file, to verify copies of it.
    pub crc: u32,
}

impl SegmentMeta {
    /// The segment file's name, locally and in deep storage.
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}_{}_v{}_p{}.hseg",
            self.table_id, self.start, self.end, self.version, self.partition
        )
    }

    /// A name for people: table, interval, version and partition.
    pub fn display_name(&self, table: &str) -> String {
        let time = |micros: i64| {
            chrono::DateTime::from_timestamp_micros(micros)
                .filter(|_| micros != i64::MIN && micros != i64::MAX)
                .map_or_else(
                    || "unbounded".to_owned(),
                    |t| t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
                )
        };
        format!(
            "{table}_{}_{}_v{}_p{}",
            time(self.start),
            time(self.end),
            self.version,
            self.partition
        )
    }

    /// Whether this is a persisted piece: rows written to local disk by a persist (or a large
    /// statement) that are not handed off yet. Pieces have version [`PIECE_VERSION`], live
    /// only on local disk and are never overshadowed; `partition` numbers them.
    pub fn is_piece(&self) -> bool {
        self.version == PIECE_VERSION
    }

    fn covers(&self, other: &SegmentMeta) -> bool {
        self.table_id == other.table_id && self.start <= other.start && other.end <= self.end
    }
}

/// The version of persisted pieces; published segments start at version 1.
pub const PIECE_VERSION: u64 = 0;

/// The segments a query must read: those no higher version of a covering interval
/// overshadows.
pub fn visible(segments: &[SegmentMeta]) -> Vec<SegmentMeta> {
    segments
        .iter()
        .filter(|s| {
            !segments
                .iter()
                .any(|newer| newer.version > s.version && newer.covers(s))
        })
        .cloned()
        .collect()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    format_version: u32,
    next_table_id: u64,
    next_version: u64,
    /// The first write-ahead log file that holds rows not yet in published segments.
    wal_start: u64,
    tables: BTreeMap<String, TableDef>,
    segments: Vec<SegmentMeta>,
    /// Persisted pieces: rows on local disk, durable, not handed off yet.
    #[serde(default)]
    pieces: Vec<SegmentMeta>,
}

/// The durable metadata of one data directory.
#[derive(Debug)]
pub struct MetadataStore {
    path: PathBuf,
    state: Mutex<State>,
}

impl MetadataStore {
    /// Opens the store in `dir`, creating an empty one if there is none.
    pub fn open(dir: &Path) -> Result<MetadataStore> {
        fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let path = dir.join(FILE_NAME);
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let state: State =
                    serde_json::from_slice(&bytes).map_err(|e| Error::CorruptMetadata {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if state.format_version != FORMAT_VERSION {
                    return Err(Error::CorruptMetadata {
                        path,
                        reason: format!(
                            "format version {} is not {FORMAT_VERSION}",
                            state.format_version
                        ),
                    });
                }
                state
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut state = State {
                    format_version: FORMAT_VERSION,
                    next_table_id: 1,
                    next_version: 1,
                    wal_start: 0,
                    tables: BTreeMap::new(),
                    segments: Vec::new(),
                    pieces: Vec::new(),
                };
                import_old_catalog(&dir.join(OLD_CATALOG), &mut state)?;
                state
            }
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        let store = MetadataStore {
            path,
            state: Mutex::new(state),
        };
        if !store.path.exists() && dir.join(OLD_CATALOG).exists() {
            // Persist the imported catalog; the old file is left for the user to delete.
            store.change(|_| Ok(()))?;
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed: every change
        // is applied to a copy first and stored only after it was persisted.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to a copy of the state, persists it, and only then makes it current.
    fn change<T>(&self, change: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut state = self.lock();
        let mut next = state.clone();
        let out = change(&mut next)?;
        let bytes = serde_json::to_vec_pretty(&next).map_err(|e| Error::CorruptMetadata {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if let Err(e) = write_atomically(&self.path, &bytes) {
            // The rename may have happened before the failure (an fsync of the directory,
            // say): then the file already holds the new state, and memory must follow it,
            // or identities handed out next would repeat published ones.
            if fs::read(&self.path).is_ok_and(|on_disk| on_disk == bytes) {
                *state = next;
            }
            return Err(e);
        }
        *state = next;
        Ok(out)
    }

    /// All tables, ordered by name.
    pub fn tables(&self) -> Vec<TableDef> {
        self.lock().tables.values().cloned().collect()
    }

    /// Adds a table, giving it a fresh id (the `id` passed in is ignored), and persists the
    /// store before returning the stored definition.
    pub fn create(&self, mut def: TableDef) -> Result<TableDef> {
        self.change(|state| {
            if state.tables.contains_key(&def.name) {
                return Err(Error::TableExists(def.name.clone()));
            }
            def.id = state.next_table_id;
            state.next_table_id += 1;
            state.tables.insert(def.name.clone(), def.clone());
            Ok(def)
        })
    }

    /// Removes a table and its segments; returns the definition and the segments removed.
    pub fn drop_table(&self, name: &str) -> Result<(TableDef, Vec<SegmentMeta>)> {
        self.change(|state| {
            let def = state
                .tables
                .remove(name)
                .ok_or_else(|| Error::TableNotFound(name.to_owned()))?;
            let (mut gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.segments)
                .into_iter()
                .partition(|s| s.table_id == def.id);
            state.segments = kept;
            let (pieces, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.pieces)
                .into_iter()
                .partition(|s| s.table_id == def.id);
            state.pieces = kept;
            gone.extend(pieces);
            Ok((def, gone))
        })
    }

    /// Every published segment (overshadowed ones included).
    pub fn segments(&self) -> Vec<SegmentMeta> {
        self.lock().segments.clone()
    }

    /// Every persisted piece not yet handed off.
    pub fn pieces(&self) -> Vec<SegmentMeta> {
        self.lock().pieces.clone()
    }

    /// The first write-ahead log file whose rows are not all in published segments.
    pub fn wal_start(&self) -> u64 {
        self.lock().wal_start
    }

    /// The version and partition a new segment of `table_id` for `[start, end)` gets, given
    /// the segments already `planned` but not yet published. New rows for an interval that
    /// already has segments become another partition of its newest version, so nothing is
    /// overshadowed; a fresh interval gets the next unused version (shared by every fresh
    /// interval of one CHECKPOINT).
    pub fn next_identity(
        &self,
        table_id: u64,
        start: i64,
        end: i64,
        planned: &[SegmentMeta],
    ) -> (u64, u32) {
        let state = self.lock();
        let same = |s: &&SegmentMeta| s.table_id == table_id && s.start == start && s.end == end;
        let existing: Vec<&SegmentMeta> =
            state.segments.iter().chain(planned).filter(same).collect();
        match existing.iter().map(|s| s.version).max() {
            Some(version) => {
                let partition = existing
                    .iter()
                    .filter(|s| s.version == version)
                    .map(|s| s.partition + 1)
                    .max()
                    .unwrap_or(0);
                (version, partition)
            }
            None => (state.next_version, 0),
        }
    }

    /// Publishes `segments` and moves the log's replay start to `wal_start`, in one atomic
    /// change. Segments of tables dropped meanwhile are left out and returned, to be deleted.
    pub fn publish(&self, segments: Vec<SegmentMeta>, wal_start: u64) -> Result<Vec<SegmentMeta>> {
        self.change(|state| {
            let ids: Vec<u64> = state.tables.values().map(|t| t.id).collect();
            let (kept, orphans): (Vec<_>, Vec<_>) = segments
                .into_iter()
                .partition(|s| ids.contains(&s.table_id));
            if let Some(max) = kept.iter().map(|s| s.version).max() {
                state.next_version = state.next_version.max(max + 1);
            }
            state.segments.extend(kept);
            state.wal_start = state.wal_start.max(wal_start);
            Ok(orphans)
        })
    }

    /// The version a rewrite of an interval (compaction) gives its segments: higher than
    /// any published so far. It is taken for good when they are published.
    pub fn fresh_version(&self) -> u64 {
        self.lock().next_version
    }

    /// Forgets published segments (overshadowed ones whose files are about to be deleted).
    pub fn forget(&self, segments: &[SegmentMeta]) -> Result<()> {
        self.change(|state| {
            state.segments.retain(|s| !segments.contains(s));
            Ok(())
        })
    }

    /// Records persisted `pieces` (files already durable on local disk) and moves the log's
    /// replay start to `wal_start` (never backwards: 0 leaves it), in one atomic change.
    /// Pieces of tables dropped meanwhile are left out and returned, to be deleted.
    pub fn persist(&self, pieces: Vec<SegmentMeta>, wal_start: u64) -> Result<Vec<SegmentMeta>> {
        self.change(|state| {
            let ids: Vec<u64> = state.tables.values().map(|t| t.id).collect();
            let (kept, orphans): (Vec<_>, Vec<_>) =
                pieces.into_iter().partition(|s| ids.contains(&s.table_id));
            state.pieces.extend(kept);
            state.wal_start = state.wal_start.max(wal_start);
            Ok(orphans)
        })
    }

    /// Hands pieces off: publishes `segments` (already in deep storage) and forgets
    /// `pieces`, whose rows they hold, in one atomic change. Segments of a table dropped
    /// meanwhile are left out and returned, to be deleted.
    pub fn hand_off(
        &self,
        segments: Vec<SegmentMeta>,
        pieces: &[SegmentMeta],
    ) -> Result<Vec<SegmentMeta>> {
        self.change(|state| {
            state.pieces.retain(|p| !pieces.contains(p));
            let ids: Vec<u64> = state.tables.values().map(|t| t.id).collect();
            let (kept, orphans): (Vec<_>, Vec<_>) = segments
                .into_iter()
                .partition(|s| ids.contains(&s.table_id));
            if let Some(max) = kept.iter().map(|s| s.version).max() {
                state.next_version = state.next_version.max(max + 1);
            }
            state.segments.extend(kept);
            Ok(orphans)
        })
    }
}

/// Reads the tables of a data directory written before the metadata store existed.
fn import_old_catalog(path: &Path, state: &mut State) -> Result<()> {
    #[derive(Deserialize)]
    struct OldCatalog {
        next_table_id: u64,
        tables: BTreeMap<String, TableDef>,
    }
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", path)(e)),
    };
    let old: OldCatalog = serde_json::from_slice(&bytes).map_err(|e| Error::CorruptMetadata {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    state.next_table_id = old.next_table_id;
    state.tables = old.tables;
    tracing::info!(path = %path.display(), tables = state.tables.len(), "imported the table catalog into the metadata store");
    Ok(())
}

/// Replaces the file at `path` with `bytes` so that a crash leaves either the old or the new
/// content: write a temporary file, fsync it, rename it over `path`, fsync the directory.
/// Concurrent calls for the same path each use their own temporary file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.{unique}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp).map_err(Error::io("create", &tmp))?;
    file.write_all(bytes).map_err(Error::io("write", &tmp))?;
    file.sync_all().map_err(Error::io("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(Error::io("rename", &tmp))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("fsync directory", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::granularity::Granularity;
    use crate::schema::{ColumnDef, ColumnType};

    fn table(name: &str) -> TableDef {
        TableDef {
            id: 0,
            name: name.into(),
            columns: vec![ColumnDef {
                name: "ts".into(),
                ty: ColumnType::Timestamp,
                nullable: false,
            }],
            time_column: Some("ts".into()),
            segment_granularity: Granularity::Hour,
            window_period_secs: crate::schema::DEFAULT_WINDOW_PERIOD_SECS,
        }
    }

    fn segment(table_id: u64, start: i64, end: i64, version: u64, partition: u32) -> SegmentMeta {
        SegmentMeta {
            table_id,
            start,
            end,
            version,
            partition,
            rows: 1,
            bytes: 100,
            crc: 0,
        }
    }

    #[test]
    fn definitions_survive_reopening_and_ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        let a = store.create(table("a")).unwrap();
        let b = store.create(table("b")).unwrap();
        assert_ne!(a.id, b.id);
        assert!(matches!(
            store.create(table("a")),
            Err(Error::TableExists(_))
        ));
        store.drop_table("a").unwrap();
        assert!(matches!(
            store.drop_table("a"),
            Err(Error::TableNotFound(_))
        ));

        let reopened = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(reopened.tables(), vec![b.clone()]);
        let a2 = reopened.create(table("a")).unwrap();
        assert!(a2.id > b.id);
    }

    #[test]
    fn published_segments_and_the_log_start_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        let t = store.create(table("t")).unwrap();
        let (version, partition) = store.next_identity(t.id, 0, 10, &[]);
        assert_eq!((version, partition), (1, 0));
        let first = segment(t.id, 0, 10, version, partition);
        // A second piece planned for the same interval becomes its next partition.
        assert_eq!(
            store.next_identity(t.id, 0, 10, std::slice::from_ref(&first)),
            (1, 1)
        );
        // Another fresh interval of the same checkpoint shares the version.
        assert_eq!(
            store.next_identity(t.id, 10, 20, std::slice::from_ref(&first)),
            (1, 0)
        );
        let orphans = store
            .publish(vec![first.clone(), segment(999, 0, 10, 1, 0)], 7)
            .unwrap();
        assert_eq!(
            orphans.len(),
            1,
            "a segment of an unknown table is not published"
        );
        assert_eq!(store.next_identity(t.id, 0, 10, &[]), (1, 1));
        assert_eq!(store.next_identity(t.id, 20, 30, &[]).0, 2);

        let reopened = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(reopened.segments(), vec![first]);
        assert_eq!(reopened.wal_start(), 7);
        let (_, gone) = reopened.drop_table("t").unwrap();
        assert_eq!(gone.len(), 1);
        assert!(reopened.segments().is_empty());
    }

    #[test]
    fn newer_versions_overshadow_the_intervals_they_cover() {
        let segments = vec![
            segment(1, 0, 10, 1, 0),
            segment(1, 0, 10, 1, 1),
            segment(1, 10, 20, 1, 0),
            segment(1, 0, 20, 2, 0),  // covers everything above
            segment(1, 20, 30, 1, 0), // untouched
            segment(2, 0, 10, 1, 0),  // another table
            segment(1, 5, 25, 3, 0),  // overlaps but covers nothing whole
        ];
        let visible: Vec<(u64, i64, u64)> = visible(&segments)
            .iter()
            .map(|s| (s.table_id, s.start, s.version))
            .collect();
        assert_eq!(visible, vec![(1, 0, 2), (1, 20, 1), (2, 0, 1), (1, 5, 3)]);
    }

    #[test]
    fn a_catalog_of_an_older_data_directory_is_imported() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = table("events");
        old.id = 4;
        let text = serde_json::json!({
            "format_version": 1,
            "next_table_id": 5,
            "tables": { "events": old },
        });
        fs::write(dir.path().join(OLD_CATALOG), text.to_string()).unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.tables(), vec![old]);
        assert_eq!(store.create(table("next")).unwrap().id, 5);
        assert!(dir.path().join(FILE_NAME).exists());
    }

    #[test]
    fn a_damaged_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(matches!(
            MetadataStore::open(dir.path()),
            Err(Error::CorruptMetadata { .. })
        ));
    }
}
