//! PostgreSQL's `scale`, `min_scale` and `trim_scale` of numerics.
//!
//! `scale(x)` is the places `x` is shown with: in Henge a numeric column's (or constant's)
//! scale, which is what Henge shows. `min_scale(x)` is the fewest places that hold the
//! value exactly. `trim_scale(x)` is the value with those places, so its type's scale
//! depends on the value: Henge answers it for a constant, and for a column whose scale is
//! already 0, and refuses it (0A000) over a column of another scale rather than showing
//! the column's trailing zeros.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Decimal128Array, Int32Array};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef};
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::scalar::ScalarValue;

use super::{no_such_function, on_arrays, SqlStateError};

/// Registers the three functions.
pub fn register(ctx: &SessionContext) {
    for kind in [Kind::Scale, Kind::MinScale, Kind::TrimScale] {
        ctx.register_udf(ScalarUDF::new_from_impl(ScaleFunction {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Scale,
    MinScale,
    TrimScale,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ScaleFunction {
    kind: Kind,
    signature: Signature,
}

/// The fewest places that show `value` (unscaled, at `scale`) exactly.
fn min_scale(value: i128, scale: i8) -> i8 {
    if value == 0 {
        return 0;
    }
    let mut places = scale;
    let mut v = value;
    while places > 0 && v % 10 == 0 {
        v /= 10;
        places -= 1;
    }
    places
}

impl ScalarUDFImpl for ScaleFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Scale => "scale",
            Kind::MinScale => "min_scale",
            Kind::TrimScale => "trim_scale",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t @ DataType::Decimal128(..)] => Ok(vec![t.clone()]),
            [t] if t.is_integer() || *t == DataType::Null => Ok(vec![DataType::Decimal128(20, 0)]),
            _ => Err(no_such_function(self.name(), arg_types)),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Scale | Kind::MinScale => DataType::Int32,
            Kind::TrimScale => arg_types[0].clone(),
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let input = args.arg_fields[0].data_type();
        let data_type = match (self.kind, input) {
            (Kind::Scale | Kind::MinScale, _) => DataType::Int32,
            (Kind::TrimScale, DataType::Decimal128(_, 0)) => input.clone(),
            (Kind::TrimScale, _) => match args.scalar_arguments.first().copied().flatten() {
                Some(ScalarValue::Decimal128(Some(v), p, s)) => {
                    let places = min_scale(*v, *s);
                    DataType::Decimal128((*p - (*s - places) as u8).max(1), places)
                }
                Some(ScalarValue::Decimal128(None, ..)) => input.clone(),
                _ => {
                    return Err(SqlStateError::new(
                        "0A000",
                        "trim_scale of a numeric column with places is not supported: its \
                         values' places differ row by row",
                    )
                    .into())
                }
            },
        };
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let kind = self.kind;
        let target = args.return_field.data_type().clone();
        on_arrays(&args, move |arrays| {
            let values = arrays[0].as_primitive::<Decimal128Type>();
            let scale = values.scale();
            Ok(match (kind, &target) {
                (Kind::Scale, _) => Arc::new(
                    values
                        .iter()
                        .map(|v| v.map(|_| i32::from(scale)))
                        .collect::<Int32Array>(),
                ) as ArrayRef,
                (Kind::MinScale, _) => Arc::new(
                    values
                        .iter()
                        .map(|v| v.map(|v| i32::from(min_scale(v, scale))))
                        .collect::<Int32Array>(),
                ),
                (Kind::TrimScale, DataType::Decimal128(p, s)) => {
                    let divisor = 10i128.pow((scale - *s).max(0) as u32);
                    Arc::new(
                        values
                            .iter()
                            .map(|v| v.map(|v| v / divisor))
                            .collect::<Decimal128Array>()
                            .with_precision_and_scale(*p, *s)?,
                    )
                }
                (Kind::TrimScale, _) => Arc::new(values.clone()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::min_scale;

    #[test]
    fn fewest_places() {
        assert_eq!(min_scale(84100, 4), 2);
        assert_eq!(min_scale(0, 3), 0);
        assert_eq!(min_scale(1000, 2), 0);
        assert_eq!(min_scale(-1050, 3), 2);
        assert_eq!(min_scale(7, 0), 0);
    }
}
