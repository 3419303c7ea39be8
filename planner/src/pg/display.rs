//! Numerics shown with the places PostgreSQL gives each value.
//!
//! A PostgreSQL numeric carries its own display scale, value by value: `avg` over one group
//! prints 16 places and over another 20, as `select_div_scale` chooses them from the sum
//! and the count; so do the variances and a quotient of columns. An Arrow decimal has one
//! scale for the column, so Henge computes these at a fixed scale (20 places, or the
//! input's) and printed trailing zeros PostgreSQL does not, or rounded where PostgreSQL
//! keeps more places (an average below 1 has 20).
//!
//! Where such a value is a column of a query's result, [`for_client`] asks its function
//! for a *display* form: a struct of the value at the fixed scale and PostgreSQL's text of
//! it, exact at PostgreSQL's places. The wire encoder writes the text (or the binary numeric
//! it spells); everything else that reads the column — a sort, a filter, an expression —
//! reads the value ([`VALUE_FIELD`]). Views, tables made from queries, COPY and the
//! internal queries keep the plain decimal.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Decimal128Array, StringArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, HashSet};
use datafusion::error::Result;
use datafusion::logical_expr::expr::{AggregateFunction, ScalarFunction, WindowFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Aggregate, AggregateUDF, Expr, ExprSchemable, Filter, LogicalPlan, Projection, ScalarUDF, Sort,
    SubqueryAlias, Window, WindowFunctionDefinition,
};
use num_bigint::BigInt;

use super::division::NumericDiv;
use super::exact_aggregates::Exact;

/// The field of a display numeric holding its value, at the column's fixed scale.
pub const VALUE_FIELD: &str = "pg_numeric_value";
/// The field holding PostgreSQL's text of the value.
pub const TEXT_FIELD: &str = "pg_numeric_text";

/// The type of a display numeric whose value is of type `value`.
pub fn display_type(value: DataType) -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new(VALUE_FIELD, value, true),
        Field::new(TEXT_FIELD, DataType::Utf8, true),
    ]))
}

/// Whether a column holds display numerics.
pub fn is_display(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Struct(fields)
        if fields.len() == 2 && fields[0].name() == VALUE_FIELD && fields[1].name() == TEXT_FIELD)
}

/// Display numerics of `values` (NULL where a value is) and their texts.
pub fn display_array(values: Decimal128Array, texts: Vec<Option<String>>) -> ArrayRef {
    let nulls = values.nulls().cloned();
    let fields = match display_type(values.data_type().clone()) {
        DataType::Struct(fields) => fields,
        _ => unreachable!("a display type is a struct"),
    };
    Arc::new(StructArray::new(
        fields,
        vec![Arc::new(values), Arc::new(StringArray::from(texts))],
        nulls,
    ))
}

/// The text of `unscaled`·10^-`places` with exactly `places` places, as PostgreSQL writes
/// a numeric.
pub fn numeric_text(unscaled: &BigInt, places: i32) -> String {
    let digits = unscaled.magnitude().to_string();
    let places = places.max(0) as usize;
    let padded = match digits.len() <= places {
        true => format!("{}{digits}", "0".repeat(places + 1 - digits.len())),
        false => digits,
    };
    let (whole, fraction) = padded.split_at(padded.len() - places);
    let sign = match unscaled.sign() {
        num_bigint::Sign::Minus => "-",
        _ => "",
    };
    match places {
        0 => format!("{sign}{whole}"),
        _ => format!("{sign}{whole}.{fraction}"),
    }
}

/// `a`·10^-`s1` ÷ `b`·10^-`s2` at `places` places, rounded half away from zero, unscaled.
/// `b` is not zero.
pub fn quotient_at(a: BigInt, s1: i32, b: &BigInt, s2: i32, places: i32) -> BigInt {
    let ten = |n: i32| BigInt::from(10).pow(n.unsigned_abs());
    let shift = places + s2 - s1;
    let (numerator, denominator) = match shift >= 0 {
        true => (a * ten(shift), b.clone()),
        false => (a, b * ten(shift)),
    };
    let negative = (numerator.sign() == num_bigint::Sign::Minus)
        != (denominator.sign() == num_bigint::Sign::Minus);
    let (n, d) = (
        numerator.magnitude().clone(),
        denominator.magnitude().clone(),
    );
    let rounded = BigInt::from((n * 2u32 + &d) / (d * 2u32));
    match negative {
        true => -rounded,
        false => rounded,
    }
}

/// Gives the numeric columns of a query's result whose places PostgreSQL chooses value by
/// value their display form. Only columns that reach the result as they are computed
/// change: through projections that pass them on, sorts, filters, limits and aliases,
/// down to the aggregate or window that computes them; a sort or filter on such a
/// column, or an expression over it, reads its value.
pub fn for_client(plan: LogicalPlan) -> Result<LogicalPlan> {
    let all: HashSet<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    Ok(shown(plan, &all)?.data)
}

/// [`for_client`] of a node whose output columns `wanted` reach the result unchanged.
fn shown(plan: LogicalPlan, wanted: &HashSet<String>) -> Result<Transformed<LogicalPlan>> {
    // A subquery may read a column of this node's input from inside its own plan, which
    // this does not rewrite: such a node and those below keep plain decimals.
    if plan.expressions().iter().any(has_subquery) {
        return Ok(Transformed::no(plan));
    }
    match plan {
        LogicalPlan::Projection(projection) => {
            let mut below = HashSet::new();
            let mut exprs = Vec::with_capacity(projection.expr.len());
            let mut changed = false;
            for (expr, field) in projection.expr.iter().zip(projection.schema.fields()) {
                if !wanted.contains(field.name()) {
                    exprs.push(expr.clone());
                    continue;
                }
                match expr.clone().unalias_nested().data {
                    Expr::Column(c) => {
                        below.insert(c.name.clone());
                        exprs.push(expr.clone());
                    }
                    inner => match division_display(&inner) {
                        Some(display) => {
                            changed = true;
                            exprs.push(display.alias(field.name()));
                        }
                        None => exprs.push(expr.clone()),
                    },
                }
            }
            let input = shown(Arc::unwrap_or_clone(projection.input), &below)?;
            if !changed && !input.transformed {
                return Ok(Transformed::no(LogicalPlan::Projection(
                    Projection::try_new(projection.expr, Arc::new(input.data))?,
                )));
            }
            let input_schema = input.data.schema().clone();
            let names = NamePreserver::new_for_projection();
            let exprs = exprs
                .into_iter()
                .map(|e| match is_shown(&e, &input_schema) {
                    true => Ok(e),
                    false => {
                        let saved = names.save(&e);
                        Ok(saved.restore(values_of(e, &input_schema)?))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Transformed::yes(LogicalPlan::Projection(
                Projection::try_new(exprs, Arc::new(input.data))?,
            )))
        }
        LogicalPlan::Sort(sort) => {
            let input = shown(Arc::unwrap_or_clone(sort.input), wanted)?;
            let schema = input.data.schema().clone();
            let expr = sort
                .expr
                .into_iter()
                .map(|s| Ok(s.with_expr(values_of(s.expr.clone(), &schema)?)))
                .collect::<Result<Vec<_>>>()?;
            Ok(Transformed::new_transformed(
                LogicalPlan::Sort(Sort {
                    expr,
                    input: Arc::new(input.data),
                    fetch: sort.fetch,
                }),
                input.transformed,
            ))
        }
        LogicalPlan::Filter(filter) => {
            let input = shown(Arc::unwrap_or_clone(filter.input), wanted)?;
            let schema = input.data.schema().clone();
            let predicate = values_of(filter.predicate, &schema)?;
            Ok(Transformed::new_transformed(
                LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(input.data))?),
                input.transformed,
            ))
        }
        LogicalPlan::Limit(mut limit) => {
            let input = shown(Arc::unwrap_or_clone(limit.input), wanted)?;
            let transformed = input.transformed;
            limit.input = Arc::new(input.data);
            Ok(Transformed::new_transformed(
                LogicalPlan::Limit(limit),
                transformed,
            ))
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let input = shown(Arc::unwrap_or_clone(alias.input), wanted)?;
            let transformed = input.transformed;
            Ok(Transformed::new_transformed(
                LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                    Arc::new(input.data),
                    alias.alias,
                )?),
                transformed,
            ))
        }
        LogicalPlan::Aggregate(aggregate) => {
            let input = aggregate.input.schema().clone();
            // The aggregates' fields are the last (grouping sets add columns of their own).
            let fields = aggregate.schema.fields();
            let first = fields.len() - aggregate.aggr_expr.len();
            let (aggr_expr, changed) =
                displayed(aggregate.aggr_expr, &fields[first..], wanted, |e| {
                    aggregate_display(e, &input)
                });
            let plan = Aggregate::try_new(aggregate.input, aggregate.group_expr, aggr_expr)?;
            Ok(Transformed::new_transformed(
                LogicalPlan::Aggregate(plan),
                changed,
            ))
        }
        LogicalPlan::Window(window) => {
            let input = window.input.schema().clone();
            let (window_expr, changed) = displayed(
                window.window_expr,
                &window.schema.fields()[input.fields().len()..],
                wanted,
                |e| window_display(e, &input),
            );
            let plan = Window::try_new(window_expr, window.input)?;
            Ok(Transformed::new_transformed(
                LogicalPlan::Window(plan),
                changed,
            ))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// An aggregate's or window's expressions, each named by its field, with the wanted ones
/// in their display form where `display` gives one; and whether any changed.
fn displayed(
    exprs: Vec<Expr>,
    fields: &[FieldRef],
    wanted: &HashSet<String>,
    display: impl Fn(&Expr) -> Option<Expr>,
) -> (Vec<Expr>, bool) {
    let mut changed = false;
    let exprs = exprs
        .into_iter()
        .zip(fields)
        .map(|(expr, field)| match wanted.contains(field.name()) {
            true => match display(&expr) {
                Some(shown) => {
                    changed = true;
                    shown.alias(field.name())
                }
                None => expr,
            },
            false => expr,
        })
        .collect();
    (exprs, changed)
}

/// Whether an expression holds a subquery.
fn has_subquery(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::Exists(_) | Expr::InSubquery(_) | Expr::ScalarSubquery(_)
        ))
    })
    .unwrap_or(true)
}

/// Whether a projection's expression passes a display numeric on as it is.
fn is_shown(expr: &Expr, schema: &DFSchema) -> bool {
    match expr.clone().unalias_nested().data {
        Expr::Column(_) => true,
        e @ Expr::ScalarFunction(_) => e.get_type(schema).is_ok_and(|t| is_display(&t)),
        _ => false,
    }
}

/// `expr` reading the values of the display numerics it refers to.
fn values_of(expr: Expr, schema: &DFSchema) -> Result<Expr> {
    expr.transform_up(|e| match &e {
        Expr::Column(_) if e.get_type(schema).is_ok_and(|t| is_display(&t)) => {
            Ok(Transformed::yes(
                datafusion::functions::core::expr_fn::get_field(e, VALUE_FIELD),
            ))
        }
        _ => Ok(Transformed::no(e)),
    })
    .map(|t| t.data)
}

/// The display form of a quotient of numerics over columns.
fn division_display(expr: &Expr) -> Option<Expr> {
    let Expr::ScalarFunction(f) = expr else {
        return None;
    };
    let display = f.func.inner().downcast_ref::<NumericDiv>()?.display()?;
    Some(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(display)),
        f.args.clone(),
    )))
}

/// The display form of an exact `avg`, variance or standard deviation.
fn aggregate_display(expr: &Expr, input: &DFSchema) -> Option<Expr> {
    let Expr::AggregateFunction(f) = expr.clone().unalias_nested().data else {
        return None;
    };
    let arg = f.params.args.first()?.get_type(input).ok()?;
    let display = f.func.inner().downcast_ref::<Exact>()?.display(&arg)?;
    Some(Expr::AggregateFunction(AggregateFunction {
        func: Arc::new(AggregateUDF::new_from_impl(display)),
        params: f.params,
    }))
}

/// [`aggregate_display`] of one over a window.
fn window_display(expr: &Expr, input: &DFSchema) -> Option<Expr> {
    let Expr::WindowFunction(w) = expr.clone().unalias_nested().data else {
        return None;
    };
    let WindowFunctionDefinition::AggregateUDF(udf) = &w.fun else {
        return None;
    };
    let arg = w.params.args.first()?.get_type(input).ok()?;
    let display = udf.inner().downcast_ref::<Exact>()?.display(&arg)?;
    let mut w: WindowFunction = *w;
    w.fun = WindowFunctionDefinition::AggregateUDF(Arc::new(AggregateUDF::new_from_impl(display)));
    Some(Expr::WindowFunction(Box::new(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_have_exactly_their_places() {
        let text = |v: i64, places| numeric_text(&BigInt::from(v), places);
        assert_eq!(text(15, 1), "1.5");
        assert_eq!(text(-15, 3), "-0.015");
        assert_eq!(text(0, 2), "0.00");
        assert_eq!(text(-7, 0), "-7");
        assert_eq!(text(1234, 4), "0.1234");
    }

    #[test]
    fn quotients_round_half_away_from_zero() {
        let q = |a: i64, b: i64, places| {
            numeric_text(
                &quotient_at(BigInt::from(a), 0, &BigInt::from(b), 0, places),
                places,
            )
        };
        assert_eq!(q(1, 3, 20), "0.33333333333333333333");
        assert_eq!(q(-2, 3, 2), "-0.67");
        assert_eq!(q(5, 2, 0), "3");
        assert_eq!(q(-5, 2, 0), "-3");
        assert_eq!(
            numeric_text(
                &quotient_at(BigInt::from(150), 2, &BigInt::from(1), 0, 1),
                1
            ),
            "1.5"
        );
    }
}
