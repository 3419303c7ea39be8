//! The `sys` schema: Henge's own system tables.
//!
//! `sys.segments` has one row per published segment (state `published`, or `overshadowed`
//! when a newer version replaces it), one per persisted piece (state `persisted`: on local
//! disk, queried from there, waiting for hand-off) and one per time chunk still held in
//! memory (state `realtime`, or `persisting` while a persist writes it out).
//!
//! `sys.ingest` has one row per table (rows and bytes in memory, persisted pieces,
//! published segments) and a last row with a NULL `table` for the whole process: the same
//! sums plus the write-ahead log's size on disk and the ingest memory budget and its use.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use henge_ingest::Engine;
use henge_storage::visible;

/// The name of the schema holding the system tables.
pub const SYSTEM_SCHEMA: &str = "sys";

/// The `sys` schema.
#[derive(Debug)]
pub struct SystemSchema {
    engine: Arc<Engine>,
}

impl SystemSchema {
    pub fn new(engine: Arc<Engine>) -> SystemSchema {
        SystemSchema { engine }
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        vec!["ingest".into(), "segments".into()]
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let kind = match name {
            "segments" => SystemKind::Segments,
            "ingest" => SystemKind::Ingest,
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(SystemTable {
            engine: self.engine.clone(),
            kind,
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        matches!(name, "segments" | "ingest")
    }
}

#[derive(Debug, Clone, Copy)]
enum SystemKind {
    Segments,
    Ingest,
}

/// A table of the `sys` schema, computed when scanned.
#[derive(Debug)]
struct SystemTable {
    engine: Arc<Engine>,
    kind: SystemKind,
}

impl SystemTable {
    fn schema_of(&self) -> SchemaRef {
        match self.kind {
            SystemKind::Segments => segments_schema(),
            SystemKind::Ingest => ingest_schema(),
        }
    }

    fn batch(&self) -> Result<RecordBatch> {
        match self.kind {
            SystemKind::Segments => segments_batch(&self.engine),
            SystemKind::Ingest => ingest_batch(&self.engine),
        }
    }
}

fn segments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new(
            "start",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new(
            "end",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("version", DataType::Int64, true),
        Field::new("partition", DataType::Int32, true),
        Field::new("rows", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
        Field::new("state", DataType::Utf8, false),
    ]))
}

/// A time bound, or NULL for the unbounded interval of a table without a time column.
fn bound(micros: i64) -> Option<i64> {
    (micros != i64::MIN && micros != i64::MAX).then_some(micros)
}

#[derive(Default)]
struct Rows {
    table: Vec<String>,
    start: Vec<Option<i64>>,
    end: Vec<Option<i64>>,
    version: Vec<Option<i64>>,
    partition: Vec<Option<i32>>,
    rows: Vec<i64>,
    bytes: Vec<i64>,
    state: Vec<&'static str>,
}

fn segments_batch(engine: &Engine) -> Result<RecordBatch> {
    let mut out = Rows::default();
    for table in engine.tables() {
        let contents = table.buffer.contents();
        let shown = visible(&contents.segments);
        let mut sorted = contents.segments.clone();
        sorted.sort_by_key(|s| (s.start, s.version, s.partition));
        for segment in sorted {
            out.table.push(table.def.name.clone());
            out.start.push(bound(segment.start));
            out.end.push(bound(segment.end));
            out.version.push(Some(segment.version as i64));
            out.partition.push(Some(segment.partition as i32));
            out.rows.push(segment.rows as i64);
            out.bytes.push(segment.bytes as i64);
            out.state.push(if shown.contains(&segment) {
                "published"
            } else {
                "overshadowed"
            });
        }
        for piece in &contents.pieces {
            out.table.push(table.def.name.clone());
            out.start.push(bound(piece.start));
            out.end.push(bound(piece.end));
            out.version.push(None);
            out.partition.push(None);
            out.rows.push(piece.rows as i64);
            out.bytes.push(piece.bytes as i64);
            out.state.push("persisted");
        }
        let granularity = table.def.segment_granularity;
        for chunk in contents.chunks {
            out.table.push(table.def.name.clone());
            out.start.push(bound(chunk.start));
            out.end.push(bound(granularity.chunk_end(chunk.start)));
            out.version.push(None);
            out.partition.push(None);
            out.rows.push(chunk.rows as i64);
            out.bytes.push(chunk.bytes as i64);
            out.state.push(if chunk.persisting {
                "persisting"
            } else {
                "realtime"
            });
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(out.table)),
        Arc::new(TimestampMicrosecondArray::from(out.start)),
        Arc::new(TimestampMicrosecondArray::from(out.end)),
        Arc::new(Int64Array::from(out.version)),
        Arc::new(Int32Array::from(out.partition)),
        Arc::new(Int64Array::from(out.rows)),
        Arc::new(Int64Array::from(out.bytes)),
        Arc::new(StringArray::from(out.state)),
    ];
    Ok(RecordBatch::try_new(segments_schema(), columns)?)
}

fn ingest_schema() -> SchemaRef {
    let count = |name: &str| Field::new(name, DataType::Int64, false);
    let whole = |name: &str| Field::new(name, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, true),
        count("buffered_rows"),
        count("buffered_bytes"),
        count("persisted_pieces"),
        count("persisted_rows"),
        count("persisted_bytes"),
        count("published_segments"),
        count("published_rows"),
        count("rows_dropped"),
        whole("wal_bytes"),
        whole("memory_used"),
        whole("memory_budget"),
    ]))
}

fn ingest_batch(engine: &Engine) -> Result<RecordBatch> {
    let mut table: Vec<Option<String>> = Vec::new();
    let mut counts: [Vec<i64>; 8] = Default::default();
    let mut whole: [Vec<Option<i64>>; 3] = Default::default();
    let mut totals = [0i64; 8];
    for t in engine.tables() {
        let stats = t.buffer.stats();
        let contents = t.buffer.contents();
        let published = visible(&contents.segments);
        let row = [
            stats.rows as i64,
            stats.bytes as i64,
            stats.pieces as i64,
            stats.piece_rows as i64,
            stats.piece_bytes as i64,
            published.len() as i64,
            published.iter().map(|s| s.rows as i64).sum(),
            t.rows_dropped() as i64,
        ];
        table.push(Some(t.def.name.clone()));
        for (i, value) in row.into_iter().enumerate() {
            counts[i].push(value);
            totals[i] += value;
        }
        whole.iter_mut().for_each(|c| c.push(None));
    }
    table.push(None);
    for (i, total) in totals.into_iter().enumerate() {
        counts[i].push(total);
    }
    whole[0].push(Some(engine.wal_bytes() as i64));
    whole[1].push(Some(engine.memory_used() as i64));
    whole[2].push(Some(engine.memory_budget() as i64));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(table))];
    columns.extend(
        counts
            .into_iter()
            .map(|c| Arc::new(Int64Array::from(c)) as ArrayRef),
    );
    columns.extend(
        whole
            .into_iter()
            .map(|c| Arc::new(Int64Array::from(c)) as ArrayRef),
    );
    Ok(RecordBatch::try_new(ingest_schema(), columns)?)
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.schema_of()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![self.batch()?]],
            self.schema_of(),
            projection.cloned(),
        )?)
    }
}
