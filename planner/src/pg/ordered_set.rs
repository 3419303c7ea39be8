//! PostgreSQL's ordered-set aggregates DataFusion lacks: `percentile_disc(f) WITHIN GROUP
//! (ORDER BY x)` (the first value at or past the fraction `f` of the ordered values) and
//! `mode() WITHIN GROUP (ORDER BY x)` (the most frequent value, the first in the order
//! among equally frequent ones), for any type that can be ordered.
//!
//! Like DataFusion's `percentile_cont`, they hold a group's values until the end; the
//! query memory pool counts them (`size`), so a large group spills or fails cleanly.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::{concat, filter, is_not_null, partition, sort_to_indices, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

use super::SqlStateError;

/// Registers `percentile_disc` and `mode`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(OrderedSet::new(
        Kind::PercentileDisc,
    )));
    ctx.register_udaf(AggregateUDF::new_from_impl(OrderedSet::new(Kind::Mode)));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    PercentileDisc,
    Mode,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct OrderedSet {
    kind: Kind,
    signature: Signature,
}

impl OrderedSet {
    fn new(kind: Kind) -> OrderedSet {
        OrderedSet {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for OrderedSet {
    fn name(&self) -> &str {
        match self.kind {
            Kind::PercentileDisc => "percentile_disc",
            Kind::Mode => "mode",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match (self.kind, arg_types) {
            (Kind::PercentileDisc, [value, _]) => Ok(vec![value.clone(), DataType::Float64]),
            (Kind::Mode, [value]) => Ok(vec![value.clone()]),
            _ => Err(super::no_such_function(self.name(), arg_types)),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new_list_field(args.input_fields[0].data_type().clone(), true);
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            DataType::List(Arc::new(item)),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        // Arrow orders an interval's months, days and time one after the other, not as
        // PostgreSQL compares intervals. (Refused here: an error from the coercion would
        // reach the client wrapped in DataFusion's own.)
        if matches!(args.expr_fields[0].data_type(), DataType::Interval(_)) {
            return Err(SqlStateError::new(
                "0A000",
                format!("{}(interval) is not supported", self.name()),
            )
            .into());
        }
        let fraction = match self.kind {
            Kind::Mode => None,
            Kind::PercentileDisc => Some(fraction(&args)?),
        };
        let descending = args
            .order_bys
            .first()
            .is_some_and(|order| order.options.descending);
        Ok(Box::new(Values {
            data_type: args.expr_fields[0].data_type().clone(),
            values: Vec::new(),
            bytes: 0,
            descending,
            fraction,
        }))
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}

/// `percentile_disc`'s fraction: a constant between 0 and 1.
fn fraction(args: &AccumulatorArgs) -> Result<f64> {
    // A constant evaluates without any row (a column would fail to).
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let constant = match args.exprs.get(1).map(|e| e.evaluate(&empty)) {
        Some(Ok(ColumnarValue::Scalar(value))) => Some(value),
        _ => None,
    };
    let value = match constant {
        Some(ScalarValue::Float64(Some(v))) => v,
        Some(other) if !other.is_null() => match other.cast_to(&DataType::Float64)? {
            ScalarValue::Float64(Some(v)) => v,
            _ => return Err(not_constant()),
        },
        _ => return Err(not_constant()),
    };
    if !(0.0..=1.0).contains(&value) {
        return Err(SqlStateError::new(
            "22003",
            format!("percentile value {value} is not between 0 and 1"),
        )
        .into());
    }
    Ok(value)
}

fn not_constant() -> DataFusionError {
    SqlStateError::new(
        "0A000",
        "percentile_disc with a fraction that is not a constant is not supported",
    )
    .into()
}

/// A group's values (NULLs left out), in the arrays they came in.
#[derive(Debug)]
struct Values {
    data_type: DataType,
    values: Vec<ArrayRef>,
    bytes: usize,
    descending: bool,
    /// `percentile_disc`'s fraction; `None` for `mode`.
    fraction: Option<f64>,
}

impl Values {
    fn add(&mut self, array: &ArrayRef) -> Result<()> {
        let kept = match array.null_count() {
            0 => array.clone(),
            _ => filter(array, &is_not_null(array)?)?,
        };
        if !kept.is_empty() {
            self.bytes += kept.get_array_memory_size();
            self.values.push(kept);
        }
        Ok(())
    }

    fn all(&self) -> Result<ArrayRef> {
        match self.values.as_slice() {
            [] => Ok(datafusion::arrow::array::new_empty_array(&self.data_type)),
            [one] => Ok(one.clone()),
            many => {
                let refs: Vec<&dyn Array> = many.iter().map(|a| a.as_ref()).collect();
                Ok(concat(&refs)?)
            }
        }
    }
}

impl Accumulator for Values {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for list in lists.iter().flatten() {
            self.add(&list)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let all = self.all()?;
        let list = ListArray::new(
            Arc::new(Field::new_list_field(self.data_type.clone(), true)),
            OffsetBuffer::from_lengths([all.len()]),
            all,
            None,
        );
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let all = self.all()?;
        if all.is_empty() {
            return ScalarValue::try_from(&self.data_type);
        }
        let order = SortOptions {
            descending: self.descending,
            nulls_first: false,
        };
        let sorted = take(&all, &sort_to_indices(&all, Some(order), None)?, None)?;
        let row = match self.fraction {
            Some(fraction) => {
                // The first value whose position reaches the fraction of the count.
                let n = sorted.len();
                ((fraction * n as f64).ceil() as usize).clamp(1, n) - 1
            }
            None => {
                // The longest run of equal values; the first of the longest ones.
                let runs = partition(std::slice::from_ref(&sorted))?;
                runs.ranges()
                    .into_iter()
                    .fold((0, 0), |(best, len), r| match r.end - r.start > len {
                        true => (r.start, r.end - r.start),
                        false => (best, len),
                    })
                    .0
            }
        };
        ScalarValue::try_from_array(&sorted, row)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.bytes
    }
}
