//! PostgreSQL's constructors of dates and times (`make_date`, `make_time`,
//! `make_timestamp`, `make_timestamptz`) and `isfinite`, with PostgreSQL's rules: a
//! negative year is BC, a field out of range is 22008 with PostgreSQL's message.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{Signature, TypeSignature, Volatility};
use datafusion::scalar::ScalarValue;

use super::functions::RowFunction;
use super::settings::{parse_zone, Settings};
use super::SqlStateError;

const USECS_PER_SEC: f64 = 1_000_000.0;

fn int(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int64(v) => *v,
        _ => None,
    }
}

fn float(value: &ScalarValue) -> Option<f64> {
    match value {
        ScalarValue::Float64(v) => *v,
        _ => None,
    }
}

fn out_of_range(message: String) -> DataFusionError {
    SqlStateError::new("22008", message).into()
}

/// Seconds as C's `%02g` writes them in PostgreSQL's messages.
fn seconds_text(sec: f64) -> String {
    match sec == sec.trunc() && sec.abs() < 1e15 {
        true => format!("{:02}", sec as i64),
        false => format!("{sec}"),
    }
}

/// The date of a year (negative: BC), month and day.
fn date(year: i64, month: i64, day: i64) -> Result<NaiveDate> {
    let error = || {
        out_of_range(format!(
            "date field value out of range: {year}-{month:02}-{day:02}"
        ))
    };
    if year == 0 {
        return Err(error());
    }
    // 1 BC is the proleptic year 0.
    let proleptic = if year < 0 { year + 1 } else { year };
    let (Ok(y), Ok(m), Ok(d)) = (
        i32::try_from(proleptic),
        u32::try_from(month),
        u32::try_from(day),
    ) else {
        return Err(error());
    };
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(error)
}

/// The time of an hour, minute and (fractional) second, in microseconds since midnight.
fn time(hour: i64, minute: i64, sec: f64) -> Result<i64> {
    let error = || {
        out_of_range(format!(
            "time field value out of range: {hour}:{minute:02}:{}",
            seconds_text(sec)
        ))
    };
    // A 60th second is allowed (and carried into the next minute), as in PostgreSQL.
    let valid = (0..24).contains(&hour) && (0..60).contains(&minute) && (0.0..=60.0).contains(&sec);
    // 24:00:00 itself is a time of day in PostgreSQL.
    let midnight = hour == 24 && minute == 0 && sec == 0.0;
    if !(valid || midnight) {
        return Err(error());
    }
    let micros = (sec * USECS_PER_SEC).round_ties_even() as i64;
    Ok((hour * 3600 + minute * 60) * 1_000_000 + micros)
}

fn timestamp(args: &[ScalarValue]) -> Result<Option<NaiveDateTime>> {
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = (
        int(&args[0]),
        int(&args[1]),
        int(&args[2]),
        int(&args[3]),
        int(&args[4]),
        float(&args[5]),
    ) else {
        return Ok(None);
    };
    let day = date(y, mo, d)?;
    let micros = time(h, mi, s)?;
    let midnight = day.and_time(NaiveTime::MIN);
    midnight
        .checked_add_signed(chrono::Duration::microseconds(micros))
        .map(Some)
        .ok_or_else(|| SqlStateError::new("22008", "timestamp out of range").into())
}

/// Registers the functions; `settings` are the session's (its TimeZone places
/// `make_timestamptz` without a zone).
pub fn register(ctx: &SessionContext, settings: Arc<Settings>) {
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
        CurrentTime {
            signature: Signature::exact(Vec::new(), Volatility::Stable),
        },
    ));
    let ints = |n: usize| vec![DataType::Int64; n];
    let with_seconds = |n: usize| {
        let mut t = ints(n);
        t.push(DataType::Float64);
        t
    };
    ctx.register_udf(RowFunction::udf(
        "make_date",
        vec![ints(3)],
        DataType::Date32,
        Volatility::Immutable,
        Arc::new(|args| {
            let (Some(y), Some(m), Some(d)) = (int(&args[0]), int(&args[1]), int(&args[2])) else {
                return Ok(ScalarValue::Date32(None));
            };
            use chrono::Datelike;
            let day = date(y, m, d)?;
            Ok(ScalarValue::Date32(Some(
                day.num_days_from_ce() - henge_ingest::value::UNIX_EPOCH_CE_DAYS,
            )))
        }),
    ));
    ctx.register_udf(RowFunction::udf(
        "make_time",
        vec![with_seconds(2)],
        DataType::Time64(TimeUnit::Microsecond),
        Volatility::Immutable,
        Arc::new(|args| {
            let (Some(h), Some(m), Some(s)) = (int(&args[0]), int(&args[1]), float(&args[2]))
            else {
                return Ok(ScalarValue::Time64Microsecond(None));
            };
            Ok(ScalarValue::Time64Microsecond(Some(time(h, m, s)?)))
        }),
    ));
    ctx.register_udf(RowFunction::udf(
        "make_timestamp",
        vec![with_seconds(5)],
        DataType::Timestamp(TimeUnit::Microsecond, None),
        Volatility::Immutable,
        Arc::new(|args| {
            Ok(ScalarValue::TimestampMicrosecond(
                timestamp(args)?.map(|t| t.and_utc().timestamp_micros()),
                None,
            ))
        }),
    ));
    let mut zoned = with_seconds(5);
    zoned.push(DataType::Utf8);
    ctx.register_udf(RowFunction::with_signature(
        "make_timestamptz",
        Signature::one_of(
            vec![
                TypeSignature::Exact(with_seconds(5)),
                TypeSignature::Exact(zoned),
            ],
            Volatility::Stable,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        Arc::new(move |args| {
            // The zone given, or the session's.
            let zone = match args.get(6) {
                Some(ScalarValue::Utf8(Some(name))) => Some(parse_zone(name).ok_or_else(|| {
                    DataFusionError::from(SqlStateError::new(
                        "22023",
                        format!("time zone \"{name}\" not recognized"),
                    ))
                })?),
                Some(ScalarValue::Utf8(None)) => return Ok(null_timestamptz()),
                _ => None,
            };
            let zone = zone.unwrap_or_else(|| settings.time_zone());
            let Some(local) = timestamp(args)? else {
                return Ok(null_timestamptz());
            };
            let offset = henge_ingest::value::local_offset(&zone)(local);
            Ok(ScalarValue::TimestampMicrosecond(
                Some(local.and_utc().timestamp_micros() - i64::from(offset) * 1_000_000),
                Some("+00:00".into()),
            ))
        }),
    ));
    ctx.register_udf(RowFunction::with_signature(
        "isfinite",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Date32]),
                TypeSignature::Exact(vec![DataType::Timestamp(TimeUnit::Microsecond, None)]),
                TypeSignature::Exact(vec![DataType::Timestamp(
                    TimeUnit::Microsecond,
                    Some("+00:00".into()),
                )]),
                TypeSignature::Exact(vec![super::interval::INTERVAL]),
            ],
            Volatility::Immutable,
        ),
        DataType::Boolean,
        // Henge has no infinite dates, timestamps or intervals: every value is finite.
        Arc::new(|args| Ok(ScalarValue::Boolean((!args[0].is_null()).then_some(true)))),
    ));
}

fn null_timestamptz() -> ScalarValue {
    ScalarValue::TimestampMicrosecond(None, Some("+00:00".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_out_of_range_are_refused_as_postgresql() {
        assert!(date(2013, 2, 30)
            .unwrap_err()
            .to_string()
            .contains("date field value out of range: 2013-02-30"));
        assert!(date(0, 1, 1).is_err());
        assert_eq!(date(-44, 3, 15).unwrap().to_string(), "-0043-03-15");
        assert!(time(24, 0, 0.5)
            .unwrap_err()
            .to_string()
            .contains("time field value out of range: 24:00:0.5"));
        assert!(time(8, 15, 60.5)
            .unwrap_err()
            .to_string()
            .contains("8:15:60.5"));
        assert_eq!(
            time(8, 15, 23.5).unwrap(),
            (8 * 3600 + 15 * 60) * 1_000_000 + 23_500_000
        );
    }
}

/// `date_trunc(field, date)`: PostgreSQL reads the date as a `timestamptz` (midnight in
/// the session's time zone, `zone`) and answers one; DataFusion answered a `timestamp`.
pub fn date_trunc_of_date(
    e: &datafusion::logical_expr::Expr,
    schema: &datafusion::common::DFSchema,
    zone: &str,
) -> Option<datafusion::logical_expr::Expr> {
    use datafusion::logical_expr::expr::ScalarFunction;
    use datafusion::logical_expr::{Expr, ExprSchemable};
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    if !matches!(f.name(), "date_trunc" | "datetrunc") || f.args.len() != 2 {
        return None;
    }
    if f.args[1].get_type(schema).ok()? != DataType::Date32 {
        return None;
    }
    let stamp = datafusion::logical_expr::cast(
        f.args[1].clone(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(zone.into())),
    );
    Some(Expr::ScalarFunction(ScalarFunction::new_udf(
        f.func.clone(),
        vec![f.args[0].clone(), stamp],
    )))
}

/// `current_time` is a `time with time zone`, a type Henge does not have: refused
/// (0A000) where DataFusion answered a `time`, so the type would differ in silence.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentTime {
    signature: Signature,
}

impl datafusion::logical_expr::ScalarUDFImpl for CurrentTime {
    fn name(&self) -> &str {
        "current_time"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Err(SqlStateError::new(
            "0A000",
            "current_time is a time with time zone, which Henge does not have: use localtime \
             or now()",
        )
        .into())
    }

    fn invoke_with_args(
        &self,
        _args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        self.return_type(&[])
            .map(|_| unreachable!("refused when planned"))
    }
}
