//! One type for values of `double precision` (or `real`) and `numeric` that meet in one
//! result, as PostgreSQL resolves it: the floating-point one.
//!
//! Where a double and a decimal share a result — `coalesce`, `greatest`, `least`, `ARRAY[…]`, the
//! branches of `CASE`, the inputs of a UNION — or are compared (`=`, `<`, …, `IS
//! DISTINCT FROM`, `IN`, `BETWEEN`, `nullif`, `CASE x WHEN`), DataFusion makes both a
//! decimal of 15 places, which turns a double's `1e-20` into `0` and refuses `1e30`.
//! PostgreSQL makes both doubles (comparing a real and a numeric too); so does this,
//! before DataFusion's type coercion runs.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Between, BinaryExpr, Case, InList, ScalarFunction};
use datafusion::logical_expr::{
    cast, col, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Operator, Union,
};

/// Functions whose result is one of their arguments, or holds them all (`ARRAY[…]`).
const CHOOSING: [&str; 4] = ["coalesce", "greatest", "least", "make_array"];

fn is_decimal(t: &DataType) -> bool {
    t.is_decimal()
}

/// The floating-point type that decimals among these types become beside floating-point
/// values (see [`mixed`]), for callers outside this module.
pub fn floating(types: &[DataType]) -> Option<DataType> {
    mixed(types)
}

/// The type in which floating-point values and decimals among these types are compared:
/// `double precision`.
fn compared<'a>(types: impl IntoIterator<Item = &'a DataType>) -> Option<DataType> {
    mixed(types).map(|_| DataType::Float64)
}

fn comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// An equijoin (INTERSECT and EXCEPT are ones) whose keys pair a floating-point value with
/// a decimal compares both as doubles; other plans as they are.
pub fn join(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Join(mut join) = plan else {
        return Ok(plan);
    };
    let (left, right) = (join.left.schema().clone(), join.right.schema().clone());
    let mut changed = false;
    for (l, r) in &mut join.on {
        let types = [l.get_type(&left)?, r.get_type(&right)?];
        if let Some(to) = compared(&types) {
            for (key, t) in [(&mut *l, &types[0]), (&mut *r, &types[1])] {
                if t != &to {
                    *key = cast(key.clone(), to.clone());
                }
            }
            changed = true;
        }
    }
    match changed {
        true => LogicalPlan::Join(join).recompute_schema(),
        false => Ok(LogicalPlan::Join(join)),
    }
}

/// The operands as doubles where they are decimals or reals; each unchanged otherwise.
fn all_as_double(operands: &[&Expr], schema: &DFSchema) -> Option<Vec<Expr>> {
    let types: Vec<DataType> = operands
        .iter()
        .filter_map(|x| x.get_type(schema).ok())
        .collect();
    let to = compared(&types)?;
    Some(
        operands
            .iter()
            .map(|e| match e.get_type(schema) {
                Ok(t) if is_decimal(&t) || t == DataType::Float32 => cast((*e).clone(), to.clone()),
                _ => (*e).clone(),
            })
            .collect(),
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

/// Text constants and parameters that meet a uuid — compared with one (`IS DISTINCT
/// FROM`, `CASE x WHEN`, `nullif`) or beside one in a result (`coalesce`, `greatest`,
/// `least`, CASE's branches) — read as uuids, as PostgreSQL reads an unknown literal there
/// (`'A0EE…'` is the uuid `a0ee…`); the comparison operators, IN and BETWEEN do this where
/// they are planned. `None` where nothing changes.
fn uuid_text(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    let uuid = |x: &Expr| super::uuid::expr_is_uuid(x, schema);
    let read = |x: &Expr| match super::uuid::untyped(x) {
        true => super::uuid::input(x.clone()),
        false => x.clone(),
    };
    let any_untyped = |xs: &[&Expr]| xs.iter().any(|x| super::uuid::untyped(x));
    match e {
        Expr::BinaryExpr(b)
            if matches!(b.op, Operator::IsDistinctFrom | Operator::IsNotDistinctFrom)
                && (uuid(&b.left) || uuid(&b.right))
                && any_untyped(&[&b.left, &b.right]) =>
        {
            Some(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(read(&b.left)),
                b.op,
                Box::new(read(&b.right)),
            )))
        }
        Expr::ScalarFunction(f)
            if matches!(f.name(), "coalesce" | "nullif" | "greatest" | "least")
                && f.args.iter().any(uuid)
                && f.args.iter().any(super::uuid::untyped) =>
        {
            Some(Expr::ScalarFunction(ScalarFunction::new_udf(
                f.func.clone(),
                f.args.iter().map(read).collect(),
            )))
        }
        Expr::Case(case) => {
            let compared: Vec<&Expr> = case
                .expr
                .iter()
                .map(|e| e.as_ref())
                .chain(case.when_then_expr.iter().map(|(w, _)| w.as_ref()))
                .collect();
            let results: Vec<&Expr> = case
                .when_then_expr
                .iter()
                .map(|(_, t)| t.as_ref())
                .chain(case.else_expr.as_deref())
                .collect();
            let reads = |xs: &[&Expr]| xs.iter().any(|x| uuid(x)) && any_untyped(xs);
            let (read_compared, read_results) =
                (case.expr.is_some() && reads(&compared), reads(&results));
            if !read_compared && !read_results {
                return None;
            }
            let maybe = |x: &Expr, yes: bool| if yes { read(x) } else { x.clone() };
            Some(Expr::Case(Case {
                expr: case
                    .expr
                    .as_ref()
                    .map(|x| Box::new(maybe(x, read_compared))),
                when_then_expr: case
                    .when_then_expr
                    .iter()
                    .map(|(w, t)| {
                        (
                            Box::new(maybe(w, read_compared)),
                            Box::new(maybe(t, read_results)),
                        )
                    })
                    .collect(),
                else_expr: case
                    .else_expr
                    .as_ref()
                    .map(|x| Box::new(maybe(x, read_results))),
            }))
        }
        _ => None,
    }
}

/// The expression with its decimal operands made floating-point where they meet such
/// values in its result; `None` where nothing changes.
pub fn expr(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    if let Some(read) = uuid_text(e, schema) {
        return Some(read);
    }
    let types = |es: &mut dyn Iterator<Item = &Expr>| -> Vec<DataType> {
        es.filter_map(|x| x.get_type(schema).ok()).collect()
    };
    if let Some(widened) = real_widened(e, schema) {
        return Some(widened);
    }
    if let Some(read) = temporal_text(e, schema) {
        return Some(read);
    }
    match e {
        Expr::BinaryExpr(b) if comparison(b.op) => {
            let [left, right]: [Expr; 2] = all_as_double(&[&b.left, &b.right], schema)?
                .try_into()
                .ok()?;
            Some(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(left),
                b.op,
                Box::new(right),
            )))
        }
        Expr::Between(between) => {
            let operands = [&*between.expr, &*between.low, &*between.high];
            let [expr, low, high]: [Expr; 3] = all_as_double(&operands, schema)?.try_into().ok()?;
            Some(Expr::Between(Between::new(
                Box::new(expr),
                between.negated,
                Box::new(low),
                Box::new(high),
            )))
        }
        Expr::InList(in_list) => {
            let operands: Vec<&Expr> = std::iter::once(&*in_list.expr)
                .chain(in_list.list.iter())
                .collect();
            let mut all = all_as_double(&operands, schema)?;
            let expr = all.remove(0);
            Some(Expr::InList(InList::new(
                Box::new(expr),
                all,
                in_list.negated,
            )))
        }
        Expr::ScalarFunction(f) if f.name() == "nullif" => {
            let operands: Vec<&Expr> = f.args.iter().collect();
            Some(Expr::ScalarFunction(ScalarFunction::new_udf(
                f.func.clone(),
                all_as_double(&operands, schema)?,
            )))
        }
        Expr::Case(case) if case.expr.is_some() => {
            // `CASE x WHEN v …` compares x with each v; the results are unified apart.
            let operand = case.expr.as_deref()?;
            let operands: Vec<&Expr> = std::iter::once(operand)
                .chain(case.when_then_expr.iter().map(|(when, _)| when.as_ref()))
                .collect();
            let mut all = all_as_double(&operands, schema)?;
            let operand = all.remove(0);
            Some(Expr::Case(Case {
                expr: Some(Box::new(operand)),
                when_then_expr: all
                    .into_iter()
                    .zip(&case.when_then_expr)
                    .map(|(when, (_, then))| (Box::new(when), then.clone()))
                    .collect(),
                else_expr: case.else_expr.clone(),
            }))
        }
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

/// A `real` operand of arithmetic or a comparison beside an integer or a numeric: both
/// operands as doubles, as PostgreSQL has operators between `real` and `double precision`
/// and reads the other operand as a double (`0.1::real + 1` is `1.1000000014901161`, where
/// DataFusion answers a `real` `1.1`).
fn real_widened(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::BinaryExpr(b) = e else {
        return None;
    };
    let arithmetic = matches!(
        b.op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
    );
    if !arithmetic && !comparison(b.op) {
        return None;
    }
    let (l, r) = (
        b.left.get_type(schema).ok()?,
        b.right.get_type(schema).ok()?,
    );
    let exact = |t: &DataType| t.is_integer() || is_decimal(t);
    let real_beside_exact = |a: &DataType, o: &DataType| *a == DataType::Float32 && exact(o);
    if !(real_beside_exact(&l, &r) || real_beside_exact(&r, &l)) {
        return None;
    }
    Some(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(cast(*b.left.clone(), DataType::Float64)),
        b.op,
        Box::new(cast(*b.right.clone(), DataType::Float64)),
    )))
}

/// String constants compared with a timestamp or a date (`=`, `<`, …, BETWEEN, IN) read
/// as that type, as PostgreSQL reads an unknown literal; DataFusion's coercion compared
/// both in nanoseconds, which cannot hold a year before 1677 or after 2262.
fn temporal_text(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    let text = |x: &Expr| {
        matches!(
            x,
            Expr::Literal(
                ScalarValue::Utf8(Some(_)) | ScalarValue::Utf8View(Some(_)),
                _
            )
        )
    };
    let operands: Vec<&Expr> = match e {
        Expr::BinaryExpr(b) if comparison(b.op) => vec![&b.left, &b.right],
        Expr::Between(b) => vec![&b.expr, &b.low, &b.high],
        Expr::InList(l) => std::iter::once(&*l.expr).chain(&l.list).collect(),
        _ => return None,
    };
    if !operands.iter().any(|x| text(x)) {
        return None;
    }
    let to = operands
        .iter()
        .filter(|x| !text(x))
        .find_map(|x| match x.get_type(schema) {
            Ok(t @ (DataType::Timestamp(_, _) | DataType::Date32)) => Some(t),
            _ => None,
        })?;
    let read = |x: &Expr| {
        if text(x) {
            cast(x.clone(), to.clone())
        } else {
            x.clone()
        }
    };
    Some(match e {
        Expr::BinaryExpr(b) => Expr::BinaryExpr(BinaryExpr::new(
            Box::new(read(&b.left)),
            b.op,
            Box::new(read(&b.right)),
        )),
        Expr::Between(b) => Expr::Between(Between::new(
            Box::new(read(&b.expr)),
            b.negated,
            Box::new(read(&b.low)),
            Box::new(read(&b.high)),
        )),
        Expr::InList(l) => Expr::InList(InList::new(
            Box::new(read(&l.expr)),
            l.list.iter().map(read).collect(),
            l.negated,
        )),
        _ => unreachable!("matched above"),
    })
}

/// How a UNION input's column is made to agree with the others.
#[derive(Clone, Copy)]
enum Agree {
    /// A decimal beside floating-point values: this floating-point type.
    Float(&'static DataType),
    /// Text beside a uuid or JSON value: read by that type's input function.
    Read(fn(Expr) -> Expr),
}

static FLOAT32: DataType = DataType::Float32;
static FLOAT64: DataType = DataType::Float64;

/// How the inputs' columns at one position agree, if they need to.
fn agreement(fields: &[&datafusion::arrow::datatypes::Field]) -> Option<Agree> {
    if let Some(float) = mixed(fields.iter().map(|f| f.data_type())) {
        return Some(Agree::Float(match float {
            DataType::Float32 => &FLOAT32,
            _ => &FLOAT64,
        }));
    }
    fields.iter().find_map(|f| {
        if super::uuid::is_uuid(f) {
            Some(Agree::Read(super::uuid::input))
        } else {
            super::json::json_type(f).map(|t| Agree::Read(super::json::reader(t)))
        }
    })
}

/// The column as it agrees with the others, or `None` where it already does.
fn agreed(field: &datafusion::arrow::datatypes::Field, column: Expr, agree: Agree) -> Option<Expr> {
    let text = matches!(
        field.data_type(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    );
    match agree {
        Agree::Float(to) if is_decimal(field.data_type()) => Some(cast(column, to.clone())),
        Agree::Read(read) if text && super::types::is_text(field) => Some(read(column)),
        _ => None,
    }
}

/// A UNION whose inputs give a column as a floating-point value in one and a decimal in
/// another, with the decimals made floating-point, and whose text meets a uuid or JSON
/// value, with the text read as one (`SELECT id … UNION SELECT 'A0EE…'` is a uuid, which
/// sorts and de-duplicates as one); other plans as they are.
pub fn union(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Union(Union { inputs, schema }) = plan else {
        return Ok(plan);
    };
    let width = schema.fields().len();
    let agreements: Vec<Option<Agree>> = (0..width)
        .map(|i| {
            let fields: Vec<_> = inputs
                .iter()
                .filter_map(|p| p.schema().fields().get(i).map(|f| f.as_ref()))
                .collect();
            agreement(&fields)
        })
        .collect();
    if agreements.iter().all(Option::is_none) {
        return Ok(LogicalPlan::Union(Union { inputs, schema }));
    }
    let inputs = inputs
        .into_iter()
        .map(|input| {
            let columns: Vec<(Expr, bool)> = input
                .schema()
                .iter()
                .zip(&agreements)
                .map(|((qualifier, field), agree)| {
                    let column = col(datafusion::common::Column::new(
                        qualifier.cloned(),
                        field.name(),
                    ));
                    match agree.and_then(|a| agreed(field, column.clone(), a)) {
                        Some(expr) => (expr.alias(field.name()), true),
                        None => (column, false),
                    }
                })
                .collect();
            if !columns.iter().any(|(_, changed)| *changed) {
                return Ok(input);
            }
            Ok(Arc::new(
                LogicalPlanBuilder::from(Arc::unwrap_or_clone(input))
                    .project(columns.into_iter().map(|(e, _)| e))?
                    .build()?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LogicalPlan::Union(Union::try_new_with_loose_types(inputs)?))
}
