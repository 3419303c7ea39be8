//! PostgreSQL's array functions where DataFusion's of the same name answer differently:
//! `array_remove` removes every equal element (NULL included), not the first; the sizes
//! (`array_length`, `cardinality`, `array_ndims`, `array_position`, `array_positions`)
//! are `integer`s, and `array_length` of an empty array or a dimension it lacks is NULL;
//! `array_dims` is PostgreSQL's text (`[1:2][1:3]`). And those DataFusion lacks:
//! `array_fill`, `trim_array` and the set-returning `generate_subscripts` (one-dimensional
//! arrays, whose lower bound is 1: the only ones Henge has).

use std::sync::Arc;

use datafusion::arrow::array::Scalar;
use datafusion::arrow::array::{
    new_empty_array, Array, ArrayRef, AsArray, GenericListArray, Int32Array, OffsetSizeTrait,
    StringArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::kernels::cmp::distinct;
use datafusion::arrow::compute::{concat, filter};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::functions_nested::{cardinality, dimension, length, position};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

use super::{integer_arg as integer, on_arrays, SqlStateError};

/// Registers PostgreSQL's array functions over DataFusion's.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Remove {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(ArrayDims {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(ArrayIn {
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
    }));
    register_builders(ctx);
    for (inner, zero_is_null) in [
        (length::array_length_udf(), true),
        (cardinality::cardinality_udf(), false),
        (dimension::array_ndims_udf(), false),
        (position::array_position_udf(), false),
        (position::array_positions_udf(), false),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(Integers {
            inner,
            zero_is_null,
        }));
    }
}

/// The set-returning functions of arrays, which yield a list to unnest
/// ([`super::srf`]).
pub const LISTING: [&str; 1] = ["generate_subscripts"];

/// The elements of a one-row list value; `None` for NULL or anything else.
fn elements(value: &ScalarValue) -> Result<Option<Vec<ScalarValue>>> {
    let values = match value {
        ScalarValue::List(l) if !l.is_null(0) => l.value(0),
        ScalarValue::LargeList(l) if !l.is_null(0) => l.value(0),
        ScalarValue::FixedSizeList(l) if !l.is_null(0) => l.value(0),
        _ => return Ok(None),
    };
    (0..values.len())
        .map(|i| ScalarValue::try_from_array(&values, i))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn list_of(items: &[ScalarValue], item_type: &DataType) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(items, item_type))
}

/// The item type of a list type (the type itself otherwise).
fn item_type(t: &DataType) -> DataType {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.data_type().clone()
        }
        other => other.clone(),
    }
}

/// `array_fill(value, ARRAY[n])`, `trim_array(array, n)` and `generate_subscripts(array,
/// dimension [, reverse])`.
fn register_builders(ctx: &SessionContext) {
    use super::functions::RowFunction;
    use datafusion::logical_expr::TypeSignature;
    let arity = |counts: &[usize]| {
        Signature::one_of(
            counts.iter().map(|n| TypeSignature::Any(*n)).collect(),
            Volatility::Immutable,
        )
    };
    ctx.register_udf(RowFunction::polymorphic(
        "array_fill",
        |types| DataType::new_list(types[0].clone(), true),
        arity(&[2, 3]),
        Arc::new(|args| {
            let item = args[0].data_type();
            let dimensions = elements(&args[1])?;
            let lower_bounds = match args.get(2) {
                Some(bounds) => elements(bounds)?.map(Some),
                None => Some(None),
            };
            let (Some(dimensions), Some(lower_bounds)) = (dimensions, lower_bounds) else {
                return Err(SqlStateError::new(
                    "22004",
                    "dimension array or low bound array cannot be null",
                )
                .into());
            };
            let length = match dimensions.as_slice() {
                [n] => integer(n).ok_or_else(|| {
                    DataFusionError::from(SqlStateError::new(
                        "22004",
                        "dimension values cannot be null",
                    ))
                })?,
                _ => {
                    return Err(SqlStateError::new(
                        "0A000",
                        "array_fill of other than one dimension is not supported",
                    )
                    .into())
                }
            };
            if lower_bounds.is_some_and(|b| b.iter().any(|v| integer(v) != Some(1))) {
                return Err(SqlStateError::new(
                    "0A000",
                    "arrays with a lower bound other than 1 are not supported",
                )
                .into());
            }
            const MAX_ITEMS: i64 = 134_217_727;
            if !(0..=MAX_ITEMS).contains(&length) {
                return Err(SqlStateError::new(
                    "54000",
                    format!("array size exceeds the maximum allowed ({MAX_ITEMS})"),
                )
                .into());
            }
            // The items as one array, not a value each.
            let items = args[0].to_array_of_size(length as usize)?;
            Ok(ScalarValue::List(Arc::new(
                datafusion::arrow::array::ListArray::new(
                    Arc::new(Field::new_list_field(item, true)),
                    OffsetBuffer::from_lengths([length as usize]),
                    items,
                    None,
                ),
            )))
        }),
    ));
    // `a && b`: whether the arrays have an element in common; NULL elements match
    // nothing, a NULL array makes NULL.
    ctx.register_udf(RowFunction::polymorphic(
        "pg_array_overlap",
        |_| DataType::Boolean,
        arity(&[2]),
        Arc::new(|args| {
            let (Some(left), Some(right)) = (elements(&args[0])?, elements(&args[1])?) else {
                return Ok(ScalarValue::Boolean(None));
            };
            let common = left
                .iter()
                .filter(|v| !v.is_null())
                .any(|l| right.iter().any(|r| !r.is_null() && l == r));
            Ok(ScalarValue::Boolean(Some(common)))
        }),
    ));
    ctx.register_udf(RowFunction::polymorphic(
        "trim_array",
        |types| DataType::new_list(item_type(&types[0]), true),
        arity(&[2]),
        Arc::new(|args| {
            let item = item_type(&args[0].data_type());
            let (Some(items), Some(n)) = (elements(&args[0])?, integer(&args[1])) else {
                return ScalarValue::try_from(&DataType::new_list(item, true));
            };
            let kept = usize::try_from(n)
                .ok()
                .and_then(|n| items.len().checked_sub(n))
                .ok_or_else(|| {
                    DataFusionError::from(SqlStateError::new(
                        "2202E",
                        format!(
                            "number of elements to trim must be between 0 and {}",
                            items.len()
                        ),
                    ))
                })?;
            Ok(list_of(&items[..kept], &item))
        }),
    ));
    ctx.register_udf(RowFunction::polymorphic(
        "generate_subscripts",
        |_| DataType::new_list(DataType::Int32, true),
        arity(&[2, 3]),
        Arc::new(|args| {
            let count = match (elements(&args[0])?, integer(&args[1])) {
                (Some(items), Some(1)) => items.len() as i32,
                _ => 0,
            };
            // Strict: a NULL `reverse` yields no rows.
            if args.get(2).is_some_and(ScalarValue::is_null) {
                return Ok(list_of(&[], &DataType::Int32));
            }
            let reverse = matches!(args.get(2), Some(ScalarValue::Boolean(Some(true))));
            let subscripts: Vec<ScalarValue> = match reverse {
                false => (1..=count).map(|i| ScalarValue::Int32(Some(i))).collect(),
                true => (1..=count)
                    .rev()
                    .map(|i| ScalarValue::Int32(Some(i)))
                    .collect(),
            };
            Ok(list_of(&subscripts, &DataType::Int32))
        }),
    ));
}

/// The lists of a list array (either offset width), or `None` for other types.
fn lists(array: &ArrayRef) -> Option<Vec<Option<ArrayRef>>> {
    fn of<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> Vec<Option<ArrayRef>> {
        (0..list.len())
            .map(|i| (!list.is_null(i)).then(|| list.value(i)))
            .collect()
    }
    match array.data_type() {
        DataType::List(_) => Some(of(array.as_list::<i32>())),
        DataType::LargeList(_) => Some(of(array.as_list::<i64>())),
        _ => None,
    }
}

/// A list array of `item` from one optional list per row.
fn list_array(item: &FieldRef, rows: Vec<Option<ArrayRef>>) -> Result<ArrayRef> {
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    offsets.push(0i32);
    let mut pieces: Vec<&dyn Array> = Vec::with_capacity(rows.len());
    let mut valid = Vec::with_capacity(rows.len());
    let mut end = 0i32;
    for row in &rows {
        if let Some(values) = row {
            end += values.len() as i32;
            pieces.push(values.as_ref());
        }
        valid.push(row.is_some());
        offsets.push(end);
    }
    let values = match pieces.is_empty() {
        true => new_empty_array(item.data_type()),
        false => concat(&pieces)?,
    };
    Ok(Arc::new(GenericListArray::<i32>::try_new(
        item.clone(),
        OffsetBuffer::new(offsets.into()),
        values,
        Some(valid.into()),
    )?))
}

/// `array_remove(a, x)`: `a` without the elements not distinct from `x` (so a NULL `x`
/// removes the NULLs), in PostgreSQL only for one-dimensional arrays.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Remove {
    signature: Signature,
}

impl ScalarUDFImpl for Remove {
    fn name(&self) -> &str {
        "array_remove"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return Err(super::no_such_function("array_remove", arg_types));
        }
        let item = match &arg_types[0] {
            DataType::List(item) | DataType::LargeList(item) => item.clone(),
            DataType::Null => return Ok(arg_types.to_vec()),
            _ => return Err(super::no_such_function("array_remove", arg_types)),
        };
        let list = DataType::List(Arc::new(Field::new_list_field(
            item.data_type().clone(),
            true,
        )));
        Ok(vec![list, item.data_type().clone()])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if let DataType::List(item) = &arg_types[0] {
            if matches!(item.data_type(), DataType::List(_) | DataType::LargeList(_)) {
                return Err(SqlStateError::new(
                    "0A000",
                    "removing elements from multidimensional arrays is not supported",
                )
                .into());
            }
        }
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let DataType::List(item) = arrays[0].data_type() else {
                return Ok(arrays[0].clone());
            };
            let item = item.clone();
            let rows = lists(&arrays[0]).unwrap_or_default();
            let mut out = Vec::with_capacity(rows.len());
            for (row, values) in rows.into_iter().enumerate() {
                let Some(values) = values else {
                    out.push(None);
                    continue;
                };
                let element = Scalar::new(arrays[1].slice(row, 1));
                let keep = distinct(&values, &element)?;
                out.push(Some(filter(&values, &keep)?));
            }
            list_array(&item, out)
        })
    }
}

/// `array_dims(a)`: `[1:n]` per dimension, NULL for an empty array.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayDims {
    signature: Signature,
}

impl ScalarUDFImpl for ArrayDims {
    fn name(&self) -> &str {
        "array_dims"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::List(_) | DataType::LargeList(_) | DataType::Null => Ok(DataType::Utf8),
            _ => Err(super::no_such_function("array_dims", arg_types)),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let rows = lists(&arrays[0]).unwrap_or_else(|| vec![None; arrays[0].len()]);
            let texts: StringArray = rows
                .into_iter()
                .map(|values| {
                    let dims = dimensions(&values?);
                    (!dims.is_empty())
                        .then(|| dims.iter().map(|d| format!("[1:{d}]")).collect::<String>())
                })
                .collect();
            Ok(Arc::new(texts) as ArrayRef)
        })
    }
}

/// The lengths of an array's dimensions (through nested lists, by their first
/// elements); none for an empty array.
fn dimensions(values: &ArrayRef) -> Vec<usize> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut dims = vec![values.len()];
    if let Some(first) = lists(values).and_then(|l| l.into_iter().next()).flatten() {
        let inner = dimensions(&first);
        if inner.is_empty() {
            return Vec::new();
        }
        dims.extend(inner);
    }
    dims
}

/// A DataFusion array function whose sizes are PostgreSQL's `integer`s (DataFusion's are
/// unsigned 64-bit), and, for `array_length`, NULL where DataFusion says 0: a PostgreSQL
/// array has no dimension of length zero.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Integers {
    inner: Arc<ScalarUDF>,
    zero_is_null: bool,
}

/// `integer`, or a list of them, in place of DataFusion's unsigned sizes.
fn as_integers(data_type: &DataType) -> DataType {
    match data_type {
        DataType::List(item) => DataType::List(Arc::new(Field::new_list_field(
            as_integers(item.data_type()),
            true,
        ))),
        t if t.is_integer() => DataType::Int32,
        other => other.clone(),
    }
}

impl ScalarUDFImpl for Integers {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(as_integers(&self.inner.return_type(arg_types)?))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let field = self.inner.return_field_from_args(args)?;
        let retyped = as_integers(field.data_type());
        Ok(Arc::new(
            field
                .as_ref()
                .clone()
                .with_data_type(retyped)
                .with_nullable(field.is_nullable() || self.zero_is_null),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let wanted = args.return_field.data_type().clone();
        let inner_field = Arc::new(Field::new(
            self.inner.name(),
            self.inner.return_type(
                &args
                    .arg_fields
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect::<Vec<_>>(),
            )?,
            true,
        ));
        let result = self.inner.invoke_with_args(ScalarFunctionArgs {
            return_field: inner_field,
            ..args
        })?;
        let zero_is_null = self.zero_is_null;
        let retype = |array: ArrayRef| -> Result<ArrayRef> {
            let array = datafusion::arrow::compute::cast(&array, &wanted)?;
            if !zero_is_null {
                return Ok(array);
            }
            let ints: &Int32Array = array.as_primitive();
            Ok(Arc::new(
                ints.iter()
                    .map(|v| v.filter(|n| *n != 0))
                    .collect::<Int32Array>(),
            ))
        };
        Ok(match result {
            ColumnarValue::Array(array) => ColumnarValue::Array(retype(array)?),
            ColumnarValue::Scalar(value) => {
                let array = retype(value.to_array()?)?;
                ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
            }
        })
    }
}

/// A cast of text to an array (`'{a,b}'::text[]`, `'{1,2}'::int[]`) as PostgreSQL reads
/// it: the literal's elements, each cast to the element type. DataFusion read the whole
/// text as one element, or refused it. `None` for other expressions.
pub(crate) fn cast(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = expr else {
        return None;
    };
    let DataType::List(item) = field.data_type() else {
        return None;
    };
    if !matches!(
        inner.get_type(schema).ok()?,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    ) {
        return None;
    }
    let texts = Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(ArrayIn {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        })),
        vec![datafusion::logical_expr::cast(
            (**inner).clone(),
            DataType::Utf8,
        )],
    ));
    Some(match item.data_type() {
        DataType::Utf8 => texts,
        _ => datafusion::logical_expr::cast(texts, field.data_type().clone()),
    })
}

/// `pg_array_in(text)`: the elements of an array literal, as text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayIn {
    signature: Signature,
}

impl ScalarUDFImpl for ArrayIn {
    fn name(&self) -> &str {
        "pg_array_in"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let item = Arc::new(Field::new_list_field(DataType::Utf8, true));
            let rows = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|text| {
                    text.map(|t| {
                        let elements = array_in(t)?;
                        Ok(Arc::new(StringArray::from(elements)) as ArrayRef)
                    })
                    .transpose()
                })
                .collect::<Result<Vec<_>>>()?;
            list_array(&item, rows)
        })
    }
}

/// The elements of a one-dimensional array literal as PostgreSQL's `array_in` reads them
/// (`{a,"b c",NULL,"NULL"}`): quoted or not, backslash escapes, whitespace around an
/// element dropped, an unquoted `NULL` a NULL element. A multidimensional literal is
/// refused (0A000).
pub(crate) fn array_in(text: &str) -> Result<Vec<Option<String>>> {
    let malformed = || -> DataFusionError {
        SqlStateError::new("22P02", format!("malformed array literal: \"{text}\"")).into()
    };
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(malformed)?;
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars();
    loop {
        let mut item = String::new();
        // Whether any of it was quoted or escaped, and its length up to the last character
        // that was (or was no whitespace): what follows is trailing whitespace.
        let (mut literal, mut significant, mut quoted) = (false, 0, false);
        let end = loop {
            let Some(c) = chars.next() else {
                break None;
            };
            match c {
                '"' => {
                    quoted = !quoted;
                    literal = true;
                }
                '\\' => {
                    item.push(chars.next().ok_or_else(malformed)?);
                    literal = true;
                    significant = item.len();
                }
                ',' if !quoted => break Some(','),
                '{' | '}' if !quoted => {
                    return Err(match c {
                        '{' => SqlStateError::new(
                            "0A000",
                            "multidimensional array literals are not supported",
                        )
                        .into(),
                        _ => malformed(),
                    })
                }
                // Whitespace ahead of an element.
                c if c.is_whitespace() && !quoted && !literal && item.is_empty() => {}
                c => {
                    item.push(c);
                    if quoted || !c.is_whitespace() {
                        significant = item.len();
                    }
                }
            }
        };
        if quoted {
            return Err(malformed());
        }
        item.truncate(significant);
        out.push(match (literal, item.as_str()) {
            (false, "") => return Err(malformed()),
            (false, s) if s.eq_ignore_ascii_case("null") => None,
            _ => Some(item),
        });
        if end.is_none() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_as_postgresql_reads_them() {
        let read = |t: &str| array_in(t).unwrap();
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(read("{a,b}"), vec![some("a"), some("b")]);
        assert_eq!(
            read("{ a , \"b c\" , 1 }"),
            vec![some("a"), some("b c"), some("1")]
        );
        assert_eq!(read("{NULL,\"NULL\",null}"), vec![None, some("NULL"), None]);
        assert_eq!(read("{a\\,b,\"x\\\"y\"}"), vec![some("a,b"), some("x\"y")]);
        assert_eq!(read("{\"\"}"), vec![some("")]);
        assert_eq!(read("{a b}"), vec![some("a b")]);
        assert!(read("{}").is_empty());
        for bad in ["a,b", "{a,,b}", "{a,}", "{\"a}", "{a}b}"] {
            assert!(array_in(bad).is_err(), "{bad}");
        }
        assert!(array_in("{{1,2}}").is_err());
    }
}
