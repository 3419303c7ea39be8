//! `PgLiteralInput`: string literals cast to a type are read by PostgreSQL's input rules.
//!
//! In PostgreSQL `'\x0102'` is a bytea of two bytes, `'yes'` a boolean and `'x'` an error
//! "invalid input syntax for type bigint" when the literal lands in such a column. After
//! DataFusion's type coercion, such literals appear as `CAST('…' AS type)`; this analyzer
//! rule folds each into a typed literal using the same parsers as COPY, so INSERT … VALUES
//! and COPY accept and refuse exactly the same text.

use std::str::FromStr;

use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{new_empty_array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;
use henge_ingest::{interval, value, ValueError, ValueErrorKind};
use henge_storage::schema::EXTENSION_NAME_KEY;

/// The analyzer rule; add it after DataFusion's type coercion.
#[derive(Debug, Default)]
pub struct PgLiteralInput;

impl AnalyzerRule for PgLiteralInput {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let zone = session_zone(config);
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = DFSchema::empty();
            for input in plan.inputs() {
                schema.merge(input.schema());
            }
            // Folding changes an expression's generated name; keep the names the plan's
            // schema was built with.
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let saved = names.save(&expr);
                Ok(expr
                    .transform_up(|e| match fold(e, &zone)? {
                        t if t.transformed => Ok(t),
                        t => Ok(text_input(t.data, &schema)),
                    })?
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

/// A cast of text that is not a constant (a text column, an expression) to a type whose
/// values PostgreSQL reads with its input function — booleans, integers, floating-point
/// numbers, numerics, dates, timestamps and times — made a call of [`TextInput`], which
/// reads each value as [`parse`] does (`'2024-01-01 10:00'::text::timestamp`, `' 42 '::text
/// ::int`), where Arrow's cast has rules of its own. Other casts are returned as they are.
fn text_input(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Transformed::no(expr);
    };
    let text = matches!(
        inner.get_type(schema),
        Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
    );
    let target = field.data_type();
    let read = matches!(
        target,
        DataType::Boolean
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Microsecond, _)
            | DataType::Time64(TimeUnit::Microsecond)
    );
    // Henge's extension types (json, uuid) are text with a mark; they are not read.
    if !text || !read || field.metadata().contains_key(EXTENSION_NAME_KEY) {
        return Transformed::no(expr);
    }
    let udf = ScalarUDF::new_from_impl(TextInput {
        target: target.clone(),
        signature: Signature::any(1, Volatility::Stable),
    });
    Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(udf),
        vec![inner.as_ref().clone()],
    )))
}

/// `henge_text_input(text)`: each value read as a value of `target` by PostgreSQL's input
/// rules (see [`parse`]); NULL stays NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextInput {
    target: DataType,
    signature: Signature,
}

impl ScalarUDFImpl for TextInput {
    fn name(&self) -> &str {
        "henge_text_input"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.target.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let zone = session_zone(&args.config_options);
        let read = |text: Option<&str>| -> Result<ScalarValue> {
            match text {
                None => ScalarValue::try_from(&self.target),
                Some(text) => match parse(text, &self.target, &zone) {
                    Some(Ok(value)) => Ok(value),
                    Some(Err(e)) => Err(DataFusionError::External(Box::new(
                        henge_ingest::Error::from(e),
                    ))),
                    // `text_input` makes calls only for types `parse` reads.
                    None => Err(DataFusionError::Internal(format!(
                        "henge_text_input cannot read {}",
                        self.target
                    ))),
                },
            }
        };
        match &args.args[0] {
            ColumnarValue::Scalar(v) => {
                let text = match v {
                    ScalarValue::Utf8(t) | ScalarValue::Utf8View(t) | ScalarValue::LargeUtf8(t) => {
                        t.as_deref()
                    }
                    _ => None,
                };
                Ok(ColumnarValue::Scalar(read(text)?))
            }
            ColumnarValue::Array(array) => {
                let strings = cast(array, &DataType::Utf8)?;
                let strings = strings.as_string::<i32>();
                let values = strings.iter().map(read).collect::<Result<Vec<_>>>()?;
                let array = match values.is_empty() {
                    true => new_empty_array(&self.target),
                    false => ScalarValue::iter_to_array(values)?,
                };
                Ok(ColumnarValue::Array(array))
            }
        }
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
