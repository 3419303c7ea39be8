//! The sketches of rolled-up tables' sketch columns (`ROLLUP HLL`, `ROLLUP QUANTILES`) and
//! of the aggregates that read them (`APPROX_COUNT_DISTINCT`, `APPROX_QUANTILE`).
//!
//! Both are Apache DataSketches' (the `datasketches` crate, the project's own Rust port):
//! HyperLogLog for distinct counts and KLL for quantiles — the sketch families Druid
//! stores, in the same binary format, so a stored sketch can be read by DataSketches in
//! Java, C++ or Python. Their sparse forms keep a sketch of a few values a few bytes long,
//! which matters when every stored row of a rolled-up table holds one (DataFusion's own
//! HyperLogLog is a fixed 16 KiB of registers); their merges are exact (HLL) or keep the
//! stated error bound (KLL), so a sketch column answers across segments and time ranges as
//! a sketch of all the values at once would.
//!
//! Values are hashed by their bytes: text and `bytea` as they are, integers, dates and
//! timestamps as 8-byte little-endian integers (DataSketches' `update(long)`), floating
//! point as the bits of the double (with -0 as 0), numerics as their unscaled 16-byte
//! integer, booleans as one byte. A column hashes the same way wherever it is sketched, so
//! a rolled-up table's sketches and a sketch of the raw rows agree.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType,
};
use datasketches::common::SearchCriteria;
use datasketches::hash::value::raw_bytes;
use datasketches::hll::{HllSketch, HllType, HllUnion};
use datasketches::kll::{KllFloat, KllSketch};

use henge_storage::SqlState;

/// log2 of the HLL sketches' register count: 4096 registers, about 1.6 % relative
/// standard error (Druid's default).
pub const HLL_LG_K: u8 = 12;

/// The KLL sketches' k: about 1.65 % normalized rank error (DataSketches' default).
pub const KLL_K: u16 = 200;

/// A sketch that cannot be built or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SketchError {
    #[error("a quantiles sketch cannot take NaN")]
    NaN,
    #[error("cannot sketch values of type {0}")]
    Unsupported(String),
    #[error("a stored sketch is damaged: {0}")]
    Damaged(String),
    #[error("quantile {0} is not between 0 and 1")]
    Rank(f64),
}

impl SketchError {
    pub fn sqlstate(&self) -> SqlState {
        use henge_storage::sqlstate as state;
        match self {
            SketchError::NaN | SketchError::Rank(_) => state::INVALID_PARAMETER_VALUE,
            SketchError::Unsupported(_) => state::FEATURE_NOT_SUPPORTED,
            SketchError::Damaged(_) => state::DATA_CORRUPTED,
        }
    }
}

/// Whether values of Arrow type `ty` can be sketched for distinct counts.
pub fn hll_takes(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Boolean
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32
            | DataType::Timestamp(..)
    )
}

/// Whether values of Arrow type `ty` can be sketched for quantiles (numbers).
pub fn quantiles_take(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
    )
}

/// A sketch being built, from values and from serialized sketches of the same kind.
pub trait Sketch: Default + std::fmt::Debug + Send + Sync {
    /// Adds the value of `array` at `row` (nothing for NULL).
    fn add_value(&mut self, array: &dyn Array, row: usize) -> Result<(), SketchError>;
    /// Adds a serialized sketch's values.
    fn add_sketch(&mut self, bytes: &[u8]) -> Result<(), SketchError>;
    /// The sketch in DataSketches' compact binary form.
    fn to_bytes(&self) -> Vec<u8>;
}

/// A distinct count being built: from values, from serialized sketches, or both.
#[derive(Debug, Clone)]
pub struct Hll(HllUnion);

impl Default for Hll {
    fn default() -> Hll {
        Hll::new()
    }
}

impl Hll {
    pub fn new() -> Hll {
        Hll(HllUnion::new(HLL_LG_K).expect("HLL_LG_K is a valid lg_k"))
    }

    /// The estimated number of distinct values, rounded.
    pub fn estimate(&self) -> i64 {
        self.0.estimate().round() as i64
    }
}

impl Sketch for Hll {
    /// Adds the value of `array` at `row` (nothing for NULL).
    fn add_value(&mut self, array: &dyn Array, row: usize) -> Result<(), SketchError> {
        if array.is_null(row) {
            return Ok(());
        }
        let mut scratch = [0u8; 16];
        let bytes: &[u8] = match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().value(row).as_bytes(),
            DataType::Binary => array.as_binary::<i32>().value(row),
            DataType::Boolean => {
                scratch[0] = u8::from(array.as_boolean().value(row));
                &scratch[..1]
            }
            DataType::Decimal128(..) => {
                scratch = array
                    .as_primitive::<Decimal128Type>()
                    .value(row)
                    .to_le_bytes();
                &scratch
            }
            DataType::Float32 | DataType::Float64 => {
                let value = match array.data_type() {
                    DataType::Float32 => f64::from(array.as_primitive::<Float32Type>().value(row)),
                    _ => array.as_primitive::<Float64Type>().value(row),
                };
                // -0 and 0 are one value, and every NaN one too.
                let value = if value == 0.0 {
                    0.0
                } else if value.is_nan() {
                    f64::NAN
                } else {
                    value
                };
                scratch[..8].copy_from_slice(&value.to_bits().to_le_bytes());
                &scratch[..8]
            }
            other => {
                let value = integer(array, row)
                    .ok_or_else(|| SketchError::Unsupported(other.to_string()))?;
                scratch[..8].copy_from_slice(&value.to_le_bytes());
                &scratch[..8]
            }
        };
        self.0.update_value(raw_bytes::from_slice(bytes));
        Ok(())
    }

    /// Adds a serialized sketch's values.
    fn add_sketch(&mut self, bytes: &[u8]) -> Result<(), SketchError> {
        let sketch =
            HllSketch::deserialize(bytes).map_err(|e| SketchError::Damaged(e.to_string()))?;
        self.0.update(&sketch);
        Ok(())
    }

    /// The sketch in DataSketches' compact binary form (4-bit registers once dense).
    fn to_bytes(&self) -> Vec<u8> {
        self.0.to_sketch(HllType::Hll4).serialize()
    }
}

/// Quantiles being sketched: from values, from serialized sketches, or both.
#[derive(Debug, Clone)]
pub struct Quantiles(KllSketch<KllFloat<f64>>);

impl Default for Quantiles {
    fn default() -> Quantiles {
        Quantiles::new()
    }
}

impl Quantiles {
    pub fn new() -> Quantiles {
        Quantiles(KllSketch::new(KLL_K).expect("KLL_K is a valid k"))
    }

    fn merge_sketch(&mut self, other: &KllSketch<KllFloat<f64>>) -> Result<(), SketchError> {
        self.0
            .merge(other)
            .map_err(|e| SketchError::Damaged(e.to_string()))
    }

    /// The value at normalized rank `rank` (0 the least, 1 the greatest), or `None` when
    /// no value was sketched.
    pub fn quantile(&self, rank: f64) -> Result<Option<f64>, SketchError> {
        if !(0.0..=1.0).contains(&rank) {
            return Err(SketchError::Rank(rank));
        }
        self.0
            .quantile(rank, SearchCriteria::Inclusive)
            .map(|q| q.map(KllFloat::into_inner))
            .map_err(|e| SketchError::Damaged(e.to_string()))
    }
}

impl Sketch for Quantiles {
    /// Adds the value of `array` at `row` as a double (nothing for NULL).
    fn add_value(&mut self, array: &dyn Array, row: usize) -> Result<(), SketchError> {
        if array.is_null(row) {
            return Ok(());
        }
        let value = match array.data_type() {
            DataType::Float32 => f64::from(array.as_primitive::<Float32Type>().value(row)),
            DataType::Float64 => array.as_primitive::<Float64Type>().value(row),
            DataType::Decimal128(_, scale) => {
                let unscaled = array.as_primitive::<Decimal128Type>().value(row);
                unscaled as f64 / 10f64.powi(i32::from(*scale))
            }
            other => integer(array, row)
                .ok_or_else(|| SketchError::Unsupported(other.to_string()))?
                as f64,
        };
        self.0
            .update(KllFloat::<f64>::new(value).map_err(|_| SketchError::NaN)?);
        Ok(())
    }

    /// Adds a serialized sketch's values.
    fn add_sketch(&mut self, bytes: &[u8]) -> Result<(), SketchError> {
        let sketch = KllSketch::<KllFloat<f64>>::deserialize(bytes)
            .map_err(|e| SketchError::Damaged(e.to_string()))?;
        self.merge_sketch(&sketch)
    }

    /// The sketch in DataSketches' compact binary form.
    fn to_bytes(&self) -> Vec<u8> {
        self.0.serialize()
    }
}

/// An integer-like value (integers, dates, timestamps) widened to i64.
fn integer(array: &dyn Array, row: usize) -> Option<i64> {
    Some(match array.data_type() {
        DataType::Int16 => i64::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => i64::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row),
        DataType::Date32 => i64::from(array.as_primitive::<Date32Type>().value(row)),
        DataType::Timestamp(..) => array.as_primitive::<TimestampMicrosecondType>().value(row),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};

    #[test]
    fn merged_sketches_count_as_one_sketch_of_all_values() {
        let values = StringArray::from_iter_values((0..50_000).map(|i| format!("user{i}")));
        let mut whole = Hll::new();
        let mut parts = vec![Hll::new(), Hll::new(), Hll::new()];
        for row in 0..values.len() {
            whole.add_value(&values, row).unwrap();
            parts[row % 3].add_value(&values, row).unwrap();
        }
        let mut merged = Hll::new();
        for part in &parts {
            merged.add_sketch(&part.to_bytes()).unwrap();
        }
        let error = |e: i64| (e - 50_000).abs() as f64 / 50_000.0;
        // Three standard errors of lg_k 12.
        assert!(error(whole.estimate()) < 0.05, "{}", whole.estimate());
        assert!(error(merged.estimate()) < 0.05, "{}", merged.estimate());
    }

    #[test]
    fn few_values_are_counted_exactly_and_kept_small() {
        let values = Int64Array::from(vec![Some(1), Some(2), None, Some(2), Some(-7)]);
        let mut hll = Hll::new();
        for row in 0..values.len() {
            hll.add_value(&values, row).unwrap();
        }
        assert_eq!(hll.estimate(), 3);
        assert!(hll.to_bytes().len() < 40, "{}", hll.to_bytes().len());
    }

    #[test]
    fn quantiles_of_merged_sketches_keep_their_error_bound() {
        let n = 100_000;
        let values = Float64Array::from_iter_values((0..n).map(|i| ((i * 7919) % n) as f64));
        let mut parts = vec![Quantiles::new(), Quantiles::new()];
        for row in 0..values.len() {
            parts[row % 2].add_value(&values, row).unwrap();
        }
        let mut merged = Quantiles::new();
        for part in &parts {
            merged.add_sketch(&part.to_bytes()).unwrap();
        }
        for rank in [0.01, 0.5, 0.99] {
            let q = merged.quantile(rank).unwrap().unwrap();
            // Normalized rank error of k = 200, with margin.
            assert!((q / n as f64 - rank).abs() < 0.025, "{rank}: {q}");
        }
        assert_eq!(merged.quantile(0.0).unwrap(), Some(0.0));
        assert_eq!(merged.quantile(1.0).unwrap(), Some((n - 1) as f64));
        assert!(Quantiles::new().quantile(0.5).unwrap().is_none());
        assert_eq!(merged.quantile(1.5), Err(SketchError::Rank(1.5)));
        let nan = Float64Array::from(vec![f64::NAN]);
        assert_eq!(merged.add_value(&nan, 0), Err(SketchError::NaN));
    }
}
