//! `sum` of integers and numerics that raises 22003 where DataFusion's wraps around (`sum`
//! of 9223372036854775807 and 1 would be -9223372036854775808, and of two numerics near
//! 1e28 a negative number: wrong answers without an error).
//!
//! The result types are PostgreSQL's: `smallint` and `integer` sum into a `bigint`,
//! `bigint` into a `numeric` (see [`numeric_sum`]), `numeric` into a `numeric` of its places, `real` into a `real` (summed in
//! single precision, as PostgreSQL does) and `double precision` into a `double precision`.
//! Sums that leave their type are refused (22003). Intervals are summed field by field;
//! every other type is DataFusion's own `sum`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    i256, ArrowNativeTypeOp, ArrowNumericType, DataType, Decimal128Type, Field, FieldRef,
    Float32Type, Int32Type, Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType,
    IntervalUnit,
};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, ExprSchemable, GroupsAccumulator,
    ReversedUDAF, SetMonotonicity, Signature, Volatility, WindowFunctionDefinition,
};
use datafusion::scalar::ScalarValue;

use super::SqlStateError;

/// Registers the checked `sum` in place of DataFusion's.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(CheckedSum {
        inner: datafusion::functions_aggregate::sum::sum_udaf(),
        signature: Signature::user_defined(Volatility::Immutable),
        numeric_of_bigint: false,
    }));
}

/// A type whose sums are checked: 64-bit integers, decimals of a precision, and reals.
trait Summed: ArrowNumericType + std::fmt::Debug + Send + Sync {
    /// The error for a sum that does not fit.
    fn overflow() -> DataFusionError;
    /// Whether a sum fits the result type (a decimal's digits).
    fn fits(value: Self::Native, data_type: &DataType) -> bool;

    /// Whether `a + b`, which is `sum`, did not overflow.
    fn added(a: Self::Native, b: Self::Native, sum: Self::Native, data_type: &DataType) -> bool {
        let _ = (a, b);
        Self::fits(sum, data_type)
    }

    /// An integer input as a value of the sum's type (`None` where the sum is not of
    /// integers).
    fn from_i64(value: i64) -> Option<Self::Native>;
}

/// An integer type whose window sums are kept in 256 bits.
trait Wide: Summed {
    fn wide(value: Self::Native) -> i256;
    fn narrow(value: i256) -> Option<Self::Native>;
}

impl Summed for Int64Type {
    fn overflow() -> DataFusionError {
        SqlStateError::new("22003", "bigint out of range").into()
    }

    fn fits(_: i64, _: &DataType) -> bool {
        true
    }

    fn from_i64(value: i64) -> Option<i64> {
        Some(value)
    }
}

impl Wide for Int64Type {
    fn wide(value: i64) -> i256 {
        i256::from_i128(i128::from(value))
    }

    fn narrow(value: i256) -> Option<i64> {
        value.to_i128().and_then(|v| i64::try_from(v).ok())
    }
}

impl Summed for Decimal128Type {
    fn overflow() -> DataFusionError {
        SqlStateError::new("22003", "numeric field overflow").into()
    }

    fn fits(value: i128, data_type: &DataType) -> bool {
        match data_type {
            DataType::Decimal128(precision, _) => POWERS_OF_TEN
                .get(usize::from(*precision))
                .is_none_or(|bound| value.unsigned_abs() < *bound),
            _ => true,
        }
    }

    fn from_i64(value: i64) -> Option<i128> {
        Some(i128::from(value))
    }
}

/// 10^n for every precision of a Decimal128.
const POWERS_OF_TEN: [u128; 39] = {
    let mut powers = [1u128; 39];
    let mut n = 1;
    while n < 39 {
        powers[n] = powers[n - 1] * 10;
        n += 1;
    }
    powers
};

impl Wide for Decimal128Type {
    fn wide(value: i128) -> i256 {
        i256::from_i128(value)
    }

    fn narrow(value: i256) -> Option<i128> {
        value.to_i128()
    }
}

impl Summed for Float32Type {
    fn overflow() -> DataFusionError {
        SqlStateError::new("22003", "value out of range: overflow").into()
    }

    fn fits(_: f32, _: &DataType) -> bool {
        true
    }

    /// As PostgreSQL's `float4pl`: infinite only from an infinite operand.
    fn added(a: f32, b: f32, sum: f32, _: &DataType) -> bool {
        !sum.is_infinite() || a.is_infinite() || b.is_infinite()
    }

    fn from_i64(_: i64) -> Option<f32> {
        None
    }
}

/// Calls `f` with the row and value of each non-NULL input of a sum of type `T`: values
/// of that type, or integers (`integer`s summed into a `bigint`, `bigint`s into a
/// `numeric`), converted one by one.
fn for_each_input<T: Summed>(
    values: &ArrayRef,
    mut f: impl FnMut(usize, T::Native) -> Result<()>,
) -> Result<()> {
    let integer = |row: usize, v: i64, f: &mut dyn FnMut(usize, T::Native) -> Result<()>| {
        let value = T::from_i64(v).ok_or_else(|| {
            DataFusionError::Internal(format!("a sum of {} given integers", T::DATA_TYPE))
        })?;
        f(row, value)
    };
    match values.data_type() {
        DataType::Int32 if T::DATA_TYPE != DataType::Int32 => {
            for (row, v) in values.as_primitive::<Int32Type>().iter().enumerate() {
                if let Some(v) = v {
                    integer(row, i64::from(v), &mut f)?;
                }
            }
        }
        DataType::Int64 if T::DATA_TYPE != DataType::Int64 => {
            for (row, v) in values.as_primitive::<Int64Type>().iter().enumerate() {
                if let Some(v) = v {
                    integer(row, v, &mut f)?;
                }
            }
        }
        _ => {
            for (row, v) in values.as_primitive::<T>().iter().enumerate() {
                if let Some(v) = v {
                    f(row, v)?;
                }
            }
        }
    }
    Ok(())
}

/// DataFusion's `sum`, with checked accumulators for `bigint` and `numeric`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CheckedSum {
    inner: Arc<AggregateUDF>,
    signature: Signature,
    /// Whether a sum of `bigint`s is a `numeric` (see [`numeric_sum`]).
    numeric_of_bigint: bool,
}

/// Builds `$make::<T>` for the checked type of a sum's result, `None` for the others.
macro_rules! checked {
    ($args:expr, $make:ident) => {
        match $args.return_field.data_type() {
            _ if $args.is_distinct => None,
            DataType::Int64 => Some($make::<Int64Type>($args.return_field.data_type())),
            DataType::Decimal128(..) => {
                Some($make::<Decimal128Type>($args.return_field.data_type()))
            }
            _ => None,
        }
    };
}

/// The argument type of a sum of `arg`, where DataFusion's would differ: smaller integers
/// are summed as `integer`s, into a `bigint`; reals in single precision. (A `bigint` stays
/// one: [`numeric_sum`] makes its sum a `numeric` once, while the call's types are
/// resolved; a sum of `bigint` partial sums, as the planner splits a sum, is a `bigint`.)
fn summed_type(arg: &DataType) -> Option<DataType> {
    match arg {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Some(DataType::Int32),
        DataType::UInt8 | DataType::UInt16 => Some(DataType::Int32),
        DataType::Float16 | DataType::Float32 => Some(DataType::Float32),
        DataType::Float64 | DataType::Decimal128(..) => Some(arg.clone()),
        _ => None,
    }
}

/// `sum(x)` of a `bigint` as PostgreSQL's: a `numeric`, the `bigint`s added into a decimal
/// of no places (38 digits, which no count of 64-bit values can leave). Made so once,
/// when the query's types are resolved: a sum of `bigint` partial sums (as the planner
/// splits a sum beside a DISTINCT one) stays a `bigint`. `None` for other expressions.
pub(crate) fn numeric_sum(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let numeric = |func: &Arc<AggregateUDF>, args: &[Expr]| {
        let sum = func.inner().downcast_ref::<CheckedSum>()?;
        let [arg] = args else {
            return None;
        };
        if sum.numeric_of_bigint || arg.get_type(schema).ok()? != DataType::Int64 {
            return None;
        }
        Some(Arc::new(AggregateUDF::new_from_impl(CheckedSum {
            numeric_of_bigint: true,
            ..sum.clone()
        })))
    };
    match expr {
        Expr::AggregateFunction(f) => {
            let mut f = f.clone();
            f.func = numeric(&f.func, &f.params.args)?;
            Some(Expr::AggregateFunction(f))
        }
        Expr::WindowFunction(w) => match &w.fun {
            WindowFunctionDefinition::AggregateUDF(u) => {
                let mut w = w.as_ref().clone();
                w.fun = WindowFunctionDefinition::AggregateUDF(numeric(u, &w.params.args)?);
                Some(Expr::WindowFunction(Box::new(w)))
            }
            _ => None,
        },
        _ => None,
    }
}

/// A batch's integer columns as values of the sum's type `to` (`integer`s as `bigint`s,
/// `bigint`s as `numeric`s), for DataFusion's accumulators; other columns as they are.
fn widened(values: &[ArrayRef], to: &DataType) -> Result<Vec<ArrayRef>> {
    values
        .iter()
        .map(|v| match (v.data_type(), to) {
            (DataType::Int32 | DataType::Int64, DataType::Int64 | DataType::Decimal128(..))
                if v.data_type() != to =>
            {
                Ok(cast(v, to)?)
            }
            _ => Ok(v.clone()),
        })
        .collect()
}

/// The most digits of a `numeric` sum.
const MAX_PRECISION: u8 = 38;

fn one<T: Summed>(data_type: &DataType) -> Box<dyn Accumulator> {
    Box::new(SumAccumulator::<T> {
        sum: None,
        data_type: data_type.clone(),
    })
}

fn groups<T: Summed>(data_type: &DataType) -> Box<dyn GroupsAccumulator> {
    Box::new(SumGroups::<T> {
        sums: Vec::new(),
        seen: Vec::new(),
        data_type: data_type.clone(),
    })
}

fn sliding<T: Wide>(data_type: &DataType) -> Box<dyn Accumulator> {
    Box::new(SlidingSum::<T> {
        sum: i256::ZERO,
        rows: 0,
        data_type: data_type.clone(),
        summed: std::marker::PhantomData,
    })
}

/// Whether a sum's result is a `real` (summed in single precision).
fn real(args: &AccumulatorArgs) -> bool {
    args.return_field.data_type() == &DataType::Float32
}

/// Whether a sum's result is an interval (summed field by field, checked).
fn interval(args: &AccumulatorArgs) -> bool {
    matches!(
        args.return_field.data_type(),
        DataType::Interval(IntervalUnit::MonthDayNano)
    )
}

impl AggregateUDFImpl for CheckedSum {
    fn name(&self) -> &str {
        "sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if let [arg] = arg_types {
            if let Some(summed) = summed_type(arg) {
                return Ok(vec![summed]);
            }
        }
        // Other types as DataFusion's function takes them.
        super::inner_coercion(&self.inner, arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::Int32] => Ok(DataType::Int64),
            [DataType::Int64] if self.numeric_of_bigint => {
                Ok(DataType::Decimal128(MAX_PRECISION, 0))
            }
            [DataType::Float32] => Ok(DataType::Float32),
            [DataType::Decimal128(_, scale)] => Ok(DataType::Decimal128(MAX_PRECISION, *scale)),
            _ => self.inner.return_type(arg_types),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if interval(&args) && !args.is_distinct {
            return Ok(Box::new(IntervalSum::default()));
        }
        if real(&args) {
            return Ok(match args.is_distinct {
                true => Box::new(DistinctRealSum::default()),
                false => one::<Float32Type>(&DataType::Float32),
            });
        }
        match checked!(args, one) {
            Some(accumulator) => Ok(accumulator),
            None => Ok(Box::new(Widened(
                self.inner.accumulator(args.clone())?,
                args.return_field.data_type().clone(),
            ))),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        match args.return_field.data_type() {
            DataType::Float32 if args.is_distinct => Ok(vec![Arc::new(Field::new(
                format_state_name(args.name, "sum distinct"),
                DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true))),
                true,
            ))]),
            DataType::Float32 => Ok(vec![Arc::new(Field::new(
                format_state_name(args.name, "sum"),
                DataType::Float32,
                true,
            ))]),
            _ => self.inner.state_fields(args),
        }
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        match (interval(&args), real(&args)) {
            (true, _) => false,
            (false, true) => !args.is_distinct,
            (false, false) => self.inner.groups_accumulator_supported(args),
        }
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        if real(&args) {
            return Ok(groups::<Float32Type>(&DataType::Float32));
        }
        match checked!(args, groups) {
            Some(accumulator) => Ok(accumulator),
            None => self.inner.create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if interval(&args) && !args.is_distinct {
            return Ok(Box::new(IntervalSum::default()));
        }
        if real(&args) && !args.is_distinct {
            return Ok(Box::new(RealFrame::default()));
        }
        match checked!(args, sliding) {
            Some(accumulator) => Ok(accumulator),
            None => Ok(Box::new(Widened(
                self.inner.create_sliding_accumulator(args.clone())?,
                args.return_field.data_type().clone(),
            ))),
        }
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.inner().set_monotonicity(data_type)
    }
}

/// `a + b`, refused where it leaves the result type.
fn add<T: Summed>(a: T::Native, b: T::Native, data_type: &DataType) -> Result<T::Native> {
    a.add_checked(b)
        .ok()
        .filter(|sum| T::added(a, b, *sum, data_type))
        .ok_or_else(T::overflow)
}

/// DataFusion's accumulator of a sum (DISTINCT ones), given `integer` values as the
/// `bigint`s its result is.
#[derive(Debug)]
struct Widened(Box<dyn Accumulator>, DataType);

impl Accumulator for Widened {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.update_batch(&widened(values, &self.1)?)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.retract_batch(&widened(values, &self.1)?)
    }

    fn supports_retract_batch(&self) -> bool {
        self.0.supports_retract_batch()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.state()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.evaluate()
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

/// The sum of one group.
#[derive(Debug)]
struct SumAccumulator<T: Summed> {
    sum: Option<T::Native>,
    data_type: DataType,
}

impl<T: Summed> SumAccumulator<T> {
    fn add(&mut self, values: &ArrayRef) -> Result<()> {
        for_each_input::<T>(values, |_, v| {
            let total = self.sum.unwrap_or_default();
            self.sum = Some(add::<T>(total, v, &self.data_type)?);
            Ok(())
        })
    }

    fn value(&self) -> Result<ScalarValue> {
        let array =
            PrimitiveArray::<T>::from_iter([self.sum]).with_data_type(self.data_type.clone());
        ScalarValue::try_from_array(&array, 0)
    }
}

impl<T: Summed> Accumulator for SumAccumulator<T> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(&states[0])
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.value()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// The sum of a sliding window frame: rows enter and leave it, so the running total is
/// kept in 256 bits (a row may enter before another leaves) and checked when read.
#[derive(Debug)]
struct SlidingSum<T: Wide> {
    sum: i256,
    rows: u64,
    data_type: DataType,
    summed: std::marker::PhantomData<T>,
}

impl<T: Wide> SlidingSum<T> {
    fn apply(&mut self, values: &ArrayRef, leaving: bool) -> Result<()> {
        for_each_input::<T>(values, |_, v| {
            let v = T::wide(v);
            self.sum = match leaving {
                true => self.sum.wrapping_sub(v),
                false => self.sum.wrapping_add(v),
            };
            Ok(())
        })?;
        let rows = (values.len() - values.null_count()) as u64;
        self.rows = match leaving {
            true => self.rows.saturating_sub(rows),
            false => self.rows + rows,
        };
        Ok(())
    }
}

impl<T: Wide> Accumulator for SlidingSum<T> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], false)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], true)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.apply(&states[0], false)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let sum = match self.rows {
            0 => None,
            _ => Some(
                T::narrow(self.sum)
                    .filter(|v| T::fits(*v, &self.data_type))
                    .ok_or_else(T::overflow)?,
            ),
        };
        let array = PrimitiveArray::<T>::from_iter([sum]).with_data_type(self.data_type.clone());
        ScalarValue::try_from_array(&array, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// The sum of intervals, field by field as PostgreSQL adds them (months, days and time
/// apart), kept wide and refused (22008) where a field leaves its range; DataFusion's
/// wrapped the time around.
#[derive(Debug, Default)]
struct IntervalSum {
    months: i64,
    days: i64,
    nanos: i128,
    rows: u64,
}

impl IntervalSum {
    fn apply(&mut self, values: &ArrayRef, leaving: bool) {
        let values = values.as_primitive::<IntervalMonthDayNanoType>();
        let sign = if leaving { -1 } else { 1 };
        for v in values.iter().flatten() {
            self.months += sign * i64::from(v.months);
            self.days += sign * i64::from(v.days);
            self.nanos += i128::from(sign) * i128::from(v.nanoseconds);
        }
        let rows = (values.len() - values.null_count()) as u64;
        self.rows = match leaving {
            true => self.rows.saturating_sub(rows),
            false => self.rows + rows,
        };
    }
}

impl Accumulator for IntervalSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], false);
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], true);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.apply(&states[0], false);
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.rows == 0 {
            return Ok(ScalarValue::IntervalMonthDayNano(None));
        }
        let sum = i32::try_from(self.months)
            .ok()
            .zip(i32::try_from(self.days).ok())
            .zip(i64::try_from(self.nanos).ok())
            .ok_or_else(|| -> DataFusionError {
                SqlStateError::new("22008", "interval out of range").into()
            })?;
        let ((months, days), nanoseconds) = sum;
        Ok(ScalarValue::IntervalMonthDayNano(Some(
            IntervalMonthDayNano {
                months,
                days,
                nanoseconds,
            },
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// The sum of a sliding window frame of `real`s. PostgreSQL has no inverse for a `real`
/// sum and adds each frame's values afresh, in single precision; so does this, over the
/// values the frame holds (the window keeps the frame's rows anyway).
#[derive(Debug, Default)]
struct RealFrame {
    values: std::collections::VecDeque<f32>,
}

impl Accumulator for RealFrame {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.values
            .extend(values[0].as_primitive::<Float32Type>().iter().flatten());
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let leaving = values[0].len() - values[0].null_count();
        self.values.drain(..leaving.min(self.values.len()));
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float32(match self.values.is_empty() {
            true => None,
            false => Some(real_sum(self.values.iter())?),
        }))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<f32>()
    }
}

/// Reals added in order in single precision, refused (22003) where they overflow.
fn real_sum<'a>(mut values: impl Iterator<Item = &'a f32>) -> Result<f32> {
    values.try_fold(0f32, |sum, v| {
        add::<Float32Type>(sum, *v, &DataType::Float32)
    })
}

/// `sum(DISTINCT …)` of `real`s: each value once (zero and minus zero, and every NaN, being
/// one value), added in ascending order in single precision, as PostgreSQL adds the
/// sorted distinct values.
#[derive(Debug, Default)]
struct DistinctRealSum {
    values: std::collections::HashMap<u32, f32>,
}

impl DistinctRealSum {
    fn add(&mut self, values: &ArrayRef) {
        for v in values.as_primitive::<Float32Type>().iter().flatten() {
            let key = match v {
                _ if v == 0.0 => 0,
                _ if v.is_nan() => f32::NAN.to_bits(),
                _ => v.to_bits(),
            };
            self.values.entry(key).or_insert(v);
        }
    }
}

impl Accumulator for DistinctRealSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0]);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            self.add(&list);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self
            .values
            .values()
            .map(|v| ScalarValue::Float32(Some(*v)))
            .collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &DataType::Float32,
        ))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut values: Vec<f32> = self.values.values().copied().collect();
        values.sort_by(f32::total_cmp);
        Ok(ScalarValue::Float32(match values.is_empty() {
            true => None,
            false => Some(real_sum(values.iter())?),
        }))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 2 * std::mem::size_of::<f32>()
    }
}

/// The sums of many groups: a total and whether any value reached it, per group.
#[derive(Debug)]
struct SumGroups<T: Summed> {
    sums: Vec<T::Native>,
    seen: Vec<bool>,
    data_type: DataType,
}

impl<T: Summed> SumGroups<T> {
    fn add(
        &mut self,
        values: &ArrayRef,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total_groups: usize,
    ) -> Result<()> {
        self.sums.resize(total_groups, T::Native::default());
        self.seen.resize(total_groups, false);
        for_each_input::<T>(values, |row, v| {
            if filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                return Ok(());
            }
            let group = groups[row];
            let sum = &mut self.sums[group];
            *sum = add::<T>(*sum, v, &self.data_type)?;
            self.seen[group] = true;
            Ok(())
        })
    }

    fn emit(&mut self, emit_to: EmitTo) -> ArrayRef {
        let sums = emit_to.take_needed(&mut self.sums);
        let seen = emit_to.take_needed(&mut self.seen);
        Arc::new(
            PrimitiveArray::<T>::new(sums.into(), Some(NullBuffer::from(seen)))
                .with_data_type(self.data_type.clone()),
        )
    }
}

impl<T: Summed> GroupsAccumulator for SumGroups<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(&values[0], group_indices, opt_filter, total_num_groups)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(&values[0], group_indices, None, total_num_groups)
    }

    /// Each row as its own group's state: its value, or NULL where filtered out.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let mut kept: Vec<Option<T::Native>> = vec![None; values[0].len()];
        for_each_input::<T>(&values[0], |row, v| {
            if !opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                kept[row] = Some(v);
            }
            Ok(())
        })?;
        let kept: PrimitiveArray<T> = kept.into_iter().collect();
        Ok(vec![Arc::new(kept.with_data_type(self.data_type.clone()))])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(self.emit(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.emit(emit_to)])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * std::mem::size_of::<T::Native>() + self.seen.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, Int64Array};

    fn int64s(values: Vec<Option<i64>>) -> ArrayRef {
        Arc::new(Int64Array::from(values))
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let mut one = SumAccumulator::<Int64Type> {
            sum: None,
            data_type: DataType::Int64,
        };
        one.add(&int64s(vec![Some(i64::MAX), None])).unwrap();
        assert!(one.add(&int64s(vec![Some(1)])).is_err());

        let mut sums = SumGroups::<Int64Type> {
            sums: Vec::new(),
            seen: Vec::new(),
            data_type: DataType::Int64,
        };
        let values = int64s(vec![Some(5), None, Some(i64::MAX), Some(-3)]);
        sums.add(&values, &[0, 1, 2, 0], None, 3).unwrap();
        let emitted = sums.emit(EmitTo::All);
        let emitted = emitted.as_primitive::<Int64Type>();
        assert_eq!(emitted.value(0), 2);
        assert!(emitted.is_null(1));
        assert_eq!(emitted.value(2), i64::MAX);
        assert!(sums
            .add(&int64s(vec![Some(i64::MAX), Some(1)]), &[0, 0], None, 1)
            .is_err());
    }

    #[test]
    fn numeric_sums_keep_to_their_digits() {
        let data_type = DataType::Decimal128(38, 10);
        let nine = 9 * 10i128.pow(37);
        let values: ArrayRef = Arc::new(
            Decimal128Array::from(vec![nine, nine])
                .with_precision_and_scale(38, 10)
                .unwrap(),
        );
        let mut one = SumAccumulator::<Decimal128Type> {
            sum: None,
            data_type: data_type.clone(),
        };
        assert!(one.add(&values).is_err());
        let mut frame = SlidingSum::<Decimal128Type> {
            sum: i256::ZERO,
            rows: 0,
            data_type,
            summed: std::marker::PhantomData,
        };
        frame.update_batch(std::slice::from_ref(&values)).unwrap();
        assert!(frame.evaluate().is_err());
        frame.retract_batch(&[values.slice(0, 1)]).unwrap();
        assert_eq!(
            frame.evaluate().unwrap().to_string(),
            "9000000000000000000000000000.0000000000"
        );
    }
}
