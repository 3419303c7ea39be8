//! The check under [`super::display`]: no numeric declared without a scale reaches a
//! client with places it was not written with.
//!
//! Such a column's values are held with 10 places, each value's own scale beside it. The
//! display rewrite follows the scales through the expressions and plan nodes it knows and
//! shows each value with its own; anything else that turns such a value into text (a
//! function Henge does not follow, an array, a record, JSON) or sends it to the client
//! unshown would print the 10 places where PostgreSQL prints the value's own, a difference
//! nobody would notice. [`check`] follows every value read from such a column (or made
//! from text or a double converted to `numeric`, whose scales are their digits') through
//! the rewritten plan and refuses the query (0A000) where one is used so, naming the
//! expression.
//!
//! A value stops mattering where its scale no longer shows: a comparison, a count, a
//! conversion to an integer, a double or a date, a `round`/`trunc`/`ceil`/`floor` or a cast
//! to a numeric of another scale (which fix the places), and the display forms the rewrite
//! built.

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::utils::grouping_set_to_exprlist;
use datafusion::logical_expr::{Expr, ExprSchemable, JoinType, LogicalPlan};
use henge_storage::schema::ColumnType;

use super::display::{is_display, is_scaled_aggregate, is_scaled_division, is_shown_numeric};
use super::SqlStateError;
use crate::table::HengeTable;

/// Refuses `plan` (a query whose rows go to a client, after [`super::display::for_client`])
/// where a value with a scale of its own reaches the result, or text, arrays, records or
/// JSON made of one, without the places it was written with.
pub fn check(plan: &LogicalPlan) -> Result<()> {
    let carried = carried(plan, Sources::Stored)?;
    match carried.iter().position(|&c| c) {
        Some(i) => Err(refusal(&output_named(plan, i))),
        None => Ok(()),
    }
}

/// What computes output column `i` of `plan`, for a message.
fn output_named(plan: &LogicalPlan, i: usize) -> String {
    match plan {
        LogicalPlan::Projection(p) => match p.expr[i].clone().unalias_nested().data {
            Expr::Column(c) => match p.input.schema().maybe_index_of_column(&c) {
                Some(below) => output_named(&p.input, below),
                None => described(&p.expr[i]),
            },
            _ => described(&p.expr[i]),
        },
        LogicalPlan::Aggregate(a) => {
            let first = a.schema.fields().len() - a.aggr_expr.len();
            match i.checked_sub(first) {
                Some(j) => described(&a.aggr_expr[j]),
                None => format!("column \"{}\"", a.schema.field(i).name()),
            }
        }
        LogicalPlan::Window(w) => match i.checked_sub(w.input.schema().fields().len()) {
            Some(j) => described(&w.window_expr[j]),
            None => output_named(&w.input, i),
        },
        LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_) => output_named(plan.inputs()[0], i),
        other => format!("column \"{}\"", other.schema().field(i).name()),
    }
}

/// What an expression is, for a message: the function it calls, where it calls one.
fn described(expr: &Expr) -> String {
    match expr {
        Expr::Alias(a) => described(&a.expr),
        Expr::ScalarFunction(f) => match f.func.name() {
            "make_array" => "ARRAY[…]".to_owned(),
            "struct" | "named_struct" => "ROW(…)".to_owned(),
            "pg_jsonb_element" => "jsonb_agg".to_owned(),
            name => format!("{name}()"),
        },
        Expr::AggregateFunction(f) => format!("{}()", f.func.name()),
        Expr::WindowFunction(w) => format!("{}()", w.fun.name()),
        Expr::Cast(Cast { field, .. }) | Expr::TryCast(TryCast { field, .. }) => {
            format!(
                "a cast to {}",
                super::types::of_arrow(field.data_type()).data_type
            )
        }
        Expr::ScalarSubquery(_) => "a scalar subquery".to_owned(),
        Expr::Column(c) => format!("column \"{}\"", c.name),
        other => format!("\"{}\"", other.schema_name()),
    }
}

fn refusal(what: &str) -> datafusion::error::DataFusionError {
    SqlStateError::new(
        "0A000",
        format!(
            "{what} of a numeric declared without a scale is not supported: Henge would not \
             show each value's own places (cast it to numeric(p,s) or double precision first)"
        ),
    )
    .into()
}

/// Which values [`carried`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// Stored unconstrained numerics, and text or doubles converted to `numeric`.
    Stored,
    /// The numerics whose places PostgreSQL chooses value by value where Henge computes
    /// them at a fixed scale: quotients, `avg`, the variances and standard deviations,
    /// roots, powers, logarithms and exponentials.
    Computed,
}

/// For each output column of `plan`, whether it carries values with scales of their own
/// (stored unconstrained numerics'); `None` where it would be refused.
pub(crate) fn carried_columns(plan: &LogicalPlan) -> Option<Vec<bool>> {
    carried(plan, Sources::Stored).ok()
}

/// Refuses an INSERT's rows (`plan`, the statement's input) where a value with a scale
/// of its own is written as text, an array, a record or JSON (see [`check`]).
pub fn check_written(plan: &LogicalPlan) -> Result<()> {
    carried(plan, Sources::Stored).map(|_| ())
}

/// Whether output column `i` of an INSERT's rows (`plan`) is a numeric made of values
/// with scales of their own (`stored`: stored unconstrained numerics, text or doubles
/// converted to one) or whose places PostgreSQL would choose value by value (`computed`:
/// see [`Sources::Computed`]).
pub fn has_own_places(plan: &LogicalPlan, i: usize) -> Result<(bool, bool)> {
    let of = |sources| -> Result<bool> {
        // The value under the statement's cast to the column's type.
        if let LogicalPlan::Projection(p) = plan {
            let value = match p.expr[i].clone().unalias_nested().data {
                Expr::Cast(Cast { expr, .. }) => *expr,
                other => other,
            };
            let input = carried(&p.input, sources)?;
            return of_expr(&value, p.input.schema(), &input, sources);
        }
        Ok(carried(plan, sources)?.get(i).copied().unwrap_or(false))
    };
    Ok((of(Sources::Stored)?, of(Sources::Computed)?))
}

/// The refusal of writing such a value (`what`) to a numeric declared without a scale.
pub fn unknown_places(column: &str) -> datafusion::error::DataFusionError {
    SqlStateError::new(
        "0A000",
        format!(
            "the places of the value for column \"{column}\" are chosen value by value, \
             which Henge does not follow into a numeric declared without a scale (cast the \
             value to numeric(p,s) first)"
        ),
    )
    .into()
}

/// For each output column of `plan`, whether it carries values whose scales are their
/// own (of `sources`), without them (as decimals: any other type carrying them is refused
/// here).
fn carried(plan: &LogicalPlan, sources: Sources) -> Result<Vec<bool>> {
    let inputs = plan
        .inputs()
        .into_iter()
        .map(|input| carried(input, sources))
        .collect::<Result<Vec<_>>>()?;
    let one = |i: usize| inputs.get(i).cloned().unwrap_or_default();
    Ok(match plan {
        LogicalPlan::TableScan(scan) => {
            let stored = match sources {
                Sources::Stored => stored_unconstrained(scan),
                Sources::Computed => Vec::new(),
            };
            scan.projected_schema
                .fields()
                .iter()
                .map(|f| stored.iter().any(|name| name == f.name()))
                .collect()
        }
        LogicalPlan::Projection(p) => {
            let input = p.input.schema();
            p.expr
                .iter()
                .map(|e| of_expr(e, input, &inputs[0], sources))
                .collect::<Result<_>>()?
        }
        LogicalPlan::Filter(f) => {
            of_expr(&f.predicate, f.input.schema(), &inputs[0], sources)?;
            one(0)
        }
        LogicalPlan::Sort(s) => {
            for e in &s.expr {
                of_expr(&e.expr, s.input.schema(), &inputs[0], sources)?;
            }
            one(0)
        }
        LogicalPlan::Aggregate(a) => {
            let input = a.input.schema();
            let groups = grouping_set_to_exprlist(&a.group_expr)?;
            let fields = a.schema.fields().len();
            // The grouping sets' internal id, if any, after the groups.
            let internal = fields - groups.len() - a.aggr_expr.len();
            let mut out = Vec::with_capacity(fields);
            for e in groups {
                out.push(of_expr(e, input, &inputs[0], sources)?);
            }
            out.extend(std::iter::repeat_n(false, internal));
            for e in &a.aggr_expr {
                out.push(of_expr(e, input, &inputs[0], sources)?);
            }
            out
        }
        LogicalPlan::Window(w) => {
            let mut out = one(0);
            for e in &w.window_expr {
                out.push(of_expr(e, w.input.schema(), &inputs[0], sources)?);
            }
            out
        }
        LogicalPlan::Join(j) => {
            let both = j.left.schema().join(j.right.schema())?;
            let all: Vec<bool> = inputs[0].iter().chain(&inputs[1]).copied().collect();
            for (l, r) in &j.on {
                of_expr(l, j.left.schema(), &inputs[0], sources)?;
                of_expr(r, j.right.schema(), &inputs[1], sources)?;
            }
            if let Some(filter) = &j.filter {
                of_expr(filter, &both, &all, sources)?;
            }
            match j.join_type {
                JoinType::LeftSemi | JoinType::LeftAnti => one(0),
                JoinType::RightSemi | JoinType::RightAnti => one(1),
                JoinType::LeftMark => {
                    let mut out = one(0);
                    out.push(false);
                    out
                }
                _ => all,
            }
        }
        LogicalPlan::Union(_) => {
            let width = plan.schema().fields().len();
            (0..width)
                .map(|i| inputs.iter().any(|c| c.get(i).copied().unwrap_or(false)))
                .collect()
        }
        LogicalPlan::Values(v) => {
            let empty = DFSchema::empty();
            let mut out = vec![false; plan.schema().fields().len()];
            for row in &v.values {
                for (i, e) in row.iter().enumerate() {
                    out[i] |= of_expr(e, &empty, &[], sources)?;
                }
            }
            out
        }
        LogicalPlan::Limit(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Subquery(_)
        | LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(_)) => one(0),
        // Any other node: its columns by name, as its inputs have them.
        other => {
            let names: Vec<&String> = other
                .inputs()
                .iter()
                .zip(&inputs)
                .flat_map(|(input, carried)| {
                    input
                        .schema()
                        .fields()
                        .iter()
                        .zip(carried)
                        .filter(|(_, &c)| c)
                        .map(|(f, _)| f.name())
                        .collect::<Vec<_>>()
                })
                .collect();
            other
                .schema()
                .fields()
                .iter()
                .map(|f| names.contains(&f.name()))
                .collect()
        }
    })
}

/// The columns of a scan's table declared `numeric` without a scale.
fn stored_unconstrained(scan: &datafusion::logical_expr::TableScan) -> Vec<String> {
    let Ok(provider) = source_as_provider(&scan.source) else {
        return Vec::new();
    };
    let Some(table) = provider.downcast_ref::<HengeTable>() else {
        return Vec::new();
    };
    table
        .def()
        .columns
        .iter()
        .filter(|c| c.ty == ColumnType::NumericUnconstrained)
        .map(|c| c.name.clone())
        .collect()
}

/// Whether `expr` (over `schema`, whose columns carry such values as `carried` says)
/// carries values with scales of their own as a decimal; an error where it carries them as
/// anything else, or asks for their scale.
fn of_expr(expr: &Expr, schema: &DFSchema, carried: &[bool], sources: Sources) -> Result<bool> {
    if sources == Sources::Computed && chooses_places(expr) {
        return Ok(matches!(expr.get_type(schema)?, DataType::Decimal128(..)));
    }
    match expr {
        Expr::Column(c) => Ok(schema
            .maybe_index_of_column(c)
            .is_some_and(|i| carried.get(i).copied().unwrap_or(false))),
        Expr::Alias(a) => of_expr(&a.expr, schema, carried, sources),
        Expr::ScalarFunction(f) if is_shown_numeric(f) => Ok(false),
        Expr::ScalarFunction(f) if super::display::is_written_numeric(f) => {
            Ok(sources == Sources::Stored)
        }
        Expr::ScalarSubquery(s) => {
            let inner = self::carried(&s.subquery, sources)?;
            Ok(inner.first().copied().unwrap_or(false))
        }
        Expr::Exists(e) => {
            self::carried(&e.subquery.subquery, sources)?;
            Ok(false)
        }
        Expr::InSubquery(i) => {
            of_expr(&i.expr, schema, carried, sources)?;
            self::carried(&i.subquery.subquery, sources)?;
            Ok(false)
        }
        _ => {
            let mut any = false;
            let mut failed = None;
            expr.apply_children(|child| {
                match of_expr(child, schema, carried, sources) {
                    Ok(c) => any |= c,
                    Err(e) => {
                        failed = Some(e);
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            if !any {
                return Ok(false);
            }
            let data_type = expr.get_type(schema)?;
            if let Expr::ScalarFunction(ScalarFunction { func, .. }) = expr {
                match func.name() {
                    // Its answer is the places each value was written with.
                    "scale" => return Err(refusal(&described(expr))),
                    // Places fixed by the call.
                    "round" | "trunc" | "ceil" | "ceiling" | "floor" | "sign" | "div" => {
                        return Ok(false)
                    }
                    // Their text shows the type, or the places the template asks for.
                    "pg_typeof" | "to_char" | "pg_to_char" => return Ok(false),
                    _ => {}
                }
            }
            match &data_type {
                DataType::Decimal128(_, to) => match expr {
                    // A cast to a numeric of another scale shows that scale.
                    Expr::Cast(Cast { expr: from, .. })
                    | Expr::TryCast(TryCast { expr: from, .. }) => match from.get_type(schema)? {
                        DataType::Decimal128(_, s) if s != *to => Ok(false),
                        _ => Ok(true),
                    },
                    _ => Ok(true),
                },
                t if scale_free(t) => Ok(false),
                // Shown from the values' own scales.
                t if is_display(t) && (is_scaled_aggregate(expr) || is_scaled_division(expr)) => {
                    Ok(false)
                }
                _ => Err(refusal(&described(expr))),
            }
        }
    }
}

/// Whether `expr` computes a numeric whose places PostgreSQL chooses value by value (see
/// [`Sources::Computed`]).
fn chooses_places(expr: &Expr) -> bool {
    use super::division::NumericDiv;
    use super::exact_aggregates::Exact;
    match expr {
        Expr::ScalarFunction(f) => {
            f.func.inner().downcast_ref::<NumericDiv>().is_some()
                || matches!(
                    f.func.name(),
                    "sqrt" | "exp" | "ln" | "log" | "log10" | "power" | "pow" | "cbrt"
                )
        }
        Expr::AggregateFunction(f) => f.func.inner().downcast_ref::<Exact>().is_some(),
        Expr::WindowFunction(w) => matches!(&w.fun,
            datafusion::logical_expr::WindowFunctionDefinition::AggregateUDF(f)
                if f.inner().downcast_ref::<Exact>().is_some()),
        _ => false,
    }
}

/// Whether a value of this type shows nothing of the scales of the numerics it was made
/// from.
fn scale_free(data_type: &DataType) -> bool {
    data_type.is_integer()
        || data_type.is_floating()
        || data_type.is_temporal()
        || matches!(
            data_type,
            DataType::Boolean | DataType::Null | DataType::Interval(_) | DataType::Duration(_)
        )
}
