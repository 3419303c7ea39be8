//! `PgLiteralInput`: string literals cast to a type are read by PostgreSQL's input rules.
//!
//! In PostgreSQL `'\x0102'` is a bytea of two bytes, `'yes'` a boolean and `'x'` an error
//! "invalid input syntax for type bigint" when the literal lands in such a column. After
//! DataFusion's type coercion, such literals appear as `CAST('…' AS type)`; this analyzer
//! rule folds each into a typed literal using the same parsers as COPY, so INSERT … VALUES
//! and COPY accept and refuse exactly the same text.

use std::str::FromStr;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;
use henge_ingest::{interval, value, ValueError, ValueErrorKind};

/// The analyzer rule; add it after DataFusion's type coercion.
#[derive(Debug, Default)]
pub struct PgLiteralInput;

impl AnalyzerRule for PgLiteralInput {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let zone = session_zone(config);
        plan.transform_up_with_subqueries(|plan| {
            // Folding changes an expression's generated name; keep the names the plan's
            // schema was built with.
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let saved = names.save(&expr);
                Ok(expr
                    .transform_up(|e| fold(e, &zone))?
                    .update_data(|e| saved.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pg_literal_input"
    }
}

/// The session's time zone (`datafusion.execution.time_zone`, which follows `TimeZone`).
pub(crate) fn session_zone(config: &ConfigOptions) -> Tz {
    config
        .execution
        .time_zone
        .as_deref()
        .and_then(|z| Tz::from_str(z).ok())
        .unwrap_or_else(utc)
}

/// UTC as Arrow's time zone.
pub fn utc() -> Tz {
    value::utc()
}

fn fold(expr: Expr, zone: &Tz) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let Expr::Literal(ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)), _) =
        inner.as_ref()
    else {
        return Ok(Transformed::no(expr));
    };
    match parse(text, field.data_type(), zone) {
        Some(Ok(value)) => Ok(Transformed::yes(Expr::Literal(value, None))),
        Some(Err(e)) => Err(DataFusionError::External(Box::new(
            henge_ingest::Error::from(e),
        ))),
        None => Ok(Transformed::no(expr)),
    }
}

/// Reads `text` as a value of `data_type` (a `timestamptz` without an offset as local time
/// in `zone`); `None` for types left to DataFusion's cast.
pub fn parse(
    text: &str,
    data_type: &DataType,
    zone: &Tz,
) -> Option<Result<ScalarValue, ValueError>> {
    let now = || {
        let utc = chrono::Utc::now().naive_utc();
        let offset = value::local_offset(zone)(utc);
        // The offset of the local time, looked up by the UTC time: exact but for the hour
        // a clock change repeats or skips.
        Some(henge_ingest::datetime::Now {
            local: utc + chrono::Duration::seconds(i64::from(offset)),
            offset,
        })
    };
    let value = match data_type {
        DataType::Boolean => value::parse_bool(text).map(|v| ScalarValue::Boolean(Some(v))),
        DataType::Int16 => value::parse_int(text, i16::MIN.into(), i16::MAX.into(), "smallint")
            .map(|v| ScalarValue::Int16(Some(v as i16))),
        DataType::Int32 => value::parse_int(text, i32::MIN.into(), i32::MAX.into(), "integer")
            .map(|v| ScalarValue::Int32(Some(v as i32))),
        DataType::Int64 => value::parse_int(text, i64::MIN, i64::MAX, "bigint")
            .map(|v| ScalarValue::Int64(Some(v))),
        DataType::Float32 => value::parse_f32(text).map(|v| ScalarValue::Float32(Some(v))),
        DataType::Float64 => {
            value::parse_f64(text, "double precision").map(|v| ScalarValue::Float64(Some(v)))
        }
        DataType::Decimal128(p, s) => {
            value::parse_numeric(text, *p, *s).map(|v| ScalarValue::Decimal128(Some(v), *p, *s))
        }
        DataType::Date32 => value::parse_date_at(text, now()).map(|v| ScalarValue::Date32(Some(v))),
        DataType::Timestamp(TimeUnit::Microsecond, None) => value::parse_timestamp_at(text, now())
            .map(|v| ScalarValue::TimestampMicrosecond(Some(v), None)),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => {
            value::parse_timestamptz_at(text, value::local_offset(zone), now())
                .map(|v| ScalarValue::TimestampMicrosecond(Some(v), Some(tz.clone())))
        }
        DataType::Time64(TimeUnit::Microsecond) => henge_ingest::datetime::parse_time(text)
            .map(|v| ScalarValue::Time64Microsecond(Some(v))),
        DataType::Time64(TimeUnit::Nanosecond) => henge_ingest::datetime::parse_time(text)
            .map(|v| ScalarValue::Time64Nanosecond(Some(v * 1000))),
        // DataFusion compares a timestamp column with a string in nanoseconds.
        DataType::Timestamp(TimeUnit::Nanosecond, unit_zone) => match unit_zone {
            None => value::parse_timestamp(text),
            Some(_) => value::parse_timestamptz_local(text, value::local_offset(zone)),
        }
        .and_then(|v| {
            v.checked_mul(1000)
                .map(|ns| ScalarValue::TimestampNanosecond(Some(ns), unit_zone.clone()))
                .ok_or_else(|| ValueError {
                    kind: ValueErrorKind::DatetimeOverflow,
                    message: format!("timestamp out of range: \"{text}\""),
                })
        }),
        DataType::Binary => value::parse_bytea(text).map(|v| ScalarValue::Binary(Some(v))),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            interval::parse_interval(text).and_then(|v| {
                let value = crate::pg::interval::to_arrow(v).ok_or_else(|| ValueError {
                    kind: ValueErrorKind::DatetimeOverflow,
                    message: "interval out of range".into(),
                })?;
                Ok(ScalarValue::IntervalMonthDayNano(Some(value)))
            })
        }
        _ => return None,
    };
    Some(value)
}
