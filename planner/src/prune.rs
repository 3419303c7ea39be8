//! Segment pruning: which segments can hold rows that match a query's filters, decided
//! without reading any rows. First by each segment's time interval (metadata only), then by
//! the minimum, maximum and null count of every column in the segments' footers, both through
//! DataFusion's `PruningPredicate`.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_optimizer::pruning::PruningPredicate;
use henge_ingest::Engine;
use henge_storage::segment::footer::{ColumnMeta, Stat};
use henge_storage::segment::SegmentReader;
use henge_storage::SegmentMeta;

/// A segment to scan, open.
#[derive(Debug, Clone)]
pub struct OpenSegment {
    pub meta: SegmentMeta,
    pub name: String,
    pub reader: Arc<SegmentReader>,
}

/// The segments left to scan, and how many were pruned by what.
#[derive(Debug, Default)]
pub struct Pruned {
    pub kept: Vec<OpenSegment>,
    pub total: usize,
    pub by_time: usize,
    pub by_statistics: usize,
}

/// Opens the segments `predicate` may match, pruning the others. `time` is the table's
/// time column, if it has one.
pub async fn prune(
    engine: &Engine,
    table: &str,
    segments: Vec<SegmentMeta>,
    time: Option<&Field>,
    predicate: Option<&PruningPredicate>,
) -> Result<Pruned> {
    let total = segments.len();
    let segments = match (predicate, time) {
        (Some(predicate), Some(time)) => {
            let keep = predicate.prune(&Intervals {
                segments: &segments,
                time,
            })?;
            segments
                .into_iter()
                .zip(keep)
                .filter_map(|(s, keep)| keep.then_some(s))
                .collect()
        }
        _ => segments,
    };
    let by_time = total - segments.len();
    let mut open = Vec::with_capacity(segments.len());
    for meta in segments {
        let name = meta.display_name(table);
        let reader = engine
            .segment_cache()
            .reader(&meta, &name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        open.push(OpenSegment { meta, name, reader });
    }
    let kept = match predicate {
        Some(predicate) => {
            let keep = predicate.prune(&Footers { segments: &open })?;
            open.into_iter()
                .zip(keep)
                .filter_map(|(s, keep)| keep.then_some(s))
                .collect()
        }
        None => open,
    };
    let by_statistics = total - by_time - kept.len();
    Ok(Pruned {
        kept,
        total,
        by_time,
        by_statistics,
    })
}

/// The time column's bounds from each segment's interval; nothing about other columns.
struct Intervals<'a> {
    segments: &'a [SegmentMeta],
    time: &'a Field,
}

impl Intervals<'_> {
    fn bounds(
        &self,
        column: &Column,
        bound: impl Fn(&SegmentMeta) -> Option<i64>,
    ) -> Option<ArrayRef> {
        if column.name != *self.time.name() {
            return None;
        }
        let DataType::Timestamp(TimeUnit::Microsecond, zone) = self.time.data_type() else {
            return None;
        };
        let values = self
            .segments
            .iter()
            .map(|s| ScalarValue::TimestampMicrosecond(bound(s), zone.clone()));
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for Intervals<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds(column, |s| (s.start != i64::MIN).then_some(s.start))
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        // The interval's end is exclusive.
        self.bounds(column, |s| (s.end != i64::MAX).then(|| s.end - 1))
    }

    fn num_containers(&self) -> usize {
        self.segments.len()
    }

    fn null_counts(&self, _column: &Column) -> Option<ArrayRef> {
        None
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(
            self.segments.iter().map(|s| s.rows),
        )))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// Every column's statistics, from the segments' footers.
struct Footers<'a> {
    segments: &'a [OpenSegment],
}

impl Footers<'_> {
    /// `column`'s footer entry in every segment; `None` if a segment lacks it.
    fn columns(&self, column: &Column) -> Option<Vec<&ColumnMeta>> {
        self.segments
            .iter()
            .map(|s| {
                s.reader
                    .footer()
                    .columns
                    .iter()
                    .find(|c| c.name == column.name)
            })
            .collect()
    }

    fn stats(&self, column: &Column, min: bool) -> Option<ArrayRef> {
        let values: Vec<ScalarValue> = self
            .columns(column)?
            .into_iter()
            .map(|meta| {
                let data_type = meta.ty.arrow_type();
                let stat = if min { &meta.min } else { &meta.max };
                scalar(stat.as_ref(), &data_type)
            })
            .collect();
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for Footers<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.stats(column, true)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.stats(column, false)
    }

    fn num_containers(&self) -> usize {
        self.segments.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let counts = self.columns(column)?.into_iter().map(|m| m.null_count);
        Some(Arc::new(UInt64Array::from_iter_values(counts)))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(
            self.segments.iter().map(|s| s.reader.rows()),
        )))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// A footer statistic as a value of the column's type; a typed NULL (unknown) where there
/// is none. Bounds of floating-point columns are withheld: NaN (which sorts above every
/// number, or below when its sign bit is set) is left out of the recorded ones.
pub(crate) fn scalar(stat: Option<&Stat>, data_type: &DataType) -> ScalarValue {
    let known = match (stat, data_type) {
        (Some(Stat::Int(v)), DataType::Int16) => {
            i16::try_from(*v).ok().map(|v| ScalarValue::Int16(Some(v)))
        }
        (Some(Stat::Int(v)), DataType::Int32) => {
            i32::try_from(*v).ok().map(|v| ScalarValue::Int32(Some(v)))
        }
        (Some(Stat::Int(v)), DataType::Int64) => Some(ScalarValue::Int64(Some(*v))),
        (Some(Stat::Int(v)), DataType::Date32) => {
            i32::try_from(*v).ok().map(|v| ScalarValue::Date32(Some(v)))
        }
        (Some(Stat::Int(v)), DataType::Timestamp(TimeUnit::Microsecond, zone)) => {
            Some(ScalarValue::TimestampMicrosecond(Some(*v), zone.clone()))
        }
        (Some(Stat::Decimal(v)), DataType::Decimal128(precision, scale)) => v
            .parse()
            .ok()
            .map(|v| ScalarValue::Decimal128(Some(v), *precision, *scale)),
        (Some(Stat::Bool(v)), DataType::Boolean) => Some(ScalarValue::Boolean(Some(*v))),
        (Some(Stat::Text(v)), DataType::Utf8) => Some(ScalarValue::Utf8(Some(v.clone()))),
        _ => None,
    };
    known.unwrap_or_else(|| ScalarValue::try_from(data_type).unwrap_or(ScalarValue::Null))
}
