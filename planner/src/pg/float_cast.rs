//! Casts between `numeric` and the floating-point types as PostgreSQL makes them.
//!
//! A numeric becomes the double nearest its value (Arrow's cast multiplied by a power of
//! ten that is itself rounded: `1e30::float8` was 1.0000000000000002e+30). A double
//! becomes the numeric of its first 15 significant digits (a real, 6), rounded to the
//! target's places half away from zero, as PostgreSQL's `float8_numeric` writes the
//! double with `%.15g` and reads that back (Arrow's cast took the binary value:
//! `1.005::float8::numeric(10,2)` was 1.00 where PostgreSQL says 1.01). Without a scale
//! the numeric keeps 20 places, and a double whose digits need more is refused.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Decimal128Array, Float32Array, Float64Array};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type};
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{on_arrays, SqlStateError};

/// The cast of `inner` (of type `source`) to `target` as PostgreSQL makes it, where it is
/// one between a decimal and a floating-point type; `None` for other casts.
pub fn cast(inner: &Expr, source: &DataType, target: &DataType) -> Option<Expr> {
    let convert = matches!(
        (source, target),
        (
            DataType::Decimal128(..),
            DataType::Float64 | DataType::Float32
        ) | (
            DataType::Float64 | DataType::Float32,
            DataType::Decimal128(..)
        )
    );
    convert.then(|| call(inner, target.clone(), false))
}

/// The places a double cast to `numeric` without a scale keeps (PostgreSQL's numeric
/// keeps the 15 digits whatever their places; one Arrow decimal has one scale).
pub const UNCONSTRAINED_SCALE: i8 = 20;

/// A double cast to `numeric` without a scale: at [`UNCONSTRAINED_SCALE`] places, and
/// refused (0A000) where its 15 digits need more, rather than rounded further than
/// PostgreSQL rounds.
pub fn unconstrained(inner: &Expr) -> Expr {
    call(inner, DataType::Decimal128(38, UNCONSTRAINED_SCALE), true)
}

/// Whether a function is a double's cast to `numeric` without a scale ([`unconstrained`]).
pub(crate) fn is_unconstrained(f: &dyn ScalarUDFImpl) -> bool {
    f.downcast_ref::<FloatCast>()
        .is_some_and(|c| c.whole && c.target == DataType::Decimal128(38, UNCONSTRAINED_SCALE))
}

/// A double cast to a decimal of type `target`, refused (0A000) where its 15 digits need
/// more places than the target has.
pub fn exact(inner: &Expr, target: DataType) -> Expr {
    call(inner, target, true)
}

fn call(inner: &Expr, target: DataType, whole: bool) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(FloatCast {
            target,
            whole,
            signature: Signature::any(1, Volatility::Immutable),
        })),
        vec![inner.clone()],
    ))
}

/// `pg_float_cast(x)`: `x` as the target type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FloatCast {
    target: DataType,
    /// Whether every significant digit must fit the target's places.
    whole: bool,
    signature: Signature,
}

impl ScalarUDFImpl for FloatCast {
    fn name(&self) -> &str {
        "pg_float_cast"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.target.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let array = &arrays[0];
            Ok(match (array.data_type(), &self.target) {
                (DataType::Decimal128(_, scale), DataType::Float64) => {
                    let values = array.as_primitive::<Decimal128Type>();
                    let doubles: Float64Array = values
                        .iter()
                        .map(|v| v.map(|v| double(v, *scale)))
                        .collect();
                    Arc::new(doubles) as ArrayRef
                }
                (DataType::Decimal128(_, scale), DataType::Float32) => {
                    // The nearest real, from the decimal's text as PostgreSQL reads it.
                    let values = array.as_primitive::<Decimal128Type>();
                    let reals: Float32Array = values
                        .iter()
                        .map(|v| {
                            v.map(|v| {
                                henge_ingest::text::decimal_text(v, *scale)
                                    .parse::<f32>()
                                    .unwrap_or(f32::NAN)
                            })
                        })
                        .collect();
                    Arc::new(reals) as ArrayRef
                }
                (DataType::Float64 | DataType::Float32, DataType::Decimal128(p, s)) => {
                    let digits = match array.data_type() {
                        DataType::Float32 => 6,
                        _ => 15,
                    };
                    let doubles = datafusion::arrow::compute::cast(array, &DataType::Float64)?;
                    let decimals = doubles
                        .as_primitive::<Float64Type>()
                        .iter()
                        .map(|v| {
                            v.map(|v| decimal(v, digits, *p, *s, self.whole))
                                .transpose()
                        })
                        .collect::<Result<Decimal128Array>>()?
                        .with_precision_and_scale(*p, *s)?;
                    Arc::new(decimals) as ArrayRef
                }
                _ => datafusion::arrow::compute::cast(array, &self.target)?,
            })
        })
    }
}

/// The double nearest `v`·10^-scale: exact operands and one rounding where both fit a
/// double's 53 bits, else the correctly rounded reading of the decimal's text.
fn double(v: i128, scale: i8) -> f64 {
    const EXACT: i128 = 1 << 53;
    if (0..=22).contains(&scale) && v.abs() <= EXACT {
        return v as f64 / 10f64.powi(i32::from(scale));
    }
    henge_ingest::text::decimal_text(v, scale)
        .parse::<f64>()
        .unwrap_or(f64::NAN)
}

/// `v` as a decimal of `precision` and `scale`: its first `digits` significant digits,
/// then rounded to the scale half away from zero.
fn decimal(v: f64, digits: usize, precision: u8, scale: i8, whole: bool) -> Result<i128> {
    if !v.is_finite() {
        return Err(SqlStateError::new(
            "0A000",
            format!(
                "cannot convert {} to numeric",
                henge_ingest::text::float8_text(v)
            ),
        )
        .into());
    }
    // `%.{digits-1}e`: the significant digits and their power of ten.
    let text = format!("{v:.prec$e}", prec = digits - 1);
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let significant: i128 = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0, |n, d| n * 10 + i128::from(d - b'0'));
    // value = significant·10^(exponent − (digits − 1)); wanted: value·10^scale.
    let shift = exponent - (digits as i32 - 1) + i32::from(scale);
    let overflow = || -> datafusion::error::DataFusionError {
        SqlStateError::new("22003", "numeric field overflow").into()
    };
    let magnitude = if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| significant.checked_mul(p))
            .ok_or_else(overflow)?
    } else {
        let divisor = 10i128
            .checked_pow(shift.unsigned_abs())
            .unwrap_or(i128::MAX);
        if whole && significant % divisor != 0 {
            return Err(SqlStateError::new(
                "0A000",
                format!(
                    "{} has more places than a numeric without a scale keeps here ({scale}); cast to numeric(p, s)",
                    henge_ingest::text::float8_text(v)
                ),
            )
            .into());
        }
        // Half away from zero.
        (significant + divisor / 2) / divisor
    };
    if magnitude >= 10i128.pow(u32::from(precision)) {
        return Err(overflow());
    }
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_become_postgresqls_numerics() {
        assert_eq!(decimal(1.005, 15, 10, 2, false).unwrap(), 101);
        assert_eq!(decimal(0.285, 15, 10, 2, false).unwrap(), 29);
        assert_eq!(decimal(-2.5, 15, 10, 0, false).unwrap(), -3);
        assert_eq!(
            decimal(123456789012345678.0, 15, 38, 0, false).unwrap(),
            123456789012346000
        );
        assert_eq!(decimal(1e-20, 15, 38, 10, false).unwrap(), 0);
        assert!(decimal(1e30, 15, 20, 0, false).is_err());
        assert_eq!(decimal(f64::from(1.1f32), 6, 10, 3, false).unwrap(), 1100);
        assert_eq!(
            decimal(0.1 / 3.0, 15, 38, 20, true).unwrap(),
            333333333333333 * 10_000
        );
        assert!(decimal(1e-12 / 3.0, 15, 38, 20, true).is_err());
    }

    #[test]
    fn numerics_become_the_nearest_double() {
        assert_eq!(double(1, -30), 1e30);
        assert_eq!(double(10i128.pow(30), 0), 1e30);
        assert_eq!(double(1005, 3), 1.005);
        assert_eq!(double(1, 30), 1e-30);
        assert_eq!(double(-15, 1), -1.5);
    }
}
