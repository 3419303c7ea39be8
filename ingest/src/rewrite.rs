//! Statements that change stored rows — DELETE, UPDATE, TRUNCATE and REPLACE — as new
//! versions of the time chunks they touch (Druid's way: segments are immutable, a newer
//! version of an interval overshadows the old).
//!
//! A rewrite holds the table's write lock (appends to it wait; other tables go on), moves
//! every buffered row of the table into published segments (persist and hand-off, so the
//! log holds none of its rows that the rewrite could miss), and then, with hand-offs and
//! compactions held off:
//! 1. reads each interval's visible segments and asks the [`Rewrite`] which rows stay and
//!    how they change; an interval with no row affected is left as it is;
//! 2. writes the rows that stay of each affected interval as segments of one fresh version
//!    and uploads them (an interval with no row left gets none: its segments are only
//!    forgotten, not rewritten); a crash leaves files no metadata names, deleted at the
//!    next start;
//! 3. publishes the new segments, forgets the replaced ones and records the pieces of rows
//!    the statement adds (REPLACE), in one atomic metadata change — the commit point;
//! 4. swaps them in the table's buffer in one step, so a query sees all of the statement
//!    or none of it;
//! 5. once no query can still open them, deletes the replaced files.

use std::sync::Arc;

use arrow::array::RecordBatch;
use henge_storage::{failpoint, SegmentMeta};

use crate::engine::{Engine, Table};
use crate::error::Result;
use crate::handoff::Due;
use crate::memory::Reservation;
use crate::stage::StagedWrite;

/// A table held by [`Engine::hold_published`].
pub(crate) struct Held<'a> {
    _writes: tokio::sync::RwLockWriteGuard<'a, ()>,
    _handing_off: tokio::sync::MutexGuard<'a, ()>,
}

/// What a statement does to a table's stored rows.
pub trait Rewrite: Send + Sync {
    /// The rows of `batch` (stored rows of the table) that stay, changed as the statement
    /// says, and how many rows it affected (deleted or updated; ingested rows, for a
    /// rolled-up table).
    fn apply(&self, batch: RecordBatch) -> Result<(RecordBatch, u64)>;
}

/// What a rewrite did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteReport {
    /// Rows deleted or updated.
    pub affected: u64,
    /// Rows the statement added (REPLACE).
    pub inserted: u64,
    /// Intervals rewritten, and of those, emptied.
    pub intervals: usize,
    pub emptied: usize,
}

impl Engine {
    /// Applies `change` to every stored row of `table` and adds the rows of `insert`, all
    /// at once (see the module documentation).
    pub async fn rewrite(
        &self,
        table: &Arc<Table>,
        change: &dyn Rewrite,
        insert: Option<StagedWrite>,
    ) -> Result<RewriteReport> {
        let _held = self.hold_published(table).await?;
        let mut report = RewriteReport::default();
        let mut made: Vec<SegmentMeta> = Vec::new();
        let mut forget: Vec<SegmentMeta> = Vec::new();
        let result = self
            .rewrite_intervals(table, change, &mut report, &mut made, &mut forget)
            .await;
        if let Err(e) = result {
            self.remove_files(&made).await;
            return Err(e);
        }
        let mut pieces = Vec::new();
        if let Some(mut insert) = insert {
            report.inserted = insert.rows();
            if let Err(e) = insert.spill().await {
                self.remove_files(&made).await;
                return Err(e);
            }
            // Recorded below, the files are the table's, not the write's to delete.
            pieces = std::mem::take(&mut insert.pieces);
            table.count_dropped(insert.dropped());
        }
        if made.is_empty() && forget.is_empty() && pieces.is_empty() {
            return Ok(report);
        }
        failpoint::hit("rewrite.uploaded");
        if let Err(e) = self
            .metadata
            .rewrite(table.def.id, made.clone(), &forget, pieces.clone())
        {
            self.remove_files(&made).await;
            self.remove_files(&pieces).await;
            return Err(e.into());
        }
        table.buffer.rewritten(made.clone(), &forget, pieces);
        failpoint::hit("rewrite.published");
        self.wait_for_openers().await;
        self.remove_files(&forget).await;
        tracing::info!(
            table = %table.def.name,
            affected = report.affected,
            inserted = report.inserted,
            intervals = report.intervals,
            emptied = report.emptied,
            segments_written = made.len(),
            "rewrite done"
        );
        Ok(report)
    }

    /// Takes `table` for a statement that replaces its segments: appends to it wait, its
    /// buffered rows are moved into published segments (so the log holds none of its rows
    /// that the statement could miss), and hand-offs and compactions wait, until the guard
    /// is dropped. Fails if the table was dropped or altered meanwhile.
    pub(crate) async fn hold_published<'a>(&'a self, table: &'a Arc<Table>) -> Result<Held<'a>> {
        let writes = table.dml.write().await;
        self.persist().await?;
        self.hand_off_table(table, Due::All).await?;
        let handing_off = self.handing_off.lock().await;
        if !self.is_current(table) {
            return Err(self.not_current(table));
        }
        Ok(Held {
            _writes: writes,
            _handing_off: handing_off,
        })
    }

    /// Steps 1 and 2: the new segments of every affected interval go to `made`, the
    /// segments they replace to `forget`.
    async fn rewrite_intervals(
        &self,
        table: &Arc<Table>,
        change: &dyn Rewrite,
        report: &mut RewriteReport,
        made: &mut Vec<SegmentMeta>,
        forget: &mut Vec<SegmentMeta>,
    ) -> Result<()> {
        let intervals = table.buffer.visible_by_interval();
        let version = self.metadata.fresh_version();
        for segments in intervals.into_values() {
            // First pass: is the interval affected, and does anything of it stay?
            let (mut affected, mut stays) = (0u64, false);
            for segment in &segments {
                let (batches, _held) = self.read_segment(table, segment).await?;
                for batch in batches {
                    let (kept, n) = change.apply(batch)?;
                    affected += n;
                    stays |= kept.num_rows() > 0;
                }
            }
            if affected == 0 {
                continue;
            }
            report.affected += affected;
            report.intervals += 1;
            // Overshadowed segments of the interval too (a crash can leave some): were the
            // interval emptied, they would show again.
            let (start, end) = (segments[0].start, segments[0].end);
            forget.extend(
                table
                    .buffer
                    .contents()
                    .segments
                    .into_iter()
                    .filter(|s| s.start == start && s.end == end),
            );
            if !stays {
                report.emptied += 1;
                continue;
            }
            // Second pass: each segment's rows that stay become a segment of the new version.
            for segment in &segments {
                let (batches, _held) = self.read_segment(table, segment).await?;
                let kept = batches
                    .into_iter()
                    .map(|b| change.apply(b).map(|(kept, _)| kept))
                    .filter(|b| b.as_ref().map_or(true, |b| b.num_rows() > 0))
                    .collect::<Result<Vec<RecordBatch>>>()?;
                if kept.is_empty() {
                    continue;
                }
                let mut new = SegmentMeta {
                    table_id: table.def.id,
                    start: segment.start,
                    end: segment.end,
                    version,
                    partition: made
                        .iter()
                        .filter(|s| s.start == segment.start && s.end == segment.end)
                        .count() as u32,
                    rows: 0,
                    bytes: 0,
                    crc: 0,
                };
                let contents = self.write_file(&table.def, &mut new, kept).await?;
                made.push(new.clone());
                failpoint::hit("rewrite.merged");
                self.cache.upload(&new, contents).await?;
            }
        }
        Ok(())
    }

    /// The rows of one segment, counted against the ingest budget (with half as much again
    /// for the rows written back) while held.
    pub(crate) async fn read_segment(
        &self,
        table: &Table,
        segment: &SegmentMeta,
    ) -> Result<(Vec<RecordBatch>, Reservation)> {
        let name = segment.display_name(&table.def.name);
        let batches = self.cache.read(segment, &name, None).await?;
        let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
        let held = self
            .memory
            .reserve_for_merge(bytes + bytes / 2, 0, || self.buffered_bytes())
            .await;
        Ok((batches, held))
    }
}
