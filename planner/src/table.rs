//! `HengeTable`: a Henge table as a DataFusion `TableProvider`.
//!
//! Scans read a snapshot of the table (published segments and the real-time buffer) with
//! [`HengeScanExec`]; INSERT writes through the ingest engine, so it is logged and atomic
//! like COPY.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::TryStreamExt;
use henge_ingest::{Engine, Table};

use crate::scan::HengeScanExec;

/// One Henge table, as DataFusion plans and runs queries over it.
#[derive(Debug)]
pub struct HengeTable {
    engine: Arc<Engine>,
    table: Arc<Table>,
    schema: SchemaRef,
}

impl HengeTable {
    pub fn new(engine: Arc<Engine>, table: Arc<Table>) -> HengeTable {
        let schema = table.schema.clone();
        HengeTable {
            engine,
            table,
            schema,
        }
    }
}

#[async_trait]
impl TableProvider for HengeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(HengeScanExec::new(
            self.engine.clone(),
            self.table.def.name.clone(),
            &self.schema,
            projection.cloned(),
            self.table.buffer.snapshot(),
            state.config().target_partitions(),
        )?))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} is not supported for Henge tables"
            )));
        }
        let sink = BufferSink {
            engine: self.engine.clone(),
            table: self.table.clone(),
            schema: self.schema.clone(),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// Receives the rows of an INSERT and appends them, all at once, through the engine.
#[derive(Debug)]
pub struct BufferSink {
    engine: Arc<Engine>,
    table: Arc<Table>,
    schema: SchemaRef,
}

impl DisplayAs for BufferSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HengeInsert: table={}", self.table.def.name)
    }
}

#[async_trait]
impl DataSink for BufferSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let batches: Vec<RecordBatch> = data.try_collect().await?;
        // The input is already cast to the table's types; give it the table's names.
        let batches = batches
            .into_iter()
            .map(|b| RecordBatch::try_new(self.schema.clone(), b.columns().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.engine
            .append(&self.table, batches)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }
}
