//! `sum` of integers and numerics that raises 22003 where DataFusion's wraps around (`sum`
//! of 9223372036854775807 and 1 would be -9223372036854775808, and of two numerics near
//! 1e28 a negative number: wrong answers without an error).
//!
//! PostgreSQL sums `bigint` into a `numeric` and never overflows; Henge keeps `bigint`
//! (sums of 64-bit integers stay 64-bit integer additions, and the aggregation pushed into
//! segment scans keeps its partial states) and refuses the sums that do not fit, as it
//! refuses numeric sums beyond their type's digits. Every other type is DataFusion's own
//! `sum`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::sum_checked;
use datafusion::arrow::datatypes::{
    i256, ArrowNativeTypeOp, ArrowNumericType, DataType, Decimal128Type, FieldRef, Int64Type,
    IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, ReversedUDAF,
    SetMonotonicity, Signature,
};
use datafusion::scalar::ScalarValue;

use super::SqlStateError;

/// Registers the checked `sum` in place of DataFusion's.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(CheckedSum {
        inner: datafusion::functions_aggregate::sum::sum_udaf(),
    }));
}

/// A type whose sums are checked: 64-bit integers, and decimals of a precision.
trait Summed: ArrowNumericType + std::fmt::Debug + Send + Sync {
    /// The error for a sum that does not fit.
    fn overflow() -> DataFusionError;
    /// Whether a sum fits the result type (a decimal's digits).
    fn fits(value: Self::Native, data_type: &DataType) -> bool;
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
            DataType::Decimal128(precision, _) => {
                value.unsigned_abs() < 10u128.pow(u32::from(*precision))
            }
            _ => true,
        }
    }

    fn wide(value: i128) -> i256 {
        i256::from_i128(value)
    }

    fn narrow(value: i256) -> Option<i128> {
        value.to_i128()
    }
}

/// DataFusion's `sum`, with checked accumulators for `bigint` and `numeric`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedSum {
    inner: Arc<AggregateUDF>,
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

fn sliding<T: Summed>(data_type: &DataType) -> Box<dyn Accumulator> {
    Box::new(SlidingSum::<T> {
        sum: i256::ZERO,
        rows: 0,
        data_type: data_type.clone(),
        summed: std::marker::PhantomData,
    })
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
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if interval(&args) && !args.is_distinct {
            return Ok(Box::new(IntervalSum::default()));
        }
        match checked!(args, one) {
            Some(accumulator) => Ok(accumulator),
            None => self.inner.accumulator(args),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !interval(&args) && self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        match checked!(args, groups) {
            Some(accumulator) => Ok(accumulator),
            None => self.inner.create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if interval(&args) && !args.is_distinct {
            return Ok(Box::new(IntervalSum::default()));
        }
        match checked!(args, sliding) {
            Some(accumulator) => Ok(accumulator),
            None => self.inner.create_sliding_accumulator(args),
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
        .filter(|sum| T::fits(*sum, data_type))
        .ok_or_else(T::overflow)
}

/// The sum of one group.
#[derive(Debug)]
struct SumAccumulator<T: Summed> {
    sum: Option<T::Native>,
    data_type: DataType,
}

impl<T: Summed> SumAccumulator<T> {
    fn add(&mut self, values: &ArrayRef) -> Result<()> {
        if let Some(part) = sum_checked(values.as_primitive::<T>()).map_err(|_| T::overflow())? {
            let total = self.sum.unwrap_or_default();
            self.sum = Some(add::<T>(total, part, &self.data_type)?);
        }
        Ok(())
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
struct SlidingSum<T: Summed> {
    sum: i256,
    rows: u64,
    data_type: DataType,
    summed: std::marker::PhantomData<T>,
}

impl<T: Summed> SlidingSum<T> {
    fn apply(&mut self, values: &ArrayRef, leaving: bool) {
        let values = values.as_primitive::<T>();
        for v in values.iter().flatten() {
            let v = T::wide(v);
            self.sum = match leaving {
                true => self.sum.wrapping_sub(v),
                false => self.sum.wrapping_add(v),
            };
        }
        let rows = (values.len() - values.null_count()) as u64;
        self.rows = match leaving {
            true => self.rows.saturating_sub(rows),
            false => self.rows + rows,
        };
    }
}

impl<T: Summed> Accumulator for SlidingSum<T> {
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
        let values = values.as_primitive::<T>();
        self.sums.resize(total_groups, T::Native::default());
        self.seen.resize(total_groups, false);
        for (row, &group) in groups.iter().enumerate() {
            if values.is_null(row) || filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            let sum = &mut self.sums[group];
            *sum = add::<T>(*sum, values.value(row), &self.data_type)?;
            self.seen[group] = true;
        }
        Ok(())
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
        let values = values[0].as_primitive::<T>();
        let kept: PrimitiveArray<T> = values
            .iter()
            .enumerate()
            .map(|(row, v)| match opt_filter {
                Some(f) if !f.is_valid(row) || !f.value(row) => None,
                _ => v,
            })
            .collect();
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
