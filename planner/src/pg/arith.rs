//! Arithmetic and numeric casts with PostgreSQL's outcomes instead of DataFusion's.
//!
//! DataFusion's integer arithmetic wraps (`9223372036854775807 + 1` is a negative number),
//! its floating-point division by zero gives infinity, and its casts from a fraction to an
//! integer truncate. PostgreSQL raises 22003 "bigint out of range", raises 22012 "division
//! by zero", and rounds (`3.7::int` is 4; a float rounds half to even, a numeric half away
//! from zero). [`PgArithmetic`] is the one place that makes Henge answer as PostgreSQL
//! does: an analyzer rule, run after DataFusion's type coercion, that replaces each
//! integer or floating-point `+ - * / %` with a checked function of the same types
//! ([`Checked`]), and each cast of a float or numeric to an integer with a rounding,
//! range-checked one ([`RoundToInt`]); `round(x)` of a float rounds half to even
//! ([`RoundHalfEven`]); `trunc` of a numeric keeps the scale of its digits; and `concat` prints a boolean as `t` or `f`. Constant folding then evaluates them like any
//! function, so an overflow between literals is an error at planning time, as in
//! PostgreSQL. A numeric quotient gets PostgreSQL's number of places when the query is
//! planned ([`super::division`]); the rest of numeric (decimal) arithmetic is left to
//! DataFusion.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Datum, Float64Array, Scalar};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::{Case, Cast, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    lit, BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::SqlStateError;

const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
const DIVISION_BY_ZERO: &str = "22012";

/// The analyzer rule; add it after DataFusion's type coercion.
#[derive(Debug, Default)]
pub struct PgArithmetic;

impl AnalyzerRule for PgArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = merge_schema(&plan.inputs());
            if let LogicalPlan::TableScan(scan) = &plan {
                schema.merge(&DFSchema::try_from_qualified_schema(
                    scan.table_name.clone(),
                    &scan.source.schema(),
                )?);
            }
            // The functions would change the expressions' generated names; keep the names
            // the plan's schema was built with.
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let saved = names.save(&expr);
                Ok(expr
                    .transform_up(|e| rewrite(e, &schema))?
                    .update_data(|e| saved.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pg_arithmetic"
    }
}

/// `expr` (over `schema`, its types coerced) with [`PgArithmetic`]'s replacements.
pub fn checked(expr: Expr, schema: &DFSchema) -> Result<Expr> {
    Ok(expr.transform_up(|e| rewrite(e, schema))?.data)
}

fn rewrite(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match &expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let Some(op) = Op::of(*op) else {
                return Ok(Transformed::no(expr));
            };
            // An expression whose type cannot be told here (an outer reference of a
            // correlated subquery) stays as it is.
            let (Ok(l), Ok(r)) = (left.get_type(schema), right.get_type(schema)) else {
                return Ok(Transformed::no(expr));
            };
            let checked = l == r
                && match l {
                    DataType::Int16 | DataType::Int32 | DataType::Int64 => true,
                    // Types PostgreSQL lacks, reached through arrow_cast or system tables:
                    // checked as well, never wrapped around.
                    DataType::Int8
                    | DataType::UInt8
                    | DataType::UInt16
                    | DataType::UInt32
                    | DataType::UInt64 => true,
                    // Float addition and multiplication overflow to infinity, division by
                    // zero too; PostgreSQL raises errors for both.
                    DataType::Float32 | DataType::Float64 => true,
                    _ => false,
                };
            if !checked {
                return Ok(Transformed::no(expr));
            }
            let Expr::BinaryExpr(BinaryExpr { left, right, .. }) = expr else {
                unreachable!("matched above")
            };
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(
                    Arc::new(ScalarUDF::new_from_impl(Checked::new(op))),
                    vec![*left, *right],
                ),
            )))
        }
        Expr::Cast(Cast { expr: inner, field }) => {
            let target = field.data_type();
            let Ok(source) = inner.get_type(schema) else {
                return Ok(Transformed::no(expr));
            };
            if let Some(cast) = super::float_cast::cast(inner, &source, target) {
                return Ok(Transformed::yes(cast));
            }
            if !rounded_to_int(target, &source) {
                return Ok(Transformed::no(expr));
            }
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(
                    Arc::new(ScalarUDF::new_from_impl(RoundToInt::new(target.clone()))),
                    vec![inner.as_ref().clone()],
                ),
            )))
        }
        // PostgreSQL's concat prints a boolean as its output function does: `t` or `f`.
        Expr::ScalarFunction(f)
            if matches!(f.func.name(), "concat" | "concat_ws")
                && f.args.iter().any(|a| boolean_text(a, schema).is_some()) =>
        {
            let args = f
                .args
                .iter()
                .map(|a| boolean_text(a, schema).unwrap_or_else(|| a.clone()))
                .collect();
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(f.func.clone(), args),
            )))
        }
        // PostgreSQL's trunc of a numeric has the scale of the digits it keeps (`42.43`,
        // not `42.4300`).
        Expr::ScalarFunction(f) if f.func.name() == "trunc" => {
            let Ok(DataType::Decimal128(precision, scale)) = f.args[0].get_type(schema) else {
                return Ok(Transformed::no(expr));
            };
            let kept = match f.args.get(1).map(constant) {
                None => 0,
                Some(Some(value)) => match value.cast_to(&DataType::Int64) {
                    Ok(datafusion::scalar::ScalarValue::Int64(Some(n))) => n.clamp(0, scale as i64),
                    _ => return Ok(Transformed::no(expr)),
                },
                // A number of places that is not a constant: the scale stays the input's.
                Some(None) => return Ok(Transformed::no(expr)),
            };
            Ok(Transformed::yes(Expr::Cast(Cast::new(
                Box::new(expr),
                DataType::Decimal128(precision, kept as i8),
            ))))
        }
        Expr::ScalarFunction(f) if f.func.name() == "round" && f.args.len() == 1 => {
            if !matches!(
                f.args[0].get_type(schema),
                Ok(DataType::Float32 | DataType::Float64)
            ) {
                return Ok(Transformed::no(expr));
            }
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(
                    Arc::new(ScalarUDF::new_from_impl(RoundHalfEven::default())),
                    f.args.clone(),
                ),
            )))
        }
        _ => Ok(Transformed::no(expr)),
    }
}

/// The value of a constant, seen through the casts that typing put around it.
fn constant(expr: &Expr) -> Option<datafusion::scalar::ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value.clone()),
        Expr::Cast(Cast { expr, .. }) => constant(expr),
        Expr::Negative(expr) => constant(expr)?.arithmetic_negate().ok(),
        _ => None,
    }
}

/// `CASE b WHEN true THEN 't' WHEN false THEN 'f' END` for a boolean `arg`, or a boolean
/// that type coercion cast to text for a string function.
fn boolean_text(arg: &Expr, schema: &DFSchema) -> Option<Expr> {
    let boolean = match arg {
        Expr::Cast(Cast { expr, .. }) if matches!(expr.get_type(schema), Ok(DataType::Boolean)) => {
            expr.as_ref()
        }
        other if matches!(other.get_type(schema), Ok(DataType::Boolean)) => other,
        _ => return None,
    };
    Some(Expr::Case(Case {
        expr: Some(Box::new(boolean.clone())),
        when_then_expr: vec![
            (Box::new(lit(true)), Box::new(lit("t"))),
            (Box::new(lit(false)), Box::new(lit("f"))),
        ],
        else_expr: None,
    }))
}

/// `round(x)` of a float: half to even, as PostgreSQL's (the C library's `rint`) rounds
/// (`round(2.5::float8)` is 2), where DataFusion's rounds half away from zero. (A numeric
/// rounds half away from zero in both.)
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RoundHalfEven {
    signature: Signature,
}

impl Default for RoundHalfEven {
    fn default() -> RoundHalfEven {
        RoundHalfEven {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RoundHalfEven {
    fn name(&self) -> &str {
        "pg_round_half_even"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let values = ColumnarValue::values_to_arrays(&args.args)?.remove(0);
        let result: ArrayRef = match values.data_type() {
            DataType::Float64 => Arc::new(
                values
                    .as_primitive::<Float64Type>()
                    .unary::<_, Float64Type>(f64::round_ties_even),
            ),
            DataType::Float32 => Arc::new(
                values
                    .as_primitive::<Float32Type>()
                    .unary::<_, Float32Type>(f32::round_ties_even),
            ),
            other => {
                return Err(DataFusionError::Internal(format!(
                    "{} of {other}",
                    self.name()
                )))
            }
        };
        Ok(match scalar {
            true => {
                ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&result, 0)?)
            }
            false => ColumnarValue::Array(result),
        })
    }
}

/// The operators that are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Op {
    fn of(op: Operator) -> Option<Op> {
        Some(match op {
            Operator::Plus => Op::Add,
            Operator::Minus => Op::Sub,
            Operator::Multiply => Op::Mul,
            Operator::Divide => Op::Div,
            Operator::Modulo => Op::Rem,
            _ => return None,
        })
    }

    /// The function's name, which is also how plans show it.
    fn name(self) -> &'static str {
        match self {
            Op::Add => "pg_add",
            Op::Sub => "pg_sub",
            Op::Mul => "pg_mul",
            Op::Div => "pg_div",
            Op::Rem => "pg_mod",
        }
    }
}

/// The operator a function made by [`PgArithmetic`] stands for, by the function's name (for
/// code that reasons about expressions, such as whether one keeps time's order).
pub fn operator_of(function_name: &str) -> Option<Operator> {
    Some(match function_name {
        "pg_add" => Operator::Plus,
        "pg_sub" => Operator::Minus,
        "pg_mul" => Operator::Multiply,
        "pg_div" => Operator::Divide,
        "pg_mod" => Operator::Modulo,
        _ => return None,
    })
}

/// `a op b` of two integers or two floats of the same type, raising PostgreSQL's errors
/// where DataFusion's operator would wrap or give infinity.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Checked {
    op: Op,
    signature: Signature,
}

impl Checked {
    fn new(op: Op) -> Checked {
        Checked {
            op,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // A constant operand stays one value (Arrow's kernels take it as a scalar), not an
        // array of the batch's length.
        let operand = |v: &ColumnarValue| -> Result<(ArrayRef, bool)> {
            Ok(match v {
                ColumnarValue::Array(a) => (a.clone(), false),
                ColumnarValue::Scalar(s) => (s.to_array_of_size(1)?, true),
            })
        };
        let (left, left_scalar) = operand(&args.args[0])?;
        let (right, right_scalar) = operand(&args.args[1])?;
        let result = apply(self.op, (&left, left_scalar), (&right, right_scalar))?;
        Ok(match left_scalar && right_scalar {
            true => {
                ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&result, 0)?)
            }
            false => ColumnarValue::Array(result),
        })
    }
}

/// An operand: its values, and whether it is one value standing for every row.
type Operand<'a> = (&'a ArrayRef, bool);

fn apply(op: Op, left: Operand, right: Operand) -> Result<ArrayRef> {
    let datum = |(values, scalar): Operand| -> Box<dyn Datum> {
        match scalar {
            true => Box::new(Scalar::new(values.clone())),
            false => Box::new(values.clone()),
        }
    };
    let (l, r) = (datum(left), datum(right));
    let ty = left.0.data_type().clone();
    let float = matches!(ty, DataType::Float32 | DataType::Float64);
    if float && matches!(op, Op::Div | Op::Rem) && has_zero(right.0) {
        return Err(SqlStateError::new(DIVISION_BY_ZERO, "division by zero").into());
    }
    let result = match op {
        Op::Add => numeric::add(l.as_ref(), r.as_ref()),
        Op::Sub => numeric::sub(l.as_ref(), r.as_ref()),
        Op::Mul => numeric::mul(l.as_ref(), r.as_ref()),
        Op::Div => numeric::div(l.as_ref(), r.as_ref()),
        Op::Rem => numeric::rem(l.as_ref(), r.as_ref()),
    }
    .map_err(|e| match e {
        ArrowError::DivideByZero => SqlStateError::new(DIVISION_BY_ZERO, "division by zero").into(),
        ArrowError::ArithmeticOverflow(_) => out_of_range(&ty),
        other => DataFusionError::ArrowError(Box::new(other), None),
    })?;
    if float {
        if let Some(problem) = out_of_float_range(op, left.0, right.0, &result) {
            return Err(SqlStateError::new(
                NUMERIC_VALUE_OUT_OF_RANGE,
                format!("value out of range: {problem}"),
            )
            .into());
        }
    }
    Ok(result)
}

/// PostgreSQL's error for an integer result that does not fit its type.
fn out_of_range(ty: &DataType) -> DataFusionError {
    let name = match ty {
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        _ => "value",
    };
    SqlStateError::new(NUMERIC_VALUE_OUT_OF_RANGE, format!("{name} out of range")).into()
}

/// Whether a float array holds a zero (NULLs aside).
fn has_zero(values: &ArrayRef) -> bool {
    as_f64(values).is_some_and(|v| v.iter().any(|v| v == Some(0.0)))
}

/// PostgreSQL's float range errors: `overflow` where finite operands give an infinite
/// result, `underflow` where a product or quotient of non-zero finite operands is zero.
/// An operand of one value stands for every row.
fn out_of_float_range(
    op: Op,
    left: &ArrayRef,
    right: &ArrayRef,
    result: &ArrayRef,
) -> Option<&'static str> {
    let (l, r, out) = (as_f64(left)?, as_f64(right)?, as_f64(result)?);
    let at = |v: &Float64Array, i: usize| {
        let i = if v.len() == 1 { 0 } else { i };
        v.is_valid(i).then(|| v.value(i))
    };
    (0..out.len()).find_map(|i| {
        let (a, b, c) = (at(&l, i)?, at(&r, i)?, at(&out, i)?);
        if !(a.is_finite() && b.is_finite()) {
            return None;
        }
        if !c.is_finite() {
            return Some("overflow");
        }
        let shrinks = matches!(op, Op::Mul | Op::Div);
        (shrinks && c == 0.0 && a != 0.0 && b != 0.0).then_some("underflow")
    })
}

/// A float array's values as `f64` (a `real` one widened, which keeps every value).
fn as_f64(values: &ArrayRef) -> Option<Float64Array> {
    match values.data_type() {
        DataType::Float64 => Some(values.as_primitive::<Float64Type>().clone()),
        DataType::Float32 => Some(values.as_primitive::<Float32Type>().unary(|v| v as f64)),
        _ => None,
    }
}

/// Whether a cast from `source` to `target` is one [`RoundToInt`] makes: a float or numeric
/// to an integer, or arrays of them (at any depth) to arrays of integers.
fn rounded_to_int(target: &DataType, source: &DataType) -> bool {
    match (target, source) {
        (DataType::List(to), DataType::List(from)) => {
            rounded_to_int(to.data_type(), from.data_type())
        }
        _ => {
            matches!(target, DataType::Int16 | DataType::Int32 | DataType::Int64)
                && matches!(
                    source,
                    DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _)
                )
        }
    }
}

/// `CAST(x AS int2 | int4 | int8)` of a float or numeric: rounded as PostgreSQL rounds (a
/// float half to even, a numeric half away from zero) and range-checked (22003).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RoundToInt {
    target: DataType,
    name: String,
    signature: Signature,
}

impl RoundToInt {
    fn new(target: DataType) -> RoundToInt {
        RoundToInt {
            name: format!("pg_round_to_{}", int_name(&target)),
            target,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

fn int_name(ty: &DataType) -> String {
    match ty {
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::List(item) => format!("{}_array", int_name(item.data_type())),
        _ => "bigint".into(),
    }
}

impl ScalarUDFImpl for RoundToInt {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.target.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let values = ColumnarValue::values_to_arrays(&args.args)?.remove(0);
        let result = self.round(&values, &self.target)?;
        Ok(match scalar {
            true => {
                ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&result, 0)?)
            }
            false => ColumnarValue::Array(result),
        })
    }
}

impl RoundToInt {
    /// `values` rounded to integers of type `target`, or 22003 where one is out of its range;
    /// an array's elements each (`ARRAY[1.5, 2.5]::int[]` is {2,3}), at any depth.
    fn round(&self, values: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
        if let (DataType::List(item), DataType::List(_)) = (target, values.data_type()) {
            let list = values.as_list::<i32>();
            let rounded = self.round(list.values(), item.data_type())?;
            return Ok(Arc::new(datafusion::arrow::array::ListArray::try_new(
                item.clone(),
                list.offsets().clone(),
                rounded,
                list.nulls().cloned(),
            )?));
        }
        let (min, max) = match target {
            DataType::Int16 => (i16::MIN as i128, i16::MAX as i128),
            DataType::Int32 => (i32::MIN as i128, i32::MAX as i128),
            _ => (i64::MIN as i128, i64::MAX as i128),
        };
        let out_of_range = || out_of_range(target);
        let rounded: Vec<Option<i128>> = match values.data_type() {
            DataType::Float64 | DataType::Float32 => {
                let floats = as_f64(values).expect("a float array");
                floats
                    .iter()
                    .map(|v| match v {
                        None => Ok(None),
                        Some(v) => {
                            let r = v.round_ties_even();
                            // NaN and infinities are out of every integer's range too.
                            if r.is_finite() && r >= min as f64 && r <= max as f64 {
                                Ok(Some(r as i128))
                            } else {
                                Err(out_of_range())
                            }
                        }
                    })
                    .collect::<Result<_>>()?
            }
            DataType::Decimal128(_, scale) if *scale >= 0 => {
                let unit = 10i128.pow(*scale as u32);
                values
                    .as_primitive::<Decimal128Type>()
                    .iter()
                    .map(|v| {
                        v.map(|v| {
                            let (q, r) = (v / unit, v % unit);
                            // Half away from zero; the remainder's half is compared without
                            // doubling it, which could overflow at scale 38.
                            match r.unsigned_abs() >= unit.unsigned_abs() - r.unsigned_abs() {
                                true => q + v.signum(),
                                false => q,
                            }
                        })
                    })
                    .collect()
            }
            DataType::Decimal128(_, scale) => {
                // A negative scale counts tens: the value is an integer already.
                let factor = 10i128.pow(scale.unsigned_abs() as u32);
                values
                    .as_primitive::<Decimal128Type>()
                    .iter()
                    .map(|v| {
                        v.map(|v| v.checked_mul(factor).ok_or_else(out_of_range))
                            .transpose()
                    })
                    .collect::<Result<_>>()?
            }
            other => {
                return Err(DataFusionError::Internal(format!(
                    "{} of {other}",
                    self.name
                )))
            }
        };
        if rounded.iter().flatten().any(|v| *v < min || *v > max) {
            return Err(out_of_range());
        }
        let result: ArrayRef = match target {
            DataType::Int16 => Arc::new(
                rounded
                    .iter()
                    .map(|v| v.map(|v| v as i16))
                    .collect::<datafusion::arrow::array::PrimitiveArray<Int16Type>>(),
            ),
            DataType::Int32 => Arc::new(
                rounded
                    .iter()
                    .map(|v| v.map(|v| v as i32))
                    .collect::<datafusion::arrow::array::PrimitiveArray<Int32Type>>(),
            ),
            _ => Arc::new(
                rounded
                    .iter()
                    .map(|v| v.map(|v| v as i64))
                    .collect::<datafusion::arrow::array::PrimitiveArray<Int64Type>>(),
            ),
        };
        Ok(result)
    }
}
