//! `sum` of integers that raises 22003 "bigint out of range" where DataFusion's wraps
//! around (`sum` of 9223372036854775807 and 1 would be -9223372036854775808, a wrong
//! answer without an error).
//!
//! PostgreSQL sums `bigint` into a `numeric` and never overflows; Henge keeps `bigint`
//! (sums of 64-bit integers stay 64-bit integer additions, and the aggregation pushed into
//! segment scans keeps its partial states) and refuses the sums that do not fit. Every
//! other type is DataFusion's own `sum`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::sum_checked;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
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

fn overflow() -> DataFusionError {
    SqlStateError::new("22003", "bigint out of range").into()
}

/// DataFusion's `sum`, with checked accumulators for `bigint`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedSum {
    inner: Arc<AggregateUDF>,
}

impl CheckedSum {
    fn checked(args: &AccumulatorArgs) -> bool {
        !args.is_distinct && *args.return_field.data_type() == DataType::Int64
    }
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
        match Self::checked(&args) {
            true => Ok(Box::new(SumAccumulator::default())),
            false => self.inner.accumulator(args),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        match Self::checked(&args) {
            true => Ok(Box::new(SumGroups::default())),
            false => self.inner.create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match Self::checked(&args) {
            true => Ok(Box::new(SlidingSum::default())),
            false => self.inner.create_sliding_accumulator(args),
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

/// The sum of one group.
#[derive(Debug, Default)]
struct SumAccumulator {
    sum: Option<i64>,
}

impl SumAccumulator {
    fn add(&mut self, values: &Int64Array) -> Result<()> {
        if let Some(part) = sum_checked(values).map_err(|_| overflow())? {
            let total = self
                .sum
                .unwrap_or(0)
                .checked_add(part)
                .ok_or_else(overflow)?;
            self.sum = Some(total);
        }
        Ok(())
    }
}

impl Accumulator for SumAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(values[0].as_primitive::<Int64Type>())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(states[0].as_primitive::<Int64Type>())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(self.sum)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(self.sum))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// The sum of a sliding window frame: rows enter and leave it, so the running total is
/// kept in 128 bits (a row may enter before another leaves) and checked when read.
#[derive(Debug, Default)]
struct SlidingSum {
    sum: i128,
    rows: u64,
}

impl SlidingSum {
    fn apply(&mut self, values: &Int64Array, leaving: bool) {
        for v in values.iter().flatten() {
            match leaving {
                true => self.sum -= i128::from(v),
                false => self.sum += i128::from(v),
            }
        }
        let rows = (values.len() - values.null_count()) as u64;
        self.rows = match leaving {
            true => self.rows.saturating_sub(rows),
            false => self.rows + rows,
        };
    }
}

impl Accumulator for SlidingSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values[0].as_primitive::<Int64Type>(), false);
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values[0].as_primitive::<Int64Type>(), true);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.apply(states[0].as_primitive::<Int64Type>(), false);
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match self.rows {
            0 => Ok(ScalarValue::Int64(None)),
            _ => i64::try_from(self.sum)
                .map(|sum| ScalarValue::Int64(Some(sum)))
                .map_err(|_| overflow()),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// The sums of many groups: a total and whether any value reached it, per group.
#[derive(Debug, Default)]
struct SumGroups {
    sums: Vec<i64>,
    seen: Vec<bool>,
}

impl SumGroups {
    fn add(
        &mut self,
        values: &Int64Array,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total_groups: usize,
    ) -> Result<()> {
        self.sums.resize(total_groups, 0);
        self.seen.resize(total_groups, false);
        for (row, &group) in groups.iter().enumerate() {
            if values.is_null(row) || filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            let sum = &mut self.sums[group];
            *sum = sum.checked_add(values.value(row)).ok_or_else(overflow)?;
            self.seen[group] = true;
        }
        Ok(())
    }

    fn emit(&mut self, emit_to: EmitTo) -> ArrayRef {
        let sums = emit_to.take_needed(&mut self.sums);
        let seen = emit_to.take_needed(&mut self.seen);
        Arc::new(Int64Array::new(sums.into(), Some(NullBuffer::from(seen))))
    }
}

impl GroupsAccumulator for SumGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(
            values[0].as_primitive::<Int64Type>(),
            group_indices,
            opt_filter,
            total_num_groups,
        )
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(
            values[0].as_primitive::<Int64Type>(),
            group_indices,
            None,
            total_num_groups,
        )
    }

    /// Each row as its own group's state: its value, or NULL where filtered out.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let values = values[0].as_primitive::<Int64Type>();
        let kept: Int64Array = values
            .iter()
            .enumerate()
            .map(|(row, v)| match opt_filter {
                Some(f) if !f.is_valid(row) || !f.value(row) => None,
                _ => v,
            })
            .collect();
        Ok(vec![Arc::new(kept)])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(self.emit(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.emit(emit_to)])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * std::mem::size_of::<i64>() + self.seen.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let mut one = SumAccumulator::default();
        one.add(&Int64Array::from(vec![Some(i64::MAX), None]))
            .unwrap();
        assert!(one.add(&Int64Array::from(vec![1])).is_err());

        let mut groups = SumGroups::default();
        let values = Int64Array::from(vec![Some(5), None, Some(i64::MAX), Some(-3)]);
        groups.add(&values, &[0, 1, 2, 0], None, 3).unwrap();
        let sums = groups.emit(EmitTo::All);
        let sums = sums.as_primitive::<Int64Type>();
        assert_eq!(sums.value(0), 2);
        assert!(sums.is_null(1));
        assert_eq!(sums.value(2), i64::MAX);
        let mut groups = SumGroups::default();
        assert!(groups
            .add(&Int64Array::from(vec![i64::MAX, 1]), &[0, 0], None, 1)
            .is_err());
    }
}
