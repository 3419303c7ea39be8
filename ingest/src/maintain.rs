//! The background work that keeps memory and the log bounded without anyone asking: a
//! persister that writes rows in memory to pieces when a chunk passes a row, byte or age
//! threshold, when a chunk closes, or when the ingest memory budget is half used (or a
//! writer waits for it), and a
//! hand-off loop that merges and publishes chunks as they close and compacts intervals
//! that have gathered many segments.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::engine::Engine;
use crate::handoff::Due;

/// When rows in memory are persisted.
#[derive(Debug, Clone, Copy)]
pub struct PersistPolicy {
    /// A chunk holding this many rows in memory (0: no row trigger).
    pub rows: usize,
    /// A chunk holding this many bytes in memory (0: no byte trigger).
    pub bytes: usize,
    /// Rows waiting in memory this long (zero: no age trigger).
    pub period: Duration,
}

/// How often the thresholds are checked.
const TICK: Duration = Duration::from_millis(250);
/// How long a failed step waits before it is tried again.
const RETRY: Duration = Duration::from_secs(5);

impl Engine {
    /// Why the rows in memory should be persisted now, if they should.
    pub fn persist_reason(&self, policy: &PersistPolicy) -> Option<&'static str> {
        // Only buffered rows count here: memory that running statements reserved is not
        // freed by a persist (they spill their own rows), and persisting a few rows again
        // and again while they hold it would only make tiny pieces.
        if self.buffered_bytes() * 2 >= self.memory_budget() {
            return Some("memory");
        }
        let stats: Vec<_> = self.tables().iter().map(|t| t.buffer.stats()).collect();
        if policy.rows > 0 && stats.iter().any(|s| s.max_chunk_rows >= policy.rows) {
            return Some("rows");
        }
        if policy.bytes > 0 && stats.iter().any(|s| s.max_chunk_bytes >= policy.bytes) {
            return Some("bytes");
        }
        let oldest = stats.iter().filter_map(|s| s.oldest).min();
        if !policy.period.is_zero() && oldest.is_some_and(|t| t.elapsed() >= policy.period) {
            return Some("age");
        }
        if self.closed_in_memory() {
            return Some("a chunk closed");
        }
        None
    }

    /// Whether rows of a closed chunk (its end and window period past, no rows for that
    /// long) are still in memory: they are persisted at once so that the chunk is handed
    /// off, as Druid's real-time nodes persist a closed interval before merging it.
    fn closed_in_memory(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        self.tables().iter().any(|table| {
            if table.def.time_column.is_none() {
                return false;
            }
            let window = Duration::from_secs(table.def.window_period_secs);
            let window_micros = window.as_micros() as i64;
            table.buffer.chunks_in_memory().into_iter().any(|start| {
                table
                    .def
                    .segment_granularity
                    .chunk_end(start)
                    .saturating_add(window_micros)
                    <= now
                    && table.buffer.quiet_for(start, window)
            })
        })
    }

    /// Runs the persister until the task is aborted.
    pub async fn run_persister(self: Arc<Self>, policy: PersistPolicy) {
        let mut failed_at: Option<Instant> = None;
        loop {
            let pressed = tokio::select! {
                _ = tokio::time::sleep(TICK) => false,
                _ = self.memory.pressed() => true,
            };
            if failed_at.is_some_and(|t| t.elapsed() < RETRY) {
                continue;
            }
            // A writer waiting for memory gets whatever a persist can free.
            let reason = match pressed && self.buffered_rows() > 0 {
                true => Some("a writer is waiting for memory"),
                false => self.persist_reason(&policy),
            };
            let Some(reason) = reason else {
                continue;
            };
            match self.persist().await {
                Ok(report) => {
                    failed_at = None;
                    if report.pieces > 0 {
                        tracing::debug!(reason, rows = report.rows, "automatic persist");
                    }
                }
                Err(e) => {
                    // The rows stay in memory and in the log; try again after a pause.
                    tracing::error!(reason, error = %e, "automatic persist failed");
                    failed_at = Some(Instant::now());
                }
            }
        }
    }

    /// Runs the hand-off of closed chunks, and compaction of intervals with many
    /// segments, until the task is aborted.
    pub async fn run_hand_off(self: Arc<Self>) {
        loop {
            tokio::time::sleep(TICK * 4).await;
            if let Err(e) = self.hand_off(Due::Closed).await {
                tracing::warn!(error = %e, "automatic hand-off failed; retrying later");
                tokio::time::sleep(RETRY).await;
                continue;
            }
            if let Err(e) = self.apply_retention().await {
                tracing::warn!(error = %e, "dropping expired time chunks failed; retrying later");
            }
            let min = self.options.compact_segments;
            if min == 0 {
                continue;
            }
            if let Err(e) = self.compact(None, min).await {
                tracing::warn!(error = %e, "automatic compaction failed; retrying later");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
