//! PostgreSQL's `json` and `jsonb` types, their operators and functions.
//!
//! Values of both types are UTF-8 text (see [`henge_ingest::json`]); what makes them JSON
//! is the Arrow extension type on their field (`arrow.json`, `henge.jsonb`), which
//! DataFusion carries through plans. So the wire sends them with their own OIDs,
//! `pg_typeof` names them, and the operators below apply only to them:
//!
//! - casts to `json`/`jsonb` ([`super::types::PgTypes`] plans the type names) become the types' input
//!   functions, which check the text and put `jsonb` in its normal form ([`typed`]);
//! - `->`, `->>`, `#>`, `#>>`, `@>`, `<@`, `?`, `?|`, `?&`, `||`, `-`, `#-` and the
//!   comparisons of `jsonb` are planned by [`PgJsonOperators`];
//! - the functions of PostgreSQL's chapter 9.16 are scalar functions here, the
//!   aggregates (`json_agg`, `json_object_agg` and their `jsonb` twins) are `array_agg` of
//!   each value's JSON text finished by a function ([`rewrite`]), and the set-returning
//!   ones are table functions in FROM and lists unnested in a select list.
//!
//! Where PostgreSQL orders `jsonb` by rules of its own, Henge refuses to order it (0A000)
//! rather than order it as text.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::catalog::{MemTable, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::{Between, Cast, InList, ScalarFunction, TryCast};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Distinct, Expr, ExprSchemable, LogicalPlan, Operator, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    self as ast, BinaryOperator, FunctionArguments, VisitMut, VisitorMut,
};
use henge_ingest::json::{self as value, Kind, Node};
use henge_storage::schema::{EXTENSION_NAME_KEY, JSONB_EXTENSION, JSON_EXTENSION};

use super::rewrite::{call, function_name};
use super::SqlStateError;

/// Which of PostgreSQL's two JSON types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    Json,
    Jsonb,
}

impl JsonType {
    fn name(self) -> &'static str {
        match self {
            JsonType::Json => "json",
            JsonType::Jsonb => "jsonb",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            JsonType::Json => JSON_EXTENSION,
            JsonType::Jsonb => JSONB_EXTENSION,
        }
    }

    /// A field holding values of this type.
    pub fn field(self, name: &str) -> Field {
        Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from([(
            EXTENSION_NAME_KEY.to_owned(),
            self.extension().to_owned(),
        )]))
    }
}

/// The JSON type of a field's values, if they are JSON.
pub fn json_type(field: &Field) -> Option<JsonType> {
    match super::types::extension(field)? {
        JSON_EXTENSION => Some(JsonType::Json),
        JSONB_EXTENSION => Some(JsonType::Jsonb),
        _ => None,
    }
}

fn expr_json_type(expr: &Expr, schema: &DFSchema) -> Option<JsonType> {
    expr.to_field(schema).ok().and_then(|(_, f)| json_type(&f))
}

fn err(code: &'static str, message: impl Into<String>) -> DataFusionError {
    SqlStateError::new(code, message).into()
}

fn value_error(e: henge_ingest::ValueError) -> DataFusionError {
    DataFusionError::External(Box::new(henge_ingest::Error::from(e)))
}

fn unordered(t: JsonType) -> DataFusionError {
    match t {
        JsonType::Json => err(
            "42883",
            "could not identify an ordering operator for type json",
        ),
        JsonType::Jsonb => err("0A000", "ordering by a jsonb value is not supported"),
    }
}

/// Refuses to compare JSON values where Henge would compare their text: grouping by one,
/// DISTINCT, set operations and joins on one (`jsonb` values equal by value may differ in
/// text, `1.0` and `1`; `json` has no equality in PostgreSQL).
fn unequal(t: JsonType) -> DataFusionError {
    match t {
        JsonType::Json => err(
            "42883",
            "could not identify an equality operator for type json",
        ),
        JsonType::Jsonb => err(
            "0A000",
            "grouping, DISTINCT, set operations, joins and IS DISTINCT FROM on jsonb values are not supported (Henge would compare their text); use the value's text (::text)",
        ),
    }
}

/// The input function of a JSON type, as a call on an expression of text.
pub(crate) fn reader(t: JsonType) -> fn(Expr) -> Expr {
    match t {
        JsonType::Json => |e| Op::JsonIn.call(vec![e]),
        JsonType::Jsonb => |e| Op::JsonbIn.call(vec![e]),
    }
}

/// The JSON type of the first of some expressions that has one.
fn first_json<'a>(
    exprs: impl IntoIterator<Item = &'a Expr>,
    schema: &DFSchema,
) -> Option<JsonType> {
    exprs.into_iter().find_map(|e| expr_json_type(e, schema))
}

/// Refuses a plan that would order or compare JSON values by their text: ORDER BY,
/// GROUP BY, DISTINCT (and so UNION, INTERSECT, EXCEPT), join keys.
pub(crate) fn check_plan(plan: &LogicalPlan, schema: &DFSchema) -> Result<()> {
    let (ordered, compared) = match plan {
        LogicalPlan::Sort(sort) => (first_json(sort.expr.iter().map(|k| &k.expr), schema), None),
        LogicalPlan::Aggregate(aggregate) => {
            let keys: Vec<Expr> = aggregate
                .group_expr
                .iter()
                .flat_map(|e| match e {
                    Expr::GroupingSet(set) => set.distinct_expr().into_iter().cloned().collect(),
                    other => vec![other.clone()],
                })
                .collect();
            (None, first_json(&keys, schema))
        }
        LogicalPlan::Distinct(Distinct::All(input)) => (
            None,
            input.schema().fields().iter().find_map(|f| json_type(f)),
        ),
        LogicalPlan::Distinct(Distinct::On(on)) => (None, first_json(&on.on_expr, schema)),
        LogicalPlan::Join(join) => (
            None,
            join.on
                .iter()
                .find_map(|(l, _)| expr_json_type(l, join.left.schema())),
        ),
        _ => (None, None),
    };
    match (ordered, compared) {
        (Some(t), _) => Err(unordered(t)),
        (_, Some(t)) => Err(unequal(t)),
        _ => Ok(()),
    }
}

/// Refuses an expression that would order or compare JSON values by their text: the
/// ORDER BY, PARTITION BY or DISTINCT of an aggregate or window function, `greatest` and
/// `least` of them, `IS [NOT] DISTINCT FROM` and `CASE x WHEN`; `min` and `max` of them
/// do not exist in PostgreSQL (42883).
pub(crate) fn check_expr(expr: &Expr, schema: &DFSchema) -> Result<()> {
    let (ordered, compared) = match expr {
        Expr::AggregateFunction(f) => {
            if let ("min" | "max", Some(t)) = (f.func.name(), first_json(&f.params.args, schema)) {
                return Err(err(
                    "42883",
                    format!("function {}({}) does not exist", f.func.name(), t.name()),
                ));
            }
            let ordered = first_json(f.params.order_by.iter().map(|k| &k.expr), schema);
            let compared = f
                .params
                .distinct
                .then(|| first_json(&f.params.args, schema))
                .flatten();
            (ordered, compared)
        }
        Expr::WindowFunction(w) => (
            first_json(w.params.order_by.iter().map(|k| &k.expr), schema),
            first_json(&w.params.partition_by, schema),
        ),
        Expr::ScalarFunction(f) if matches!(f.name(), "greatest" | "least") => {
            (first_json(&f.args, schema), None)
        }
        Expr::BinaryExpr(b)
            if matches!(b.op, Operator::IsDistinctFrom | Operator::IsNotDistinctFrom) =>
        {
            (None, first_json([&*b.left, &*b.right], schema))
        }
        Expr::Case(case) => (
            None,
            case.expr.as_deref().and_then(|e| expr_json_type(e, schema)),
        ),
        _ => (None, None),
    };
    match (ordered, compared) {
        (Some(t), _) => Err(unordered(t)),
        (_, Some(t)) => Err(unequal(t)),
        _ => Ok(()),
    }
}

/// Functions that return one of their arguments: with a JSON argument their result is
/// JSON too, and their untyped text arguments are read as JSON.
const PASSING: [&str; 2] = ["coalesce", "nullif"];

/// An expression with PostgreSQL's JSON (and uuid) typing: casts to the types become
/// their input functions, `coalesce` and `nullif` over JSON stay JSON, `IN` and `BETWEEN`
/// read untyped text as the compared type.
pub(crate) fn typed(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    if let Expr::ScalarFunction(f) = &expr {
        if PASSING.contains(&f.name()) && expr_json_type(&expr, schema).is_none() {
            let types: Vec<Option<JsonType>> =
                f.args.iter().map(|a| expr_json_type(a, schema)).collect();
            if let Some(t) = types.iter().flatten().next().copied() {
                let input = match t {
                    JsonType::Json => Op::JsonIn,
                    JsonType::Jsonb => Op::JsonbIn,
                };
                let args = f
                    .args
                    .iter()
                    .zip(&types)
                    .map(|(a, at)| match (a, at) {
                        (Expr::Literal(ScalarValue::Utf8(_), _), None) => {
                            input.call(vec![a.clone()])
                        }
                        _ => a.clone(),
                    })
                    .collect();
                let call = Expr::ScalarFunction(ScalarFunction::new_udf(f.func.clone(), args));
                return Ok(Transformed::yes(Op::Typed(t).call(vec![call])));
            }
        }
    }
    if let Expr::InList(_) | Expr::Between(_) = &expr {
        return compared_as_read(expr, schema);
    }
    let (inner, field) = match &expr {
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            (expr.as_ref(), field)
        }
        _ => return Ok(Transformed::no(expr)),
    };
    if let Some(source) = expr_json_type(inner, schema) {
        if let Some(cast) = cast_from_json(inner, source, field)? {
            return Ok(Transformed::yes(cast));
        }
    }
    if super::uuid::is_uuid(field) {
        let from = inner.get_type(schema)?;
        return super::uuid::cast(inner.clone(), &from).map(Transformed::yes);
    }
    let Some(target) = json_type(field) else {
        return Ok(Transformed::no(expr));
    };
    let from = inner.get_type(schema)?;
    if !matches!(
        from,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    ) {
        return Err(err(
            "42846",
            format!(
                "cannot cast type {} to {}",
                super::types::of_arrow(&from).data_type,
                target.name()
            ),
        ));
    }
    let input = match target {
        JsonType::Json => Op::JsonIn,
        JsonType::Jsonb => Op::JsonbIn,
    };
    Ok(Transformed::yes(input.call(vec![inner.clone()])))
}

/// A cast of a JSON value to a type that is not text or JSON, as PostgreSQL allows it:
/// `jsonb` to boolean or a number when the value is one (22023 otherwise; a number to an
/// integer rounds), nothing from `json` (42846). `None` for casts to text and JSON.
fn cast_from_json(inner: &Expr, source: JsonType, field: &Field) -> Result<Option<Expr>> {
    let target = field.data_type();
    if json_type(field).is_some()
        || matches!(
            target,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    {
        return Ok(None);
    }
    let refused = || {
        err(
            "42846",
            format!(
                "cannot cast type {} to {}",
                source.name(),
                super::types::of_arrow(target).data_type
            ),
        )
    };
    if source == JsonType::Json {
        return Err(refused());
    }
    let cast = |e: Expr, t: &DataType| Expr::Cast(Cast::new(Box::new(e), t.clone()));
    Ok(Some(match target {
        DataType::Boolean => cast(Op::Scalar(true).call(vec![inner.clone()]), target),
        t if t.is_integer() => cast(
            // Through numeric, whose cast to an integer rounds.
            cast(
                Op::Scalar(false).call(vec![inner.clone()]),
                &DataType::Decimal128(38, 10),
            ),
            target,
        ),
        t if t.is_numeric() => cast(Op::Scalar(false).call(vec![inner.clone()]), target),
        _ => return Err(refused()),
    }))
}

/// `x IN (…)` and `x BETWEEN a AND b` over `jsonb` or `uuid`: untyped text among the
/// other operands is read as the type (`'{"a":1}'` is `{"a": 1}`, upper-case uuids are
/// the lower-case ones), as the comparison operators read it. `json` has no equality and
/// `jsonb` no order here.
fn compared_as_read(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let value = match &expr {
        Expr::InList(InList { expr, .. }) | Expr::Between(Between { expr, .. }) => expr,
        _ => return Ok(Transformed::no(expr)),
    };
    let read = match (
        expr_json_type(value, schema),
        super::uuid::expr_is_uuid(value, schema),
    ) {
        (Some(JsonType::Json), _) => {
            return Err(err(
                "42883",
                "operator does not exist: json = json (json has no equality; compare jsonb)",
            ))
        }
        (Some(JsonType::Jsonb), _) if matches!(expr, Expr::Between(_)) => {
            return Err(unordered(JsonType::Jsonb))
        }
        (Some(JsonType::Jsonb), _) => {
            let Expr::InList(InList {
                expr,
                list,
                negated,
            }) = expr
            else {
                return Ok(Transformed::no(expr));
            };
            // By value, as `=` compares (see `Op::Equal`).
            let read = |e: Expr| match super::uuid::untyped(&e) {
                true => Op::JsonbIn.call(vec![e]),
                false => e,
            };
            let any = list
                .into_iter()
                .map(|item| Op::Equal.call(vec![(*expr).clone(), read(item)]))
                .reduce(Expr::or)
                .unwrap_or(Expr::Literal(ScalarValue::Boolean(Some(false)), None));
            return Ok(Transformed::yes(match negated {
                true => Expr::Not(Box::new(any)),
                false => any,
            }));
        }
        (None, true) => super::uuid::input,
        (None, false) => return Ok(Transformed::no(expr)),
    };
    let read = |e: Expr| match super::uuid::untyped(&e) {
        true => read(e),
        false => e,
    };
    Ok(Transformed::yes(match expr {
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => Expr::InList(InList::new(
            expr,
            list.into_iter().map(read).collect(),
            negated,
        )),
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => Expr::Between(Between::new(
            expr,
            negated,
            Box::new(read(*low)),
            Box::new(read(*high)),
        )),
        other => other,
    }))
}

/// PostgreSQL's JSON operators, and `jsonb` compared with untyped text.
#[derive(Debug)]
pub struct PgJsonOperators;

impl ExprPlanner for PgJsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let left = expr_json_type(&expr.left, schema);
        let right = expr_json_type(&expr.right, schema);
        if left.is_none() && right.is_none() {
            return Ok(PlannerResult::Original(expr));
        }
        let untyped = super::uuid::untyped;
        let RawBinaryExpr {
            op,
            left: l,
            right: r,
        } = expr;
        let jsonb_operand = |e: Expr, t: Option<JsonType>| match t {
            Some(JsonType::Jsonb) => Ok(e),
            None if untyped(&e) => Ok(Op::JsonbIn.call(vec![e])),
            _ => Err(err(
                "42883",
                "operator does not exist for these json operands",
            )),
        };
        let planned = match (&op, left) {
            (BinaryOperator::Arrow, Some(t)) => Op::Get(t, false, false).call(vec![l, r]),
            (BinaryOperator::LongArrow, Some(t)) => Op::Get(t, false, true).call(vec![l, r]),
            (BinaryOperator::HashArrow, Some(t)) => Op::Get(t, true, false).call(vec![l, r]),
            (BinaryOperator::HashLongArrow, Some(t)) => Op::Get(t, true, true).call(vec![l, r]),
            (BinaryOperator::AtArrow, _) => {
                Op::Contains.call(vec![jsonb_operand(l, left)?, jsonb_operand(r, right)?])
            }
            (BinaryOperator::ArrowAt, _) => {
                Op::Contains.call(vec![jsonb_operand(r, right)?, jsonb_operand(l, left)?])
            }
            (BinaryOperator::AtQuestion | BinaryOperator::AtAt, Some(JsonType::Jsonb)) => {
                super::jsonpath::operator(op == BinaryOperator::AtAt, l, r)
            }
            (BinaryOperator::Question, Some(JsonType::Jsonb)) => Op::Exists(0).call(vec![l, r]),
            (BinaryOperator::QuestionPipe, Some(JsonType::Jsonb)) => Op::Exists(1).call(vec![l, r]),
            (BinaryOperator::QuestionAnd, Some(JsonType::Jsonb)) => Op::Exists(2).call(vec![l, r]),
            (BinaryOperator::StringConcat, _)
                if (left == Some(JsonType::Jsonb) || untyped(&l))
                    && (right == Some(JsonType::Jsonb) || untyped(&r)) =>
            {
                Op::Concat.call(vec![jsonb_operand(l, left)?, jsonb_operand(r, right)?])
            }
            (BinaryOperator::Minus, Some(JsonType::Jsonb)) => Op::Delete.call(vec![l, r]),
            (BinaryOperator::HashMinus, Some(JsonType::Jsonb)) => Op::DeletePath.call(vec![l, r]),
            (
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq,
                _,
            ) => {
                if left == Some(JsonType::Json) || right == Some(JsonType::Json) {
                    return Err(err(
                        "42883",
                        "operator does not exist: json = json (json has no equality; compare jsonb)",
                    ));
                }
                if !matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
                    return Err(unordered(JsonType::Jsonb));
                }
                // By value: numbers compare as numerics (`1.0` equals `1`), which their
                // texts do not.
                let equal = Op::Equal.call(vec![jsonb_operand(l, left)?, jsonb_operand(r, right)?]);
                match op {
                    BinaryOperator::Eq => equal,
                    _ => Expr::Not(Box::new(equal)),
                }
            }
            _ => {
                return Ok(PlannerResult::Original(RawBinaryExpr {
                    op,
                    left: l,
                    right: r,
                }))
            }
        };
        Ok(PlannerResult::Planned(planned))
    }
}

/// The functions behind the operators and casts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    JsonIn,
    JsonbIn,
    /// `->` / `->>` (by key or position) and `#>` / `#>>` (by path): of which type, by
    /// path, as text.
    Get(JsonType, bool, bool),
    Contains,
    /// `=` of two `jsonb` values.
    Equal,
    /// `?` (0), `?|` (1), `?&` (2).
    Exists(u8),
    Concat,
    Delete,
    DeletePath,
    /// Its argument, typed as JSON (the result of `coalesce` over JSON values).
    Typed(JsonType),
    /// The text of a `jsonb` scalar cast to boolean (`true`) or a number (`false`), which
    /// must be of that kind.
    Scalar(bool),
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::JsonIn => "pg_json_in",
            Op::JsonbIn => "pg_jsonb_in",
            Op::Get(JsonType::Json, false, false) => "pg_json_get",
            Op::Get(JsonType::Json, false, true) => "pg_json_get_text",
            Op::Get(JsonType::Json, true, false) => "pg_json_get_path",
            Op::Get(JsonType::Json, true, true) => "pg_json_get_path_text",
            Op::Get(JsonType::Jsonb, false, false) => "pg_jsonb_get",
            Op::Get(JsonType::Jsonb, false, true) => "pg_jsonb_get_text",
            Op::Get(JsonType::Jsonb, true, false) => "pg_jsonb_get_path",
            Op::Get(JsonType::Jsonb, true, true) => "pg_jsonb_get_path_text",
            Op::Contains => "pg_jsonb_contains",
            Op::Equal => "pg_jsonb_eq",
            Op::Exists(0) => "pg_jsonb_exists",
            Op::Exists(1) => "pg_jsonb_exists_any",
            Op::Exists(_) => "pg_jsonb_exists_all",
            Op::Concat => "pg_jsonb_concat",
            Op::Delete => "pg_jsonb_delete",
            Op::DeletePath => "pg_jsonb_delete_path",
            Op::Typed(JsonType::Json) => "pg_as_json",
            Op::Typed(JsonType::Jsonb) => "pg_as_jsonb",
            Op::Scalar(true) => "pg_jsonb_boolean",
            Op::Scalar(false) => "pg_jsonb_number",
        }
    }

    fn returns(self) -> Returns {
        match self {
            Op::JsonIn => Returns::Json(JsonType::Json),
            Op::JsonbIn | Op::Concat | Op::Delete | Op::DeletePath => {
                Returns::Json(JsonType::Jsonb)
            }
            Op::Get(_, _, true) => Returns::Plain(DataType::Utf8),
            Op::Get(t, _, false) => Returns::Json(t),
            Op::Contains | Op::Equal | Op::Exists(_) => Returns::Plain(DataType::Boolean),
            Op::Typed(t) => Returns::Json(t),
            Op::Scalar(_) => Returns::Plain(DataType::Utf8),
        }
    }

    fn udf(self) -> ScalarUDF {
        let arity = match self {
            Op::JsonIn | Op::JsonbIn | Op::Typed(_) | Op::Scalar(_) => 1,
            _ => 2,
        };
        JsonFunction::udf(
            self.name(),
            Signature::any(arity, Volatility::Immutable),
            self.returns(),
            Arc::new(move |call: &Call| self.eval(call)),
        )
    }

    fn call(self, args: Vec<Expr>) -> Expr {
        Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(self.udf()), args))
    }

    fn eval(self, call: &Call) -> Result<ScalarValue> {
        let a = &call.args;
        let Some(text) = call.text(0)? else {
            return Ok(call.null());
        };
        match self {
            Op::JsonIn => {
                value::json_in(text).map_err(value_error)?;
                Ok(utf8(text.to_owned()))
            }
            Op::JsonbIn => Ok(utf8(value::jsonb_in(text).map_err(value_error)?)),
            Op::Typed(_) => Ok(utf8(text.to_owned())),
            Op::Scalar(boolean) => {
                let node = parse(text)?;
                let kind = match &node.kind {
                    Kind::Bool(_) if boolean => return Ok(utf8(text.to_owned())),
                    Kind::Number(_) if !boolean => return Ok(utf8(text.to_owned())),
                    Kind::Null => "null",
                    Kind::Bool(_) => "boolean",
                    Kind::Number(_) => "numeric",
                    Kind::String(_) => "string",
                    Kind::Array(_) => "array",
                    Kind::Object(_) => "object",
                };
                let target = if boolean { "boolean" } else { "numeric" };
                Err(err(
                    "22023",
                    format!("cannot cast jsonb {kind} to type {target}"),
                ))
            }
            Op::Get(t, by_path, as_text) => {
                let node = parse(text)?;
                let found = if by_path {
                    // A NULL step finds nothing.
                    match path(&a[1])?
                        .and_then(|steps| steps.into_iter().collect::<Option<Vec<_>>>())
                    {
                        Some(steps) => node.at_path(&steps),
                        None => return Ok(call.null()),
                    }
                } else {
                    match &a[1] {
                        v if v.is_null() => return Ok(call.null()),
                        v => match (string(v), integer(v)) {
                            (Some(key), _) => node.member(&key),
                            (_, Some(i)) => node.element(i),
                            _ => return Err(operand_error(self, v)),
                        },
                    }
                };
                match found {
                    None => Ok(call.null()),
                    Some(found) if as_text => Ok(ScalarValue::Utf8(as_text_value(found, text, t)?)),
                    Some(found) => Ok(utf8(out_text(found, text, t)?)),
                }
            }
            Op::Contains => {
                let Some(other) = call.text(1)? else {
                    return Ok(call.null());
                };
                Ok(ScalarValue::Boolean(Some(value::contains(
                    &parse(text)?,
                    &parse(other)?,
                    true,
                ))))
            }
            Op::Equal => {
                let Some(other) = call.text(1)? else {
                    return Ok(call.null());
                };
                Ok(ScalarValue::Boolean(Some(value::equal(
                    &parse(text)?,
                    &parse(other)?,
                ))))
            }
            Op::Exists(how) => {
                let node = parse(text)?;
                let keys = match how {
                    0 => match string(&a[1]) {
                        Some(key) => vec![key],
                        None => return Ok(call.null()),
                    },
                    // NULL keys are passed over.
                    _ => match path(&a[1])? {
                        Some(keys) => keys.into_iter().flatten().collect(),
                        None => return Ok(call.null()),
                    },
                };
                let has = |key: &String| match &node.kind {
                    Kind::Object(_) => node.member(key).is_some(),
                    Kind::Array(items) => items
                        .iter()
                        .any(|i| matches!(&i.kind, Kind::String(s) if s == key)),
                    Kind::String(s) => s == key,
                    _ => false,
                };
                Ok(ScalarValue::Boolean(Some(match how {
                    0 | 2 => keys.iter().all(has),
                    _ => keys.iter().any(has),
                })))
            }
            Op::Concat => {
                let Some(other) = call.text(1)? else {
                    return Ok(call.null());
                };
                jsonb_result(&concat(parse(text)?, parse(other)?))
            }
            Op::Delete => {
                let mut node = parse(text)?;
                match &a[1] {
                    v if v.is_null() => return Ok(call.null()),
                    ScalarValue::List(_) => {
                        for key in path(&a[1])?.unwrap_or_default().into_iter().flatten() {
                            delete_key(&mut node, &key)?;
                        }
                    }
                    v => match (string(v), integer(v)) {
                        (Some(key), _) => delete_key(&mut node, &key)?,
                        (_, Some(i)) => delete_element(&mut node, i)?,
                        _ => return Err(operand_error(self, v)),
                    },
                }
                jsonb_result(&node)
            }
            Op::DeletePath => {
                let mut node = parse(text)?;
                match path(&a[1])? {
                    Some(steps) => {
                        delete_path(&mut node, &whole_path(steps)?)?;
                        jsonb_result(&node)
                    }
                    None => Ok(call.null()),
                }
            }
        }
    }
}

fn operand_error(op: Op, v: &ScalarValue) -> DataFusionError {
    err(
        "42883",
        format!(
            "{} does not take an operand of type {}",
            op.name(),
            super::types::of_arrow(&v.data_type()).data_type
        ),
    )
}

/// What a JSON function returns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Returns {
    Json(JsonType),
    Plain(DataType),
}

impl Returns {
    fn data_type(&self) -> DataType {
        match self {
            Returns::Json(_) => DataType::Utf8,
            Returns::Plain(t) => t.clone(),
        }
    }
}

/// One row's arguments of a JSON function, with their fields (whose extension types tell
/// JSON from text) and the session's time zone.
pub(crate) struct Call<'a> {
    pub(crate) args: Vec<ScalarValue>,
    fields: &'a [FieldRef],
    zone: &'a Tz,
    returns: &'a Returns,
}

impl Call<'_> {
    /// Argument `i` as text (NULL as `None`).
    pub(crate) fn text(&self, i: usize) -> Result<Option<&str>> {
        match &self.args[i] {
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
                Ok(s.as_deref())
            }
            ScalarValue::Null => Ok(None),
            other => Err(err(
                "42883",
                format!(
                    "a JSON function does not take an argument of type {}",
                    super::types::of_arrow(&other.data_type()).data_type
                ),
            )),
        }
    }

    pub(crate) fn null(&self) -> ScalarValue {
        ScalarValue::try_from(self.returns.data_type()).unwrap_or(ScalarValue::Null)
    }
}

pub(crate) type Body = Arc<dyn Fn(&Call) -> Result<ScalarValue> + Send + Sync>;

/// A JSON function, evaluated row by row.
pub(crate) struct JsonFunction {
    name: &'static str,
    signature: Signature,
    returns: Returns,
    body: Body,
}

impl JsonFunction {
    pub(crate) fn udf(
        name: &'static str,
        signature: Signature,
        returns: Returns,
        body: Body,
    ) -> ScalarUDF {
        ScalarUDF::new_from_impl(JsonFunction {
            name,
            signature,
            returns,
            body,
        })
    }
}

impl std::fmt::Debug for JsonFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonFunction")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for JsonFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.returns == other.returns
    }
}

impl Eq for JsonFunction {}

impl Hash for JsonFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for JsonFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.returns.data_type())
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(match &self.returns {
            Returns::Json(t) => t.field(self.name),
            Returns::Plain(data_type) => Field::new(self.name, data_type.clone(), true),
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let zone = crate::literal::session_zone(&args.config_options);
        let scalar = !args.args.is_empty()
            && args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let values = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<Result<Vec<_>>>()?;
            let call = Call {
                args: values,
                fields: &args.arg_fields,
                zone: &zone,
                returns: &self.returns,
            };
            out.push((self.body)(&call)?);
        }
        let data_type = self.returns.data_type();
        let array = if out.is_empty() {
            datafusion::arrow::array::new_empty_array(&data_type)
        } else {
            ScalarValue::iter_to_array(out)?
        };
        // Building from scalars drops the metadata of a list's item field.
        let array: ArrayRef = match (&data_type, array.as_list_opt::<i32>()) {
            (DataType::List(item), Some(list)) if array.data_type() != &data_type => {
                let (_, offsets, values, nulls) = list.clone().into_parts();
                Arc::new(datafusion::arrow::array::ListArray::try_new(
                    item.clone(),
                    offsets,
                    values,
                    nulls,
                )?)
            }
            _ => array,
        };
        Ok(match (scalar, array.as_list_opt::<i32>()) {
            // Taken from the array, a list scalar would get a plain item field again.
            (true, Some(list)) => ColumnarValue::Scalar(ScalarValue::List(Arc::new(list.clone()))),
            (true, None) => ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?),
            (false, _) => ColumnarValue::Array(array),
        })
    }
}

fn utf8(s: String) -> ScalarValue {
    ScalarValue::Utf8(Some(s))
}

fn string(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.clone(),
        _ => None,
    }
}

fn integer(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int8(Some(i)) => Some(i64::from(*i)),
        ScalarValue::Int16(Some(i)) => Some(i64::from(*i)),
        ScalarValue::Int32(Some(i)) => Some(i64::from(*i)),
        ScalarValue::Int64(Some(i)) => Some(*i),
        _ => None,
    }
}

pub(crate) fn parse(text: &str) -> Result<Node> {
    value::parse(text).map_err(value_error)
}

/// A `text[]` argument: an array, or the text of an array literal (`'{a,b}'`), whose
/// elements may be NULL.
fn path(v: &ScalarValue) -> Result<Option<Vec<Option<String>>>> {
    match v {
        v if v.is_null() => Ok(None),
        ScalarValue::List(list) => {
            let values = list.value(0);
            let strings = datafusion::arrow::compute::cast(&values, &DataType::Utf8)?;
            let strings = strings.as_string::<i32>();
            Ok(Some(strings.iter().map(|s| s.map(str::to_owned)).collect()))
        }
        v => match string(v) {
            Some(text) => super::arrays::array_in(&text).map(Some),
            None => Err(err(
                "42883",
                format!(
                    "a JSON path must be text[], not {}",
                    super::types::of_arrow(&v.data_type()).data_type
                ),
            )),
        },
    }
}

/// A path whose every step must be there (`jsonb_set`, `#-`): 22004 for a NULL one.
fn whole_path(steps: Vec<Option<String>>) -> Result<Vec<String>> {
    steps
        .into_iter()
        .enumerate()
        .map(|(i, step)| {
            step.ok_or_else(|| {
                err(
                    "22004",
                    format!("path element at position {} is null", i + 1),
                )
            })
        })
        .collect()
}

/// A found value as the operator returns it: its own text in a `json` value, the normal
/// form in a `jsonb` one.
fn out_text(node: &Node, source: &str, t: JsonType) -> Result<String> {
    match t {
        JsonType::Json if node.end > node.start => Ok(source[node.start..node.end].to_owned()),
        _ => value::jsonb_text(node).map_err(value_error),
    }
}

/// A found value as `->>` returns it: a string's text, NULL for JSON's null.
fn as_text_value(node: &Node, source: &str, t: JsonType) -> Result<Option<String>> {
    match &node.kind {
        Kind::Null => Ok(None),
        Kind::String(s) if s.contains('\0') => Err(value_error(value::nul_error())),
        Kind::String(s) => Ok(Some(s.clone())),
        _ => out_text(node, source, t).map(Some),
    }
}

fn jsonb_result(node: &Node) -> Result<ScalarValue> {
    Ok(utf8(value::jsonb_text(node).map_err(value_error)?))
}

/// `jsonb || jsonb`: arrays concatenate, objects merge (the right one's keys win), and a
/// scalar or object beside an array is taken as a one-element array.
fn concat(a: Node, b: Node) -> Node {
    let items = |n: Node| match n.kind {
        Kind::Array(items) => items,
        _ => vec![n],
    };
    match (a.kind, b.kind) {
        (Kind::Object(mut x), Kind::Object(y)) => {
            x.extend(y);
            Node::new(Kind::Object(x))
        }
        (ka, kb) => {
            let mut all = items(Node::new(ka));
            all.extend(items(Node::new(kb)));
            Node::new(Kind::Array(all))
        }
    }
}

fn scalar_error(what: &str) -> DataFusionError {
    err("22023", format!("cannot delete from {what}"))
}

/// `jsonb - text`: the key from an object, matching strings from an array.
fn delete_key(node: &mut Node, key: &str) -> Result<()> {
    match &mut node.kind {
        Kind::Object(members) => members.retain(|(k, _)| k != key),
        Kind::Array(items) => items.retain(|i| !matches!(&i.kind, Kind::String(s) if s == key)),
        _ => return Err(scalar_error("scalar")),
    }
    Ok(())
}

/// `jsonb - integer`: the element at a position (negative from the end).
fn delete_element(node: &mut Node, index: i64) -> Result<()> {
    match &mut node.kind {
        Kind::Array(items) => {
            let at = if index < 0 {
                items.len() as i64 + index
            } else {
                index
            };
            if (0..items.len() as i64).contains(&at) {
                items.remove(at as usize);
            }
            Ok(())
        }
        Kind::Object(_) => Err(err(
            "22023",
            "cannot delete from object using integer index",
        )),
        _ => Err(scalar_error("scalar")),
    }
}

/// The position in an array an index names (negative from the end), if it is inside.
fn position(len: usize, step: &str) -> Result<Option<usize>> {
    let index: i64 = step.trim().parse().map_err(|_| {
        err(
            "22P02",
            format!("path element is not an integer: \"{step}\""),
        )
    })?;
    let at = if index < 0 { len as i64 + index } else { index };
    Ok((0..len as i64).contains(&at).then_some(at as usize))
}

/// The value a path leads to from `node`, if it leads anywhere.
fn container<'a>(node: &'a mut Node, steps: &[String]) -> Result<Option<&'a mut Node>> {
    let mut at = node;
    for step in steps {
        let next = match &mut at.kind {
            Kind::Object(members) => members
                .iter_mut()
                .rev()
                .find(|(k, _)| k == step)
                .map(|m| &mut m.1),
            Kind::Array(items) => match position(items.len(), step)? {
                Some(i) => items.get_mut(i),
                None => None,
            },
            _ => None,
        };
        match next {
            Some(next) => at = next,
            None => return Ok(None),
        }
    }
    Ok(Some(at))
}

/// The last step of a path and the value the steps before it lead to, if they lead
/// anywhere; a scalar has no paths to `verb`.
fn last_step<'a, 's>(
    node: &'a mut Node,
    steps: &'s [String],
    verb: &str,
) -> Result<Option<(&'s String, &'a mut Node)>> {
    let Some((last, parents)) = steps.split_last() else {
        return Ok(None);
    };
    if matches!(
        node.kind,
        Kind::Null | Kind::Bool(_) | Kind::Number(_) | Kind::String(_)
    ) {
        return Err(err("22023", format!("cannot {verb} path in scalar")));
    }
    Ok(container(node, parents)?.map(|at| (last, at)))
}

/// `jsonb #- text[]`: the value at a path, if there is one.
fn delete_path(node: &mut Node, steps: &[String]) -> Result<()> {
    let Some((last, at)) = last_step(node, steps, "delete")? else {
        return Ok(());
    };
    match &mut at.kind {
        Kind::Object(members) => members.retain(|(k, _)| k != last),
        Kind::Array(items) => {
            if let Some(i) = position(items.len(), last)? {
                items.remove(i);
            }
        }
        _ => {}
    }
    Ok(())
}

/// `jsonb_set(target, path, new, create_missing)` and `jsonb_insert(target, path, new,
/// after)`: replaces (or, for insert, adds beside) the value at `path`.
fn set_path(
    node: &mut Node,
    steps: &[String],
    new: Node,
    create: bool,
    insert: Option<bool>,
) -> Result<()> {
    let Some((last, at)) = last_step(node, steps, "set")? else {
        return Ok(());
    };
    match &mut at.kind {
        Kind::Object(members) => {
            let existing = members.iter().rposition(|(k, _)| k == last);
            match (existing, insert) {
                (Some(_), Some(_)) => return Err(err("22023", "cannot replace existing key")),
                (Some(i), None) => members[i].1 = new,
                (None, Some(_)) => members.push((last.clone(), new)),
                (None, None) if create => members.push((last.clone(), new)),
                (None, None) => {}
            }
        }
        Kind::Array(items) => {
            let index: i64 = last.trim().parse().map_err(|_| {
                err(
                    "22P02",
                    format!("path element is not an integer: \"{last}\""),
                )
            })?;
            let len = items.len() as i64;
            let at = if index < 0 { len + index } else { index };
            match insert {
                Some(after) => {
                    let at = at.clamp(0, len) + i64::from(after && (0..len).contains(&at));
                    items.insert(at.clamp(0, len) as usize, new);
                }
                None if (0..len).contains(&at) => items[at as usize] = new,
                None if create && at < 0 => items.insert(0, new),
                None if create => items.push(new),
                None => {}
            }
        }
        _ => {}
    }
    Ok(())
}

/// Removes object members whose value is null, at every depth.
fn strip_nulls(node: &mut Node) {
    match &mut node.kind {
        Kind::Object(members) => {
            members.retain(|(_, v)| v.kind != Kind::Null);
            for (_, v) in members {
                strip_nulls(v);
            }
        }
        Kind::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// `jsonb_pretty`: four spaces per level, as PostgreSQL indents.
fn pretty(node: &Node, depth: usize, out: &mut String) -> Result<()> {
    let indent = |out: &mut String, d: usize| {
        out.push('\n');
        out.push_str(&"    ".repeat(d));
    };
    match &node.kind {
        // An empty container too is written over two lines, as PostgreSQL writes it.
        Kind::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                pretty(item, depth + 1, out)?;
            }
            indent(out, depth);
            out.push(']');
        }
        Kind::Object(members) => {
            out.push('{');
            for (i, (key, value)) in value::jsonb_members(members).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                value::write_string(key, out).map_err(value_error)?;
                out.push_str(": ");
                pretty(value, depth + 1, out)?;
            }
            indent(out, depth);
            out.push('}');
        }
        _ => value::write_jsonb(node, out).map_err(value_error)?,
    }
    Ok(())
}

/// A SQL value as JSON (`to_json`): numbers and booleans as themselves, JSON values as
/// they are, arrays as arrays, date/time values as ISO 8601 strings, everything else as
/// its text in a string. `compact` leaves out the spaces `json` arrays print between
/// elements (`array_to_json`, `to_json(array)` print none).
fn to_json(v: &ScalarValue, field: Option<&Field>, zone: &Tz, out: &mut String) -> Result<()> {
    let push_string = |s: &str, out: &mut String| value::write_string(s, out).map_err(value_error);
    if v.is_null() {
        out.push_str("null");
        return Ok(());
    }
    if let (Some(_), Some(text)) = (field.and_then(json_type), string(v)) {
        out.push_str(&text);
        return Ok(());
    }
    match v {
        ScalarValue::Boolean(Some(b)) => out.push_str(if *b { "true" } else { "false" }),
        ScalarValue::Int8(Some(i)) => out.push_str(&i.to_string()),
        ScalarValue::Int16(Some(i)) => out.push_str(&i.to_string()),
        ScalarValue::Int32(Some(i)) => out.push_str(&i.to_string()),
        ScalarValue::Int64(Some(i)) => out.push_str(&i.to_string()),
        ScalarValue::UInt8(Some(i)) => out.push_str(&i.to_string()),
        ScalarValue::UInt16(Some(i)) => out.push_str(&i.to_string()),
        ScalarValue::UInt32(Some(i)) => out.push_str(&i.to_string()),
        ScalarValue::UInt64(Some(i)) => out.push_str(&i.to_string()),
        ScalarValue::Float32(Some(f)) => {
            float(f64::from(*f), henge_ingest::text::float4_text(*f), out)
        }
        ScalarValue::Float64(Some(f)) => float(*f, henge_ingest::text::float8_text(*f), out),
        ScalarValue::Decimal128(Some(d), _, scale) => {
            out.push_str(&henge_ingest::text::decimal_text(*d, *scale))
        }
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => push_string(s, out)?,
        ScalarValue::Date32(Some(days)) => {
            let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|d| d.checked_add_signed(chrono::Duration::days(i64::from(*days))))
                .ok_or_else(|| err("22008", "date out of range"))?;
            push_string(&date.format("%Y-%m-%d").to_string(), out)?
        }
        ScalarValue::TimestampSecond(Some(_), zoned)
        | ScalarValue::TimestampMillisecond(Some(_), zoned)
        | ScalarValue::TimestampNanosecond(Some(_), zoned) => {
            let micros = v.cast_to(&DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Microsecond,
                zoned.clone(),
            ))?;
            return to_json(&micros, None, zone, out);
        }
        ScalarValue::TimestampMicrosecond(Some(micros), zoned) => {
            let at = DateTime::from_timestamp_micros(*micros)
                .ok_or_else(|| err("22008", "timestamp out of range"))?;
            let text = match zoned {
                None => iso(at.naive_utc()),
                Some(_) => {
                    let local = at.with_timezone(zone);
                    let offset = chrono::Offset::fix(local.offset()).local_minus_utc();
                    format!("{}{}", iso(local.naive_local()), offset_text(offset))
                }
            };
            push_string(&text, out)?
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            let text = henge_ingest::interval::format_interval(henge_ingest::interval::Interval {
                months: v.months,
                days: v.days,
                micros: v.nanoseconds / 1000,
            });
            push_string(&text, out)?
        }
        // A row: an object of its fields, named as PostgreSQL names an anonymous row's
        // (`f1`, `f2`, … where DataFusion's ROW(…) named them `c0`, `c1`, …).
        ScalarValue::Struct(row) => {
            let fields = row.fields();
            let anonymous = fields
                .iter()
                .enumerate()
                .all(|(i, f)| *f.name() == format!("c{i}"));
            out.push('{');
            for (i, (f, column)) in fields.iter().zip(row.columns()).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let name = match anonymous {
                    true => format!("f{}", i + 1),
                    false => f.name().clone(),
                };
                push_string(&name, out)?;
                out.push(':');
                to_json(&ScalarValue::try_from_array(column, 0)?, Some(f), zone, out)?;
            }
            out.push('}');
        }
        ScalarValue::List(list) => {
            let values = list.value(0);
            let item = match list.data_type() {
                DataType::List(f) => Some(f.clone()),
                _ => None,
            };
            out.push('[');
            for i in 0..values.len() {
                if i > 0 {
                    out.push(',');
                }
                let element = ScalarValue::try_from_array(&values, i)?;
                to_json(&element, item.as_deref(), zone, out)?;
            }
            out.push(']');
        }
        other => {
            return Err(err(
                "0A000",
                format!(
                    "to_json of {} is not supported",
                    super::types::of_arrow(&other.data_type()).data_type
                ),
            ))
        }
    }
    Ok(())
}

fn iso(at: chrono::NaiveDateTime) -> String {
    use chrono::Timelike;
    if at.nanosecond() == 0 {
        at.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        let s = at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
        s.trim_end_matches('0').to_owned()
    }
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    match s % 3600 {
        0 => format!("{sign}{:02}:00", s / 3600),
        rest if rest % 60 == 0 => format!("{sign}{:02}:{:02}", s / 3600, rest / 60),
        rest => format!("{sign}{:02}:{:02}:{:02}", s / 3600, rest / 60, rest % 60),
    }
}

/// A float as JSON: PostgreSQL writes its text (`written`) as a number, or a string for
/// NaN and the infinities.
fn float(f: f64, written: String, out: &mut String) {
    match f.is_finite() {
        true => out.push_str(&written),
        false => {
            out.push('"');
            out.push_str(&written);
            out.push('"');
        }
    }
}

/// A value's JSON text converted to the result type: `json` keeps it, `jsonb` normalizes.
fn finish(text: String, t: JsonType) -> Result<ScalarValue> {
    match t {
        JsonType::Json => Ok(utf8(text)),
        JsonType::Jsonb => Ok(utf8(value::jsonb_in(&text).map_err(value_error)?)),
    }
}

fn element_json(call: &Call, i: usize) -> Result<String> {
    let mut out = String::new();
    to_json(
        &call.args[i],
        call.fields.get(i).map(|f| f.as_ref()),
        call.zone,
        &mut out,
    )?;
    Ok(out)
}

/// Argument `i` as an object key, a JSON string: text as it is, other scalars as their
/// JSON text; a NULL key is an error.
fn quoted_key(call: &Call, i: usize) -> Result<String> {
    let v = &call.args[i];
    if v.is_null() {
        return Err(err("22004", "null value not allowed for object key"));
    }
    let key = match string(v) {
        Some(s) => s,
        None => element_json(call, i)?.trim_matches('"').to_owned(),
    };
    let mut out = String::new();
    value::write_string(&key, &mut out).map_err(value_error)?;
    Ok(out)
}

/// Registers the JSON functions on a session's context.
pub fn register(ctx: &SessionContext) {
    let scalar = |name: &'static str, arity: usize, returns: Returns, body: Body| {
        ctx.register_udf(JsonFunction::udf(
            name,
            Signature::any(arity, Volatility::Immutable),
            returns,
            body,
        ));
    };
    let variadic = |name: &'static str, returns: Returns, body: Body| {
        ctx.register_udf(JsonFunction::udf(
            name,
            Signature::variadic_any(Volatility::Immutable),
            returns,
            body,
        ));
    };
    for t in [JsonType::Json, JsonType::Jsonb] {
        let prefix = |json: &'static str, jsonb: &'static str| match t {
            JsonType::Json => json,
            JsonType::Jsonb => jsonb,
        };
        scalar(
            prefix("json_typeof", "jsonb_typeof"),
            1,
            Returns::Plain(DataType::Utf8),
            Arc::new(|call| match call.text(0)? {
                None => Ok(ScalarValue::Utf8(None)),
                Some(text) => Ok(utf8(parse(text)?.type_name().to_owned())),
            }),
        );
        scalar(
            prefix("json_array_length", "jsonb_array_length"),
            1,
            Returns::Plain(DataType::Int32),
            Arc::new(move |call| match call.text(0)? {
                None => Ok(ScalarValue::Int32(None)),
                Some(text) => match parse(text)?.kind {
                    Kind::Array(items) => Ok(ScalarValue::Int32(Some(items.len() as i32))),
                    Kind::Object(_) => Err(err("22023", "cannot get array length of a non-array")),
                    _ => Err(err("22023", "cannot get array length of a scalar")),
                },
            }),
        );
        for as_text in [false, true] {
            let name = match (t, as_text) {
                (JsonType::Json, false) => "json_extract_path",
                (JsonType::Json, true) => "json_extract_path_text",
                (JsonType::Jsonb, false) => "jsonb_extract_path",
                (JsonType::Jsonb, true) => "jsonb_extract_path_text",
            };
            let returns = match as_text {
                true => Returns::Plain(DataType::Utf8),
                false => Returns::Json(t),
            };
            variadic(
                name,
                returns,
                Arc::new(move |call| {
                    let Some(text) = call.text(0)? else {
                        return Ok(call.null());
                    };
                    let mut steps = Vec::new();
                    for v in &call.args[1..] {
                        match string(v) {
                            Some(s) => steps.push(s),
                            None => return Ok(call.null()),
                        }
                    }
                    let node = parse(text)?;
                    match node.at_path(&steps) {
                        None => Ok(call.null()),
                        Some(found) if as_text => {
                            Ok(ScalarValue::Utf8(as_text_value(found, text, t)?))
                        }
                        Some(found) => Ok(utf8(out_text(found, text, t)?)),
                    }
                }),
            );
        }
        scalar(
            prefix("json_strip_nulls", "jsonb_strip_nulls"),
            1,
            Returns::Json(t),
            Arc::new(move |call| match call.text(0)? {
                None => Ok(call.null()),
                Some(text) => {
                    // An untyped jsonb argument is read as jsonb first (the last of a
                    // repeated key counts) before its nulls go.
                    let mut node = match t {
                        JsonType::Json => parse(text)?,
                        JsonType::Jsonb => parse(&value::jsonb_in(text).map_err(value_error)?)?,
                    };
                    strip_nulls(&mut node);
                    match t {
                        JsonType::Json => {
                            let mut out = String::new();
                            value::write_compact(&node, &mut out).map_err(value_error)?;
                            Ok(utf8(out))
                        }
                        JsonType::Jsonb => jsonb_result(&node),
                    }
                }
            }),
        );
        scalar(
            prefix("to_json", "to_jsonb"),
            1,
            Returns::Json(t),
            Arc::new(move |call| {
                if call.args[0].is_null() {
                    return Ok(call.null());
                }
                finish(element_json(call, 0)?, t)
            }),
        );
        if t == JsonType::Json {
            // row_to_json(row [, pretty]): to_json of a row; the pretty form (a line per
            // field) is not supported.
            ctx.register_udf(JsonFunction::udf(
                "row_to_json",
                Signature::one_of(
                    vec![
                        datafusion::logical_expr::TypeSignature::Any(1),
                        datafusion::logical_expr::TypeSignature::Any(2),
                    ],
                    Volatility::Immutable,
                ),
                Returns::Json(t),
                Arc::new(move |call| {
                    if !matches!(call.args[0], ScalarValue::Struct(_)) {
                        return Err(err(
                            "42883",
                            format!(
                                "function row_to_json({}) does not exist",
                                super::types::of_arrow(&call.args[0].data_type()).data_type
                            ),
                        ));
                    }
                    if matches!(call.args.get(1), Some(ScalarValue::Boolean(Some(true)))) {
                        return Err(err("0A000", "row_to_json(…, true) is not supported"));
                    }
                    if call.args.iter().any(ScalarValue::is_null) {
                        return Ok(call.null());
                    }
                    finish(element_json(call, 0)?, t)
                }),
            ));
        }
        variadic(
            prefix("json_build_array", "jsonb_build_array"),
            Returns::Json(t),
            Arc::new(move |call| {
                let items = (0..call.args.len())
                    .map(|i| element_json(call, i))
                    .collect::<Result<Vec<_>>>()?;
                finish(format!("[{}]", items.join(", ")), t)
            }),
        );
        variadic(
            prefix("json_build_object", "jsonb_build_object"),
            Returns::Json(t),
            Arc::new(move |call| {
                if call.args.len() % 2 != 0 {
                    return Err(err(
                        "22023",
                        "argument list must have even number of elements",
                    ));
                }
                let mut pairs = Vec::new();
                for i in (0..call.args.len()).step_by(2) {
                    let key = quoted_key(call, i)?;
                    pairs.push(format!("{key} : {}", element_json(call, i + 1)?));
                }
                finish(format!("{{{}}}", pairs.join(", ")), t)
            }),
        );
        scalar(
            prefix("json_object", "jsonb_object"),
            1,
            Returns::Json(t),
            Arc::new(move |call| {
                let Some(items) = path(&call.args[0])? else {
                    return Ok(call.null());
                };
                if items.len() % 2 != 0 {
                    return Err(err("2202E", "array must have even number of elements"));
                }
                let mut pairs = Vec::new();
                for pair in items.chunks(2) {
                    let mut text = String::new();
                    let key = pair[0]
                        .as_deref()
                        .ok_or_else(|| err("22004", "null value not allowed for object key"))?;
                    value::write_string(key, &mut text).map_err(value_error)?;
                    text.push_str(" : ");
                    match &pair[1] {
                        Some(v) => value::write_string(v, &mut text).map_err(value_error)?,
                        None => text.push_str("null"),
                    }
                    pairs.push(text);
                }
                finish(format!("{{{}}}", pairs.join(", ")), t)
            }),
        );
    }
    scalar(
        "array_to_json",
        1,
        Returns::Json(JsonType::Json),
        Arc::new(|call| match &call.args[0] {
            v if v.is_null() => Ok(call.null()),
            ScalarValue::List(_) => Ok(utf8(element_json(call, 0)?)),
            _ => Err(err("22023", "array_to_json takes an array")),
        }),
    );
    scalar(
        "jsonb_pretty",
        1,
        Returns::Plain(DataType::Utf8),
        Arc::new(|call| match call.text(0)? {
            None => Ok(ScalarValue::Utf8(None)),
            Some(text) => {
                let mut out = String::new();
                pretty(&parse(text)?, 0, &mut out)?;
                Ok(utf8(out))
            }
        }),
    );
    for insert in [false, true] {
        ctx.register_udf(JsonFunction::udf(
            if insert { "jsonb_insert" } else { "jsonb_set" },
            Signature::variadic_any(Volatility::Immutable),
            Returns::Json(JsonType::Jsonb),
            Arc::new(move |call| {
                if !(3..=4).contains(&call.args.len()) {
                    return Err(err(
                        "42883",
                        "jsonb_set and jsonb_insert take 3 or 4 arguments",
                    ));
                }
                let (Some(text), Some(steps), Some(new)) =
                    (call.text(0)?, path(&call.args[1])?, call.text(2)?)
                else {
                    return Ok(call.null());
                };
                let flag = match call.args.get(3) {
                    None => !insert,
                    Some(ScalarValue::Boolean(Some(b))) => *b,
                    Some(v) if v.is_null() => return Ok(call.null()),
                    Some(_) => return Err(err("42883", "the last argument must be boolean")),
                };
                let steps = whole_path(steps)?;
                let mut node = parse(text)?;
                let new = parse(new)?;
                match insert {
                    true => set_path(&mut node, &steps, new, true, Some(flag))?,
                    false => set_path(&mut node, &steps, new, flag, None)?,
                }
                jsonb_result(&node)
            }),
        ));
    }
    ctx.register_udf(Op::Typed(JsonType::Json).udf());
    ctx.register_udf(Op::Typed(JsonType::Jsonb).udf());
    // The aggregates' pieces (see `rewrite`).
    for t in [JsonType::Json, JsonType::Jsonb] {
        let (element, agg, pair, object_agg) = match t {
            JsonType::Json => (
                "pg_json_element",
                "pg_json_agg",
                "pg_json_pair",
                "pg_json_object_agg",
            ),
            JsonType::Jsonb => (
                "pg_jsonb_element",
                "pg_jsonb_agg",
                "pg_jsonb_pair",
                "pg_jsonb_object_agg",
            ),
        };
        scalar(
            element,
            1,
            Returns::Plain(DataType::Utf8),
            Arc::new(|call| Ok(utf8(element_json(call, 0)?))),
        );
        scalar(
            pair,
            2,
            Returns::Plain(DataType::Utf8),
            Arc::new(|call| {
                let key = quoted_key(call, 0)?;
                Ok(utf8(format!("[{key}, {}]", element_json(call, 1)?)))
            }),
        );
        scalar(
            agg,
            1,
            Returns::Json(t),
            Arc::new(move |call| {
                let Some(items) = listed(&call.args[0])? else {
                    return Ok(call.null());
                };
                finish(format!("[{}]", items.join(", ")), t)
            }),
        );
        scalar(
            object_agg,
            1,
            Returns::Json(t),
            Arc::new(move |call| {
                let Some(pairs) = listed(&call.args[0])? else {
                    return Ok(call.null());
                };
                let mut members = Vec::with_capacity(pairs.len());
                for text in &pairs {
                    let node = parse(text)?;
                    let (Some(key), Some(value)) = (node.element(0), node.element(1)) else {
                        return Err(err("XX000", "malformed object aggregate pair"));
                    };
                    let Kind::String(key) = &key.kind else {
                        return Err(err("XX000", "malformed object aggregate pair"));
                    };
                    let mut k = String::new();
                    value::write_string(key, &mut k).map_err(value_error)?;
                    members.push(format!("{k} : {}", &text[value.start..value.end]));
                }
                match t {
                    JsonType::Json => Ok(utf8(format!("{{ {} }}", members.join(", ")))),
                    JsonType::Jsonb => finish(format!("{{{}}}", members.join(", ")), t),
                }
            }),
        );
    }
    // Set-returning functions: lists in a select list (unnested there, see `srf`), tables
    // in FROM.
    for f in SetReturning::ALL {
        ctx.register_udf(f.list_udf());
        ctx.register_udtf(f.name(), Arc::new(f));
    }
}

/// The strings of a list of JSON texts (NULL for none), or of the field `j` of a list of
/// structs (see [`rewrite`]).
fn listed(v: &ScalarValue) -> Result<Option<Vec<String>>> {
    match v {
        ScalarValue::List(list) if !list.is_null(0) => {
            let mut values = list.value(0);
            if let Some(structs) = values.as_struct_opt() {
                values = structs
                    .column_by_name("j")
                    .cloned()
                    .ok_or_else(|| err("XX000", "malformed JSON aggregate"))?;
            }
            let strings = values.as_string::<i32>();
            Ok(Some(
                strings
                    .iter()
                    .map(|s| s.unwrap_or("null").to_owned())
                    .collect(),
            ))
        }
        _ => Ok(None),
    }
}

/// The set-returning JSON functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SetReturning {
    t: JsonType,
    what: Yields,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Yields {
    /// `json_each`: key and value.
    Each,
    /// `json_each_text`: key and value as text.
    EachText,
    Elements,
    ElementsText,
    Keys,
}

impl SetReturning {
    const ALL: [SetReturning; 10] = {
        use JsonType::{Json, Jsonb};
        use Yields::*;
        [
            SetReturning {
                t: Json,
                what: Each,
            },
            SetReturning {
                t: Json,
                what: EachText,
            },
            SetReturning {
                t: Json,
                what: Elements,
            },
            SetReturning {
                t: Json,
                what: ElementsText,
            },
            SetReturning {
                t: Json,
                what: Keys,
            },
            SetReturning {
                t: Jsonb,
                what: Each,
            },
            SetReturning {
                t: Jsonb,
                what: EachText,
            },
            SetReturning {
                t: Jsonb,
                what: Elements,
            },
            SetReturning {
                t: Jsonb,
                what: ElementsText,
            },
            SetReturning {
                t: Jsonb,
                what: Keys,
            },
        ]
    };

    fn name(self) -> &'static str {
        match (self.t, self.what) {
            (JsonType::Json, Yields::Each) => "json_each",
            (JsonType::Json, Yields::EachText) => "json_each_text",
            (JsonType::Json, Yields::Elements) => "json_array_elements",
            (JsonType::Json, Yields::ElementsText) => "json_array_elements_text",
            (JsonType::Json, Yields::Keys) => "json_object_keys",
            (JsonType::Jsonb, Yields::Each) => "jsonb_each",
            (JsonType::Jsonb, Yields::EachText) => "jsonb_each_text",
            (JsonType::Jsonb, Yields::Elements) => "jsonb_array_elements",
            (JsonType::Jsonb, Yields::ElementsText) => "jsonb_array_elements_text",
            (JsonType::Jsonb, Yields::Keys) => "jsonb_object_keys",
        }
    }

    /// The field of the values (not the keys) it yields.
    fn value_field(self, name: &str) -> Field {
        match self.what {
            Yields::Each | Yields::Elements => self.t.field(name),
            _ => Field::new(name, DataType::Utf8, true),
        }
    }

    /// The rows of one call: (key, value) pairs, the key `None` where there is none.
    fn rows(self, text: &str) -> Result<Vec<(Option<String>, Option<String>)>> {
        let node = parse(text)?;
        let value = |n: &Node| -> Result<Option<String>> {
            match self.what {
                Yields::EachText | Yields::ElementsText => as_text_value(n, text, self.t),
                _ => out_text(n, text, self.t).map(Some),
            }
        };
        match (self.what, &node.kind) {
            (Yields::Each | Yields::EachText, Kind::Object(members)) => {
                let members: Vec<(&String, &Node)> = match self.t {
                    JsonType::Json => members.iter().map(|(k, v)| (k, v)).collect(),
                    JsonType::Jsonb => value::jsonb_members(members),
                };
                members
                    .into_iter()
                    .map(|(k, v)| Ok((Some(k.clone()), value(v)?)))
                    .collect()
            }
            (Yields::Keys, Kind::Object(members)) => {
                let keys: Vec<&String> = match self.t {
                    JsonType::Json => members.iter().map(|(k, _)| k).collect(),
                    JsonType::Jsonb => value::jsonb_members(members)
                        .into_iter()
                        .map(|(k, _)| k)
                        .collect(),
                };
                Ok(keys.into_iter().map(|k| (None, Some(k.clone()))).collect())
            }
            (Yields::Elements | Yields::ElementsText, Kind::Array(items)) => {
                items.iter().map(|i| Ok((None, value(i)?))).collect()
            }
            (Yields::Elements | Yields::ElementsText, _) => Err(err(
                "22023",
                if matches!(node.kind, Kind::Object(_)) {
                    "cannot extract elements from an object"
                } else {
                    "cannot extract elements from a scalar"
                },
            )),
            (Yields::Keys, _) => Err(err(
                "22023",
                format!(
                    "cannot call {} on a{}",
                    self.name(),
                    match node.kind {
                        Kind::Array(_) => "n array",
                        _ => " scalar",
                    }
                ),
            )),
            _ => Err(err(
                "22023",
                format!("cannot call {} on a non-object", self.name()),
            )),
        }
    }

    /// The function in a select list: a list of the values, which `unnest` turns to rows.
    /// (`json_each` yields records there, which Henge does not make.)
    fn list_udf(self) -> ScalarUDF {
        let name = self.name();
        let item = Arc::new(self.value_field("item"));
        JsonFunction::udf(
            name,
            Signature::any(1, Volatility::Immutable),
            Returns::Plain(DataType::List(item.clone())),
            Arc::new(move |call| {
                if matches!(self.what, Yields::Each | Yields::EachText) {
                    return Err(err(
                        "0A000",
                        format!("{name} in a select list is not supported; use it in FROM"),
                    ));
                }
                let Some(text) = call.text(0)? else {
                    return Ok(ScalarValue::List(Arc::new(
                        datafusion::arrow::array::ListArray::new_null(item.clone(), 1),
                    )));
                };
                let values: StringArray = self.rows(text)?.into_iter().map(|(_, v)| v).collect();
                Ok(ScalarValue::List(Arc::new(
                    datafusion::arrow::array::ListArray::new(
                        item.clone(),
                        datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
                        Arc::new(values),
                        None,
                    ),
                )))
            }),
        )
    }
}

impl TableFunctionImpl for SetReturning {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let text = match args.exprs() {
            [arg] => constant_text(arg)?,
            _ => return Err(err("42883", format!("{} takes one argument", self.name()))),
        };
        let mut fields = Vec::new();
        let value_name = match self.what {
            Yields::Each | Yields::EachText => {
                fields.push(Field::new("key", DataType::Utf8, true));
                "value"
            }
            Yields::Elements | Yields::ElementsText => "value",
            Yields::Keys => self.name(),
        };
        fields.push(self.value_field(value_name));
        let schema = Arc::new(Schema::new(fields));
        let rows = match text {
            Some(text) => self.rows(&text)?,
            None => Vec::new(),
        };
        let mut columns: Vec<ArrayRef> = Vec::new();
        if matches!(self.what, Yields::Each | Yields::EachText) {
            columns.push(Arc::new(
                rows.iter().map(|(k, _)| k.clone()).collect::<StringArray>(),
            ));
        }
        columns.push(Arc::new(
            rows.into_iter().map(|(_, v)| v).collect::<StringArray>(),
        ));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// The text of a table function's constant argument (a literal, or a cast of one).
fn constant_text(expr: &Expr) -> Result<Option<String>> {
    match expr {
        Expr::Literal(v, _) if v.is_null() => Ok(None),
        Expr::Literal(v, _) => string(v)
            .map(Some)
            .ok_or_else(|| err("42883", "a JSON table function takes json text")),
        Expr::Cast(Cast { expr, .. }) | Expr::TryCast(TryCast { expr, .. }) => constant_text(expr),
        _ => Err(err(
            "0A000",
            "JSON table functions in FROM take a constant argument",
        )),
    }
}

/// The set-returning JSON functions a select list unnests (see [`super::srf`]).
pub const LISTING: [&str; 6] = [
    "json_array_elements",
    "json_array_elements_text",
    "json_object_keys",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_object_keys",
];

/// `array_agg(DISTINCT x ORDER BY x …)` as `array_sort(array_agg(DISTINCT x), …)`:
/// DataFusion may run an ordered aggregate over input sorted the other way and reverse
/// its ordering, which reverses a DISTINCT `array_agg`'s answer when another aggregate of
/// the query wants the opposite order. With DISTINCT, PostgreSQL only allows ORDER BY the
/// argument, so sorting the distinct values afterwards is the same.
fn sorted_distinct_array_agg(expr: &mut ast::Expr) {
    let ast::Expr::Function(function) = expr else {
        return;
    };
    if function.over.is_some() {
        return;
    }
    let FunctionArguments::List(list) = &mut function.args else {
        return;
    };
    if !matches!(
        list.duplicate_treatment,
        Some(ast::DuplicateTreatment::Distinct)
    ) {
        return;
    }
    let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg))] = list.args.as_slice() else {
        return;
    };
    let Some(position) = list.clauses.iter().position(|c| {
        matches!(c, ast::FunctionArgumentClause::OrderBy(keys)
            if keys.len() == 1 && &keys[0].expr == arg)
    }) else {
        return;
    };
    let ast::FunctionArgumentClause::OrderBy(keys) = list.clauses.remove(position) else {
        return;
    };
    let descending = keys[0].options.asc == Some(false);
    let nulls_first = keys[0].options.nulls_first.unwrap_or(descending);
    let text = |s: &str| ast::Expr::value(ast::Value::SingleQuotedString(s.into()));
    let inner = expr.clone();
    *expr = call(
        "array_sort",
        vec![
            inner,
            text(if descending { "DESC" } else { "ASC" }),
            text(if nulls_first {
                "NULLS FIRST"
            } else {
                "NULLS LAST"
            }),
        ],
    );
}

/// Rewrites VALUES lists (see [`super::types::cast_values_alike`]), casts to the
/// character types with a length ([`super::character::rewrite_cast`]), and
/// the JSON aggregates: `json_agg(x ORDER BY …)` becomes
/// `pg_json_agg(array_agg(pg_json_element(x) ORDER BY …))` — each value's JSON text
/// collected in order, then joined — and `json_object_agg(k, v …)` likewise over
/// `pg_json_pair(k, v)`. DISTINCT, ORDER BY and FILTER stay on the `array_agg`.
pub fn rewrite(mut statement: ast::Statement) -> ast::Statement {
    struct Aggregates;
    impl VisitorMut for Aggregates {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
            if let ast::SetExpr::Values(values) = query.body.as_mut() {
                super::types::cast_values_alike(values);
                super::character::values_alike(values);
            }
            ControlFlow::Continue(())
        }

        fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
            super::character::rewrite_cast(expr);
            super::jsonpath::named_arguments(expr);
            let Some(name) = function_name(expr) else {
                return ControlFlow::Continue(());
            };
            if name == "array_agg" {
                sorted_distinct_array_agg(expr);
                return ControlFlow::Continue(());
            }
            // A select list's `unnest(json_array_elements(…))` (see `srf`): unnest drops
            // the item's type, which is given back.
            if name == "unnest" {
                if let ast::Expr::Function(f) = &*expr {
                    if let FunctionArguments::List(list) = &f.args {
                        if let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(inner))] =
                            list.args.as_slice()
                        {
                            let typed = match function_name(super::srf::untagged(inner)).as_deref()
                            {
                                Some("json_array_elements") => Some("pg_as_json"),
                                Some("jsonb_array_elements")
                                | Some("jsonb_path_query")
                                | Some("jsonb_path_query_tz") => Some("pg_as_jsonb"),
                                _ => None,
                            };
                            if let Some(typed) = typed {
                                *expr = call(typed, vec![expr.clone()]);
                            }
                        }
                    }
                }
                return ControlFlow::Continue(());
            }
            let (finish, piece) = match name.as_str() {
                "json_agg" => ("pg_json_agg", "pg_json_element"),
                "jsonb_agg" => ("pg_jsonb_agg", "pg_jsonb_element"),
                "json_object_agg" => ("pg_json_object_agg", "pg_json_pair"),
                "jsonb_object_agg" => ("pg_jsonb_object_agg", "pg_jsonb_pair"),
                _ => return ControlFlow::Continue(()),
            };
            let ast::Expr::Function(function) = expr else {
                return ControlFlow::Continue(());
            };
            if function.over.is_some() {
                return ControlFlow::Continue(());
            }
            let FunctionArguments::List(list) = &mut function.args else {
                return ControlFlow::Continue(());
            };
            let args: Vec<ast::Expr> = list
                .args
                .iter()
                .filter_map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect();
            let mut element = call(piece, args.clone());
            // With DISTINCT, ORDER BY must name the argument: collect the value beside its
            // JSON text, so that sorting and de-duplicating go by the value.
            let distinct = matches!(
                list.duplicate_treatment,
                Some(ast::DuplicateTreatment::Distinct)
            );
            if let (true, [arg]) = (distinct, args.as_slice()) {
                element = call(
                    "named_struct",
                    vec![
                        ast::Expr::value(ast::Value::SingleQuotedString("v".into())),
                        arg.clone(),
                        ast::Expr::value(ast::Value::SingleQuotedString("j".into())),
                        element,
                    ],
                );
                for clause in &mut list.clauses {
                    if let ast::FunctionArgumentClause::OrderBy(keys) = clause {
                        for key in keys.iter_mut().filter(|k| &k.expr == arg) {
                            key.expr = element.clone();
                        }
                    }
                }
            }
            list.args = vec![ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                element,
            ))];
            let mut inner = function.clone();
            inner.name = ast::ObjectName::from(vec![ast::Ident::new("array_agg")]);
            *expr = call(finish, vec![ast::Expr::Function(inner)]);
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Aggregates);
    statement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_insert() {
        let set = |doc: &str, path: &[&str], new: &str, create: bool, insert: Option<bool>| {
            let mut node = value::parse(doc).unwrap();
            let steps: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            set_path(
                &mut node,
                &steps,
                value::parse(new).unwrap(),
                create,
                insert,
            )
            .unwrap();
            value::jsonb_text(&node).unwrap()
        };
        assert_eq!(
            set(
                r#"[{"f1":1,"f2":null},2,null,3]"#,
                &["0", "f1"],
                "[2,3,4]",
                false,
                None
            ),
            r#"[{"f1": [2, 3, 4], "f2": null}, 2, null, 3]"#
        );
        assert_eq!(
            set(
                r#"{"a": [0,1,2]}"#,
                &["a", "1"],
                r#""new_value""#,
                true,
                Some(false)
            ),
            r#"{"a": [0, "new_value", 1, 2]}"#
        );
        assert_eq!(
            set(
                r#"{"a": [0,1,2]}"#,
                &["a", "1"],
                r#""new_value""#,
                true,
                Some(true)
            ),
            r#"{"a": [0, 1, "new_value", 2]}"#
        );
        assert_eq!(
            set(r#"{"a":1}"#, &["b"], "2", true, None),
            r#"{"a": 1, "b": 2}"#
        );
        assert_eq!(set(r#"{"a":1}"#, &["b"], "2", false, None), r#"{"a": 1}"#);
    }

    #[test]
    fn concatenation() {
        let c = |a: &str, b: &str| {
            value::jsonb_text(&concat(value::parse(a).unwrap(), value::parse(b).unwrap())).unwrap()
        };
        assert_eq!(
            c(r#"["a", "b"]"#, r#"["c", "d"]"#),
            r#"["a", "b", "c", "d"]"#
        );
        assert_eq!(
            c(r#"{"a": "b"}"#, r#"{"c": "d"}"#),
            r#"{"a": "b", "c": "d"}"#
        );
        assert_eq!(c("[1, 2]", "3"), "[1, 2, 3]");
        assert_eq!(c(r#"{"a":1}"#, "[2]"), r#"[{"a": 1}, 2]"#);
    }
}
