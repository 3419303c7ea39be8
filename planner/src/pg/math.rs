//! PostgreSQL's `sign` and `div`, which DataFusion lacks, with PostgreSQL's types: `sign`
//! of a numeric is a numeric and of anything else a double; `div` is the numeric quotient
//! truncated toward zero. `floor` and `ceil` of a numeric have no places.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array};
use datafusion::arrow::datatypes::{i256, DataType, Decimal128Type, Float64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{no_such_function, on_arrays, SqlStateError};

/// Registers `sign` and `div`, and PostgreSQL's `floor`, `ceil` and `ceiling`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Sign::default()));
    ctx.register_udf(ScalarUDF::new_from_impl(Div::default()));
    ctx.register_udf(Rounding::udf("floor", false));
    ctx.register_udf(Rounding::udf("ceil", true));
    ctx.register_udf(Rounding::udf("ceiling", true));
}

/// The numeric type an argument of `div` is read as: decimals as they are, integers with
/// no places, doubles with 16.
fn as_numeric(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Decimal128(..) => Some(t.clone()),
        t if t.is_integer() => Some(DataType::Decimal128(20, 0)),
        DataType::Float32 | DataType::Float64 => Some(DataType::Decimal128(38, 16)),
        DataType::Null => Some(DataType::Decimal128(20, 0)),
        _ => None,
    }
}

/// `sign(x)`: -1, 0 or 1.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Sign {
    signature: Signature,
}

impl Default for Sign {
    fn default() -> Sign {
        Sign {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Sign {
    fn name(&self) -> &str {
        "sign"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Decimal128(..)] => Ok(arg_types.to_vec()),
            [t] if t.is_numeric() || *t == DataType::Null => Ok(vec![DataType::Float64]),
            _ => Err(no_such_function("sign", arg_types)),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types {
            [DataType::Decimal128(..)] => DataType::Decimal128(1, 0),
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            Ok(match arrays[0].data_type() {
                DataType::Decimal128(..) => {
                    let signs: Decimal128Array = arrays[0]
                        .as_primitive::<Decimal128Type>()
                        .iter()
                        .map(|v| v.map(i128::signum))
                        .collect();
                    Arc::new(signs.with_precision_and_scale(1, 0)?)
                }
                _ => {
                    let signs: Float64Array = arrays[0]
                        .as_primitive::<Float64Type>()
                        .iter()
                        .map(|v| {
                            v.map(|v| {
                                if v == 0.0 || v.is_nan() {
                                    0.0
                                } else {
                                    v.signum()
                                }
                            })
                        })
                        .collect();
                    Arc::new(signs)
                }
            })
        })
    }
}

/// `div(y, x)`: the integer quotient of `y / x`, truncated toward zero, as a numeric.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Div {
    signature: Signature,
}

impl Default for Div {
    fn default() -> Div {
        Div {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Div {
    fn name(&self) -> &str {
        "div"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [a, b] => match (as_numeric(a), as_numeric(b)) {
                (Some(a), Some(b)) => Ok(vec![a, b]),
                _ => Err(no_such_function("div", arg_types)),
            },
            _ => Err(no_such_function("div", arg_types)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, 0))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let scale = |a: &ArrayRef| match a.data_type() {
                DataType::Decimal128(_, s) => i32::from(*s),
                _ => 0,
            };
            let (s1, s2) = (scale(&arrays[0]), scale(&arrays[1]));
            let (y, x) = (
                arrays[0].as_primitive::<Decimal128Type>(),
                arrays[1].as_primitive::<Decimal128Type>(),
            );
            let quotients: Decimal128Array = y
                .iter()
                .zip(x.iter())
                .map(|pair| match pair {
                    (Some(y), Some(x)) => truncated_quotient((y, s1), (x, s2)).map(Some),
                    _ => Ok(None),
                })
                .collect::<Result<_>>()?;
            Ok(Arc::new(quotients.with_precision_and_scale(38, 0)?) as ArrayRef)
        })
    }
}

/// `y / x` (unscaled values and their scales) truncated toward zero.
fn truncated_quotient((y, s1): (i128, i32), (x, s2): (i128, i32)) -> Result<i128> {
    if x == 0 {
        return Err(SqlStateError::new("22012", "division by zero").into());
    }
    let overflow = || {
        DataFusionError::from(SqlStateError::new(
            "22003",
            "value overflows numeric format",
        ))
    };
    let ten = i256::from_i128(10);
    // y·10^-s1 ÷ x·10^-s2 = y·10^s2 ÷ x·10^s1.
    let n = i256::from_i128(y)
        .checked_mul(ten.checked_pow(s2.unsigned_abs()).ok_or_else(overflow)?)
        .ok_or_else(overflow)?;
    let d = i256::from_i128(x)
        .checked_mul(ten.checked_pow(s1.unsigned_abs()).ok_or_else(overflow)?)
        .ok_or_else(overflow)?;
    n.checked_div(d)
        .and_then(|q| q.to_i128())
        .ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div_truncates_toward_zero() {
        assert_eq!(truncated_quotient((9, 0), (4, 0)).unwrap(), 2);
        assert_eq!(truncated_quotient((-9, 0), (4, 0)).unwrap(), -2);
        assert_eq!(truncated_quotient((95, 1), (2, 0)).unwrap(), 4);
        assert_eq!(truncated_quotient((7, 0), (25, 1)).unwrap(), 2);
        assert!(truncated_quotient((1, 0), (0, 0)).is_err());
    }
}

/// `floor` and `ceil` (`ceiling`): of a numeric, a numeric without places, as
/// PostgreSQL's (DataFusion's keep the argument's scale: `floor(1.5)` would print `1.0`);
/// of anything else, DataFusion's.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Rounding {
    name: &'static str,
    ceil: bool,
    inner: Arc<ScalarUDF>,
}

impl Rounding {
    fn udf(name: &'static str, ceil: bool) -> ScalarUDF {
        let inner = match ceil {
            true => datafusion::functions::math::ceil(),
            false => datafusion::functions::math::floor(),
        };
        ScalarUDF::new_from_impl(Rounding { name, ceil, inner })
    }
}

impl ScalarUDFImpl for Rounding {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Decimal128(..)] => Ok(arg_types.to_vec()),
            _ => self.inner.coerce_types(arg_types),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::Decimal128(..)] => Ok(DataType::Decimal128(38, 0)),
            _ => self.inner.return_type(arg_types),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::Decimal128(_, scale) = args.arg_fields[0].data_type().clone() else {
            return self.inner.invoke_with_args(args);
        };
        let ceil = self.ceil;
        on_arrays(&args, |arrays| {
            let unit = 10i128.pow(u32::from(scale.max(0) as u8));
            let whole = arrays[0]
                .as_primitive::<Decimal128Type>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        let down = v.div_euclid(unit);
                        match ceil && v.rem_euclid(unit) != 0 {
                            true => down + 1,
                            false => down,
                        }
                    })
                })
                .collect::<Decimal128Array>()
                .with_precision_and_scale(38, 0)?;
            Ok(Arc::new(whole) as ArrayRef)
        })
    }
}
