//! Operators between text and numbers, and `%` of floating-point values, resolved as
//! PostgreSQL resolves them.
//!
//! PostgreSQL has no operator between `text` and a number: `text_column = 1` and
//! `'1.5'::text < 2` are errors (42883), where DataFusion casts the number to text and
//! compares strings (`'10' < '2'`). A string constant without a type is read as the other
//! operand's type instead (`'5' + 1` is 6, `'a' + 1` is 22P02: invalid input for type
//! integer), where DataFusion refuses the arithmetic. And PostgreSQL has no `%` for `real`
//! or `double precision` (42883), where DataFusion answers a floating remainder.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use super::SqlStateError;

/// Checks and types the operands of comparisons and arithmetic between text and numbers
/// (see the module's documentation). Add it before the planners that plan arithmetic.
#[derive(Debug)]
pub struct PgOperandTypes;

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

fn is_number(t: &DataType) -> bool {
    t.is_numeric()
}

/// A string constant as written, whose type the other operand decides.
fn untyped_text(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Literal(
            ScalarValue::Utf8(Some(_)) | ScalarValue::Utf8View(Some(_)),
            _
        )
    )
}

/// The places a numeric constant written as text needs (`'1.25'`: 2, `'1e-3'`: 3), at
/// most 38; `None` if it is not written as a number.
fn literal_scale(e: &Expr) -> Option<i8> {
    let Expr::Literal(ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)), _) = e
    else {
        return None;
    };
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let places = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    Some((places - exponent).clamp(0, 38) as i8)
}

fn relevant(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
            | BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo
    )
}

/// PostgreSQL's name of an operand's type, as its error messages print it.
fn type_name(e: &Expr, schema: &DFSchema) -> String {
    e.to_field(schema)
        .map(|(_, f)| super::types::of_field(&f).data_type)
        .unwrap_or_else(|_| "unknown".into())
}

fn no_operator(
    op: &BinaryOperator,
    left: &Expr,
    right: &Expr,
    schema: &DFSchema,
) -> DataFusionError {
    SqlStateError::new(
        "42883",
        format!(
            "operator does not exist: {} {op} {}",
            type_name(left, schema),
            type_name(right, schema)
        ),
    )
    .into()
}

impl ExprPlanner for PgOperandTypes {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        if !relevant(&expr.op) {
            return Ok(PlannerResult::Original(expr));
        }
        let (Ok(l), Ok(r)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        if expr.op == BinaryOperator::Modulo && (l.is_floating() || r.is_floating()) {
            return Err(no_operator(&expr.op, &expr.left, &expr.right, schema));
        }
        let RawBinaryExpr { op, left, right } = expr;
        let read_as = |e: Expr, t: &DataType| {
            let t = match t {
                // As an unconstrained numeric: the constant keeps its own digits
                // (`'1.54' = 1.5` is false, `'100' + 1.5` is 101.5).
                DataType::Decimal128(_, scale) => {
                    DataType::Decimal128(38, literal_scale(&e).unwrap_or(0).max(*scale))
                }
                t => t.clone(),
            };
            Expr::Cast(Cast::new(Box::new(e), t))
        };
        let (left, right) = match (is_text(&l) && is_number(&r), is_number(&l) && is_text(&r)) {
            (true, _) if untyped_text(&left) => (read_as(left, &r), right),
            (_, true) if untyped_text(&right) => {
                let right = read_as(right, &l);
                (left, right)
            }
            (true, _) | (_, true) => return Err(no_operator(&op, &left, &right, schema)),
            _ => (left, right),
        };
        Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }))
    }
}
