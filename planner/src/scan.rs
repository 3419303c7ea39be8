//! `HengeScanExec`: reads one table's published segments and buffered rows, applying the
//! query's filters on the way.
//!
//! Segments the filters cannot match were already pruned by the planner ([`crate::prune`]).
//! Within a kept segment, the bitmap indexes ([`crate::filter`]) narrow the rows to those
//! that may match; blocks holding none of them are never decoded, and the remaining filter is
//! evaluated only where the indexes could not answer it exactly — and then, when they
//! answered every conjunct over string columns exactly, only the other conjuncts are
//! (`ScanFilter::rest`), so `LIKE 'DELIVER%' AND quantity > 45` compares quantities without
//! building the strings again. Buffered rows are filtered
//! with the same expression. The work is spread over DataFusion's partitions: segments and
//! in-memory batches are dealt to the partition with the fewest rows so far. A segment whose
//! file turns out damaged is fetched again from deep storage and read once more; one that
//! cannot be healed fails the query with the storage error naming it.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, RecordOutput, Time,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, Statistics,
    StatisticsArgs,
};
use henge_ingest::Engine;
use henge_storage::segment::SegmentReader;
use roaring::RoaringBitmap;

use crate::filter::IndexFilter;
pub(crate) use crate::filter::{Candidates, Residual};
use crate::prune::{OpenSegment, Pruned};

/// One unit of scanning work.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    Segment(OpenSegment),
    Batch(RecordBatch),
}

impl Part {
    fn rows(&self) -> usize {
        match self {
            Part::Segment(s) => s.meta.rows as usize,
            Part::Batch(b) => b.num_rows(),
        }
    }
}

/// The filters a scan applies itself.
#[derive(Debug)]
pub struct ScanFilter {
    /// All filters AND-ed, compiled against the columns the scan reads (`ScanColumns::read`).
    pub predicate: Arc<dyn PhysicalExpr>,
    /// The conjuncts the indexes do not answer (see [`IndexFilter::rest`]), compiled
    /// likewise: evaluated instead of `predicate` where the indexes answered the others.
    pub rest: Option<Arc<dyn PhysicalExpr>>,
    pub index: IndexFilter,
    /// The filters as written, for EXPLAIN.
    pub text: Vec<String>,
}

impl ScanFilter {
    /// What is left to evaluate on a segment's candidate rows, given what its indexes left.
    /// The rest of the conjuncts exists whenever the indexes can leave only it (both come
    /// from [`IndexFilter::splits`]); were it missing, the whole filter is evaluated.
    pub(crate) fn left(&self, residual: Residual) -> Left<'_> {
        match (residual, &self.rest) {
            (Residual::None, _) => Left::Nothing,
            (Residual::Rest, Some(rest)) => Left::Rest(rest),
            (Residual::Rest, None) | (Residual::Whole, _) => Left::Whole(&self.predicate),
        }
    }
}

/// The predicate left to evaluate on a segment's candidate rows.
pub(crate) enum Left<'a> {
    /// None: the candidates are the matching rows.
    Nothing,
    /// The conjuncts the indexes do not answer.
    Rest(&'a Arc<dyn PhysicalExpr>),
    /// The whole filter.
    Whole(&'a Arc<dyn PhysicalExpr>),
}

/// Which of the table's columns a scan reads and which it returns.
#[derive(Debug, Clone)]
pub struct ScanColumns {
    /// Table column indexes decoded when the filter must be evaluated: the output columns
    /// and the filter's, ascending.
    pub read: Vec<usize>,
    /// Table column indexes returned, in output order.
    pub output: Vec<usize>,
    /// Positions of `output` within `read`.
    pub output_in_read: Vec<usize>,
}

impl ScanColumns {
    pub fn new(output: Vec<usize>, filter_columns: &[usize]) -> ScanColumns {
        let mut read: Vec<usize> = output.iter().chain(filter_columns).copied().collect();
        read.sort_unstable();
        read.dedup();
        let output_in_read = output
            .iter()
            .map(|c| read.binary_search(c).unwrap_or_default())
            .collect();
        ScanColumns {
            read,
            output,
            output_in_read,
        }
    }
}

/// What one scan reads: a snapshot of the table, pruned, with the filters to apply.
pub struct ScanInput {
    pub table: String,
    /// Output schema.
    pub schema: SchemaRef,
    /// The schema of the columns read (`ScanColumns::read`).
    pub read_schema: SchemaRef,
    /// The position of the table's time column among the columns read, if read. Segment
    /// rows are sorted on it.
    pub time: Option<usize>,
    pub columns: ScanColumns,
    pub filter: Option<ScanFilter>,
    pub segments: Pruned,
    /// Rows of the real-time buffer.
    pub batches: Vec<RecordBatch>,
    /// No partition needs to return more rows than this (the query's LIMIT, when the scan
    /// applies every filter).
    pub limit: Option<usize>,
}

/// What a scan reads: a pruned snapshot of one table dealt to partitions, the columns and
/// the filter. Shared by [`HengeScanExec`] and the aggregation pushed down into it
/// ([`crate::aggregate::HengeAggregateExec`]).
#[derive(Debug, Clone)]
pub(crate) struct ScanSource {
    pub engine: Arc<Engine>,
    pub table: String,
    pub columns: ScanColumns,
    pub read_schema: SchemaRef,
    /// Position of the time column among the columns read; segment rows are sorted on it.
    pub time: Option<usize>,
    pub filter: Option<Arc<ScanFilter>>,
    pub partitions: Vec<Vec<Part>>,
    /// Segments in all, pruned by time, pruned by statistics.
    pub pruning: (usize, usize, usize),
}

impl ScanSource {
    /// The parts dealt to `partition`.
    pub fn parts(&self, partition: usize) -> Result<Vec<Part>> {
        self.partitions
            .get(partition)
            .cloned()
            .ok_or_else(|| DataFusionError::Internal(format!("no partition {partition}")))
    }

    /// Writes what is read, for EXPLAIN: the table, segments kept and pruned, buffered
    /// batches, partitions, and the filter with the part the bitmap indexes answer.
    pub fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let batches = self
            .partitions
            .iter()
            .flatten()
            .filter(|p| matches!(p, Part::Batch(_)))
            .count();
        let (total, by_time, by_statistics) = self.pruning;
        write!(
            f,
            "table={}, segments={} of {total} ({} pruned: {by_time} by time, \
             {by_statistics} by statistics), buffered_batches={batches}, partitions={}",
            self.table,
            total - by_time - by_statistics,
            by_time + by_statistics,
            self.partitions.len()
        )?;
        if let Some(filter) = &self.filter {
            write!(f, ", filter=[{}]", filter.text.join(", "))?;
            let indexed = filter.index.indexed();
            if !indexed.is_empty() {
                write!(f, ", bitmap=[{}]", indexed.join(", "))?;
            }
        }
        Ok(())
    }
}

/// Scans a snapshot of one table: its kept segments and its in-memory rows.
#[derive(Debug)]
pub struct HengeScanExec {
    pub(crate) source: ScanSource,
    /// Output schema.
    schema: SchemaRef,
    pub(crate) limit: Option<usize>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    per_segment: PerSegment,
}

/// Rows returned and time taken by each segment scanned, for EXPLAIN ANALYZE.
#[derive(Debug, Clone, Default)]
pub(crate) struct PerSegment(Arc<std::sync::Mutex<Vec<(String, usize, std::time::Duration)>>>);

impl PerSegment {
    pub fn record(&self, segment: String, rows: usize, took: std::time::Duration) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((segment, rows, took));
    }
}

impl fmt::Display for PerSegment {
    /// After EXPLAIN ANALYZE has run the plan: `, segment_scans=[…]` with the slowest
    /// segments first, at most ten of them; nothing before.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut scans = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if scans.is_empty() {
            return Ok(());
        }
        f.write_str(", segment_scans=[")?;
        scans.sort_by_key(|s| std::cmp::Reverse(s.2));
        for (i, (segment, rows, took)) in scans.iter().take(10).enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(f, "{sep}{segment}: rows={rows} time={took:.2?}")?;
        }
        if scans.len() > 10 {
            write!(f, "; {} more", scans.len() - 10)?;
        }
        f.write_str("]")
    }
}

/// What EXPLAIN ANALYZE reports of a scan, per partition.
#[derive(Debug, Clone)]
pub(crate) struct ScanMetrics {
    pub baseline: BaselineMetrics,
    pub segments_scanned: Count,
    pub blocks_decoded: Count,
    pub blocks_skipped: Count,
    pub rows_decoded: Count,
    pub segment_scan_time: Time,
}

impl ScanMetrics {
    pub fn new(metrics: &ExecutionPlanMetricsSet, partition: usize) -> ScanMetrics {
        let counter = |name: &'static str| MetricBuilder::new(metrics).counter(name, partition);
        ScanMetrics {
            baseline: BaselineMetrics::new(metrics, partition),
            segments_scanned: counter("segments_scanned"),
            blocks_decoded: counter("blocks_decoded"),
            blocks_skipped: counter("blocks_skipped"),
            rows_decoded: counter("rows_decoded"),
            segment_scan_time: MetricBuilder::new(metrics)
                .subset_time("segment_scan_time", partition),
        }
    }
}

impl HengeScanExec {
    pub fn new(engine: Arc<Engine>, input: ScanInput, target_partitions: usize) -> HengeScanExec {
        let ScanInput {
            table,
            schema,
            read_schema,
            time,
            columns,
            filter,
            segments,
            batches,
            limit,
        } = input;
        let pruning = (segments.total, segments.by_time, segments.by_statistics);
        let mut parts: Vec<Part> = segments
            .kept
            .into_iter()
            .map(Part::Segment)
            .chain(batches.into_iter().map(Part::Batch))
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
        HengeScanExec {
            source: ScanSource {
                engine,
                table,
                columns,
                read_schema,
                time,
                filter: filter.map(Arc::new),
                partitions,
                pruning,
            },
            schema,
            limit,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
            per_segment: PerSegment::default(),
        }
    }
}

impl DisplayAs for HengeScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HengeScanExec: ")?;
        self.source.describe(f)?;
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        write!(f, "{}", self.per_segment)
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

    /// The exact row count where it is known without reading: no filter and no limit. (An
    /// unfiltered COUNT(*) is then answered from metadata.)
    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let mut statistics = Statistics::new_unknown(&self.schema);
        if self.source.filter.is_none() && self.limit.is_none() {
            let partitions = &self.source.partitions;
            let rows: usize = match args.partition() {
                Some(p) => partitions
                    .get(p)
                    .into_iter()
                    .flatten()
                    .map(Part::rows)
                    .sum(),
                None => partitions.iter().flatten().map(Part::rows).sum(),
            };
            statistics.num_rows = Precision::Exact(rows);
        }
        Ok(Arc::new(statistics))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    /// A leaf: there are no children to replace.
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let parts = self.source.parts(partition)?;
        // What the block being handed on holds (decoded, filtered), from the query memory
        // pool: a scan that cannot hold it fails with "resources exhausted" (53200) rather
        // than grow past `query_memory`.
        let held = MemoryConsumer::new(format!("HengeScanExec[{partition}]"))
            .register(context.memory_pool());
        let metrics = ScanMetrics::new(&self.metrics, partition);
        let reader = PartitionReader {
            engine: self.source.engine.clone(),
            columns: self.source.columns.clone(),
            filter: self.source.filter.clone(),
            schema: self.schema.clone(),
            parts: parts.into_iter(),
            current: None,
            remaining: self.limit.unwrap_or(usize::MAX),
            held,
            per_segment: self.per_segment.clone(),
            metrics,
        };
        let stream = futures::stream::try_unfold(reader, |mut reader| async move {
            Ok(reader.next().await?.map(|batch| (batch, reader)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// One partition of a scan, read a block at a time: what it holds is the block being
/// handed on, not a whole segment.
struct PartitionReader {
    engine: Arc<Engine>,
    columns: ScanColumns,
    filter: Option<Arc<ScanFilter>>,
    schema: SchemaRef,
    parts: std::vec::IntoIter<Part>,
    /// The segment being read.
    current: Option<BlockReader>,
    /// Rows still wanted (the limit pushed down, if any).
    remaining: usize,
    held: MemoryReservation,
    per_segment: PerSegment,
    metrics: ScanMetrics,
}

impl PartitionReader {
    /// The next rows that pass the filters, or `None` at the end (or at the limit).
    async fn next(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if self.remaining == 0 {
                return Ok(None);
            }
            let filter = self.filter.as_deref();
            // Decoded rows are new memory; buffered rows are counted by the ingest budget.
            let (batch, decoded) = match &mut self.current {
                Some(segment) => match segment.next(&self.engine, &self.columns, filter).await? {
                    Some(batch) => (batch, true),
                    None => {
                        self.current = None;
                        continue;
                    }
                },
                None => match self.parts.next() {
                    None => return Ok(None),
                    Some(Part::Batch(batch)) => {
                        (filter_batch(batch, &self.columns, filter)?, false)
                    }
                    Some(Part::Segment(segment)) => {
                        let (metrics, per_segment) =
                            (self.metrics.clone(), self.per_segment.clone());
                        self.current = Some(BlockReader::new(segment, metrics, per_segment));
                        continue;
                    }
                },
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = batch.slice(0, batch.num_rows().min(self.remaining));
            if self.remaining != usize::MAX {
                self.remaining -= batch.num_rows();
            }
            // The previous block has been handed on by now.
            let holds = if decoded {
                batch.get_array_memory_size()
            } else {
                0
            };
            self.held.try_resize(holds)?;
            (&batch).record_output(&self.metrics.baseline);
            return with_schema(batch, &self.schema).map(Some);
        }
    }
}

/// One segment read a block at a time. A damaged file is fetched again from deep storage
/// and reading goes on from the block that failed (the blocks before it were whole).
struct BlockReader {
    segment: OpenSegment,
    metrics: ScanMetrics,
    per_segment: PerSegment,
    /// The blocks left to decode; `None` until the indexes are asked.
    blocks: Option<Blocks>,
    rows: usize,
    took: std::time::Duration,
}

/// Blocks of a segment left to decode, each with its mask of candidate rows (`None`: all),
/// and what of the filter is left to evaluate on them.
struct Blocks {
    left: std::collections::VecDeque<(usize, Option<Picked>)>,
    residual: Residual,
}

impl BlockReader {
    fn new(segment: OpenSegment, metrics: ScanMetrics, per_segment: PerSegment) -> BlockReader {
        BlockReader {
            segment,
            metrics,
            per_segment,
            blocks: None,
            rows: 0,
            took: std::time::Duration::ZERO,
        }
    }

    /// The rows of the next block holding candidates that pass the filter (maybe none),
    /// or `None` past the last block.
    async fn next(
        &mut self,
        engine: &Engine,
        columns: &ScanColumns,
        filter: Option<&ScanFilter>,
    ) -> Result<Option<RecordBatch>> {
        let started = std::time::Instant::now();
        let out = self.step(engine, columns, filter).await;
        let took = started.elapsed();
        self.took += took;
        self.metrics.segment_scan_time.add_duration(took);
        out
    }

    async fn step(
        &mut self,
        engine: &Engine,
        columns: &ScanColumns,
        filter: Option<&ScanFilter>,
    ) -> Result<Option<RecordBatch>> {
        if self.blocks.is_none() {
            self.metrics.segments_scanned.add(1);
            let found = healing(engine, &mut self.segment, |r| candidates(r, filter)).await?;
            let blocks = selected_blocks(&self.segment.reader, found.rows.as_ref(), &self.metrics);
            let left = blocks.collect();
            let residual = found.residual;
            self.blocks = Some(Blocks { left, residual });
        }
        let Some(blocks) = &mut self.blocks else {
            return Ok(None);
        };
        let residual = blocks.residual;
        let Some((block, selection)) = blocks.left.pop_front() else {
            return Ok(None);
        };
        // With an exact answer from the indexes only the output columns are decoded.
        let (decode, residual) = match filter.map(|f| f.left(residual)) {
            Some(Left::Rest(predicate) | Left::Whole(predicate)) => {
                (&columns.read, Some(predicate))
            }
            Some(Left::Nothing) | None => (&columns.output, None),
        };
        // A few rows of the block are decoded alone (see `Picked`).
        let at = selection.as_ref().and_then(Picked::positions);
        let read = |r: &SegmentReader| r.read_block_rows(block, decode, at).map_err(storage_error);
        let mut batch = healing(engine, &mut self.segment, read).await?;
        if !decode.is_empty() {
            self.metrics.blocks_decoded.add(1);
            self.metrics.rows_decoded.add(batch.num_rows());
        }
        if let Some(Picked::Mask(mask)) = &selection {
            batch = filter_record_batch(&batch, mask)?;
        }
        if let Some(predicate) = residual {
            batch = evaluate(predicate, batch)?.project(&columns.output_in_read)?;
        }
        self.rows += batch.num_rows();
        Ok(Some(batch))
    }
}

impl Drop for BlockReader {
    /// Counts the segment for EXPLAIN ANALYZE, read to its end or not (a limit).
    fn drop(&mut self) {
        if self.blocks.is_some() {
            let name = std::mem::take(&mut self.segment.name);
            self.per_segment.record(name, self.rows, self.took);
        }
    }
}

/// Filters buffered rows and keeps the output columns.
fn filter_batch(
    batch: RecordBatch,
    columns: &ScanColumns,
    filter: Option<&ScanFilter>,
) -> Result<RecordBatch> {
    let Some(filter) = filter else {
        return Ok(batch.project(&columns.output)?);
    };
    let read = batch.project(&columns.read)?;
    let kept = evaluate(&filter.predicate, read)?;
    Ok(kept.project(&columns.output_in_read)?)
}

/// Keeps the rows of `batch` for which `predicate` is true.
fn evaluate(predicate: &Arc<dyn PhysicalExpr>, batch: RecordBatch) -> Result<RecordBatch> {
    let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
    let mask = datafusion::common::cast::as_boolean_array(&mask)?;
    Ok(filter_record_batch(&batch, mask)?)
}

/// Reads one segment with `read` (through [`healing`]) and counts it for EXPLAIN ANALYZE:
/// in `metrics`, and in `per_segment` with its time and the rows `rows` says it yielded.
pub(crate) async fn timed<T>(
    engine: &Engine,
    mut segment: OpenSegment,
    metrics: &ScanMetrics,
    per_segment: &PerSegment,
    read: impl Fn(&SegmentReader) -> Result<T>,
    rows: impl FnOnce(&T) -> usize,
) -> Result<T> {
    let _timer = metrics.segment_scan_time.timer();
    let started = std::time::Instant::now();
    metrics.segments_scanned.add(1);
    let out = healing(engine, &mut segment, read).await?;
    per_segment.record(segment.name, rows(&out), started.elapsed());
    Ok(out)
}

/// Reads `segment` with `read`; if the file turns out damaged, fetches it again from deep
/// storage, keeps the new copy for the reads that follow, and reads once more.
pub(crate) async fn healing<T>(
    engine: &Engine,
    segment: &mut OpenSegment,
    read: impl Fn(&SegmentReader) -> Result<T>,
) -> Result<T> {
    match read(&segment.reader) {
        Err(DataFusionError::External(e)) => match e.downcast::<henge_storage::Error>() {
            Ok(e) => match *e {
                henge_storage::Error::CorruptSegment { reason, .. } => {
                    tracing::warn!(segment = segment.name, %reason, "damaged segment file; fetching it again from deep storage");
                    segment.reader = engine
                        .segment_cache()
                        .heal(&segment.meta, &segment.name, &reason)
                        .await
                        .map_err(storage_error)?;
                    read(&segment.reader)
                }
                other => Err(storage_error(other)),
            },
            Err(e) => Err(DataFusionError::External(e)),
        },
        result => result,
    }
}

pub(crate) fn storage_error(e: henge_storage::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The rows of a segment that may match `filter` according to its indexes (all rows when
/// `None`), and what is left to evaluate on them.
pub(crate) fn candidates(
    reader: &SegmentReader,
    filter: Option<&ScanFilter>,
) -> Result<Candidates> {
    match filter {
        Some(f) => f.index.candidates(reader),
        None => Ok(Candidates {
            rows: None,
            residual: Residual::None,
        }),
    }
}

/// The blocks of `reader` holding candidate rows, each with a mask of those rows (`None`
/// when all of the block's rows are candidates); blocks without any are counted as skipped.
pub(crate) fn selected_blocks<'a>(
    reader: &'a SegmentReader,
    candidates: Option<&'a RoaringBitmap>,
    metrics: &'a ScanMetrics,
) -> impl Iterator<Item = (usize, Option<Picked>)> + 'a {
    let block_rows = reader.footer().block_rows as u64;
    (0..reader.blocks()).filter_map(move |block| {
        let start = block as u64 * block_rows;
        let end = (start + block_rows).min(reader.rows());
        match candidates.map(|rows| selection(rows, start, end)) {
            None | Some(Selection::All) => Some((block, None)),
            Some(Selection::Some(mask)) => Some((block, Some(mask))),
            Some(Selection::None) => {
                metrics.blocks_skipped.add(1);
                None
            }
        }
    })
}

/// The rows of a block a query needs, where it needs only some: as a mask, or, when they
/// are few (at most one in [`SPARSE`]), as their positions, whose values are read alone
/// (costing less than decoding the whole block).
#[derive(Debug)]
pub(crate) enum Picked {
    Mask(BooleanArray),
    At(Vec<u32>),
}

impl Picked {
    /// The positions, if the rows are picked by them.
    pub(crate) fn positions(&self) -> Option<&[u32]> {
        match self {
            Picked::At(at) => Some(at),
            Picked::Mask(_) => None,
        }
    }
}

/// See [`Picked`].
const SPARSE: u64 = 8;

enum Selection {
    None,
    All,
    Some(Picked),
}

/// Which rows of `start..end` are in `rows`.
fn selection(rows: &RoaringBitmap, start: u64, end: u64) -> Selection {
    let (start32, end32) = (start as u32, end as u32);
    let count = rows.range_cardinality(start32..end32);
    if count == 0 {
        Selection::None
    } else if count == end - start {
        Selection::All
    } else if count * SPARSE <= end - start {
        let mut at = Vec::with_capacity(count as usize);
        rows.range(start32..end32)
            .for_each(|row| at.push(row - start32));
        Selection::Some(Picked::At(at))
    } else {
        // Bits set straight into the mask's words.
        let mut words = vec![0u64; ((end - start) as usize).div_ceil(64)];
        // `for_each` walks the bitmap container by container (its `fold`), not value by
        // value through every level.
        rows.range(start32..end32).for_each(|row| {
            let at = (row - start32) as usize;
            words[at / 64] |= 1 << (at % 64);
        });
        // Arrow's bits are little-endian.
        words.iter_mut().for_each(|w| *w = w.to_le());
        let bits = BooleanBuffer::new(Buffer::from_vec(words), 0, (end - start) as usize);
        Selection::Some(Picked::Mask(BooleanArray::new(bits, None)))
    }
}

/// Segment columns carry the segment's field metadata; hand out the table's.
fn with_schema(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    RecordBatch::try_new_with_options(
        schema.clone(),
        batch.columns().to_vec(),
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(DataFusionError::from)
}
