//! The real-time buffer: rows acknowledged but not yet handed off, grouped by time chunk,
//! together with the table's published segments.
//!
//! A row passes through three states here, Druid's real-time node on one machine:
//! in memory (taking writes), persisted (written to a local piece file by a persist, still
//! queryable from there, the log trimmed behind it), and published (merged into segments
//! of deep storage by a hand-off). Everything sits behind one lock, so a query's snapshot
//! holds every row exactly once: a persist first freezes the rows in memory (they stay
//! readable while their pieces are written) and later swaps them for the pieces in one
//! step, and a hand-off swaps pieces for published segments in one step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, RecordBatch, TimestampMicrosecondArray, UInt32Array};
use arrow::compute::take_record_batch;
use henge_storage::{visible, SegmentMeta, TableDef};
use parking_lot::RwLock;

use crate::error::{Error, Result};

/// Small batches (single-row INSERTs) are merged once this many pile up in a chunk.
const MERGE_SMALL_BATCHES: usize = 64;
/// A batch smaller than this counts as small.
const SMALL_BATCH_ROWS: usize = 4096;

#[derive(Debug, Default, Clone)]
struct Chunk {
    batches: Vec<RecordBatch>,
    rows: usize,
    /// Memory the batches hold.
    bytes: usize,
    /// How many of the last batches are small.
    small_tail: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Rows taking writes, by time chunk start (microseconds since the epoch).
    chunks: BTreeMap<i64, Chunk>,
    /// When the oldest row of `chunks` arrived.
    oldest: Option<Instant>,
    /// Rows frozen by a persist whose pieces are being written.
    persisting: BTreeMap<i64, Vec<RecordBatch>>,
    /// Memory the frozen rows hold.
    persisting_bytes: usize,
    /// Persisted pieces: on local disk, not handed off yet.
    pieces: Vec<SegmentMeta>,
    /// The table's published segments.
    segments: Vec<SegmentMeta>,
    /// Those of them no newer version overshadows: what queries read, kept up to date as
    /// segments come and go rather than worked out for every query.
    visible: Vec<SegmentMeta>,
    /// When rows last reached each chunk (in memory or as pieces), for hand-off.
    last_write: BTreeMap<i64, Instant>,
}

/// What a query reads of one table: segments and in-memory rows, each row exactly once.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Published segments not overshadowed by newer versions, and the persisted pieces.
    pub segments: Vec<SegmentMeta>,
    pub batches: Vec<RecordBatch>,
}

/// One time chunk's rows still in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferedChunk {
    pub start: i64,
    pub rows: usize,
    pub bytes: usize,
    /// Frozen by a persist that is writing it to local pieces.
    pub persisting: bool,
}

/// Sizes of what a table holds before hand-off, for the persist triggers and `sys.ingest`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferStats {
    /// Rows and memory in memory, frozen ones included.
    pub rows: usize,
    pub bytes: usize,
    /// The largest chunk taking writes, in rows and in bytes.
    pub max_chunk_rows: usize,
    pub max_chunk_bytes: usize,
    /// When the oldest row taking writes arrived.
    pub oldest: Option<Instant>,
    /// Persisted pieces, their rows and their file bytes.
    pub pieces: usize,
    pub piece_rows: u64,
    pub piece_bytes: u64,
}

/// Everything a table holds, for `sys.segments`.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// Every published segment, overshadowed ones included.
    pub segments: Vec<SegmentMeta>,
    pub pieces: Vec<SegmentMeta>,
    pub chunks: Vec<BufferedChunk>,
}

/// The rows of one table before hand-off, and its published segments.
#[derive(Debug)]
pub struct RealtimeBuffer {
    def: Arc<TableDef>,
    state: RwLock<State>,
}

impl RealtimeBuffer {
    pub fn new(
        def: Arc<TableDef>,
        segments: Vec<SegmentMeta>,
        pieces: Vec<SegmentMeta>,
    ) -> RealtimeBuffer {
        // Pieces found at start count as written now: their chunks get a whole window
        // period for late rows again before hand-off.
        let now = Instant::now();
        let last_write = pieces.iter().map(|p| (p.start, now)).collect();
        RealtimeBuffer {
            def,
            state: RwLock::new(State {
                visible: visible(&segments),
                segments,
                pieces,
                last_write,
                ..State::default()
            }),
        }
    }

    /// Adds rows, each to the chunk its time column places it in.
    pub fn append(&self, batches: &[RecordBatch]) -> Result<()> {
        let mut parts: Vec<(i64, RecordBatch)> = Vec::new();
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            split_by_chunk(&self.def, batch, &mut parts)?;
        }
        let mut state = self.state.write();
        if !parts.is_empty() && state.oldest.is_none() {
            state.oldest = Some(Instant::now());
        }
        let now = Instant::now();
        for (start, part) in parts {
            state.last_write.insert(start, now);
            let chunk = state.chunks.entry(start).or_default();
            chunk.rows += part.num_rows();
            chunk.bytes += part.get_array_memory_size();
            chunk.small_tail = if part.num_rows() < SMALL_BATCH_ROWS {
                chunk.small_tail + 1
            } else {
                0
            };
            chunk.batches.push(part);
            if chunk.small_tail >= MERGE_SMALL_BATCHES {
                let from = chunk.batches.len() - chunk.small_tail;
                let merged = crate::rollup::combine(&self.def, &chunk.batches[from..])?;
                let before: usize = chunk.batches[from..]
                    .iter()
                    .map(|b| b.get_array_memory_size())
                    .sum();
                let rows_before: usize = chunk.batches[from..].iter().map(|b| b.num_rows()).sum();
                chunk.bytes = chunk.bytes - before + merged.get_array_memory_size();
                // Rollup may have combined rows.
                chunk.rows = chunk.rows - rows_before + merged.num_rows();
                chunk.batches.truncate(from);
                chunk.small_tail = usize::from(merged.num_rows() < SMALL_BATCH_ROWS);
                chunk.batches.push(merged);
            }
        }
        Ok(())
    }

    /// A consistent view of the table: its visible segments, its pieces and a copy of every
    /// batch in memory (cheap: the arrays are shared).
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.read();
        let persisting = state.persisting.values().flatten().cloned();
        let active = state
            .chunks
            .values()
            .flat_map(|c| c.batches.iter().cloned());
        let mut segments = state.visible.clone();
        segments.extend(state.pieces.iter().cloned());
        Snapshot {
            segments,
            batches: persisting.chain(active).collect(),
        }
    }

    /// Number of rows in memory.
    pub fn rows(&self) -> usize {
        self.stats().rows
    }

    /// Sizes of the rows in memory and of the pieces.
    pub fn stats(&self) -> BufferStats {
        let state = self.state.read();
        let persisting: usize = state
            .persisting
            .values()
            .flatten()
            .map(|b| b.num_rows())
            .sum();
        let active_bytes: usize = state.chunks.values().map(|c| c.bytes).sum();
        BufferStats {
            rows: persisting + state.chunks.values().map(|c| c.rows).sum::<usize>(),
            bytes: state.persisting_bytes + active_bytes,
            max_chunk_rows: state.chunks.values().map(|c| c.rows).max().unwrap_or(0),
            max_chunk_bytes: state.chunks.values().map(|c| c.bytes).max().unwrap_or(0),
            oldest: state.oldest,
            pieces: state.pieces.len(),
            piece_rows: state.pieces.iter().map(|p| p.rows).sum(),
            piece_bytes: state.pieces.iter().map(|p| p.bytes).sum(),
        }
    }

    /// Memory the rows in memory hold (frozen ones included): what the ingest budget
    /// counts, asked for every batch a writer brings, so kept cheap.
    pub fn bytes(&self) -> usize {
        let state = self.state.read();
        state.persisting_bytes + state.chunks.values().map(|c| c.bytes).sum::<usize>()
    }

    /// The published segments a newer version overshadows (none, usually: found without
    /// comparing when every segment is visible).
    pub fn overshadowed(&self) -> Vec<SegmentMeta> {
        let state = self.state.read();
        if state.visible.len() == state.segments.len() {
            return Vec::new();
        }
        let shown: std::collections::HashSet<String> =
            state.visible.iter().map(|s| s.file_name()).collect();
        state
            .segments
            .iter()
            .filter(|s| !shown.contains(&s.file_name()))
            .cloned()
            .collect()
    }

    /// The published segments no newer version overshadows.
    pub fn visible_segments(&self) -> Vec<SegmentMeta> {
        self.state.read().visible.clone()
    }

    /// [`RealtimeBuffer::visible_segments`] by interval, in time order.
    pub fn visible_by_interval(&self) -> BTreeMap<(i64, i64), Vec<SegmentMeta>> {
        let mut intervals: BTreeMap<(i64, i64), Vec<SegmentMeta>> = BTreeMap::new();
        for segment in self.state.read().visible.iter() {
            intervals
                .entry((segment.start, segment.end))
                .or_default()
                .push(segment.clone());
        }
        intervals
    }

    /// All published segments, the pieces and every chunk in memory, read together so that
    /// no row is counted in two places (or none) while a persist or hand-off moves it.
    pub fn contents(&self) -> Contents {
        let state = self.state.read();
        Contents {
            segments: state.segments.clone(),
            pieces: state.pieces.clone(),
            chunks: chunks_of(&state),
        }
    }

    /// The persisted pieces, in the order they were written.
    pub fn pieces(&self) -> Vec<SegmentMeta> {
        let mut pieces = self.state.read().pieces.clone();
        pieces.sort_by_key(|p| (p.start, p.partition));
        pieces
    }

    /// Freezes every row in memory for a persist and returns the frozen rows by chunk
    /// (including rows an earlier, failed persist froze). They stay readable until
    /// [`RealtimeBuffer::persisted`] replaces them.
    pub fn freeze(&self) -> Vec<(i64, Vec<RecordBatch>)> {
        let mut state = self.state.write();
        let chunks = std::mem::take(&mut state.chunks);
        state.oldest = None;
        for (start, chunk) in chunks {
            state.persisting_bytes += chunk.bytes;
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

    /// Replaces the frozen rows with the pieces that now hold them, in one step.
    pub fn persisted(&self, pieces: Vec<SegmentMeta>) {
        let mut state = self.state.write();
        state.persisting.clear();
        state.persisting_bytes = 0;
        state.pieces.extend(pieces);
    }

    /// Adds pieces a large statement wrote and committed.
    pub fn add_pieces(&self, pieces: Vec<SegmentMeta>) {
        let mut state = self.state.write();
        let now = Instant::now();
        for piece in &pieces {
            state.last_write.insert(piece.start, now);
        }
        state.pieces.extend(pieces);
    }

    /// A statement's rewrite, in one step: publishes `segments`, forgets `forget` and adds
    /// `pieces`.
    pub fn rewritten(
        &self,
        segments: Vec<SegmentMeta>,
        forget: &[SegmentMeta],
        pieces: Vec<SegmentMeta>,
    ) {
        let mut state = self.state.write();
        state.segments.retain(|s| !forget.contains(s));
        state.segments.extend(segments);
        state.visible = visible(&state.segments);
        let now = Instant::now();
        for piece in &pieces {
            state.last_write.insert(piece.start, now);
        }
        state.pieces.extend(pieces);
    }

    /// Forgets published segments whose files are about to be deleted (overshadowed ones).
    pub fn forget(&self, segments: &[SegmentMeta]) {
        self.state
            .write()
            .segments
            .retain(|s| !segments.contains(s));
    }

    /// Starts of the chunks taking writes in memory (not those being persisted).
    pub fn chunks_in_memory(&self) -> Vec<i64> {
        self.state.read().chunks.keys().copied().collect()
    }

    /// Whether no row has reached the chunk starting at `start` for `period`.
    pub fn quiet_for(&self, start: i64, period: std::time::Duration) -> bool {
        self.state
            .read()
            .last_write
            .get(&start)
            .is_none_or(|at| at.elapsed() >= period)
    }

    /// Replaces `pieces` with the published `segments` that now hold their rows, in one step.
    pub fn handed_off(&self, pieces: &[SegmentMeta], segments: Vec<SegmentMeta>) {
        let mut state = self.state.write();
        state.pieces.retain(|p| !pieces.contains(p));
        state.segments.extend(segments);
        state.visible = visible(&state.segments);
        let State {
            last_write,
            chunks,
            persisting,
            pieces,
            ..
        } = &mut *state;
        last_write.retain(|start, _| {
            chunks.contains_key(start)
                || persisting.contains_key(start)
                || pieces.iter().any(|p| p.start == *start)
        });
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
        bytes: c.bytes,
        persisting: false,
    });
    frozen.chain(active).collect()
}

/// The time of each row of `batch` (microseconds), or `None` for a table without a time
/// column; a NULL time is refused as the NOT NULL violation it is.
pub(crate) fn row_times<'a>(def: &TableDef, batch: &'a RecordBatch) -> Result<Option<&'a [i64]>> {
    let times = def.time_column_index().and_then(|i| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
    });
    let Some(times) = times else {
        return Ok(None);
    };
    if times.null_count() > 0 {
        return Err(Error::NotNull {
            table: def.name.clone(),
            column: def.time_column.clone().unwrap_or_default(),
        });
    }
    Ok(Some(times.values()))
}

/// Splits `batch` by time chunk and appends the pieces to `out`.
pub(crate) fn split_by_chunk(
    def: &TableDef,
    batch: &RecordBatch,
    out: &mut Vec<(i64, RecordBatch)>,
) -> Result<()> {
    let granularity = def.segment_granularity;
    let Some(values) = row_times(def, batch)? else {
        out.push((i64::MIN, batch.clone()));
        return Ok(());
    };
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

/// Groups `batches` by time chunk: a batch within one chunk stays as it is, and the rows
/// of batches that span several are gathered into one new batch per chunk (one copy of
/// each row, where splitting batch by batch made a small batch per chunk of each).
pub(crate) fn group_by_chunk(
    def: &TableDef,
    batches: Vec<RecordBatch>,
) -> Result<BTreeMap<i64, Vec<RecordBatch>>> {
    let granularity = def.segment_granularity;
    let mut chunks: BTreeMap<i64, Vec<RecordBatch>> = BTreeMap::new();
    let mut mixed: Vec<RecordBatch> = Vec::new();
    let mut rows: BTreeMap<i64, Vec<(usize, usize)>> = BTreeMap::new();
    for batch in batches {
        let Some(values) = row_times(def, &batch)? else {
            chunks.entry(i64::MIN).or_default().push(batch);
            continue;
        };
        let Some(&t0) = values.first() else {
            continue;
        };
        let mut start = granularity.chunk_start(t0);
        let mut end = granularity.chunk_end(start);
        if values.iter().all(|&t| t >= start && t < end) {
            chunks.entry(start).or_default().push(batch);
            continue;
        }
        let b = mixed.len();
        for (row, &t) in values.iter().enumerate() {
            if !(start..end).contains(&t) {
                start = granularity.chunk_start(t);
                end = granularity.chunk_end(start);
            }
            rows.entry(start).or_default().push((b, row));
        }
        mixed.push(batch);
    }
    let sources: Vec<&RecordBatch> = mixed.iter().collect();
    for (start, indices) in rows {
        let part = arrow::compute::interleave_record_batch(&sources, &indices)
            .map_err(|e| Error::Internal(e.to_string()))?;
        chunks.entry(start).or_default().push(part);
    }
    Ok(chunks)
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
                    rollup: None,
                    default: None,
                },
                ColumnDef {
                    name: "v".into(),
                    ty: ColumnType::BigInt,
                    nullable: true,
                    rollup: None,
                    default: None,
                },
            ],
            time_column: Some("ts".into()),
            segment_granularity: Granularity::Hour,
            window_period_secs: henge_storage::schema::DEFAULT_WINDOW_PERIOD_SECS,
            rollup: false,
            query_granularity: None,
            limits: Default::default(),
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
    fn batches_are_grouped_by_chunk_with_one_batch_per_chunk_of_the_mixed_ones() {
        let def = def();
        let within = batch(&def, vec![HOUR, HOUR + 1]);
        let grouped = group_by_chunk(
            &def,
            vec![
                batch(&def, vec![0, 2 * HOUR + 5, 1]),
                within.clone(),
                batch(&def, vec![2 * HOUR, 7]),
            ],
        )
        .unwrap();
        let summary: Vec<(i64, Vec<Vec<i64>>)> = grouped
            .iter()
            .map(|(start, batches)| {
                let times = batches
                    .iter()
                    .map(|b| {
                        b.column(0)
                            .as_any()
                            .downcast_ref::<TimestampMicrosecondArray>()
                            .unwrap()
                            .values()
                            .to_vec()
                    })
                    .collect();
                (*start, times)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, vec![vec![0, 1, 7]]),
                (HOUR, vec![vec![HOUR, HOUR + 1]]),
                (2 * HOUR, vec![vec![2 * HOUR + 5, 2 * HOUR]]),
            ]
        );
        // A batch within one chunk is kept, not copied; every row's other values travel
        // with it.
        assert_eq!(grouped[&HOUR][0].column(1), within.column(1));
        let values = grouped[&0][0]
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec();
        assert_eq!(values, vec![0, 2, 1]);
    }

    #[test]
    fn rows_go_to_their_chunks() {
        let def = def();
        let buffer = RealtimeBuffer::new(def.clone(), Vec::new(), Vec::new());
        buffer
            .append(&[batch(&def, vec![0, 2 * HOUR + 5, 1, HOUR, 2 * HOUR])])
            .unwrap();
        let chunks: Vec<(i64, usize)> = buffer
            .contents()
            .chunks
            .iter()
            .map(|c| (c.start, c.rows))
            .collect();
        assert_eq!(chunks, vec![(0, 2), (HOUR, 1), (2 * HOUR, 2)]);
        assert_eq!(buffer.rows(), 5);
    }

    #[test]
    fn many_small_appends_are_merged_without_losing_rows() {
        let def = def();
        let buffer = RealtimeBuffer::new(def.clone(), Vec::new(), Vec::new());
        for i in 0..1000 {
            buffer.append(&[batch(&def, vec![i])]).unwrap();
        }
        let snapshot = buffer.snapshot().batches;
        assert!(snapshot.len() < 100, "{} batches", snapshot.len());
        assert_eq!(snapshot.iter().map(|b| b.num_rows()).sum::<usize>(), 1000);
    }
}
