//! The write path's entry point: tables, their real-time buffers and the log behind them.
//!
//! A write lands in the log and a table's buffer ([`Engine::append`], or [`crate::stage`]
//! for statements of any size); [`crate::persist`] writes buffered rows to local pieces and
//! trims the log; [`crate::handoff`] merges a closed chunk's pieces into segments of deep
//! storage and publishes them; [`crate::maintain`] runs both by itself.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use henge_storage::segment::{write_segment, write_sorted_segment};
use henge_storage::stream::Offsets;
use henge_storage::{DeepStorage, MetadataStore, SegmentCache, SegmentMeta, TableDef, ViewDef};
use parking_lot::{Mutex, RwLock};

use crate::buffer::RealtimeBuffer;
use crate::error::{Error, Result};
use crate::memory::MemoryBudget;
use crate::rows::validate_batch;
use crate::wal::Wal;

/// A table that can be written and read.
#[derive(Debug)]
pub struct Table {
    pub def: Arc<TableDef>,
    /// The Arrow schema rows are stored with (the table's columns, then hidden ones),
    /// made once from `def`.
    pub schema: SchemaRef,
    pub buffer: RealtimeBuffer,
    /// Writes hold it shared while they make rows visible; a statement that rewrites the
    /// table's rows ([`crate::rewrite`]) holds it exclusively.
    pub(crate) dml: tokio::sync::RwLock<()>,
    /// Rows left out by the table's time limits since the server started.
    pub(crate) rows_dropped: std::sync::atomic::AtomicU64,
}

impl Table {
    pub(crate) fn new(
        def: TableDef,
        segments: Vec<SegmentMeta>,
        pieces: Vec<SegmentMeta>,
    ) -> Table {
        let def = Arc::new(def);
        let schema = def.stored_schema();
        Table {
            buffer: RealtimeBuffer::new(def.clone(), segments, pieces),
            schema,
            dml: tokio::sync::RwLock::new(()),
            rows_dropped: std::sync::atomic::AtomicU64::new(0),
            def,
        }
    }
}

/// A hand-off writes segments of at most this many rows by default (more become more
/// partitions), as Druid's default target of five million rows.
pub const DEFAULT_SEGMENT_ROWS: usize = 5_000_000;
/// … and of at most this many bytes of text and bytea values, well below the 2 GiB that
/// Arrow's 32-bit string offsets allow.
pub const MAX_SEGMENT_VALUE_BYTES: usize = 1 << 30;
/// Batches are cut into pieces of at most this many rows before parts are formed.
const PIECE_ROWS: usize = 65_536;

/// What a CHECKPOINT did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    pub segments: usize,
    pub rows: u64,
    pub bytes: u64,
}

/// Settings of the write path.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// fsync the write-ahead log before acknowledging a write. Turning this off loses
    /// acknowledged writes on power failure (not on a process crash); for benchmarks only.
    pub wal_fsync: bool,
    /// Where published segments are kept: an `object_store` URL; `None` means
    /// `file://<data-dir>/deep`.
    pub deep_storage: Option<String>,
    /// Bytes that rows in memory (buffered and staged) of all tables may take.
    pub ingest_memory: usize,
    /// How long a writer waits for that memory before its statement fails (53200).
    pub ingest_wait: Duration,
    /// Rows of a segment made by a hand-off (more become more partitions).
    pub segment_rows: usize,
    /// Intervals with this many published segments are compacted by themselves (0: never).
    pub compact_segments: usize,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            wal_fsync: true,
            deep_storage: None,
            ingest_memory: 1 << 30,
            ingest_wait: Duration::from_secs(60),
            segment_rows: DEFAULT_SEGMENT_ROWS,
            compact_segments: 4,
        }
    }
}

/// All tables of a data directory and the write-ahead log that makes writes durable.
pub struct Engine {
    pub(crate) metadata: MetadataStore,
    pub(crate) cache: SegmentCache,
    pub(crate) wal: Wal,
    tables: RwLock<HashMap<String, Arc<Table>>>,
    /// Serialises CREATE, ALTER and DROP so the metadata file and the table map change
    /// together.
    pub(crate) ddl: Mutex<()>,
    /// Appends hold it shared from the log write until their rows are in the buffer; a
    /// persist holds it exclusively while it rotates the log and freezes the buffers, so
    /// every row in a log file before the rotation is among the frozen rows.
    pub(crate) gate: tokio::sync::RwLock<()>,
    /// One persist at a time.
    pub(crate) persisting: tokio::sync::Mutex<()>,
    /// One hand-off at a time.
    pub(crate) handing_off: tokio::sync::Mutex<()>,
    /// Queries hold it shared from taking a snapshot until they have opened its files
    /// (memory-mapped: readable to the end, even once deleted); a step that deletes files
    /// it has just taken out of the snapshots waits for it exclusively first.
    opening: tokio::sync::RwLock<()>,
    /// Bumped by every CREATE and DROP, so cached query plans know to re-plan.
    generation: AtomicU64,
    pub(crate) memory: Arc<MemoryBudget>,
    /// The number the next piece file gets.
    next_piece: AtomicU32,
    /// Segment files found at start that no metadata names; see [`Engine::remove_orphans`].
    orphans: Mutex<Vec<String>>,
    pub(crate) options: EngineOptions,
    /// Each pipeline's offsets whose rows are durable (in the log, in pieces or segments).
    pub(crate) stream_offsets: Mutex<HashMap<u64, Offsets>>,
    /// Whether offsets were logged since the last persist, which must then record them
    /// even when no rows are buffered (so that the log behind them can be trimmed).
    pub(crate) offsets_logged: std::sync::atomic::AtomicBool,
    /// What each running pipeline reports, by id.
    pub(crate) pipeline_status: Mutex<HashMap<u64, crate::stream::PipelineStatus>>,
    /// Told of every commit: the alert rules.
    pub(crate) observer: std::sync::OnceLock<Arc<dyn crate::observe::CommitObserver>>,
    /// What each alert rule reports, by name.
    pub(crate) alert_status: Mutex<HashMap<String, crate::observe::AlertStatus>>,
}

impl Engine {
    /// Opens the data directory: loads the catalog, deletes files a crash left behind and
    /// replays the write-ahead log into the real-time buffers.
    pub fn open(data_dir: &Path, options: &EngineOptions) -> Result<Engine> {
        let metadata = MetadataStore::open(data_dir)?;
        let deep_url = match &options.deep_storage {
            Some(url) => url.clone(),
            None => {
                let dir = std::path::absolute(data_dir.join("deep")).map_err(|e| {
                    Error::Internal(format!("cannot resolve the data directory: {e}"))
                })?;
                url_of_dir(&dir)?
            }
        };
        let deep = DeepStorage::open(&deep_url)?;
        let cache = SegmentCache::new(&data_dir.join("segments"), deep)?;
        let segments = metadata.segments();
        let pieces = metadata.pieces();
        let known: HashSet<String> = segments
            .iter()
            .chain(&pieces)
            .map(|s| s.file_name())
            .collect();
        let (removed, uploaded) = cache.sweep_unknown(&known)?;
        let (wal, records) = Wal::open(
            &data_dir.join("wal"),
            options.wal_fsync,
            metadata.wal_start(),
        )?;
        let of = |list: &[SegmentMeta], id: u64| -> Vec<SegmentMeta> {
            list.iter().filter(|s| s.table_id == id).cloned().collect()
        };
        let tables: HashMap<String, Arc<Table>> = metadata
            .tables()
            .into_iter()
            .map(|def| {
                let (own, own_pieces) = (of(&segments, def.id), of(&pieces, def.id));
                (def.name.clone(), Arc::new(Table::new(def, own, own_pieces)))
            })
            .collect();
        let by_id: HashMap<u64, &Arc<Table>> = tables.values().map(|t| (t.def.id, t)).collect();
        // Each pipeline's offsets as of the last persist, then as the log has them since.
        let mut offsets: HashMap<u64, Offsets> = metadata
            .pipelines()
            .into_iter()
            .map(|(p, offsets)| (p.id, offsets))
            .collect();
        let (mut replayed, mut skipped) = (0usize, 0usize);
        for mut record in records {
            if let Some((pipeline, after)) = record.offsets.take() {
                if let Some(known) = offsets.get_mut(&pipeline) {
                    *known = after;
                }
            }
            match by_id.get(&record.table_id) {
                Some(table) => match in_layout(&table.schema, &record.batches) {
                    Some(batches) => {
                        replayed += batches.iter().map(|b| b.num_rows()).sum::<usize>();
                        table.buffer.append(&batches)?;
                    }
                    None => {
                        tracing::warn!(
                            table = %table.def.name,
                            "rows in the write-ahead log in another layout than the table's were not replayed"
                        );
                        skipped += 1;
                    }
                },
                // Rows of a table dropped since they were written.
                None => skipped += 1,
            }
        }
        let next_piece = pieces.iter().map(|p| p.partition + 1).max().unwrap_or(1);
        tracing::info!(
            data_dir = %data_dir.display(),
            tables = tables.len(),
            segments = segments.len(),
            pieces = pieces.len(),
            deep_storage = %deep_url,
            replayed_rows = replayed,
            skipped_records = skipped,
            orphans_removed = removed,
            orphans_uploaded = uploaded.len(),
            "data directory opened"
        );
        Ok(Engine {
            metadata,
            cache,
            wal,
            tables: RwLock::new(tables),
            ddl: Mutex::new(()),
            gate: tokio::sync::RwLock::new(()),
            persisting: tokio::sync::Mutex::new(()),
            handing_off: tokio::sync::Mutex::new(()),
            opening: tokio::sync::RwLock::new(()),
            generation: AtomicU64::new(0),
            memory: MemoryBudget::new(options.ingest_memory, options.ingest_wait),
            next_piece: AtomicU32::new(next_piece),
            orphans: Mutex::new(uploaded),
            options: options.clone(),
            stream_offsets: Mutex::new(offsets),
            offsets_logged: std::sync::atomic::AtomicBool::new(false),
            pipeline_status: Mutex::new(HashMap::new()),
            observer: std::sync::OnceLock::new(),
            alert_status: Mutex::new(HashMap::new()),
        })
    }

    /// Deletes, from deep storage and then locally, the segment files found at start that
    /// no metadata names (a crash between writing and publishing them). Call it before the
    /// first hand-off, which could otherwise reuse one of their names.
    pub async fn remove_orphans(&self) {
        let _one = self.handing_off.lock().await;
        let names = std::mem::take(&mut *self.orphans.lock());
        for name in names {
            match self.cache.remove_orphan(&name).await {
                Ok(()) => tracing::info!(file = %name, "deleted an unpublished segment file"),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "could not delete an unpublished segment file")
                }
            }
        }
    }

    /// The table called `name`, if it exists.
    pub fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.tables.read().get(name).cloned()
    }

    /// Whether `table` is still the table of its name (not dropped, replaced or altered).
    pub(crate) fn is_current(&self, table: &Table) -> bool {
        self.table(&table.def.name)
            .is_some_and(|t| std::ptr::eq(Arc::as_ptr(&t), table))
    }

    /// Why `table` is not current: altered since (it exists under its id), or dropped.
    pub(crate) fn not_current(&self, table: &Table) -> Error {
        let altered = self
            .tables
            .read()
            .values()
            .any(|t| t.def.id == table.def.id);
        match altered {
            true => Error::TableAltered(table.def.name.clone()),
            false => Error::TableNotFound(table.def.name.clone()),
        }
    }

    /// Puts `table` in place of the table called `old` (ALTER TABLE, perhaps renaming it).
    pub(crate) fn replace_table(&self, old: &str, table: Arc<Table>) {
        let mut tables = self.tables.write();
        tables.remove(old);
        tables.insert(table.def.name.clone(), table);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Every table, ordered by name.
    pub fn tables(&self) -> Vec<Arc<Table>> {
        let mut tables: Vec<_> = self.tables.read().values().cloned().collect();
        tables.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        tables
    }

    /// Changes whenever a table is created or dropped.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Makes plans made against the catalog as it was invalid.
    pub(crate) fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Creates a table from a validated definition (its `id` is assigned here).
    pub fn create_table(&self, def: TableDef) -> Result<Arc<Table>> {
        self.create_table_owned(def, henge_storage::access::BOOTSTRAP_SUPERUSER)
    }

    /// Like [`Engine::create_table`], the table owned by role `owner`.
    pub fn create_table_owned(&self, def: TableDef, owner: u32) -> Result<Arc<Table>> {
        let _ddl = self.ddl.lock();
        let def = self.metadata.create_owned(def, owner)?;
        let table = Arc::new(Table::new(def, Vec::new(), Vec::new()));
        self.tables
            .write()
            .insert(table.def.name.clone(), table.clone());
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(table = %table.def.name, id = table.def.id, "table created");
        Ok(table)
    }

    /// Roles, memberships, owners and grants as they are now.
    pub fn access(&self) -> henge_storage::Access {
        self.metadata.access()
    }

    /// Answers a question about roles and grants without copying them; `question` must not
    /// call back into the engine.
    pub fn read_access<T>(&self, question: impl FnOnce(&henge_storage::Access) -> T) -> T {
        self.metadata.read_access(question)
    }

    /// Changes roles, memberships, owners or grants durably, all of `change` or nothing
    /// (see [`henge_storage::MetadataStore::update_access`]).
    pub fn update_access<T, E: From<henge_storage::Error>>(
        &self,
        change: impl FnOnce(&mut henge_storage::Access) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.metadata.update_access(change)
    }

    /// Every view, ordered by name.
    pub fn views(&self) -> Vec<ViewDef> {
        self.metadata.views()
    }

    /// The view of this name.
    pub fn view(&self, name: &str) -> Option<ViewDef> {
        self.metadata.view(name)
    }

    /// Creates a view, or with `replace` replaces the one of its name; the caller has
    /// checked its query.
    pub fn create_view(&self, def: ViewDef, replace: bool) -> Result<ViewDef> {
        self.create_view_owned(def, replace, henge_storage::access::BOOTSTRAP_SUPERUSER)
    }

    /// Like [`Engine::create_view`]; a new view is owned by role `owner`.
    pub fn create_view_owned(&self, def: ViewDef, replace: bool, owner: u32) -> Result<ViewDef> {
        let _ddl = self.ddl.lock();
        let def = self.metadata.create_view_owned(def, replace, owner)?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(view = %def.name, id = def.id, "view created");
        Ok(def)
    }

    /// Drops views, all of them or none.
    pub fn drop_views(&self, names: &[String]) -> Result<()> {
        let _ddl = self.ddl.lock();
        self.metadata.drop_views(names)?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(views = ?names, "views dropped");
        Ok(())
    }

    /// Drops a table, its rows and its segment files, and with it the views named.
    pub async fn drop_table(&self, name: &str, views: &[String]) -> Result<()> {
        let segments = {
            let _ddl = self.ddl.lock();
            if let Some(pipeline) = self.pipelines_into(name).first() {
                return Err(Error::Dependents(format!(
                    "cannot drop table {name} because pipeline {} writes into it",
                    pipeline.name
                )));
            }
            let (_, segments) = self.metadata.drop_table(name, views)?;
            self.tables.write().remove(name);
            self.generation.fetch_add(1, Ordering::SeqCst);
            segments
        };
        self.memory.freed();
        tracing::info!(table = %name, segments = segments.len(), "table dropped");
        self.wait_for_openers().await;
        self.remove_files(&segments).await;
        Ok(())
    }

    /// Deletes segment and piece files nothing refers to any more; failures only leave
    /// garbage, which the next start removes.
    pub(crate) async fn remove_files(&self, segments: &[SegmentMeta]) {
        for segment in segments {
            if let Err(e) = self.cache.remove(segment).await {
                tracing::warn!(file = %segment.file_name(), error = %e, "could not delete a segment file");
            }
        }
    }

    /// Held by a query from taking a table's snapshot until it has opened the snapshot's
    /// files, so that none of them is deleted in between.
    pub async fn opening_files(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.opening.read().await
    }

    /// Waits until every query that may have seen files just taken out of the snapshots
    /// has opened them; they can be deleted afterwards.
    pub(crate) async fn wait_for_openers(&self) {
        drop(self.opening.write().await);
    }

    /// Rows in memory, over all tables (including rows a failed persist left frozen).
    pub fn buffered_rows(&self) -> usize {
        self.tables().iter().map(|t| t.buffer.rows()).sum()
    }

    /// Memory the rows in memory of all tables take.
    pub fn buffered_bytes(&self) -> usize {
        self.tables().iter().map(|t| t.buffer.bytes()).sum()
    }

    /// Memory in use against the ingest budget: buffered rows and writers' reservations.
    pub fn memory_used(&self) -> usize {
        self.buffered_bytes() + self.memory.reserved()
    }

    /// The ingest memory budget, in bytes.
    pub fn memory_budget(&self) -> usize {
        self.memory.limit()
    }

    /// Bytes of write-ahead log files on disk.
    pub fn wal_bytes(&self) -> u64 {
        self.wal.bytes()
    }

    /// The local copies of published segments and pieces, for queries.
    pub fn segment_cache(&self) -> &SegmentCache {
        &self.cache
    }

    /// Moves every row into published segments now: persists what is in memory, then
    /// merges and hands off every piece. Queries running meanwhile see every row exactly
    /// once.
    pub async fn checkpoint(&self) -> Result<CheckpointReport> {
        self.persist().await?;
        let report = self.hand_off(crate::handoff::Due::All).await?;
        self.apply_retention().await?;
        Ok(report)
    }

    /// Writes the rows of one statement: all of them or, on any error, none. When this
    /// returns `Ok`, the rows are in the fsynced log and visible to every later query.
    /// The rows must fit in memory; [`crate::stage::StagedWrite`] takes any number.
    pub async fn append(&self, table: &Table, batches: Vec<RecordBatch>) -> Result<u64> {
        self.append_from(table, batches, None).await
    }

    /// [`Engine::append`] of rows read by pipeline `from.0` (perhaps none), durable together
    /// with its offsets after them (`from.1`, every partition's): after a crash both are
    /// there or neither is.
    pub async fn append_from(
        &self,
        table: &Table,
        batches: Vec<RecordBatch>,
        from: Option<(u64, &Offsets)>,
    ) -> Result<u64> {
        // Rows as ingested: a rolled-up table may store fewer.
        let window = crate::limits::TimeWindow::of(&table.def);
        let (mut ingested, mut dropped) = (0, 0);
        let mut stored = Vec::with_capacity(batches.len());
        for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
            let valid = validate_batch(&table.def, batch)?;
            let valid = match &window {
                Some(window) => {
                    let (kept, left_out) = window.admit(valid)?;
                    dropped += left_out;
                    kept
                }
                None => valid,
            };
            ingested += valid.num_rows() as u64;
            if valid.num_rows() > 0 {
                stored.push(crate::rollup::ingest(&table.def, valid)?);
            }
        }
        self.append_stored(table, stored, from).await?;
        table.count_dropped(dropped);
        Ok(ingested)
    }

    /// [`Engine::append`] of stored rows (checked against the table, rolled up); returns
    /// how many there are.
    pub(crate) async fn append_valid(
        &self,
        table: &Table,
        batches: Vec<RecordBatch>,
    ) -> Result<u64> {
        self.append_stored(table, batches, None).await
    }

    async fn append_stored(
        &self,
        table: &Table,
        batches: Vec<RecordBatch>,
        from: Option<(u64, &Offsets)>,
    ) -> Result<u64> {
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        if rows == 0 && from.is_none() {
            return Ok(0);
        }
        let bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
        let _reservation = self.memory.reserve(bytes, || self.buffered_bytes()).await?;
        let writing = table.dml.read().await;
        if !self.is_current(table) {
            return Err(self.not_current(table));
        }
        let gate = self.gate.read().await;
        self.wal
            .append_from(table.def.id, table.schema.clone(), &batches, from)
            .await?;
        table.buffer.append(&batches)?;
        let evaluated = self.observe_rows(&table.def, &batches);
        if let Some((pipeline, offsets)) = from {
            self.stream_offsets.lock().insert(pipeline, offsets.clone());
            self.offsets_logged.store(true, Ordering::Relaxed);
        }
        drop((gate, writing));
        crate::observe::settled(evaluated).await;
        Ok(rows)
    }

    /// The offsets of pipeline `id` whose rows are durable (none for a pipeline that has
    /// read nothing yet).
    pub fn pipeline_offsets(&self, id: u64) -> Offsets {
        self.stream_offsets
            .lock()
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    /// A new, unused piece identity of `table` for the chunk starting at `start`.
    pub(crate) fn new_piece(&self, table: &TableDef, start: i64) -> Result<SegmentMeta> {
        let number = self.next_piece.fetch_add(1, Ordering::Relaxed);
        if number == u32::MAX {
            return Err(Error::Internal("piece numbers are exhausted".into()));
        }
        Ok(SegmentMeta {
            table_id: table.id,
            start,
            end: table.segment_granularity.chunk_end(start),
            version: henge_storage::PIECE_VERSION,
            partition: number,
            rows: 0,
            bytes: 0,
            crc: 0,
        })
    }

    /// Writes `batches` (rows of one chunk of `def`) as the segment file of `segment`,
    /// filling in its size, and returns the file's bytes.
    pub(crate) async fn write_file(
        &self,
        def: &Arc<TableDef>,
        segment: &mut SegmentMeta,
        batches: Vec<RecordBatch>,
    ) -> Result<bytes::Bytes> {
        self.write_segment_file(def, segment, batches, false).await
    }

    /// [`Engine::write_file`] of rows already in a segment's order
    /// ([`henge_storage::segment::sorted_rows`]).
    pub(crate) async fn write_sorted_file(
        &self,
        def: &Arc<TableDef>,
        segment: &mut SegmentMeta,
        batches: Vec<RecordBatch>,
    ) -> Result<bytes::Bytes> {
        self.write_segment_file(def, segment, batches, true).await
    }

    async fn write_segment_file(
        &self,
        def: &Arc<TableDef>,
        segment: &mut SegmentMeta,
        batches: Vec<RecordBatch>,
        sorted: bool,
    ) -> Result<bytes::Bytes> {
        let path = self.cache.path(segment);
        let def = def.clone();
        let file = tokio::task::spawn_blocking(move || match sorted {
            true => write_sorted_segment(&def, batches, &path),
            false => write_segment(&def, batches, &path),
        })
        .await
        .map_err(|e| Error::Internal(format!("segment writer failed: {e}")))??;
        segment.rows = file.rows;
        segment.bytes = file.contents.len() as u64;
        segment.crc = file.crc;
        Ok(file.contents)
    }

    /// Stops the write-ahead log after the writes in flight are durable.
    pub fn close(&self) {
        self.wal.close();
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tables", &self.tables().len())
            .finish_non_exhaustive()
    }
}

/// The rows of one chunk combined as the table's rollup allows (unchanged without rollup).
pub(crate) fn rolled_up(def: &TableDef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    if !def.rollup || batches.is_empty() {
        return Ok(batches);
    }
    Ok(vec![crate::rollup::combine(def, &batches)?])
}

/// Splits batches into groups of at most `max_rows` rows and (but for a single piece of
/// [`PIECE_ROWS`]) `max_bytes` bytes of variable-length values, in order.
pub(crate) fn split_rows(
    batches: &[RecordBatch],
    max_rows: usize,
    max_bytes: usize,
) -> Vec<Vec<RecordBatch>> {
    let max_rows = max_rows.max(1);
    let mut groups: Vec<Vec<RecordBatch>> = vec![Vec::new()];
    let (mut rows, mut bytes) = (0usize, 0usize);
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if rows >= max_rows {
                groups.push(Vec::new());
                rows = 0;
                bytes = 0;
            }
            let take = (batch.num_rows() - offset)
                .min(PIECE_ROWS)
                .min(max_rows - rows);
            let piece = batch.slice(offset, take);
            let size = value_bytes(&piece);
            if rows > 0 && bytes + size > max_bytes {
                groups.push(Vec::new());
                rows = 0;
                bytes = 0;
            }
            if let Some(group) = groups.last_mut() {
                group.push(piece);
            }
            rows += take;
            bytes += size;
            offset += take;
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// Bytes of text and bytea values in a batch.
fn value_bytes(batch: &RecordBatch) -> usize {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType;
    batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8 => byte_span(c.as_string::<i32>().value_offsets()),
            DataType::Binary => byte_span(c.as_binary::<i32>().value_offsets()),
            _ => 0,
        })
        .sum()
}

fn byte_span(offsets: &[i32]) -> usize {
    match (offsets.first(), offsets.last()) {
        (Some(&first), Some(&last)) => usize::try_from(last - first).unwrap_or(0),
        _ => 0,
    }
}

/// The `file://` URL of a local directory.
fn url_of_dir(dir: &Path) -> Result<String> {
    url::Url::from_directory_path(dir)
        .map(String::from)
        .map_err(|()| Error::Internal(format!("{} cannot be a file:// URL", dir.display())))
}

/// Logged rows in the table's layout: the same columns, of the same types. A field's
/// metadata may differ (a later version names an extension type for a column type the
/// log's writer did not): the rows are then given the table's schema. `None` where the
/// columns differ.
fn in_layout(schema: &SchemaRef, batches: &[RecordBatch]) -> Option<Vec<RecordBatch>> {
    let same = |a: &arrow::datatypes::Field, b: &arrow::datatypes::Field| {
        a.name() == b.name() && a.data_type() == b.data_type() && a.is_nullable() == b.is_nullable()
    };
    batches
        .iter()
        .map(|b| {
            let fields = b.schema_ref().fields();
            let alike = fields.len() == schema.fields().len()
                && fields.iter().zip(schema.fields()).all(|(a, b)| same(a, b));
            alike
                .then(|| RecordBatch::try_new(schema.clone(), b.columns().to_vec()).ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(rows: usize, text: &str) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    text, rows,
                ))),
            ],
        )
        .unwrap()
    }

    fn shape(groups: &[Vec<RecordBatch>]) -> Vec<usize> {
        groups
            .iter()
            .map(|g| g.iter().map(|b| b.num_rows()).sum())
            .collect()
    }

    #[test]
    fn parts_are_bounded_by_rows_and_by_bytes() {
        let batches = vec![batch(100_000, "x"), batch(50_000, "y")];
        assert_eq!(
            shape(&split_rows(&batches, 70_000, usize::MAX)),
            vec![70_000, 70_000, 10_000]
        );
        // 10 bytes a row, at most 1 MB a part: two pieces of 65,536 rows do not fit together.
        let batches = vec![batch(200_000, "0123456789")];
        assert_eq!(
            shape(&split_rows(&batches, usize::MAX, 1_000_000)),
            vec![65_536, 65_536, 68_928]
        );
        assert!(split_rows(&[], 10, 10).is_empty());
        let groups = split_rows(&batches, 5_000_000, 1 << 30);
        assert_eq!(shape(&groups), vec![200_000]);
    }

    #[test]
    fn logged_rows_take_the_table_fields_metadata() {
        let logged = batch(3, "x");
        let named = |name: &str| {
            Field::new("s", DataType::Utf8, false).with_metadata(
                [("ARROW:extension:name".to_owned(), name.to_owned())]
                    .into_iter()
                    .collect(),
            )
        };
        let table = |s: Field| {
            Arc::new(Schema::new(vec![
                Field::new("v", DataType::Int64, false),
                s,
            ]))
        };
        let varchar = table(named("henge.varchar"));
        let replayed = in_layout(&varchar, std::slice::from_ref(&logged)).unwrap();
        assert_eq!(replayed[0].schema(), varchar);
        assert_eq!(replayed[0].num_rows(), 3);
        // Of the same layout, the rows are kept as they are.
        let plain = logged.schema();
        assert_eq!(
            in_layout(&plain, std::slice::from_ref(&logged)).unwrap()[0].schema(),
            plain
        );
        // Another column type: not the table's rows.
        assert!(in_layout(
            &table(Field::new("s", DataType::Int64, false)),
            std::slice::from_ref(&logged)
        )
        .is_none());
        assert!(in_layout(&table(Field::new("t", DataType::Utf8, false)), &[logged]).is_none());
    }
}
