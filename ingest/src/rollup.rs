//! Rollup (the Druid paper, section 4): rows with equal time, truncated to the table's
//! query granularity, and equal dimension columns are combined into one stored row whose
//! metric columns hold the aggregate of theirs ([`henge_storage::Rollup`]).
//!
//! Rows are rolled up as they arrive ([`ingest`]: each statement's batch, before the
//! write-ahead log), and again wherever rows of a chunk meet ([`combine`]): when the buffer
//! joins small batches, at persist, at hand-off and at compaction. Combining is associative,
//! so every stage may combine what earlier stages made. A rolled-up table stores a hidden
//! count of the ingested rows each stored row stands for ([`henge_storage::schema::ROWS_COLUMN`]),
//! and a FIRST or LAST column the time its value came from, so later stages pick the same
//! value the raw rows would.
//!
//! A combination that would overflow its column (a `bigint` sum past 2^63) is not made:
//! the row starts a new group of the same key instead. Queries add stored rows up anyway,
//! so the answer is the same; the table is only rolled up a little less.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{make_comparator, DynComparator};
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Decimal128Array, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, RecordBatch, TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type};
use arrow::row::{Row, RowConverter, SortField};
use henge_storage::{ColumnType, Rollup, TableDef};

use crate::error::{Error, Result, ValueError, ValueErrorKind};
use crate::sketch::{Hll, Quantiles, Sketch as _, SketchError};

/// Rows as a statement brings them (the table's columns, validated) made into stored rows:
/// the time column truncated to the query granularity and, in a rolled-up table, the
/// hidden columns added and the rows combined.
pub fn ingest(def: &TableDef, batch: RecordBatch) -> Result<RecordBatch> {
    let scales = scales(def, &batch)?;
    if !def.rollup && def.query_granularity.is_none() && scales.is_empty() {
        return Ok(batch);
    }
    let own = def.columns.len();
    let mut columns = batch.columns()[..own].to_vec();
    let original_time = def.time_column_index().map(|i| columns[i].clone());
    if let (Some(granularity), Some(i)) = (def.query_granularity, def.time_column_index()) {
        let times = columns[i].as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        let truncated: TimestampMicrosecondArray = times.unary(|t| granularity.chunk_start(t));
        let truncated = truncated.with_data_type(times.data_type().clone());
        columns[i] = Arc::new(truncated);
    }
    if !def.rollup {
        let schema = batch.schema();
        let fields = schema.fields()[..own].iter().cloned().chain(
            def.scale_columns()
                .into_iter()
                .map(|c| Arc::new(c.arrow_field())),
        );
        let schema = Arc::new(arrow::datatypes::Schema::new(fields.collect::<Vec<_>>()));
        columns.extend(scales);
        return RecordBatch::try_new(schema, columns).map_err(internal);
    }
    let rows = batch.num_rows();
    for (i, column) in def.columns.iter().enumerate() {
        if column.rollup == Some(Rollup::Count) {
            let given: Int64Array = (0..rows)
                .map(|r| Some(i64::from(columns[i].is_valid(r))))
                .collect();
            columns[i] = Arc::new(given);
        }
    }
    columns.push(Arc::new(Int64Array::from(vec![1i64; rows])));
    for column in &def.columns {
        if column.rollup.is_some_and(|r| r.keeps_time()) {
            // The time each value was ingested with.
            let time = original_time
                .clone()
                .ok_or_else(|| Error::Internal("FIRST and LAST need a time column".into()))?;
            columns.push(time);
        }
    }
    columns.extend(scales);
    // Sketch columns still hold the values they sketch.
    let fields: Vec<_> = def
        .stored_columns()
        .iter()
        .zip(def.columns.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(stored, own)| match own {
            Some(own) if own.rollup.is_some_and(|r| r.is_sketch()) => own.arrow_field(),
            _ => stored.arrow_field(),
        })
        .collect();
    let raw = Arc::new(arrow::datatypes::Schema::new(fields));
    let batch = RecordBatch::try_new(raw, columns).map_err(internal)?;
    roll(def, batch, true)
}

/// The scales of the unconstrained numerics' values in rows as a statement brings them:
/// the ones the rows carry after the table's columns (COPY's reader gives each value's
/// scale as written, an INSERT's query the scale of each value it computes) or, where they
/// carry none or a NULL one, each value's places without trailing zeros.
fn scales(def: &TableDef, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    let own = def.columns.len();
    let hidden = def.scale_columns().len();
    if hidden == 0 {
        return Ok(Vec::new());
    }
    let given = batch.num_columns() == own + hidden;
    let kept = henge_storage::schema::DEFAULT_NUMERIC.1;
    Ok(def
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.ty == ColumnType::NumericUnconstrained)
        .enumerate()
        .map(|(k, (i, _))| {
            let values = batch
                .column(i)
                .as_primitive::<arrow::datatypes::Decimal128Type>();
            let written = given.then(|| batch.column(own + k).as_primitive::<Int16Type>());
            let scales: arrow::array::Int16Array = values
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    let v = v?;
                    let written = written.filter(|w| w.is_valid(row)).map(|w| w.value(row));
                    let trimmed = crate::value::places_needed(v, kept);
                    Some(written.unwrap_or(trimmed))
                })
                .collect();
            Arc::new(scales) as ArrayRef
        })
        .collect())
}

/// Combines stored rows of one table (any number of batches, in the order they were
/// ingested) into as few as rollup allows, as one batch. Rows of a table without rollup
/// are only joined.
pub fn combine(def: &TableDef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let schema = def.stored_schema();
    let batch = match batches {
        [one] => one.clone(),
        _ => concat_batches(&schema, batches).map_err(internal)?,
    };
    roll(def, batch, false)
}

/// [`combine`] of one batch; `raw` when its sketch columns hold the values to sketch (as
/// ingested) rather than sketches, so that every row must be made a stored row.
fn roll(def: &TableDef, batch: RecordBatch, raw: bool) -> Result<RecordBatch> {
    let schema = def.stored_schema();
    let raw = raw && def.has_sketches();
    if !def.rollup || (batch.num_rows() < 2 && !raw) {
        return Ok(batch);
    }
    let roles = Roles::of(def);
    let keys: Vec<ArrayRef> = roles
        .keys
        .iter()
        .map(|&i| batch.column(i).clone())
        .collect();
    let encoded = match keys.is_empty() {
        true => None,
        false => {
            let fields = keys
                .iter()
                .map(|k| SortField::new(k.data_type().clone()))
                .collect();
            let converter = RowConverter::new(fields).map_err(internal)?;
            Some(converter.convert_columns(&keys).map_err(internal)?)
        }
    };
    let stored = def.stored_columns();
    let mut metrics = roles
        .metrics
        .iter()
        .map(|&(column, rollup, time)| {
            Metric::new(
                rollup,
                batch.column(column),
                time.map(|t| batch.column(t)),
                &stored[column].ty,
                raw,
            )
        })
        .collect::<Result<Vec<Metric>>>()?;
    // Each key's current group (a table without dimensions or time has one key), and the
    // first row of every group.
    let mut current: HashMap<Option<Row<'_>>, usize> = HashMap::new();
    let mut first: Vec<u32> = Vec::new();
    for row in 0..batch.num_rows() {
        let key = encoded.as_ref().map(|rows| rows.row(row));
        match current.get(&key) {
            Some(&group) if metrics.iter().all(|m| m.fits(group, row)) => {
                for metric in &mut metrics {
                    metric.add(group, row);
                }
            }
            _ => {
                current.insert(key, first.len());
                first.push(row as u32);
                for metric in &mut metrics {
                    metric.start(row);
                }
            }
        }
    }
    if first.len() == batch.num_rows() && !raw {
        return Ok(batch);
    }
    let first = UInt32Array::from(first);
    let mut columns: Vec<Option<ArrayRef>> = vec![None; schema.fields().len()];
    for &key in &roles.keys {
        columns[key] = Some(take(batch.column(key).as_ref(), &first, None).map_err(internal)?);
    }
    for (metric, &(column, _, time)) in metrics.into_iter().zip(&roles.metrics) {
        let (values, times) = metric
            .finish(&schema.fields()[column].data_type().clone())
            .map_err(|e| match e {
                Error::Value(v) => Error::Value(ValueError::of_kind(
                    v.kind,
                    format!("column \"{}\": {}", stored[column].name, v.message),
                )),
                other => other,
            })?;
        columns[column] = Some(values);
        if let (Some(t), Some(times)) = (time, times) {
            columns[t] = Some(times);
        }
    }
    let columns = columns
        .into_iter()
        .collect::<Option<Vec<ArrayRef>>>()
        .ok_or_else(|| Error::Internal("rollup left a column unfilled".into()))?;
    RecordBatch::try_new(schema, columns).map_err(internal)
}

/// Which stored columns are keys and which metrics, by position.
struct Roles {
    /// The time column and the dimensions.
    keys: Vec<usize>,
    /// Each metric with its rollup and, for FIRST and LAST, the column of its values' times.
    metrics: Vec<(usize, Rollup, Option<usize>)>,
}

impl Roles {
    fn of(def: &TableDef) -> Roles {
        let time = def.time_column_index();
        let mut keys = Vec::new();
        let mut metrics = Vec::new();
        let own = def.columns.len();
        let mut next_time = own + 1;
        for (i, column) in def.columns.iter().enumerate() {
            match column.rollup {
                Some(rollup) if rollup.is_metric() && Some(i) != time => {
                    let times = rollup.keeps_time().then(|| {
                        next_time += 1;
                        next_time - 1
                    });
                    metrics.push((i, rollup, times));
                }
                _ => keys.push(i),
            }
        }
        // The hidden count of ingested rows, right after the table's own columns.
        metrics.push((own, Rollup::Sum, None));
        // The scales of unconstrained numerics' values, last: a group's is the largest
        // (its sum's, and its dimension value's as most places show it).
        let stored = def.stored_columns().len();
        let scales = def.scale_columns().len();
        metrics.extend((stored - scales..stored).map(|i| (i, Rollup::Max, None)));
        Roles { keys, metrics }
    }
}

/// One metric column's values per group.
enum Metric<'a> {
    /// Sums of integers (and counts), checked against the column type's range.
    Integer {
        values: Vec<i64>,
        input: &'a dyn Array,
        sums: Vec<Option<i128>>,
        range: (i128, i128),
    },
    Float {
        input: Vec<Option<f64>>,
        sums: Vec<Option<f64>>,
    },
    Decimal {
        input: &'a Decimal128Array,
        sums: Vec<Option<i128>>,
        limit: i128,
    },
    /// HLL and QUANTILES keep a sketch per group, of values (`raw`) or of sketches.
    Sketch {
        rollup: Rollup,
        input: &'a ArrayRef,
        raw: bool,
        sketches: Vec<GroupSketch>,
        /// The first value that could not be sketched.
        error: Option<SketchError>,
    },
    /// MIN, MAX, FIRST and LAST keep one row's value: the row chosen so far.
    Pick {
        rollup: Rollup,
        input: &'a ArrayRef,
        times: Option<&'a ArrayRef>,
        compare: DynComparator,
        chosen: Vec<Option<u32>>,
    },
}

impl<'a> Metric<'a> {
    fn new(
        rollup: Rollup,
        input: &'a ArrayRef,
        times: Option<&'a ArrayRef>,
        ty: &ColumnType,
        raw: bool,
    ) -> Result<Metric<'a>> {
        if rollup.is_sketch() {
            return Ok(Metric::Sketch {
                rollup,
                input,
                raw,
                sketches: Vec::new(),
                error: None,
            });
        }
        if matches!(rollup, Rollup::Sum | Rollup::Count) {
            return Ok(match input.data_type() {
                DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                    let range = match ty {
                        ColumnType::SmallInt => (i16::MIN.into(), i16::MAX.into()),
                        ColumnType::Integer => (i32::MIN.into(), i32::MAX.into()),
                        _ => (i64::MIN.into(), i64::MAX.into()),
                    };
                    Metric::Integer {
                        values: integers(input),
                        input: input.as_ref(),
                        sums: Vec::new(),
                        range,
                    }
                }
                DataType::Float32 => Metric::Float {
                    input: input
                        .as_primitive::<Float32Type>()
                        .iter()
                        .map(|v| v.map(f64::from))
                        .collect(),
                    sums: Vec::new(),
                },
                DataType::Float64 => Metric::Float {
                    input: input.as_primitive::<Float64Type>().iter().collect(),
                    sums: Vec::new(),
                },
                DataType::Decimal128(precision, _) => Metric::Decimal {
                    input: input.as_primitive(),
                    sums: Vec::new(),
                    limit: 10i128.pow(u32::from(*precision)),
                },
                other => {
                    return Err(Error::Internal(format!(
                        "cannot sum values of type {other}"
                    )))
                }
            });
        }
        let compare = make_comparator(input.as_ref(), input.as_ref(), Default::default())
            .map_err(internal)?;
        Ok(Metric::Pick {
            rollup,
            input,
            times,
            compare,
            chosen: Vec::new(),
        })
    }

    /// Whether `row` can join `group` without overflowing the column.
    fn fits(&self, group: usize, row: usize) -> bool {
        match self {
            Metric::Integer {
                values,
                input,
                sums,
                range,
            } => match (sums[group], input.is_valid(row)) {
                (Some(sum), true) => {
                    let total = sum + i128::from(values[row]);
                    range.0 <= total && total <= range.1
                }
                _ => true,
            },
            Metric::Decimal { input, sums, limit } => match (sums[group], input.is_valid(row)) {
                (Some(sum), true) => sum
                    .checked_add(input.value(row))
                    .is_some_and(|total| total.unsigned_abs() < limit.unsigned_abs()),
                _ => true,
            },
            _ => true,
        }
    }

    fn start(&mut self, row: usize) {
        match self {
            Metric::Integer {
                values,
                input,
                sums,
                ..
            } => sums.push(input.is_valid(row).then(|| i128::from(values[row]))),
            Metric::Float { input, sums } => sums.push(input[row]),
            Metric::Decimal { input, sums, .. } => {
                sums.push(input.is_valid(row).then(|| input.value(row)))
            }
            Metric::Sketch {
                rollup,
                input,
                raw,
                sketches,
                error,
            } => {
                let mut sketch = GroupSketch::of(*rollup);
                sketch.add(input, row, *raw, error);
                sketches.push(sketch);
            }
            // FIRST and LAST keep a row's value even when it is NULL, as EARLIEST does.
            Metric::Pick {
                rollup,
                input,
                chosen,
                ..
            } => chosen.push((rollup.keeps_time() || input.is_valid(row)).then_some(row as u32)),
        }
    }

    fn add(&mut self, group: usize, row: usize) {
        match self {
            Metric::Integer {
                values,
                input,
                sums,
                ..
            } => {
                if input.is_valid(row) {
                    let value = i128::from(values[row]);
                    sums[group] = Some(sums[group].map_or(value, |s| s + value));
                }
            }
            Metric::Float { input, sums } => {
                if let Some(value) = input[row] {
                    sums[group] = Some(sums[group].map_or(value, |s| s + value));
                }
            }
            Metric::Decimal { input, sums, .. } => {
                if input.is_valid(row) {
                    let value = input.value(row);
                    sums[group] = Some(sums[group].map_or(value, |s| s + value));
                }
            }
            Metric::Sketch {
                input,
                raw,
                sketches,
                error,
                ..
            } => sketches[group].add(input, row, *raw, error),
            Metric::Pick {
                rollup,
                input,
                times,
                compare,
                chosen,
            } => {
                if input.is_null(row) && !rollup.keeps_time() {
                    return;
                }
                let Some(current) = chosen[group] else {
                    chosen[group] = Some(row as u32);
                    return;
                };
                let current = current as usize;
                let better = match rollup {
                    Rollup::Min => compare(row, current).is_lt(),
                    Rollup::Max => compare(row, current).is_gt(),
                    _ => {
                        let time = |r: usize| {
                            times.map(|t| {
                                t.as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                                    .value(r)
                            })
                        };
                        match rollup {
                            // The earliest value; of equal times, the one ingested first.
                            Rollup::First => time(row) < time(current),
                            // The latest; of equal times, the one ingested last.
                            _ => time(row) >= time(current),
                        }
                    }
                };
                if better {
                    chosen[group] = Some(row as u32);
                }
            }
        }
    }

    /// The column of group values, and for FIRST and LAST the times of those values.
    fn finish(self, ty: &DataType) -> Result<(ArrayRef, Option<ArrayRef>)> {
        Ok(match self {
            Metric::Integer { sums, .. } => {
                let narrow = |s: &Option<i128>| s.map(|v| v as i64);
                let array: ArrayRef = match ty {
                    DataType::Int16 => Arc::new(Int16Array::from_iter(
                        sums.iter().map(|s| narrow(s).map(|v| v as i16)),
                    )),
                    DataType::Int32 => Arc::new(Int32Array::from_iter(
                        sums.iter().map(|s| narrow(s).map(|v| v as i32)),
                    )),
                    _ => Arc::new(Int64Array::from_iter(sums.iter().map(narrow))),
                };
                (array, None)
            }
            Metric::Float { sums, .. } => {
                let array: ArrayRef = match ty {
                    DataType::Float32 => Arc::new(Float32Array::from_iter(
                        sums.iter().map(|s| s.map(|v| v as f32)),
                    )),
                    _ => Arc::new(Float64Array::from_iter(sums)),
                };
                (array, None)
            }
            Metric::Decimal { sums, .. } => (
                Arc::new(Decimal128Array::from_iter(sums).with_data_type(ty.clone())),
                None,
            ),
            Metric::Sketch {
                sketches, error, ..
            } => {
                if let Some(e) = error {
                    let kind = match e {
                        SketchError::NaN | SketchError::Rank(_) => {
                            ValueErrorKind::InvalidParameterValue
                        }
                        SketchError::Unsupported(_) => ValueErrorKind::NotSupported,
                        SketchError::Damaged(_) => return Err(Error::Internal(e.to_string())),
                    };
                    return Err(Error::Value(ValueError::of_kind(kind, e.to_string())));
                }
                let bytes: BinaryArray = sketches.iter().map(|s| Some(s.to_bytes())).collect();
                (Arc::new(bytes), None)
            }
            Metric::Pick {
                input,
                times,
                chosen,
                ..
            } => {
                let indices = UInt32Array::from(chosen);
                let values = take(input.as_ref(), &indices, None).map_err(internal)?;
                let times = times
                    .map(|t| take(t.as_ref(), &indices, None))
                    .transpose()
                    .map_err(internal)?;
                (values, times)
            }
        })
    }
}

/// One group's sketch of a sketch column.
enum GroupSketch {
    Hll(Hll),
    Quantiles(Quantiles),
}

impl GroupSketch {
    fn of(rollup: Rollup) -> GroupSketch {
        match rollup {
            Rollup::Quantiles => GroupSketch::Quantiles(Quantiles::new()),
            _ => GroupSketch::Hll(Hll::new()),
        }
    }

    /// Adds `input`'s value at `row`: a value to sketch when `raw`, else a stored sketch.
    fn add(&mut self, input: &ArrayRef, row: usize, raw: bool, error: &mut Option<SketchError>) {
        let added = match (self, raw) {
            (GroupSketch::Hll(hll), true) => hll.add_value(input.as_ref(), row),
            (GroupSketch::Quantiles(q), true) => q.add_value(input.as_ref(), row),
            (_, false) if input.is_null(row) => Ok(()),
            (GroupSketch::Hll(hll), false) => hll.add_sketch(input.as_binary::<i32>().value(row)),
            (GroupSketch::Quantiles(q), false) => q.add_sketch(input.as_binary::<i32>().value(row)),
        };
        if let Err(e) = added {
            error.get_or_insert(e);
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        match self {
            GroupSketch::Hll(hll) => hll.to_bytes(),
            GroupSketch::Quantiles(q) => q.to_bytes(),
        }
    }
}

/// Integer values widened to i64 (0 where NULL).
fn integers(input: &ArrayRef) -> Vec<i64> {
    match input.data_type() {
        DataType::Int16 => input
            .as_primitive::<Int16Type>()
            .values()
            .iter()
            .map(|&v| i64::from(v))
            .collect(),
        DataType::Int32 => input
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|&v| i64::from(v))
            .collect(),
        _ => input.as_primitive::<Int64Type>().values().to_vec(),
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("rollup: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use henge_storage::{ColumnDef, Granularity};

    const MINUTE: i64 = 60_000_000;

    fn column(name: &str, ty: ColumnType, rollup: Option<Rollup>) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            ty,
            nullable: name != "ts",
            rollup,
            default: None,
        }
    }

    fn def() -> TableDef {
        TableDef {
            id: 1,
            name: "events".into(),
            columns: vec![
                column("ts", ColumnType::Timestamp, None),
                column("page", ColumnType::Text, Some(Rollup::Dimension)),
                column("added", ColumnType::BigInt, Some(Rollup::Sum)),
                column("peak", ColumnType::Integer, Some(Rollup::Max)),
                column("seen", ColumnType::BigInt, Some(Rollup::Count)),
                column("last", ColumnType::Text, Some(Rollup::Last)),
            ],
            time_column: Some("ts".into()),
            segment_granularity: Granularity::Hour,
            window_period_secs: 0,
            rollup: true,
            query_granularity: Some(Granularity::Minute),
            limits: Default::default(),
        }
    }

    type Row<'a> = (
        i64,
        &'a str,
        Option<i64>,
        Option<i32>,
        Option<i64>,
        Option<&'a str>,
    );

    fn rows(def: &TableDef, rows: &[Row]) -> RecordBatch {
        RecordBatch::try_new(
            def.arrow_schema(),
            vec![
                Arc::new(TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|r| r.0),
                )),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
                Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.3))),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.4))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.5))),
            ],
        )
        .unwrap()
    }

    /// The stored rows as text, sorted, without the hidden value times.
    fn shown(batch: &RecordBatch) -> Vec<String> {
        let mut out: Vec<String> = (0..batch.num_rows())
            .map(|r| {
                (0..7)
                    .map(|c| {
                        arrow::util::display::array_value_to_string(batch.column(c), r).unwrap()
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn rows_of_one_minute_and_page_become_one() {
        let def = def();
        let batch = rows(
            &def,
            &[
                (5_000_000, "a", Some(1), Some(3), Some(9), Some("x")),
                (50_000_000, "a", Some(2), None, None, Some("y")),
                (20_000_000, "a", None, Some(7), Some(1), Some("z")),
                (MINUTE + 1, "a", Some(4), Some(1), None, None),
                (1, "b", Some(8), Some(2), Some(3), Some("w")),
            ],
        );
        let stored = ingest(&def, batch).unwrap();
        assert_eq!(
            shown(&stored),
            [
                "1970-01-01T00:00:00|a|3|7|2|y|3",
                "1970-01-01T00:00:00|b|8|2|1|w|1",
                "1970-01-01T00:01:00|a|4|1|0||1",
            ]
        );
    }

    #[test]
    fn combining_again_gives_what_combining_once_gives() {
        let def = def();
        let all = [
            (5_000_000, "a", Some(1), Some(3), Some(9), Some("late")),
            (1_000_000, "a", Some(2), Some(8), None, Some("early")),
            (7, "b", Some(8), Some(2), Some(3), Some("w")),
        ];
        let once = ingest(&def, rows(&def, &all)).unwrap();
        // The latest row arrives first, in a batch of its own.
        let first = ingest(&def, rows(&def, &all[..1])).unwrap();
        let rest = ingest(&def, rows(&def, &all[1..])).unwrap();
        let twice = combine(&def, &[first, rest]).unwrap();
        assert_eq!(shown(&once), shown(&twice));
        assert_eq!(shown(&twice)[0], "1970-01-01T00:00:00|a|3|8|1|late|2");
    }

    #[test]
    fn a_sum_that_would_overflow_starts_a_new_row() {
        let def = def();
        let big = Some(i64::MAX - 1);
        let stored = ingest(
            &def,
            rows(
                &def,
                &[
                    (0, "a", big, None, None, None),
                    (1, "a", Some(5), None, None, None),
                    (2, "a", Some(-3), None, None, None),
                ],
            ),
        )
        .unwrap();
        // The second row cannot join the first; the third joins the second's group.
        assert_eq!(
            shown(&stored),
            [
                "1970-01-01T00:00:00|a|2||0||2",
                format!("1970-01-01T00:00:00|a|{}||0||1", i64::MAX - 1).as_str(),
            ]
        );
    }

    #[test]
    fn without_rollup_only_the_time_is_truncated() {
        let mut def = def();
        def.rollup = false;
        for c in &mut def.columns {
            c.rollup = None;
        }
        let stored = ingest(
            &def,
            rows(&def, &[(61_000_000, "a", Some(1), None, None, None); 2]),
        )
        .unwrap();
        assert_eq!(stored.num_rows(), 2);
        assert_eq!(stored.num_columns(), 6);
        let times = stored
            .column(0)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(times.values().to_vec(), vec![MINUTE, MINUTE]);
    }
}
