//! Compaction: a time chunk's published segments (late rows handed off one by one, many
//! CHECKPOINTs) are merged into fewer, larger segments as a new version that overshadows
//! them, and the overshadowed segments are deleted once no query can still read them.
//!
//! The steps, each safe to crash after:
//! 1. read the interval's visible segments and write their rows as segments of a fresh
//!    version, at most the target size each, and upload them (a crash leaves files no
//!    metadata names, deleted at the next start);
//! 2. publish the new version (the commit point: from here on queries read it, and the old
//!    segments are overshadowed);
//! 3. once every query that took a snapshot before has opened its files, forget the
//!    overshadowed segments in the metadata store and then delete their files, in deep
//!    storage and locally (a crash in between leaves files the next start deletes).
//!
//! Compaction and hand-off take the same lock, so a chunk never changes under either.

use std::sync::Arc;

use henge_storage::{failpoint, SegmentMeta};

use crate::engine::{Engine, Table};
use crate::error::{Error, Result};

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Intervals rewritten.
    pub intervals: usize,
    /// Segments replaced, and the segments that replaced them.
    pub replaced: usize,
    pub written: usize,
}

impl Engine {
    /// Compacts every interval of `table` (every table with `None`) that has at least
    /// `min_segments` visible segments (2 at the least).
    pub async fn compact(&self, table: Option<&str>, min_segments: usize) -> Result<CompactReport> {
        let tables = match table {
            Some(name) => vec![self
                .table(name)
                .ok_or_else(|| Error::TableNotFound(name.to_owned()))?],
            None => self.tables(),
        };
        let _one = self.handing_off.lock().await;
        let mut report = CompactReport::default();
        for table in tables {
            // Altered or dropped while this waited for the lock: the new table is its own.
            if !self.is_current(&table) {
                continue;
            }
            self.delete_overshadowed(&table).await?;
            for old in self.fragmented(&table, min_segments.max(2)) {
                let new = self.compact_interval(&table, &old).await?;
                report.intervals += 1;
                report.replaced += old.len();
                report.written += new.len();
            }
        }
        Ok(report)
    }

    /// The visible segments of each interval of `table` that has `min_segments` or more,
    /// more than its rows need.
    fn fragmented(&self, table: &Table, min_segments: usize) -> Vec<Vec<SegmentMeta>> {
        let intervals = table.buffer.visible_by_interval();
        let limit = self.options.segment_rows.max(1) as u64;
        intervals
            .into_values()
            // Full segments stay as they are: an interval is rewritten only when that
            // leaves it fewer segments (else a large chunk would be rewritten forever).
            .filter(|segments| {
                let rows: u64 = segments.iter().map(|s| s.rows).sum();
                segments.len() >= min_segments && (rows.div_ceil(limit) as usize) < segments.len()
            })
            .map(|mut segments| {
                segments.sort_by_key(|s| (s.version, s.partition));
                segments
            })
            .collect()
    }

    async fn compact_interval(
        &self,
        table: &Arc<Table>,
        old: &[SegmentMeta],
    ) -> Result<Vec<SegmentMeta>> {
        let mut made: Vec<SegmentMeta> = Vec::new();
        if let Err(e) = self.write_version(table, old, &mut made).await {
            self.remove_files(&made).await;
            return Err(e);
        }
        failpoint::hit("compact.uploaded");
        let orphans = match self.metadata.hand_off(made.clone(), &[]) {
            Ok(orphans) => orphans,
            Err(e) => {
                self.remove_files(&made).await;
                return Err(e.into());
            }
        };
        if !orphans.is_empty() {
            // The table was dropped meanwhile.
            self.remove_files(&orphans).await;
            return Ok(Vec::new());
        }
        table.buffer.handed_off(&[], made.clone());
        failpoint::hit("compact.published");
        self.delete_segments(table, old).await?;
        tracing::info!(
            table = %table.def.name,
            interval = %made.first().map_or_else(String::new, |s| s.display_name(&table.def.name)),
            replaced = old.len(),
            written = made.len(),
            rows = made.iter().map(|s| s.rows).sum::<u64>(),
            "compaction done"
        );
        Ok(made)
    }

    /// Deletes the segments of `table` a newer version overshadows (a crash may have left
    /// some after their replacement was published).
    async fn delete_overshadowed(&self, table: &Arc<Table>) -> Result<()> {
        let hidden = table.buffer.overshadowed();
        if hidden.is_empty() {
            return Ok(());
        }
        self.delete_segments(table, &hidden).await
    }

    /// Once no query can still open them, forgets `segments` (out of every snapshot
    /// already) in the metadata store, then deletes their files.
    async fn delete_segments(&self, table: &Arc<Table>, segments: &[SegmentMeta]) -> Result<()> {
        self.wait_for_openers().await;
        self.metadata.forget(segments)?;
        table.buffer.forget(segments);
        for segment in segments {
            failpoint::hit("compact.deleting");
            if let Err(e) = self.cache.remove(segment).await {
                tracing::warn!(file = %segment.file_name(), error = %e, "could not delete an overshadowed segment; it is deleted at the next start");
            }
        }
        Ok(())
    }

    /// Writes and uploads the rows of `old` as segments of a fresh version.
    async fn write_version(
        &self,
        table: &Arc<Table>,
        old: &[SegmentMeta],
        made: &mut Vec<SegmentMeta>,
    ) -> Result<()> {
        let version = self.metadata.fresh_version();
        let identity = |made: &[SegmentMeta]| (version, made.len() as u32);
        self.merge(table, old, identity, "compact.merged", made)
            .await
    }
}
