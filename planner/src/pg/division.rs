//! `numeric / numeric` to PostgreSQL's number of decimal places.
//!
//! DataFusion gives a quotient four more places than the dividend has, so `1 / 3.0` is
//! `0.3333`. PostgreSQL chooses the places from the operands' values: at least 16
//! significant digits, and never fewer places than either operand shows (`1 / 3.0` is
//! `0.33333333333333333333`, `10 / 4.0` is `2.5000000000000000`), rounding the last half
//! away from zero. A numeric there carries its own number of places, value by value; an
//! Arrow decimal has one scale for the whole column. So [`NumericDiv`] rounds each quotient
//! where PostgreSQL would round it and keeps it at a scale fixed when the query is planned:
//! exactly PostgreSQL's when both operands are constants, and otherwise 20 places (or
//! the operands' own, if more). A quotient over a column thus has PostgreSQL's value,
//! printed with trailing zeros, where PostgreSQL chooses at most that many places; where
//! it would choose more (quotients below about 1e-4) the value is rounded at the 20th,
//! and a quotient whose integer digits do not fit beside the places is refused (22003).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use datafusion::arrow::datatypes::{i256, DataType, Decimal128Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

use super::display::{display_array, display_type, numeric_text, quotient_at};
use super::{on_arrays, SqlStateError};
use num_bigint::BigInt;
use num_traits::Zero;

/// PostgreSQL's NUMERIC_MIN_SIG_DIGITS: a quotient has at least this many significant digits.
const MIN_SIGNIFICANT_DIGITS: i32 = 16;
/// PostgreSQL's numeric digits are base 10000: four decimal digits each.
const DIGITS_PER_WORD: i32 = 4;
/// The places a quotient over a column keeps.
const COLUMN_SCALE: i32 = 20;
/// The most decimal digits an Arrow Decimal128 holds.
const MAX_PRECISION: i32 = 38;

/// The quotient of two decimals, typed `Decimal128(38, scale)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NumericDiv {
    scale: i8,
    /// Whether `scale` is PostgreSQL's (both operands constants).
    exact: bool,
    /// Whether the quotient is a display numeric (see [`super::display`]).
    display: bool,
    /// Whether the operands' own scales come as a third and fourth argument.
    scaled: bool,
    signature: Signature,
}

impl NumericDiv {
    /// The division of operands of types `left` and `right` (both decimals), whose values
    /// are given where they are constants.
    pub fn new(left: (i8, Option<i128>), right: (i8, Option<i128>)) -> NumericDiv {
        let (s1, v1) = left;
        let (s2, v2) = right;
        let exact = matches!((v1, v2), (Some(_), Some(v2)) if v2 != 0);
        let scale = match (v1, v2) {
            (Some(v1), Some(v2)) if v2 != 0 => {
                let places = pg_scale((v1, s1), (v2, s2));
                let integer_digits = integer_digits(v1, s1, v2, s2);
                places.min(MAX_PRECISION - integer_digits).max(0)
            }
            // A quotient too large for the places left before the point is an error
            // (22003) when it is computed, never fewer places.
            _ => COLUMN_SCALE
                .max(s1 as i32)
                .max(s2 as i32)
                .min(MAX_PRECISION),
        };
        NumericDiv {
            scale: scale as i8,
            exact,
            display: false,
            scaled: false,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    /// This quotient giving display numerics, unless its scale is PostgreSQL's already.
    pub(crate) fn display(&self) -> Option<NumericDiv> {
        (!self.exact).then(|| NumericDiv {
            display: true,
            ..self.clone()
        })
    }

    /// This quotient giving display numerics of operands whose values have scales of
    /// their own (stored unconstrained numerics'), given as a third and fourth argument:
    /// PostgreSQL chooses the places from those.
    pub(crate) fn scaled_display(&self) -> NumericDiv {
        NumericDiv {
            display: true,
            exact: false,
            scaled: true,
            signature: Signature::any(4, Volatility::Immutable),
            ..self.clone()
        }
    }

    /// Whether this is a [`NumericDiv::scaled_display`].
    pub(crate) fn is_scaled(&self) -> bool {
        self.scaled
    }
}

/// `left / right` as PostgreSQL divides numerics, when one operand is a numeric and the
/// other a numeric or an integer (which is a numeric with no places); `None` otherwise. Planned with the query, so every plan above sees the quotient's type.
pub fn plan(
    left: &Expr,
    left_type: &DataType,
    right: &Expr,
    right_type: &DataType,
) -> Option<Expr> {
    let decimal = |t: &DataType| match t {
        DataType::Decimal128(p, s) => Some((*p, *s)),
        DataType::Int8 | DataType::Int16 => Some((5, 0)),
        DataType::Int32 => Some((10, 0)),
        // A bigint (or a sum of them, a numeric of 38 digits once typed) as a numeric.
        DataType::Int64 => Some((38, 0)),
        _ => None,
    };
    let numeric = matches!(left_type, DataType::Decimal128(..))
        || matches!(right_type, DataType::Decimal128(..));
    let (Some((p1, s1)), Some((p2, s2)), true) = (decimal(left_type), decimal(right_type), numeric)
    else {
        return None;
    };
    let div = NumericDiv::new((s1, constant(left)), (s2, constant(right)));
    let as_numeric = |e: &Expr, t: &DataType, p: u8, s: i8| match t {
        DataType::Decimal128(..) => e.clone(),
        _ => Expr::Cast(Cast::new(Box::new(e.clone()), DataType::Decimal128(p, s))),
    };
    Some(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(div)),
        vec![
            as_numeric(left, left_type, p1, s1),
            as_numeric(right, right_type, p2, s2),
        ],
    )))
}

/// The unscaled value of a constant operand (`3`, `2.50`, `-1.5`, `10::numeric`; integer
/// constants are planned as casts to `integer`).
fn constant(expr: &Expr) -> Option<i128> {
    match constant_value(expr)? {
        ScalarValue::Decimal128(v, _, _) => v,
        ScalarValue::Int8(v) => v.map(i128::from),
        ScalarValue::Int16(v) => v.map(i128::from),
        ScalarValue::Int32(v) => v.map(i128::from),
        ScalarValue::Int64(v) => v.map(i128::from),
        _ => None,
    }
}

fn constant_value(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value.clone()),
        Expr::Negative(inner) => constant_value(inner)?.arithmetic_negate().ok(),
        Expr::Cast(Cast { expr, field }) => constant_value(expr)?.cast_to(field.data_type()).ok(),
        _ => None,
    }
}

impl ScalarUDFImpl for NumericDiv {
    fn name(&self) -> &str {
        "pg_numeric_div"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        let value = DataType::Decimal128(MAX_PRECISION as u8, self.scale);
        Ok(match self.display {
            true => display_type(value),
            false => value,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let scale_of = |a: &ArrayRef| match a.data_type() {
                DataType::Decimal128(_, s) => Ok(*s),
                other => Err(DataFusionError::Internal(format!(
                    "pg_numeric_div of {other}"
                ))),
            };
            let (s1, s2) = (scale_of(&arrays[0])?, scale_of(&arrays[1])?);
            let (left, right) = (
                arrays[0].as_primitive::<Decimal128Type>(),
                arrays[1].as_primitive::<Decimal128Type>(),
            );
            let out = self.scale as i32;
            let quotients = left
                .iter()
                .zip(right.iter())
                .map(|pair| match pair {
                    (Some(a), Some(b)) => divide((a, s1), (b, s2), out).map(Some),
                    _ => Ok(None),
                })
                .collect::<Result<Decimal128Array>>()?
                .with_precision_and_scale(MAX_PRECISION as u8, self.scale)?;
            if !self.display {
                return Ok(Arc::new(quotients) as ArrayRef);
            }
            // The operands' own scales, where given (else their types').
            let shown = |i: usize| -> Result<Vec<Option<i16>>> {
                Ok(match arrays.get(i) {
                    Some(a) => datafusion::arrow::compute::cast(a, &DataType::Int16)?
                        .as_primitive::<datafusion::arrow::datatypes::Int16Type>()
                        .iter()
                        .collect(),
                    None => vec![None; left.len()],
                })
            };
            let (d1, d2) = (shown(2)?, shown(3)?);
            // PostgreSQL's text of each quotient, at its own places.
            let texts = left
                .iter()
                .zip(right.iter())
                .enumerate()
                .map(|(row, pair)| match pair {
                    (Some(a), Some(b)) => {
                        let (s1, s2) = (s1 as i32, s2 as i32);
                        let (a, b) = (i256::from_i128(a), i256::from_i128(b));
                        let places = pg_scale_shown(
                            (a, s1),
                            d1[row].map_or(s1, i32::from),
                            (b, s2),
                            d2[row].map_or(s2, i32::from),
                        );
                        let big = |v: i128| BigInt::from(v);
                        let a = big(a.as_i128());
                        let value = quotient_at(a, s1, &big(b.as_i128()), s2, places);
                        Some(numeric_text(&value, places))
                    }
                    _ => None,
                })
                .collect();
            Ok(display_array(quotients, texts))
        })
    }
}

/// `a / b` (each an unscaled value and its scale) rounded half away from zero at the
/// places PostgreSQL chooses (at most `out`) and given at scale `out`.
fn divide((a, s1): (i128, i8), (b, s2): (i128, i8), out: i32) -> Result<i128> {
    divide_wide(
        (i256::from_i128(a), s1 as i32),
        (i256::from_i128(b), s2 as i32),
        out,
    )
}

/// [`divide`] of wider operands (exact sums).
pub(crate) fn divide_wide((a, s1): (i256, i32), (b, s2): (i256, i32), out: i32) -> Result<i128> {
    if b == i256::ZERO {
        return Err(SqlStateError::new("22012", "division by zero").into());
    }
    let places = pg_scale_wide((a, s1), (b, s2)).min(out);
    // a / 10^s1 ÷ b / 10^s2 at `places` places: a·10^(places+s2-s1) ÷ b.
    let shift = places + s2 - s1;
    let overflow = || -> DataFusionError {
        SqlStateError::new("22003", "value overflows numeric format").into()
    };
    let (mut numerator, mut denominator) = (a, b);
    let ten = i256::from_i128(10);
    let power = |n: i32| ten.checked_pow(n.unsigned_abs()).ok_or_else(overflow);
    if shift >= 0 {
        numerator = numerator.checked_mul(power(shift)?).ok_or_else(overflow)?;
    } else {
        denominator = denominator
            .checked_mul(power(shift)?)
            .ok_or_else(overflow)?;
    }
    let quotient = numerator.checked_div(denominator).ok_or_else(overflow)?;
    let remainder = numerator.checked_rem(denominator).ok_or_else(overflow)?;
    // Half away from zero: twice the remainder against the divisor, in magnitude.
    let twice = remainder.wrapping_abs().checked_mul(i256::from_i128(2));
    let round_up = twice.is_some_and(|t| t >= denominator.wrapping_abs());
    let rounded = match round_up {
        true if numerator.is_negative() != denominator.is_negative() => {
            quotient.wrapping_sub(i256::ONE)
        }
        true => quotient.wrapping_add(i256::ONE),
        false => quotient,
    };
    let value = rounded
        .checked_mul(power(out - places)?)
        .and_then(|v| v.to_i128())
        .ok_or_else(overflow)?;
    if value.unsigned_abs() >= 10u128.pow(MAX_PRECISION as u32) {
        return Err(overflow());
    }
    Ok(value)
}

/// The places PostgreSQL's `select_div_scale` chooses for `a / b`.
fn pg_scale((a, s1): (i128, i8), (b, s2): (i128, i8)) -> i32 {
    pg_scale_wide(
        (i256::from_i128(a), s1 as i32),
        (i256::from_i128(b), s2 as i32),
    )
}

/// [`pg_scale`] of wider operands.
pub(crate) fn pg_scale_wide((a, s1): (i256, i32), (b, s2): (i256, i32)) -> i32 {
    div_scale(word_weight(a, s1), s1, word_weight(b, s2), s2)
}

/// [`pg_scale_wide`] of operands held at `s1` and `s2` places whose own scales
/// (PostgreSQL's display scales) are `d1` and `d2`.
pub(crate) fn pg_scale_shown((a, s1): (i256, i32), d1: i32, (b, s2): (i256, i32), d2: i32) -> i32 {
    div_scale(word_weight(a, s1), d1, word_weight(b, s2), d2)
}

/// [`pg_scale`] of operands of any size (JSON path arithmetic).
pub(crate) fn pg_scale_big((a, s1): (&BigInt, i32), (b, s2): (&BigInt, i32)) -> i32 {
    let weight = |v: &BigInt, s: i32| match v.is_zero() {
        true => (0, 0),
        false => digits_word_weight(&v.magnitude().to_string(), s),
    };
    div_scale(weight(a, s1), s1, weight(b, s2), s2)
}

/// The places of a quotient from its operands' first words and weights and their scales.
fn div_scale((w1, d1): (i32, i128), s1: i32, (w2, d2): (i32, i128), s2: i32) -> i32 {
    // The quotient's weight in words; with equal first words, assume a < b.
    let mut weight = w1 - w2;
    if d1 <= d2 {
        weight -= 1;
    }
    (MIN_SIGNIFICANT_DIGITS - weight * DIGITS_PER_WORD)
        .max(s1)
        .max(s2)
        .clamp(0, 1000)
}

/// The weight of a value's first nonzero base-10000 word, and that word (0, 0 for zero).
fn word_weight(value: i256, scale: i32) -> (i32, i128) {
    if let Some(narrow) = value.to_i128() {
        return narrow_word_weight(narrow, scale);
    }
    digits_word_weight(&value.wrapping_abs().to_string(), scale)
}

/// [`word_weight`] of a nonzero value written as its decimal digits.
fn digits_word_weight(digits: &str, scale: i32) -> (i32, i128) {
    // The power of ten of the first digit: n·10^-scale is in [10^e, 10^(e+1)).
    let e = digits.len() as i32 - 1 - scale;
    let weight = e.div_euclid(DIGITS_PER_WORD);
    // The first word's digits: those down to the power 10^(4·weight).
    let width = (e - DIGITS_PER_WORD * weight + 1) as usize;
    let word = digits
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(width)
        .fold(0i128, |w, d| w * 10 + i128::from(d - b'0'));
    (weight, word)
}

/// [`word_weight`] of a value that fits 128 bits, without writing it out.
fn narrow_word_weight(value: i128, scale: i32) -> (i32, i128) {
    let n = value.unsigned_abs();
    if n == 0 {
        return (0, 0);
    }
    let e = n.ilog10() as i32 - scale;
    let weight = e.div_euclid(DIGITS_PER_WORD);
    let shift = scale + DIGITS_PER_WORD * weight;
    let word = match shift >= 0 {
        true => n / 10u128.pow(shift as u32),
        false => n * 10u128.pow(shift.unsigned_abs()),
    };
    (weight, word as i128)
}

/// The digits before the decimal point of `a / b`.
fn integer_digits(a: i128, s1: i8, b: i128, s2: i8) -> i32 {
    let e = |n: i128, s: i8| n.unsigned_abs().ilog10() as i32 - s as i32;
    match a {
        0 => 1,
        _ => (e(a, s1) - e(b, s2) + 1).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotient(a: (i128, i8), b: (i128, i8)) -> String {
        let div = NumericDiv::new((a.1, Some(a.0)), (b.1, Some(b.0)));
        let value = divide(a, b, div.scale as i32).unwrap();
        Decimal128Type::format_decimal(value, 38, div.scale)
    }

    use datafusion::arrow::datatypes::DecimalType;

    #[test]
    fn places_are_postgresqls() {
        // Each answer is PostgreSQL 15's.
        assert_eq!(quotient((1, 0), (30, 1)), "0.33333333333333333333");
        assert_eq!(quotient((10, 0), (40, 1)), "2.5000000000000000");
        assert_eq!(quotient((2, 0), (3, 0)), "0.66666666666666666667");
        assert_eq!(quotient((-2, 0), (3, 0)), "-0.66666666666666666667");
        assert_eq!(quotient((1000000, 0), (3, 0)), "333333.333333333333");
        assert_eq!(quotient((1, 0), (30000, 0)), "0.000033333333333333333333");
        assert_eq!(quotient((7, 0), (7, 0)), "1.00000000000000000000");
        assert_eq!(quotient((0, 0), (5, 0)), "0.00000000000000000000");
        assert_eq!(quotient((12345, 2), (-5, 1)), "-246.9000000000000000");
        assert_eq!(quotient((5, 2), (1, 0)), "0.05000000000000000000");
    }

    #[test]
    fn a_column_quotient_keeps_postgresqls_value() {
        // 10 / 4.0 at 20 places: PostgreSQL's 2.5000000000000000 with four more zeros.
        assert_eq!(divide((10, 0), (40, 1), 20).unwrap(), 25 * 10i128.pow(19));
        // 1 / 3 rounds at PostgreSQL's 20th place.
        assert_eq!(divide((1, 0), (3, 0), 20).unwrap(), 33333333333333333333);
        assert!(divide((1, 0), (0, 0), 20).is_err());
    }
}
