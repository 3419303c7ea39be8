//! A table's time limits at ingest: rows older than its retention or late-rejection period,
//! or newer than its early-rejection period (all relative to now, when the statement
//! started), are refused — the statement fails naming the row, COPY with its line — or
//! left out and counted, as the table's `on_rejection` says. Druid's real-time ingestion
//! drops such rows (lateMessageRejectionPeriod, earlyMessageRejectionPeriod, drop rules).
//!
//! Expired time chunks already stored are dropped by [`Engine::apply_retention`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use henge_storage::{failpoint, ColumnType, OnRejection, SegmentMeta, TableDef};

use crate::engine::{Engine, Table};
use crate::error::{Error, Result};
use crate::handoff::Due;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// The times rows of one table are taken for, in one statement.
#[derive(Debug, Clone)]
pub struct TimeWindow {
    table: String,
    column: String,
    zoned: bool,
    /// Rows before this are older than the retention.
    expired_before: Option<i64>,
    /// Rows before this are late.
    late_before: Option<i64>,
    /// Rows at or after this are early.
    early_from: Option<i64>,
    retention_secs: u64,
    late_secs: u64,
    early_secs: u64,
    pub on_rejection: OnRejection,
    /// The time column's position.
    pub column_index: usize,
}

impl TimeWindow {
    /// The window of `def` now; `None` when it has no time limits (or no time column).
    pub fn of(def: &TableDef) -> Option<TimeWindow> {
        let limits = def.limits;
        if limits.retention_secs.is_none()
            && limits.late_secs.is_none()
            && limits.early_secs.is_none()
        {
            return None;
        }
        let column_index = def.time_column_index()?;
        let now = now_micros();
        let before = |secs: Option<u64>| secs.map(|s| now.saturating_sub(micros(s)));
        Some(TimeWindow {
            table: def.name.clone(),
            column: def.columns[column_index].name.clone(),
            zoned: def.columns[column_index].ty == ColumnType::TimestampTz,
            expired_before: before(limits.retention_secs),
            late_before: before(limits.late_secs),
            early_from: limits.early_secs.map(|s| now.saturating_add(micros(s))),
            retention_secs: limits.retention_secs.unwrap_or(0),
            late_secs: limits.late_secs.unwrap_or(0),
            early_secs: limits.early_secs.unwrap_or(0),
            on_rejection: limits.on_rejection,
            column_index,
        })
    }

    /// Why a row of time `t` is not taken, if it is not.
    pub fn refusal(&self, t: i64) -> Option<Error> {
        let reason = if self.expired_before.is_some_and(|b| t < b) {
            format!(
                "is older than the table's retention of {}",
                period(self.retention_secs)
            )
        } else if self.late_before.is_some_and(|b| t < b) {
            format!(
                "is more than {} in the past (late_message_rejection)",
                period(self.late_secs)
            )
        } else if self.early_from.is_some_and(|f| t >= f) {
            format!(
                "is more than {} in the future (early_message_rejection)",
                period(self.early_secs)
            )
        } else {
            return None;
        };
        Some(Error::OutsideTimeLimits {
            table: self.table.clone(),
            column: self.column.clone(),
            value: show_time(t, self.zoned),
            reason,
        })
    }

    /// The rows of `batch` (the table's columns) that are taken, and how many were left out;
    /// with `on_rejection = error`, the first row refused fails it.
    pub fn admit(&self, batch: RecordBatch) -> Result<(RecordBatch, u64)> {
        let times = batch
            .column(self.column_index)
            .as_primitive::<TimestampMicrosecondType>();
        let mut keep = Vec::with_capacity(times.len());
        for t in times.values().iter() {
            let refused = self.refusal(*t);
            match (refused, self.on_rejection) {
                (Some(e), OnRejection::Error) => return Err(e),
                (refused, _) => keep.push(refused.is_none()),
            }
        }
        let dropped = keep.iter().filter(|k| !**k).count() as u64;
        if dropped == 0 {
            return Ok((batch, 0));
        }
        let kept = filter_record_batch(&batch, &BooleanArray::from(keep))
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok((kept, dropped))
    }
}

impl Table {
    /// Counts rows left out by the table's time limits.
    pub(crate) fn count_dropped(&self, rows: u64) {
        if rows > 0 {
            self.rows_dropped.fetch_add(rows, Ordering::Relaxed);
        }
    }

    /// Rows left out by the table's time limits since the server started.
    pub fn rows_dropped(&self) -> u64 {
        self.rows_dropped.load(Ordering::Relaxed)
    }
}

impl Engine {
    /// Drops the time chunks of every table with a retention that end before now minus it:
    /// buffered rows are moved into segments first, then the expired segments are
    /// forgotten in one metadata change, then their files deleted. Returns the number of
    /// segments dropped.
    pub async fn apply_retention(&self) -> Result<usize> {
        let mut dropped = 0;
        for table in self.tables() {
            let Some(secs) = table.def.limits.retention_secs else {
                continue;
            };
            if table.def.time_column.is_none() {
                continue;
            }
            let cutoff = now_micros().saturating_sub(micros(secs));
            dropped += self.drop_expired(&table, cutoff).await?;
        }
        Ok(dropped)
    }

    async fn drop_expired(&self, table: &Arc<Table>, cutoff: i64) -> Result<usize> {
        let expired = |s: &SegmentMeta| s.end <= cutoff;
        let contents = table.buffer.contents();
        let buffered = contents.pieces.iter().any(expired)
            || contents
                .chunks
                .iter()
                .any(|c| table.def.segment_granularity.chunk_end(c.start) <= cutoff);
        if !buffered && !contents.segments.iter().any(expired) {
            return Ok(0);
        }
        let _writes = table.dml.write().await;
        if buffered {
            self.persist().await?;
            self.hand_off_table(table, Due::All).await?;
        }
        let _one = self.handing_off.lock().await;
        if !self.is_current(table) {
            return Ok(0);
        }
        let gone: Vec<SegmentMeta> = table
            .buffer
            .contents()
            .segments
            .into_iter()
            .filter(expired)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        self.metadata
            .rewrite(table.def.id, Vec::new(), &gone, Vec::new())?;
        table.buffer.rewritten(Vec::new(), &gone, Vec::new());
        failpoint::hit("retention.forgotten");
        self.wait_for_openers().await;
        self.remove_files(&gone).await;
        tracing::info!(
            table = %table.def.name,
            segments = gone.len(),
            rows = gone.iter().map(|s| s.rows).sum::<u64>(),
            "expired time chunks dropped"
        );
        Ok(gone.len())
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn micros(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(MICROS_PER_SECOND)
}

/// A period as a person writes it: `30 days`, `1 hour`, `90 seconds`.
pub fn period(secs: u64) -> String {
    let (n, unit) = match secs {
        0 => (0, "seconds"),
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    match (n, unit) {
        (1, unit) => format!("1 {unit}"),
        (_, "seconds") => "0 seconds".to_owned(),
        (n, unit) => format!("{n} {unit}s"),
    }
}

fn show_time(t: i64, zoned: bool) -> String {
    let text = chrono::DateTime::from_timestamp_micros(t)
        .map(|d| d.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string())
        .unwrap_or_else(|| t.to_string());
    if zoned {
        format!("{text}+00")
    } else {
        text
    }
}
