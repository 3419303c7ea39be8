//! PostgreSQL's `sign` and `div`, which DataFusion lacks, with PostgreSQL's types: `sign`
//! of a numeric is a numeric and of anything else a double; `div` is the numeric quotient
//! truncated toward zero. `floor` and `ceil` of a numeric have no places; `sqrt`, `ln`,
//! `log`, `log10`, `power` and `exp` refuse what PostgreSQL refuses; `to_hex` of an
//! `integer` is 32 bits wide.

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
    use super::numeric_math::Op;
    use datafusion::functions::math;
    ctx.register_udf(Domain::udf(math::sqrt(), check_sqrt, Op::Sqrt));
    ctx.register_udf(Domain::udf(math::ln(), check_log, Op::Ln));
    ctx.register_udf(Domain::udf(math::log(), check_log, Op::Log));
    ctx.register_udf(Domain::udf(math::log10(), check_log, Op::Log));
    ctx.register_udf(Domain::udf(math::power(), check_power, Op::Power));
    ctx.register_udf(Domain::udf(math::exp(), check_exp, Op::Exp));
    ctx.register_udf(ScalarUDF::new_from_impl(WidthBucket {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(ToHex {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(Cbrt {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
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
            let unit = 10i128.pow(u32::from(scale.unsigned_abs()));
            let whole = arrays[0]
                .as_primitive::<Decimal128Type>()
                .iter()
                .map(|v| {
                    v.map(|v| match scale < 0 {
                        // A negative scale counts tens: the value is whole already.
                        true => v.checked_mul(unit).ok_or_else(|| {
                            DataFusionError::from(SqlStateError::new(
                                "22003",
                                "numeric field overflow",
                            ))
                        }),
                        false => {
                            let down = v.div_euclid(unit);
                            Ok(match ceil && v.rem_euclid(unit) != 0 {
                                true => down + 1,
                                false => down,
                            })
                        }
                    })
                    .transpose()
                })
                .collect::<Result<Decimal128Array>>()?
                .with_precision_and_scale(38, 0)?;
            Ok(Arc::new(whole) as ArrayRef)
        })
    }
}

/// What a function's arguments must satisfy, as PostgreSQL checks them: the error for
/// one row's arguments (as doubles), or `None`.
type DomainCheck = fn(&[Option<f64>]) -> Option<SqlStateError>;

/// DataFusion's `sqrt`, `ln`, `log`, `log10`, `power` and `exp`, refusing what PostgreSQL
/// refuses where DataFusion would answer NaN or an infinity: the root or logarithm of a
/// negative number or zero, zero to a negative power, a negative number to a fractional
/// one, and `exp` past a double's range. Of numerics (as PostgreSQL resolves the call:
/// a numeric argument, or `log` of two arguments) they are PostgreSQL's exact numeric
/// functions instead ([`super::numeric_math`]).
#[derive(Debug)]
struct Domain {
    inner: Arc<ScalarUDF>,
    check: DomainCheck,
    numeric: super::numeric_math::Op,
    /// Coerced here: numeric arguments stay numeric, others as the wrapped function's
    /// signature has them.
    signature: Signature,
}

// One check per function: the wrapped function tells them apart.
impl PartialEq for Domain {
    fn eq(&self, other: &Domain) -> bool {
        self.inner == other.inner
    }
}

impl Eq for Domain {}

impl std::hash::Hash for Domain {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl Domain {
    fn udf(
        inner: Arc<ScalarUDF>,
        check: DomainCheck,
        numeric: super::numeric_math::Op,
    ) -> ScalarUDF {
        let signature = Signature::user_defined(inner.signature().volatility);
        ScalarUDF::new_from_impl(Domain {
            inner,
            check,
            numeric,
            signature,
        })
    }

    /// Whether PostgreSQL resolves a call with arguments of these types to the numeric
    /// function; an error where it has no function for them.
    fn is_numeric(&self, arg_types: &[DataType]) -> Result<bool> {
        let decimal = arg_types.iter().any(|t| t.is_decimal());
        let floating = arg_types.iter().any(|t| t.is_floating());
        match (self.numeric, arg_types.len()) {
            // log(b, x) exists only for numerics (a double argument is refused once the
            // call is typed, see `return_field_from_args`).
            (super::numeric_math::Op::Log, 2) => Ok(true),
            _ => Ok(decimal && !floating),
        }
    }
}

/// The numeric arguments of a call, as the exact functions take them (`log(x)` is
/// `log(10, x)`); `None` for a NULL.
fn numeric_arguments(
    op: super::numeric_math::Op,
    values: impl Iterator<Item = Option<(i128, i8)>>,
) -> Option<Vec<super::numeric_math::Num>> {
    let mut args: Vec<super::numeric_math::Num> = values
        .map(|v| v.map(|(v, s)| super::numeric_math::Num::new(v, s)))
        .collect::<Option<_>>()?;
    if op == super::numeric_math::Op::Log && args.len() == 1 {
        args.insert(0, super::numeric_math::Num::new(10, 0));
    }
    Some(args)
}

impl ScalarUDFImpl for Domain {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !self.is_numeric(arg_types)? {
            let fields: Vec<datafusion::arrow::datatypes::FieldRef> = arg_types
                .iter()
                .map(|t| {
                    Arc::new(datafusion::arrow::datatypes::Field::new(
                        "",
                        t.clone(),
                        true,
                    ))
                })
                .collect();
            return Ok(
                datafusion::logical_expr::type_coercion::functions::fields_with_udf(
                    &fields,
                    self.inner.as_ref(),
                )?
                .iter()
                .map(|f| f.data_type().clone())
                .collect(),
            );
        }
        arg_types
            .iter()
            .map(|t| match t {
                t if t.is_integer() || t.is_null() => Ok(DataType::Decimal128(20, 0)),
                _ => Ok(t.clone()),
            })
            .collect()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        use super::numeric_math::{result_scale, result_type};
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        if !self.is_numeric(&types)? {
            return self.inner.return_field_from_args(args);
        }
        if !types.iter().all(|t| t.is_decimal()) {
            return Err(no_such_function(self.name(), &types));
        }
        let decimal = |t: &DataType| match t {
            DataType::Decimal128(_, s) => Some(*s),
            _ => None,
        };
        // Constant arguments: PostgreSQL's places for these values. Otherwise 16, or the
        // arguments' own places if more.
        let constants = args.scalar_arguments.iter().map(|a| match a {
            Some(datafusion::scalar::ScalarValue::Decimal128(v, _, s)) => v.map(|v| (v, *s)),
            _ => None,
        });
        let all_constant = args.scalar_arguments.iter().all(|a| a.is_some());
        let rscale = match numeric_arguments(self.numeric, constants).filter(|_| all_constant) {
            Some(values) => result_scale(self.numeric, &values)?,
            None => types
                .iter()
                .filter_map(decimal)
                .map(i64::from)
                .max()
                .unwrap_or(0)
                .max(16),
        };
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(
            self.name(),
            result_type(rscale)?,
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let DataType::Decimal128(_, out_scale) = args.return_field.data_type() {
            return self.invoke_numeric(&args, i64::from(*out_scale));
        }
        let rows = args.number_rows.max(1);
        let doubles = args
            .args
            .iter()
            .map(|a| {
                let array = a.to_array(rows)?;
                Ok(datafusion::arrow::compute::cast(
                    &array,
                    &DataType::Float64,
                )?)
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let doubles: Vec<&Float64Array> = doubles.iter().map(|a| a.as_primitive()).collect();
        let mut row_args = Vec::with_capacity(doubles.len());
        for row in 0..rows {
            row_args.clear();
            row_args.extend(
                doubles
                    .iter()
                    .map(|a| (!a.is_null(row)).then(|| a.value(row))),
            );
            if let Some(e) = (self.check)(&row_args) {
                return Err(e.into());
            }
        }
        self.inner.invoke_with_args(args)
    }
}

impl Domain {
    /// The exact numeric function, row by row, each value at `out_scale` places.
    fn invoke_numeric(&self, args: &ScalarFunctionArgs, out_scale: i64) -> Result<ColumnarValue> {
        use super::numeric_math::{compute, result_scale, to_column};
        let returns = args.return_field.data_type().clone();
        on_arrays(args, |arrays| {
            let rows = arrays.first().map_or(1, |a| a.len());
            let mut out = Vec::with_capacity(rows);
            for row in 0..rows {
                let values = arrays.iter().map(|a| {
                    let DataType::Decimal128(_, s) = a.data_type() else {
                        return None;
                    };
                    let a = a.as_primitive::<Decimal128Type>();
                    (!a.is_null(row)).then(|| (a.value(row), *s))
                });
                let Some(values) = numeric_arguments(self.numeric, values) else {
                    out.push(None);
                    continue;
                };
                let rscale = result_scale(self.numeric, &values)?;
                let value = compute(self.numeric, &values, rscale)?;
                out.push(Some(to_column(&value, rscale, out_scale)?));
            }
            Ok(Arc::new(Decimal128Array::from(out).with_data_type(returns)) as ArrayRef)
        })
    }
}

fn root_or_log_error(x: f64, root: bool) -> Option<SqlStateError> {
    let message = if root && x < 0.0 {
        "cannot take square root of a negative number"
    } else if root || x > 0.0 || x.is_nan() {
        return None;
    } else if x == 0.0 {
        "cannot take logarithm of zero"
    } else {
        "cannot take logarithm of a negative number"
    };
    Some(SqlStateError::new(
        if root { "2201F" } else { "2201E" },
        message,
    ))
}

fn check_sqrt(args: &[Option<f64>]) -> Option<SqlStateError> {
    args.first()
        .copied()
        .flatten()
        .and_then(|x| root_or_log_error(x, true))
}

fn check_log(args: &[Option<f64>]) -> Option<SqlStateError> {
    let error = args
        .iter()
        .flatten()
        .find_map(|x| root_or_log_error(*x, false));
    if error.is_some() {
        return error;
    }
    // log(1, x) divides by ln(1) = 0.
    match args {
        [Some(base), Some(_)] if *base == 1.0 => {
            Some(SqlStateError::new("22012", "division by zero"))
        }
        _ => None,
    }
}

fn check_power(args: &[Option<f64>]) -> Option<SqlStateError> {
    let [Some(base), Some(exponent)] = *args else {
        return None;
    };
    if base == 0.0 && exponent < 0.0 {
        return Some(SqlStateError::new(
            "2201F",
            "zero raised to a negative power is undefined",
        ));
    }
    if base < 0.0 && exponent.is_finite() && exponent.fract() != 0.0 {
        return Some(SqlStateError::new(
            "2201F",
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    if !base.is_finite() || !exponent.is_finite() {
        return None;
    }
    range_error(base.powf(exponent), base != 0.0)
}

fn check_exp(args: &[Option<f64>]) -> Option<SqlStateError> {
    match args.first().copied().flatten() {
        Some(x) if x.is_finite() => range_error(x.exp(), true),
        _ => None,
    }
}

/// PostgreSQL's errors for a result of finite operands that left a double's range: an
/// infinity (overflow), or zero where it cannot be (underflow).
fn range_error(result: f64, nonzero: bool) -> Option<SqlStateError> {
    if result.is_infinite() {
        Some(SqlStateError::new("22003", "value out of range: overflow"))
    } else if result == 0.0 && nonzero {
        Some(SqlStateError::new("22003", "value out of range: underflow"))
    } else {
        None
    }
}

/// `to_hex` of an integer as PostgreSQL's: a negative `integer` in 32-bit two's
/// complement (`ffffffff`), a `bigint` in 64 (DataFusion widens every integer to 64).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToHex {
    signature: Signature,
}

impl ScalarUDFImpl for ToHex {
    fn name(&self) -> &str {
        "to_hex"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16] => Ok(vec![DataType::Int32]),
            [t] if t.is_integer() => Ok(vec![DataType::Int64]),
            [DataType::Null] => Ok(vec![DataType::Int32]),
            _ => Err(no_such_function("to_hex", arg_types)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let out: datafusion::arrow::array::StringArray = match arrays[0].data_type() {
                DataType::Int32 => arrays[0]
                    .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                    .iter()
                    .map(|v| v.map(|v| format!("{:x}", v as u32)))
                    .collect(),
                _ => arrays[0]
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .iter()
                    .map(|v| v.map(|v| format!("{:x}", v as u64)))
                    .collect(),
            };
            Ok(Arc::new(out) as ArrayRef)
        })
    }
}

/// The cube root as the C library computes it, which PostgreSQL's `cbrt` calls. Rust's own
/// (and the one its runtime links in place of the C library's symbol) is correctly rounded,
/// and so differs in the last place from glibc's for some inputs: 27 gives
/// 3.0000000000000004 in PostgreSQL on Linux, 3 in Rust. The C library's is looked up once
/// at run time; where there is none to find, Rust's is used.
fn c_library_cbrt(v: f64) -> f64 {
    use std::ffi::{c_char, c_int, c_void};
    use std::sync::OnceLock;
    extern "C" {
        fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
        fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    }
    type Cbrt = unsafe extern "C" fn(f64) -> f64;
    static FOUND: OnceLock<Option<Cbrt>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        const RTLD_NOW: c_int = 2;
        // SAFETY: dlopen and dlsym are given NUL-terminated names; a non-null symbol named
        // `cbrt` in the C math library is that library's `double cbrt(double)`.
        unsafe {
            let library = dlopen(c"libm.so.6".as_ptr(), RTLD_NOW);
            if library.is_null() {
                return None;
            }
            let symbol = dlsym(library, c"cbrt".as_ptr());
            (!symbol.is_null()).then(|| std::mem::transmute::<*mut c_void, Cbrt>(symbol))
        }
    });
    match found {
        // SAFETY: the C library's cbrt reads only its argument.
        Some(cbrt) => unsafe { cbrt(v) },
        None => v.cbrt(),
    }
}

/// `cbrt(double precision)`, and the `||/` operator, as PostgreSQL computes them.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Cbrt {
    signature: Signature,
}

impl ScalarUDFImpl for Cbrt {
    fn name(&self) -> &str {
        "cbrt"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if t.is_numeric() || *t == DataType::Null => Ok(vec![DataType::Float64]),
            _ => Err(no_such_function("cbrt", arg_types)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let roots: Float64Array = arrays[0]
                .as_primitive::<Float64Type>()
                .unary(c_library_cbrt);
            Ok(Arc::new(roots) as ArrayRef)
        })
    }
}

/// `width_bucket(operand, low, high, count)`: the bucket of `count` equal buckets between
/// `low` and `high` the operand falls in (0 below, count + 1 above; the bounds may be
/// reversed), computed exactly for numerics; and `width_bucket(operand, thresholds)`:
/// how many of the sorted thresholds are at most the operand.
fn width_bucket(
    args: &[datafusion::scalar::ScalarValue],
) -> Result<datafusion::scalar::ScalarValue> {
    use datafusion::scalar::ScalarValue;
    use num_bigint::BigInt;
    let bad = |message: &str| -> DataFusionError { SqlStateError::new("2201G", message).into() };
    if args.iter().any(ScalarValue::is_null) {
        return Ok(ScalarValue::Int32(None));
    }
    if let [operand, ScalarValue::List(thresholds)] = args {
        let values = thresholds.value(0);
        let mut below = 0;
        for i in 0..values.len() {
            let t = ScalarValue::try_from_array(&values, i)?;
            if t.is_null() || t.partial_cmp(operand).is_some_and(|o| o.is_gt()) {
                break;
            }
            below += 1;
        }
        return Ok(ScalarValue::Int32(Some(below)));
    }
    let count = match args[3].cast_to(&DataType::Int64)? {
        ScalarValue::Int64(Some(n)) if n > 0 => n,
        _ => return Err(bad("count must be greater than zero")),
    };
    // Exact values at one scale: decimals as they are, doubles through their text.
    let exact = |v: &ScalarValue| -> Option<(BigInt, i64)> {
        match v {
            ScalarValue::Decimal128(Some(v), _, s) => Some((BigInt::from(*v), i64::from(*s))),
            _ => None,
        }
    };
    // The bucket of x between lo and hi (bounds in either order), its place within the
    // range computed by `inside`.
    fn bucket<T: PartialOrd + std::ops::Neg<Output = T>>(
        (x, lo, hi): (T, T, T),
        count: i64,
        inside: impl Fn(T, T, T) -> i64,
    ) -> Result<i64> {
        if lo == hi {
            return Err(SqlStateError::new("2201G", "lower bound cannot equal upper bound").into());
        }
        let (x, lo, hi) = if lo < hi { (x, lo, hi) } else { (-x, -lo, -hi) };
        Ok(if x < lo {
            0
        } else if x >= hi {
            count + 1
        } else {
            inside(x, lo, hi) + 1
        })
    }
    let bucket = match (exact(&args[0]), exact(&args[1]), exact(&args[2])) {
        (Some(x), Some(lo), Some(hi)) => {
            let scale = x.1.max(lo.1).max(hi.1);
            let at = |(v, s): (BigInt, i64)| v * BigInt::from(10).pow((scale - s) as u32);
            bucket((at(x), at(lo), at(hi)), count, |x, lo, hi| {
                i64::try_from((x - &lo) * count / (hi - lo)).unwrap_or(count)
            })?
        }
        _ => {
            let f = |v: &ScalarValue| match v.cast_to(&DataType::Float64) {
                Ok(ScalarValue::Float64(Some(f))) => Ok(f),
                _ => Err(DataFusionError::Internal(
                    "width_bucket: not a number".into(),
                )),
            };
            let (x, lo, hi) = (f(&args[0])?, f(&args[1])?, f(&args[2])?);
            if !lo.is_finite() || !hi.is_finite() {
                return Err(bad("lower and upper bounds must be finite"));
            }
            bucket((x, lo, hi), count, |x, lo, hi| {
                ((x - lo) / (hi - lo) * count as f64).floor() as i64
            })?
        }
    };
    i32::try_from(bucket)
        .map(|b| ScalarValue::Int32(Some(b)))
        .map_err(|_| SqlStateError::new("22003", "integer out of range").into())
}

/// `width_bucket`'s signature: PostgreSQL's numeric and double versions (a double
/// argument makes the call a double one), and the thresholds version.
#[derive(Debug, PartialEq, Eq, Hash)]
struct WidthBucket {
    signature: Signature,
}

impl ScalarUDFImpl for WidthBucket {
    fn name(&self) -> &str {
        "width_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [operand, DataType::List(item)] => {
                let to = if operand.is_floating() || item.data_type().is_floating() {
                    DataType::Float64
                } else {
                    DataType::Decimal128(38, 10)
                };
                Ok(vec![
                    to.clone(),
                    DataType::List(Arc::new(
                        datafusion::arrow::datatypes::Field::new_list_field(to, true),
                    )),
                ])
            }
            [a, b, c, n]
                if [a, b, c].iter().all(|t| t.is_numeric() || t.is_null()) && n.is_integer() =>
            {
                if [a, b, c].iter().any(|t| t.is_floating()) {
                    Ok(vec![
                        DataType::Float64,
                        DataType::Float64,
                        DataType::Float64,
                        DataType::Int64,
                    ])
                } else {
                    let numeric = |t: &DataType| match t {
                        DataType::Decimal128(..) => t.clone(),
                        _ => DataType::Decimal128(20, 0),
                    };
                    Ok(vec![numeric(a), numeric(b), numeric(c), DataType::Int64])
                }
            }
            _ => Err(no_such_function("width_bucket", arg_types)),
        }
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let rows = arrays.first().map_or(0, |a| a.len());
            let out = (0..rows)
                .map(|row| {
                    let values = arrays
                        .iter()
                        .map(|a| datafusion::scalar::ScalarValue::try_from_array(a, row))
                        .collect::<Result<Vec<_>>>()?;
                    width_bucket(&values)
                })
                .collect::<Result<Vec<_>>>()?;
            datafusion::scalar::ScalarValue::iter_to_array(out)
        })
    }
}
