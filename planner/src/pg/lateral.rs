//! `JOIN LATERAL (SELECT …)` whose select list reads the rows on its left.
//!
//! DataFusion decorrelates a LATERAL subquery whose WHERE refers to the left side, but not
//! one whose computed columns do (`JOIN LATERAL (SELECT a.x + 1 AS y) AS b ON true`, or
//! `CROSS JOIN LATERAL (SELECT a.price * b.rate …)`): planning such a query failed. When
//! the subquery is a projection over filters over rows that do not depend on the left
//! side, an inner join with it is the same as the left side joined to those rows, the
//! filters and the join's condition applied to each pair, and the projection evaluated
//! on it: [`LateralProjections`] plans it so; a LEFT JOIN of a subquery without FROM
//! (one row) gives NULLs where its condition fails. Other LATERAL subqueries are left
//! to DataFusion.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    when, Expr, Filter, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Projection, Subquery,
};
use datafusion::optimizer::AnalyzerRule;

/// Plans a LATERAL subquery whose select list refers to the left side as a join of the
/// left side with the subquery's rows (see the module's documentation).
#[derive(Debug)]
pub struct LateralProjections;

impl AnalyzerRule for LateralProjections {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| match plan {
            LogicalPlan::Join(join) => Ok(match rewrite(&join)? {
                Some(plan) => Transformed::yes(plan),
                None => Transformed::no(LogicalPlan::Join(join)),
            }),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pg_lateral_projections"
    }
}

/// The join planned without its correlated subquery, or `None` where it has another shape.
fn rewrite(join: &Join) -> Result<Option<LogicalPlan>> {
    if !matches!(join.join_type, JoinType::Inner | JoinType::Left) || !join.on.is_empty() {
        return Ok(None);
    }
    let (alias, subquery) = match join.right.as_ref() {
        LogicalPlan::SubqueryAlias(a) => match a.input.as_ref() {
            LogicalPlan::Subquery(s) => (Some(a.alias.clone()), s),
            _ => return Ok(None),
        },
        LogicalPlan::Subquery(s) => (None, s),
        _ => return Ok(None),
    };
    let Subquery { subquery, .. } = subquery;
    let LogicalPlan::Projection(projection) = subquery.as_ref() else {
        return Ok(None);
    };
    // The subquery's columns: its select list, through the projection that renames them
    // (`LATERAL (SELECT …) AS l(y, z)`).
    let mut values: Vec<Expr> = projection
        .expr
        .iter()
        .map(|e| e.clone().unalias_nested().data)
        .collect();
    let mut below = projection.input.as_ref();
    while let LogicalPlan::Projection(inner) = below {
        let Some(renamed) = values
            .iter()
            .map(|e| match e {
                Expr::Column(c) => inner
                    .schema
                    .maybe_index_of_column(c)
                    .map(|i| inner.expr[i].clone().unalias_nested().data),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
        else {
            break;
        };
        values = renamed;
        below = inner.input.as_ref();
    }
    if !values.iter().any(refers_out) {
        return Ok(None);
    }
    // Filters, then rows that do not refer to the left side.
    let mut predicates = Vec::new();
    let mut rows = below;
    while let LogicalPlan::Filter(filter) = rows {
        predicates.push(filter.predicate.clone());
        rows = filter.input.as_ref();
    }
    if correlated(rows)? {
        return Ok(None);
    }
    // Every reference out of the subquery is to the left side (not to a query around it).
    let left_schema = join.left.schema();
    let all_left = values
        .iter()
        .chain(&predicates)
        .all(|e| outer_columns(e).iter().all(|c| left_schema.has_column(c)));
    if !all_left {
        return Ok(None);
    }
    // A LEFT JOIN of one computed row: the row, or NULLs where the condition fails.
    let one_row = matches!(rows, LogicalPlan::EmptyRelation(e) if e.produce_one_row);
    let left = join.join_type == JoinType::Left;
    if left && !(one_row && predicates.is_empty()) {
        return Ok(None);
    }
    let pairs = match rows {
        LogicalPlan::EmptyRelation(e) if e.produce_one_row => join.left.as_ref().clone(),
        _ => match LogicalPlanBuilder::from(join.left.as_ref().clone()).cross_join(rows.clone()) {
            Ok(builder) => builder.build()?,
            // The two sides share a column's qualified name.
            Err(_) => return Ok(None),
        },
    };
    let mut plan = pairs;
    for predicate in predicates.into_iter().rev() {
        plan = LogicalPlan::Filter(Filter::try_new(inward(predicate)?, Arc::new(plan))?);
    }
    // The left side's columns, then the subquery's, named as the join named them.
    let mut exprs: Vec<Expr> = join
        .left
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    for (value, field) in values.into_iter().zip(projection.schema.fields()) {
        exprs.push(inward(value)?.alias_qualified(alias.clone(), field.name()));
    }
    let mut plan = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(plan))?);
    let condition = join
        .filter
        .clone()
        .filter(|f| !matches!(f, Expr::Literal(ScalarValue::Boolean(Some(true)), _)));
    match (condition, left) {
        (None, _) => {}
        (Some(condition), false) => {
            plan = LogicalPlan::Filter(Filter::try_new(condition, Arc::new(plan))?);
        }
        (Some(condition), true) => {
            let kept = join.left.schema().fields().len();
            let mut exprs = Vec::new();
            for (i, column) in plan.schema().columns().into_iter().enumerate() {
                if i < kept {
                    exprs.push(Expr::Column(column));
                    continue;
                }
                let (relation, name) = (column.relation.clone(), column.name.clone());
                let value = when(condition.clone(), Expr::Column(column)).end()?;
                exprs.push(value.alias_qualified(relation, name));
            }
            plan = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(plan))?);
        }
    }
    Ok(Some(plan))
}

/// Whether an expression reads a column of the left side.
fn refers_out(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::OuterReferenceColumn(..))))
        .unwrap_or(false)
}

/// The columns an expression reads from outside the subquery.
fn outer_columns(expr: &Expr) -> Vec<Column> {
    let mut columns = Vec::new();
    let _ = expr.apply(|e| {
        if let Expr::OuterReferenceColumn(_, column) = e {
            columns.push(column.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    columns
}

/// Whether a plan reads the left side anywhere.
fn correlated(plan: &LogicalPlan) -> Result<bool> {
    let mut found = false;
    plan.apply_with_subqueries(|p| {
        found = p.contains_outer_reference();
        Ok(match found {
            true => TreeNodeRecursion::Stop,
            false => TreeNodeRecursion::Continue,
        })
    })?;
    Ok(found)
}

/// `expr` with its references to the left side made plain columns of the joined rows.
fn inward(expr: Expr) -> Result<Expr> {
    expr.transform_up(|e| match e {
        Expr::OuterReferenceColumn(_, column) => Ok(Transformed::yes(Expr::Column(Column::new(
            column.relation,
            column.name,
        )))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}
