//! Merge and hand-off: a time chunk's persisted pieces become published segments of deep
//! storage (the Druid paper's hand-off from real-time to historical nodes).
//!
//! A chunk is due once it has closed — its end plus the table's window period has passed
//! and no row reached it for a window period — or once its pieces hold a segment's worth
//! of rows; a CHECKPOINT makes every chunk due. The steps, each safe to crash after:
//! 1. read the chunk's pieces in order and write their rows as segments of at most the
//!    target size (a crash leaves files no metadata names, deleted at the next start);
//! 2. upload each segment to deep storage and verify the copy;
//! 3. publish the segments and forget the pieces in one atomic metadata change (the
//!    commit point);
//! 4. swap the pieces for the segments in the table's buffer, in one step;
//! 5. once every query that took a snapshot before step 4 has opened its files (they are
//!    memory-mapped, so still readable to its end), delete the piece files (a crash leaves
//!    files the next start deletes).
//!
//! Until step 4 queries read the pieces; from it on, the segments: every row once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use henge_storage::{failpoint, SegmentMeta};

use crate::engine::{
    rolled_up, split_rows, CheckpointReport, Engine, Table, MAX_SEGMENT_VALUE_BYTES,
};
use crate::error::Result;
use crate::memory::Reservation;

/// Which chunks a hand-off takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Every chunk with pieces (CHECKPOINT).
    All,
    /// Chunks that have closed, or whose pieces hold a segment's worth of rows.
    Closed,
}

impl Engine {
    /// Merges the pieces of every due chunk into segments, uploads and publishes them.
    /// A chunk that fails (deep storage unreachable, say) keeps its pieces, queryable, for
    /// a later try; the other chunks go on, and the first error is returned.
    pub async fn hand_off(&self, due: Due) -> Result<CheckpointReport> {
        self.hand_off_tables(self.tables(), due).await
    }

    /// [`Engine::hand_off`] of one table's chunks.
    pub(crate) async fn hand_off_table(
        &self,
        table: &Arc<Table>,
        due: Due,
    ) -> Result<CheckpointReport> {
        self.hand_off_tables(vec![table.clone()], due).await
    }

    async fn hand_off_tables(&self, tables: Vec<Arc<Table>>, due: Due) -> Result<CheckpointReport> {
        let _one = self.handing_off.lock().await;
        let mut report = CheckpointReport::default();
        let mut first_error = None;
        for table in tables {
            if !self.is_current(&table) {
                continue;
            }
            for pieces in self.due_chunks(&table, due) {
                match self.hand_off_chunk(&table, &pieces).await {
                    Ok(segments) => {
                        report.segments += segments.len();
                        report.rows += segments.iter().map(|s| s.rows).sum::<u64>();
                        report.bytes += segments.iter().map(|s| s.bytes).sum::<u64>();
                    }
                    Err(e) => {
                        tracing::warn!(table = %table.def.name, chunk = pieces[0].start, error = %e,
                            "hand-off failed; the pieces stay and are tried again later");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(report)
    }

    /// The pieces of each due chunk of `table`, in the order they were written.
    fn due_chunks(&self, table: &Table, due: Due) -> Vec<Vec<SegmentMeta>> {
        let mut chunks: BTreeMap<i64, Vec<SegmentMeta>> = BTreeMap::new();
        for piece in table.buffer.pieces() {
            chunks.entry(piece.start).or_default().push(piece);
        }
        if due == Due::Closed {
            let window = Duration::from_secs(table.def.window_period_secs);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64);
            let window_micros = window.as_micros() as i64;
            chunks.retain(|&start, pieces| {
                let end = pieces[0].end;
                let rows: u64 = pieces.iter().map(|p| p.rows).sum();
                let closed = end != i64::MAX
                    && end.saturating_add(window_micros) <= now
                    && table.buffer.quiet_for(start, window);
                closed || rows >= self.options.segment_rows as u64
            });
        }
        chunks.into_values().collect()
    }

    /// Hands off one chunk's pieces; returns the segments published.
    async fn hand_off_chunk(
        &self,
        table: &Arc<Table>,
        pieces: &[SegmentMeta],
    ) -> Result<Vec<SegmentMeta>> {
        let mut made: Vec<SegmentMeta> = Vec::new();
        let result = self.merge_pieces(table, pieces, &mut made).await;
        if let Err(e) = result {
            self.remove_files(&made).await;
            return Err(e);
        }
        failpoint::hit("handoff.uploaded");
        let orphans = match self.metadata.hand_off(made.clone(), pieces) {
            Ok(orphans) => orphans,
            Err(e) => {
                self.remove_files(&made).await;
                return Err(e.into());
            }
        };
        failpoint::hit("handoff.published");
        let published: Vec<SegmentMeta> = made
            .iter()
            .filter(|s| !orphans.contains(s))
            .cloned()
            .collect();
        table.buffer.handed_off(pieces, published.clone());
        self.wait_for_openers().await;
        for piece in pieces {
            if let Err(e) = self.cache.remove_local(&piece.file_name()) {
                tracing::warn!(file = %piece.file_name(), error = %e, "could not delete a handed-off piece");
            }
            failpoint::hit("handoff.deleting");
        }
        self.remove_files(&orphans).await;
        tracing::info!(
            table = %table.def.name,
            chunk = %pieces[0].display_name(&table.def.name),
            pieces = pieces.len(),
            segments = published.len(),
            rows = published.iter().map(|s| s.rows).sum::<u64>(),
            "hand-off done"
        );
        Ok(published)
    }

    /// Reads `pieces` in order and writes and uploads their rows as segments of at most
    /// the target size, pushing each to `made` once its file exists.
    async fn merge_pieces(
        &self,
        table: &Arc<Table>,
        pieces: &[SegmentMeta],
        made: &mut Vec<SegmentMeta>,
    ) -> Result<()> {
        let (id, start, end) = (table.def.id, pieces[0].start, pieces[0].end);
        let identity = |made: &[SegmentMeta]| self.metadata.next_identity(id, start, end, made);
        self.merge(table, pieces, identity, "handoff.merged", made)
            .await
    }

    /// Reads `sources` (segments or pieces of one interval) in order and writes their rows
    /// as segments of at most the target size, with identities from `identity` (given the
    /// segments made so far); each is pushed to `made` once its file exists, and uploaded.
    /// At most one segment's rows (and one source's) are in memory at a time.
    pub(crate) async fn merge(
        &self,
        table: &Arc<Table>,
        sources: &[SegmentMeta],
        identity: impl Fn(&[SegmentMeta]) -> (u64, u32),
        point: &str,
        made: &mut Vec<SegmentMeta>,
    ) -> Result<()> {
        let limit = self.options.segment_rows.max(1);
        let mut group: Vec<RecordBatch> = Vec::new();
        let mut group_rows = 0usize;
        // The rows read count against the ingest budget, with half as much again for the
        // segment writer's sorted column and output.
        let mut held: Option<Reservation> = None;
        let (start, end) = (sources[0].start, sources[0].end);
        for (i, source) in sources.iter().enumerate() {
            let name = source.display_name(&table.def.name);
            let batches = self.cache.read(source, &name, None).await?;
            let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
            let own = held.as_ref().map_or(0, |r| r.bytes());
            let more = self
                .memory
                .reserve_for_merge(bytes + bytes / 2, own, || self.buffered_bytes())
                .await;
            match &mut held {
                Some(held) => held.merge(more),
                None => held = Some(more),
            }
            group.extend(batches);
            group_rows += source.rows as usize;
            let last = i + 1 == sources.len();
            if group_rows < limit && !last {
                continue;
            }
            let mut parts = split_rows(
                &rolled_up(&table.def, std::mem::take(&mut group))?,
                limit,
                MAX_SEGMENT_VALUE_BYTES,
            );
            group.clear();
            group_rows = 0;
            // A part short of the target waits for the next source's rows.
            if !last && parts.last().is_some_and(|p| rows_of(p) < limit) {
                if let Some(rest) = parts.pop() {
                    group_rows = rows_of(&rest);
                    group = rest;
                }
            }
            // What waits for the next source is counted again from scratch.
            let carried: usize = group.iter().map(|b| b.get_array_memory_size()).sum();
            let mut written = held.take();
            if carried > 0 {
                held = written.as_mut().map(|r| r.split_off(carried + carried / 2));
            }
            for part in parts {
                let (version, partition) = identity(made);
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
                let contents = self.write_file(&table.def, &mut segment, part).await?;
                made.push(segment.clone());
                failpoint::hit(point);
                self.cache.upload(&segment, contents).await?;
            }
            drop(written);
        }
        Ok(())
    }
}

fn rows_of(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}
