//! `extract(field FROM x)` and `date_part('field', x)` as PostgreSQL 15 answers them.
//!
//! `extract` returns a `numeric` whose scale depends on the field: six places for seconds
//! and epochs of times (`28.500000`), three for milliseconds, none otherwise; `date_part`
//! returns the same value as a `double precision`. Both are computed exactly from the
//! value's microseconds, in the session's time zone for `timestamptz`. DataFusion's
//! `date_part` truncates seconds to whole ones and knows fewer fields; it is replaced.
//! Fields a type does not have are refused as in PostgreSQL (0A000), unknown ones with
//! 22023.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, Timelike};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{ArrayRef, AsArray, Decimal128Array, Float64Array};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::SqlStateError;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN: i64 = 2_440_588;

/// Plans `EXTRACT(field FROM x)` as `pg_extract('field', x)`.
#[derive(Debug)]
pub struct PgExtract;

impl ExprPlanner for PgExtract {
    fn plan_extract(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(Part::udf(true)), args),
        )))
    }
}

/// Registers `date_part` (PostgreSQL's, returning double precision) and `pg_extract`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(Part::udf(false));
    ctx.register_udf(Part::udf(true));
}

/// `pg_extract` (numeric) or `date_part` (double precision).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Part {
    numeric: bool,
    signature: Signature,
    /// DataFusion's spelling `datepart` too, so that none of its `date_part` is left.
    aliases: Vec<String>,
}

impl Part {
    fn udf(numeric: bool) -> ScalarUDF {
        ScalarUDF::new_from_impl(Part {
            numeric,
            signature: Signature::any(2, Volatility::Stable),
            aliases: match numeric {
                true => Vec::new(),
                false => vec!["datepart".to_owned()],
            },
        })
    }
}

/// The kinds of value a field is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Interval,
}

impl Source {
    fn of(data_type: &DataType) -> Option<Source> {
        Some(match data_type {
            DataType::Date32 | DataType::Date64 => Source::Date,
            DataType::Timestamp(_, None) => Source::Timestamp,
            DataType::Timestamp(_, Some(_)) => Source::TimestampTz,
            DataType::Time32(_) | DataType::Time64(_) => Source::Time,
            DataType::Interval(_) | DataType::Duration(_) => Source::Interval,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Source::Date => "date",
            Source::Timestamp => "timestamp without time zone",
            Source::TimestampTz => "timestamp with time zone",
            Source::Time => "time without time zone",
            Source::Interval => "interval",
        }
    }
}

/// A field of a date/time value, by PostgreSQL's names (and their abbreviations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Microseconds,
    Milliseconds,
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Quarter,
    Year,
    Decade,
    Century,
    Millennium,
    Week,
    Doy,
    Dow,
    IsoDow,
    IsoYear,
    Julian,
    Epoch,
    Timezone,
    TimezoneHour,
    TimezoneMinute,
}

impl Unit {
    fn parse(name: &str) -> Result<Unit> {
        let lower = name.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => {
                Unit::Microseconds
            }
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => {
                Unit::Milliseconds
            }
            "second" | "seconds" | "s" | "sec" | "secs" => Unit::Second,
            "minute" | "minutes" | "m" | "min" | "mins" => Unit::Minute,
            "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Hour,
            "day" | "days" | "d" => Unit::Day,
            "month" | "months" | "mon" | "mons" => Unit::Month,
            "quarter" | "qtr" => Unit::Quarter,
            "year" | "years" | "y" | "yr" | "yrs" => Unit::Year,
            "decade" | "decades" | "dec" | "decs" => Unit::Decade,
            "century" | "centuries" | "c" | "cent" => Unit::Century,
            "millennium" | "millennia" | "millenniums" | "mil" | "mils" => Unit::Millennium,
            "week" | "weeks" | "w" => Unit::Week,
            "doy" => Unit::Doy,
            "dow" => Unit::Dow,
            "isodow" => Unit::IsoDow,
            "isoyear" => Unit::IsoYear,
            "julian" | "j" => Unit::Julian,
            "epoch" => Unit::Epoch,
            "timezone" => Unit::Timezone,
            "timezone_h" | "timezone_hour" => Unit::TimezoneHour,
            "timezone_m" | "timezone_minute" => Unit::TimezoneMinute,
            _ => {
                return Err(
                    SqlStateError::new("22023", format!("unit \"{lower}\" not recognized")).into(),
                )
            }
        })
    }

    /// The numeric scale of the field taken from a value of `source`, or the error for a
    /// field that type does not have.
    fn scale(self, source: Source, name: &str) -> Result<i8> {
        use Unit::*;
        let has = match source {
            Source::Date => matches!(
                self,
                Day | Month
                    | Quarter
                    | Year
                    | Decade
                    | Century
                    | Millennium
                    | Week
                    | Doy
                    | Dow
                    | IsoDow
                    | IsoYear
                    | Julian
                    | Epoch
            ),
            Source::Timestamp => !matches!(self, Timezone | TimezoneHour | TimezoneMinute),
            Source::TimestampTz => true,
            Source::Time => matches!(
                self,
                Microseconds | Milliseconds | Second | Minute | Hour | Epoch
            ),
            Source::Interval => !matches!(
                self,
                Week | Doy
                    | Dow
                    | IsoDow
                    | IsoYear
                    | Julian
                    | Timezone
                    | TimezoneHour
                    | TimezoneMinute
            ),
        };
        // A timestamp's Julian day has a fraction PostgreSQL prints to twenty places.
        if !has || (self == Julian && source != Source::Date) {
            return Err(SqlStateError::new(
                "0A000",
                format!(
                    "unit \"{}\" not supported for type {}",
                    name.trim().to_ascii_lowercase(),
                    source.name()
                ),
            )
            .into());
        }
        Ok(match (self, source) {
            (Second, _) => 6,
            (Epoch, Source::Date) => 0,
            (Epoch, _) => 6,
            (Milliseconds, _) => 3,
            _ => 0,
        })
    }
}

fn unit_and_source(name: Option<&ScalarValue>, value: &DataType) -> Result<(Unit, Source, i8)> {
    let text = match name {
        Some(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => s.clone(),
        _ => {
            return Err(SqlStateError::new(
                "0A000",
                "the field of extract and date_part must be a constant",
            )
            .into())
        }
    };
    let source = Source::of(value).ok_or_else(|| {
        DataFusionError::from(SqlStateError::new(
            "42883",
            format!(
                "function date_part(unknown, {}) does not exist",
                super::types::of_arrow(value).data_type
            ),
        ))
    })?;
    let unit = Unit::parse(&text)?;
    let scale = unit.scale(source, &text)?;
    Ok((unit, source, scale))
}

impl ScalarUDFImpl for Part {
    fn name(&self) -> &str {
        match self.numeric {
            true => "pg_extract",
            false => "date_part",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let (_, _, scale) = unit_and_source(
            args.scalar_arguments.first().copied().flatten(),
            args.arg_fields[1].data_type(),
        )?;
        let data_type = match self.numeric {
            true => DataType::Decimal128(38, scale),
            false => DataType::Float64,
        };
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = match &args.args[0] {
            ColumnarValue::Scalar(s) => Some(s.clone()),
            ColumnarValue::Array(_) => None,
        };
        let value_type = args.arg_fields[1].data_type().clone();
        let (unit, source, scale) = unit_and_source(name.as_ref(), &value_type)?;
        let zone = crate::literal::session_zone(&args.config_options);
        let numeric = self.numeric;
        super::on_arrays(&args, |arrays| {
            let values = extract(unit, source, &arrays[1], &zone)?;
            Ok(match numeric {
                true => Arc::new(
                    values
                        .into_iter()
                        .collect::<Decimal128Array>()
                        .with_precision_and_scale(38, scale)?,
                ) as ArrayRef,
                false => {
                    let divisor = 10f64.powi(i32::from(scale));
                    Arc::new(
                        values
                            .into_iter()
                            .map(|v| v.map(|v| v as f64 / divisor))
                            .collect::<Float64Array>(),
                    )
                }
            })
        })
    }
}

/// The field of each value, as an integer of the field's scale (`None` for NULL).
fn extract(unit: Unit, source: Source, array: &ArrayRef, zone: &Tz) -> Result<Vec<Option<i128>>> {
    let out_of_range =
        || DataFusionError::from(SqlStateError::new("22008", "timestamp out of range"));
    match source {
        Source::Date => {
            let days = datafusion::arrow::compute::cast(array, &DataType::Date32)?;
            days.as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                .iter()
                .map(|d| {
                    d.map(|d| {
                        let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                            .and_then(|e| {
                                e.checked_add_signed(chrono::Duration::days(i64::from(d)))
                            })
                            .ok_or_else(out_of_range)?;
                        Ok(match unit {
                            Unit::Epoch => i128::from(d) * 86_400,
                            Unit::Julian => i128::from(i64::from(d) + UNIX_EPOCH_JULIAN),
                            _ => calendar(
                                unit,
                                date.and_hms_opt(0, 0, 0).ok_or_else(out_of_range)?,
                                0,
                            ),
                        })
                    })
                    .transpose()
                })
                .collect()
        }
        Source::Timestamp | Source::TimestampTz => {
            let micros = datafusion::arrow::compute::cast(
                array,
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )?;
            let micros =
                micros.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            // The epoch is the value itself: no calendar needed (Grafana's time buckets).
            if unit == Unit::Epoch {
                return Ok(micros.iter().map(|m| m.map(i128::from)).collect());
            }
            micros
                .iter()
                .map(|m| {
                    m.map(|m| {
                        let at = DateTime::from_timestamp_micros(m).ok_or_else(out_of_range)?;
                        let (local, offset) = match source {
                            Source::TimestampTz => {
                                let local = at.with_timezone(zone);
                                (local.naive_local(), local.offset().fix().local_minus_utc())
                            }
                            _ => (at.naive_utc(), 0),
                        };
                        Ok(match unit {
                            Unit::Timezone => i128::from(offset),
                            Unit::TimezoneHour => i128::from(offset / 3600),
                            Unit::TimezoneMinute => i128::from((offset / 60) % 60),
                            _ => calendar(unit, local, i64::from(local.nanosecond() / 1000)),
                        })
                    })
                    .transpose()
                })
                .collect()
        }
        Source::Time => {
            let micros =
                datafusion::arrow::compute::cast(array, &DataType::Time64(TimeUnit::Microsecond))?;
            Ok(micros
                .as_primitive::<datafusion::arrow::datatypes::Time64MicrosecondType>()
                .iter()
                .map(|t| t.map(|t| time_part(unit, t)))
                .collect())
        }
        Source::Interval => {
            let intervals = datafusion::arrow::compute::cast(
                array,
                &DataType::Interval(IntervalUnit::MonthDayNano),
            )?;
            Ok(intervals
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| v.map(|v| interval_part(unit, v.months, v.days, v.nanoseconds / 1000)))
                .collect())
        }
    }
}

/// A field of a wall-clock date and time; `micros` is its fraction of a second.
fn calendar(unit: Unit, at: NaiveDateTime, micros: i64) -> i128 {
    // PostgreSQL's years: 1 BC is -1 (chrono's 0).
    let astronomical = at.year();
    let year = if astronomical > 0 {
        astronomical
    } else {
        astronomical - 1
    };
    let seconds = i64::from(at.second()) * MICROS_PER_SECOND + micros;
    let v: i64 = match unit {
        Unit::Microseconds | Unit::Milliseconds | Unit::Second => seconds,
        Unit::Minute => at.minute().into(),
        Unit::Hour => at.hour().into(),
        Unit::Day => at.day().into(),
        Unit::Month => at.month().into(),
        Unit::Quarter => ((at.month() - 1) / 3 + 1).into(),
        Unit::Year => year.into(),
        Unit::Decade => match astronomical >= 0 {
            true => (astronomical / 10).into(),
            false => (-((8 - (astronomical - 1)) / 10)).into(),
        },
        Unit::Century => match astronomical > 0 {
            true => ((astronomical + 99) / 100).into(),
            false => (-((99 - (astronomical - 1)) / 100)).into(),
        },
        Unit::Millennium => match astronomical > 0 {
            true => ((astronomical + 999) / 1000).into(),
            false => (-((999 - (astronomical - 1)) / 1000)).into(),
        },
        Unit::Week => at.iso_week().week().into(),
        Unit::Doy => at.ordinal().into(),
        Unit::Dow => at.weekday().num_days_from_sunday().into(),
        Unit::IsoDow => at.weekday().number_from_monday().into(),
        // As for the year, 1 BC is -1.
        Unit::IsoYear => match at.iso_week().year() {
            y if y > 0 => y.into(),
            y => (y - 1).into(),
        },
        // Handled by the callers, which know the instant.
        Unit::Epoch | Unit::Julian | Unit::Timezone | Unit::TimezoneHour | Unit::TimezoneMinute => {
            0
        }
    };
    i128::from(v)
}

/// A field of a time of day, in microseconds since midnight.
fn time_part(unit: Unit, t: i64) -> i128 {
    i128::from(match unit {
        Unit::Hour => t / (3600 * MICROS_PER_SECOND),
        Unit::Minute => t / (60 * MICROS_PER_SECOND) % 60,
        Unit::Epoch => t,
        // Microseconds, milliseconds and seconds: the seconds with their fraction.
        _ => t % (60 * MICROS_PER_SECOND),
    })
}

/// A field of an interval, as PostgreSQL splits one: months into years and months, the
/// time into hours, minutes and seconds (each with the time's sign).
fn interval_part(unit: Unit, months: i32, days: i32, micros: i64) -> i128 {
    let years = i128::from(months / 12);
    match unit {
        Unit::Epoch => {
            // A year is 365.25 days and a month 30 in the epoch of an interval.
            years * 31_557_600 * i128::from(MICROS_PER_SECOND)
                + i128::from(months % 12) * 30 * i128::from(MICROS_PER_DAY)
                + i128::from(days) * i128::from(MICROS_PER_DAY)
                + i128::from(micros)
        }
        Unit::Year => years,
        Unit::Decade => years / 10,
        Unit::Century => years / 100,
        Unit::Millennium => years / 1000,
        Unit::Month => i128::from(months % 12),
        Unit::Quarter => i128::from((months % 12) / 3 + 1),
        Unit::Day => i128::from(days),
        _ => time_part(unit, micros),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_timestamp() {
        let at = NaiveDate::from_ymd_opt(2001, 2, 16)
            .unwrap()
            .and_hms_micro_opt(20, 38, 40, 120_000)
            .unwrap();
        assert_eq!(calendar(Unit::Second, at, 120_000), 40_120_000);
        assert_eq!(calendar(Unit::Century, at, 0), 21);
        assert_eq!(calendar(Unit::Decade, at, 0), 200);
        assert_eq!(calendar(Unit::Millennium, at, 0), 3);
        assert_eq!(calendar(Unit::Quarter, at, 0), 1);
        assert_eq!(calendar(Unit::Dow, at, 0), 5);
        assert_eq!(calendar(Unit::IsoDow, at, 0), 5);
    }

    #[test]
    fn fields_of_times_and_intervals() {
        let t = (17 * 3600 + 12 * 60 + 28) * MICROS_PER_SECOND + 500_000;
        assert_eq!(time_part(Unit::Second, t), 28_500_000);
        assert_eq!(time_part(Unit::Minute, t), 12);
        assert_eq!(time_part(Unit::Hour, t), 17);
        assert_eq!(
            interval_part(Unit::Hour, 0, 0, 26 * 3600 * MICROS_PER_SECOND),
            26
        );
        assert_eq!(interval_part(Unit::Year, 14, 0, 0), 1);
        assert_eq!(interval_part(Unit::Month, 14, 0, 0), 2);
        assert_eq!(
            interval_part(Unit::Epoch, 0, 5, 3 * 3600 * MICROS_PER_SECOND),
            442_800 * i128::from(MICROS_PER_SECOND)
        );
        assert_eq!(interval_part(Unit::Epoch, 12, 0, 0), 31_557_600_000_000);
    }

    #[test]
    fn units_and_types() {
        assert!(Unit::parse("Hours").is_ok());
        assert!(Unit::parse("fortnight").is_err());
        assert!(Unit::Hour.scale(Source::Date, "hour").is_err());
        assert_eq!(Unit::Epoch.scale(Source::Date, "epoch").unwrap(), 0);
        assert_eq!(Unit::Epoch.scale(Source::Timestamp, "epoch").unwrap(), 6);
        assert!(Unit::Timezone.scale(Source::Timestamp, "timezone").is_err());
    }
}
