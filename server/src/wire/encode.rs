//! Arrow values on the wire: PostgreSQL type OIDs for Arrow types, and each value in
//! PostgreSQL's text or binary representation.

use bytes::{BufMut, BytesMut};

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, IntervalUnit, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use henge_ingest::interval::{format_interval, Interval};
use henge_ingest::text::time_text;
use pgwire::api::results::FieldFormat;
use pgwire::api::Type;

use crate::error::{code, PgError};

/// Microseconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from the Unix epoch to 2000-01-01.
pub const PG_EPOCH_DAYS: i32 = 10_957;

/// The PostgreSQL type a column of this Arrow type is sent as.
pub fn pg_type(data_type: &DataType) -> Type {
    match data_type {
        t if henge_planner::pg::display::is_display(t) => Type::NUMERIC,
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::TEXT,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Time32(_) | DataType::Time64(_) => Type::TIME,
        DataType::Interval(_) | DataType::Duration(_) => Type::INTERVAL,
        DataType::List(_) | DataType::LargeList(_) if natively_encoded(data_type) => {
            array_type(&pg_type(innermost(data_type)))
        }
        _ => Type::TEXT,
    }
}

/// The PostgreSQL type a result column is sent as: its extension type's (`json`,
/// `jsonb`) where the field has one, else its Arrow type's.
pub fn pg_field_type(field: &datafusion::arrow::datatypes::Field) -> Type {
    use henge_storage::schema::{
        BPCHAR_EXTENSION, JSONB_EXTENSION, JSON_EXTENSION, NAME_EXTENSION, REGCLASS_EXTENSION,
        UUID_EXTENSION, VARCHAR_EXTENSION, VOID_EXTENSION,
    };
    match henge_planner::pg::types::extension(field) {
        Some(JSON_EXTENSION) => Type::JSON,
        Some(JSONB_EXTENSION) => Type::JSONB,
        Some(UUID_EXTENSION) => Type::UUID,
        Some(VOID_EXTENSION) => Type::VOID,
        Some(NAME_EXTENSION) => Type::NAME,
        Some(VARCHAR_EXTENSION) => Type::VARCHAR,
        Some(BPCHAR_EXTENSION) => Type::BPCHAR,
        Some(REGCLASS_EXTENSION) => Type::REGCLASS,
        _ => pg_type(field.data_type()),
    }
}

/// PostgreSQL's array type of an element type.
fn array_type(element: &Type) -> Type {
    match *element {
        Type::BOOL => Type::BOOL_ARRAY,
        Type::INT2 => Type::INT2_ARRAY,
        Type::INT4 => Type::INT4_ARRAY,
        Type::INT8 => Type::INT8_ARRAY,
        Type::FLOAT4 => Type::FLOAT4_ARRAY,
        Type::FLOAT8 => Type::FLOAT8_ARRAY,
        Type::NUMERIC => Type::NUMERIC_ARRAY,
        Type::BYTEA => Type::BYTEA_ARRAY,
        Type::DATE => Type::DATE_ARRAY,
        Type::TIMESTAMP => Type::TIMESTAMP_ARRAY,
        Type::TIMESTAMPTZ => Type::TIMESTAMPTZ_ARRAY,
        Type::INTERVAL => Type::INTERVAL_ARRAY,
        _ => Type::TEXT_ARRAY,
    }
}

/// The values of one row of a list array.
fn list_values(array: &ArrayRef, row: usize) -> Option<ArrayRef> {
    match array.data_type() {
        DataType::List(_) => Some(array.as_list::<i32>().value(row)),
        DataType::LargeList(_) => Some(array.as_list::<i64>().value(row)),
        _ => None,
    }
}

/// The lengths of an array's dimensions, outermost first: Arrow's nested lists are
/// PostgreSQL's multidimensional arrays, which must be rectangular and have no NULL
/// sub-array. An empty array (at any level) has no dimensions.
fn dimensions(values: &ArrayRef) -> Result<Vec<usize>, PgError> {
    let mut dims = vec![values.len()];
    if !matches!(
        values.data_type(),
        DataType::List(_) | DataType::LargeList(_)
    ) {
        return Ok(if values.is_empty() { Vec::new() } else { dims });
    }
    let mut inner: Option<Vec<usize>> = None;
    for i in 0..values.len() {
        let Some(sub) = list_values(values, i).filter(|_| !values.is_null(i)) else {
            return Err(ragged());
        };
        let sub_dims = dimensions(&sub)?;
        match &inner {
            Some(first) if *first != sub_dims => return Err(ragged()),
            Some(_) => {}
            None => inner = Some(sub_dims),
        }
    }
    let inner = inner.unwrap_or_default();
    if values.is_empty() || inner.is_empty() {
        return Ok(Vec::new());
    }
    dims.extend(inner);
    Ok(dims)
}

fn ragged() -> PgError {
    PgError::new(
        code::ARRAY_SUBSCRIPT_ERROR,
        "multidimensional arrays must have array expressions with matching dimensions",
    )
}

/// An array in PostgreSQL's text form: `{1,2,NULL}`, `{{1,2},{3,4}}`, elements quoted
/// where needed.
fn array_text(values: &ArrayRef, zone: &Tz, out: &mut BytesMut) -> Result<(), PgError> {
    if dimensions(values)?.is_empty() {
        out.put_slice(b"{}");
        return Ok(());
    }
    array_text_level(values, zone, out);
    Ok(())
}

fn array_text_level(values: &ArrayRef, zone: &Tz, out: &mut BytesMut) {
    out.put_u8(b'{');
    let mut element = BytesMut::new();
    for i in 0..values.len() {
        if i > 0 {
            out.put_u8(b',');
        }
        if let Some(sub) = list_values(values, i) {
            array_text_level(&sub, zone, out);
            continue;
        }
        if values.is_null(i) {
            out.put_slice(b"NULL");
            continue;
        }
        element.clear();
        encode_scalar_text(values, i, zone, &mut element);
        let needs_quotes = element.is_empty()
            || element.eq_ignore_ascii_case(b"null")
            || element
                .iter()
                .any(|b| matches!(b, b'{' | b'}' | b',' | b'"' | b'\\') || b.is_ascii_whitespace());
        if needs_quotes {
            out.put_u8(b'"');
            for &b in element.iter() {
                if b == b'"' || b == b'\\' {
                    out.put_u8(b'\\');
                }
                out.put_u8(b);
            }
            out.put_u8(b'"');
        } else {
            out.put_slice(&element);
        }
    }
    out.put_u8(b'}');
}

/// The innermost values of a (possibly nested) list, in row-major order.
fn leaves(values: &ArrayRef, out: &mut Vec<(ArrayRef, usize)>) {
    for i in 0..values.len() {
        match list_values(values, i) {
            Some(sub) => leaves(&sub, out),
            None => out.push((values.clone(), i)),
        }
    }
}

/// An array in PostgreSQL's binary form, with one dimension per level of nesting.
fn array_binary(values: &ArrayRef, out: &mut BytesMut) -> Result<(), PgError> {
    let dims = dimensions(values)?;
    let mut cells = Vec::new();
    if !dims.is_empty() {
        leaves(values, &mut cells);
    }
    let element = match cells.first() {
        Some((array, _)) => pg_type(array.data_type()),
        None => pg_type(innermost(values.data_type())),
    };
    out.put_i32(dims.len() as i32);
    out.put_i32(i32::from(cells.iter().any(|(a, i)| a.is_null(*i))));
    out.put_u32(element.oid());
    for &len in &dims {
        out.put_i32(len as i32);
        out.put_i32(1);
    }
    for (array, i) in &cells {
        if array.is_null(*i) {
            out.put_i32(-1);
            continue;
        }
        let start = out.len();
        out.put_i32(0);
        encode_binary(array, *i, out)?;
        let len = (out.len() - start - 4) as i32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// The element type of a list, through any nesting.
fn innermost(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) => innermost(item.data_type()),
        other => other,
    }
}

/// Encodes one column of a batch, value by value, into DataRow fields.
pub struct ColumnEncoder<'a> {
    array: &'a ArrayRef,
    format: FieldFormat,
    /// The session's time zone, in which `timestamptz` text is written.
    zone: &'a Tz,
    fallback: Option<ArrayFormatter<'a>>,
    /// The types held as text whose binary form is another: `jsonb` (its text after a
    /// version byte) and `uuid` (16 bytes).
    sent_as: Option<Type>,
    /// The texts of display numerics, where the column holds them.
    numeric_texts: Option<&'a StringArray>,
    /// The length `char(n)` values are written padded to with spaces.
    padded: Option<usize>,
}

impl<'a> ColumnEncoder<'a> {
    pub fn new(
        array: &'a ArrayRef,
        format: FieldFormat,
        options: &'a FormatOptions<'a>,
        zone: &'a Tz,
    ) -> Result<Self, PgError> {
        let numeric_texts = henge_planner::pg::display::is_display(array.data_type())
            .then(|| array.as_struct().column(1).as_string::<i32>());
        let fallback = if natively_encoded(array.data_type())
            || numeric_texts.is_some()
            || is_record(array.data_type())
        {
            None
        } else {
            Some(
                ArrayFormatter::try_new(array.as_ref(), options).map_err(|e| {
                    PgError::new(
                        code::INTERNAL_ERROR,
                        format!("cannot format {}: {e}", array.data_type()),
                    )
                })?,
            )
        };
        Ok(ColumnEncoder {
            array,
            format,
            zone,
            fallback,
            sent_as: None,
            numeric_texts,
            padded: None,
        })
    }

    /// Writes the values padded with spaces as `char(n)` values of the result `field`
    /// are, where it is one.
    pub fn padded_as(mut self, field: &datafusion::arrow::datatypes::Field) -> Self {
        self.padded = henge_planner::pg::character::padded_length(field);
        self
    }

    /// Pads the value just written from `start` to the `char(n)` length, if any.
    fn pad(&self, out: &mut BytesMut, start: usize) {
        let Some(n) = self.padded else {
            return;
        };
        let written = std::str::from_utf8(&out[start..]).map_or(n, |s| s.chars().count());
        for _ in written..n {
            out.put_u8(b' ');
        }
    }

    /// Encodes the values as the PostgreSQL type `ty` (the column's in its description).
    pub fn sent_as(mut self, ty: &Type) -> Self {
        self.sent_as = matches!(*ty, Type::JSONB | Type::UUID).then(|| ty.clone());
        self
    }

    /// The bytes of the uuid in `row`. A column described as uuid holds uuids in standard
    /// form, unless text met it in a result (`UNION SELECT 'A0EE…'`): that text is read as
    /// a uuid, or refused as PostgreSQL refuses it.
    fn uuid(&self, row: usize) -> Result<[u8; 16], PgError> {
        let text = self.array.as_string::<i32>().value(row);
        if let Some(bytes) = henge_ingest::uuid::uuid_bytes(text) {
            return Ok(bytes);
        }
        henge_ingest::uuid::uuid_in(text)
            .ok()
            .and_then(|standard| henge_ingest::uuid::uuid_bytes(&standard))
            .ok_or_else(|| {
                PgError::new(
                    code::INVALID_TEXT_REPRESENTATION,
                    format!("invalid input syntax for type uuid: \"{text}\""),
                )
            })
    }

    /// Whether `row` is NULL; an array of type Null has no null buffer, but every value is.
    fn is_null(&self, row: usize) -> bool {
        self.array.is_null(row) || self.array.data_type() == &DataType::Null
    }

    /// Appends the length-prefixed value of `row` (or -1 for NULL) to `out`.
    pub fn encode(&self, row: usize, out: &mut BytesMut) -> Result<(), PgError> {
        if self.is_null(row) {
            out.put_i32(-1);
            return Ok(());
        }
        let start = out.len();
        out.put_i32(0);
        if let Some(texts) = self.numeric_texts {
            match self.format {
                FieldFormat::Binary => numeric_text_binary(texts.value(row), out),
                _ => out.put_slice(texts.value(row).as_bytes()),
            }
        } else if let Some(formatter) = &self.fallback {
            use std::fmt::Write;
            let mut s = String::new();
            let _ = write!(s, "{}", formatter.value(row));
            out.put_slice(s.as_bytes());
        } else if is_record(self.array.data_type()) {
            // Sent as text in either format (the column is described as text).
            record_text(self.array.as_struct(), row, self.zone, out)?;
        } else if self.format == FieldFormat::Binary {
            match &self.sent_as {
                Some(Type::JSONB) => {
                    out.put_u8(1);
                    encode_binary(self.array, row, out)?;
                }
                Some(Type::UUID) => out.put_slice(&self.uuid(row)?),
                _ => encode_binary(self.array, row, out)?,
            }
        } else if self.sent_as == Some(Type::UUID) {
            let text = self.array.as_string::<i32>().value(row);
            match henge_ingest::uuid::uuid_bytes(text) {
                Some(_) => out.put_slice(text.as_bytes()),
                None => out.put_slice(henge_ingest::uuid::uuid_text(&self.uuid(row)?).as_bytes()),
            }
        } else {
            encode_text(self.array, row, self.zone, out)?;
        }
        self.pad(out, start + 4);
        let len = (out.len() - start - 4) as i32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// The value of `row` as PostgreSQL text, or `false` for NULL (COPY TO).
    pub fn text(&self, row: usize, out: &mut Vec<u8>) -> Result<bool, PgError> {
        if self.is_null(row) {
            return Ok(false);
        }
        let mut buf = BytesMut::new();
        if let Some(texts) = self.numeric_texts {
            buf.put_slice(texts.value(row).as_bytes());
        } else if let Some(formatter) = &self.fallback {
            buf.put_slice(formatter.value(row).to_string().as_bytes());
        } else if is_record(self.array.data_type()) {
            record_text(self.array.as_struct(), row, self.zone, &mut buf)?;
        } else {
            encode_text(self.array, row, self.zone, &mut buf)?;
        }
        self.pad(&mut buf, 0);
        out.extend_from_slice(&buf);
        Ok(true)
    }
}

/// Whether a column holds records (`ROW(…)`), not display numerics.
fn is_record(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Struct(_)) && !henge_planner::pg::display::is_display(data_type)
}

/// A record as PostgreSQL writes it: `(1,abc,,"a b")`, a NULL field empty, a field quoted
/// where it is empty or holds a quote, backslash, parenthesis, comma or space (quotes and
/// backslashes doubled inside).
fn record_text(
    record: &datafusion::arrow::array::StructArray,
    row: usize,
    zone: &Tz,
    out: &mut BytesMut,
) -> Result<(), PgError> {
    out.put_u8(b'(');
    for (i, field) in record.columns().iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        if field.is_null(row) || field.data_type() == &DataType::Null {
            continue;
        }
        let mut text = BytesMut::new();
        if henge_planner::pg::display::is_display(field.data_type()) {
            text.put_slice(
                field
                    .as_struct()
                    .column(1)
                    .as_string::<i32>()
                    .value(row)
                    .as_bytes(),
            );
        } else if is_record(field.data_type()) {
            record_text(field.as_struct(), row, zone, &mut text)?;
        } else if natively_encoded(field.data_type()) {
            encode_text(field, row, zone, &mut text)?;
        } else {
            let options = FormatOptions::default();
            let formatter = ArrayFormatter::try_new(field.as_ref(), &options).map_err(|e| {
                PgError::new(
                    code::INTERNAL_ERROR,
                    format!("cannot format {}: {e}", field.data_type()),
                )
            })?;
            text.put_slice(formatter.value(row).to_string().as_bytes());
        }
        let quoted = text.is_empty()
            || text
                .iter()
                .any(|b| matches!(b, b'"' | b'\\' | b'(' | b')' | b',') || b.is_ascii_whitespace());
        if !quoted {
            out.put_slice(&text);
            continue;
        }
        out.put_u8(b'"');
        for &b in text.iter() {
            if matches!(b, b'"' | b'\\') {
                out.put_u8(b);
            }
            out.put_u8(b);
        }
        out.put_u8(b'"');
    }
    out.put_u8(b')');
    Ok(())
}

fn natively_encoded(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::Date32
            | DataType::Timestamp(..)
            | DataType::Interval(IntervalUnit::MonthDayNano)
            | DataType::Duration(_)
            | DataType::Time64(_)
    ) || matches!(
        data_type,
        DataType::List(item) | DataType::LargeList(item) if natively_encoded(item.data_type())
    )
}

fn put_display(out: &mut BytesMut, value: impl std::fmt::Display) {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = write!(s, "{value}");
    out.put_slice(s.as_bytes());
}

fn timestamp_micros(array: &ArrayRef, row: usize) -> i64 {
    let DataType::Timestamp(unit, _) = array.data_type() else {
        return 0;
    };
    match unit {
        TimeUnit::Second => array
            .as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>()
            .value(row)
            .saturating_mul(1_000_000),
        TimeUnit::Millisecond => array
            .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>()
            .value(row)
            .saturating_mul(1_000),
        TimeUnit::Microsecond => array
            .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
            .value(row),
        TimeUnit::Nanosecond => array
            .as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>()
            .value(row)
            .div_euclid(1_000),
    }
}

fn encode_text(array: &ArrayRef, row: usize, zone: &Tz, out: &mut BytesMut) -> Result<(), PgError> {
    if let Some(values) = list_values(array, row) {
        return array_text(&values, zone, out);
    }
    encode_scalar_text(array, row, zone, out);
    Ok(())
}

/// One value that is not an array, as text.
fn encode_scalar_text(array: &ArrayRef, row: usize, zone: &Tz, out: &mut BytesMut) {
    match array.data_type() {
        DataType::Boolean => out.put_u8(if array.as_boolean().value(row) {
            b't'
        } else {
            b'f'
        }),
        DataType::Int8 => put_display(out, array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => put_display(out, array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => put_display(out, array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => put_display(out, array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => put_display(out, array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => put_display(out, array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => put_display(out, array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => put_display(out, array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(row);
            out.put_slice(henge_ingest::text::float4_text(v).as_bytes())
        }
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            out.put_slice(henge_ingest::text::float8_text(v).as_bytes())
        }
        DataType::Decimal128(_, scale) => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            out.put_slice(henge_ingest::text::decimal_text(v, *scale).as_bytes())
        }
        DataType::Utf8 => out.put_slice(array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => out.put_slice(array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => out.put_slice(array.as_string_view().value(row).as_bytes()),
        DataType::Binary => bytea_text(array.as_binary::<i32>().value(row), out),
        DataType::LargeBinary => bytea_text(array.as_binary::<i64>().value(row), out),
        DataType::BinaryView => bytea_text(array.as_binary_view().value(row), out),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            out.put_slice(henge_ingest::text::date_text(days).as_bytes())
        }
        DataType::Timestamp(_, tz) => {
            let micros = timestamp_micros(array, row);
            out.put_slice(timestamp_text(micros, tz.as_ref().map(|_| zone)).as_bytes())
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array
                .as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>()
                .value(row);
            out.put_slice(
                format_interval(Interval {
                    months: v.months,
                    days: v.days,
                    micros: v.nanoseconds / 1000,
                })
                .as_bytes(),
            )
        }
        DataType::Time64(_) => out.put_slice(time_text(time_micros(array, row)).as_bytes()),
        DataType::Duration(_) => {
            out.put_slice(format_interval(duration_interval(array, row)).as_bytes())
        }
        _ => {}
    }
}

/// A duration (what DataFusion gives for `timestamp - timestamp` where Henge's planner does
/// not make it an interval) as PostgreSQL's interval of the same length: whole days and
/// the time left over.
fn duration_interval(array: &ArrayRef, row: usize) -> Interval {
    use datafusion::arrow::datatypes::{
        DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
        DurationSecondType,
    };
    let micros = match array.data_type() {
        DataType::Duration(TimeUnit::Second) => array
            .as_primitive::<DurationSecondType>()
            .value(row)
            .saturating_mul(1_000_000),
        DataType::Duration(TimeUnit::Millisecond) => array
            .as_primitive::<DurationMillisecondType>()
            .value(row)
            .saturating_mul(1_000),
        DataType::Duration(TimeUnit::Microsecond) => {
            array.as_primitive::<DurationMicrosecondType>().value(row)
        }
        _ => array.as_primitive::<DurationNanosecondType>().value(row) / 1_000,
    };
    const DAY: i64 = 86_400_000_000;
    Interval {
        months: 0,
        days: (micros / DAY) as i32,
        micros: micros % DAY,
    }
}

/// A `time` value's microseconds since midnight.
fn time_micros(array: &ArrayRef, row: usize) -> i64 {
    match array.data_type() {
        DataType::Time64(TimeUnit::Nanosecond) => {
            array
                .as_primitive::<datafusion::arrow::datatypes::Time64NanosecondType>()
                .value(row)
                / 1000
        }
        _ => array
            .as_primitive::<datafusion::arrow::datatypes::Time64MicrosecondType>()
            .value(row),
    }
}

pub use henge_ingest::text::timestamp_text;

fn bytea_text(bytes: &[u8], out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_slice(b"\\x");
    for b in bytes {
        out.put_u8(HEX[(b >> 4) as usize]);
        out.put_u8(HEX[(b & 15) as usize]);
    }
}

fn encode_binary(array: &ArrayRef, row: usize, out: &mut BytesMut) -> Result<(), PgError> {
    if let Some(values) = list_values(array, row) {
        return array_binary(&values, out);
    }
    encode_scalar_binary(array, row, out);
    Ok(())
}

/// One value that is not an array, in binary.
fn encode_scalar_binary(array: &ArrayRef, row: usize, out: &mut BytesMut) {
    match array.data_type() {
        DataType::Boolean => out.put_u8(u8::from(array.as_boolean().value(row))),
        DataType::Int8 => out.put_i16(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::UInt8 => out.put_i16(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::Int16 => out.put_i16(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => out.put_i32(array.as_primitive::<Int32Type>().value(row)),
        DataType::UInt16 => out.put_i32(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::Int64 => out.put_i64(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt32 => out.put_i64(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => numeric_binary(
            i128::from(array.as_primitive::<UInt64Type>().value(row)),
            0,
            out,
        ),
        DataType::Float32 => out.put_f32(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => out.put_f64(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, scale) => numeric_binary(
            array.as_primitive::<Decimal128Type>().value(row),
            *scale,
            out,
        ),
        DataType::Utf8 => out.put_slice(array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => out.put_slice(array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => out.put_slice(array.as_string_view().value(row).as_bytes()),
        DataType::Binary => out.put_slice(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => out.put_slice(array.as_binary::<i64>().value(row)),
        DataType::BinaryView => out.put_slice(array.as_binary_view().value(row)),
        DataType::Date32 => {
            out.put_i32(array.as_primitive::<Date32Type>().value(row) - PG_EPOCH_DAYS)
        }
        DataType::Timestamp(..) => {
            out.put_i64(timestamp_micros(array, row).saturating_sub(PG_EPOCH_MICROS))
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array
                .as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>()
                .value(row);
            out.put_i64(v.nanoseconds / 1000);
            out.put_i32(v.days);
            out.put_i32(v.months);
        }
        DataType::Time64(_) => out.put_i64(time_micros(array, row)),
        DataType::Duration(_) => {
            let v = duration_interval(array, row);
            out.put_i64(v.micros);
            out.put_i32(v.days);
            out.put_i32(v.months);
        }
        _ => {}
    }
}

/// PostgreSQL's binary `numeric`: base-10000 digits with weight, sign and display scale.
/// Worked on the decimal digits, so that no value of 38 digits overflows on the way.
pub fn numeric_binary(v: i128, scale: i8, out: &mut BytesMut) {
    let dscale = scale.max(0) as usize;
    let mut text = v.unsigned_abs().to_string();
    if scale < 0 {
        text.extend(std::iter::repeat_n('0', usize::from(scale.unsigned_abs())));
    }
    // At least one digit before the point; the fraction padded to whole groups of 4.
    if text.len() <= dscale {
        text.insert_str(0, &"0".repeat(dscale + 1 - text.len()));
    }
    let (whole, fraction) = text.split_at(text.len() - dscale);
    numeric_digits_binary(v < 0, whole, fraction, out);
}

/// PostgreSQL's text of a numeric (`-12.340`, as a display numeric holds it) in binary.
fn numeric_text_binary(text: &str, out: &mut BytesMut) {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    numeric_digits_binary(negative, whole, fraction, out);
}

/// The binary numeric of the digits before and after the point (the display scale being
/// those after).
fn numeric_digits_binary(negative: bool, whole: &str, fraction: &str, out: &mut BytesMut) {
    let dscale = fraction.len();
    let group = |digits: &str| {
        digits
            .bytes()
            .fold(0i16, |g, d| g * 10 + i16::from(d - b'0'))
    };
    let lead = whole.len() % 4;
    let mut groups: Vec<i16> = Vec::new();
    if lead > 0 {
        groups.push(group(&whole[..lead]));
    }
    groups.extend(
        whole.as_bytes()[lead..]
            .chunks(4)
            .map(|c| group(std::str::from_utf8(c).unwrap_or("0"))),
    );
    let whole_groups = groups.len() as i32;
    let mut fraction = fraction.to_owned();
    fraction.extend(std::iter::repeat_n('0', (4 - fraction.len() % 4) % 4));
    groups.extend(
        fraction
            .as_bytes()
            .chunks(4)
            .map(|c| group(std::str::from_utf8(c).unwrap_or("0"))),
    );
    // Leading and trailing zero groups are implied by the weight and the display scale.
    let first = groups.iter().position(|g| *g != 0);
    let last = groups.iter().rposition(|g| *g != 0);
    let (digits, weight) = match (first, last) {
        (Some(first), Some(last)) => (&groups[first..=last], whole_groups - 1 - first as i32),
        _ => (&groups[..0], 0),
    };
    out.put_i16(digits.len() as i16);
    out.put_i16(weight as i16);
    out.put_u16(if negative { 0x4000 } else { 0 });
    out.put_u16(dscale as u16);
    for d in digits {
        out.put_i16(*d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp_text(1_500_000, None), "1970-01-01 00:00:01.5");
        let utc: Tz = "+00:00".parse().unwrap();
        assert_eq!(timestamp_text(0, Some(&utc)), "1970-01-01 00:00:00+00");
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2024-07-01 12:00 UTC is summer time in Berlin.
        let july = 1_719_835_200_000_000;
        assert_eq!(
            timestamp_text(july, Some(&berlin)),
            "2024-07-01 14:00:00+02"
        );
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(
            timestamp_text(0, Some(&kolkata)),
            "1970-01-01 05:30:00+05:30"
        );
        let west: Tz = "-03:00".parse().unwrap();
        assert_eq!(timestamp_text(0, Some(&west)), "1969-12-31 21:00:00-03");
    }

    /// `[-]digits e exponent` (the parameter decoder's form) at `scale` places.
    fn plain(text: &str, scale: usize) -> String {
        let (sign, rest) = match text.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", text),
        };
        let (digits, exponent) = rest.split_once('e').unwrap();
        let exponent: i64 = exponent.parse().unwrap();
        let mut digits = digits.to_owned();
        // Shift to `scale` places: zeros added, or (zero) digits dropped.
        let shift = exponent + scale as i64;
        if shift >= 0 {
            digits.extend(std::iter::repeat_n('0', shift as usize));
        } else {
            let keep = digits.len().saturating_sub(shift.unsigned_abs() as usize);
            assert!(digits[keep..].bytes().all(|d| d == b'0'));
            digits.truncate(keep);
        }
        let digits = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        let whole = whole.trim_start_matches('0');
        let whole = if whole.is_empty() { "0" } else { whole };
        match scale {
            0 => format!("{sign}{whole}"),
            _ => format!("{sign}{whole}.{fraction}"),
        }
    }

    #[test]
    fn numeric_binary_of_every_size() {
        for (v, scale, text) in [
            (
                8_999_999_999_999_999_999_999_999_985 * 10i128.pow(9),
                10,
                "899999999999999999999999998.5000000000",
            ),
            (-1, 4, "-0.0001"),
            (0, 3, "0.000"),
            (i128::from(u64::MAX), 0, "18446744073709551615"),
            (
                99_999_999_999_999_999_999_999_999_999_999_999_999,
                38,
                "0.99999999999999999999999999999999999999",
            ),
        ] {
            let mut out = BytesMut::new();
            numeric_binary(v, scale, &mut out);
            let back = crate::params::numeric_binary_to_text(&out).unwrap();
            assert_eq!(plain(&back, scale as usize), text);
        }
        let mut out = BytesMut::new();
        numeric_binary(15, -3, &mut out);
        // 15000: one group of 1 and one of 5000, weight 1.
        assert_eq!(&out[..], &[0, 2, 0, 1, 0, 0, 0, 0, 0, 1, 0x13, 0x88]);
    }

    #[test]
    fn numeric_binary_layout() {
        let mut out = BytesMut::new();
        numeric_binary(1234567, 2, &mut out); // 12345.67
                                              // ndigits 3, weight 1, positive, dscale 2, digits [1, 2345, 6700]
        assert_eq!(
            &out[..],
            &[0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1a, 0x2c]
        );
    }
}
