//! Statements of any size: a staged write takes rows as they arrive (COPY FROM STDIN,
//! INSERT … SELECT), validated, and keeps them in memory only up to a stage limit; past it
//! the rows are written to local piece files that no query sees yet (spilled, not
//! collected). The statement becomes visible all at once when it is committed:
//! - if nothing was spilled, its rows go through the write-ahead log like any append;
//! - otherwise the rest is spilled too and one atomic metadata change records every piece
//!   (the statement's durable commit record); the pieces join the table's buffer in one
//!   step.
//!
//! A statement that fails, is dropped, or dies with the process leaves nothing visible:
//! its files are deleted on drop, or at the next start as files no metadata names.

use std::sync::Arc;

use arrow::array::RecordBatch;
use henge_storage::{failpoint, SegmentMeta};

use crate::buffer::{group_by_chunk, row_times};
use crate::engine::{split_rows, Engine, Table, MAX_SEGMENT_VALUE_BYTES};
use crate::error::{Error, Result};
use crate::memory::Reservation;

/// Rows of one statement on their way in.
#[derive(Debug)]
pub struct StagedWrite {
    engine: Arc<Engine>,
    table: Arc<Table>,
    batches: Vec<RecordBatch>,
    bytes: usize,
    rows: u64,
    reservation: Option<Reservation>,
    /// Spilled, not yet committed.
    pub(crate) pieces: Vec<SegmentMeta>,
    /// A spill still being written while more rows arrive (a bulk load parses the next
    /// rows on one core while the last ones become pieces on another).
    spilling: Option<Spilling>,
    /// Spill once the rows in memory take this many bytes.
    limit: usize,
    /// The table's time limits as of the statement's start.
    window: Option<crate::limits::TimeWindow>,
    /// Rows left out by them.
    dropped: u64,
}

/// A spill under way: its rows (still seen by the statement's own queries) and the memory
/// they hold until its pieces are written.
#[derive(Debug)]
struct Spilling {
    batches: Vec<RecordBatch>,
    bytes: usize,
    _reservation: Option<Reservation>,
    pieces: tokio::task::JoinHandle<Result<Vec<SegmentMeta>>>,
}

impl Engine {
    /// Starts a staged write of `table`.
    pub fn stage(self: &Arc<Self>, table: Arc<Table>) -> StagedWrite {
        // An eighth of the budget keeps several large statements in flight at once; up to
        // 256 MiB a spill keeps the pieces of a bulk load few (one per chunk per spill).
        let limit = (self.memory.limit() / 8).clamp(1 << 20, 256 << 20);
        StagedWrite {
            engine: self.clone(),
            window: crate::limits::TimeWindow::of(&table.def),
            table,
            batches: Vec::new(),
            bytes: 0,
            rows: 0,
            reservation: None,
            pieces: Vec::new(),
            spilling: None,
            limit,
            dropped: 0,
        }
    }
}

impl StagedWrite {
    /// The table written to.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// Rows taken so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Rows left out so far by the table's time limits.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes of the rows held in memory (not spilled, or still being spilled).
    pub fn bytes_in_memory(&self) -> usize {
        self.bytes + self.spilling.as_ref().map_or(0, |s| s.bytes)
    }

    /// Past this many bytes in memory the rows are spilled.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes rows (already validated by [`crate::rows::validate_batch`] or built by a
    /// [`crate::rows::RowBuilder`]), spilling when the stage is full. Waits for memory
    /// when the ingest budget is exhausted, after spilling its own rows first.
    pub async fn push(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = crate::rows::validate_batch(&self.table.def, batch)?;
        let batch = match &self.window {
            Some(window) => {
                let (kept, dropped) = window.admit(batch)?;
                self.dropped += dropped;
                kept
            }
            None => batch,
        };
        let ingested = batch.num_rows() as u64;
        if ingested == 0 {
            return Ok(());
        }
        let batch = crate::rollup::ingest(&self.table.def, batch)?;
        let bytes = batch.get_array_memory_size();
        if self.bytes + bytes > self.limit {
            self.spill_behind().await?;
        }
        let engine = self.engine.clone();
        let reservation = match engine.memory.try_reserve(bytes, engine.buffered_bytes()) {
            Some(reservation) => reservation,
            None => {
                // Hold nothing while waiting, so that waiters never block each other.
                self.spill().await?;
                engine
                    .memory
                    .reserve(bytes, || engine.buffered_bytes())
                    .await?
            }
        };
        match &mut self.reservation {
            Some(held) => held.merge(reservation),
            None => self.reservation = Some(reservation),
        }
        self.bytes += bytes;
        self.rows += ingested;
        self.batches.push(batch);
        Ok(())
    }

    /// Takes over the rows of `other`, a finished statement's write of the same table (a
    /// transaction block keeps one per table and savepoint level).
    pub(crate) async fn absorb(&mut self, mut other: StagedWrite) -> Result<()> {
        debug_assert_eq!(self.table.def.id, other.table.def.id);
        other.settle().await?;
        self.pieces.append(&mut other.pieces);
        self.batches.append(&mut other.batches);
        self.bytes += std::mem::take(&mut other.bytes);
        self.rows += other.rows;
        self.dropped += std::mem::take(&mut other.dropped);
        match (&mut self.reservation, other.reservation.take()) {
            (Some(held), Some(more)) => held.merge(more),
            (held @ None, more) => *held = more,
            (Some(_), None) => {}
        }
        if self.bytes > self.limit {
            self.spill().await?;
        }
        Ok(())
    }

    /// What a query inside the transaction that holds this write sees of it: the rows in
    /// memory and the pieces spilled.
    pub fn contents(&self) -> (Vec<RecordBatch>, Vec<SegmentMeta>) {
        let mut batches = self.batches.clone();
        if let Some(spilling) = &self.spilling {
            batches.extend(spilling.batches.iter().cloned());
        }
        (batches, self.pieces.clone())
    }

    /// Writes the rows in memory to piece files no query sees yet, and waits until every
    /// piece is written.
    pub(crate) async fn spill(&mut self) -> Result<()> {
        self.spill_behind().await?;
        self.settle().await
    }

    /// Starts writing the rows in memory to piece files, without waiting for them; a spill
    /// still under way is finished first, so one is written at a time.
    async fn spill_behind(&mut self) -> Result<()> {
        self.settle().await?;
        if self.batches.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.batches);
        let engine = self.engine.clone();
        let def = self.table.def.clone();
        let written = batches.clone();
        let pieces = tokio::spawn(async move {
            let mut pieces = Vec::new();
            let result = write_pieces(&engine, &def, written, &mut pieces).await;
            if let Err(e) = result {
                engine.remove_files(&pieces).await;
                return Err(e);
            }
            failpoint::hit("stage.spilled");
            Ok(pieces)
        });
        self.spilling = Some(Spilling {
            batches,
            bytes: std::mem::take(&mut self.bytes),
            _reservation: self.reservation.take(),
            pieces,
        });
        Ok(())
    }

    /// Waits for the spill under way, if any, and takes its pieces.
    async fn settle(&mut self) -> Result<()> {
        let Some(spilling) = self.spilling.take() else {
            return Ok(());
        };
        let pieces = spilling
            .pieces
            .await
            .map_err(|e| Error::Internal(format!("a spill failed: {e}")))??;
        self.pieces.extend(pieces);
        Ok(())
    }

    /// Makes every row taken visible at once, durably; returns how many there were.
    pub async fn commit(mut self) -> Result<u64> {
        self.settle().await?;
        let rows = self.rows;
        if self.pieces.is_empty() {
            let batches = std::mem::take(&mut self.batches);
            self.reservation = None;
            self.engine.append_valid(&self.table, batches).await?;
            self.table.count_dropped(self.dropped);
            return Ok(rows);
        }
        self.spill().await?;
        let table = self.table.clone();
        let writing = table.dml.read().await;
        if !self.engine.is_current(&self.table) {
            return Err(self.engine.not_current(&self.table));
        }
        failpoint::hit("stage.committing");
        let pieces = std::mem::take(&mut self.pieces);
        let orphans = match self
            .engine
            .metadata
            .persist(pieces.clone(), 0, Default::default())
        {
            Ok(orphans) => orphans,
            Err(e) => {
                self.pieces = pieces;
                return Err(e.into());
            }
        };
        if !orphans.is_empty() {
            self.engine.remove_files(&orphans).await;
            return Err(Error::TableNotFound(self.table.def.name.clone()));
        }
        tracing::info!(
            table = %self.table.def.name,
            rows,
            pieces = pieces.len(),
            "large statement committed as persisted pieces"
        );
        let evaluated = self.engine.observe_pieces(&self.table.def, &pieces);
        self.table.buffer.add_pieces(pieces);
        self.table.count_dropped(self.dropped);
        drop(writing);
        crate::observe::settled(evaluated).await;
        Ok(rows)
    }
}

/// Writes `batches` (a spill's rows) to piece files, chunk by chunk, as many at once as
/// there are cores, adding each to `pieces` as it is written.
async fn write_pieces(
    engine: &Arc<Engine>,
    def: &Arc<henge_storage::TableDef>,
    batches: Vec<RecordBatch>,
    pieces: &mut Vec<SegmentMeta>,
) -> Result<()> {
    let rows = engine.options.segment_rows;
    let grouping = def.clone();
    let (parts, sorted) =
        tokio::task::spawn_blocking(move || spill_parts(&grouping, batches, rows))
            .await
            .map_err(|e| Error::Internal(format!("a spill failed: {e}")))??;
    let writers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut running = tokio::task::JoinSet::new();
    let mut failed = None;
    for (start, part) in parts {
        while running.len() >= writers && failed.is_none() {
            if let Some(result) = running.join_next().await {
                written(result, pieces, &mut failed);
            }
        }
        if failed.is_some() {
            break;
        }
        let (engine, def) = (engine.clone(), def.clone());
        running.spawn(async move {
            let mut piece = engine.new_piece(&def, start)?;
            match sorted {
                true => engine.write_sorted_file(&def, &mut piece, part).await?,
                false => engine.write_file(&def, &mut piece, part).await?,
            };
            Ok(piece)
        });
    }
    while let Some(result) = running.join_next().await {
        written(result, pieces, &mut failed);
    }
    failed.map_or(Ok(()), Err)
}

/// A spill's rows as the pieces to write, each with its chunk, and whether they are in a
/// segment's order already. Rows with a time are sorted once, all together: each chunk is
/// then one range of them, and its pieces are written without sorting again. Rolled-up
/// tables combine each chunk's rows first.
#[allow(clippy::type_complexity)]
fn spill_parts(
    def: &henge_storage::TableDef,
    batches: Vec<RecordBatch>,
    rows: usize,
) -> Result<(Vec<(i64, Vec<RecordBatch>)>, bool)> {
    let mut parts = Vec::new();
    if def.time_column_index().is_none() || def.rollup {
        for (start, batches) in group_by_chunk(def, batches)? {
            let batches = crate::engine::rolled_up(def, batches)?;
            for part in split_rows(&batches, rows, MAX_SEGMENT_VALUE_BYTES) {
                parts.push((start, part));
            }
        }
        return Ok((parts, false));
    }
    let sorted = henge_storage::segment::sorted_rows(def, batches)?;
    let values = row_times(def, &sorted)?
        .ok_or_else(|| Error::Internal("the time column is not a timestamp".into()))?;
    let mut from = 0;
    while from < values.len() {
        let start = def.segment_granularity.chunk_start(values[from]);
        let end = def.segment_granularity.chunk_end(start);
        let to = from + values[from..].partition_point(|&t| t < end);
        let chunk = sorted.slice(from, to - from);
        for part in split_rows(&[chunk], rows, MAX_SEGMENT_VALUE_BYTES) {
            parts.push((start, part));
        }
        from = to;
    }
    Ok((parts, true))
}

/// Takes the outcome of one piece writer: the piece, or the first error.
fn written(
    result: std::result::Result<Result<SegmentMeta>, tokio::task::JoinError>,
    pieces: &mut Vec<SegmentMeta>,
    failed: &mut Option<Error>,
) {
    let error = match result {
        Ok(Ok(piece)) => {
            pieces.push(piece);
            return;
        }
        Ok(Err(e)) => e,
        Err(e) => Error::Internal(format!("a piece writer failed: {e}")),
    };
    failed.get_or_insert(error);
}

impl Drop for StagedWrite {
    fn drop(&mut self) {
        let remove = |engine: &Engine, pieces: &[SegmentMeta]| {
            for piece in pieces {
                if let Err(e) = engine.cache.remove_local(&piece.file_name()) {
                    tracing::warn!(file = %piece.file_name(), error = %e, "could not delete a piece of a failed statement");
                }
            }
        };
        remove(&self.engine, &self.pieces);
        // A spill still being written deletes its pieces once they are (without a runtime
        // to wait on, they are left to the next start, which deletes files no metadata
        // names).
        if let Some(spilling) = self.spilling.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let engine = self.engine.clone();
                runtime.spawn(async move {
                    if let Ok(Ok(pieces)) = spilling.pieces.await {
                        remove(&engine, &pieces);
                    }
                });
            }
        }
    }
}
