//! The real-time buffer: rows acknowledged but not yet in segments, held in memory and
//! grouped by time chunk, together with the table's published segments.
//!
//! Both sit behind one lock, so a query's snapshot holds every row exactly once: a
//! CHECKPOINT first freezes the buffered rows (they stay readable while their segments are
//! written) and later swaps them for the published segments in one step.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use arrow::array::{Array, RecordBatch, TimestampMicrosecondArray, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use henge_storage::{visible, SegmentMeta, TableDef};

use crate::error::{Error, Result};

/// Small batches (single-row INSERTs) are merged once this many pile up in a chunk.
const MERGE_SMALL_BATCHES: usize = 64;
/// A batch smaller than this counts as small.
const SMALL_BATCH_ROWS: usize = 4096;

#[derive(Debug, Default, Clone)]
struct Chunk {
    batches: Vec<RecordBatch>,
    rows: usize,
    /// How many of the last batches are small.
    small_tail: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Rows taking writes, by time chunk start (microseconds since the epoch).
    chunks: BTreeMap<i64, Chunk>,
    /// Rows frozen by a CHECKPOINT whose segments are being written.
    persisting: BTreeMap<i64, Vec<RecordBatch>>,
    /// The table's published segments.
    segments: Vec<SegmentMeta>,
}

/// What a query reads of one table: segments and in-memory rows, each row exactly once.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Published segments not overshadowed by newer versions.
    pub segments: Vec<SegmentMeta>,
    pub batches: Vec<RecordBatch>,
}

/// One time chunk's rows still in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferedChunk {
    pub start: i64,
    pub rows: usize,
    pub bytes: usize,
    /// Frozen by a CHECKPOINT that is writing it to a segment.
    pub persisting: bool,
}

/// The in-memory rows of one table and its published segments.
#[derive(Debug)]
pub struct RealtimeBuffer {
    def: Arc<TableDef>,
    schema: SchemaRef,
    state: RwLock<State>,
}

impl RealtimeBuffer {
    pub fn new(
        def: Arc<TableDef>,
        schema: SchemaRef,
        segments: Vec<SegmentMeta>,
    ) -> RealtimeBuffer {
        RealtimeBuffer {
            def,
            schema,
            state: RwLock::new(State {
                segments,
                ..State::default()
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds rows, each to the chunk its time column places it in.
    pub fn append(&self, batches: &[RecordBatch]) -> Result<()> {
        let mut parts: Vec<(i64, RecordBatch)> = Vec::new();
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            split_by_chunk(&self.def, batch, &mut parts)?;
        }
        let mut state = self.write();
        for (start, part) in parts {
            let chunk = state.chunks.entry(start).or_default();
            chunk.rows += part.num_rows();
            chunk.small_tail = if part.num_rows() < SMALL_BATCH_ROWS {
                chunk.small_tail + 1
            } else {
                0
            };
            chunk.batches.push(part);
            if chunk.small_tail >= MERGE_SMALL_BATCHES {
                let from = chunk.batches.len() - chunk.small_tail;
                let merged = concat_batches(&self.schema, &chunk.batches[from..])
                    .map_err(|e| Error::Internal(e.to_string()))?;
                chunk.batches.truncate(from);
                chunk.small_tail = usize::from(merged.num_rows() < SMALL_BATCH_ROWS);
                chunk.batches.push(merged);
            }
        }
        Ok(())
    }

    /// A consistent view of the table: its visible segments and a copy of every buffered
    /// batch (cheap: the arrays are shared).
    pub fn snapshot(&self) -> Snapshot {
        let state = self.read();
        let persisting = state.persisting.values().flatten().cloned();
        let active = state
            .chunks
            .values()
            .flat_map(|c| c.batches.iter().cloned());
        Snapshot {
            segments: visible(&state.segments),
            batches: persisting.chain(active).collect(),
        }
    }

    /// Number of rows in memory.
    pub fn rows(&self) -> usize {
        let state = self.read();
        let persisting: usize = state
            .persisting
            .values()
            .flatten()
            .map(|b| b.num_rows())
            .sum();
        persisting + state.chunks.values().map(|c| c.rows).sum::<usize>()
    }

    /// All published segments and every chunk in memory, read together so that no row is
    /// counted in both (or neither) while a CHECKPOINT swaps one for the other.
    pub fn contents(&self) -> (Vec<SegmentMeta>, Vec<BufferedChunk>) {
        let state = self.read();
        (state.segments.clone(), chunks_of(&state))
    }

    /// Freezes every buffered row for a CHECKPOINT and returns the frozen rows by chunk
    /// (including rows an earlier, failed CHECKPOINT froze). They stay readable until
    /// [`RealtimeBuffer::publish`] replaces them.
    pub fn freeze(&self) -> Vec<(i64, Vec<RecordBatch>)> {
        let mut state = self.write();
        let chunks = std::mem::take(&mut state.chunks);
        for (start, chunk) in chunks {
            state
                .persisting
                .entry(start)
                .or_default()
                .extend(chunk.batches);
        }
        state
            .persisting
            .iter()
            .map(|(start, batches)| (*start, batches.clone()))
            .collect()
    }

    /// Replaces the frozen rows with the segments that now hold them, in one step.
    pub fn publish(&self, segments: Vec<SegmentMeta>) {
        let mut state = self.write();
        state.persisting.clear();
        state.segments.extend(segments);
    }
}

fn chunks_of(state: &State) -> Vec<BufferedChunk> {
    let frozen = state
        .persisting
        .iter()
        .map(|(&start, batches)| BufferedChunk {
            start,
            rows: batches.iter().map(|b| b.num_rows()).sum(),
            bytes: batches.iter().map(|b| b.get_array_memory_size()).sum(),
            persisting: true,
        });
    let active = state.chunks.iter().map(|(&start, c)| BufferedChunk {
        start,
        rows: c.rows,
        bytes: c.batches.iter().map(|b| b.get_array_memory_size()).sum(),
        persisting: false,
    });
    frozen.chain(active).collect()
}

/// Splits `batch` by time chunk and appends the pieces to `out`.
fn split_by_chunk(
    def: &TableDef,
    batch: &RecordBatch,
    out: &mut Vec<(i64, RecordBatch)>,
) -> Result<()> {
    let granularity = def.segment_granularity;
    let times = def.time_column_index().and_then(|i| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
    });
    let Some(times) = times else {
        out.push((i64::MIN, batch.clone()));
        return Ok(());
    };
    if times.null_count() > 0 {
        return Err(Error::NotNull {
            table: def.name.clone(),
            column: def.time_column.clone().unwrap_or_default(),
        });
    }
    let values = times.values();
    let first = granularity.chunk_start(values[0]);
    let end = granularity.chunk_end(first);
    if values.iter().all(|&t| t >= first && t < end) {
        out.push((first, batch.clone()));
        return Ok(());
    }
    let mut by_chunk: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (row, &t) in values.iter().enumerate() {
        by_chunk
            .entry(granularity.chunk_start(t))
            .or_default()
            .push(row as u32);
    }
    for (start, rows) in by_chunk {
        let part = take_record_batch(batch, &UInt32Array::from(rows))
            .map_err(|e| Error::Internal(e.to_string()))?;
        out.push((start, part));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, TimestampMicrosecondArray};
    use henge_storage::{ColumnDef, ColumnType, Granularity};

    const HOUR: i64 = 3_600_000_000;

    fn def() -> Arc<TableDef> {
        Arc::new(TableDef {
            id: 1,
            name: "t".into(),
            columns: vec![
                ColumnDef {
                    name: "ts".into(),
                    ty: ColumnType::Timestamp,
                    nullable: false,
                },
                ColumnDef {
                    name: "v".into(),
                    ty: ColumnType::BigInt,
                    nullable: true,
                },
            ],
            time_column: Some("ts".into()),
            segment_granularity: Granularity::Hour,
        })
    }

    fn batch(def: &TableDef, times: Vec<i64>) -> RecordBatch {
        let n = times.len() as i64;
        RecordBatch::try_new(
            def.arrow_schema(),
            vec![
                Arc::new(TimestampMicrosecondArray::from(times)),
                Arc::new(Int64Array::from((0..n).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rows_go_to_their_chunks() {
        let def = def();
        let buffer = RealtimeBuffer::new(def.clone(), def.arrow_schema(), Vec::new());
        buffer
            .append(&[batch(&def, vec![0, 2 * HOUR + 5, 1, HOUR, 2 * HOUR])])
            .unwrap();
        let chunks: Vec<(i64, usize)> = buffer
            .contents()
            .1
            .iter()
            .map(|c| (c.start, c.rows))
            .collect();
        assert_eq!(chunks, vec![(0, 2), (HOUR, 1), (2 * HOUR, 2)]);
        assert_eq!(buffer.rows(), 5);
    }

    #[test]
    fn many_small_appends_are_merged_without_losing_rows() {
        let def = def();
        let buffer = RealtimeBuffer::new(def.clone(), def.arrow_schema(), Vec::new());
        for i in 0..1000 {
            buffer.append(&[batch(&def, vec![i])]).unwrap();
        }
        let snapshot = buffer.snapshot().batches;
        assert!(snapshot.len() < 100, "{} batches", snapshot.len());
        assert_eq!(snapshot.iter().map(|b| b.num_rows()).sum::<usize>(), 1000);
    }
}
