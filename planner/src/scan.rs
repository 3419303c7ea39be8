//! `HengeScanExec`: reads one table's published segments and buffered rows.
//!
//! The work is spread over DataFusion's partitions: segments and in-memory batches are dealt
//! to the partition with the fewest rows so far. Segment files come from the local segment
//! cache, which refetches a missing or damaged file from deep storage; a segment that cannot
//! be healed fails the query with the storage error naming it.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions,
};
use futures::{StreamExt, TryStreamExt};
use henge_ingest::{Engine, Snapshot};
use henge_storage::SegmentMeta;

/// One unit of scanning work.
#[derive(Debug, Clone)]
enum Part {
    Segment(SegmentMeta),
    Batch(RecordBatch),
}

impl Part {
    fn rows(&self) -> usize {
        match self {
            Part::Segment(s) => s.rows as usize,
            Part::Batch(b) => b.num_rows(),
        }
    }
}

/// Scans a snapshot of one table: its visible segments and its in-memory rows.
#[derive(Debug)]
pub struct HengeScanExec {
    engine: Arc<Engine>,
    table: String,
    /// The table's columns that are read, as indexes into its schema (and its segments).
    projection: Option<Vec<usize>>,
    /// Output schema (after projection).
    schema: SchemaRef,
    partitions: Vec<Vec<Part>>,
    segments: usize,
    properties: Arc<PlanProperties>,
}

impl HengeScanExec {
    pub fn new(
        engine: Arc<Engine>,
        table: String,
        table_schema: &SchemaRef,
        projection: Option<Vec<usize>>,
        snapshot: Snapshot,
        target_partitions: usize,
    ) -> Result<HengeScanExec> {
        let schema = match &projection {
            Some(p) => Arc::new(table_schema.project(p)?),
            None => table_schema.clone(),
        };
        let segments = snapshot.segments.len();
        let mut parts: Vec<Part> = snapshot
            .segments
            .into_iter()
            .map(Part::Segment)
            .chain(snapshot.batches.into_iter().map(Part::Batch))
            .collect();
        // Largest first, each to the least loaded partition.
        parts.sort_by_key(|p| std::cmp::Reverse(p.rows()));
        let count = target_partitions.max(1).min(parts.len().max(1));
        let mut partitions: Vec<Vec<Part>> = vec![Vec::new(); count];
        let mut load = vec![0usize; count];
        for part in parts {
            let i = (0..count).min_by_key(|&i| load[i]).unwrap_or(0);
            load[i] += part.rows();
            partitions[i].push(part);
        }
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(count),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(HengeScanExec {
            engine,
            table,
            projection,
            schema,
            partitions,
            segments,
            properties,
        })
    }
}

impl DisplayAs for HengeScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let batches: usize = self
            .partitions
            .iter()
            .flatten()
            .filter(|p| matches!(p, Part::Batch(_)))
            .count();
        write!(
            f,
            "HengeScanExec: table={}, segments={}, buffered_batches={}, partitions={}",
            self.table,
            self.segments,
            batches,
            self.partitions.len()
        )
    }
}

impl ExecutionPlan for HengeScanExec {
    fn name(&self) -> &'static str {
        "HengeScanExec"
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

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let parts = self
            .partitions
            .get(partition)
            .cloned()
            .ok_or_else(|| DataFusionError::Internal(format!("no partition {partition}")))?;
        let engine = self.engine.clone();
        let table = self.table.clone();
        let projection = self.projection.clone();
        let schema = self.schema.clone();
        let stream = futures::stream::iter(parts)
            .then(move |part| {
                let engine = engine.clone();
                let table = table.clone();
                let projection = projection.clone();
                let schema = schema.clone();
                async move { read_part(&engine, &table, part, projection.as_deref(), &schema).await }
            })
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

async fn read_part(
    engine: &Engine,
    table: &str,
    part: Part,
    projection: Option<&[usize]>,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    let batches = match part {
        Part::Batch(batch) => vec![match projection {
            Some(p) => batch.project(p)?,
            None => batch,
        }],
        Part::Segment(segment) => {
            let name = segment.display_name(table);
            engine
                .segment_cache()
                .read(&segment, &name, projection)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
        }
    };
    // Segment columns carry the segment's field metadata; hand out the table's.
    batches
        .into_iter()
        .map(|b| {
            RecordBatch::try_new_with_options(
                schema.clone(),
                b.columns().to_vec(),
                &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
            )
            .map_err(DataFusionError::from)
        })
        .collect()
}
