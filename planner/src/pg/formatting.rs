//! `to_char`, `to_date`, `to_timestamp(text, text)` and `to_number` with PostgreSQL's
//! template patterns ([`super::template`]), where DataFusion's functions of those names
//! take chrono's patterns and would answer `YYYY-MM-DD` with the text `YYYY-MM-DD`.
//!
//! The calls are renamed when the statement is rewritten (`to_char(x, t)` is
//! `pg_to_char(x, t)`), so DataFusion's `to_timestamp(seconds)` and `to_char` of one
//! argument stay as they are.

use std::ops::ControlFlow;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Decimal128Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, IntervalMonthDayNanoType, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, FunctionArguments, VisitMut, VisitorMut};

use super::rewrite::function_name;
use super::template::{self, Number, TemplateError, Zone};
use super::{no_such_function, on_arrays, SqlStateError};

/// Renames the calls with a template to Henge's functions.
pub fn rewrite(mut statement: ast::Statement) -> ast::Statement {
    struct Rename;
    impl VisitorMut for Rename {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
            let Some(name) = function_name(expr) else {
                return ControlFlow::Continue(());
            };
            if !matches!(
                name.as_str(),
                "to_char" | "to_date" | "to_timestamp" | "to_number"
            ) {
                return ControlFlow::Continue(());
            }
            if let ast::Expr::Function(f) = expr {
                let two = matches!(&f.args, FunctionArguments::List(l) if l.args.len() == 2);
                if two {
                    f.name = ast::ObjectName::from(vec![ast::Ident::new(format!("pg_{name}"))]);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Rename);
    statement
}

/// Registers the four functions.
pub fn register(ctx: &SessionContext) {
    for function in [
        Formatting::new("pg_to_char", DataType::Utf8),
        Formatting::new("pg_to_date", DataType::Date32),
        Formatting::new(
            "pg_to_timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        ),
        Formatting::new("pg_to_number", DataType::Decimal128(38, 0)),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(function));
    }
}

fn error(e: TemplateError) -> DataFusionError {
    SqlStateError::new(e.sqlstate, e.message).into()
}

/// One of the four functions.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Formatting {
    name: &'static str,
    returns: DataType,
    signature: Signature,
}

impl Formatting {
    fn new(name: &'static str, returns: DataType) -> Formatting {
        Formatting {
            name,
            returns,
            signature: Signature::user_defined(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for Formatting {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let refuse = || no_such_function(self.name.trim_start_matches("pg_"), arg_types);
        let [value, _] = arg_types else {
            return Err(refuse());
        };
        let value = match (self.name, value) {
            ("pg_to_char", DataType::Timestamp(_, zone)) => {
                DataType::Timestamp(TimeUnit::Microsecond, zone.clone())
            }
            ("pg_to_char", DataType::Date32) => DataType::Date32,
            ("pg_to_char", DataType::Interval(_)) => super::interval::INTERVAL,
            ("pg_to_char", DataType::Int8 | DataType::UInt8) => DataType::Int16,
            (
                "pg_to_char",
                DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal128(..),
            ) => value.clone(),
            ("pg_to_char", _) => return Err(refuse()),
            (_, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null) => {
                DataType::Utf8
            }
            _ => return Err(refuse()),
        };
        Ok(vec![value, DataType::Utf8])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let data_type = match self.name {
            "pg_to_number" => DataType::Decimal128(38, number_scale(args.scalar_arguments)),
            _ => self.returns.clone(),
        };
        Ok(Arc::new(Field::new(self.name, data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| self.compute(arrays, &args))
    }
}

impl Formatting {
    fn compute(&self, arrays: &[ArrayRef], args: &ScalarFunctionArgs) -> Result<ArrayRef> {
        let zone = session_zone(&args.config_options);
        Ok(match self.name {
            "pg_to_char" => to_char(&arrays[0], arrays[1].as_string::<i32>(), &zone)?,
            "pg_to_date" => to_date(arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>())?,
            "pg_to_timestamp" => to_timestamp(
                arrays[0].as_string::<i32>(),
                arrays[1].as_string::<i32>(),
                &zone,
            )?,
            _ => {
                let DataType::Decimal128(_, scale) = args.return_field.data_type() else {
                    return Err(DataFusionError::Internal("to_number's type".into()));
                };
                to_number(
                    arrays[0].as_string::<i32>(),
                    arrays[1].as_string::<i32>(),
                    *scale,
                )?
            }
        })
    }
}

/// The session's zone, its name as SET gave it (for abbreviations) and as Arrow reads it.
struct SessionZone {
    zone: Tz,
    named: Option<chrono_tz::Tz>,
}

fn session_zone(config: &ConfigOptions) -> SessionZone {
    let name = config.execution.time_zone.clone().unwrap_or_default();
    SessionZone {
        zone: crate::literal::session_zone(config),
        named: chrono_tz::Tz::from_str(&name).ok(),
    }
}

impl SessionZone {
    /// The wall-clock time, abbreviation and offset of an instant.
    fn local(&self, micros: i64) -> Option<(NaiveDateTime, String, i32)> {
        let utc = DateTime::from_timestamp_micros(micros)?;
        let offset = self.zone.offset_from_utc_datetime(&utc.naive_utc()).fix();
        let seconds = offset.local_minus_utc();
        let abbreviation = match &self.named {
            Some(named) => {
                use chrono_tz::OffsetName;
                named
                    .offset_from_utc_datetime(&utc.naive_utc())
                    .abbreviation()
                    .unwrap_or("")
                    .to_owned()
            }
            None if seconds == 0 => "UTC".to_owned(),
            None => offset_text(seconds),
        };
        Some((
            utc.naive_utc()
                .checked_add_signed(chrono::Duration::seconds(seconds.into()))?,
            abbreviation,
            seconds,
        ))
    }
}

/// An offset as PostgreSQL abbreviates a numeric zone: `+05:30`, `-03`.
fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let (h, m) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    match m {
        0 => format!("{sign}{h:02}"),
        _ => format!("{sign}{h:02}:{m:02}"),
    }
}

fn to_char(values: &ArrayRef, templates: &StringArray, zone: &SessionZone) -> Result<ArrayRef> {
    let mut out = Vec::with_capacity(values.len());
    for row in 0..values.len() {
        if values.is_null(row) || templates.is_null(row) {
            out.push(None);
            continue;
        }
        let template = templates.value(row);
        let text = match values.data_type() {
            DataType::Timestamp(_, tz) => {
                let micros = values.as_primitive::<TimestampMicrosecondType>().value(row);
                match tz {
                    Some(_) => {
                        let (local, abbreviation, seconds) =
                            zone.local(micros).ok_or_else(out_of_range)?;
                        let zone = Zone {
                            abbreviation: &abbreviation,
                            offset_seconds: seconds,
                        };
                        template::format_datetime(template, local, Some(zone))
                    }
                    None => {
                        let local = DateTime::from_timestamp_micros(micros)
                            .ok_or_else(out_of_range)?
                            .naive_utc();
                        template::format_datetime(template, local, None)
                    }
                }
            }
            // A date is formatted as PostgreSQL formats it, as the timestamptz of its
            // midnight in the session's zone.
            DataType::Date32 => {
                let days = values.as_primitive::<Date32Type>().value(row);
                let midnight = chrono::NaiveDate::from_num_days_from_ce_opt(
                    days + henge_ingest::value::UNIX_EPOCH_CE_DAYS,
                )
                .ok_or_else(out_of_range)?
                .and_hms_opt(0, 0, 0)
                .ok_or_else(out_of_range)?;
                let offset = henge_ingest::value::local_offset(&zone.zone)(midnight);
                let instant = midnight.and_utc().timestamp_micros() - i64::from(offset) * 1_000_000;
                let (local, abbreviation, seconds) =
                    zone.local(instant).ok_or_else(out_of_range)?;
                let zone = Zone {
                    abbreviation: &abbreviation,
                    offset_seconds: seconds,
                };
                template::format_datetime(template, local, Some(zone))
            }
            DataType::Interval(_) => {
                let v = values.as_primitive::<IntervalMonthDayNanoType>().value(row);
                template::format_interval(template, v.months, v.days, v.nanoseconds / 1000)
            }
            _ => template::format_number(template, &number(values, row)?).map(Some),
        }
        .map_err(error)?;
        out.push(text);
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn out_of_range() -> DataFusionError {
    SqlStateError::new("22008", "timestamp out of range").into()
}

/// A numeric value of one row, as the template module takes it.
fn number(values: &ArrayRef, row: usize) -> Result<Number> {
    Ok(match values.data_type() {
        DataType::Int16 => Number::Int4(values.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => Number::Int4(values.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Number::Int8(values.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => Number::Real(values.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => Number::Double(values.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, scale) => Number::Decimal {
            unscaled: values.as_primitive::<Decimal128Type>().value(row),
            scale: *scale,
        },
        other => {
            return Err(DataFusionError::Internal(format!(
                "to_char of a number of type {other}"
            )))
        }
    })
}

fn to_date(texts: &StringArray, templates: &StringArray) -> Result<ArrayRef> {
    let out: Date32Array = texts
        .iter()
        .zip(templates.iter())
        .map(|pair| match pair {
            (Some(text), Some(template)) => {
                use chrono::Datelike;
                let date = template::parse_date(text, template).map_err(error)?;
                Ok(Some(
                    date.num_days_from_ce() - henge_ingest::value::UNIX_EPOCH_CE_DAYS,
                ))
            }
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

fn to_timestamp(
    texts: &StringArray,
    templates: &StringArray,
    zone: &SessionZone,
) -> Result<ArrayRef> {
    let out: TimestampMicrosecondArray = texts
        .iter()
        .zip(templates.iter())
        .map(|pair| match pair {
            (Some(text), Some(template)) => {
                let parsed = template::parse_timestamp(text, template).map_err(error)?;
                let offset = parsed
                    .offset_seconds
                    .unwrap_or_else(|| henge_ingest::value::local_offset(&zone.zone)(parsed.local));
                let micros =
                    parsed.local.and_utc().timestamp_micros() - i64::from(offset) * 1_000_000;
                Ok(Some(micros))
            }
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out.with_timezone("+00:00")))
}

/// The places of `to_number`'s result: a numeric in PostgreSQL has its value's own, so
/// between constants exactly those of the value read; otherwise the most its template can
/// give (digits after the decimal point), or 16 with a `V`.
fn number_scale(arguments: &[Option<&ScalarValue>]) -> i8 {
    let text = |i: usize| match arguments.get(i).copied().flatten() {
        Some(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => Some(s.as_str()),
        _ => None,
    };
    let Some(template) = text(1) else {
        return 16;
    };
    if let Some(Ok(Some((_, scale)))) = text(0).map(|v| template::parse_number(v, template)) {
        return scale.clamp(0, 38);
    }
    if template.contains(['V', 'v']) {
        return 16;
    }
    let mut quoted = false;
    let mut after_point = None;
    for c in template.chars() {
        match c {
            '"' => quoted = !quoted,
            _ if quoted => {}
            '.' | 'D' | 'd' if after_point.is_none() => after_point = Some(0i8),
            '9' | '0' => {
                if let Some(n) = &mut after_point {
                    *n = n.saturating_add(1);
                }
            }
            _ => {}
        }
    }
    after_point.unwrap_or(0).min(38)
}

/// to_number's values at `scale` places (more places read than that is refused rather
/// than rounded; a template's own digits never give more).
fn to_number(texts: &StringArray, templates: &StringArray, scale_out: i8) -> Result<ArrayRef> {
    let scale_out = scale_out.max(0);
    let out: Decimal128Array = texts
        .iter()
        .zip(templates.iter())
        .map(|pair| match pair {
            (Some(text), Some(template)) => {
                let Some((unscaled, scale)) =
                    template::parse_number(text, template).map_err(error)?
                else {
                    return Ok(None);
                };
                if scale > scale_out {
                    return Err(SqlStateError::new(
                        "0A000",
                        format!(
                            "to_number of a value with more than {scale_out} places in a \
                             column is not supported"
                        ),
                    )
                    .into());
                }
                let value = 10i128
                    .checked_pow((scale_out - scale.max(0)) as u32)
                    .and_then(|p| unscaled.checked_mul(p))
                    .filter(|v| v.unsigned_abs() < 10u128.pow(38))
                    .ok_or_else(|| {
                        DataFusionError::from(SqlStateError::new(
                            "22003",
                            "value overflows numeric format",
                        ))
                    })?;
                Ok(Some(value))
            }
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out.with_precision_and_scale(38, scale_out)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_written_as_postgresql_abbreviates_them() {
        assert_eq!(offset_text(19_800), "+05:30");
        assert_eq!(offset_text(-10_800), "-03");
    }

    #[test]
    fn to_numbers_places_come_from_its_constants_or_template() {
        let text = |s: &str| ScalarValue::Utf8(Some(s.to_owned()));
        let (v, t) = (text("12"), text("99.9"));
        assert_eq!(number_scale(&[Some(&v), Some(&t)]), 0);
        assert_eq!(number_scale(&[None, Some(&t)]), 1);
        let t = text("9G999D999S");
        assert_eq!(number_scale(&[None, Some(&t)]), 3);
        assert_eq!(number_scale(&[None, None]), 16);
    }
}
