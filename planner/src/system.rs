//! The `sys` schema: Henge's own system tables.
//!
//! `sys.segments` has one row per published segment (state `published`, or `overshadowed`
//! when a newer version replaces it) and one per time chunk still held in memory (state
//! `realtime`, or `persisting` while a CHECKPOINT writes it out).

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
        vec!["segments".into()]
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok((name == "segments").then(|| {
            Arc::new(SegmentsTable {
                engine: self.engine.clone(),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        name == "segments"
    }
}

/// `sys.segments`.
#[derive(Debug)]
struct SegmentsTable {
    engine: Arc<Engine>,
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

impl SegmentsTable {
    fn batch(&self) -> Result<RecordBatch> {
        let mut out = Rows::default();
        for table in self.engine.tables() {
            let (segments, chunks) = table.buffer.contents();
            let shown = visible(&segments);
            let mut sorted = segments.clone();
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
            let granularity = table.def.segment_granularity;
            for chunk in chunks {
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
}

#[async_trait]
impl TableProvider for SegmentsTable {
    fn schema(&self) -> SchemaRef {
        segments_schema()
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
            segments_schema(),
            projection.cloned(),
        )?)
    }
}
