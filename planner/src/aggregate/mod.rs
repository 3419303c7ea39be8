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
//! and the answers are those of the plan without pushdown. One difference of order: a long
//! run of rows in one group (one time bucket, or one string key among rows of one time) is
//! aggregated on its own and its state merged into the group's (see `partials::LONG_RUN`),
//! so a `double precision` sum adds the same values in
//! another order and may differ in its last bit, as any sum of doubles does between plans
//! (DataFusion's sums without GROUP BY add in lanes, PostgreSQL row by row). Integer and
//! `numeric` sums are exact either way.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, NullArray, RecordBatch, RecordBatchOptions, UInt32Array,
};
use datafusion::arrow::compute::kernels::boolean::and;
use datafusion::arrow::compute::kernels::cmp::not_distinct;
use datafusion::arrow::compute::{partition, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::functions_aggregate::count::Count;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_expr_common::physical_expr::is_volatile;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet, RecordOutput};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use henge_storage::segment::SegmentReader;

use crate::options::HengeOptions;
use crate::scan::{timed, HengeScanExec, Part, PerSegment, ScanMetrics, ScanSource};
use partials::{Held, Keys, Partials, SHARED_GROUPS};
use segment::{aggregate_batch, SegmentAggregation};
use trend::monotonic;

mod partials;
mod segment;
mod trend;

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
    /// The same when only the conjuncts the indexes do not answer are (`Residual::Rest`).
    rest: Layout,
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
        let mut rest = needed.clone();
        if let Some(filter) = &source.filter {
            residual.extend(collect_columns(&filter.predicate).iter().map(Column::index));
            if let Some(predicate) = &filter.rest {
                rest.extend(collect_columns(predicate).iter().map(Column::index));
            }
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
            rest: Layout::new(read_schema, rest),
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
            (Some((ranges, ..)), false) => {
                let mut run_of_row = vec![0u32; rows];
                for (i, r) in ranges.iter().enumerate() {
                    run_of_row[r.clone()].fill(i as u32);
                }
                Some(UInt32Array::from(run_of_row))
            }
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
                // One value per run, spread over the rows where they are needed.
                (Key::Time(expr), Some(starts)) => evaluate(expr, starts),
                (Key::Int(at), _) => Ok(batch.column(*at).clone()),
                (Key::Time(expr) | Key::Expr(expr), _) => evaluate(expr, batch),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(match (runs, spread) {
            (Some((ranges, ..)), None) => Keys::Runs(keys, ranges),
            (_, Some(spread)) => Keys::Spread(keys, spread),
            (None, None) => Keys::Rows(keys),
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
        let held = Arc::new(Held::new(context.memory_pool(), partition));
        // Shared by the parts: the source holds every partition's list of parts, which a
        // copy per part made quadratic in the segments.
        let source = Arc::new(self.source.clone());
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
            let held = held.clone();
            async move {
                let partials = match part {
                    Part::Batch(batch) => {
                        aggregate_batch(&plan, &source, batch, shared.as_deref(), &held)
                    }
                    Part::Segment(segment) => {
                        let scan = SegmentAggregation {
                            plan: &plan,
                            source: &source,
                            metrics: &metrics,
                            held: &held,
                            into_shared: OnceLock::new(),
                            next_block: AtomicUsize::new(0),
                            rows: AtomicUsize::new(0),
                        };
                        let read = |reader: &SegmentReader| scan.run(reader, shared.as_deref());
                        let rows = |_: &Option<RecordBatch>| scan.rows.load(Ordering::Relaxed);
                        timed(&source.engine, segment, &metrics, &per_segment, read, rows).await
                    }
                }?;
                // Shared groups past a bound, or past what the memory pool grants, are
                // emitted early: partial states of one group emitted twice merge all the
                // same.
                match (partials, shared.as_deref()) {
                    (None, Some(shared)) => {
                        let mut shared = lock(shared);
                        match held.over() || shared.groups() >= SHARED_GROUPS {
                            true => {
                                let out = shared.finish(|_, array| Ok(array));
                                held.shared(shared.size());
                                out
                            }
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

/// Evaluates `expr` on `batch` as an array.
fn evaluate(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<ArrayRef> {
    expr.evaluate(batch)?.into_array(batch.num_rows())
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
