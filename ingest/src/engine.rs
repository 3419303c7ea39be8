//! The write path's entry point: tables, their real-time buffers and the log behind them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use henge_storage::segment::write_segment;
use henge_storage::{DeepStorage, MetadataStore, SegmentCache, SegmentMeta, TableDef};

use crate::buffer::RealtimeBuffer;
use crate::error::{Error, Result};
use crate::rows::validate_batch;
use crate::wal::Wal;

/// A table that can be written and read.
#[derive(Debug)]
pub struct Table {
    pub def: Arc<TableDef>,
    /// The Arrow schema of the rows, made once from `def`.
    pub schema: SchemaRef,
    pub buffer: RealtimeBuffer,
}

impl Table {
    fn new(def: TableDef, segments: Vec<SegmentMeta>) -> Table {
        let def = Arc::new(def);
        let schema = def.arrow_schema();
        Table {
            buffer: RealtimeBuffer::new(def.clone(), schema.clone(), segments),
            schema,
            def,
        }
    }
}

/// A CHECKPOINT writes segments of at most this many rows (more become more partitions).
pub const MAX_SEGMENT_ROWS: usize = 5_000_000;
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
}

/// All tables of a data directory and the write-ahead log that makes writes durable.
pub struct Engine {
    metadata: MetadataStore,
    cache: SegmentCache,
    wal: Wal,
    tables: RwLock<HashMap<String, Arc<Table>>>,
    /// Serialises CREATE and DROP so the metadata file and the table map change together.
    ddl: Mutex<()>,
    /// Appends hold it shared from the log write until their rows are in the buffer; a
    /// CHECKPOINT holds it exclusively while it rotates the log and freezes the buffers, so
    /// every row in a log file before the rotation is among the frozen rows.
    gate: tokio::sync::RwLock<()>,
    /// One CHECKPOINT at a time.
    checkpoint: tokio::sync::Mutex<()>,
    /// Bumped by every CREATE and DROP, so cached query plans know to re-plan.
    generation: AtomicU64,
}

impl Engine {
    /// Opens the data directory: loads the catalog and replays the write-ahead log into the
    /// real-time buffers.
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
        let (wal, records) = Wal::open(
            &data_dir.join("wal"),
            options.wal_fsync,
            metadata.wal_start(),
        )?;
        let segments = metadata.segments();
        let tables: HashMap<String, Arc<Table>> = metadata
            .tables()
            .into_iter()
            .map(|def| {
                let own = segments
                    .iter()
                    .filter(|s| s.table_id == def.id)
                    .cloned()
                    .collect();
                (def.name.clone(), Arc::new(Table::new(def, own)))
            })
            .collect();
        let by_id: HashMap<u64, &Arc<Table>> = tables.values().map(|t| (t.def.id, t)).collect();
        let (mut replayed, mut skipped) = (0usize, 0usize);
        for record in records {
            match by_id.get(&record.table_id) {
                Some(table) if schemas_match(&table.schema, &record.batches) => {
                    replayed += record.batches.iter().map(|b| b.num_rows()).sum::<usize>();
                    table.buffer.append(&record.batches)?;
                }
                // Rows of a table dropped since they were written.
                _ => skipped += 1,
            }
        }
        tracing::info!(
            data_dir = %data_dir.display(),
            tables = tables.len(),
            segments = segments.len(),
            deep_storage = %deep_url,
            replayed_rows = replayed,
            skipped_records = skipped,
            "data directory opened"
        );
        Ok(Engine {
            metadata,
            cache,
            wal,
            tables: RwLock::new(tables),
            ddl: Mutex::new(()),
            gate: tokio::sync::RwLock::new(()),
            checkpoint: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        })
    }

    /// The table called `name`, if it exists.
    pub fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Every table, ordered by name.
    pub fn tables(&self) -> Vec<Arc<Table>> {
        let mut tables: Vec<_> = self
            .tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        tables.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        tables
    }

    /// Changes whenever a table is created or dropped.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Creates a table from a validated definition (its `id` is assigned here).
    pub fn create_table(&self, def: TableDef) -> Result<Arc<Table>> {
        let _ddl = self.ddl.lock().unwrap_or_else(|e| e.into_inner());
        let def = self.metadata.create(def)?;
        let table = Arc::new(Table::new(def, Vec::new()));
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(table.def.name.clone(), table.clone());
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(table = %table.def.name, id = table.def.id, "table created");
        Ok(table)
    }

    /// Drops a table, its rows and its segment files.
    pub async fn drop_table(&self, name: &str) -> Result<()> {
        let segments = {
            let _ddl = self.ddl.lock().unwrap_or_else(|e| e.into_inner());
            let (_, segments) = self.metadata.drop_table(name)?;
            self.tables
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            self.generation.fetch_add(1, Ordering::SeqCst);
            segments
        };
        tracing::info!(table = %name, segments = segments.len(), "table dropped");
        self.remove_files(&segments).await;
        Ok(())
    }

    /// Deletes segment files nothing refers to any more; failures only leave garbage.
    async fn remove_files(&self, segments: &[SegmentMeta]) {
        for segment in segments {
            if let Err(e) = self.cache.remove(segment).await {
                tracing::warn!(file = %segment.file_name(), error = %e, "could not delete a segment file");
            }
        }
    }

    /// Rows in memory, over all tables (including rows a failed CHECKPOINT left frozen,
    /// so an automatic CHECKPOINT retries them).
    pub fn buffered_rows(&self) -> usize {
        self.tables().iter().map(|t| t.buffer.rows()).sum()
    }

    /// The local copies of published segments, for queries.
    pub fn segment_cache(&self) -> &SegmentCache {
        &self.cache
    }

    /// Moves every buffered row into segments: writes them (one or more per time chunk),
    /// uploads them to deep storage, publishes them and trims the write-ahead log. Queries
    /// running meanwhile see every row exactly once: the rows stay readable in memory until
    /// the published segments replace them in one step.
    pub async fn checkpoint(&self) -> Result<CheckpointReport> {
        let _one = self.checkpoint.lock().await;
        let (wal_start, frozen) = {
            let _gate = self.gate.write().await;
            let wal_start = self.wal.rotate().await?;
            let frozen: Vec<_> = self
                .tables()
                .into_iter()
                .map(|t| {
                    let chunks = t.buffer.freeze();
                    (t, chunks)
                })
                .collect();
            (wal_start, frozen)
        };

        let mut planned: Vec<SegmentMeta> = Vec::new();
        let mut by_table: Vec<(Arc<Table>, Vec<SegmentMeta>)> = Vec::new();
        for (table, chunks) in frozen {
            let mut written = Vec::new();
            for (start, batches) in chunks {
                let end = table.def.segment_granularity.chunk_end(start);
                for part in split_rows(&batches, MAX_SEGMENT_ROWS, MAX_SEGMENT_VALUE_BYTES) {
                    let (version, partition) =
                        self.metadata
                            .next_identity(table.def.id, start, end, &planned);
                    let mut segment = SegmentMeta {
                        table_id: table.def.id,
                        start,
                        end,
                        version,
                        partition,
                        rows: 0,
                        bytes: 0,
                        crc: 0,
                    };
                    let path = self.cache.path(&segment);
                    let def = table.def.clone();
                    let file =
                        tokio::task::spawn_blocking(move || write_segment(&def, &part, &path))
                            .await
                            .map_err(|e| {
                                Error::Internal(format!("segment writer failed: {e}"))
                            })??;
                    segment.rows = file.rows;
                    segment.bytes = file.contents.len() as u64;
                    segment.crc = file.crc;
                    self.cache.upload(&segment, file.contents).await?;
                    planned.push(segment.clone());
                    written.push(segment);
                }
            }
            by_table.push((table, written));
        }

        let orphans = self.metadata.publish(planned.clone(), wal_start)?;
        for (table, segments) in by_table {
            table.buffer.publish(segments);
        }
        // The rows are published: a log file left behind is replayed from `wal_start` on
        // only, so failing to delete it wastes space but changes nothing.
        if let Err(e) = self.wal.trim(wal_start) {
            tracing::warn!(error = %e, "could not delete write-ahead log files behind a checkpoint");
        }
        self.remove_files(&orphans).await;
        let report = CheckpointReport {
            segments: planned.len() - orphans.len(),
            rows: planned.iter().map(|s| s.rows).sum(),
            bytes: planned.iter().map(|s| s.bytes).sum(),
        };
        tracing::info!(
            segments = report.segments,
            rows = report.rows,
            bytes = report.bytes,
            wal_start,
            "checkpoint done"
        );
        Ok(report)
    }

    /// Writes the rows of one statement: all of them or, on any error, none. When this
    /// returns `Ok`, the rows are in the fsynced log and visible to every later query.
    pub async fn append(&self, table: &Table, batches: Vec<RecordBatch>) -> Result<u64> {
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        for batch in &batches {
            validate_batch(&table.def, batch)?;
        }
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        if rows == 0 {
            return Ok(0);
        }
        if self.table(&table.def.name).map(|t| t.def.id) != Some(table.def.id) {
            return Err(Error::TableNotFound(table.def.name.clone()));
        }
        let _gate = self.gate.read().await;
        self.wal
            .append(table.def.id, table.schema.clone(), &batches)
            .await?;
        table.buffer.append(&batches)?;
        Ok(rows)
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

/// Splits batches into groups of at most `max_rows` rows and (but for a single piece of
/// [`PIECE_ROWS`]) `max_bytes` bytes of variable-length values, in order.
fn split_rows(batches: &[RecordBatch], max_rows: usize, max_bytes: usize) -> Vec<Vec<RecordBatch>> {
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

fn schemas_match(schema: &SchemaRef, batches: &[RecordBatch]) -> bool {
    batches
        .iter()
        .all(|b| b.schema().fields() == schema.fields())
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
}
