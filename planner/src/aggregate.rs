//! Aggregate pushdown: the first step of a GROUP BY runs inside the segment scan.
//!
//! DataFusion aggregates in two steps: a partial aggregation per input partition, which
//! outputs every group's accumulator state, and a final one that merges the states. When the
//! partial step reads a Henge table directly, [`PushAggregates`] replaces the partial
//! aggregation and the scan under it with a [`HengeAggregateExec`], which computes the same
//! states segment by segment:
//!
//! - a string column in the GROUP BY is grouped on its dictionary ids, never built as
//!   strings; each group's string is looked up once, when the segment's states are emitted.
//!   When every key is a string and their ids combine into few enough numbers, the combined
//!   ids index the table of groups directly, without hashing;
//! - a key computed from the time column alone, such as a time bucket (`date_trunc`,
//!   `date_bin`, Grafana's `floor(extract(epoch …)/n)*n`), is evaluated once per run of
//!   equal times (segment rows are sorted on time), and when every key is one, rows find
//!   their group once per run;
//! - other keys are evaluated on the decoded columns. Keys without dictionary ids mean the
//!   same in every segment, so one set of groups serves a whole partition;
//! - only the columns the aggregates and keys need are decoded, in the blocks holding rows
//!   the filter's indexes keep; when the indexes answer the filter exactly, a `count(*)`
//!   decodes nothing at all: its counts are the bitmaps' cardinalities, and grouped by one
//!   string column of few values, each group's count is that of its value's bitmap.
//!
//! The accumulators are DataFusion's own, created from the aggregate expressions the query
//! planned, so the final aggregation merges these states as it would its own partial ones
//! and the answers are those of the plan without pushdown.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int64Array, NullArray, RecordBatch,
    RecordBatchOptions, UInt32Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::kernels::boolean::and;
use datafusion::arrow::compute::kernels::cmp::not_distinct;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::{
    cast, filter as filter_array, filter_record_batch, partition, take,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, UInt32Type,
};
use datafusion::common::cast::as_boolean_array;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::functions_aggregate::count::Count;
use datafusion::logical_expr::sort_properties::SortProperties;
use datafusion::logical_expr::Operator;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{EquivalenceProperties, GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_expr::{PhysicalSortExpr, ScalarFunctionExpr};
use datafusion::physical_expr_common::physical_expr::is_volatile;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet, RecordOutput};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions,
};
use futures::{StreamExt, TryStreamExt};
use henge_storage::segment::footer::Stat;
use henge_storage::segment::SegmentReader;
use roaring::RoaringBitmap;

use crate::options::HengeOptions;
use crate::scan::{
    candidates, healing, selected_blocks, storage_error, HengeScanExec, Part, PerSegment,
    ScanMetrics, ScanSource,
};

/// The physical optimizer rule that pushes partial aggregations into Henge scans. It must
/// run before DataFusion combines partial and final aggregations into one.
#[derive(Debug, Default)]
pub struct PushAggregates;

impl PhysicalOptimizerRule for PushAggregates {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !config
            .extensions
            .get::<HengeOptions>()
            .is_none_or(|o| o.pushdown)
        {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let pushed = node
                .downcast_ref::<AggregateExec>()
                .and_then(|aggregate| {
                    // Straight over the scan, or over a projection of it (a subquery's
                    // aliases and computed columns), which the aggregation then computes.
                    let input = aggregate.input();
                    match input.downcast_ref::<ProjectionExec>() {
                        Some(projection) => {
                            let scan = projection.input().downcast_ref::<HengeScanExec>()?;
                            Some((aggregate, Some(projection), scan))
                        }
                        None => Some((aggregate, None, input.downcast_ref::<HengeScanExec>()?)),
                    }
                })
                .map(|(aggregate, projection, scan)| {
                    HengeAggregateExec::try_new(aggregate, projection, scan)
                })
                .transpose()?
                .flatten();
            Ok(match pushed {
                Some(exec) => Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "henge_push_aggregates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A group key as the scan computes it.
#[derive(Debug)]
enum Key {
    /// A string column, at this position of the columns read: grouped on dictionary ids in
    /// segments, on its values in buffered rows.
    Ids(usize),
    /// An integer, date or timestamp column (not the time column), at this position of the
    /// columns read.
    Int(usize),
    /// An expression of the time column alone, such as a time bucket: in segments, where
    /// rows are sorted on time, evaluated once per run of equal times.
    Time(Arc<dyn PhysicalExpr>),
    /// Any other expression, evaluated on the decoded columns.
    Expr(Arc<dyn PhysicalExpr>),
}

/// What a pushed-down aggregation computes, with every expression compiled against the
/// scan's read columns.
#[derive(Debug)]
struct AggregatePlan {
    /// The partial aggregation's output: group keys, then each aggregate's state.
    schema: SchemaRef,
    keys: Vec<Key>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// The read columns decoded as values when the indexes answer the filter exactly, and
    /// the layout of the batches they are evaluated on (the others are placeholders).
    exact: Layout,
    /// The same when the filter must be evaluated on the rows.
    residual: Layout,
    /// The layout of the batches `Key::Time` keys are evaluated on, one row per run: the
    /// time column in its place, placeholders elsewhere.
    runs: Option<(usize, SchemaRef)>,
    /// Every time key is monotonic in time: equal at both ends of a range of sorted rows,
    /// equal throughout.
    monotonic: bool,
    /// Every aggregate is `count(*)` and the one key a string: counts can come from the
    /// bitmap indexes.
    counts_only: bool,
    /// `gby=[…], aggr=[…]`, for EXPLAIN.
    text: String,
}

#[derive(Debug)]
struct Layout {
    /// Positions in the read columns, ascending.
    decoded: Vec<usize>,
    schema: SchemaRef,
}

impl Layout {
    fn new(read_schema: &Schema, decoded: BTreeSet<usize>) -> Layout {
        let fields: Vec<Field> = read_schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if decoded.contains(&i) {
                    f.as_ref().clone()
                } else {
                    Field::new(f.name(), DataType::Null, true)
                }
            })
            .collect();
        Layout {
            decoded: decoded.into_iter().collect(),
            schema: Arc::new(Schema::new(fields)),
        }
    }

    /// A batch of `rows` rows with `values` (one per decoded column) in their places and
    /// placeholders elsewhere.
    fn batch(&self, values: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
        let mut values = values.into_iter();
        let mut decoded = self.decoded.iter().peekable();
        let columns = (0..self.schema.fields().len())
            .map(|i| match decoded.next_if_eq(&&i) {
                Some(_) => values
                    .next()
                    .ok_or_else(|| DataFusionError::Internal("a decoded column is missing".into())),
                None => Ok(Arc::new(NullArray::new(rows)) as ArrayRef),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?)
    }
}

impl AggregatePlan {
    /// The plan for `aggregate` over `source` (through `projection`, if given), or `None`
    /// when it cannot be pushed down.
    fn try_new(
        aggregate: &AggregateExec,
        projection: Option<&ProjectionExec>,
        source: &ScanSource,
    ) -> Result<Option<AggregatePlan>> {
        let group_by = aggregate.group_expr();
        if *aggregate.mode() != AggregateMode::Partial
            || !group_by.is_single()
            || aggregate.limit_options().is_some()
            || aggregate
                .aggr_expr()
                .iter()
                .any(|a| !a.order_bys().is_empty())
        {
            return Ok(None);
        }
        // A volatile expression evaluated once per use would not be the one value per row
        // the projection gives.
        if projection.is_some_and(|p| p.expr().iter().any(|e| is_volatile(&e.expr))) {
            return Ok(None);
        }
        let columns = &source.columns;
        let read_schema = &source.read_schema;
        // The aggregation's expressions refer to the projection's columns, if any, which
        // refer to the scan's output columns; the batches it sees here are laid out as the
        // read columns.
        let project = |expr: &Arc<dyn PhysicalExpr>| -> Result<Arc<dyn PhysicalExpr>> {
            let Some(projection) = projection else {
                return Ok(expr.clone());
            };
            expr.clone()
                .transform_down(|e| {
                    let Some(column) = e.downcast_ref::<Column>() else {
                        return Ok(Transformed::no(e));
                    };
                    let projected = projection.expr().get(column.index()).ok_or_else(|| {
                        DataFusionError::Internal(format!("no projected column {column}"))
                    })?;
                    Ok(Transformed::new(
                        projected.expr.clone(),
                        true,
                        TreeNodeRecursion::Jump,
                    ))
                })
                .map(|t| t.data)
        };
        let remap = |expr: &Arc<dyn PhysicalExpr>| -> Result<Arc<dyn PhysicalExpr>> {
            project(expr)?
                .transform(|e| {
                    let Some(column) = e.downcast_ref::<Column>() else {
                        return Ok(Transformed::no(e));
                    };
                    let at = *columns
                        .output_in_read
                        .get(column.index())
                        .ok_or_else(|| DataFusionError::Internal(format!("no column {column}")))?;
                    Ok(Transformed::yes(
                        Arc::new(Column::new(column.name(), at)) as Arc<dyn PhysicalExpr>
                    ))
                })
                .map(|t| t.data)
        };
        let mut needed = BTreeSet::new();
        let mut need = |expr: &Arc<dyn PhysicalExpr>| {
            needed.extend(collect_columns(expr).iter().map(Column::index));
        };
        let mut keys = Vec::new();
        for (expr, _) in group_by.expr() {
            let expr = remap(expr)?;
            match expr.downcast_ref::<Column>() {
                Some(c) if read_schema.field(c.index()).data_type() == &DataType::Utf8 => {
                    keys.push(Key::Ids(c.index()))
                }
                Some(c)
                    if Some(c.index()) != source.time
                        && matches!(
                            read_schema.field(c.index()).data_type(),
                            DataType::Int16
                                | DataType::Int32
                                | DataType::Int64
                                | DataType::Date32
                                | DataType::Timestamp(TimeUnit::Microsecond, _)
                        ) =>
                {
                    need(&expr);
                    keys.push(Key::Int(c.index()));
                }
                _ => {
                    need(&expr);
                    let columns = collect_columns(&expr);
                    let of_time = source.time.is_some_and(|t| {
                        columns.len() == 1 && columns.iter().all(|c| c.index() == t)
                    });
                    keys.push(match of_time && !is_volatile(&expr) {
                        true => Key::Time(expr),
                        false => Key::Expr(expr),
                    });
                }
            }
        }
        let aggregates = aggregate.aggr_expr().to_vec();
        let arguments = aggregates
            .iter()
            .map(|a| a.expressions().iter().map(&remap).collect())
            .collect::<Result<Vec<Vec<_>>>>()?;
        let filters = aggregate
            .filter_expr()
            .iter()
            .map(|f| f.as_ref().map(&remap).transpose())
            .collect::<Result<Vec<_>>>()?;
        arguments.iter().flatten().for_each(&mut need);
        filters.iter().flatten().for_each(&mut need);
        let mut residual = needed.clone();
        if let Some(filter) = &source.filter {
            residual.extend(collect_columns(&filter.predicate).iter().map(Column::index));
        }
        let names = |items: Vec<String>| items.join(", ");
        let text = format!(
            "gby=[{}], aggr=[{}]",
            names(group_by.expr().iter().map(|(_, n)| n.clone()).collect()),
            names(aggregates.iter().map(|a| a.name().to_owned()).collect()),
        );
        let runs = source
            .time
            .map(|t| (t, Layout::new(read_schema, BTreeSet::from([t])).schema));
        let counts_only = matches!(keys.as_slice(), [Key::Ids(_)])
            && aggregates
                .iter()
                .zip(&arguments)
                .zip(&filters)
                .all(|((a, args), f)| {
                    a.fun().inner().downcast_ref::<Count>().is_some()
                        && !a.is_distinct()
                        && f.is_none()
                        && args.iter().all(|e| {
                            e.downcast_ref::<Literal>()
                                .is_some_and(|l| !l.value().is_null())
                        })
                        && a.state_fields()
                            .is_ok_and(|f| f.len() == 1 && f[0].data_type() == &DataType::Int64)
                });
        let monotonic = runs.as_ref().is_some_and(|(time, schema)| {
            keys.iter().all(|k| match k {
                Key::Time(expr) => monotonic(expr, schema, *time),
                _ => true,
            })
        });
        Ok(Some(AggregatePlan {
            monotonic,
            runs,
            counts_only,
            schema: aggregate.schema(),
            keys,
            aggregates,
            arguments,
            filters,
            exact: Layout::new(read_schema, needed),
            residual: Layout::new(read_schema, residual),
            text,
        }))
    }

    /// The group keys of a batch of segment rows (sorted on time), given the ids of its
    /// string keys. Time keys are evaluated once per run of equal times, where runs are long
    /// enough for that to pay; when every key is one, the groups are found per run too.
    fn keys(&self, batch: &RecordBatch, ids: Vec<ArrayRef>) -> Result<Keys> {
        let rows = batch.num_rows();
        let runs = match &self.runs {
            Some((time, schema)) if self.keys.iter().any(|k| matches!(k, Key::Time(_))) => {
                let uniform = match self.monotonic {
                    true => self.uniform_ranges(batch, *time, schema)?,
                    false => None,
                };
                let ranges = match uniform {
                    Some(ranges) => Some(ranges),
                    None => {
                        let ranges = partition(&[batch.column(*time).clone()])?.ranges();
                        (ranges.len() * 4 <= rows).then_some(ranges)
                    }
                };
                ranges.map(|ranges| {
                    let firsts =
                        UInt32Array::from_iter_values(ranges.iter().map(|r| r.start as u32));
                    (ranges, firsts, *time, schema)
                })
            }
            _ => None,
        };
        // The rows of `batch` at the start of each run, for time keys.
        let starts = match &runs {
            Some((_, firsts, time, schema)) => Some(rows_at(batch, firsts, *time, schema)?),
            None => None,
        };
        let every_key_timed = self.keys.iter().all(|k| matches!(k, Key::Time(_)));
        // Which run each row is in, to spread a value per run over the rows.
        let spread = match (&runs, every_key_timed) {
            (Some((ranges, ..)), false) => Some(UInt32Array::from_iter_values(
                ranges
                    .iter()
                    .enumerate()
                    .flat_map(|(i, r)| std::iter::repeat_n(i as u32, r.len())),
            )),
            _ => None,
        };
        let mut ids = ids.into_iter();
        let keys = self
            .keys
            .iter()
            .map(|key| match (key, &starts) {
                (Key::Ids(_), _) => ids
                    .next()
                    .ok_or_else(|| DataFusionError::Internal("missing group ids".into())),
                (Key::Time(expr), Some(starts)) => {
                    let values = evaluate(expr, starts)?;
                    match &spread {
                        Some(spread) => Ok(take(&values, spread, None)?),
                        None => Ok(values),
                    }
                }
                (Key::Int(at), _) => Ok(batch.column(*at).clone()),
                (Key::Time(expr) | Key::Expr(expr), _) => evaluate(expr, batch),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(match (runs, every_key_timed) {
            (Some((ranges, ..)), true) => Keys::Runs(keys, ranges),
            _ => Keys::Rows(keys),
        })
    }

    /// Ranges of the rows of `batch` (sorted on time) over which every time key keeps one
    /// value, found by halving: a monotonic key with equal values at both ends of a range
    /// has that value throughout. Ranges are tested a level at a time, all at once. `None`
    /// when the keys change so often that evaluating them on every row is cheaper.
    fn uniform_ranges(
        &self,
        batch: &RecordBatch,
        time: usize,
        schema: &SchemaRef,
    ) -> Result<Option<Vec<Range<usize>>>> {
        let rows = batch.num_rows();
        let mut uniform = Vec::new();
        let mut pending: Vec<Range<usize>> = (rows > 0).then_some(0..rows).into_iter().collect();
        while !pending.is_empty() {
            if uniform.len() + pending.len() > rows / 8 {
                return Ok(None);
            }
            let ends = |end: fn(&Range<usize>) -> usize| {
                let rows = UInt32Array::from_iter_values(pending.iter().map(|r| end(r) as u32));
                rows_at(batch, &rows, time, schema)
            };
            let (firsts, lasts) = (ends(|r| r.start)?, ends(|r| r.end - 1)?);
            let mut same = BooleanArray::from(vec![true; pending.len()]);
            for key in &self.keys {
                if let Key::Time(expr) = key {
                    let equal = not_distinct(&evaluate(expr, &firsts)?, &evaluate(expr, &lasts)?)?;
                    same = and(&same, &equal)?;
                }
            }
            let mut next = Vec::new();
            for (range, same) in pending.into_iter().zip(same.values().iter()) {
                if same || range.len() == 1 {
                    uniform.push(range);
                } else {
                    let middle = range.start + range.len() / 2;
                    next.push(range.start..middle);
                    next.push(middle..range.end);
                }
            }
            pending = next;
        }
        uniform.sort_unstable_by_key(|r| r.start);
        Ok(Some(uniform))
    }

    /// Whether some group key is a string grouped on dictionary ids.
    fn has_ids(&self) -> bool {
        self.keys.iter().any(|k| matches!(k, Key::Ids(_)))
    }

    /// The type each group key has in a part: dictionary ids for string keys of segments,
    /// the output type otherwise.
    fn key_types(&self, ids: bool) -> Vec<DataType> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, key)| match key {
                Key::Ids(_) if ids => DataType::UInt32,
                _ => self.schema.field(i).data_type().clone(),
            })
            .collect()
    }
}

/// The partial aggregation of one Henge table's scan, computed segment by segment (and
/// buffered batch by batch) inside the scan.
#[derive(Debug)]
pub struct HengeAggregateExec {
    source: ScanSource,
    plan: Arc<AggregatePlan>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    per_segment: PerSegment,
}

impl HengeAggregateExec {
    /// Pushes the partial aggregation `aggregate` into the scan `scan` it reads, or `None`
    /// when it cannot be.
    fn try_new(
        aggregate: &AggregateExec,
        projection: Option<&ProjectionExec>,
        scan: &HengeScanExec,
    ) -> Result<Option<HengeAggregateExec>> {
        if scan.limit.is_some() {
            return Ok(None);
        }
        let source = scan.source.clone();
        let Some(plan) = AggregatePlan::try_new(aggregate, projection, &source)? else {
            return Ok(None);
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(plan.schema.clone()),
            Partitioning::UnknownPartitioning(source.partitions.len()),
            // Segments with their own groups emit them as they end; shared groups are
            // emitted at the end of the partition.
            EmissionType::Both,
            Boundedness::Bounded,
        ));
        Ok(Some(HengeAggregateExec {
            source,
            plan: Arc::new(plan),
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
            per_segment: PerSegment::default(),
        }))
    }
}

impl DisplayAs for HengeAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HengeAggregateExec: aggregation pushed down, {}, ",
            self.plan.text
        )?;
        self.source.describe(f)?;
        write!(f, "{}", self.per_segment)
    }
}

impl ExecutionPlan for HengeAggregateExec {
    fn name(&self) -> &'static str {
        "HengeAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
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
        let parts = self.source.parts(partition)?;
        let source = self.source.clone();
        let plan = self.plan.clone();
        let metrics = ScanMetrics::new(&self.metrics, partition);
        let baseline = metrics.baseline.clone();
        let per_segment = self.per_segment.clone();
        // Keys without dictionary ids mean the same in every part: one set of groups serves
        // the whole partition, emitted at its end. Ids are a segment's own, so with them each
        // segment's groups are emitted when it is done.
        let shared = match plan.has_ids() {
            true => None,
            false => Some(Arc::new(Mutex::new(Partials::new(
                plan.clone(),
                false,
                None,
            )?))),
        };
        let last = shared.clone();
        let parts = futures::stream::iter(parts).then(move |part| {
            let source = source.clone();
            let plan = plan.clone();
            let metrics = metrics.clone();
            let per_segment = per_segment.clone();
            let shared = shared.clone();
            async move {
                let partials = match part {
                    Part::Batch(batch) => aggregate_batch(&plan, &source, batch, shared.as_deref()),
                    Part::Segment(segment) => {
                        let _timer = metrics.segment_scan_time.timer();
                        let started = std::time::Instant::now();
                        metrics.segments_scanned.add(1);
                        let scan = SegmentAggregation {
                            plan: &plan,
                            source: &source,
                            metrics: &metrics,
                            into_shared: OnceLock::new(),
                            next_block: AtomicUsize::new(0),
                            rows: AtomicUsize::new(0),
                        };
                        let partials = healing(&source.engine, &segment, |reader| {
                            scan.run(reader, shared.as_deref())
                        })
                        .await?;
                        let rows = scan.rows.load(Ordering::Relaxed);
                        per_segment.record(segment.name, rows, started.elapsed());
                        Ok(partials)
                    }
                }?;
                // Shared groups past a bound are emitted early, to bound memory: partial
                // states of one group emitted twice merge all the same.
                match (partials, shared.as_deref()) {
                    (None, Some(shared)) => {
                        let mut shared = lock(shared);
                        match shared.groups() >= SHARED_GROUPS {
                            true => shared.finish(|_, array| Ok(array)),
                            false => Ok(None),
                        }
                    }
                    (partials, _) => Ok(partials),
                }
            }
        });
        let end = futures::stream::once(async move {
            match last {
                Some(shared) => lock(&shared).finish(|_, array| Ok(array)),
                None => Ok(None),
            }
        });
        let stream = parts.chain(end).try_filter_map(move |partials| {
            if let Some(batch) = &partials {
                batch.record_output(&baseline);
            }
            std::future::ready(Ok(partials))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.plan.schema.clone(),
            stream,
        )))
    }
}

fn lock(partials: &Mutex<Partials>) -> std::sync::MutexGuard<'_, Partials> {
    partials.lock().unwrap_or_else(|e| e.into_inner())
}

/// Groups a partition's shared partials hold at most before they are emitted.
const SHARED_GROUPS: usize = 1 << 20;

/// Accumulators with the groups they hold.
enum Groups {
    /// No GROUP BY: one accumulator per aggregate, fed whole arrays.
    Global(Vec<Box<dyn Accumulator>>),
    Keyed {
        index: GroupIndex,
        accumulators: Vec<Box<dyn GroupsAccumulator>>,
        /// The group of each row of the batch being added (reused).
        indices: Vec<usize>,
    },
}

/// How rows find their group.
enum GroupIndex {
    /// By hashing the keys (DataFusion's own group tables).
    Hashed(Box<dyn GroupValues>),
    /// Every key a string grouped on dictionary ids, and few combinations of them.
    Dense(DenseIds),
}

/// How a key's values become small numbers (codes) in [`DenseIds`].
#[derive(Debug, Clone, Copy)]
enum Code {
    /// Dictionary ids, as they are.
    Id,
    /// Integers (dates, timestamps) counted from the segment's smallest value.
    Offset(i64),
}

/// Groups found without hashing: the codes of a row's keys, combined into one number, index
/// a table of groups. For keys of few values: strings by dictionary id, integers within a
/// narrow range.
struct DenseIds {
    codes: Vec<Code>,
    /// For each key, its number of values plus one: the last code stands for NULL.
    sizes: Vec<u32>,
    /// The group of each combination of codes, `u32::MAX` where there is none yet.
    slots: Vec<u32>,
    /// The combination of each group.
    groups: Vec<u32>,
    /// The combination of each row of the batch being added (reused).
    combined: Vec<u32>,
}

impl DenseIds {
    /// A table for keys coded by `codes` with `values` values each, when the combinations
    /// are few enough for one (at most `limit`).
    fn new(codes: Vec<(Code, u64)>, limit: usize) -> Option<DenseIds> {
        let sizes: Vec<u32> = codes
            .iter()
            .map(|&(_, values)| u32::try_from(values.checked_add(1)?).ok())
            .collect::<Option<_>>()?;
        let combinations = sizes
            .iter()
            .try_fold(1usize, |n, &s| n.checked_mul(s as usize))
            .filter(|&n| n <= limit)?;
        Some(DenseIds {
            codes: codes.into_iter().map(|(c, _)| c).collect(),
            sizes,
            slots: vec![u32::MAX; combinations],
            groups: Vec::new(),
            combined: Vec::new(),
        })
    }

    fn intern(&mut self, keys: &[ArrayRef], indices: &mut Vec<usize>) -> Result<()> {
        let rows = keys.first().map_or(0, |k| k.len());
        self.combined.clear();
        self.combined.resize(rows, 0);
        let outside =
            || DataFusionError::Internal("a group key outside its segment's range".into());
        for ((key, &size), code) in keys.iter().zip(&self.sizes).zip(&self.codes) {
            let null = size - 1;
            match code {
                Code::Id => {
                    let ids = key.as_primitive::<UInt32Type>();
                    combine(
                        &mut self.combined,
                        ids.nulls(),
                        size,
                        ids.values().iter().map(|&id| (id < null).then_some(id)),
                    )
                }
                Code::Offset(min) => {
                    let values = cast(key, &DataType::Int64)?;
                    let values = values.as_primitive::<Int64Type>();
                    combine(
                        &mut self.combined,
                        values.nulls(),
                        size,
                        values.values().iter().map(|&v| {
                            v.checked_sub(*min)
                                .and_then(|c| u32::try_from(c).ok())
                                .filter(|&c| c < null)
                        }),
                    )
                }
            }
            .ok_or_else(outside)?;
        }
        indices.clear();
        for &c in &self.combined {
            let slot = self.slots.get_mut(c as usize).ok_or_else(outside)?;
            if *slot == u32::MAX {
                *slot = self.groups.len() as u32;
                self.groups.push(c);
            }
            indices.push(*slot as usize);
        }
        Ok(())
    }

    /// The keys of every group: dictionary ids, or the integers as `Int64`.
    fn emit(&mut self) -> Vec<ArrayRef> {
        let mut codes: Vec<Vec<Option<u32>>> =
            vec![Vec::with_capacity(self.groups.len()); self.sizes.len()];
        for &group in &self.groups {
            let mut c = group;
            for (k, &size) in self.sizes.iter().enumerate().rev() {
                let code = c % size;
                c /= size;
                codes[k].push((code != size - 1).then_some(code));
            }
        }
        self.groups.clear();
        self.slots.fill(u32::MAX);
        codes
            .into_iter()
            .zip(&self.codes)
            .map(|(codes, code)| match code {
                Code::Id => Arc::new(UInt32Array::from(codes)) as ArrayRef,
                Code::Offset(min) => Arc::new(Int64Array::from_iter(
                    codes.into_iter().map(|c| c.map(|c| min + i64::from(c))),
                )),
            })
            .collect()
    }
}

/// Folds one key's codes into the combined codes of the rows: `combined * size + code`,
/// NULL rows taking the last code. `None` when a value has no code.
fn combine(
    combined: &mut [u32],
    nulls: Option<&NullBuffer>,
    size: u32,
    codes: impl Iterator<Item = Option<u32>>,
) -> Option<()> {
    let null = size - 1;
    match nulls.filter(|n| n.null_count() > 0) {
        None => {
            for (c, code) in combined.iter_mut().zip(codes) {
                *c = *c * size + code?;
            }
        }
        Some(nulls) => {
            for ((i, c), code) in combined.iter_mut().enumerate().zip(codes) {
                let code = match nulls.is_valid(i) {
                    true => code?,
                    false => null,
                };
                *c = *c * size + code;
            }
        }
    }
    Some(())
}

/// The group keys of a batch of rows.
enum Keys {
    /// One array per key with a value for every row.
    Rows(Vec<ArrayRef>),
    /// One array per key with a value for every run of rows: `runs` are the runs.
    Runs(Vec<ArrayRef>, Vec<Range<usize>>),
}

/// The aggregates' states in the groups of a part (a segment or a buffered batch) or of a
/// whole partition.
struct Partials {
    plan: Arc<AggregatePlan>,
    groups: Groups,
    /// Arrays of the constant arguments (`count(*)` counts a literal 1), kept to be sliced.
    constants: Vec<Option<ArrayRef>>,
    /// The group of each run of the batch being added (reused).
    run_indices: Vec<usize>,
    /// Rows added so far.
    rows: usize,
}

impl Partials {
    /// Empty partials. `ids` when string keys come as dictionary ids; `dense` with their
    /// dictionaries' lengths to group them without hashing, where that fits.
    fn new(plan: Arc<AggregatePlan>, ids: bool, dense: Option<DenseIds>) -> Result<Partials> {
        let groups = if plan.keys.is_empty() {
            Groups::Global(
                plan.aggregates
                    .iter()
                    .map(|a| a.create_accumulator())
                    .collect::<Result<_>>()?,
            )
        } else {
            let accumulators = plan
                .aggregates
                .iter()
                .map(|a| {
                    if a.groups_accumulator_supported() {
                        a.create_groups_accumulator()
                    } else {
                        let a = a.clone();
                        Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                            a.create_accumulator()
                        })) as Box<dyn GroupsAccumulator>)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let index = match dense {
                Some(dense) => GroupIndex::Dense(dense),
                None => {
                    let fields: Vec<Field> = plan
                        .key_types(ids)
                        .into_iter()
                        .enumerate()
                        .map(|(i, ty)| Field::new(format!("key{i}"), ty, true))
                        .collect();
                    GroupIndex::Hashed(new_group_values(
                        Arc::new(Schema::new(fields)),
                        &GroupOrdering::None,
                    )?)
                }
            };
            Groups::Keyed {
                index,
                accumulators,
                indices: Vec::new(),
            }
        };
        let constants = vec![None; plan.arguments.iter().flatten().count()];
        Ok(Partials {
            plan,
            groups,
            constants,
            run_indices: Vec::new(),
            rows: 0,
        })
    }

    /// The number of groups held.
    fn groups(&self) -> usize {
        match &self.groups {
            Groups::Global(_) => 1,
            Groups::Keyed { index, .. } => match index {
                GroupIndex::Hashed(values) => values.len(),
                GroupIndex::Dense(dense) => dense.groups.len(),
            },
        }
    }

    /// The arguments of every aggregate for the rows of `batch`.
    fn arguments(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<ArrayRef>>> {
        let rows = batch.num_rows();
        let mut constants = self.constants.iter_mut();
        self.plan
            .arguments
            .iter()
            .map(|arguments| {
                arguments
                    .iter()
                    .map(|e| {
                        let cached = constants.next().ok_or_else(|| {
                            DataFusionError::Internal("an argument without a slot".into())
                        })?;
                        let Some(literal) = e.downcast_ref::<Literal>() else {
                            return evaluate(e, batch);
                        };
                        if cached.as_ref().is_none_or(|c| c.len() < rows) {
                            *cached = Some(literal.value().to_array_of_size(rows.max(1 << 16))?);
                        }
                        Ok(cached.as_ref().map_or_else(
                            || new_null_array(&DataType::Null, 0),
                            |c| c.slice(0, rows),
                        ))
                    })
                    .collect()
            })
            .collect()
    }

    /// Adds the rows of `batch` (laid out as the read columns), whose group keys are `keys`.
    fn add(&mut self, batch: &RecordBatch, keys: &Keys) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let arguments = self.arguments(batch)?;
        let filters = self
            .plan
            .filters
            .iter()
            .map(|f| f.as_ref().map(|f| evaluate(f, batch)).transpose())
            .collect::<Result<Vec<_>>>()?;
        match &mut self.groups {
            Groups::Global(accumulators) => {
                for ((accumulator, values), filter) in
                    accumulators.iter_mut().zip(arguments).zip(&filters)
                {
                    let values = match filter {
                        None => values,
                        Some(mask) => values
                            .iter()
                            .map(|v| Ok(filter_array(v, as_boolean_array(mask)?)?))
                            .collect::<Result<Vec<_>>>()?,
                    };
                    accumulator.update_batch(&values)?;
                }
            }
            Groups::Keyed {
                index,
                accumulators,
                indices,
            } => {
                let (keys, runs) = match keys {
                    Keys::Rows(keys) => (keys, None),
                    Keys::Runs(keys, runs) => (keys, Some(runs)),
                };
                let target = match runs {
                    Some(_) => &mut self.run_indices,
                    None => &mut *indices,
                };
                let count = match index {
                    GroupIndex::Hashed(values) => {
                        values.intern(keys, target)?;
                        values.len()
                    }
                    GroupIndex::Dense(dense) => {
                        dense.intern(keys, target)?;
                        dense.groups.len()
                    }
                };
                if let Some(runs) = runs {
                    indices.clear();
                    for (run, &group) in runs.iter().zip(&self.run_indices) {
                        indices.extend(std::iter::repeat_n(group, run.len()));
                    }
                }
                for ((accumulator, values), filter) in
                    accumulators.iter_mut().zip(arguments).zip(&filters)
                {
                    let filter = filter.as_ref().map(|f| as_boolean_array(f)).transpose()?;
                    accumulator.update_batch(&values, indices, filter, count)?;
                }
            }
        }
        self.rows += rows;
        Ok(())
    }

    /// The groups' keys and states, as the partial aggregation outputs them, or `None` when
    /// no row was added. `key` turns each raw key column (ids for string keys of segments)
    /// into the output's.
    fn finish(
        &mut self,
        key: impl Fn(usize, ArrayRef) -> Result<ArrayRef>,
    ) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let mut columns = Vec::new();
        match &mut self.groups {
            Groups::Global(accumulators) => {
                for accumulator in accumulators {
                    for state in accumulator.state()? {
                        columns.push(state.to_array()?);
                    }
                }
            }
            Groups::Keyed {
                index,
                accumulators,
                ..
            } => {
                let keys = match index {
                    GroupIndex::Hashed(values) => values.emit(EmitTo::All)?,
                    GroupIndex::Dense(dense) => dense.emit(),
                };
                for (i, array) in keys.into_iter().enumerate() {
                    columns.push(key(i, array)?);
                }
                for accumulator in accumulators {
                    columns.extend(accumulator.state(EmitTo::All)?);
                }
            }
        }
        self.rows = 0;
        Ok(Some(RecordBatch::try_new(
            self.plan.schema.clone(),
            columns,
        )?))
    }
}

/// Evaluates `expr` on `batch` as an array.
fn evaluate(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<ArrayRef> {
    expr.evaluate(batch)?.into_array(batch.num_rows())
}

/// The partial aggregation of buffered rows: added to `shared` when given, else emitted.
fn aggregate_batch(
    plan: &Arc<AggregatePlan>,
    source: &ScanSource,
    batch: RecordBatch,
    shared: Option<&Mutex<Partials>>,
) -> Result<Option<RecordBatch>> {
    let mut read = batch.project(&source.columns.read)?;
    if let Some(filter) = &source.filter {
        let mask = evaluate(&filter.predicate, &read)?;
        read = filter_record_batch(&read, as_boolean_array(&mask)?)?;
    }
    let keys = plan
        .keys
        .iter()
        .map(|key| match key {
            Key::Ids(at) => Ok(read.column(*at).clone()),
            Key::Int(at) => Ok(read.column(*at).clone()),
            Key::Time(expr) | Key::Expr(expr) => evaluate(expr, &read),
        })
        .collect::<Result<Vec<_>>>()?;
    let keys = Keys::Rows(keys);
    match shared {
        Some(shared) => {
            lock(shared).add(&read, &keys)?;
            Ok(None)
        }
        None => {
            let mut partials = Partials::new(plan.clone(), false, None)?;
            partials.add(&read, &keys)?;
            partials.finish(|_, array| Ok(array))
        }
    }
}

/// The partial aggregation of one segment. It may be run again on a healed copy of the
/// segment after damage was found in a block; it then goes on from that block.
struct SegmentAggregation<'a> {
    plan: &'a Arc<AggregatePlan>,
    source: &'a ScanSource,
    metrics: &'a ScanMetrics,
    /// Whether the segment's rows go to the partition's shared partials.
    into_shared: OnceLock<bool>,
    /// The first block not yet added.
    next_block: AtomicUsize,
    /// Rows added so far.
    rows: AtomicUsize,
}

impl SegmentAggregation<'_> {
    /// Adds the segment's rows to partials of its own when its keys have few values
    /// (grouped without hashing) or are dictionary ids, emitted at the end with each group's
    /// strings looked up in the dictionaries; to `shared` otherwise.
    fn run(
        &self,
        reader: &SegmentReader,
        shared: Option<&Mutex<Partials>>,
    ) -> Result<Option<RecordBatch>> {
        let plan = self.plan;
        let read = &self.source.columns.read;
        let candidates = candidates(reader, self.source.filter.as_deref())?;
        let dense = self.dense(reader)?;
        // Decided on the first run and kept on a run after healing, which must go on the
        // way the first began.
        let into_shared = *self
            .into_shared
            .get_or_init(|| dense.is_none() && shared.is_some());
        if let (true, Some(shared)) = (into_shared, shared) {
            self.walk(reader, &candidates, |batch, keys| {
                lock(shared).add(batch, keys)
            })?;
            return Ok(None);
        }
        // A fresh start on every run: these partials die with a failed one.
        self.next_block.store(0, Ordering::Relaxed);
        self.rows.store(0, Ordering::Relaxed);
        if let Some(counts) = self.counts_from_bitmaps(reader, &candidates)? {
            return Ok(counts);
        }
        let mut partials = Partials::new(plan.clone(), true, dense)?;
        self.walk(reader, &candidates, |batch, keys| partials.add(batch, keys))?;
        partials.finish(|i, array| {
            let array = match plan.keys.get(i) {
                Some(Key::Ids(at)) => {
                    let dictionary = reader.dictionary(read[*at]).map_err(storage_error)?;
                    take(dictionary, array.as_primitive::<UInt32Type>(), None)?
                }
                _ => array,
            };
            let wanted = plan.schema.field(i).data_type();
            Ok(match array.data_type() == wanted {
                true => array,
                false => cast(&array, wanted)?,
            })
        })
    }

    /// `count(*)` grouped by one string column, where the indexes answer the filter exactly
    /// and the column has few values, each with its bitmap: a group's count is the number
    /// of candidate rows in its value's bitmap, and no row is decoded. `None` when this does
    /// not apply; `Some(None)` when no row counts.
    fn counts_from_bitmaps(
        &self,
        reader: &SegmentReader,
        (candidates, exact): &(Option<RoaringBitmap>, bool),
    ) -> Result<Option<Option<RecordBatch>>> {
        let plan = self.plan;
        let (true, true, [Key::Ids(at)]) = (plan.counts_only, *exact, plan.keys.as_slice()) else {
            return Ok(None);
        };
        let column = self.source.columns.read[*at];
        let indexed = reader
            .footer()
            .columns
            .get(column)
            .and_then(|c| c.dictionary.as_ref())
            .is_some_and(|d| d.bitmaps.is_some());
        let dictionary = reader.dictionary(column).map_err(storage_error)?;
        if !indexed || dictionary.len() > (reader.rows() as usize / 64).max(64) {
            return Ok(None);
        }
        let count = |rows: RoaringBitmap| match candidates {
            Some(candidates) => rows.intersection_len(candidates),
            None => rows.len(),
        };
        let (mut ids, mut counts) = (Vec::new(), Vec::new());
        for id in 0..dictionary.len() as u32 {
            let rows = reader.value_bitmap(column, id).map_err(storage_error)?;
            match count(rows) {
                0 => {}
                n => {
                    ids.push(Some(id));
                    counts.push(n as i64);
                }
            }
        }
        match count(reader.null_rows(column).map_err(storage_error)?) {
            0 => {}
            n => {
                ids.push(None);
                counts.push(n as i64);
            }
        }
        let rows: i64 = counts.iter().sum();
        self.rows.store(rows as usize, Ordering::Relaxed);
        if rows == 0 {
            return Ok(Some(None));
        }
        let strings = take(dictionary, &UInt32Array::from(ids), None)?;
        let wanted = plan.schema.field(0).data_type();
        let mut columns = vec![match strings.data_type() == wanted {
            true => strings,
            false => cast(&strings, wanted)?,
        }];
        let counts: ArrayRef = Arc::new(Int64Array::from(counts));
        columns.extend(plan.aggregates.iter().map(|_| counts.clone()));
        Ok(Some(Some(RecordBatch::try_new(
            plan.schema.clone(),
            columns,
        )?)))
    }

    /// A table of groups without hashing for this segment, when every key is a string or an
    /// integer column and their values combine into few enough numbers: for strings, as
    /// many as four times the rows; for integers, whose groups are otherwise shared by the
    /// whole partition, an eighth of the rows (segments then emit few groups each).
    fn dense(&self, reader: &SegmentReader) -> Result<Option<DenseIds>> {
        if self.plan.keys.is_empty() {
            return Ok(None);
        }
        let read = &self.source.columns.read;
        let rows = reader.rows() as usize;
        let mut codes = Vec::new();
        let mut integers = false;
        for key in &self.plan.keys {
            match key {
                Key::Ids(at) => {
                    let values = reader.dictionary(read[*at]).map_err(storage_error)?.len();
                    codes.push((Code::Id, values as u64));
                }
                Key::Int(at) => {
                    integers = true;
                    let meta = reader.footer().columns.get(read[*at]);
                    match meta.map(|m| (&m.min, &m.max)) {
                        Some((Some(Stat::Int(min)), Some(Stat::Int(max)))) if min <= max => {
                            let Some(span) =
                                max.checked_sub(*min).and_then(|s| u64::try_from(s).ok())
                            else {
                                return Ok(None);
                            };
                            codes.push((Code::Offset(*min), span + 1));
                        }
                        // Every value NULL.
                        Some((None, None))
                            if meta.is_some_and(|m| m.null_count == reader.rows()) =>
                        {
                            codes.push((Code::Offset(0), 0))
                        }
                        _ => return Ok(None),
                    }
                }
                Key::Time(_) | Key::Expr(_) => return Ok(None),
            }
        }
        let limit = match integers {
            false => rows.saturating_mul(4).clamp(1 << 12, 1 << 20),
            true => (rows / 8).clamp(1 << 12, 1 << 20),
        };
        Ok(DenseIds::new(codes, limit))
    }

    /// Decodes what the aggregation needs of each block holding candidate rows, from
    /// `next_block` on, and hands the matching rows and their group keys to `add`.
    fn walk(
        &self,
        reader: &SegmentReader,
        (candidates, exact): &(Option<RoaringBitmap>, bool),
        mut add: impl FnMut(&RecordBatch, &Keys) -> Result<()>,
    ) -> Result<()> {
        let (plan, source, metrics) = (self.plan, self.source, self.metrics);
        let read = &source.columns.read;
        let exact = *exact;
        let (layout, residual) = match &source.filter {
            Some(f) if !exact => (&plan.residual, Some(&f.predicate)),
            _ => (&plan.exact, None),
        };
        let decode: Vec<usize> = layout.decoded.iter().map(|&p| read[p]).collect();
        let id_columns: Vec<usize> = plan
            .keys
            .iter()
            .filter_map(|k| match k {
                Key::Ids(at) => Some(read[*at]),
                Key::Int(_) | Key::Time(_) | Key::Expr(_) => None,
            })
            .collect();
        let from = self.next_block.load(Ordering::Relaxed);
        for (block, selection) in selected_blocks(reader, candidates.as_ref(), metrics) {
            if block < from {
                continue;
            }
            let mut values = match decode.is_empty() {
                true => Vec::new(),
                false => reader
                    .read_block(block, &decode)
                    .map_err(storage_error)?
                    .columns()
                    .to_vec(),
            };
            let mut ids = id_columns
                .iter()
                .map(|&c| {
                    let ids = reader.read_ids(c, block).map_err(storage_error)?;
                    Ok(Arc::new(ids) as ArrayRef)
                })
                .collect::<Result<Vec<_>>>()?;
            let mut rows = reader.block_rows(block);
            if !decode.is_empty() || !ids.is_empty() {
                metrics.blocks_decoded.add(1);
                metrics.rows_decoded.add(rows);
            }
            if let Some(mask) = &selection {
                keep(&mut values, &mut ids, mask)?;
                rows = mask.true_count();
            }
            let mut batch = layout.batch(values, rows)?;
            if let Some(predicate) = residual {
                let mask = evaluate(predicate, &batch)?;
                let mask = as_boolean_array(&mask)?;
                let mut values: Vec<ArrayRef> = layout
                    .decoded
                    .iter()
                    .map(|&p| batch.column(p).clone())
                    .collect();
                keep(&mut values, &mut ids, mask)?;
                batch = layout.batch(values, mask.true_count())?;
            }
            let keys = plan.keys(&batch, ids)?;
            add(&batch, &keys)?;
            self.rows.fetch_add(batch.num_rows(), Ordering::Relaxed);
            self.next_block.store(block + 1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The rows `rows` of `batch`'s time column (at `time`), laid out as `schema` (the time
/// column and placeholders).
fn rows_at(
    batch: &RecordBatch,
    rows: &UInt32Array,
    time: usize,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let columns = (0..schema.fields().len())
        .map(|i| match i == time {
            true => Ok(take(batch.column(i), rows, None)?),
            false => Ok(Arc::new(NullArray::new(rows.len())) as ArrayRef),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Whether `expr`, a function of the time column alone (at `time` in `schema`), never
/// decreases or never increases as time grows: `date_trunc`, `date_bin`, `extract(epoch …)`,
/// `floor`, `ceil`, `round`, order-keeping casts and arithmetic with constants, or what
/// DataFusion's ordering rules tell of other functions.
fn monotonic(expr: &Arc<dyn PhysicalExpr>, schema: &SchemaRef, time: usize) -> bool {
    matches!(
        trend(expr, schema, time),
        Trend::Constant | Trend::Up | Trend::Down
    )
}

/// How an expression moves as time grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trend {
    Constant,
    Up,
    Down,
    Unknown,
}

impl Trend {
    fn flip(self) -> Trend {
        match self {
            Trend::Up => Trend::Down,
            Trend::Down => Trend::Up,
            other => other,
        }
    }

    /// The trend of a sum of two expressions with these trends.
    fn plus(self, other: Trend) -> Trend {
        match (self, other) {
            (Trend::Constant, t) | (t, Trend::Constant) => t,
            (a, b) if a == b => a,
            _ => Trend::Unknown,
        }
    }
}

fn trend(expr: &Arc<dyn PhysicalExpr>, schema: &SchemaRef, time: usize) -> Trend {
    if let Some(column) = expr.downcast_ref::<Column>() {
        return match column.index() == time {
            true => Trend::Up,
            false => Trend::Unknown,
        };
    }
    if sign(expr).is_some() {
        return Trend::Constant;
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        let keeps_order = cast.cast_type().is_numeric() || cast.cast_type().is_temporal();
        return match keeps_order {
            true => trend(cast.expr(), schema, time),
            false => Trend::Unknown,
        };
    }
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        let (left, right) = (binary.left(), binary.right());
        let scaled = |t: Trend, sign: Option<std::cmp::Ordering>| match sign {
            Some(std::cmp::Ordering::Greater) => t,
            Some(std::cmp::Ordering::Less) => t.flip(),
            _ => Trend::Unknown,
        };
        return match binary.op() {
            Operator::Plus => trend(left, schema, time).plus(trend(right, schema, time)),
            Operator::Minus => trend(left, schema, time).plus(trend(right, schema, time).flip()),
            Operator::Multiply => match (sign(left), sign(right)) {
                (Some(s), _) => scaled(trend(right, schema, time), Some(s)),
                (_, Some(s)) => scaled(trend(left, schema, time), Some(s)),
                _ => Trend::Unknown,
            },
            Operator::Divide => scaled(trend(left, schema, time), sign(right)),
            _ => Trend::Unknown,
        };
    }
    if let Some(function) = expr.downcast_ref::<ScalarFunctionExpr>() {
        let args = function.args();
        // The argument that moves with time; every other one must be constant.
        let moving = |at: usize| {
            let constant = args
                .iter()
                .enumerate()
                .all(|(i, a)| i == at || trend(a, schema, time) == Trend::Constant);
            match (constant, args.get(at)) {
                (true, Some(arg)) => trend(arg, schema, time),
                _ => Trend::Unknown,
            }
        };
        let epoch = args.first().is_some_and(|part| {
            part.downcast_ref::<Literal>().is_some_and(|l| {
                matches!(l.value(), ScalarValue::Utf8(Some(p)) if p.eq_ignore_ascii_case("epoch"))
            })
        });
        match function.name() {
            "floor" | "ceil" | "round" | "trunc" => return moving(0),
            "date_trunc" | "datetrunc" => return moving(1),
            "date_bin" => return moving(1),
            "date_part" | "datepart" if epoch => return moving(1),
            _ => {}
        }
    }
    // Anything else: what DataFusion's ordering rules make of it.
    let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(schema.field(time).name(), time));
    let mut properties = EquivalenceProperties::new(schema.clone());
    properties.add_ordering([PhysicalSortExpr::new(column, SortOptions::default())]);
    match properties.get_expr_properties(expr.clone()).sort_properties {
        SortProperties::Ordered(o) if o.descending => Trend::Down,
        SortProperties::Ordered(_) => Trend::Up,
        SortProperties::Singleton => Trend::Constant,
        SortProperties::Unordered => Trend::Unknown,
    }
}

/// The sign of a constant number (a literal, possibly cast), `None` when `expr` is not one.
fn sign(expr: &Arc<dyn PhysicalExpr>) -> Option<std::cmp::Ordering> {
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return sign(cast.expr());
    }
    let value = expr.downcast_ref::<Literal>()?.value();
    if value.is_null() {
        return None;
    }
    let zero = ScalarValue::new_zero(&value.data_type()).ok()?;
    value.partial_cmp(&zero)
}

/// Keeps the rows `mask` selects of every array.
fn keep(values: &mut [ArrayRef], ids: &mut [ArrayRef], mask: &BooleanArray) -> Result<()> {
    for array in values.iter_mut().chain(ids.iter_mut()) {
        *array = filter_array(array.as_ref(), mask)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::DFSchema;
    use datafusion::prelude::SessionContext;

    /// The physical form of `sql`, an expression over a table of `(ts timestamp, n bigint)`.
    fn physical(sql: &str) -> (Arc<dyn PhysicalExpr>, SchemaRef) {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("n", DataType::Int64, true),
        ]));
        let context = SessionContext::new();
        let df_schema = DFSchema::try_from(schema.as_ref().clone()).unwrap();
        let expr = context.parse_sql_expr(sql, &df_schema).unwrap();
        let expr = context.create_physical_expr(expr, &df_schema).unwrap();
        (expr, schema)
    }

    #[test]
    fn time_buckets_are_monotonic_in_time() {
        for bucket in [
            "date_trunc('month', ts)",
            "date_bin(INTERVAL '15 minutes', ts, TIMESTAMP '2024-01-01 00:00:00')",
            "floor(extract(epoch from ts) / 60) * 60",
            "floor(extract(epoch from ts) / 86400.0) * 86400",
            "extract(epoch from ts)",
        ] {
            let (expr, schema) = physical(bucket);
            assert!(monotonic(&expr, &schema, 0), "{bucket}: {expr}");
        }
        // Decreasing is as good as increasing: equal ends, equal throughout.
        let (expr, schema) = physical("floor(extract(epoch from ts) / -60)");
        assert!(monotonic(&expr, &schema, 0), "{expr}");
        for other in [
            "extract(minute from ts)",
            "extract(epoch from ts) % 60",
            "extract(epoch from ts) * extract(epoch from ts)",
            "60 / extract(epoch from ts)",
            "extract(epoch from ts) / n",
            "date_trunc('hour', ts) - date_trunc('minute', ts)",
            "to_char(ts, 'YYYY-MM')",
        ] {
            let (expr, schema) = physical(other);
            assert!(!monotonic(&expr, &schema, 0), "{other}: {expr}");
        }
    }
}
