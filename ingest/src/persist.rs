//! Intermediate persists (the Druid paper's "persist every 10 minutes"): the rows in memory
//! are written to local piece files in the segment format, stay queryable from there
//! (memory-mapped), and the write-ahead log is trimmed behind them.
//!
//! A persist takes every table's rows in memory at once, like Druid's appenderator
//! persisting all its sinks: the log is shared by all tables, so a log file can only be
//! deleted once every row in it is persisted. The steps, each safe to crash after:
//! 1. under the append gate, rotate the log and freeze the buffers (every row of the older
//!    log files is now frozen; later writes go to the new file);
//! 2. write the frozen rows of each chunk as piece files, fsynced (a crash leaves files no
//!    metadata names, deleted at the next start; the log still holds the rows);
//! 3. record the pieces and the new log start in the metadata store in one atomic change
//!    (the commit point: after it the rows are replayed from the pieces, not the log);
//! 4. swap the frozen rows for the pieces in the buffers, in one step per table;
//! 5. delete the log files before the new start (a crash leaves files the next start
//!    deletes unread).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use henge_storage::stream::Offsets;
use henge_storage::{failpoint, SegmentMeta};

use crate::engine::{rolled_up, split_rows, Engine, Table, MAX_SEGMENT_VALUE_BYTES};
use crate::error::Result;

/// One table's frozen rows, by chunk start.
type Frozen = Vec<(i64, Vec<arrow::array::RecordBatch>)>;

/// What a persist did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistReport {
    pub pieces: usize,
    pub rows: u64,
    pub bytes: u64,
}

impl Engine {
    /// Persists every row in memory to local pieces and trims the log behind them.
    pub async fn persist(&self) -> Result<PersistReport> {
        let _one = self.persisting.lock().await;
        if self.buffered_rows() == 0 && !self.offsets_logged.load(Ordering::Relaxed) {
            return Ok(PersistReport::default());
        }
        let (wal_start, frozen, offsets) = {
            let _gate = self.gate.write().await;
            let wal_start = self.wal.rotate().await?;
            // The offsets of the rows about to be frozen: every append before the rotation
            // has logged its offsets and none after it has.
            let offsets: BTreeMap<u64, Offsets> = self
                .stream_offsets
                .lock()
                .iter()
                .map(|(&id, o)| (id, o.clone()))
                .collect();
            self.offsets_logged.store(false, Ordering::Relaxed);
            let frozen: Vec<_> = self
                .tables()
                .into_iter()
                .map(|t| {
                    let chunks = t.buffer.freeze();
                    (t, chunks)
                })
                .collect();
            (wal_start, frozen, offsets)
        };

        let mut written: Vec<(Arc<Table>, Vec<SegmentMeta>)> = Vec::new();
        let result = self.write_pieces(frozen, &mut written).await;
        let all: Vec<SegmentMeta> = written.iter().flat_map(|(_, p)| p.clone()).collect();
        if let Err(e) = result {
            self.remove_files(&all).await;
            if !offsets.is_empty() {
                self.offsets_logged.store(true, Ordering::Relaxed);
            }
            return Err(e);
        }
        failpoint::hit("persist.written");
        let orphans = match self
            .metadata
            .persist(all.clone(), wal_start, offsets.clone())
        {
            Ok(orphans) => orphans,
            Err(e) => {
                self.remove_files(&all).await;
                // The offsets were not recorded: the next persist must.
                if !offsets.is_empty() {
                    self.offsets_logged.store(true, Ordering::Relaxed);
                }
                return Err(e.into());
            }
        };
        failpoint::hit("persist.recorded");
        for (table, pieces) in written {
            table.buffer.persisted(pieces);
        }
        self.memory.freed();
        // The rows are in recorded pieces: a log file left behind is replayed from
        // `wal_start` on only, so failing to delete it wastes space but changes nothing.
        if let Err(e) = self.wal.trim(wal_start) {
            tracing::warn!(error = %e, "could not delete write-ahead log files behind a persist");
        }
        self.remove_files(&orphans).await;
        let report = PersistReport {
            pieces: all.len() - orphans.len(),
            rows: all.iter().map(|p| p.rows).sum(),
            bytes: all.iter().map(|p| p.bytes).sum(),
        };
        tracing::info!(
            pieces = report.pieces,
            rows = report.rows,
            bytes = report.bytes,
            wal_start,
            "persist done"
        );
        Ok(report)
    }

    async fn write_pieces(
        &self,
        frozen: Vec<(Arc<Table>, Frozen)>,
        written: &mut Vec<(Arc<Table>, Vec<SegmentMeta>)>,
    ) -> Result<()> {
        for (table, chunks) in frozen {
            let mut pieces = Vec::new();
            for (start, batches) in chunks {
                let batches = match rolled_up(&table.def, batches) {
                    Ok(batches) => batches,
                    Err(e) => {
                        // The pieces written so far are the caller's to delete.
                        written.push((table.clone(), pieces));
                        return Err(e);
                    }
                };
                for part in split_rows(&batches, self.options.segment_rows, MAX_SEGMENT_VALUE_BYTES)
                {
                    let mut piece = self.new_piece(&table.def, start)?;
                    let written_file = self.write_file(&table.def, &mut piece, part).await;
                    if let Err(e) = written_file {
                        written.push((table.clone(), pieces));
                        return Err(e);
                    }
                    pieces.push(piece);
                }
            }
            written.push((table, pieces));
        }
        Ok(())
    }
}
