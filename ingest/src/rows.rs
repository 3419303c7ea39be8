//! Building Arrow batches from text values, and checking batches against a table's
//! definition before they are written.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Array,
    Decimal128Builder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    RecordBatch, StringArray, StringBuilder, TimestampMicrosecondBuilder,
};
use henge_storage::schema::{DEFAULT_NUMERIC, UTC};
use henge_storage::{ColumnDef, ColumnType, TableDef};

use crate::error::{Error, Result, ValueError, ValueErrorKind};
use crate::{json, uuid, value};

/// Rows per batch when building from text input.
pub const BATCH_ROWS: usize = 8192;

/// Appends text values, column by column, to one Arrow builder of the column's type.
enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    /// An unconstrained numeric's values and the scale each was written with.
    Unconstrained(Decimal128Builder, Int16Builder),
    Utf8(StringBuilder, Option<u32>),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, bool),
    Binary(BinaryBuilder),
    /// Text of a type held in a normal form: `json`, `jsonb` or `uuid`.
    Normal(StringBuilder, ColumnType),
}

impl ColumnBuilder {
    /// A builder with room for `rows` rows (text: of 16 bytes each), so that filling a
    /// batch does not grow and copy its buffers again and again.
    fn new(ty: ColumnType, rows: usize) -> ColumnBuilder {
        let text = || StringBuilder::with_capacity(rows, rows * 16);
        match ty {
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::SmallInt => ColumnBuilder::Int16(Int16Builder::with_capacity(rows)),
            ColumnType::Integer => ColumnBuilder::Int32(Int32Builder::with_capacity(rows)),
            ColumnType::BigInt => ColumnBuilder::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Real => ColumnBuilder::Float32(Float32Builder::with_capacity(rows)),
            ColumnType::Double => ColumnBuilder::Float64(Float64Builder::with_capacity(rows)),
            ColumnType::Numeric { precision, scale } => {
                ColumnBuilder::Decimal(Decimal128Builder::with_capacity(rows), precision, scale)
            }
            ColumnType::NumericUnconstrained => ColumnBuilder::Unconstrained(
                Decimal128Builder::with_capacity(rows),
                Int16Builder::with_capacity(rows),
            ),
            ColumnType::Text => ColumnBuilder::Utf8(text(), None),
            ColumnType::Varchar { max_len } => ColumnBuilder::Utf8(text(), max_len),
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(rows)),
            ColumnType::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows), false)
            }
            ColumnType::TimestampTz => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows), true)
            }
            ColumnType::Bytea => {
                ColumnBuilder::Binary(BinaryBuilder::with_capacity(rows, rows * 16))
            }
            ColumnType::Json | ColumnType::Jsonb | ColumnType::Uuid => {
                ColumnBuilder::Normal(text(), ty)
            }
        }
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Decimal(b, ..) => b.append_null(),
            ColumnBuilder::Unconstrained(b, scales) => {
                b.append_null();
                scales.append_null();
            }
            ColumnBuilder::Utf8(b, _) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b, _) => b.append_null(),
            ColumnBuilder::Binary(b) => b.append_null(),
            ColumnBuilder::Normal(b, _) => b.append_null(),
        }
    }

    fn append_text(&mut self, text: &str, zone: &Tz) -> Result<(), ValueError> {
        match self {
            ColumnBuilder::Boolean(b) => b.append_value(value::parse_bool(text)?),
            ColumnBuilder::Int16(b) => {
                b.append_value(
                    value::parse_int(text, i16::MIN.into(), i16::MAX.into(), "smallint")? as i16,
                )
            }
            ColumnBuilder::Int32(b) => {
                b.append_value(
                    value::parse_int(text, i32::MIN.into(), i32::MAX.into(), "integer")? as i32,
                )
            }
            ColumnBuilder::Int64(b) => {
                b.append_value(value::parse_int(text, i64::MIN, i64::MAX, "bigint")?)
            }
            ColumnBuilder::Float32(b) => b.append_value(value::parse_f32(text)?),
            ColumnBuilder::Float64(b) => {
                b.append_value(value::parse_f64(text, "double precision")?)
            }
            ColumnBuilder::Decimal(b, precision, scale) => {
                b.append_value(value::parse_numeric(text, *precision, *scale)?)
            }
            ColumnBuilder::Unconstrained(b, scales) => {
                let (value, scale) = value::parse_numeric_unconstrained(text)?;
                b.append_value(value);
                scales.append_value(scale);
            }
            ColumnBuilder::Utf8(b, max_len) => {
                check_length(text, *max_len)?;
                b.append_value(text)
            }
            ColumnBuilder::Date(b) => b.append_value(value::parse_date(text)?),
            ColumnBuilder::Timestamp(b, false) => b.append_value(value::parse_timestamp(text)?),
            ColumnBuilder::Timestamp(b, true) => b.append_value(value::parse_timestamptz_local(
                text,
                value::local_offset(zone),
            )?),
            ColumnBuilder::Binary(b) => b.append_value(value::parse_bytea(text)?),
            ColumnBuilder::Normal(b, ty) => b.append_value(normal_form(ty, text)?),
        }
        Ok(())
    }

    fn len(&self) -> usize {
        match self {
            ColumnBuilder::Boolean(b) => b.len(),
            ColumnBuilder::Int16(b) => b.len(),
            ColumnBuilder::Int32(b) => b.len(),
            ColumnBuilder::Int64(b) => b.len(),
            ColumnBuilder::Float32(b) => b.len(),
            ColumnBuilder::Float64(b) => b.len(),
            ColumnBuilder::Decimal(b, ..) | ColumnBuilder::Unconstrained(b, _) => b.len(),
            ColumnBuilder::Utf8(b, _) => b.len(),
            ColumnBuilder::Date(b) => b.len(),
            ColumnBuilder::Timestamp(b, _) => b.len(),
            ColumnBuilder::Binary(b) => b.len(),
            ColumnBuilder::Normal(b, _) => b.len(),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        Ok(self.finish_with_scales()?.0)
    }

    /// The values, and for an unconstrained numeric the scales they were written with.
    fn finish_with_scales(&mut self) -> Result<(ArrayRef, Option<ArrayRef>)> {
        let internal = |e: arrow::error::ArrowError| Error::Internal(e.to_string());
        let (precision, scale) = DEFAULT_NUMERIC;
        Ok(match self {
            ColumnBuilder::Decimal(b, precision, scale) => (
                Arc::new(
                    b.finish()
                        .with_precision_and_scale(*precision, *scale)
                        .map_err(internal)?,
                ),
                None,
            ),
            ColumnBuilder::Unconstrained(b, scales) => (
                Arc::new(
                    b.finish()
                        .with_precision_and_scale(precision, scale)
                        .map_err(internal)?,
                ),
                Some(Arc::new(scales.finish())),
            ),
            other => (other.finish_plain(), None),
        })
    }

    fn finish_plain(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::Int16(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b, ..) | ColumnBuilder::Unconstrained(b, _) => {
                Arc::new(b.finish())
            }
            ColumnBuilder::Utf8(b, _) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b, false) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b, true) => Arc::new(b.finish().with_timezone(UTC)),
            ColumnBuilder::Binary(b) => Arc::new(b.finish()),
            ColumnBuilder::Normal(b, _) => Arc::new(b.finish()),
        }
    }
}

/// A value's stored text for the types held as text in a normal form: `jsonb` and `uuid`
/// in theirs, `json` as given once it is checked to be JSON.
fn normal_form<'a>(ty: &ColumnType, text: &'a str) -> Result<Cow<'a, str>, ValueError> {
    Ok(match ty {
        ColumnType::Json => {
            json::json_in(text)?;
            Cow::Borrowed(text)
        }
        ColumnType::Jsonb => Cow::Owned(json::jsonb_in(text)?),
        ColumnType::Uuid => Cow::Owned(uuid::uuid_in(text)?),
        _ => Cow::Borrowed(text),
    })
}

fn check_length(text: &str, max_len: Option<u32>) -> Result<(), ValueError> {
    match max_len {
        Some(n) if text.chars().count() > n as usize => Err(ValueError {
            kind: ValueErrorKind::TooLong,
            message: format!("value too long for type character varying({n})"),
        }),
        _ => Ok(()),
    }
}

/// Builds record batches of a table from rows of text values (COPY input).
pub struct RowBuilder {
    def: Arc<TableDef>,
    columns: Vec<ColumnBuilder>,
    batches: Vec<RecordBatch>,
    /// Where `timestamptz` text without an offset is local time.
    zone: Tz,
    /// The table's time limits, when a row outside them fails the statement: checked as
    /// each row's time is read, so the error names its line.
    window: Option<crate::limits::TimeWindow>,
}

impl RowBuilder {
    pub fn new(def: Arc<TableDef>) -> RowBuilder {
        let columns = def
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(c.ty, BATCH_ROWS))
            .collect();
        let window = crate::limits::TimeWindow::of(&def)
            .filter(|w| w.on_rejection == henge_storage::OnRejection::Error);
        RowBuilder {
            def,
            columns,
            batches: Vec::new(),
            zone: value::utc(),
            window,
        }
    }

    /// Reads `timestamptz` text without an offset as local time in `zone` (an Arrow time
    /// zone name; `None` or one that does not parse is UTC).
    pub fn with_time_zone(mut self, zone: Option<&str>) -> RowBuilder {
        self.zone = zone
            .and_then(|z| z.parse::<Tz>().ok())
            .unwrap_or_else(value::utc);
        self
    }

    /// The table rows are built for.
    pub fn table(&self) -> &TableDef {
        &self.def
    }

    /// Sets column `index` of the current row from its text form; `None` is NULL.
    pub fn push(&mut self, index: usize, text: Option<&str>) -> Result<()> {
        let column = &self.def.columns[index];
        match text {
            None if !column.nullable => Err(Error::NotNull {
                table: self.def.name.clone(),
                column: column.name.clone(),
            }),
            None => {
                self.columns[index].append_null();
                Ok(())
            }
            Some(text) => {
                self.columns[index].append_text(text, &self.zone)?;
                match (&self.window, &self.columns[index]) {
                    (Some(window), ColumnBuilder::Timestamp(b, _))
                        if window.column_index == index =>
                    {
                        match b.values_slice().last().and_then(|&t| window.refusal(t)) {
                            Some(refused) => Err(refused),
                            None => Ok(()),
                        }
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// Completes the current row: columns not set get their DEFAULT, or NULL (which NOT
    /// NULL columns refuse).
    pub fn end_row(&mut self) -> Result<()> {
        let rows = self
            .columns
            .iter()
            .map(ColumnBuilder::len)
            .max()
            .unwrap_or(0);
        for index in 0..self.columns.len() {
            if self.columns[index].len() < rows {
                let def = self.def.clone();
                self.push(index, def.columns[index].default.as_deref())?;
            }
        }
        if rows >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let rows = self.columns.first().map(ColumnBuilder::len).unwrap_or(0);
        if rows == 0 {
            return Ok(());
        }
        let mut arrays = Vec::with_capacity(self.columns.len());
        let mut scales = Vec::new();
        for builder in &mut self.columns {
            let (values, scale) = builder.finish_with_scales()?;
            arrays.push(values);
            scales.extend(scale);
        }
        // The scales of unconstrained numerics' values follow the table's columns.
        arrays.extend(scales);
        // Finished builders start again empty: room for the next batch.
        for (builder, column) in self.columns.iter_mut().zip(&self.def.columns) {
            *builder = ColumnBuilder::new(column.ty, BATCH_ROWS);
        }
        let batch = RecordBatch::try_new(self.def.scaled_schema(), arrays)
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.batches.push(batch);
        Ok(())
    }

    /// The batches completed so far, handed over (COPY streams them on as they fill).
    pub fn take_batches(&mut self) -> Vec<RecordBatch> {
        std::mem::take(&mut self.batches)
    }

    /// All complete rows, as batches.
    pub fn finish(mut self) -> Result<Vec<RecordBatch>> {
        self.flush()?;
        Ok(self.batches)
    }
}

/// The DEFAULT of `column` as an array of one value (`None` for a column without one),
/// read as COPY reads its text.
pub fn default_value(column: &ColumnDef) -> Result<Option<ArrayRef>> {
    let Some(text) = &column.default else {
        return Ok(None);
    };
    let mut builder = ColumnBuilder::new(column.ty, 1);
    builder.append_text(text, &value::utc())?;
    Ok(Some(builder.finish()?))
}

/// A constant for `column` as an array of one value, read from its text as COPY reads it
/// (`zone`: the session's time zone, for `timestamptz`; `None` text is NULL).
pub fn constant_value(
    column: &ColumnDef,
    text: Option<&str>,
    zone: Option<&str>,
) -> Result<ArrayRef> {
    let zone = zone
        .and_then(|z| z.parse::<Tz>().ok())
        .unwrap_or_else(value::utc);
    let mut builder = ColumnBuilder::new(column.ty, 1);
    match text {
        Some(text) => builder.append_text(text, &zone)?,
        None => builder.append_null(),
    }
    builder.finish()
}

/// Decimals (of any scale) as an unconstrained numeric column holds them, each read as
/// numeric input reads its text: refused where one has more places, or more digits
/// before the point, than the column keeps, never rounded.
pub fn unconstrained_values(values: &ArrayRef) -> Result<ArrayRef> {
    let (precision, scale) = DEFAULT_NUMERIC;
    let target = arrow::datatypes::DataType::Decimal128(precision, scale);
    let arrow::datatypes::DataType::Decimal128(_, given) = values.data_type() else {
        return arrow::compute::cast(values, &target).map_err(|e| Error::Internal(e.to_string()));
    };
    let read: Decimal128Array = values
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .ok_or_else(|| Error::Internal("a decimal array of another kind".into()))?
        .iter()
        .map(|v| {
            v.map(|v| value::parse_numeric_unconstrained(&crate::text::decimal_text(v, *given)))
                .transpose()
                .map(|v| v.map(|(v, _)| v))
        })
        .collect::<Result<_, ValueError>>()?;
    Ok(Arc::new(
        read.with_precision_and_scale(precision, scale)
            .map_err(|e| Error::Internal(e.to_string()))?,
    ))
}

/// Checks a batch (from INSERT) against the table's constraints: NOT NULL, varchar length
/// and numeric precision, and that `json` values are JSON; `jsonb` values come back in
/// their normal form.
pub fn validate_batch(def: &TableDef, batch: RecordBatch) -> Result<RecordBatch> {
    let mut columns = batch.columns().to_vec();
    for (column, array) in def.columns.iter().zip(columns.iter_mut()) {
        if !column.nullable && array.null_count() > 0 {
            return Err(Error::NotNull {
                table: def.name.clone(),
                column: column.name.clone(),
            });
        }
        match column.ty {
            ColumnType::Varchar { max_len: Some(n) } => {
                if let Some(strings) = array.as_any().downcast_ref::<StringArray>() {
                    for s in strings.iter().flatten() {
                        check_length(s, Some(n))?;
                    }
                }
            }
            ColumnType::Numeric { precision, scale } => {
                if let Some(decimals) = array.as_any().downcast_ref::<Decimal128Array>() {
                    let limit = 10i128.pow(u32::from(precision));
                    if decimals
                        .iter()
                        .flatten()
                        .any(|v| v.unsigned_abs() >= limit as u128)
                    {
                        return Err(ValueError::out_of_range(format!(
                            "numeric field overflow: a field with precision {precision}, scale {scale} must round to an absolute value less than 10^{}",
                            i32::from(precision) - i32::from(scale)
                        ))
                        .into());
                    }
                }
            }
            ColumnType::Json | ColumnType::Jsonb | ColumnType::Uuid => {
                if let Some(texts) = array.as_any().downcast_ref::<StringArray>() {
                    let mut changed = false;
                    let normal = texts
                        .iter()
                        .map(|s| {
                            s.map(|s| {
                                let n = normal_form(&column.ty, s)?;
                                changed |= n != s;
                                Ok(n.into_owned())
                            })
                            .transpose()
                        })
                        .collect::<Result<StringArray, ValueError>>()?;
                    if changed {
                        *array = Arc::new(normal);
                    }
                }
            }
            _ => {}
        }
    }
    if columns
        .iter()
        .zip(batch.columns())
        .all(|(a, b)| Arc::ptr_eq(a, b))
    {
        return Ok(batch);
    }
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| Error::Internal(e.to_string()))
}
