//! `numeric` without a precision and scale, as in a cast (`1.5::numeric`).
//!
//! PostgreSQL's unconstrained numeric keeps each value's own scale: `1.50::numeric` prints
//! `1.50`, `100::numeric` prints `100`. An Arrow decimal has one scale per column, which
//! DataFusion would make 10 for every such cast (`1.5000000000`). Henge gives the cast the
//! scale of what it converts: a decimal keeps its own, an integer has none, a constant
//! has the digits it was written with (`'3.14'` two, a double's shortest text its own).
//! Only values whose scale differs row by row — text and floating-point columns — are
//! held with 10 places, as a `numeric` column declared without a scale is.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::Expr;
use henge_storage::schema::{DEFAULT_NUMERIC, EXTENSION_NAME_KEY, MAX_NUMERIC_PRECISION};

/// Marks the target of a cast to `numeric` written without a precision and scale, until
/// [`cast`] picks its scale.
const UNCONSTRAINED: &str = "henge.unconstrained_numeric";

/// The type planner's field for `numeric` without a precision and scale.
pub fn unconstrained_field() -> Field {
    Field::new(
        "",
        DataType::Decimal128(DEFAULT_NUMERIC.0, DEFAULT_NUMERIC.1),
        true,
    )
    .with_metadata(HashMap::from([(
        EXTENSION_NAME_KEY.to_owned(),
        UNCONSTRAINED.to_owned(),
    )]))
}

pub(crate) fn is_unconstrained(field: &Field) -> bool {
    super::types::extension(field) == Some(UNCONSTRAINED)
}

/// A field's type with every unconstrained numeric in it (an array's items) made a
/// plain decimal of the default scale; `None` if it has none.
fn without_marks(field: &Field) -> Option<DataType> {
    match field.data_type() {
        _ if is_unconstrained(field) => Some(field.data_type().clone()),
        DataType::List(item) => without_marks(item)
            .map(|t| DataType::List(Arc::new(Field::new(item.name(), t, item.is_nullable())))),
        _ => None,
    }
}

/// A cast to unconstrained `numeric` made a cast to the decimal of the converted value's
/// scale; casts to arrays of it use the default scale. Other expressions are returned as
/// they are (`None`).
pub fn cast(expr: &Expr, from: impl Fn(&Expr) -> Option<DataType>) -> Option<Expr> {
    let (inner, field, try_cast): (&Expr, &FieldRef, bool) = match expr {
        Expr::Cast(Cast { expr, field }) => (expr, field, false),
        Expr::TryCast(TryCast { expr, field }) => (expr, field, true),
        _ => return None,
    };
    // A double's digits, not a default scale's (`(0.1::float8 / 3)::numeric`).
    if is_unconstrained(field) && !try_cast && scale_of_literal(inner).is_none() {
        if let Some(DataType::Float64 | DataType::Float32) = from(inner) {
            return Some(super::float_cast::unconstrained(inner));
        }
    }
    let target = if is_unconstrained(field) {
        DataType::Decimal128(MAX_NUMERIC_PRECISION, scale_of(inner, from(inner).as_ref()))
    } else {
        without_marks(field)?
    };
    let inner = Box::new(inner.clone());
    Some(match try_cast {
        false => Expr::Cast(Cast::new(inner, target)),
        true => Expr::TryCast(TryCast::new(inner, target)),
    })
}

/// The scale a value converted to numeric keeps.
fn scale_of(expr: &Expr, from: Option<&DataType>) -> i8 {
    if let Some(scale) = scale_of_literal(expr) {
        return scale;
    }
    match from {
        Some(DataType::Decimal128(_, s) | DataType::Decimal256(_, s)) => (*s).clamp(0, 38),
        Some(t) if t.is_integer() => 0,
        Some(DataType::Null) => 0,
        _ => DEFAULT_NUMERIC.1,
    }
}

/// The scale of a constant's digits as written (`'1.50'`, `0.25::float8`), if it is one.
fn scale_of_literal(expr: &Expr) -> Option<i8> {
    match expr {
        Expr::Literal(ScalarValue::Utf8(Some(text)), _) => written_scale(text.trim()),
        Expr::Literal(ScalarValue::Float64(Some(f)), _) => written_scale(&f.to_string()),
        Expr::Literal(ScalarValue::Float32(Some(f)), _) => written_scale(&f.to_string()),
        // A constant made a double first (`0.25::float8::numeric`): the double's digits.
        Expr::Cast(Cast { expr, field }) if field.data_type().is_floating() => match &**expr {
            Expr::Literal(v, _) => match v.cast_to(&DataType::Float64) {
                Ok(ScalarValue::Float64(Some(f))) => written_scale(&f.to_string()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// The scale numeric input gives a number's text (`1.50` two, `1.5e1` none, `1e-3`
/// three), if the text is a number whose digits fit a decimal with that scale.
fn written_scale(text: &str) -> Option<i8> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale = (fraction.len() as i64).saturating_sub(exponent).max(0);
    let integer_digits = (whole.trim_start_matches('0').len() as i64)
        .saturating_add(exponent)
        .max(0);
    (integer_digits.saturating_add(scale) <= i64::from(MAX_NUMERIC_PRECISION))
        .then_some(scale as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_as_written() {
        assert_eq!(written_scale("1.50"), Some(2));
        assert_eq!(written_scale("100"), Some(0));
        assert_eq!(written_scale("-3.14"), Some(2));
        assert_eq!(written_scale("1.5e1"), Some(0));
        assert_eq!(written_scale("1e-3"), Some(3));
        assert_eq!(written_scale(".5"), Some(1));
        assert_eq!(written_scale("NaN"), None);
        assert_eq!(written_scale("abc"), None);
        assert_eq!(written_scale("1e40"), None);
        assert_eq!(written_scale("1e-9223372036854775808"), None);
        assert_eq!(written_scale("1e9223372036854775807"), None);
    }

    #[test]
    fn casts_get_the_scale_of_their_value() {
        let to_numeric = |e: Expr| {
            Expr::Cast(Cast {
                expr: Box::new(e),
                field: Arc::new(unconstrained_field()),
            })
        };
        let target = |e: Expr, from: DataType| match cast(&to_numeric(e), |_| Some(from.clone())) {
            Some(Expr::Cast(Cast { field, .. })) => field.data_type().clone(),
            other => panic!("{other:?}"),
        };
        use datafusion::logical_expr::{col, lit};
        assert_eq!(
            target(lit("3.140"), DataType::Utf8),
            DataType::Decimal128(38, 3)
        );
        assert_eq!(
            target(col("i"), DataType::Int32),
            DataType::Decimal128(38, 0)
        );
        assert_eq!(
            target(col("d"), DataType::Decimal128(12, 2)),
            DataType::Decimal128(38, 2)
        );
        assert_eq!(
            target(col("s"), DataType::Utf8),
            DataType::Decimal128(38, 10)
        );
        assert_eq!(
            target(lit(0.25f64), DataType::Float64),
            DataType::Decimal128(38, 2)
        );
        let plain = Expr::Cast(Cast::new(Box::new(col("x")), DataType::Int64));
        assert!(cast(&plain, |_| None).is_none());
    }
}
