//! One type for values of `double precision` (or `real`) and `numeric` that meet in one
//! result, as PostgreSQL resolves it: the floating-point one.
//!
//! Where a double and a decimal share a result — `coalesce`, `nullif`, `greatest`,
//! `least`, the branches of `CASE`, the inputs of a UNION — DataFusion makes both a
//! decimal of 15 places, which turns a double's `1e-20` into `0` and refuses `1e30`.
//! PostgreSQL makes both doubles; so does this, before DataFusion's type coercion runs.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Case, ScalarFunction};
use datafusion::logical_expr::{
    cast, col, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Union,
};

/// Functions whose result is one of their arguments.
const CHOOSING: [&str; 4] = ["coalesce", "nullif", "greatest", "least"];

fn is_decimal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

/// The floating-point type decimals among these types become, if they meet one: `real`
/// beside only reals, else `double precision`.
fn mixed<'a>(types: impl IntoIterator<Item = &'a DataType>) -> Option<DataType> {
    let (mut float, mut double, mut decimal) = (false, false, false);
    for t in types {
        float |= t.is_floating();
        double |= matches!(t, DataType::Float64);
        decimal |= is_decimal(t);
    }
    match (float && decimal, double) {
        (false, _) => None,
        (true, true) => Some(DataType::Float64),
        (true, false) => Some(DataType::Float32),
    }
}

fn as_float(expr: Expr, schema: &DFSchema, to: &DataType) -> Expr {
    match expr.get_type(schema) {
        Ok(t) if is_decimal(&t) => cast(expr, to.clone()),
        _ => expr,
    }
}

/// The expression with its decimal operands made floating-point where they meet such
/// values in its result; `None` where nothing changes.
pub fn expr(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    let types = |es: &mut dyn Iterator<Item = &Expr>| -> Vec<DataType> {
        es.filter_map(|x| x.get_type(schema).ok()).collect()
    };
    match e {
        Expr::ScalarFunction(f) if CHOOSING.contains(&f.name()) => {
            let to = mixed(&types(&mut f.args.iter()))?;
            let args = f
                .args
                .iter()
                .map(|a| as_float(a.clone(), schema, &to))
                .collect();
            Some(Expr::ScalarFunction(ScalarFunction::new_udf(
                f.func.clone(),
                args,
            )))
        }
        Expr::Case(case) => {
            let results = types(
                &mut case
                    .when_then_expr
                    .iter()
                    .map(|(_, then)| then.as_ref())
                    .chain(case.else_expr.as_deref()),
            );
            let to = mixed(&results)?;
            Some(Expr::Case(Case {
                expr: case.expr.clone(),
                when_then_expr: case
                    .when_then_expr
                    .iter()
                    .map(|(when, then)| {
                        (when.clone(), Box::new(as_float(*then.clone(), schema, &to)))
                    })
                    .collect(),
                else_expr: case
                    .else_expr
                    .as_ref()
                    .map(|e| Box::new(as_float(*e.clone(), schema, &to))),
            }))
        }
        _ => None,
    }
}

/// A UNION whose inputs give a column as a floating-point value in one and a decimal in
/// another, with the decimals made floating-point; other plans as they are.
pub fn union(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Union(Union { inputs, schema }) = plan else {
        return Ok(plan);
    };
    let width = schema.fields().len();
    let floats: Vec<Option<DataType>> = (0..width)
        .map(|i| {
            mixed(
                inputs
                    .iter()
                    .filter_map(|p| p.schema().fields().get(i).map(|f| f.data_type())),
            )
        })
        .collect();
    if floats.iter().all(Option::is_none) {
        return Ok(LogicalPlan::Union(Union { inputs, schema }));
    }
    let inputs = inputs
        .into_iter()
        .map(|input| {
            let needs = input
                .schema()
                .fields()
                .iter()
                .zip(&floats)
                .any(|(f, to)| to.is_some() && is_decimal(f.data_type()));
            if !needs {
                return Ok(input);
            }
            let columns: Vec<Expr> = input
                .schema()
                .iter()
                .zip(&floats)
                .map(|((qualifier, field), to)| {
                    let column = col(datafusion::common::Column::new(
                        qualifier.cloned(),
                        field.name(),
                    ));
                    match to {
                        Some(to) if is_decimal(field.data_type()) => {
                            cast(column, to.clone()).alias(field.name())
                        }
                        _ => column,
                    }
                })
                .collect();
            Ok(Arc::new(
                LogicalPlanBuilder::from(Arc::unwrap_or_clone(input))
                    .project(columns)?
                    .build()?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LogicalPlan::Union(Union::try_new_with_loose_types(inputs)?))
}
