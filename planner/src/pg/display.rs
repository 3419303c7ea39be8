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
//!
//! A column declared `numeric` without a scale is stored with 10 places beside a hidden
//! column of each value's own scale. Where such a column (or arithmetic over it, its
//! text, a sum or an extreme of it) reaches the result, the scan reads the scales too, the
//! nodes above pass them on (projections, filters, sorts, joins, windows, unions), and the
//! top projection shows each value with its scale ([`NumericShown`]). Text and doubles
//! converted to `numeric` have their scales computed from their digits.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, StringArray, StructArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Fields, Int16Type};
use datafusion::catalog::default_table_source::{provider_as_source, source_as_provider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, Column, DFSchema, HashSet, ScalarValue, TableReference};
use datafusion::error::Result;
use datafusion::functions::core::expr_fn::{get_field, greatest};
use datafusion::logical_expr::expr::{
    AggregateFunction, Alias, BinaryExpr, Cast, ScalarFunction, WindowFunction,
};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Aggregate, AggregateUDF, ColumnarValue, Distinct, Expr, ExprSchemable, Filter, Join,
    LogicalPlan, Operator, Projection, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Sort, SubqueryAlias, TableScan, TableScanBuilder, Union, Volatility, Window,
    WindowFunctionDefinition,
};
use henge_ingest::value::places_needed;
use henge_storage::schema::scale_column;
use num_bigint::BigInt;

use crate::table::HengeTable;

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
    let plan = shown(plan, &all, true)?.data;
    super::unscaled::check(&plan)?;
    Ok(plan)
}

/// [`for_client`] of a node whose output columns `wanted` reach the result unchanged;
/// `top` when no projection is above it (the one that makes the display form of a stored
/// unconstrained numeric, whose scales the nodes below pass on).
fn shown(
    plan: LogicalPlan,
    wanted: &HashSet<String>,
    top: bool,
) -> Result<Transformed<LogicalPlan>> {
    // A subquery may read a column of this node's input from inside its own plan, which
    // this does not rewrite: such a node and those below keep plain decimals, and only
    // pass on the scales of stored numerics (columns added, none changed).
    if plan.expressions().iter().any(has_subquery) {
        return Ok(match top {
            false => match with_scales(&plan, wanted)? {
                Some(scaled) => Transformed::yes(scaled),
                None => Transformed::no(plan),
            },
            true => Transformed::no(plan),
        });
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
                            // Its operands' own scales, where they have them.
                            if let Expr::ScalarFunction(f) = &display {
                                if f.args.iter().all(of_scales) {
                                    below.extend(
                                        inner.column_refs().into_iter().map(|c| c.name.clone()),
                                    );
                                }
                            }
                            exprs.push(display.alias(field.name()));
                        }
                        None => {
                            // Arithmetic over stored unconstrained numerics, or the text of
                            // one within it: its columns' scales are wanted too.
                            if of_scales(&inner) || reads_scales(&inner) {
                                below.extend(
                                    inner.column_refs().into_iter().map(|c| c.name.clone()),
                                );
                            }
                            exprs.push(expr.clone())
                        }
                    },
                }
            }
            let input = shown(Arc::unwrap_or_clone(projection.input), &below, false)?;
            let input_schema = input.data.schema().clone();
            for (i, field) in projection.schema.fields().iter().enumerate() {
                if !wanted.contains(field.name()) {
                    continue;
                }
                let inner = exprs[i].clone().unalias_nested().data;
                if matches!(inner, Expr::Column(_)) {
                    continue;
                }
                let (qualifier, _) = projection.schema.qualified_field(i);
                if let Some(scaled) = scaled_division(&inner, &input_schema)? {
                    exprs[i] = scaled.alias_qualified(qualifier.cloned(), field.name());
                    continue;
                }
                if let Some((computed, scale)) = computed_display(&inner, &input_schema)? {
                    changed = true;
                    match (top, scale) {
                        (false, Some(scale)) => exprs.push(
                            scale.alias_qualified(qualifier.cloned(), scale_column(field.name())),
                        ),
                        _ => exprs[i] = computed.alias_qualified(qualifier.cloned(), field.name()),
                    }
                    continue;
                }
                // The texts of such numerics inside another expression (`x::text || '!'`).
                let texts = with_texts_shown(inner, &input_schema)?;
                if texts.transformed {
                    changed = true;
                    exprs[i] = texts.data.alias_qualified(qualifier.cloned(), field.name());
                }
            }
            // The stored unconstrained numerics among the columns passed on: shown with
            // their values' scales here at the top, their scales passed on below it.
            let scaled =
                scaled_columns(&projection.expr, &projection.schema, wanted, &input_schema);
            changed |= !scaled.is_empty();
            for (i, value, scale) in scaled {
                let (qualifier, field) = projection.schema.qualified_field(i);
                match top {
                    true => {
                        exprs[i] = numeric_shown(Expr::Column(value), Expr::Column(scale))
                            .alias_qualified(qualifier.cloned(), field.name())
                    }
                    false => exprs.push(passed_scale(&value, scale, qualifier, field.name())),
                }
            }
            if !changed && !input.transformed {
                return Ok(Transformed::no(LogicalPlan::Projection(
                    Projection::try_new(projection.expr, Arc::new(input.data))?,
                )));
            }
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
            let input = shown(Arc::unwrap_or_clone(sort.input), wanted, top)?;
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
            let input = shown(Arc::unwrap_or_clone(filter.input), wanted, top)?;
            let schema = input.data.schema().clone();
            let predicate = values_of(filter.predicate, &schema)?;
            Ok(Transformed::new_transformed(
                LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(input.data))?),
                input.transformed,
            ))
        }
        LogicalPlan::Limit(mut limit) => {
            let input = shown(Arc::unwrap_or_clone(limit.input), wanted, top)?;
            let transformed = input.transformed;
            limit.input = Arc::new(input.data);
            Ok(Transformed::new_transformed(
                LogicalPlan::Limit(limit),
                transformed,
            ))
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let input = shown(Arc::unwrap_or_clone(alias.input), wanted, top)?;
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
            let (aggregate, read_scales) = aggregate_texts(aggregate, wanted)?;
            let input = aggregate.input.schema().clone();
            // The aggregates' fields are the last (grouping sets add columns of their own).
            let fields = aggregate.schema.fields();
            let first = fields.len() - aggregate.aggr_expr.len();
            let (aggr_expr, changed) =
                displayed(aggregate.aggr_expr, &fields[first..], wanted, |e| {
                    aggregate_display(e, &input)
                });
            let changed = changed || read_scales;
            let plan = Aggregate::try_new(aggregate.input, aggregate.group_expr, aggr_expr)?;
            // The projection above shows the stored numerics with their scales.
            let scaled = match top {
                true => None,
                false => aggregate_scales(&plan, wanted)?,
            };
            match scaled {
                Some(scaled) => Ok(Transformed::yes(scaled)),
                None => Ok(Transformed::new_transformed(
                    LogicalPlan::Aggregate(plan),
                    changed,
                )),
            }
        }
        LogicalPlan::TableScan(scan) if !top => match scan_with_scales(&scan, wanted)? {
            Some(scan) => Ok(Transformed::yes(scan)),
            None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
        },
        LogicalPlan::Window(window) => {
            let input = window.input.schema().clone();
            let (window_expr, changed) = displayed(
                window.window_expr,
                &window.schema.fields()[input.fields().len()..],
                wanted,
                |e| window_display(e, &input),
            );
            // The input's columns the window passes on, and those its wanted sums add up;
            // its functions read their values.
            let fields = &window.schema.fields()[input.fields().len()..];
            let sums: Vec<(usize, WindowFunction)> = window_expr
                .iter()
                .enumerate()
                .filter(|(i, _)| wanted.contains(fields[*i].name()))
                .filter_map(|(i, e)| match e.clone().unalias_nested().data {
                    Expr::WindowFunction(w) if summed(&w).is_some() || picked(&w) => Some((i, *w)),
                    _ => None,
                })
                .collect();
            // Wanted averages and deviations of stored unconstrained numerics: shown from
            // the values' own scales, passed beside them.
            let exact: Vec<(usize, WindowFunction)> = window_expr
                .iter()
                .enumerate()
                .filter(|(i, _)| wanted.contains(fields[*i].name()))
                .filter_map(|(i, e)| match e.clone().unalias_nested().data {
                    Expr::WindowFunction(w) if exact_window(&w).is_some() => Some((i, *w)),
                    _ => None,
                })
                .collect();
            let mut passed = of_schema(wanted, &input);
            for (_, w) in sums.iter().chain(&exact) {
                passed.extend(
                    w.params
                        .args
                        .iter()
                        .flat_map(|a| a.column_refs())
                        .map(|c| c.name.clone()),
                );
            }
            let below = shown(Arc::unwrap_or_clone(window.input), &passed, top)?;
            let schema = below.data.schema().clone();
            let mut window_expr = window_expr
                .into_iter()
                .map(|e| values_of(e, &schema))
                .collect::<Result<Vec<_>>>()?;
            for (i, mut w) in exact {
                let Some(exact) = exact_window(&w).cloned() else {
                    continue;
                };
                let value = w.params.args[0].clone();
                if !has_scale_source(&value, &schema) {
                    continue;
                }
                let value = values_of(value, &schema)?;
                let (Some(scale), Some(display)) = (
                    scale_of_value(&w.params.args[0], &schema)?,
                    exact.scaled_display(&value.get_type(&schema)?),
                ) else {
                    continue;
                };
                w.fun = WindowFunctionDefinition::AggregateUDF(Arc::new(
                    AggregateUDF::new_from_impl(display),
                ));
                w.params.args = vec![value, scale];
                window_expr[i] = Expr::WindowFunction(Box::new(w)).alias(fields[i].name());
            }
            // A sum's scale over the same window: the largest of the values summed; a
            // value picked from another row's, that row's.
            for (i, mut w) in sums {
                if picked(&w) {
                    let mut args = Vec::with_capacity(w.params.args.len());
                    for (n, arg) in w.params.args.iter().enumerate() {
                        // The value's and the default's (`lag(x, 1, d)`) are scales.
                        let scale = match n {
                            0 | 2 => scale_of_value(arg, &schema)?,
                            _ => Some(arg.clone()),
                        };
                        args.extend(scale);
                    }
                    if args.len() != w.params.args.len()
                        || !has_scale_source(&w.params.args[0], &schema)
                    {
                        continue;
                    }
                    w.params.args = args;
                } else {
                    let value = summed(&w).cloned().unwrap_or_else(|| unreachable!("a sum"));
                    if !has_scale_source(&value, &schema) {
                        continue;
                    }
                    let Some(scale) = scale_of_value(&value, &schema)? else {
                        continue;
                    };
                    w.fun = WindowFunctionDefinition::AggregateUDF(
                        datafusion::functions_aggregate::min_max::max_udaf(),
                    );
                    w.params.args = vec![scale];
                }
                window_expr
                    .push(Expr::WindowFunction(Box::new(w)).alias(scale_column(fields[i].name())));
            }
            let plan = Window::try_new(window_expr, Arc::new(below.data))?;
            Ok(Transformed::new_transformed(
                LogicalPlan::Window(plan),
                changed || below.transformed,
            ))
        }
        LogicalPlan::Join(join) => {
            let (left_schema, right_schema) =
                (join.left.schema().clone(), join.right.schema().clone());
            let left = shown(
                Arc::unwrap_or_clone(join.left),
                &of_schema(wanted, &left_schema),
                top,
            )?;
            let right = shown(
                Arc::unwrap_or_clone(join.right),
                &of_schema(wanted, &right_schema),
                top,
            )?;
            let transformed = left.transformed || right.transformed;
            let (left, right) = (left.data, right.data);
            // The join's keys and condition read values.
            let on = join
                .on
                .into_iter()
                .map(|(l, r)| Ok((values_of(l, left.schema())?, values_of(r, right.schema())?)))
                .collect::<Result<Vec<_>>>()?;
            let both = left.schema().join(right.schema())?;
            let filter = join.filter.map(|f| values_of(f, &both)).transpose()?;
            let plan = Join::try_new(
                Arc::new(left),
                Arc::new(right),
                on,
                filter,
                join.join_type,
                join.join_constraint,
                join.null_equality,
                join.null_aware,
            )?;
            Ok(Transformed::new_transformed(
                LogicalPlan::Join(plan),
                transformed,
            ))
        }
        LogicalPlan::Union(union) if !top => match union_with_scales(&union, wanted)? {
            Some(plan) => Ok(Transformed::yes(plan)),
            None => Ok(Transformed::no(LogicalPlan::Union(union))),
        },
        // A union whose rows go to the client: shown by a projection above it.
        LogicalPlan::Union(union) => {
            let plan = LogicalPlan::Union(union);
            let columns = plan
                .schema()
                .columns()
                .into_iter()
                .map(Expr::Column)
                .collect();
            let projected = Projection::try_new(columns, Arc::new(plan.clone()))?;
            let shown = shown(LogicalPlan::Projection(projected), wanted, true)?;
            match shown.transformed {
                true => Ok(shown),
                false => Ok(Transformed::no(plan)),
            }
        }
        // DISTINCT as the grouping it is, where that shows a stored numeric's scales (1.5
        // and 1.50 are one value, shown as its first row's).
        LogicalPlan::Distinct(Distinct::All(input)) => {
            let grouped = distinct_grouping(&input)?;
            let columns = grouped.group_expr.clone();
            let projected =
                Projection::try_new(columns, Arc::new(LogicalPlan::Aggregate(grouped)))?;
            let shown = shown(LogicalPlan::Projection(projected), wanted, top)?;
            match shown.transformed {
                true => Ok(shown),
                false => Ok(Transformed::no(LogicalPlan::Distinct(Distinct::All(input)))),
            }
        }
        other => Ok(Transformed::no(other)),
    }
}

/// The values a window's `sum` adds up, where it is one over values of the shape
/// [`of_scales`] takes.
fn summed(w: &WindowFunction) -> Option<&Expr> {
    let WindowFunctionDefinition::AggregateUDF(f) = &w.fun else {
        return None;
    };
    match (f.name(), w.params.args.as_slice()) {
        ("sum", [value]) if of_scales(value) && !is_text_cast(value) => Some(value),
        _ => None,
    }
}

/// Whether a window function gives a value of another row (`first_value`, `lag`, …) of
/// the shape [`of_scales`] takes: the same function over the scales gives its scale.
fn picked(w: &WindowFunction) -> bool {
    let name = match &w.fun {
        WindowFunctionDefinition::WindowUDF(f) => f.name(),
        WindowFunctionDefinition::AggregateUDF(f) => f.name(),
    };
    matches!(
        name,
        "first_value" | "last_value" | "nth_value" | "lag" | "lead"
    ) && w
        .params
        .args
        .first()
        .is_some_and(|a| of_scales(a) && !is_text_cast(a))
}

/// The exact aggregate (see [`scaled_exact`]) a window function is, over values of the
/// shape [`of_scales`] takes.
fn exact_window(w: &WindowFunction) -> Option<&Exact> {
    let WindowFunctionDefinition::AggregateUDF(f) = &w.fun else {
        return None;
    };
    let exact = f.inner().downcast_ref::<Exact>()?;
    match (w.params.distinct, w.params.args.as_slice()) {
        (false, [value]) if of_scales(value) && !is_text_cast(value) => Some(exact),
        _ => None,
    }
}

/// Whether `expr` is a cast to text.
fn is_text_cast(expr: &Expr) -> bool {
    matches!(expr, Expr::Cast(Cast { field, .. }) if is_text(field.data_type()))
}

/// The names among `wanted` of columns `schema` has.
fn of_schema(wanted: &HashSet<String>, schema: &DFSchema) -> HashSet<String> {
    schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|name| wanted.contains(name))
        .collect()
}

/// The columns among a projection's `exprs` (with output `schema`) that are `wanted` and
/// pass on a value whose scale `input` holds: each one's position, value column and scale
/// column.
fn scaled_columns(
    exprs: &[Expr],
    schema: &DFSchema,
    wanted: &HashSet<String>,
    input: &DFSchema,
) -> Vec<(usize, Column, Column)> {
    exprs
        .iter()
        .zip(schema.fields())
        .enumerate()
        .filter(|(_, (_, field))| wanted.contains(field.name()))
        .filter_map(|(i, (expr, _))| match expr.clone().unalias_nested().data {
            Expr::Column(c) => scale_of(&c, input).map(|scale| (i, c, scale)),
            _ => None,
        })
        .collect()
}

/// A projection's expression passing on the `scale` column of `value`, which it outputs
/// as `qualifier`.`name`: named for that name.
fn passed_scale(
    value: &Column,
    scale: Column,
    qualifier: Option<&TableReference>,
    name: &str,
) -> Expr {
    match value.relation.as_ref() == qualifier && value.name == name {
        true => Expr::Column(scale),
        false => Expr::Column(scale).alias_qualified(qualifier.cloned(), scale_column(name)),
    }
}

/// Whether `expr` is of the shape [`scale_of_value`] follows: columns, numeric constants,
/// sums, differences, products and negations of them, casts between numbers, or one of
/// those cast to text.
fn of_scales(expr: &Expr) -> bool {
    match expr {
        Expr::Cast(Cast { expr, field }) if is_text(field.data_type()) => of_scales(expr),
        Expr::Column(_) | Expr::Literal(..) => true,
        Expr::Cast(Cast { expr, field }) if field.data_type().is_numeric() => of_scales(expr),
        Expr::Negative(e) | Expr::Alias(Alias { expr: e, .. }) => of_scales(e),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(
                op,
                Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Modulo
            ) && of_scales(left)
                && of_scales(right)
        }
        Expr::Case(case) => {
            case.when_then_expr.iter().all(|(_, then)| of_scales(then))
                && case.else_expr.as_deref().is_none_or(of_scales)
        }
        Expr::ScalarFunction(f) if read_numeric(f).is_some() => true,
        Expr::ScalarFunction(f) if quotient(f).is_some() => f.args.iter().all(of_scales),
        Expr::ScalarFunction(f) => match (f.func.name(), f.args.as_slice()) {
            ("coalesce" | "greatest" | "least", args) => {
                !args.is_empty() && args.iter().all(of_scales)
            }
            ("abs", [value]) | ("nullif", [value, _]) => of_scales(value),
            ("mod", [a, b]) => of_scales(a) && of_scales(b),
            (name, args) => fixed_places(name, args).is_some() && of_scales(&args[0]),
        },
        _ => false,
    }
}

/// The places a call of `name` with `args` gives whatever its argument's: `round(x, 2)`
/// and `trunc(x, 2)` two, `round(x)`, `ceil`, `floor`, `sign` and `div` none.
fn fixed_places(name: &str, args: &[Expr]) -> Option<i16> {
    match (name, args) {
        ("round" | "trunc", [_]) | ("ceil" | "ceiling" | "floor" | "sign", [_]) => Some(0),
        ("div", [_, _]) => Some(0),
        ("round" | "trunc", [_, digits]) => {
            // A constant, perhaps cast (`round(x, 2)` is planned with `2::int`).
            let digits = match digits {
                Expr::Cast(Cast { expr, .. }) => expr.as_ref(),
                other => other,
            };
            let Expr::Literal(digits, _) = digits else {
                return None;
            };
            match digits.cast_to(&DataType::Int64).ok()? {
                ScalarValue::Int64(Some(n)) => Some(n.clamp(0, 1000) as i16),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether `expr` holds something that shows the scales of an expression of the shape
/// [`of_scales`] takes: its cast to text, its `scale`, or it as an argument of `format`.
fn reads_scales(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(match e {
            Expr::Cast(Cast { field, .. }) if is_text(field.data_type()) => of_scales(e),
            Expr::ScalarFunction(f) => match (f.func.name(), f.args.as_slice()) {
                ("scale", [value]) => of_scales(value),
                ("format", [_, args @ ..]) => args.iter().any(of_scales),
                _ => false,
            },
            _ => false,
        })
    })
    .unwrap_or(false)
}

/// `expr` (over `input`) with what shows the scales of stored unconstrained numerics (see
/// [`reads_scales`]) computed from them: texts with each value's places, `scale` the
/// value's own, `format`'s numeric arguments as those texts.
fn with_texts_shown(expr: Expr, input: &DFSchema) -> Result<Transformed<Expr>> {
    let text_of = |value: &Expr| -> Result<Option<Expr>> {
        let cast = Expr::Cast(Cast::new(Box::new(value.clone()), DataType::Utf8));
        Ok(computed_display(&cast, input)?.map(|(text, _)| text))
    };
    expr.transform_down(|e| match &e {
        Expr::Cast(Cast { field, .. }) if is_text(field.data_type()) => {
            match computed_display(&e, input)? {
                Some((text, _)) => Ok(Transformed::new(text, true, TreeNodeRecursion::Jump)),
                None => Ok(Transformed::no(e)),
            }
        }
        Expr::ScalarFunction(f) => match (f.func.name(), f.args.as_slice()) {
            ("scale", [value]) if has_scale_source(value, input) && of_scales(value) => {
                let Some(scale) = scale_of_value(value, input)? else {
                    return Ok(Transformed::no(e));
                };
                let scale = Expr::Cast(Cast::new(Box::new(scale), DataType::Int32));
                let shown = Expr::Case(datafusion::logical_expr::expr::Case {
                    expr: None,
                    when_then_expr: vec![(Box::new(value.clone().is_not_null()), Box::new(scale))],
                    else_expr: None,
                });
                Ok(Transformed::new(shown, true, TreeNodeRecursion::Jump))
            }
            ("format", [_, ..]) => {
                let mut f = f.clone();
                let mut changed = false;
                for arg in f.args.iter_mut().skip(1) {
                    if !matches!(arg.get_type(input)?, DataType::Decimal128(..)) {
                        continue;
                    }
                    if let Some(text) = text_of(arg)? {
                        *arg = text;
                        changed = true;
                    }
                }
                Ok(Transformed::new(
                    Expr::ScalarFunction(f),
                    changed,
                    TreeNodeRecursion::Continue,
                ))
            }
            _ => Ok(Transformed::no(e)),
        },
        _ => Ok(Transformed::no(e)),
    })
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// An expression over stored unconstrained numerics (see [`of_scales`]) in the form
/// PostgreSQL shows it, each value with its scale: a numeric's display form, or its text;
/// with the scale expression when the value is a numeric (for a projection above to show
/// it). `None` where it is of another shape or reads no such column.
fn computed_display(expr: &Expr, input: &DFSchema) -> Result<Option<(Expr, Option<Expr>)>> {
    if !has_scale_source(expr, input) || !of_scales(expr) {
        return Ok(None);
    }
    if let Expr::Cast(Cast { expr: value, field }) = expr {
        if !is_text(field.data_type()) {
            return Ok(None);
        }
        let valued = values_of(*value.clone(), input)?;
        if !matches!(valued.get_type(input)?, DataType::Decimal128(..)) {
            return Ok(None);
        }
        let Some(scale) = scale_of_value(value, input)? else {
            return Ok(None);
        };
        let text = get_field(numeric_shown(valued, scale), TEXT_FIELD);
        let text = match field.data_type() {
            DataType::Utf8 => text,
            other => Expr::Cast(Cast::new(Box::new(text), other.clone())),
        };
        return Ok(Some((text, None)));
    }
    let valued = values_of(expr.clone(), input)?;
    if !matches!(valued.get_type(input)?, DataType::Decimal128(..)) {
        return Ok(None);
    }
    let Some(scale) = scale_of_value(expr, input)? else {
        return Ok(None);
    };
    Ok(Some((numeric_shown(valued, scale.clone()), Some(scale))))
}

/// The scale PostgreSQL gives each value of `expr` (of the shape [`of_scales`] takes), as
/// an expression: a stored unconstrained numeric's own, a constant's or other decimal's
/// its type's, an integer's none; the larger of two added or subtracted, the sum of two
/// multiplied. `None` for anything else.
pub(crate) fn scale_of_value(expr: &Expr, input: &DFSchema) -> Result<Option<Expr>> {
    let places = |s: i8| Expr::Literal(ScalarValue::Int16(Some(i16::from(s.max(0)))), None);
    Ok(match expr {
        Expr::Column(c) => match scale_of(c, input) {
            Some(scale) => Some(Expr::Column(scale)),
            None => match expr.get_type(input)? {
                DataType::Decimal128(_, s) => Some(places(s)),
                t if t.is_integer() => Some(places(0)),
                // A value PostgreSQL shows with places of its own (an average): its text's.
                t if is_display(&t) => Some(shown_places(
                    get_field(expr.clone(), TEXT_FIELD),
                    held_places(&values_of(expr.clone(), input)?, input)?,
                )),
                _ => None,
            },
        },
        Expr::Literal(value, _) => match value.data_type() {
            DataType::Decimal128(_, s) => Some(places(s)),
            t if t.is_integer() => Some(places(0)),
            _ => None,
        },
        Expr::Cast(Cast { expr, field }) if field.data_type().is_numeric() => {
            match expr.get_type(input)? {
                t if t.is_integer() || matches!(t, DataType::Decimal128(..)) => {
                    scale_of_value(expr, input)?
                }
                _ => None,
            }
        }
        Expr::Negative(e) | Expr::Alias(Alias { expr: e, .. }) => scale_of_value(e, input)?,
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (Some(l), Some(r)) = (scale_of_value(left, input)?, scale_of_value(right, input)?)
            else {
                return Ok(None);
            };
            match op {
                Operator::Plus | Operator::Minus | Operator::Modulo => Some(greatest(vec![l, r])),
                Operator::Multiply => Some(l + r),
                _ => None,
            }
        }
        // The scale of the value chosen.
        Expr::Case(case) => {
            let mut when_then_expr = Vec::with_capacity(case.when_then_expr.len());
            for (when, then) in &case.when_then_expr {
                let Some(scale) = scale_of_value(then, input)? else {
                    return Ok(None);
                };
                when_then_expr.push((when.clone(), Box::new(scale)));
            }
            let else_expr = match &case.else_expr {
                Some(e) => match scale_of_value(e, input)? {
                    Some(scale) => Some(Box::new(scale)),
                    None => return Ok(None),
                },
                None => None,
            };
            Some(Expr::Case(datafusion::logical_expr::expr::Case {
                expr: case.expr.clone(),
                when_then_expr,
                else_expr,
            }))
        }
        // A quotient's: the places of its text, as PostgreSQL chooses them.
        Expr::ScalarFunction(f) if quotient(f).is_some() => {
            let shown = match scaled_division(expr, input)? {
                Some(shown) => shown,
                None => match division_display(expr) {
                    Some(shown) => values_in_args(shown, input)?,
                    // Constants': the quotient's type has PostgreSQL's places.
                    None => {
                        return Ok(match expr.get_type(input)? {
                            DataType::Decimal128(_, s) => Some(places(s)),
                            _ => None,
                        })
                    }
                },
            };
            Some(shown_places(
                get_field(shown, TEXT_FIELD),
                held_places(&values_of(expr.clone(), input)?, input)?,
            ))
        }
        Expr::ScalarFunction(f) if read_numeric(f).is_some() => {
            let read = read_numeric(f)
                .cloned()
                .unwrap_or_else(|| unreachable!("read"));
            Some(Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::new(ScalarUDF::new_from_impl(WrittenScale::default())),
                vec![read],
            )))
        }
        Expr::ScalarFunction(f) => match (f.func.name(), f.args.as_slice()) {
            ("coalesce", [args @ .., last]) => {
                let mut when_then_expr = Vec::with_capacity(args.len());
                for arg in args {
                    let Some(scale) = scale_of_value(arg, input)? else {
                        return Ok(None);
                    };
                    when_then_expr.push((Box::new(arg.clone().is_not_null()), Box::new(scale)));
                }
                let Some(last) = scale_of_value(last, input)? else {
                    return Ok(None);
                };
                match when_then_expr.is_empty() {
                    true => Some(last),
                    false => Some(Expr::Case(datafusion::logical_expr::expr::Case {
                        expr: None,
                        when_then_expr,
                        else_expr: Some(Box::new(last)),
                    })),
                }
            }
            ("abs", [value]) | ("nullif", [value, _]) => scale_of_value(value, input)?,
            (name, args) if fixed_places(name, args).is_some() => {
                let places = fixed_places(name, args).unwrap_or_default();
                Some(Expr::Literal(ScalarValue::Int16(Some(places)), None))
            }
            ("mod", [a, b]) => match (scale_of_value(a, input)?, scale_of_value(b, input)?) {
                (Some(a), Some(b)) => Some(greatest(vec![a, b])),
                _ => None,
            },
            // The scale of the first argument equal to the one picked, as PostgreSQL
            // keeps the first of equal values.
            ("greatest" | "least", args) if !args.is_empty() => {
                let mut when_then_expr = Vec::with_capacity(args.len());
                for arg in args {
                    let Some(scale) = scale_of_value(arg, input)? else {
                        return Ok(None);
                    };
                    when_then_expr.push((Box::new(arg.clone().eq(expr.clone())), Box::new(scale)));
                }
                Some(Expr::Case(datafusion::logical_expr::expr::Case {
                    expr: None,
                    when_then_expr,
                    else_expr: None,
                }))
            }
            _ => None,
        },
        _ => None,
    })
}

/// Whether `expr` reads a value whose scale is its own: a stored unconstrained numeric,
/// or text or a double converted to one.
pub(crate) fn has_scale_source(expr: &Expr, input: &DFSchema) -> bool {
    expr.exists(|e| {
        Ok(match e {
            Expr::Column(c) => scale_of(c, input).is_some() || has_own_places(e, input),
            Expr::ScalarFunction(f) => read_numeric(f).is_some() || has_own_places(e, input),
            _ => false,
        })
    })
    .unwrap_or(false)
}

/// Whether `expr` is a value PostgreSQL shows with places of its own that Henge holds at a
/// fixed scale: a quotient (not of constants), or a column of display numerics (an
/// average, a variance).
fn has_own_places(expr: &Expr, input: &DFSchema) -> bool {
    match expr {
        Expr::Column(_) => expr.get_type(input).is_ok_and(|t| is_display(&t)),
        Expr::ScalarFunction(f) => quotient(f).is_some_and(|d| d.display().is_some()),
        _ => false,
    }
}

/// The division `f` is, if it is one of numerics.
fn quotient(f: &ScalarFunction) -> Option<&NumericDiv> {
    f.func
        .inner()
        .downcast_ref::<NumericDiv>()
        .filter(|_| f.args.len() == 2)
}

/// The places a decimal expression's values are held with.
fn held_places(value: &Expr, input: &DFSchema) -> Result<i16> {
    Ok(match value.get_type(input)? {
        DataType::Decimal128(_, s) => i16::from(s),
        _ => 0,
    })
}

/// `henge_shown_places(text, held)` of a numeric's text: its places; refused where they
/// are more than the `held` places its value is computed with (arithmetic would show the
/// rounded value's digits where PostgreSQL has others).
fn shown_places(text: Expr, held: i16) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(ShownPlaces::default())),
        vec![text, Expr::Literal(ScalarValue::Int16(Some(held)), None)],
    ))
}

/// The places of a numeric's text (the digits after its point).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ShownPlaces {
    signature: Signature,
}

impl Default for ShownPlaces {
    fn default() -> ShownPlaces {
        ShownPlaces {
            signature: Signature::exact(
                vec![DataType::Utf8, DataType::Int16],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for ShownPlaces {
    fn name(&self) -> &str {
        "henge_shown_places"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int16)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let held = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Int16(Some(held))) => *held,
            _ => return internal_err!("henge_shown_places without its held places"),
        };
        super::on_arrays(&args, |arrays| {
            let places = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|text| {
                    let Some(text) = text else {
                        return Ok(None);
                    };
                    let places = text.split_once('.').map_or(0, |(_, p)| p.len() as i16);
                    match places > held {
                        true => Err(super::SqlStateError::new(
                            "0A000",
                            format!(
                                "arithmetic on the numeric {text} is not supported: Henge \
                                 computes it with {held} places"
                            ),
                        )
                        .into()),
                        false => Ok(Some(places)),
                    }
                })
                .collect::<Result<datafusion::arrow::array::Int16Array>>()?;
            Ok(Arc::new(places) as ArrayRef)
        })
    }
}

/// A function call (a display form built over `input`) whose arguments read values where
/// they are display numerics.
fn values_in_args(expr: Expr, input: &DFSchema) -> Result<Expr> {
    match expr {
        Expr::ScalarFunction(mut f) => {
            f.args = f
                .args
                .into_iter()
                .map(|a| values_of(a, input))
                .collect::<Result<_>>()?;
            Ok(Expr::ScalarFunction(f))
        }
        other => Ok(other),
    }
}

/// What a conversion to an unconstrained numeric reads, text or a double (whose scale is
/// that of its digits, value by value), if `f` is one.
fn read_numeric(f: &ScalarFunction) -> Option<&Expr> {
    let inner = f.func.inner();
    let read = super::numeric::is_stored_numeric(inner.as_ref())
        || super::float_cast::is_unconstrained(inner.as_ref());
    match (read, f.args.as_slice()) {
        (true, [value]) => Some(value),
        _ => None,
    }
}

/// Whether `expr` is an aggregate shown with the places PostgreSQL gives it from the own
/// scales of the values it reads (see [`with_scale_argument`]).
pub(crate) fn is_scaled_aggregate(expr: &Expr) -> bool {
    match expr {
        Expr::AggregateFunction(f) => f
            .func
            .inner()
            .downcast_ref::<Exact>()
            .is_some_and(Exact::is_scaled),
        Expr::WindowFunction(w) => matches!(&w.fun, WindowFunctionDefinition::AggregateUDF(f)
            if f.inner().downcast_ref::<Exact>().is_some_and(Exact::is_scaled)),
        _ => false,
    }
}

/// Whether `f` shows a decimal with the scale of each value ([`NumericShown`]).
pub(crate) fn is_shown_numeric(f: &ScalarFunction) -> bool {
    f.func.inner().downcast_ref::<NumericShown>().is_some()
}

/// Whether `f` converts text or a double to a numeric whose values' scales are their
/// digits'.
pub(crate) fn is_written_numeric(f: &ScalarFunction) -> bool {
    read_numeric(f).is_some()
}

/// `henge_written_scale(x)`: the scale numeric input gives `x`'s text (a double's, its
/// digits as PostgreSQL writes them converting it to numeric: 15 significant digits, a
/// real's 6).
#[derive(Debug, PartialEq, Eq, Hash)]
struct WrittenScale {
    signature: Signature,
}

impl Default for WrittenScale {
    fn default() -> WrittenScale {
        WrittenScale {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for WrittenScale {
    fn name(&self) -> &str {
        "henge_written_scale"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int16)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        super::on_arrays(&args, |arrays| {
            let array = &arrays[0];
            let scale = |text: &str| {
                henge_ingest::value::parse_numeric_unconstrained(text)
                    .ok()
                    .map(|(_, scale)| scale)
            };
            let scales: datafusion::arrow::array::Int16Array = match array.data_type() {
                DataType::Float64 | DataType::Float32 => {
                    let digits = match array.data_type() {
                        DataType::Float32 => 6,
                        _ => 15,
                    };
                    cast(array, &DataType::Float64)?
                        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                        .iter()
                        .map(|v| v.and_then(|v| scale(&significant(v, digits))))
                        .collect()
                }
                _ => cast(array, &DataType::Utf8)?
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.and_then(scale))
                    .collect(),
            };
            Ok(Arc::new(scales) as ArrayRef)
        })
    }
}

/// `v` with `digits` significant digits and no trailing zeros, as `%.{digits}g` writes it.
fn significant(v: f64, digits: usize) -> String {
    let text = format!("{v:.prec$e}", prec = digits - 1);
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = match mantissa.contains('.') {
        true => mantissa.trim_end_matches('0').trim_end_matches('.'),
        false => mantissa,
    };
    format!("{mantissa}e{exponent}")
}

/// The column of `input` holding the scales of column `value`'s values, if it has one.
fn scale_of(value: &Column, input: &DFSchema) -> Option<Column> {
    let scale = Column::new(value.relation.clone(), scale_column(&value.name));
    input.has_column(&scale).then_some(scale)
}

/// `plan` (under an aggregation) with the scales of its `wanted` columns that are stored
/// unconstrained numerics passed on beside them, through projections of columns, filters,
/// sorts, limits and aliases down to the table; `None` where it has none to pass.
pub(crate) fn with_scales(
    plan: &LogicalPlan,
    wanted: &HashSet<String>,
) -> Result<Option<LogicalPlan>> {
    let rebuilt =
        |input: &Arc<LogicalPlan>| -> Result<Option<LogicalPlan>> { with_scales(input, wanted) };
    Ok(Some(match plan {
        LogicalPlan::TableScan(scan) => return scan_with_scales(scan, wanted),
        LogicalPlan::Filter(filter) => {
            let Some(input) = rebuilt(&filter.input)? else {
                return Ok(None);
            };
            LogicalPlan::Filter(Filter::try_new(filter.predicate.clone(), Arc::new(input))?)
        }
        LogicalPlan::Sort(sort) => {
            let Some(input) = rebuilt(&sort.input)? else {
                return Ok(None);
            };
            LogicalPlan::Sort(Sort {
                expr: sort.expr.clone(),
                input: Arc::new(input),
                fetch: sort.fetch,
            })
        }
        LogicalPlan::Limit(limit) => {
            let Some(input) = rebuilt(&limit.input)? else {
                return Ok(None);
            };
            let mut limit = limit.clone();
            limit.input = Arc::new(input);
            LogicalPlan::Limit(limit)
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let Some(input) = rebuilt(&alias.input)? else {
                return Ok(None);
            };
            LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                Arc::new(input),
                alias.alias.clone(),
            )?)
        }
        LogicalPlan::Union(union) => return union_with_scales(union, wanted),
        LogicalPlan::Aggregate(aggregate) => return aggregate_scales(aggregate, wanted),
        // DISTINCT as the grouping it is, each value's scale its first row's.
        LogicalPlan::Distinct(Distinct::All(input)) => {
            return aggregate_scales(&distinct_grouping(input)?, wanted);
        }
        LogicalPlan::Projection(projection) => {
            let below: HashSet<String> = projection
                .expr
                .iter()
                .zip(projection.schema.fields())
                .filter(|(_, field)| wanted.contains(field.name()))
                .filter_map(|(e, _)| match e.clone().unalias_nested().data {
                    Expr::Column(c) => Some(c.name),
                    _ => None,
                })
                .collect();
            let Some(input) = with_scales(&projection.input, &below)? else {
                return Ok(None);
            };
            let mut exprs = projection.expr.clone();
            for (i, value, scale) in
                scaled_columns(&exprs, &projection.schema, wanted, input.schema())
            {
                let (qualifier, field) = projection.schema.qualified_field(i);
                exprs.push(passed_scale(&value, scale, qualifier, field.name()));
            }
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input))?)
        }
        _ => return Ok(None),
    }))
}

/// `SELECT DISTINCT` of `input` as the grouping by all its columns it is.
fn distinct_grouping(input: &Arc<LogicalPlan>) -> Result<Aggregate> {
    let columns: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    Aggregate::try_new(input.clone(), columns, vec![])
}

/// A union whose `wanted` numeric columns have the scale of each value beside them, as
/// each input gives it (`1 UNION 2.5` is `1` and `2.5`: the inputs' values are made
/// numerics of one type, with the larger scale); `None` where an input's is not known.
fn union_with_scales(union: &Union, wanted: &HashSet<String>) -> Result<Option<LogicalPlan>> {
    let fields = union.schema.fields();
    let positions: Vec<usize> = (0..fields.len())
        .filter(|&i| wanted.contains(fields[i].name()))
        .filter(|&i| matches!(fields[i].data_type(), DataType::Decimal128(..)))
        .collect();
    if positions.is_empty() {
        return Ok(None);
    }
    let mut inputs = Vec::with_capacity(union.inputs.len());
    for input in &union.inputs {
        // The input's own projection, where it has one: its expressions say the scales.
        let (mut exprs, below) = match input.as_ref() {
            LogicalPlan::Projection(p) => {
                let names: HashSet<String> = positions
                    .iter()
                    .flat_map(|&i| p.expr[i].column_refs())
                    .map(|c| c.name.clone())
                    .collect();
                let below =
                    with_scales(&p.input, &names)?.unwrap_or_else(|| p.input.as_ref().clone());
                (p.expr.clone(), below)
            }
            // A union within: its own columns and scales, as they are (a projection of
            // them over it would be flattened away with the scales found twice).
            LogicalPlan::Union(_) => {
                let names: HashSet<String> = positions
                    .iter()
                    .map(|&i| input.schema().field(i).name().clone())
                    .collect();
                match with_scales(input, &names)? {
                    Some(scaled)
                        if scaled.schema().fields().len()
                            == input.schema().fields().len() + positions.len() =>
                    {
                        inputs.push(Arc::new(scaled));
                        continue;
                    }
                    _ => return Ok(None),
                }
            }
            // A DISTINCT or a grouping: its scales passed on as its columns'.
            other => {
                let names: HashSet<String> = positions
                    .iter()
                    .map(|&i| other.schema().field(i).name().clone())
                    .collect();
                (
                    other
                        .schema()
                        .columns()
                        .into_iter()
                        .map(Expr::Column)
                        .collect(),
                    with_scales(other, &names)?.unwrap_or_else(|| other.clone()),
                )
            }
        };
        // Values with scales of their own that reach here without them: not known.
        let Some(carried) = super::unscaled::carried_columns(input) else {
            return Ok(None);
        };
        for &i in &positions {
            let value = exprs[i].clone().unalias_nested().data;
            if carried[i] && !has_scale_source(&value, below.schema()) {
                return Ok(None);
            }
            let Some(scale) = scale_of_value(&value, below.schema())? else {
                return Ok(None);
            };
            // Named as the union's column is (a column of that name as it is: aliased to
            // its own name, the optimizer would find it twice).
            let name = scale_column(fields[i].name());
            exprs.push(match &scale {
                Expr::Column(c) if c.name == name => scale,
                _ => scale.alias(name),
            });
        }
        inputs.push(Arc::new(LogicalPlan::Projection(Projection::try_new(
            exprs,
            Arc::new(below),
        )?)));
    }
    Ok(Some(LogicalPlan::Union(Union::try_new_with_loose_types(
        inputs,
    )?)))
}

/// A scan of a Henge table reading, after its columns, the scales of those `wanted` that
/// are unconstrained numerics; `None` if it reads none, or reads hidden columns already
/// (the rollup rewrite's).
fn scan_with_scales(scan: &TableScan, wanted: &HashSet<String>) -> Result<Option<LogicalPlan>> {
    let Ok(provider) = source_as_provider(&scan.source) else {
        return Ok(None);
    };
    let Some(table) = provider.downcast_ref::<HengeTable>() else {
        return Ok(None);
    };
    let def = table.def();
    let own = def.columns.len();
    if scan.source.schema().fields().len() != own {
        return Ok(None);
    }
    let mut projection = scan
        .projection
        .clone()
        .unwrap_or_else(|| (0..own).collect());
    let stored = def.stored_columns();
    let scales: Vec<usize> = projection
        .iter()
        .filter(|&&i| wanted.contains(&def.columns[i].name))
        .filter_map(|&i| {
            let name = scale_column(&def.columns[i].name);
            stored.iter().position(|c| c.name == name)
        })
        .collect();
    if scales.is_empty() {
        return Ok(None);
    }
    projection.extend(scales);
    Ok(Some(LogicalPlan::TableScan(
        TableScanBuilder::new(
            scan.table_name.clone(),
            provider_as_source(Arc::new(table.with_hidden())),
        )
        .with_projection(Some(projection))
        .with_filters(scan.filters.clone())
        .with_fetch(scan.fetch)
        .build()?,
    )))
}

/// An aggregation whose `wanted` outputs include stored unconstrained numerics — a
/// grouping column, or the `sum`, `min` or `max` of one or of arithmetic over them — with the scale of each after its
/// own outputs, named for it as a projection above looks for it: a sum's is the largest
/// scale of the values summed (PostgreSQL's), a minimum's or maximum's that of the value
/// picked, a group's that of its first row (PostgreSQL shows the first row's value). `None` if it has none. Not for
/// grouping sets.
fn aggregate_scales(plan: &Aggregate, wanted: &HashSet<String>) -> Result<Option<LogicalPlan>> {
    if plan
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Ok(None);
    }
    let fields = plan.schema.fields();
    let first = plan.group_expr.len();
    let mut sources: Vec<Source> = Vec::new();
    for (i, e) in plan.group_expr.iter().enumerate() {
        if let (Expr::Column(_), true) = (e, wanted.contains(fields[i].name())) {
            sources.push(Source {
                output: i,
                value: e.clone(),
                filter: None,
                least: None,
            });
        }
    }
    for (i, e) in plan.aggr_expr.iter().enumerate() {
        if !wanted.contains(fields[first + i].name()) {
            continue;
        }
        let Expr::AggregateFunction(f) = e.clone().unalias_nested().data else {
            continue;
        };
        let least = match f.func.name() {
            "sum" => None,
            "min" => Some(true),
            "max" => Some(false),
            _ => continue,
        };
        if let [value] = f.params.args.as_slice() {
            if of_scales(value)
                && !matches!(value, Expr::Cast(Cast { field, .. }) if is_text(field.data_type()))
            {
                sources.push(Source {
                    output: first + i,
                    value: value.clone(),
                    filter: f.params.filter.clone(),
                    least,
                });
            }
        }
    }
    let names: HashSet<String> = sources
        .iter()
        .flat_map(|s| s.value.column_refs())
        .map(|c| c.name.clone())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    // The input with the scales of the stored numerics read (text and doubles converted
    // to numerics have theirs computed).
    let input = with_scales(&plan.input, &names)?.unwrap_or_else(|| plan.input.as_ref().clone());
    let mut aggr_expr = plan.aggr_expr.clone();
    for Source {
        output: i,
        value,
        filter,
        least,
    } in sources
    {
        let schema = input.schema();
        if !has_scale_source(&value, schema) {
            continue;
        }
        let Some(scale) = scale_of_value(&value, schema)? else {
            continue;
        };
        use datafusion::functions_aggregate::expr_fn::{first_value, max};
        let mut scale = match (least, i < first) {
            // The scale of the value picked (of one of them, where several are equal).
            (Some(least), _) => first_value(scale, vec![value.sort(least, false)]),
            // A group's value is its first row's, as PostgreSQL shows it.
            (None, true) => first_value(scale, vec![]),
            (None, false) => max(scale),
        };
        if let (Expr::AggregateFunction(f), Some(filter)) = (&mut scale, filter) {
            f.params.filter = Some(filter);
        }
        let (qualifier, field) = plan.schema.qualified_field(i);
        aggr_expr.push(scale.alias_qualified(qualifier.cloned(), scale_column(field.name())));
    }
    if aggr_expr.len() == plan.aggr_expr.len() {
        return Ok(None);
    }
    Ok(Some(LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(input),
        plan.group_expr.clone(),
        aggr_expr,
    )?)))
}

/// An aggregation whose arguments show the scales of stored unconstrained numerics
/// (`string_agg(x::text, ',')`, see [`reads_scales`]) or whose `wanted` averages,
/// variances or standard deviations are of them, with its input reading the scales: the
/// arguments show them, and those aggregates take them as a second argument to show their
/// results with PostgreSQL's places (named as before); and whether it changed.
fn aggregate_texts(aggregate: Aggregate, wanted: &HashSet<String>) -> Result<(Aggregate, bool)> {
    let first = aggregate.schema.fields().len() - aggregate.aggr_expr.len();
    let exact: Vec<bool> = aggregate
        .aggr_expr
        .iter()
        .zip(&aggregate.schema.fields()[first..])
        .map(|(e, field)| wanted.contains(field.name()) && scaled_exact(e).is_some())
        .collect();
    if !aggregate.aggr_expr.iter().any(reads_scales) && !exact.contains(&true) {
        return Ok((aggregate, false));
    }
    // The scales of every column read: an aggregate's own scale below needs them too.
    let names: HashSet<String> = aggregate
        .group_expr
        .iter()
        .chain(&aggregate.aggr_expr)
        .flat_map(|e| e.column_refs())
        .map(|c| c.name.clone())
        .collect();
    let Some(input) = with_scales(&aggregate.input, &names)? else {
        return Ok((aggregate, false));
    };
    let schema = input.schema().clone();
    let names = NamePreserver::new_for_projection();
    let aggr_expr = aggregate
        .aggr_expr
        .into_iter()
        .zip(exact)
        .map(|(e, exact)| {
            let saved = names.save(&e);
            let shown = match exact {
                true => with_scale_argument(e, &schema)?,
                false => with_texts_shown(e, &schema)?.data,
            };
            Ok(saved.restore(shown))
        })
        .collect::<Result<Vec<_>>>()?;
    let aggregate = Aggregate::try_new(Arc::new(input), aggregate.group_expr, aggr_expr)?;
    Ok((aggregate, true))
}

/// The exact aggregate (`avg`, a variance or standard deviation, not DISTINCT) `expr`
/// calls over values of the shape [`of_scales`] takes.
fn scaled_exact(expr: &Expr) -> Option<(&AggregateFunction, &Exact)> {
    let Expr::AggregateFunction(f) = expr else {
        return None;
    };
    let exact = f.func.inner().downcast_ref::<Exact>()?;
    match (f.params.distinct, f.params.args.as_slice()) {
        (false, [value]) if of_scales(value) && !is_text_cast(value) => Some((f, exact)),
        _ => None,
    }
}

/// An exact aggregate (see [`scaled_exact`]) over stored unconstrained numerics shown
/// with the places PostgreSQL gives it from the values' own scales.
fn with_scale_argument(expr: Expr, input: &DFSchema) -> Result<Expr> {
    let Some((f, exact)) = scaled_exact(&expr) else {
        return Ok(expr);
    };
    let value = &f.params.args[0];
    if !has_scale_source(value, input) {
        return Ok(expr);
    }
    let (Some(scale), Some(display)) = (
        scale_of_value(value, input)?,
        exact.scaled_display(&value.get_type(input)?),
    ) else {
        return Ok(expr);
    };
    let mut params = f.params.clone();
    params.args.push(scale);
    Ok(Expr::AggregateFunction(AggregateFunction {
        func: Arc::new(AggregateUDF::new_from_impl(display)),
        params,
    }))
}

/// A wanted output of an aggregation that is a stored column, or sums or picks values
/// computed from such columns (see [`of_scales`]).
struct Source {
    /// Its position among the aggregation's outputs.
    output: usize,
    value: Expr,
    /// The aggregate's filter.
    filter: Option<Box<Expr>>,
    /// For `min` (true) or `max` (false), which value it picks.
    least: Option<bool>,
}

/// `value` (a decimal) shown with `scale` places (see [`NumericShown`]).
fn numeric_shown(value: Expr, scale: Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(NumericShown::default())),
        vec![value, scale],
    ))
}

/// The display form of a decimal whose values each have their own scale: a stored
/// unconstrained numeric's, in the second argument (NULL where it is not known, as for
/// rows written by a query: the value is shown without trailing zeros).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericShown {
    signature: Signature,
}

impl Default for NumericShown {
    fn default() -> NumericShown {
        NumericShown {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for NumericShown {
    fn name(&self) -> &str {
        "henge_numeric_shown"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(display_type(args[0].clone()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let values = args.args[0].to_array(rows)?;
        let scales = cast(&args.args[1].to_array(rows)?, &DataType::Int16)?;
        let (values, scales) = (
            values.as_primitive::<Decimal128Type>(),
            scales.as_primitive::<Int16Type>(),
        );
        let kept = match values.data_type() {
            DataType::Decimal128(_, s) => *s,
            other => return internal_err!("henge_numeric_shown of {other}"),
        };
        let texts = values
            .iter()
            .zip(scales.iter())
            .map(|(value, scale)| {
                let value = value?;
                // Never fewer places than the value has (a scale is the value's own).
                let needed = i32::from(places_needed(value, kept));
                let places = scale.map_or(needed, |s| i32::from(s).max(needed));
                let at = quotient_at(
                    BigInt::from(value),
                    kept.into(),
                    &BigInt::from(1),
                    0,
                    places,
                );
                Some(numeric_text(&at, places))
            })
            .collect();
        Ok(ColumnarValue::Array(display_array(values.clone(), texts)))
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

/// `expr` reading the values of the display numerics it refers to (where it does not read
/// their texts already).
fn values_of(expr: Expr, schema: &DFSchema) -> Result<Expr> {
    let is_display_column =
        |e: &Expr| matches!(e, Expr::Column(_)) && e.get_type(schema).is_ok_and(|t| is_display(&t));
    expr.transform_down(|e| match &e {
        Expr::ScalarFunction(f)
            if f.func.name() == "get_field" && f.args.first().is_some_and(is_display_column) =>
        {
            Ok(Transformed::new(e, false, TreeNodeRecursion::Jump))
        }
        _ if is_display_column(&e) => Ok(Transformed::new(
            datafusion::functions::core::expr_fn::get_field(e, VALUE_FIELD),
            true,
            TreeNodeRecursion::Jump,
        )),
        _ => Ok(Transformed::no(e)),
    })
    .map(|t| t.data)
}

/// A quotient's display form (see [`division_display`]) over values with scales of
/// their own (see [`has_scale_source`]) given those scales: PostgreSQL's places depend
/// on them. `None` for anything else.
fn scaled_division(expr: &Expr, input: &DFSchema) -> Result<Option<Expr>> {
    let Expr::ScalarFunction(f) = expr else {
        return Ok(None);
    };
    let Some(div) = f.func.inner().downcast_ref::<NumericDiv>() else {
        return Ok(None);
    };
    let [a, b] = f.args.as_slice() else {
        return Ok(None);
    };
    if !f.args.iter().any(|e| has_scale_source(e, input)) {
        return Ok(None);
    }
    let (Some(sa), Some(sb)) = (scale_of_value(a, input)?, scale_of_value(b, input)?) else {
        return Ok(None);
    };
    Ok(Some(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(div.scaled_display())),
        vec![
            values_of(a.clone(), input)?,
            values_of(b.clone(), input)?,
            sa,
            sb,
        ],
    ))))
}

/// Whether `expr` divides values with scales of their own, showing the quotient from
/// those scales ([`scaled_division`]).
pub(crate) fn is_scaled_division(expr: &Expr) -> bool {
    matches!(expr, Expr::ScalarFunction(f)
        if f.func.inner().downcast_ref::<NumericDiv>().is_some_and(NumericDiv::is_scaled))
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
    let exact = f.func.inner().downcast_ref::<Exact>()?;
    if exact.is_scaled() {
        return None;
    }
    let display = exact.display(&arg)?;
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
