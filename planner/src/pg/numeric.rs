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

use datafusion::arrow::array::{ArrayRef, AsArray, Decimal128Array};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef};
use datafusion::catalog::default_table_source::{provider_as_source, source_as_provider};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Projection,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, WriteOp,
};
use henge_storage::schema::{
    scale_column, DEFAULT_NUMERIC, EXTENSION_NAME_KEY, MAX_NUMERIC_PRECISION,
};
use henge_storage::ColumnType;

use crate::table::HengeTable;

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
        match from(inner) {
            Some(DataType::Float64 | DataType::Float32) => {
                return Some(super::float_cast::unconstrained(inner))
            }
            // Text read exactly (a value with more places than 10 refused, not rounded);
            // each value is shown with its own scale (see `display`).
            Some(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) => {
                return Some(stored(inner))
            }
            _ => {}
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

/// An INSERT's values for the table's unconstrained numeric columns converted exactly: a
/// value with more places than the column holds (a decimal, text or double) is refused,
/// where the cast DataFusion planned would round it. Other statements are returned as
/// they are.
pub fn exact_insert(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = cast_to_columns(plan)?;
    let LogicalPlan::Dml(dml) = &plan else {
        return Ok(plan);
    };
    let (WriteOp::Insert(_), LogicalPlan::Projection(projection)) = (&dml.op, dml.input.as_ref())
    else {
        return Ok(plan);
    };
    let Ok(provider) = source_as_provider(&dml.target) else {
        return Ok(plan);
    };
    let Some(table) = provider.downcast_ref::<HengeTable>() else {
        return Ok(plan);
    };
    // No value with a scale of its own is written as text, an array or JSON with places
    // it was not written with.
    super::unscaled::check_written(&dml.input)?;
    let columns = &table.def().columns;
    if columns.len() != projection.expr.len()
        || !columns
            .iter()
            .any(|c| c.ty == ColumnType::NumericUnconstrained)
    {
        return Ok(plan);
    }
    let source = projection.input.schema().clone();
    let mut input = projection.input.as_ref().clone();
    let mut exprs = projection.expr.clone();
    for (i, column) in columns.iter().enumerate() {
        if column.ty != ColumnType::NumericUnconstrained {
            continue;
        }
        if let Some(exact) = exact_value(&exprs[i], &source)? {
            exprs[i] = exact;
            continue;
        }
        // The value comes from the statement's VALUES list or select list, cast there.
        let Expr::Column(c) = exprs[i].clone().unalias_nested().data else {
            continue;
        };
        match &mut input {
            LogicalPlan::Values(values) => {
                let Ok(at) = values.schema.index_of_column(&c) else {
                    continue;
                };
                for row in &mut values.values {
                    if let Some(exact) = exact_value(&row[at], &source)? {
                        row[at] = exact;
                    }
                }
            }
            LogicalPlan::Projection(list) => {
                let Ok(at) = list.schema.index_of_column(&c) else {
                    continue;
                };
                if let Some(exact) = exact_value(&list.expr[at], list.input.schema())? {
                    let (qualifier, field) = list.schema.qualified_field(at);
                    let mut exprs = list.expr.clone();
                    exprs[at] = exact
                        .unalias()
                        .alias_qualified(qualifier.cloned(), field.name());
                    *list = Projection::try_new(exprs, list.input.clone())?;
                }
            }
            _ => {}
        }
    }
    // The scale of each value written to an unconstrained numeric, after the columns.
    let mut scales = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        if column.ty != ColumnType::NumericUnconstrained {
            continue;
        }
        let (scale, known) = value_scale(&exprs[i], &source, &mut input)?;
        // Cast to the column's type (see [`cast_to_columns`]).
        if let Expr::Column(_) | Expr::ScalarFunction(_) = exprs[i].clone().unalias_nested().data {
            let value = exprs[i].clone().unalias_nested().data;
            let column_type = DataType::Decimal128(DEFAULT_NUMERIC.0, DEFAULT_NUMERIC.1);
            exprs[i] = Expr::Cast(Cast::new(Box::new(value), column_type)).alias(&column.name);
        }
        // PostgreSQL's scale is followed for stored numerics, never for quotients, roots
        // and the like, which Henge computes at a fixed scale.
        let (stored, computed) = super::unscaled::has_own_places(&dml.input, i)?;
        if computed || (stored && !known) {
            return Err(super::unscaled::unknown_places(&column.name));
        }
        scales.push(scale.alias(scale_column(&column.name)));
    }
    exprs.extend(scales);
    let input = Projection::try_new(exprs, Arc::new(input))?;
    let mut dml = dml.clone();
    dml.input = Arc::new(LogicalPlan::Projection(input));
    dml.target = provider_as_source(Arc::new(table.for_scaled_insert()));
    Ok(LogicalPlan::Dml(dml))
}

/// An INSERT whose decimal values are each cast to their column's type. DataFusion casts
/// only values whose planned type differs, and a function's type may change once its
/// arguments are folded to constants (`round(x, 2)` of a numeric(38,10) is typed
/// numeric(38,10) until `2` is a constant, numeric(38,2) after).
fn cast_to_columns(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Dml(dml) = &plan else {
        return Ok(plan);
    };
    let (WriteOp::Insert(_), LogicalPlan::Projection(projection)) = (&dml.op, dml.input.as_ref())
    else {
        return Ok(plan);
    };
    let target = dml.target.schema();
    if target.fields().len() != projection.expr.len() {
        return Ok(plan);
    }
    // An unconstrained numeric's value is cast once its scale is known (see
    // [`exact_insert`]).
    let unconstrained: Vec<bool> = match source_as_provider(&dml.target)
        .ok()
        .as_ref()
        .and_then(|p| p.downcast_ref::<HengeTable>())
    {
        Some(table) => table
            .def()
            .columns
            .iter()
            .map(|c| c.ty == ColumnType::NumericUnconstrained)
            .collect(),
        None => vec![false; target.fields().len()],
    };
    let mut changed = false;
    let mut exprs = projection.expr.clone();
    for ((expr, field), skip) in exprs.iter_mut().zip(target.fields()).zip(unconstrained) {
        let value = expr.clone().unalias_nested().data;
        if skip
            || matches!(value, Expr::Cast(_))
            || !matches!(field.data_type(), DataType::Decimal128(..))
            || !matches!(value, Expr::ScalarFunction(_) | Expr::Column(_))
        {
            continue;
        }
        let cast = Expr::Cast(Cast::new(Box::new(value), field.data_type().clone()));
        *expr = cast.alias(field.name());
        changed = true;
    }
    if !changed {
        return Ok(plan);
    }
    let mut dml = dml.clone();
    dml.input = Arc::new(LogicalPlan::Projection(Projection::try_new(
        exprs,
        projection.input.clone(),
    )?));
    Ok(LogicalPlan::Dml(dml))
}

/// The scale of the values an INSERT's expression `expr` (over `source`, the schema of
/// `input`) writes to an unconstrained numeric: the scale PostgreSQL gives each (see
/// `display::scale_of_value`), computed in the VALUES list or select list the value comes
/// from (to which a column of it is added), and whether PostgreSQL's scale is known (NULL
/// where it is not: the value is then kept without trailing zeros).
fn value_scale(expr: &Expr, source: &DFSchema, input: &mut LogicalPlan) -> Result<(Expr, bool)> {
    let unknown = || (Expr::Literal(ScalarValue::Int16(None), None), false);
    let scale_of = |value: &Expr, schema: &DFSchema| -> Result<(Expr, bool)> {
        Ok(match super::display::scale_of_value(value, schema)? {
            Some(scale) => (scale, true),
            None => unknown(),
        })
    };
    let value = expr.clone().unalias_nested().data;
    let Expr::Column(c) = &value else {
        return scale_of(&value, source);
    };
    match input {
        LogicalPlan::Values(values) => {
            let Ok(at) = values.schema.index_of_column(c) else {
                return Ok(unknown());
            };
            let empty = DFSchema::empty();
            let mut rows = values.values.clone();
            let mut known = true;
            for row in &mut rows {
                let (scale, row_known) = scale_of(&row[at], &empty)?;
                known &= row_known;
                row.push(Expr::Cast(Cast::new(Box::new(scale), DataType::Int16)));
            }
            *input = LogicalPlanBuilder::values(rows)?.build()?;
            let added = input.schema().fields().len() - 1;
            Ok((
                Expr::Column(Column::from(input.schema().qualified_field(added))),
                known,
            ))
        }
        LogicalPlan::Projection(list) => {
            let Ok(at) = list.schema.index_of_column(c) else {
                return Ok(unknown());
            };
            let chosen = list.expr[at].clone().unalias_nested().data;
            let names = chosen
                .column_refs()
                .into_iter()
                .map(|c| c.name.clone())
                .collect();
            let below = super::display::with_scales(&list.input, &names)?
                .unwrap_or_else(|| list.input.as_ref().clone());
            let (scale, known) = scale_of(&chosen, below.schema())?;
            let name = format!("{}_{at}", scale_column(&c.name));
            let mut exprs = list.expr.clone();
            exprs.push(scale.alias(&name));
            *list = Projection::try_new(exprs, Arc::new(below))?;
            Ok((Expr::Column(Column::from_name(name)), known))
        }
        _ => Ok(unknown()),
    }
}

/// `expr`, a cast to an unconstrained numeric column's type (perhaps named), made exact
/// where the cast would round (see [`exact_insert`]); `None` where it needs no change.
fn exact_value(expr: &Expr, source: &DFSchema) -> Result<Option<Expr>> {
    let (inner, name) = match expr {
        Expr::Alias(alias) => (alias.expr.as_ref(), Some(alias.name.clone())),
        other => (other, None),
    };
    let Expr::Cast(Cast { expr: value, field }) = inner else {
        return Ok(None);
    };
    let kept = DEFAULT_NUMERIC.0 as i8 - DEFAULT_NUMERIC.1;
    let column = DataType::Decimal128(DEFAULT_NUMERIC.0, DEFAULT_NUMERIC.1);
    let exact = match value.get_type(source)? {
        DataType::Float64 | DataType::Float32 => super::float_cast::exact(value, column),
        DataType::Decimal128(p, s) if s > DEFAULT_NUMERIC.1 || p as i8 - s > kept => stored(value),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => stored(value),
        // A cast to `numeric` written in the statement would keep its value's scale (see
        // [`cast`]): the column's type is the one to convert to, exactly.
        _ if is_unconstrained(field) => Expr::Cast(Cast::new(value.clone(), column)),
        _ => return Ok(None),
    };
    Ok(Some(match name {
        Some(name) => exact.alias(name),
        None => exact,
    }))
}

/// Whether a function is the exact reading of text or decimals as an unconstrained numeric.
pub(crate) fn is_stored_numeric(f: &dyn ScalarUDFImpl) -> bool {
    f.downcast_ref::<StoredNumeric>().is_some()
}

/// `value` (text or a decimal) as an unconstrained numeric column holds it.
fn stored(value: &Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(StoredNumeric::default())),
        vec![value.clone()],
    ))
}

/// A value (text or a decimal) as an unconstrained numeric column holds it: read as
/// numeric input reads its text, refused where it has more places than the column keeps.
#[derive(Debug, PartialEq, Eq, Hash)]
struct StoredNumeric {
    signature: Signature,
}

impl Default for StoredNumeric {
    fn default() -> StoredNumeric {
        StoredNumeric {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for StoredNumeric {
    fn name(&self) -> &str {
        "henge_stored_numeric"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(DEFAULT_NUMERIC.0, DEFAULT_NUMERIC.1))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        super::on_arrays(&args, |arrays| {
            let read = |text: &str| {
                henge_ingest::value::parse_numeric_unconstrained(text)
                    .map(|(v, _)| v)
                    .map_err(|e| DataFusionError::External(Box::new(henge_ingest::Error::from(e))))
            };
            let array = &arrays[0];
            let values: Decimal128Array = match array.data_type() {
                DataType::Decimal128(_, scale) => array
                    .as_primitive::<Decimal128Type>()
                    .iter()
                    .map(|v| {
                        v.map(|v| read(&henge_ingest::text::decimal_text(v, *scale)))
                            .transpose()
                    })
                    .collect::<Result<_>>()?,
                _ => datafusion::arrow::compute::cast(array, &DataType::Utf8)?
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(read).transpose())
                    .collect::<Result<_>>()?,
            };
            Ok(
                Arc::new(values.with_precision_and_scale(DEFAULT_NUMERIC.0, DEFAULT_NUMERIC.1)?)
                    as ArrayRef,
            )
        })
    }
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
        // A text column is read exactly (refusing more places than 10), value by value.
        let read = cast(&to_numeric(col("s")), |_| Some(DataType::Utf8));
        assert!(
            matches!(read, Some(Expr::ScalarFunction(f)) if is_stored_numeric(f.func.inner().as_ref()))
        );
        assert_eq!(
            target(lit(0.25f64), DataType::Float64),
            DataType::Decimal128(38, 2)
        );
        let plain = Expr::Cast(Cast::new(Box::new(col("x")), DataType::Int64));
        assert!(cast(&plain, |_| None).is_none());
    }
}
