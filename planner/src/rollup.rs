//! Aggregates over a rolled-up table answer for the rows that were ingested, not the fewer
//! rows stored ([`RollupAggregates`]).
//!
//! A rolled-up table stores one row per time bucket and dimension values, with a hidden
//! count of the ingested rows it stands for. Druid makes its users write `SUM(count)` for
//! `COUNT(*)`; Henge rewrites the aggregates whose answer depends on how many rows there are:
//! `count(*)` (and `count(dimension)`) becomes the sum of the hidden count, `count(c)` of a
//! `ROLLUP COUNT` column the sum of `c`. Aggregates that the stored rows answer as the
//! ingested rows would (`sum` of a summed column, `min` of a `ROLLUP MIN` one, `min`/`max`
//! and any DISTINCT aggregate of dimensions, EARLIEST/LATEST of FIRST/LAST columns,
//! APPROX_COUNT_DISTINCT of an HLL column and APPROX_QUANTILE of a QUANTILES one) are left
//! alone, and the rest (`avg(metric)`, `sum(dimension)`, `max` of a summed column, …) are
//! refused with 0A000 rather than answered for the stored rows.
//!
//! This applies to an aggregation over the table through filters, aliases and column
//! projections (a view that selects columns); elsewhere — a join, a subquery that computes
//! or limits — the table reads as its stored rows, as `SELECT *` does.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::default_table_source::{provider_as_source, source_as_provider};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::{
    cast, Aggregate, AggregateUDF, Expr, Filter, LogicalPlan, Projection, SubqueryAlias,
    TableScanBuilder,
};
use datafusion::optimizer::AnalyzerRule;
use henge_storage::schema::{RESERVED_PREFIX, ROWS_COLUMN};
use henge_storage::{ColumnDef, Rollup, TableDef};

use crate::pg::SqlStateError;
use crate::table::HengeTable;

/// The analyzer rule; add it after the others.
#[derive(Debug)]
pub struct RollupAggregates {
    /// The session's `sum`, which the counts become.
    pub sum: Arc<AggregateUDF>,
}

impl AnalyzerRule for RollupAggregates {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| match plan {
            LogicalPlan::Aggregate(aggregate) => self.rewrite(aggregate),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "henge_rollup_aggregates"
    }
}

/// What becomes of one aggregate over a rolled-up table.
enum Plan {
    /// Answered by the stored rows as by the ingested ones.
    Keep,
    /// A count of ingested rows: the sum of the hidden count, over the rows `filter` keeps.
    CountRows { filter: Option<Expr> },
    /// `count(c)` of a `ROLLUP COUNT` column: the sum of `c`.
    SumOf(Expr),
    /// EARLIEST of a FIRST column, LATEST of a LAST one: ordered by the hidden time each
    /// stored value was ingested with (the time column is truncated), this column's.
    ByValueTime(String),
}

impl RollupAggregates {
    fn rewrite(&self, aggregate: Aggregate) -> Result<Transformed<LogicalPlan>> {
        let mut filters = Vec::new();
        let Some(def) = rolled_up_table(&aggregate.input, &mut filters) else {
            return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
        };
        // Rows filtered or grouped by a metric's stored value are not the ingested rows
        // that would be.
        let input = aggregate.input.clone();
        let checks = filters
            .into_iter()
            .map(|(predicate, below)| ("filter", predicate, below))
            .chain(
                aggregate
                    .aggr_expr
                    .iter()
                    .filter_map(count_filter)
                    .map(|f| ("filter", f, input.clone())),
            )
            .chain(
                aggregate
                    .group_expr
                    .iter()
                    .map(|g| ("grouping", g.clone(), input.clone())),
            );
        for (what, expr, below) in checks {
            if let Some(metric) = expr
                .column_refs()
                .iter()
                .find(|c| !is_key(&def, &below, &c.name))
            {
                return Err(SqlStateError::new(
                    "0A000",
                    format!(
                        "an aggregation over rolled-up table \"{}\" cannot use metric column \"{}\" in a {what}: its stored values each combine several ingested rows",
                        def.name, metric.name
                    ),
                )
                .into());
            }
        }
        let plans = aggregate
            .aggr_expr
            .iter()
            .map(|e| plan_of(e, &def, &aggregate.input))
            .collect::<Result<Vec<Plan>>>()?;
        if plans.iter().all(|p| matches!(p, Plan::Keep)) {
            return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
        }
        let Some(input) = with_rows(&aggregate.input)? else {
            return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
        };
        let (qualifier, _) = input
            .schema()
            .qualified_field_with_unqualified_name(ROWS_COLUMN)?;
        let rows = Expr::Column(Column::new(qualifier.cloned(), ROWS_COLUMN));
        let mut aggregates = Vec::with_capacity(plans.len());
        let mut outputs = Vec::with_capacity(plans.len());
        for (i, (expr, plan)) in aggregate.aggr_expr.iter().zip(plans).enumerate() {
            let name = expr.schema_name().to_string();
            let summed = |arg: Expr, filter: Option<Expr>| {
                Expr::AggregateFunction(AggregateFunction::new_udf(
                    self.sum.clone(),
                    vec![arg],
                    false,
                    filter.map(Box::new),
                    Vec::new(),
                    None,
                ))
            };
            let new = match plan {
                Plan::Keep => {
                    aggregates.push(expr.clone());
                    outputs.push(Expr::Column(Column::from_name(name)));
                    continue;
                }
                Plan::ByValueTime(hidden) => {
                    let (qualifier, _) = input
                        .schema()
                        .qualified_field_with_unqualified_name(&hidden)?;
                    let time = Expr::Column(Column::new(qualifier.cloned(), hidden));
                    let inner = format!("{ROWS_COLUMN}_{i}");
                    aggregates.push(by_time(expr, time).alias(&inner));
                    outputs.push(Expr::Column(Column::from_name(inner)).alias(name));
                    continue;
                }
                Plan::CountRows { filter } => summed(rows.clone(), filter),
                Plan::SumOf(arg) => summed(arg, count_filter(expr)),
            };
            let inner = format!("{ROWS_COLUMN}_{i}");
            aggregates.push(new.alias(&inner));
            // A sum over no rows is NULL, a count 0; a count is a `bigint`, where the sum of
            // `bigint`s would be a `numeric`.
            outputs.push(
                datafusion::functions::expr_fn::coalesce(vec![
                    cast(Expr::Column(Column::from_name(inner)), DataType::Int64),
                    Expr::Literal(ScalarValue::Int64(Some(0)), None),
                ])
                .alias(name),
            );
        }
        let grouped =
            Aggregate::try_new(Arc::new(input), aggregate.group_expr.clone(), aggregates)?;
        let groups = grouped.schema.fields().len() - grouped.aggr_expr.len();
        let mut exprs: Vec<Expr> = grouped
            .schema
            .iter()
            .take(groups)
            .map(|(qualifier, field)| Expr::Column(Column::new(qualifier.cloned(), field.name())))
            .collect();
        exprs.extend(outputs);
        let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(grouped)))?;
        Ok(Transformed::yes(LogicalPlan::Projection(projection)))
    }
}

/// `first_value(v ORDER BY …)` ordered by `time` instead, ascending or descending as it was.
fn by_time(expr: &Expr, time: Expr) -> Expr {
    match unaliased(expr) {
        Expr::AggregateFunction(f) => {
            let mut f = f.clone();
            let ascending = f.params.order_by.first().is_none_or(|s| s.asc);
            f.params.order_by = vec![time.sort(ascending, false)];
            Expr::AggregateFunction(f)
        }
        other => other.clone(),
    }
}

/// The FILTER clause of an aggregate, if it has one.
fn count_filter(expr: &Expr) -> Option<Expr> {
    match unaliased(expr) {
        Expr::AggregateFunction(f) => f.params.filter.as_deref().cloned(),
        _ => None,
    }
}

fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unaliased(&alias.expr),
        other => other,
    }
}

/// How one aggregate expression of an aggregation over the rolled-up table `def` is answered.
fn plan_of(expr: &Expr, def: &TableDef, input: &LogicalPlan) -> Result<Plan> {
    let Expr::AggregateFunction(function) = unaliased(expr) else {
        return Ok(Plan::Keep);
    };
    let AggregateFunctionParams {
        args,
        distinct,
        filter,
        order_by,
        ..
    } = &function.params;
    let name = function.func.name().to_ascii_lowercase();
    let role = |e: &Expr| -> Option<Role> {
        // Type coercion widens integers before summing them.
        let e = uncast(e);
        let columns = e.column_refs();
        if columns.is_empty() {
            return Some(Role::Constant);
        }
        if columns.iter().all(|c| is_key(def, input, &c.name)) {
            return Some(Role::Keys);
        }
        match (e, columns.len()) {
            (Expr::Column(c), 1) => column_of(def, input, &c.name)
                .and_then(|d| d.rollup)
                .map(Role::Metric),
            _ => None,
        }
    };
    let roles: Vec<Option<Role>> = args.iter().map(role).collect();
    let over_keys = roles
        .iter()
        .all(|r| matches!(r, Some(Role::Keys | Role::Constant)));
    let order_over_keys = order_by
        .iter()
        .all(|s| matches!(role(&s.expr), Some(Role::Keys | Role::Constant)));
    let plan = match name.as_str() {
        "count" if !distinct => match roles.as_slice() {
            // count(*) is count(1): every row.
            [] => Some(Plan::CountRows {
                filter: filter.as_deref().cloned(),
            }),
            [Some(Role::Constant)] if matches!(&args[0], Expr::Literal(v, _) if !v.is_null()) => {
                Some(Plan::CountRows {
                    filter: filter.as_deref().cloned(),
                })
            }
            // Anything else (a NULL, a parameter, a CASE) counts the rows where it is not
            // NULL, the same in every ingested row a stored row stands for.
            [Some(Role::Keys | Role::Constant)] => {
                let given = args[0].clone().is_not_null();
                Some(Plan::CountRows {
                    filter: Some(match filter.as_deref() {
                        Some(f) => f.clone().and(given),
                        None => given,
                    }),
                })
            }
            [Some(Role::Metric(Rollup::Count))] => Some(Plan::SumOf(args[0].clone())),
            _ => None,
        },
        // Repeating a row changes none of these, nor any DISTINCT aggregate.
        _ if (*distinct || DUPLICATE_INSENSITIVE.contains(&name.as_str()))
            && over_keys
            && order_over_keys =>
        {
            Some(Plan::Keep)
        }
        "sum" if !distinct => match roles.as_slice() {
            [Some(Role::Metric(Rollup::Sum | Rollup::Count))] => Some(Plan::Keep),
            _ => None,
        },
        // A sketch column's stored sketches merge into the sketch of the ingested values.
        "approx_count_distinct" if !distinct => {
            matches!(roles.as_slice(), [Some(Role::Metric(Rollup::Hll))]).then_some(Plan::Keep)
        }
        "approx_quantile" if !distinct => matches!(
            roles.as_slice(),
            [Some(Role::Metric(Rollup::Quantiles)), Some(Role::Constant)]
        )
        .then_some(Plan::Keep),
        "min" => {
            matches!(roles.as_slice(), [Some(Role::Metric(Rollup::Min))]).then_some(Plan::Keep)
        }
        "max" => {
            matches!(roles.as_slice(), [Some(Role::Metric(Rollup::Max))]).then_some(Plan::Keep)
        }
        // EARLIEST of a FIRST column and LATEST of a LAST one: the first value ordered by
        // time, ascending or descending.
        "first_value" if is_time_order(order_by, def, input) => {
            let wanted = match order_by.first().is_some_and(|s| !s.asc) {
                false => Rollup::First,
                true => Rollup::Last,
            };
            match (roles.as_slice(), &args[0]) {
                ([Some(Role::Metric(r))], Expr::Column(c)) if *r == wanted => {
                    column_of(def, input, &c.name).map(|d| {
                        Plan::ByValueTime(henge_storage::schema::value_time_column(&d.name))
                    })
                }
                _ => None,
            }
        }
        _ => None,
    };
    plan.ok_or_else(|| {
        let shown: Vec<String> = args
            .iter()
            .map(|a| match uncast(a) {
                Expr::Column(c) => c.name.clone(),
                Expr::Literal(..) if name == "count" => "*".to_owned(),
                _ => "…".to_owned(),
            })
            .collect();
        let distinct = if *distinct { "DISTINCT " } else { "" };
        SqlStateError::new(
            "0A000",
            format!(
                "{name}({distinct}{}) cannot be answered over rolled-up table \"{}\": each stored row stands for several ingested rows (aggregate a column as it was rolled up: sum of a summed column, min of a ROLLUP MIN column, count(*), …)",
                shown.join(", "),
                def.name
            ),
        )
        .into()
    })
}

/// An expression without the casts type coercion put around a column.
fn uncast(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(cast) if matches!(*cast.expr, Expr::Column(_)) => &cast.expr,
        Expr::TryCast(cast) if matches!(*cast.expr, Expr::Column(_)) => &cast.expr,
        other => other,
    }
}

/// Whether `order_by` is the table's time column alone.
fn is_time_order(
    order_by: &[datafusion::logical_expr::SortExpr],
    def: &TableDef,
    input: &LogicalPlan,
) -> bool {
    match order_by {
        [sort] => match &sort.expr {
            Expr::Column(c) => column_of(def, input, &c.name)
                .is_some_and(|d| def.time_column.as_deref() == Some(d.name.as_str())),
            _ => false,
        },
        _ => false,
    }
}

/// Aggregates whose answer does not change when a row is repeated.
const DUPLICATE_INSENSITIVE: [&str; 10] = [
    "min",
    "max",
    "bool_and",
    "bool_or",
    "every",
    "any_value",
    "approx_distinct",
    "approx_count_distinct",
    "first_value",
    "last_value",
];

/// What an aggregate's argument reads of a rolled-up table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// No column at all.
    Constant,
    /// Only the time column and dimensions: the same in every ingested row a stored row
    /// stands for.
    Keys,
    /// One metric column, as it is.
    Metric(Rollup),
}

/// Whether the column `name` of `plan`'s output is the time column or a dimension of `def`.
fn is_key(def: &TableDef, plan: &LogicalPlan, name: &str) -> bool {
    column_of(def, plan, name).is_some_and(|c| c.rollup.is_none_or(|r| !r.is_metric()))
}

/// The column of `def` that the column `name` of `plan`'s output is (through the
/// filters, aliases and column projections [`rolled_up_table`] accepts).
fn column_of<'a>(def: &'a TableDef, plan: &LogicalPlan, name: &str) -> Option<&'a ColumnDef> {
    match plan {
        LogicalPlan::TableScan(_) => def.columns.iter().find(|c| c.name == name),
        LogicalPlan::Filter(filter) => column_of(def, &filter.input, name),
        LogicalPlan::SubqueryAlias(alias) => column_of(def, &alias.input, name),
        LogicalPlan::Projection(projection) => {
            let (_, expr) = projection
                .schema
                .iter()
                .zip(&projection.expr)
                .find(|((_, field), _)| field.name() == name)?;
            match unaliased(expr) {
                Expr::Column(c) => column_of(def, &projection.input, &c.name),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The rolled-up table an aggregation reads, when it reads it through filters (whose
/// predicates are added to `filters`), aliases and projections of columns only.
fn rolled_up_table(
    plan: &LogicalPlan,
    filters: &mut Vec<(Expr, Arc<LogicalPlan>)>,
) -> Option<TableDef> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source).ok()?;
            let table = provider.downcast_ref::<HengeTable>()?;
            // A scan that reads the hidden columns is one this rule has rewritten already.
            let rewritten = scan.source.schema().index_of(ROWS_COLUMN).is_ok();
            (table.def().rollup && scan.projection.is_none() && !rewritten)
                .then(|| table.def().clone())
        }
        LogicalPlan::Filter(filter) => {
            filters.push((filter.predicate.clone(), filter.input.clone()));
            rolled_up_table(&filter.input, filters)
        }
        LogicalPlan::SubqueryAlias(alias) => rolled_up_table(&alias.input, filters),
        LogicalPlan::Projection(projection) if only_columns(projection) => {
            rolled_up_table(&projection.input, filters)
        }
        _ => None,
    }
}

fn only_columns(projection: &Projection) -> bool {
    projection
        .expr
        .iter()
        .all(|e| matches!(unaliased(e), Expr::Column(_)))
}

/// `plan` (of the shape [`rolled_up_table`] accepts) reading the hidden count too.
fn with_rows(plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    Ok(Some(match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source)?;
            let Some(table) = provider.downcast_ref::<HengeTable>() else {
                return Ok(None);
            };
            LogicalPlan::TableScan(
                TableScanBuilder::new(
                    scan.table_name.clone(),
                    provider_as_source(Arc::new(table.with_hidden())),
                )
                .with_filters(scan.filters.clone())
                .with_fetch(scan.fetch)
                .build()?,
            )
        }
        LogicalPlan::Filter(filter) => {
            let Some(input) = with_rows(&filter.input)? else {
                return Ok(None);
            };
            LogicalPlan::Filter(Filter::try_new(filter.predicate.clone(), Arc::new(input))?)
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let Some(input) = with_rows(&alias.input)? else {
                return Ok(None);
            };
            LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                Arc::new(input),
                alias.alias.clone(),
            )?)
        }
        LogicalPlan::Projection(projection) => {
            let Some(input) = with_rows(&projection.input)? else {
                return Ok(None);
            };
            let mut exprs = projection.expr.clone();
            exprs.extend(
                input
                    .schema()
                    .iter()
                    .filter(|(_, f)| f.name().starts_with(RESERVED_PREFIX))
                    .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name()))),
            );
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input))?)
        }
        _ => return Ok(None),
    }))
}
