//! The metadata store: the table catalog, the persisted pieces, the published segments and
//! where the write-ahead log must be replayed from.
//!
//! Two files in the data directory: `metadata.json`, a snapshot of the whole state, and
//! `metadata.journal`, the changes made since, one fsynced record each (checksummed; a torn
//! record at the end was never acknowledged and is cut off). A change costs one append and
//! one fsync, whatever the number of segments; every thousand changes the state is written
//! as a new snapshot (to a temporary file, fsynced, renamed over the old one) and the journal
//! emptied, records carrying sequence numbers so that replay skips those a snapshot already
//! holds. One record is what makes publishing atomic: a hand-off's segments and the pieces
//! they replace, or a persist's pieces and the log position behind them, change together.
//!
//! Why our own journal rather than SQLite or redb: the state is one small document that
//! every start reads whole anyway (the tables and the segments each table serves), its
//! changes are a handful of kinds, and a journal of them needs no new dependency, keeps
//! `metadata.json` the readable, backed-up form it has always been (a directory written
//! before the journal existed opens as a snapshot with an empty journal), and shares the
//! write-ahead log's framing and recovery rules. Keeping the store behind this small API is
//! what lets a shared store (PostgreSQL, as Druid uses) stand in later.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::access::Access;
use crate::alert::AlertDef;
use crate::error::{Error, Result};
use crate::schema::{TableDef, ViewDef};
use crate::stream::{Offsets, PipelineDef, SourceDef};

const FILE_NAME: &str = "metadata.json";
const JOURNAL_NAME: &str = "metadata.journal";
/// Magic and format version of the journal.
const JOURNAL_HEADER: [u8; 12] = *b"HENGEMDJ\x01\x00\x00\x00";
/// A snapshot is written, and the journal emptied, after this many records.
const SNAPSHOT_EVERY: usize = 1000;
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
/// overshadows. O(n log n): intervals of one table are equal, nested or disjoint (a table's
/// granularity never changes), which a sweep over them sorted by start handles; should two
/// intervals ever overlap only in part, the answer falls back to comparing every pair.
pub fn visible(segments: &[SegmentMeta]) -> Vec<SegmentMeta> {
    // The highest version of each table's interval.
    let mut intervals: BTreeMap<(u64, i64, std::cmp::Reverse<i64>), u64> = BTreeMap::new();
    for s in segments {
        let top = intervals
            .entry((s.table_id, s.start, std::cmp::Reverse(s.end)))
            .or_insert(s.version);
        *top = (*top).max(s.version);
    }
    // For each interval, the highest version of any interval covering it (itself too).
    let mut cover: BTreeMap<(u64, i64, i64), u64> = BTreeMap::new();
    // The intervals containing the current one: (table, end, highest version so far).
    let mut open: Vec<(u64, i64, u64)> = Vec::new();
    for (&(table, start, std::cmp::Reverse(end)), &version) in &intervals {
        while let Some(&(t, e, _)) = open.last() {
            if t != table || e <= start {
                open.pop();
            } else if e < end {
                // Overlapping in part: not a family of nested intervals.
                return visible_pairwise(segments);
            } else {
                break;
            }
        }
        let best = open.last().map_or(version, |&(_, _, v)| v.max(version));
        cover.insert((table, start, end), best);
        open.push((table, end, best));
    }
    segments
        .iter()
        .filter(|s| cover.get(&(s.table_id, s.start, s.end)) <= Some(&s.version))
        .cloned()
        .collect()
}

fn visible_pairwise(segments: &[SegmentMeta]) -> Vec<SegmentMeta> {
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
    /// The last journal record this snapshot includes.
    #[serde(default)]
    journal_seq: u64,
    #[serde(default)]
    views: BTreeMap<String, ViewDef>,
    /// Roles, owners and privileges.
    #[serde(default)]
    access: Access,
    /// Kafka sources, by name (one namespace with tables and views).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    sources: BTreeMap<String, SourceDef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pipelines: BTreeMap<String, PipelineDef>,
    /// Alert rules, by name (a namespace of their own).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    alerts: BTreeMap<String, AlertDef>,
    /// Each pipeline's offsets whose rows are in persisted pieces or published segments
    /// (later ones are in the write-ahead log, with their rows), by pipeline id.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "crate::stream::offsets_by_pipeline"
    )]
    offsets: BTreeMap<u64, Offsets>,
}

/// One change of the store, as the journal records it. Applying one cannot fail: every
/// check is made before it is written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
enum Change {
    CreateTable {
        def: TableDef,
        /// The role that owns it (the bootstrap superuser when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<u32>,
    },
    /// A table, and the views named with it (that depend on it), dropped together.
    DropTable {
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        views: Vec<String>,
    },
    /// A view created or replaced (a replaced one keeps its id).
    CreateView {
        def: ViewDef,
        /// The role that owns a new view; a replaced one keeps its owner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<u32>,
    },
    /// Roles, memberships, owners and grants, replaced whole (they are few).
    Access {
        access: Access,
    },
    DropViews {
        names: Vec<String>,
    },
    Persist {
        pieces: Vec<SegmentMeta>,
        wal_start: u64,
        /// The offsets of the pipelines whose rows the pieces (and earlier ones) hold.
        #[serde(
            default,
            skip_serializing_if = "BTreeMap::is_empty",
            with = "crate::stream::offsets_by_pipeline"
        )]
        offsets: BTreeMap<u64, Offsets>,
    },
    CreateSource {
        def: SourceDef,
    },
    DropSource {
        name: String,
    },
    /// A pipeline created, or changed (paused, resumed).
    Pipeline {
        def: PipelineDef,
    },
    DropPipeline {
        name: String,
    },
    /// An alert rule created, or changed (enabled, disabled).
    Alert {
        def: AlertDef,
    },
    DropAlert {
        name: String,
    },
    /// How far alert rules have reported (`AlertDef::reported_from`), several at once.
    AlertProgress {
        progress: Vec<(String, i64)>,
    },
    HandOff {
        segments: Vec<SegmentMeta>,
        pieces: Vec<SegmentMeta>,
    },
    Forget {
        segments: Vec<SegmentMeta>,
    },
    /// ALTER TABLE: the table's new definition (same id, perhaps a new name) with the
    /// segments rewritten in its layout, replacing all of the old ones.
    AlterTable {
        def: TableDef,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        segments: Vec<SegmentMeta>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        forget: Vec<SegmentMeta>,
    },
    /// A statement's rewrite of a table (DELETE, UPDATE, TRUNCATE, REPLACE): new segments
    /// published, replaced ones forgotten and new pieces recorded, all at once.
    Rewrite {
        segments: Vec<SegmentMeta>,
        forget: Vec<SegmentMeta>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pieces: Vec<SegmentMeta>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    seq: u64,
    #[serde(flatten)]
    change: Change,
}

fn names(segments: &[SegmentMeta]) -> HashSet<String> {
    segments.iter().map(SegmentMeta::file_name).collect()
}

impl State {
    fn apply(&mut self, change: Change) {
        match change {
            Change::CreateTable { def, owner } => {
                self.next_table_id = self.next_table_id.max(def.id + 1);
                if let Some(owner) = owner {
                    self.access.set_owner(def.id, owner);
                }
                self.tables.insert(def.name.clone(), def);
            }
            Change::DropTable { name, views } => {
                for view in views {
                    if let Some(def) = self.views.remove(&view) {
                        self.access.forget_relation(def.id);
                    }
                }
                if let Some(def) = self.tables.remove(&name) {
                    self.access.forget_relation(def.id);
                    self.segments.retain(|s| s.table_id != def.id);
                    self.pieces.retain(|s| s.table_id != def.id);
                }
            }
            Change::CreateView { def, owner } => {
                self.next_table_id = self.next_table_id.max(def.id + 1);
                if let Some(owner) = owner {
                    self.access.set_owner(def.id, owner);
                }
                self.views.insert(def.name.clone(), def);
            }
            Change::DropViews { names } => {
                for name in names {
                    if let Some(def) = self.views.remove(&name) {
                        self.access.forget_relation(def.id);
                    }
                }
            }
            Change::Access { access } => self.access = access,
            Change::Persist {
                pieces,
                wal_start,
                offsets,
            } => {
                self.pieces.extend(pieces);
                self.wal_start = self.wal_start.max(wal_start);
                for (pipeline, offsets) in offsets {
                    if self.pipelines.values().any(|p| p.id == pipeline) {
                        self.offsets.insert(pipeline, offsets);
                    }
                }
            }
            Change::CreateSource { def } => {
                self.next_table_id = self.next_table_id.max(def.id + 1);
                self.sources.insert(def.name.clone(), def);
            }
            Change::DropSource { name } => {
                self.sources.remove(&name);
            }
            Change::Pipeline { def } => {
                self.next_table_id = self.next_table_id.max(def.id + 1);
                self.pipelines.insert(def.name.clone(), def);
            }
            Change::DropPipeline { name } => {
                if let Some(def) = self.pipelines.remove(&name) {
                    self.offsets.remove(&def.id);
                }
            }
            Change::Alert { def } => {
                self.next_table_id = self.next_table_id.max(def.id + 1);
                self.alerts.insert(def.name.clone(), def);
            }
            Change::DropAlert { name } => {
                self.alerts.remove(&name);
            }
            Change::AlertProgress { progress } => {
                for (name, from) in progress {
                    if let Some(def) = self.alerts.get_mut(&name) {
                        def.reported_from = Some(from);
                    }
                }
            }
            Change::HandOff { segments, pieces } => {
                let gone = names(&pieces);
                self.pieces.retain(|p| !gone.contains(&p.file_name()));
                if let Some(max) = segments.iter().map(|s| s.version).max() {
                    self.next_version = self.next_version.max(max + 1);
                }
                self.segments.extend(segments);
            }
            Change::Forget { segments } => {
                let gone = names(&segments);
                self.segments.retain(|s| !gone.contains(&s.file_name()));
            }
            Change::AlterTable {
                def,
                segments,
                forget,
            } => {
                self.replace_segments(segments, &forget);
                self.tables.retain(|_, t| t.id != def.id);
                self.tables.insert(def.name.clone(), def);
            }
            Change::Rewrite {
                segments,
                forget,
                pieces,
            } => {
                self.replace_segments(segments, &forget);
                self.pieces.extend(pieces);
            }
        }
    }

    /// Whether a table, view or source has this name (they share one namespace).
    fn name_taken(&self, name: &str) -> bool {
        self.tables.contains_key(name)
            || self.views.contains_key(name)
            || self.sources.contains_key(name)
    }

    /// Forgets the segments of `forget` and publishes `segments`.
    fn replace_segments(&mut self, segments: Vec<SegmentMeta>, forget: &[SegmentMeta]) {
        let gone = names(forget);
        self.segments.retain(|s| !gone.contains(&s.file_name()));
        if let Some(max) = segments.iter().map(|s| s.version).max() {
            self.next_version = self.next_version.max(max + 1);
        }
        self.segments.extend(segments);
    }

    /// Splits `segments` into those of tables that exist and those of dropped ones.
    fn of_live_tables(&self, segments: Vec<SegmentMeta>) -> (Vec<SegmentMeta>, Vec<SegmentMeta>) {
        let ids: HashSet<u64> = self.tables.values().map(|t| t.id).collect();
        segments
            .into_iter()
            .partition(|s| ids.contains(&s.table_id))
    }
}

struct Inner {
    state: State,
    journal: Journal,
}

/// The durable metadata of one data directory.
pub struct MetadataStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl MetadataStore {
    /// Opens the store in `dir`, creating an empty one if there is none: reads the
    /// snapshot, then replays the journal records written after it.
    pub fn open(dir: &Path) -> Result<MetadataStore> {
        fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let path = dir.join(FILE_NAME);
        let (mut state, fresh) = match fs::read(&path) {
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
                (state, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut state = State {
                    format_version: FORMAT_VERSION,
                    next_table_id: 1,
                    next_version: 1,
                    ..State::default()
                };
                import_old_catalog(&dir.join(OLD_CATALOG), &mut state)?;
                (state, true)
            }
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        let (journal, records) = Journal::open(&dir.join(JOURNAL_NAME))?;
        for record in records {
            if record.seq > state.journal_seq {
                state.journal_seq = record.seq;
                state.apply(record.change);
            }
        }
        let store = MetadataStore {
            path,
            inner: Mutex::new(Inner { state, journal }),
        };
        if fresh {
            // The first snapshot (with the imported catalog, if any; the old file is left
            // for the user to delete).
            store.snapshot(&mut store.lock())?;
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the state half-changed: a change is
        // checked first, written to the journal, and only then applied, which cannot fail.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `change` durable in the journal, then applies it: constant work per change,
    /// whatever the number of segments. Every [`SNAPSHOT_EVERY`] records the whole state
    /// is written as a new snapshot and the journal emptied.
    fn commit(&self, inner: &mut Inner, change: Change) -> Result<()> {
        let seq = inner.state.journal_seq + 1;
        let record = Record { seq, change };
        inner.journal.append(&record)?;
        inner.state.journal_seq = seq;
        inner.state.apply(record.change);
        if inner.journal.records >= SNAPSHOT_EVERY {
            // The change is durable already: a failed snapshot only leaves a longer journal.
            if let Err(e) = self.snapshot(inner) {
                tracing::warn!(error = %e, "could not write a metadata snapshot; the journal keeps growing");
            }
        }
        Ok(())
    }

    /// Writes the whole state as the snapshot, then empties the journal (a crash between
    /// the two leaves records the snapshot already holds, which replay skips by number).
    fn snapshot(&self, inner: &mut Inner) -> Result<()> {
        let bytes = serde_json::to_vec(&inner.state).map_err(|e| Error::CorruptMetadata {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        write_atomically(&self.path, &bytes)?;
        inner.journal.clear()
    }

    /// All tables, ordered by name.
    pub fn tables(&self) -> Vec<TableDef> {
        self.lock().state.tables.values().cloned().collect()
    }

    /// Adds a table, giving it a fresh id (the `id` passed in is ignored), and persists the
    /// store before returning the stored definition.
    pub fn create(&self, def: TableDef) -> Result<TableDef> {
        self.create_owned(def, crate::access::BOOTSTRAP_SUPERUSER)
    }

    /// Like [`MetadataStore::create`], the table owned by `owner`.
    pub fn create_owned(&self, mut def: TableDef, owner: u32) -> Result<TableDef> {
        let mut inner = self.lock();
        if inner.state.name_taken(&def.name) {
            return Err(Error::TableExists(def.name.clone()));
        }
        def.id = inner.state.next_table_id;
        let owner = Some(owner).filter(|&o| o != crate::access::BOOTSTRAP_SUPERUSER);
        self.commit(
            &mut inner,
            Change::CreateTable {
                def: def.clone(),
                owner,
            },
        )?;
        Ok(def)
    }

    /// Roles, memberships, owners and grants as they are now.
    pub fn access(&self) -> Access {
        self.lock().state.access.clone()
    }

    /// Answers a question about roles and grants without copying them (a role's name, a
    /// relation's owner, row by row). `question` must not call back into the store.
    pub fn read_access<T>(&self, question: impl FnOnce(&Access) -> T) -> T {
        question(&self.lock().state.access)
    }

    /// Changes roles, memberships, owners or grants: `change` checks and edits a copy,
    /// which is made durable and takes effect only if it returns `Ok`; nothing changes
    /// otherwise. Changes are serialized, so `change` sees every earlier one.
    pub fn update_access<T, E: From<Error>>(
        &self,
        change: impl FnOnce(&mut Access) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut inner = self.lock();
        let mut access = inner.state.access.clone();
        let out = change(&mut access)?;
        if access != inner.state.access {
            self.commit(&mut inner, Change::Access { access })?;
        }
        Ok(out)
    }

    /// All views, ordered by name.
    pub fn views(&self) -> Vec<ViewDef> {
        self.lock().state.views.values().cloned().collect()
    }

    /// The view of this name.
    pub fn view(&self, name: &str) -> Option<ViewDef> {
        self.lock().state.views.get(name).cloned()
    }

    /// Adds a view with a fresh id, or, with `replace`, replaces the view of its name
    /// (keeping that one's id); persists the store before returning the stored definition.
    pub fn create_view(&self, def: ViewDef, replace: bool) -> Result<ViewDef> {
        self.create_view_owned(def, replace, crate::access::BOOTSTRAP_SUPERUSER)
    }

    /// Like [`MetadataStore::create_view`]; a new view is owned by `owner`, a replaced one
    /// keeps its owner.
    pub fn create_view_owned(
        &self,
        mut def: ViewDef,
        replace: bool,
        owner: u32,
    ) -> Result<ViewDef> {
        let mut inner = self.lock();
        let old = inner.state.views.get(&def.name).map(|v| v.id);
        let other = inner.state.tables.contains_key(&def.name)
            || inner.state.sources.contains_key(&def.name);
        if other || (old.is_some() && !replace) {
            return Err(Error::TableExists(def.name.clone()));
        }
        def.id = old.unwrap_or(inner.state.next_table_id);
        let owner =
            Some(owner).filter(|&o| old.is_none() && o != crate::access::BOOTSTRAP_SUPERUSER);
        self.commit(
            &mut inner,
            Change::CreateView {
                def: def.clone(),
                owner,
            },
        )?;
        Ok(def)
    }

    /// Removes views, all of them or (if one does not exist) none.
    pub fn drop_views(&self, names: &[String]) -> Result<()> {
        let mut inner = self.lock();
        if let Some(missing) = names.iter().find(|n| !inner.state.views.contains_key(*n)) {
            return Err(Error::TableNotFound(missing.clone()));
        }
        self.commit(
            &mut inner,
            Change::DropViews {
                names: names.to_vec(),
            },
        )
    }

    /// Removes a table, its segments and its pieces, and the views named (in one change);
    /// returns the definition and the segments and pieces removed.
    pub fn drop_table(&self, name: &str, views: &[String]) -> Result<(TableDef, Vec<SegmentMeta>)> {
        let mut inner = self.lock();
        let def = inner
            .state
            .tables
            .get(name)
            .cloned()
            .ok_or_else(|| Error::TableNotFound(name.to_owned()))?;
        let gone: Vec<SegmentMeta> = inner
            .state
            .segments
            .iter()
            .chain(&inner.state.pieces)
            .filter(|s| s.table_id == def.id)
            .cloned()
            .collect();
        let views = views
            .iter()
            .filter(|v| inner.state.views.contains_key(*v))
            .cloned()
            .collect();
        self.commit(
            &mut inner,
            Change::DropTable {
                name: name.to_owned(),
                views,
            },
        )?;
        Ok((def, gone))
    }

    /// Every published segment (overshadowed ones included).
    pub fn segments(&self) -> Vec<SegmentMeta> {
        self.lock().state.segments.clone()
    }

    /// Every persisted piece not yet handed off.
    pub fn pieces(&self) -> Vec<SegmentMeta> {
        self.lock().state.pieces.clone()
    }

    /// The first write-ahead log file whose rows are not all in published segments.
    pub fn wal_start(&self) -> u64 {
        self.lock().state.wal_start
    }

    /// The version and partition a new segment of `table_id` for `[start, end)` gets, given
    /// the segments already `planned` but not yet published. New rows for an interval that
    /// already has segments become another partition of its newest version, so nothing is
    /// overshadowed; a fresh interval gets the next unused version.
    pub fn next_identity(
        &self,
        table_id: u64,
        start: i64,
        end: i64,
        planned: &[SegmentMeta],
    ) -> (u64, u32) {
        let inner = self.lock();
        let same = |s: &&SegmentMeta| s.table_id == table_id && s.start == start && s.end == end;
        let existing: Vec<&SegmentMeta> = inner
            .state
            .segments
            .iter()
            .chain(planned)
            .filter(same)
            .collect();
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
            None => (inner.state.next_version, 0),
        }
    }

    /// The version a rewrite of an interval (compaction) gives its segments: higher than
    /// any published so far. It is taken for good when they are published.
    pub fn fresh_version(&self) -> u64 {
        self.lock().state.next_version
    }

    /// Forgets published segments (overshadowed ones whose files are about to be deleted).
    pub fn forget(&self, segments: &[SegmentMeta]) -> Result<()> {
        let mut inner = self.lock();
        self.commit(
            &mut inner,
            Change::Forget {
                segments: segments.to_vec(),
            },
        )
    }

    /// Records persisted `pieces` (files already durable on local disk) and moves the log's
    /// replay start to `wal_start` (never backwards: 0 leaves it), in one atomic change.
    /// Pieces of tables dropped meanwhile are left out and returned, to be deleted.
    pub fn persist(
        &self,
        pieces: Vec<SegmentMeta>,
        wal_start: u64,
        offsets: BTreeMap<u64, Offsets>,
    ) -> Result<Vec<SegmentMeta>> {
        let mut inner = self.lock();
        let (kept, orphans) = inner.state.of_live_tables(pieces);
        self.commit(
            &mut inner,
            Change::Persist {
                pieces: kept,
                wal_start,
                offsets,
            },
        )?;
        Ok(orphans)
    }

    /// All sources, ordered by name.
    pub fn sources(&self) -> Vec<SourceDef> {
        self.lock().state.sources.values().cloned().collect()
    }

    /// Adds a source with a fresh id; its name may not be a table's, a view's or another
    /// source's.
    pub fn create_source(&self, mut def: SourceDef) -> Result<SourceDef> {
        let mut inner = self.lock();
        if inner.state.name_taken(&def.name) {
            return Err(Error::TableExists(def.name.clone()));
        }
        def.id = inner.state.next_table_id;
        self.commit(&mut inner, Change::CreateSource { def: def.clone() })?;
        Ok(def)
    }

    /// Removes a source (its pipelines are the caller's to drop first).
    pub fn drop_source(&self, name: &str) -> Result<()> {
        let mut inner = self.lock();
        if !inner.state.sources.contains_key(name) {
            return Err(Error::TableNotFound(name.to_owned()));
        }
        self.commit(
            &mut inner,
            Change::DropSource {
                name: name.to_owned(),
            },
        )
    }

    /// All pipelines, ordered by name, each with the offsets recorded for it.
    pub fn pipelines(&self) -> Vec<(PipelineDef, Offsets)> {
        let inner = self.lock();
        inner
            .state
            .pipelines
            .values()
            .map(|p| {
                let offsets = inner.state.offsets.get(&p.id).cloned().unwrap_or_default();
                (p.clone(), offsets)
            })
            .collect()
    }

    /// Adds a pipeline with a fresh id (`create`), or records a changed one (same name and
    /// id).
    pub fn put_pipeline(&self, mut def: PipelineDef, create: bool) -> Result<PipelineDef> {
        let mut inner = self.lock();
        let old = inner.state.pipelines.get(&def.name).map(|p| p.id);
        match (old, create) {
            (Some(_), true) => return Err(Error::PipelineExists(def.name.clone())),
            (None, false) => return Err(Error::PipelineNotFound(def.name.clone())),
            (Some(id), false) => def.id = id,
            (None, true) => def.id = inner.state.next_table_id,
        }
        self.commit(&mut inner, Change::Pipeline { def: def.clone() })?;
        Ok(def)
    }

    /// All alert rules, ordered by name.
    pub fn alerts(&self) -> Vec<AlertDef> {
        self.lock().state.alerts.values().cloned().collect()
    }

    /// Adds a rule with a fresh id (`create`), or records a changed one (same name and id).
    pub fn put_alert(&self, mut def: AlertDef, create: bool) -> Result<AlertDef> {
        let mut inner = self.lock();
        let old = inner.state.alerts.get(&def.name).map(|a| a.id);
        match (old, create) {
            (Some(_), true) => return Err(Error::AlertExists(def.name.clone())),
            (None, false) => return Err(Error::AlertNotFound(def.name.clone())),
            (Some(id), false) => def.id = id,
            (None, true) => def.id = inner.state.next_table_id,
        }
        self.commit(&mut inner, Change::Alert { def: def.clone() })?;
        Ok(def)
    }

    /// Records how far rules have reported (`AlertDef::reported_from`), by name, in one
    /// change, changing nothing else of them (a rule dropped meanwhile is passed over).
    pub fn set_alert_progress(&self, progress: Vec<(String, i64)>) -> Result<()> {
        let mut inner = self.lock();
        self.commit(&mut inner, Change::AlertProgress { progress })
    }

    /// Removes an alert rule.
    pub fn drop_alert(&self, name: &str) -> Result<()> {
        let mut inner = self.lock();
        if !inner.state.alerts.contains_key(name) {
            return Err(Error::AlertNotFound(name.to_owned()));
        }
        self.commit(
            &mut inner,
            Change::DropAlert {
                name: name.to_owned(),
            },
        )
    }

    /// Removes a pipeline and its offsets.
    pub fn drop_pipeline(&self, name: &str) -> Result<()> {
        let mut inner = self.lock();
        if !inner.state.pipelines.contains_key(name) {
            return Err(Error::PipelineNotFound(name.to_owned()));
        }
        self.commit(
            &mut inner,
            Change::DropPipeline {
                name: name.to_owned(),
            },
        )
    }

    /// Hands pieces off: publishes `segments` (already in deep storage) and forgets
    /// `pieces`, whose rows they hold, in one atomic change. Segments of a table dropped
    /// meanwhile are left out and returned, to be deleted.
    pub fn hand_off(
        &self,
        segments: Vec<SegmentMeta>,
        pieces: &[SegmentMeta],
    ) -> Result<Vec<SegmentMeta>> {
        let mut inner = self.lock();
        let (kept, orphans) = inner.state.of_live_tables(segments);
        self.commit(
            &mut inner,
            Change::HandOff {
                segments: kept,
                pieces: pieces.to_vec(),
            },
        )?;
        Ok(orphans)
    }
}

impl MetadataStore {
    /// ALTER TABLE, in one atomic change: `def` replaces the definition of the table of its
    /// id (under its name, which may be new), `segments` (already in deep storage) are
    /// published and `forget` forgotten. Fails with [`Error::TableNotFound`] when the table
    /// was dropped meanwhile, and [`Error::TableExists`] when the new name is taken.
    pub fn alter_table(
        &self,
        def: TableDef,
        segments: Vec<SegmentMeta>,
        forget: &[SegmentMeta],
    ) -> Result<()> {
        let mut inner = self.lock();
        let Some(old) = inner.state.tables.values().find(|t| t.id == def.id) else {
            return Err(Error::TableNotFound(def.name));
        };
        if old.name != def.name && inner.state.name_taken(&def.name) {
            return Err(Error::TableExists(def.name));
        }
        self.commit(
            &mut inner,
            Change::AlterTable {
                def,
                segments,
                forget: forget.to_vec(),
            },
        )
    }

    /// A statement's rewrite of a table, in one atomic change: publishes `segments`
    /// (already in deep storage), forgets `forget` (the segments they replace, and those of
    /// intervals emptied) and records `pieces` (new rows, durable on local disk). Fails
    /// with [`Error::TableNotFound`] when the table was dropped meanwhile.
    pub fn rewrite(
        &self,
        table_id: u64,
        segments: Vec<SegmentMeta>,
        forget: &[SegmentMeta],
        pieces: Vec<SegmentMeta>,
    ) -> Result<()> {
        let mut inner = self.lock();
        if !inner.state.tables.values().any(|t| t.id == table_id) {
            return Err(Error::TableNotFound(format!("table {table_id}")));
        }
        self.commit(
            &mut inner,
            Change::Rewrite {
                segments,
                forget: forget.to_vec(),
                pieces,
            },
        )
    }
}

/// The journal, `metadata.journal`: an 8-byte magic and a `u32` format version, then
/// records framed as `u32 length | u32 CRC-32 | JSON`. A record cut short or failing its
/// checksum at the end is a change that was never acknowledged, and is cut off.
struct Journal {
    path: PathBuf,
    file: File,
    /// Records since the last snapshot.
    records: usize,
    /// A failed write leaves the tail unknown: every later change is refused.
    failed: bool,
}

impl Journal {
    fn open(path: &Path) -> Result<(Journal, Vec<Record>)> {
        let mut records = Vec::new();
        let mut valid = 0u64;
        match fs::read(path) {
            Ok(bytes) if bytes.len() >= JOURNAL_HEADER.len() => {
                if bytes[..JOURNAL_HEADER.len()] != JOURNAL_HEADER {
                    return Err(Error::CorruptMetadata {
                        path: path.to_path_buf(),
                        reason: "not a Henge metadata journal of this format version".into(),
                    });
                }
                let mut pos = JOURNAL_HEADER.len();
                valid = pos as u64;
                while bytes.len() - pos >= 8 {
                    let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap_or([0; 4]))
                        as usize;
                    let crc =
                        u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap_or([0; 4]));
                    let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
                        break;
                    };
                    if crc32fast::hash(payload) != crc {
                        break;
                    }
                    // A record whose checksum holds was written whole: one that does not
                    // decode is not torn but unreadable, and cutting it off would drop
                    // every change after it.
                    let record = serde_json::from_slice::<Record>(payload).map_err(|e| {
                        Error::CorruptMetadata {
                            path: path.to_path_buf(),
                            reason: format!("journal record at offset {pos}: {e}"),
                        }
                    })?;
                    records.push(record);
                    pos += 8 + len;
                    valid = pos as u64;
                }
                if valid < bytes.len() as u64 {
                    tracing::warn!(path = %path.display(), offset = valid,
                        "dropping an incomplete record at the end of the metadata journal");
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", path)(e)),
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(path)
            .map_err(Error::io("open", path))?;
        if valid == 0 {
            file.set_len(0).map_err(Error::io("truncate", path))?;
            file.write_all(&JOURNAL_HEADER)
                .map_err(Error::io("write", path))?;
            valid = JOURNAL_HEADER.len() as u64;
        } else {
            file.set_len(valid).map_err(Error::io("truncate", path))?;
        }
        file.seek(SeekFrom::Start(valid))
            .map_err(Error::io("seek", path))?;
        file.sync_all().map_err(Error::io("fsync", path))?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(Error::io("fsync directory", dir))?;
        }
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            records: records.len(),
            failed: false,
        };
        Ok((journal, records))
    }

    /// Appends one record and fsyncs it.
    fn append(&mut self, record: &Record) -> Result<()> {
        if self.failed {
            return Err(Error::CorruptMetadata {
                path: self.path.clone(),
                reason: "an earlier write to the journal failed; restart henge".into(),
            });
        }
        let payload = serde_json::to_vec(record).map_err(|e| Error::CorruptMetadata {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        let written = self
            .file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.failed = true;
            return Err(Error::io("write", &self.path)(e));
        }
        self.records += 1;
        Ok(())
    }

    /// Empties the journal after a snapshot holds everything in it.
    fn clear(&mut self) -> Result<()> {
        let cleared = self
            .file
            .set_len(JOURNAL_HEADER.len() as u64)
            .and_then(|()| self.file.seek(SeekFrom::Start(JOURNAL_HEADER.len() as u64)))
            .and_then(|_| self.file.sync_all());
        if let Err(e) = cleared {
            self.failed = true;
            return Err(Error::io("truncate", &self.path)(e));
        }
        self.records = 0;
        Ok(())
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
                rollup: None,
                default: None,
            }],
            time_column: Some("ts".into()),
            segment_granularity: Granularity::Hour,
            window_period_secs: crate::schema::DEFAULT_WINDOW_PERIOD_SECS,
            rollup: false,
            query_granularity: None,
            limits: Default::default(),
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

    fn view(name: &str, on: &str) -> ViewDef {
        ViewDef {
            id: 0,
            name: name.into(),
            query: format!("SELECT * FROM {on}"),
            columns: Vec::new(),
            depends_on: vec![on.into()],
        }
    }

    #[test]
    fn views_survive_reopening_and_share_names_and_ids_with_tables() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        let t = store.create(table("t")).unwrap();
        let v = store.create_view(view("v", "t"), false).unwrap();
        assert!(v.id > t.id);
        // One name space for tables and views.
        assert!(matches!(
            store.create(table("v")),
            Err(Error::TableExists(_))
        ));
        assert!(matches!(
            store.create_view(view("t", "t"), true),
            Err(Error::TableExists(_))
        ));
        assert!(matches!(
            store.create_view(view("v", "t"), false),
            Err(Error::TableExists(_))
        ));
        // Replacing keeps the id.
        let mut changed = view("v", "t");
        changed.query = "SELECT 1".into();
        let replaced = store.create_view(changed, true).unwrap();
        assert_eq!(replaced.id, v.id);
        let w = store.create_view(view("w", "v"), false).unwrap();
        // Dropping several views: all or none.
        assert!(matches!(
            store.drop_views(&["w".into(), "nope".into()]),
            Err(Error::TableNotFound(_))
        ));
        assert_eq!(store.views().len(), 2);

        let reopened = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(reopened.views(), vec![replaced.clone(), w.clone()]);
        assert_eq!(reopened.view("v").unwrap().query, "SELECT 1");
        // A table dropped with the views that depend on it, in one change.
        reopened.drop_table("t", &["v".into(), "w".into()]).unwrap();
        let again = MetadataStore::open(dir.path()).unwrap();
        assert!(again.views().is_empty() && again.tables().is_empty());
        assert!(again.create(table("x")).unwrap().id > w.id);
    }

    #[test]
    fn roles_owners_and_grants_survive_reopening_and_go_with_their_relations() {
        use crate::access::{Privileges, RoleDef, BOOTSTRAP_SUPERUSER};
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        assert!(store.access().is_superuser(BOOTSTRAP_SUPERUSER));
        let alice = store
            .update_access(|a| Ok::<_, Error>(a.add_role(RoleDef::new("alice"))))
            .unwrap();
        let t = store.create_owned(table("t"), alice).unwrap();
        let u = store.create(table("u")).unwrap();
        let v = store
            .create_view_owned(view("v", "t"), false, alice)
            .unwrap();
        store
            .update_access(|a| {
                a.grant(u.id, alice, BOOTSTRAP_SUPERUSER, Privileges::SELECT, false);
                Ok::<_, Error>(())
            })
            .unwrap();
        // A change that fails leaves nothing behind.
        let failed: std::result::Result<(), Error> = store.update_access(|a| {
            a.remove_role(alice);
            Err(Error::TableNotFound("x".into()))
        });
        assert!(failed.is_err());

        let reopened = MetadataStore::open(dir.path()).unwrap();
        let access = reopened.access();
        assert_eq!(access.role_named("alice").map(|r| r.oid), Some(alice));
        assert_eq!(access.owner(t.id), alice);
        assert_eq!(access.owner(v.id), alice);
        assert_eq!(access.privileges(alice, u.id), Privileges::SELECT);
        reopened.drop_table("u", &[]).unwrap();
        reopened.drop_table("t", &["v".into()]).unwrap();
        let again = MetadataStore::open(dir.path()).unwrap().access();
        assert!(again.grants.is_empty());
        assert_eq!(again.owner(t.id), BOOTSTRAP_SUPERUSER);
        assert_eq!(again.owned_by(alice), Vec::<u64>::new());
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
        store.drop_table("a", &[]).unwrap();
        assert!(matches!(
            store.drop_table("a", &[]),
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
            .hand_off(vec![first.clone(), segment(999, 0, 10, 1, 0)], &[])
            .unwrap();
        assert_eq!(
            orphans.len(),
            1,
            "a segment of an unknown table is not published"
        );
        assert_eq!(store.next_identity(t.id, 0, 10, &[]), (1, 1));
        assert_eq!(store.next_identity(t.id, 20, 30, &[]).0, 2);
        assert!(store
            .persist(Vec::new(), 7, Default::default())
            .unwrap()
            .is_empty());

        let reopened = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(reopened.segments(), vec![first]);
        assert_eq!(reopened.wal_start(), 7);
        let (_, gone) = reopened.drop_table("t", &[]).unwrap();
        assert_eq!(gone.len(), 1);
        assert!(reopened.segments().is_empty());
    }

    #[test]
    fn pieces_and_hand_offs_replay_from_the_journal_and_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        let t = store.create(table("t")).unwrap();
        let piece = |n: u32| segment(t.id, 0, 10, PIECE_VERSION, n);
        // More changes than one snapshot holds: some come from a snapshot, the rest from
        // the journal.
        for n in 0..(SNAPSHOT_EVERY as u32 + 200) {
            store
                .persist(vec![piece(n)], u64::from(n), Default::default())
                .unwrap();
            if n % 2 == 1 {
                let published = segment(t.id, 0, 10, 1, n);
                store
                    .hand_off(vec![published], &[piece(n - 1), piece(n)])
                    .unwrap();
            }
        }
        let journal = dir.path().join(JOURNAL_NAME);
        let saved = fs::read(&journal).unwrap();
        let expected = (store.segments(), store.pieces(), store.wal_start());
        let reopened = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(
            (reopened.segments(), reopened.pieces(), reopened.wal_start()),
            expected
        );
        assert_eq!(reopened.segments().len(), SNAPSHOT_EVERY / 2 + 100);
        drop(reopened);

        // A crash after a snapshot but before the journal was emptied: records the snapshot
        // holds are skipped.
        let old_journal = saved.clone();
        let store = MetadataStore::open(dir.path()).unwrap();
        store.snapshot(&mut store.lock()).unwrap();
        fs::write(&journal, &old_journal).unwrap();
        let reopened = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(reopened.segments(), expected.0);

        // A torn record at the end is cut off; the rest stays.
        reopened
            .persist(vec![piece(9999)], 0, Default::default())
            .unwrap();
        let len = fs::metadata(&journal).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&journal)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let reopened = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(reopened.pieces(), expected.1);
        reopened
            .persist(vec![piece(10_000)], 0, Default::default())
            .unwrap();
        let reopened = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(reopened.pieces().len(), expected.1.len() + 1);
    }

    #[test]
    fn a_whole_record_that_does_not_decode_is_an_error_not_a_torn_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path()).unwrap();
        store.create(table("t")).unwrap();
        drop(store);
        // A well-framed record (length and checksum right) that is no change Henge knows.
        let payload = br#"{"seq":99,"change":"from_the_future"}"#;
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        let journal = dir.path().join(JOURNAL_NAME);
        OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap()
            .write_all(&frame)
            .unwrap();
        let before = fs::metadata(&journal).unwrap().len();
        assert!(matches!(
            MetadataStore::open(dir.path()),
            Err(Error::CorruptMetadata { .. })
        ));
        assert_eq!(
            fs::metadata(&journal).unwrap().len(),
            before,
            "nothing cut off"
        );
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
        // Without the part overlap, the sweep answers the same as comparing every pair.
        let nested: Vec<SegmentMeta> = segments[..6].to_vec();
        assert_eq!(visible(&nested), visible_pairwise(&nested));
        let mut many = Vec::new();
        for hour in 0..50_000i64 {
            many.push(segment(1, hour * 10, hour * 10 + 10, 1, 0));
            if hour % 3 == 0 {
                many.push(segment(1, hour * 10, hour * 10 + 10, 2, 0));
            }
        }
        let shown = visible(&many);
        assert_eq!(shown.len(), 50_000);
        assert!(shown
            .iter()
            .all(|s| s.version == if (s.start / 10) % 3 == 0 { 2 } else { 1 }));
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
