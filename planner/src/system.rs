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
//!
//! `sys.pipelines` has one row per pipeline: its state and what it has done since the
//! server started, and its total lag; `sys.pipeline_partitions` one row per partition of
//! each pipeline's topic: the offset whose rows are durable, the high watermark last seen
//! and the lag between them.
//!
//! `sys.alerts` has one row per alert rule: its definition, whether it runs, the keys and
//! rows its windows hold, and what it has seen and fired since the server started.

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
        SYSTEM_TABLES.iter().map(|t| (*t).to_owned()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let kind = match name {
            "segments" => SystemKind::Segments,
            "ingest" => SystemKind::Ingest,
            "pipelines" => SystemKind::Pipelines,
            "pipeline_partitions" => SystemKind::PipelinePartitions,
            "alerts" => SystemKind::Alerts,
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(SystemTable {
            engine: self.engine.clone(),
            kind,
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        SYSTEM_TABLES.contains(&name)
    }
}

const SYSTEM_TABLES: [&str; 5] = [
    "alerts",
    "ingest",
    "pipeline_partitions",
    "pipelines",
    "segments",
];

#[derive(Debug, Clone, Copy)]
enum SystemKind {
    Segments,
    Ingest,
    Pipelines,
    PipelinePartitions,
    Alerts,
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
            SystemKind::Pipelines => pipelines_schema(),
            SystemKind::PipelinePartitions => partitions_schema(),
            SystemKind::Alerts => alerts_schema(),
        }
    }

    fn batch(&self) -> Result<RecordBatch> {
        match self.kind {
            SystemKind::Segments => segments_batch(&self.engine),
            SystemKind::Ingest => ingest_batch(&self.engine),
            SystemKind::Pipelines => pipelines_batch(&self.engine),
            SystemKind::PipelinePartitions => partitions_batch(&self.engine),
            SystemKind::Alerts => alerts_batch(&self.engine),
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

fn pipelines_schema() -> SchemaRef {
    let count = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("table", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, true),
        Field::new("partitions", DataType::Int32, false),
        Field::new("lag", DataType::Int64, true),
        count("records"),
        count("rows"),
        count("bytes"),
        count("records_skipped"),
        Field::new("last_error", DataType::Utf8, true),
        Field::new("rows_per_second", DataType::Float64, false),
    ]))
}

/// One partition of a pipeline: partition, durable offset, high watermark, and the lag
/// between them when both are known.
type PartitionRow = (i32, Option<i64>, Option<i64>, Option<i64>);

/// Each partition of a pipeline.
fn partitions_of(engine: &Engine, id: u64) -> Vec<PartitionRow> {
    let offsets = engine.pipeline_offsets(id);
    let marks = engine.pipeline_status(id).high_watermarks;
    let mut partitions: Vec<i32> = offsets.keys().chain(marks.keys()).copied().collect();
    partitions.sort_unstable();
    partitions.dedup();
    partitions
        .into_iter()
        .map(|p| {
            let (offset, high) = (offsets.get(&p).copied(), marks.get(&p).copied());
            let lag = offset.zip(high).map(|(o, h)| (h - o).max(0));
            (p, offset, high, lag)
        })
        .collect()
}

fn pipelines_batch(engine: &Engine) -> Result<RecordBatch> {
    let pipelines = engine.pipelines();
    let mut name = Vec::new();
    let mut source = Vec::new();
    let mut table = Vec::new();
    let mut state = Vec::new();
    let mut detail = Vec::new();
    let mut partitions = Vec::new();
    let mut lag = Vec::new();
    let mut counts: [Vec<i64>; 4] = Default::default();
    let mut last_error = Vec::new();
    let mut rate = Vec::new();
    for p in &pipelines {
        let status = engine.pipeline_status(p.id);
        let parts = partitions_of(engine, p.id);
        name.push(p.name.clone());
        source.push(p.source.clone());
        table.push(p.table.clone());
        state.push(match (status.state, p.paused) {
            (_, true) => "paused",
            ("", false) => "stopped",
            (s, false) => s,
        });
        detail.push(status.detail.clone());
        partitions.push(parts.len() as i32);
        lag.push(parts.iter().map(|p| p.3).sum::<Option<i64>>());
        for (i, value) in [status.records, status.rows, status.bytes, status.skipped]
            .into_iter()
            .enumerate()
        {
            counts[i].push(value as i64);
        }
        last_error.push(
            status
                .last_error
                .as_ref()
                .map(|(p, o, why)| format!("partition {p}, offset {o}: {why}")),
        );
        rate.push(status.rows_per_second);
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(name)),
        Arc::new(StringArray::from(source)),
        Arc::new(StringArray::from(table)),
        Arc::new(StringArray::from(state)),
        Arc::new(StringArray::from(detail)),
        Arc::new(Int32Array::from(partitions)),
        Arc::new(Int64Array::from(lag)),
    ];
    columns.extend(
        counts
            .into_iter()
            .map(|c| Arc::new(Int64Array::from(c)) as ArrayRef),
    );
    columns.push(Arc::new(StringArray::from(last_error)));
    columns.push(Arc::new(datafusion::arrow::array::Float64Array::from(rate)));
    Ok(RecordBatch::try_new(pipelines_schema(), columns)?)
}

fn alerts_schema() -> SchemaRef {
    let count = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("table", DataType::Utf8, true),
        Field::new("state", DataType::Utf8, false),
        Field::new("partition_by", DataType::Utf8, false),
        Field::new("within", DataType::Utf8, false),
        Field::new("condition", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("alerts_table", DataType::Utf8, false),
        count("keys"),
        count("rows"),
        count("rows_seen"),
        count("late_rows"),
        count("fired"),
        Field::new(
            "last_fired",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        ),
        Field::new("detail", DataType::Utf8, true),
    ]))
}

fn alerts_batch(engine: &Engine) -> Result<RecordBatch> {
    let tables = engine.tables();
    let alerts = engine.alerts();
    let text = |f: &dyn Fn(&henge_storage::alert::AlertDef) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(alerts.iter().map(f).collect::<Vec<_>>()))
    };
    let statuses: Vec<_> = alerts
        .iter()
        .map(|a| engine.alert_status(&a.name))
        .collect();
    let count = |f: &dyn Fn(&henge_ingest::observe::AlertStatus) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from(
            statuses.iter().map(|s| f(s) as i64).collect::<Vec<_>>(),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|a| Some(a.name.clone())),
        text(&|a| {
            tables
                .iter()
                .find(|t| t.def.id == a.table_id)
                .map(|t| t.def.name.clone())
        }),
        Arc::new(StringArray::from(
            alerts
                .iter()
                .zip(&statuses)
                .map(|(a, s)| match (a.enabled, &s.error) {
                    (false, _) => "disabled",
                    (true, Some(_)) => "failed",
                    (true, None) => "enabled",
                })
                .collect::<Vec<_>>(),
        )),
        text(&|a| Some(a.keys.join(", "))),
        text(&|a| Some(a.window_text.clone())),
        text(&|a| Some(a.condition.clone())),
        text(&|a| a.channel.clone()),
        text(&|a| Some(a.alerts_table.clone())),
        count(&|s| s.keys),
        count(&|s| s.rows),
        count(&|s| s.rows_seen),
        count(&|s| s.late_rows),
        count(&|s| s.fired),
        Arc::new(
            TimestampMicrosecondArray::from(
                statuses.iter().map(|s| s.last_fired).collect::<Vec<_>>(),
            )
            .with_timezone("+00:00"),
        ),
        Arc::new(StringArray::from(
            statuses.iter().map(|s| s.error.clone()).collect::<Vec<_>>(),
        )),
    ];
    Ok(RecordBatch::try_new(alerts_schema(), columns)?)
}

fn partitions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pipeline", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, true),
        Field::new("high_watermark", DataType::Int64, true),
        Field::new("lag", DataType::Int64, true),
    ]))
}

fn partitions_batch(engine: &Engine) -> Result<RecordBatch> {
    let (mut name, mut partition, mut offset, mut high, mut lag) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for p in engine.pipelines() {
        for (part, o, h, l) in partitions_of(engine, p.id) {
            name.push(p.name.clone());
            partition.push(part);
            offset.push(o);
            high.push(h);
            lag.push(l);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(name)),
        Arc::new(Int32Array::from(partition)),
        Arc::new(Int64Array::from(offset)),
        Arc::new(Int64Array::from(high)),
        Arc::new(Int64Array::from(lag)),
    ];
    Ok(RecordBatch::try_new(partitions_schema(), columns)?)
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
