//! PostgreSQL's constructors of dates and times (`make_date`, `make_time`,
//! `make_timestamp`, `make_timestamptz`) and `isfinite`, with PostgreSQL's rules: a
//! negative year is BC, a field out of range is 22008 with PostgreSQL's message. And the
//! clocks (`clock_timestamp`, `timeofday`, `transaction_timestamp`,
//! `statement_timestamp`) and `(s1, e1) OVERLAPS (s2, e2)`.

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
    let clock_zone = settings.clone();
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
    // PostgreSQL's now() is the transaction's start, which Henge's (the statement's) is
    // outside a transaction block.
    if let Ok(now) = datafusion::execution::FunctionRegistry::udf(ctx, "now") {
        ctx.register_udf(
            now.as_ref()
                .clone()
                .with_aliases(["transaction_timestamp", "statement_timestamp"]),
        );
    }
    // The time at the call, changing within a statement.
    ctx.register_udf(RowFunction::udf(
        "clock_timestamp",
        vec![vec![]],
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        Volatility::Volatile,
        Arc::new(|_| {
            Ok(ScalarValue::TimestampMicrosecond(
                Some(chrono::Utc::now().timestamp_micros()),
                Some("+00:00".into()),
            ))
        }),
    ));
    // clock_timestamp() as text, in the session's time zone: `Sun Dec 06 16:40:12.123456
    // 2026 UTC`.
    ctx.register_udf(RowFunction::udf(
        "timeofday",
        vec![vec![]],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(move |_| {
            let now = chrono::Utc::now().with_timezone(&clock_zone.time_zone());
            Ok(ScalarValue::Utf8(Some(
                now.format("%a %b %d %H:%M:%S%.6f %Y %Z").to_string(),
            )))
        }),
    ));
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
        Overlaps {
            signature: Signature::user_defined(Volatility::Immutable),
        },
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

/// `(s1, e1) OVERLAPS (s2, e2)` as PostgreSQL answers it: each period's ends put in
/// order, an end given as an interval added to its start; true when the periods share a
/// moment (a period ending where the other starts does not), and NULL where an end that
/// decides is NULL. Dates and timestamps are compared as timestamps; with a `timestamptz`,
/// as instants (an interval there is refused: PostgreSQL adds its days in the session's
/// zone).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Overlaps {
    signature: Signature,
}

impl datafusion::logical_expr::ScalarUDFImpl for Overlaps {
    fn name(&self) -> &str {
        "pg_overlaps"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let zoned = arg_types
            .iter()
            .any(|t| matches!(t, DataType::Timestamp(_, Some(_))));
        let stamp = DataType::Timestamp(TimeUnit::Microsecond, zoned.then(|| "+00:00".into()));
        let refuse = || -> DataFusionError {
            let types: Vec<String> = arg_types
                .iter()
                .map(|t| super::types::of_arrow(t).data_type)
                .collect();
            SqlStateError::new(
                "42883",
                format!("function overlaps({}) does not exist", types.join(", ")),
            )
            .into()
        };
        if arg_types.len() != 4 {
            return Err(refuse());
        }
        // A date or timestamp met with a timestamptz is read in the session's zone in
        // PostgreSQL, which this cast would not do.
        let local = |t: &DataType| matches!(t, DataType::Date32 | DataType::Timestamp(_, None));
        if zoned && arg_types.iter().any(local) {
            return Err(SqlStateError::new(
                "0A000",
                "OVERLAPS of a timestamp with time zone and a date or timestamp without time zone is not supported",
            )
            .into());
        }
        arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| match t {
                DataType::Interval(_) if i % 2 == 1 && zoned => Err(SqlStateError::new(
                    "0A000",
                    "OVERLAPS of a timestamp with time zone and an interval is not supported",
                )
                .into()),
                DataType::Interval(_) if i % 2 == 1 => Ok(super::interval::INTERVAL),
                DataType::Timestamp(..) | DataType::Date32 | DataType::Null => Ok(stamp.clone()),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => Ok(stamp.clone()),
                _ => Err(refuse()),
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, BooleanArray};
        use datafusion::arrow::compute::kernels::numeric::add;
        use datafusion::arrow::datatypes::TimestampMicrosecondType;
        super::on_arrays(&args, |arrays| {
            // An end given as an interval: the start plus it, as `t + interval` adds.
            let mut ends = arrays.to_vec();
            for end in [1, 3] {
                if let DataType::Interval(_) = ends[end].data_type() {
                    ends[end] = add(&arrays[end - 1], &arrays[end])?;
                }
            }
            let stamps: Vec<_> = ends
                .iter()
                .map(|a| a.as_primitive::<TimestampMicrosecondType>())
                .collect();
            let at = |column: usize, row: usize| {
                let a = stamps[column];
                a.is_valid(row).then(|| a.value(row))
            };
            let out: BooleanArray = (0..arrays[0].len())
                .map(|row| overlaps((at(0, row), at(1, row)), (at(2, row), at(3, row))))
                .collect();
            Ok(std::sync::Arc::new(out) as datafusion::arrow::array::ArrayRef)
        })
    }
}

/// PostgreSQL's `overlaps_timestamp`: each period's ends ordered, a missing start taken
/// from its end.
fn overlaps(first: (Option<i64>, Option<i64>), second: (Option<i64>, Option<i64>)) -> Option<bool> {
    fn ordered((start, end): (Option<i64>, Option<i64>)) -> Option<(i64, Option<i64>)> {
        match (start, end) {
            (None, None) => None,
            (None, Some(e)) => Some((e, None)),
            (Some(s), None) => Some((s, None)),
            (Some(s), Some(e)) => Some((s.min(e), Some(s.max(e)))),
        }
    }
    let (s1, e1) = ordered(first)?;
    let (s2, e2) = ordered(second)?;
    match s1.cmp(&s2) {
        std::cmp::Ordering::Greater => {
            if s1 < e2? {
                return Some(true);
            }
            e1.map(|_| false)
        }
        std::cmp::Ordering::Less => {
            if s2 < e1? {
                return Some(true);
            }
            e2.map(|_| false)
        }
        std::cmp::Ordering::Equal => (e1.is_some() && e2.is_some()).then_some(true),
    }
}
