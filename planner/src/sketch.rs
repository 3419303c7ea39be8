//! `APPROX_COUNT_DISTINCT(expr)` and `APPROX_QUANTILE(expr, fraction)` on Apache
//! DataSketches' HLL and KLL sketches ([`henge_ingest::sketch`]).
//!
//! Each takes either values, which it sketches, or a rolled-up table's sketch column
//! (`ROLLUP HLL`, `ROLLUP QUANTILES`), whose stored sketches it merges: the column's Arrow
//! field is marked with its sketch's extension name, through views, subqueries and joins.
//! Partial aggregates travel between partitions as serialized sketches.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use henge_ingest::sketch::{hll_takes, quantiles_take, Hll, Quantiles, Sketch, SketchError};
use henge_storage::schema::{EXTENSION_NAME_KEY, HLL_SKETCH_EXTENSION, QUANTILES_SKETCH_EXTENSION};

use crate::pg::{no_such_function, SqlStateError};

/// Registers both, with Druid's other names for them.
pub fn register(ctx: &datafusion::execution::context::SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(ApproxCountDistinct::new()));
    ctx.register_udaf(AggregateUDF::new_from_impl(ApproxQuantile::new()));
}

/// Whether `field` is a stored sketch column of the kind named `extension`.
fn holds(field: &Field, extension: &str) -> bool {
    field.data_type() == &DataType::Binary
        && field.metadata().get(EXTENSION_NAME_KEY).map(String::as_str) == Some(extension)
}

fn sketch_error(e: SketchError) -> DataFusionError {
    let message = match &e {
        // PostgreSQL's words for percentile_cont's.
        SketchError::Rank(rank) => format!("percentile value {rank} is not between 0 and 1"),
        other => other.to_string(),
    };
    let code = match e {
        SketchError::Rank(_) => "22003",
        other => other.sqlstate().code(),
    };
    SqlStateError::new(code, message).into()
}

/// Values in the plain layout the sketches read (strings and bytes of any layout as
/// `Utf8` and `Binary`).
fn plain(array: &ArrayRef) -> Result<ArrayRef> {
    let target = match array.data_type() {
        DataType::Dictionary(_, value) => plain_type(value),
        other => plain_type(other),
    };
    match target {
        Some(target) if &target != array.data_type() => Ok(cast(array, &target)?),
        _ => Ok(array.clone()),
    }
}

fn plain_type(ty: &DataType) -> Option<DataType> {
    Some(match ty {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Binary | DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        other => other.clone(),
    })
}

fn plain_of(field: &Field) -> DataType {
    let ty = match field.data_type() {
        DataType::Dictionary(_, value) => value.as_ref(),
        other => other,
    };
    plain_type(ty).unwrap_or_else(|| ty.clone())
}

/// `APPROX_COUNT_DISTINCT(expr)`: the HyperLogLog estimate of the number of distinct
/// non-NULL values, as bigint.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ApproxCountDistinct {
    signature: Signature,
    aliases: Vec<String>,
}

impl ApproxCountDistinct {
    fn new() -> ApproxCountDistinct {
        ApproxCountDistinct {
            signature: Signature::any(1, Volatility::Immutable),
            aliases: vec!["approx_count_distinct_ds_hll".to_owned()],
        }
    }
}

impl AggregateUDFImpl for ApproxCountDistinct {
    fn name(&self) -> &str {
        "approx_count_distinct"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn return_field(&self, args: &[FieldRef]) -> Result<FieldRef> {
        let field = &args[0];
        if !holds(field, HLL_SKETCH_EXTENSION) && !hll_takes(&plain_of(field)) {
            return Err(no_such_function(self.name(), &[field.data_type().clone()]));
        }
        Ok(Arc::new(Field::new(self.name(), DataType::Int64, false)))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SketchAccumulator {
            sketch: Hll::new(),
            sketches: holds(&args.expr_fields[0], HLL_SKETCH_EXTENSION),
            answer: |hll, _| Ok(ScalarValue::Int64(Some(hll.estimate()))),
            rank: 0.0,
            // The union's registers once dense, one byte each.
            size: 1 << henge_ingest::sketch::HLL_LG_K,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        sketch_state(args.name, "hll")
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }
}

/// `APPROX_QUANTILE(expr, fraction)`: the value at that fraction of the ordered non-NULL
/// values, by a KLL sketch, as double precision (NULL when there are none).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ApproxQuantile {
    signature: Signature,
    aliases: Vec<String>,
}

impl ApproxQuantile {
    fn new() -> ApproxQuantile {
        ApproxQuantile {
            signature: Signature::any(2, Volatility::Immutable),
            aliases: vec!["approx_quantile_ds".to_owned()],
        }
    }
}

impl AggregateUDFImpl for ApproxQuantile {
    fn name(&self) -> &str {
        "approx_quantile"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn return_field(&self, args: &[FieldRef]) -> Result<FieldRef> {
        let (value, fraction) = (&args[0], &args[1]);
        let numeric = |ty: &DataType| quantiles_take(ty) || ty == &DataType::Null;
        if (!holds(value, QUANTILES_SKETCH_EXTENSION) && !numeric(value.data_type()))
            || !numeric(fraction.data_type())
        {
            return Err(no_such_function(
                self.name(),
                &[value.data_type().clone(), fraction.data_type().clone()],
            ));
        }
        Ok(Arc::new(Field::new(self.name(), DataType::Float64, true)))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let rank = constant_fraction(&args.exprs[1])?;
        if !(0.0..=1.0).contains(&rank) {
            return Err(sketch_error(SketchError::Rank(rank)));
        }
        Ok(Box::new(SketchAccumulator {
            sketch: Quantiles::new(),
            sketches: holds(&args.expr_fields[0], QUANTILES_SKETCH_EXTENSION),
            answer: |quantiles, rank| {
                let value = quantiles.quantile(rank).map_err(sketch_error)?;
                Ok(ScalarValue::Float64(value))
            },
            rank,
            // k items at the top level and about as many below.
            size: 3 * usize::from(henge_ingest::sketch::KLL_K) * 8,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        sketch_state(args.name, "kll")
    }
}

/// The fraction argument, which must be a constant.
fn constant_fraction(expr: &Arc<dyn PhysicalExpr>) -> Result<f64> {
    let refused = || -> DataFusionError {
        SqlStateError::new(
            "0A000",
            "the fraction of APPROX_QUANTILE must be a constant number",
        )
        .into()
    };
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let value = match expr.evaluate(&empty).map_err(|_| refused())? {
        ColumnarValue::Scalar(value) => value,
        ColumnarValue::Array(_) => return Err(refused()),
    };
    if value.is_null() {
        return Err(refused());
    }
    match value.cast_to(&DataType::Float64).map_err(|_| refused())? {
        ScalarValue::Float64(Some(rank)) => Ok(rank),
        _ => Err(refused()),
    }
}

/// Sketches values, or merges the stored sketches of a sketch column, and answers from the
/// sketch with `answer` (given `rank`, for quantiles).
#[derive(Debug)]
struct SketchAccumulator<S: Sketch> {
    sketch: S,
    /// The input is a sketch column: its values are sketches to merge.
    sketches: bool,
    answer: fn(&S, f64) -> Result<ScalarValue>,
    rank: f64,
    /// What the sketch holds of memory at most, about.
    size: usize,
}

impl<S: Sketch + 'static> Accumulator for SketchAccumulator<S> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = plain(&values[0])?;
        if values.data_type() == &DataType::Null {
            return Ok(());
        }
        for row in 0..values.len() {
            let added = match self.sketches {
                true if values.is_valid(row) => {
                    self.sketch.add_sketch(values.as_binary::<i32>().value(row))
                }
                true => Ok(()),
                false => self.sketch.add_value(values.as_ref(), row),
            };
            added.map_err(sketch_error)?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let states = states[0].as_binary::<i32>();
        for state in states.iter().flatten() {
            self.sketch.add_sketch(state).map_err(sketch_error)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.sketch.to_bytes()))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        (self.answer)(&self.sketch, self.rank)
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.size
    }
}

/// The partial state of either aggregate: its serialized sketch.
fn sketch_state(name: &str, kind: &str) -> Result<Vec<FieldRef>> {
    Ok(vec![Arc::new(Field::new(
        format_state_name(name, kind),
        DataType::Binary,
        true,
    ))])
}
