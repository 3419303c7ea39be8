//! A pipeline's transform: its `INSERT INTO table SELECT … FROM source WHERE …`, planned once
//! by DataFusion with Henge's SQL, and run on each batch of records read.
//!
//! The statement is planned in a catalog of its own holding two tables: the source, whose
//! scan reads the batch being transformed, and the target table as INSERT sees it (its
//! columns, types and DEFAULTs), whose sink captures the rows instead of writing them. So
//! column lists, DEFAULTs and casts to the table's types are exactly INSERT's, and the
//! rows are written by the pipeline together with its offsets.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::memory::{MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    collect, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::TryStreamExt;
use henge_storage::TableDef;

/// The catalog a pipeline's statement is planned in.
const CATALOG: &str = "henge_pipeline";

/// Batches handed from the pipeline to the plan, or from the plan back.
type Slot = Arc<Mutex<Vec<RecordBatch>>>;

/// A planned transform.
pub struct Transform {
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    input: Slot,
    output: Slot,
}

impl fmt::Debug for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transform").finish_non_exhaustive()
    }
}

impl Transform {
    /// Plans `statement` (an INSERT INTO `table` … FROM `source`) in `ctx`, a context made
    /// with [`crate::new_context`] whose functions and rules it uses. `source` is the
    /// table-like definition of the source's rows, `table` the target's.
    pub async fn plan(
        ctx: &SessionContext,
        statement: &str,
        source: &TableDef,
        table: &TableDef,
        defaults: HashMap<String, Expr>,
    ) -> Result<Transform> {
        let input: Slot = Arc::default();
        let output: Slot = Arc::default();
        let schema = Arc::new(MemorySchemaProvider::new());
        schema.register_table(
            source.name.clone(),
            Arc::new(BatchSource {
                schema: source.arrow_schema(),
                slot: input.clone(),
            }),
        )?;
        schema.register_table(
            table.name.clone(),
            Arc::new(CaptureTable {
                schema: table.arrow_schema(),
                defaults,
                slot: output.clone(),
            }),
        )?;
        let catalog = Arc::new(MemoryCatalogProvider::new());
        catalog.register_schema(crate::SCHEMA, schema)?;
        ctx.register_catalog(CATALOG, catalog);
        ctx.state_ref()
            .write()
            .config_mut()
            .options_mut()
            .catalog
            .default_catalog = CATALOG.to_owned();
        let state = ctx.state();
        let plan = state.create_logical_plan(statement).await?;
        if !matches!(plan, LogicalPlan::Dml(_)) {
            return Err(DataFusionError::Plan(
                "a pipeline's statement must be an INSERT".into(),
            ));
        }
        let plan = state.create_physical_plan(&plan).await?;
        Ok(Transform {
            plan,
            task: ctx.task_ctx(),
            input,
            output,
        })
    }

    /// The rows the statement makes of `batches` (rows of the source's columns).
    pub async fn run(&self, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
        *lock(&self.input) = batches;
        let done = collect(self.plan.clone(), self.task.clone()).await;
        lock(&self.input).clear();
        let rows = std::mem::take(&mut *lock(&self.output));
        done?;
        Ok(rows)
    }
}

fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Vec<RecordBatch>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// The source, as the statement reads it: the batch being transformed.
#[derive(Debug)]
struct BatchSource {
    schema: SchemaRef,
    slot: Slot,
}

#[async_trait]
impl TableProvider for BatchSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Arc::new(BatchExec {
            schema,
            projection: projection.cloned(),
            slot: self.slot.clone(),
            properties,
        }))
    }
}

/// Reads the batch being transformed (whatever it is when the plan runs).
#[derive(Debug)]
struct BatchExec {
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    slot: Slot,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for BatchExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PipelineBatch")
    }
}

impl ExecutionPlan for BatchExec {
    fn name(&self) -> &'static str {
        "PipelineBatch"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let batches: Vec<Result<RecordBatch>> = lock(&self.slot)
            .iter()
            .map(|b| match &self.projection {
                Some(p) => Ok(b.project(p)?),
                None => Ok(b.clone()),
            })
            .collect();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(batches),
        )))
    }
}

/// The target table, as INSERT plans it: its rows are captured, not written.
#[derive(Debug)]
struct CaptureTable {
    schema: SchemaRef,
    defaults: HashMap<String, Expr>,
    slot: Slot,
}

#[async_trait]
impl TableProvider for CaptureTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Plan(
            "a pipeline's statement cannot read the table it writes".into(),
        ))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} is not supported in a pipeline"
            )));
        }
        let sink = CaptureSink {
            schema: self.schema.clone(),
            slot: self.slot.clone(),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

#[derive(Debug)]
struct CaptureSink {
    schema: SchemaRef,
    slot: Slot,
}

impl DisplayAs for CaptureSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PipelineCapture")
    }
}

#[async_trait]
impl DataSink for CaptureSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let mut rows = 0;
        while let Some(batch) = data.try_next().await? {
            rows += batch.num_rows() as u64;
            // The input is cast to the table's types already; give it the table's names.
            let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
            lock(&self.slot).push(batch);
        }
        Ok(rows)
    }
}
