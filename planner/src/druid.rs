//! Druid's time functions, under Druid's names, beside PostgreSQL's: `TIME_FLOOR`,
//! `TIME_CEIL`, `TIME_SHIFT`, `TIME_EXTRACT`, `MILLIS_TO_TIMESTAMP` and
//! `TIMESTAMP_TO_MILLIS`, with ISO 8601 periods (`PT5M`, `P1D`, `P3M`, `P1W` …).
//!
//! Buckets are Druid's (its `PeriodGranularity`): a period of one unit with no origin is
//! the calendar field in the time zone (an hour, a day, a week from Monday, a month, a
//! year); a period of several units, or one given an origin, counts whole units from the
//! origin (the epoch by default): days, weeks, months and years on the zone's calendar,
//! hours, minutes and seconds as durations; a period of several fields (`PT1H30M`) is a
//! fixed duration from the origin. The time zone is the fourth argument (a name such as
//! `America/Los_Angeles` or an offset such as `-08:00`), else the session's TimeZone for a
//! `timestamptz`, else UTC: a `timestamp`, like Druid's `__time`, is taken as UTC.
//! `TIME_FLOOR` and `TIME_CEIL` are recognised as monotonic buckets by the aggregate
//! pushdown, like `date_trunc`.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike,
};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, PrimitiveArray};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::pg::{code, SqlStateError};

const MICROS_PER_MILLI: i64 = 1_000;
const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;

/// Registers the functions.
pub fn register(ctx: &SessionContext) {
    for kind in [
        Kind::Floor,
        Kind::Ceil,
        Kind::Shift,
        Kind::Extract,
        Kind::MillisToTimestamp,
        Kind::TimestampToMillis,
        Kind::Parse,
        Kind::Format,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(TimeFunction {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Floor,
    Ceil,
    Shift,
    Extract,
    MillisToTimestamp,
    TimestampToMillis,
    Parse,
    Format,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Floor => "time_floor",
            Kind::Ceil => "time_ceil",
            Kind::Shift => "time_shift",
            Kind::Extract => "time_extract",
            Kind::MillisToTimestamp => "millis_to_timestamp",
            Kind::TimestampToMillis => "timestamp_to_millis",
            Kind::Parse => "time_parse",
            Kind::Format => "time_format",
        }
    }

    /// The least and most arguments.
    fn arity(self) -> (usize, usize) {
        match self {
            Kind::Floor | Kind::Ceil => (2, 4),
            Kind::Shift => (3, 4),
            Kind::Extract => (2, 3),
            Kind::MillisToTimestamp | Kind::TimestampToMillis => (1, 1),
            Kind::Parse | Kind::Format => (1, 3),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeFunction {
    kind: Kind,
    signature: Signature,
}

fn invalid(message: impl Into<String>) -> SqlStateError {
    SqlStateError::new(code::INVALID_PARAMETER_VALUE, message)
}

fn out_of_range() -> SqlStateError {
    SqlStateError::new(code::DATETIME_FIELD_OVERFLOW, "timestamp out of range")
}

impl ScalarUDFImpl for TimeFunction {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        let (least, most) = self.kind.arity();
        let refuse = || crate::pg::no_such_function(self.kind.name(), types);
        if types.len() < least || types.len() > most {
            return Err(refuse());
        }
        let time = |t: &DataType| match t {
            DataType::Timestamp(_, zone) => {
                Ok(DataType::Timestamp(TimeUnit::Microsecond, zone.clone()))
            }
            DataType::Date32 | DataType::Date64 | DataType::Null => {
                Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
            }
            _ => Err(refuse()),
        };
        let text = |t: &DataType| match t {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
                Ok(DataType::Utf8)
            }
            _ => Err(refuse()),
        };
        match self.kind {
            Kind::MillisToTimestamp => match &types[0] {
                t if t.is_integer() || t.is_null() => Ok(vec![DataType::Int64]),
                _ => Err(refuse()),
            },
            Kind::TimestampToMillis => Ok(vec![time(&types[0])?]),
            Kind::Floor | Kind::Ceil => {
                let ts = time(&types[0])?;
                let mut out = vec![ts.clone(), text(&types[1])?];
                if let Some(origin) = types.get(2) {
                    time(origin)?;
                    out.push(ts);
                }
                if let Some(zone) = types.get(3) {
                    out.push(text(zone)?);
                }
                Ok(out)
            }
            Kind::Shift => {
                let mut out = vec![time(&types[0])?, text(&types[1])?];
                match &types[2] {
                    t if t.is_integer() || t.is_null() => out.push(DataType::Int64),
                    _ => return Err(refuse()),
                }
                if let Some(zone) = types.get(3) {
                    out.push(text(zone)?);
                }
                Ok(out)
            }
            Kind::Extract | Kind::Format => {
                let mut out = vec![time(&types[0])?];
                for t in &types[1..] {
                    out.push(text(t)?);
                }
                Ok(out)
            }
            Kind::Parse => types.iter().map(text).collect(),
        }
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Floor | Kind::Ceil | Kind::Shift => types[0].clone(),
            Kind::MillisToTimestamp | Kind::Parse => {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            Kind::Extract | Kind::TimestampToMillis => DataType::Int64,
            Kind::Format => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let constant = |i: usize| -> Result<Option<ScalarValue>> {
            match args.args.get(i) {
                None => Ok(None),
                Some(ColumnarValue::Scalar(s)) => Ok(Some(s.clone())),
                Some(ColumnarValue::Array(_)) => Err(SqlStateError::new(
                    code::FEATURE_NOT_SUPPORTED,
                    format!(
                        "{}'s arguments after the first must be constants",
                        self.kind.name()
                    ),
                )
                .into()),
            }
        };
        let text = |i: usize| -> Result<Option<String>> {
            Ok(constant(i)?.and_then(|s| match s {
                ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => v,
                _ => None,
            }))
        };
        let input_zone = match args.arg_fields[0].data_type() {
            DataType::Timestamp(_, Some(_)) => {
                Some(crate::literal::session_zone(&args.config_options))
            }
            _ => None,
        };
        let kind = self.kind;
        let zone_at = |i: usize| -> Result<Tz> {
            match text(i)? {
                Some(name) => Tz::from_str(&name)
                    .map_err(|_| invalid(format!("time zone \"{name}\" not recognized")).into()),
                None => Ok(input_zone.unwrap_or_else(utc)),
            }
        };
        let out_type = self.return_type(
            &args
                .arg_fields
                .iter()
                .map(|f| f.data_type().clone())
                .collect::<Vec<_>>(),
        )?;
        let result: ArrayRef = match kind {
            Kind::MillisToTimestamp => {
                let values = args.args[0].to_array(args.number_rows)?;
                let millis = values.as_primitive::<Int64Type>();
                Arc::new(try_map::<_, TimestampMicrosecondType>(millis, |v| {
                    v.checked_mul(MICROS_PER_MILLI).ok_or_else(out_of_range)
                })?)
            }
            Kind::TimestampToMillis => {
                let values = args.args[0].to_array(args.number_rows)?;
                let micros = values.as_primitive::<TimestampMicrosecondType>();
                Arc::new(
                    micros
                        .iter()
                        .map(|v| v.map(|v| v.div_euclid(MICROS_PER_MILLI)))
                        .collect::<Int64Array>(),
                )
            }
            Kind::Floor | Kind::Ceil => {
                let Some(period) = text(1)? else {
                    return Ok(ColumnarValue::Scalar(ScalarValue::try_from(&out_type)?));
                };
                let period = Period::parse(&period)?;
                let origin = match constant(2)? {
                    Some(ScalarValue::TimestampMicrosecond(v, _)) => v,
                    _ => None,
                };
                let zone = zone_at(3)?;
                let values = args.args[0].to_array(args.number_rows)?;
                let micros = values.as_primitive::<TimestampMicrosecondType>();
                let ceil = kind == Kind::Ceil;
                Arc::new(
                    try_map::<_, TimestampMicrosecondType>(micros, |t| {
                        let floor = period.floor(t, origin, &zone)?;
                        match ceil && floor != t {
                            true => period.shift(floor, 1, &zone),
                            false => Ok(floor),
                        }
                    })?
                    .with_data_type(out_type.clone()),
                )
            }
            Kind::Shift => {
                let (Some(period), Some(ScalarValue::Int64(Some(step)))) = (text(1)?, constant(2)?)
                else {
                    return Ok(ColumnarValue::Scalar(ScalarValue::try_from(&out_type)?));
                };
                let period = Period::parse(&period)?;
                let zone = zone_at(3)?;
                let values = args.args[0].to_array(args.number_rows)?;
                let micros = values.as_primitive::<TimestampMicrosecondType>();
                Arc::new(
                    try_map::<_, TimestampMicrosecondType>(micros, |t| {
                        period.shift(t, step, &zone)
                    })?
                    .with_data_type(out_type.clone()),
                )
            }
            Kind::Format => {
                let pattern = match text(1)? {
                    Some(p) => Pattern::parse(&p)?,
                    None => Pattern::iso(),
                };
                let zone = zone_at(2)?;
                let values = args.args[0].to_array(args.number_rows)?;
                let micros = values.as_primitive::<TimestampMicrosecondType>();
                let mut out = datafusion::arrow::array::StringBuilder::new();
                for t in micros.iter() {
                    match t {
                        Some(t) => out.append_value(pattern.format(t, &zone)?),
                        None => out.append_null(),
                    }
                }
                Arc::new(out.finish())
            }
            Kind::Parse => {
                let pattern = text(1)?
                    .map(|p| Pattern::parse(&p)?.for_parsing(&p))
                    .transpose()?;
                let zone = zone_at(2)?;
                let values = args.args[0].to_array(args.number_rows)?;
                let values = datafusion::arrow::compute::cast(&values, &DataType::Utf8)?;
                Arc::new(
                    values
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.and_then(|v| parse_time(v, pattern.as_ref(), &zone)))
                        .collect::<PrimitiveArray<TimestampMicrosecondType>>(),
                )
            }
            Kind::Extract => {
                let Some(unit) = text(1)? else {
                    return Ok(ColumnarValue::Scalar(ScalarValue::Int64(None)));
                };
                let unit = Unit::parse(&unit)?;
                let zone = zone_at(2)?;
                let values = args.args[0].to_array(args.number_rows)?;
                let micros = values.as_primitive::<TimestampMicrosecondType>();
                Arc::new(try_map::<_, Int64Type>(micros, |t| unit.extract(t, &zone))?)
            }
        };
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        Ok(match scalar {
            true => ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?),
            false => ColumnarValue::Array(result),
        })
    }
}

/// Maps the non-null values of `input` through `f`.
fn try_map<I, O>(
    input: &PrimitiveArray<I>,
    f: impl Fn(i64) -> std::result::Result<i64, SqlStateError>,
) -> Result<PrimitiveArray<O>>
where
    I: datafusion::arrow::datatypes::ArrowPrimitiveType<Native = i64>,
    O: datafusion::arrow::datatypes::ArrowPrimitiveType<Native = i64>,
{
    let mut out = Vec::with_capacity(input.len());
    for i in 0..input.len() {
        out.push(match input.is_null(i) {
            true => None,
            false => Some(f(input.value(i))?),
        });
    }
    Ok(out.into_iter().collect())
}

fn utc() -> Tz {
    Tz::from_str("+00:00").expect("UTC")
}

/// The wall-clock time in `zone` of an instant (microseconds since the epoch).
fn local(t: i64, zone: &Tz) -> std::result::Result<NaiveDateTime, SqlStateError> {
    let utc = DateTime::from_timestamp_micros(t).ok_or_else(out_of_range)?;
    Ok(utc.with_timezone(zone).naive_local())
}

/// The instant of a wall-clock time in `zone`: the earlier of two, and for a time the
/// clocks skipped, the one the offset before the change gives.
fn instant(local: NaiveDateTime, zone: &Tz) -> std::result::Result<i64, SqlStateError> {
    let utc = match zone.from_local_datetime(&local).earliest() {
        Some(t) => t.naive_utc(),
        None => {
            let offset = zone.offset_from_utc_datetime(&local).fix();
            local - chrono::Duration::seconds(i64::from(offset.local_minus_utc()))
        }
    };
    Ok(utc.and_utc().timestamp_micros())
}

/// One field of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Milli,
}

impl Field {
    /// The length of the fields that are durations.
    fn micros(self) -> Option<i64> {
        match self {
            Field::Hour => Some(MICROS_PER_HOUR),
            Field::Minute => Some(MICROS_PER_MINUTE),
            Field::Second => Some(MICROS_PER_SECOND),
            Field::Milli => Some(MICROS_PER_MILLI),
            _ => None,
        }
    }
}

/// An ISO 8601 period: `P[nY][nM][nW][nD][T[nH][nM][n[.fff]S]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Period {
    /// The non-zero fields, largest first.
    fields: Vec<(Field, i64)>,
}

impl Period {
    fn parse(text: &str) -> std::result::Result<Period, SqlStateError> {
        let bad = || invalid(format!("invalid ISO 8601 period: \"{text}\""));
        let upper = text.trim().to_ascii_uppercase();
        let rest = upper.strip_prefix('P').ok_or_else(bad)?;
        let mut fields = Vec::new();
        let mut in_time = false;
        let mut number = String::new();
        for c in rest.chars() {
            match c {
                'T' if !in_time && number.is_empty() => in_time = true,
                '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
                _ => {
                    if number.is_empty() {
                        return Err(bad());
                    }
                    if c == 'S' && in_time {
                        let (whole, fraction) = number.split_once('.').unwrap_or((&number, ""));
                        if fraction.len() > 3 {
                            return Err(bad());
                        }
                        let seconds: i64 = whole.parse().map_err(|_| bad())?;
                        let millis: i64 = format!("{fraction:0<3}").parse().map_err(|_| bad())?;
                        fields.push((Field::Second, seconds));
                        fields.push((Field::Milli, millis));
                    } else {
                        let n: i64 = number.parse().map_err(|_| bad())?;
                        let field = match (c, in_time) {
                            ('Y', false) => Field::Year,
                            ('M', false) => Field::Month,
                            ('W', false) => Field::Week,
                            ('D', false) => Field::Day,
                            ('H', true) => Field::Hour,
                            ('M', true) => Field::Minute,
                            _ => return Err(bad()),
                        };
                        fields.push((field, n));
                    }
                    number.clear();
                }
            }
        }
        if !number.is_empty() {
            return Err(bad());
        }
        fields.retain(|(_, n)| *n != 0);
        if fields.is_empty() {
            return Err(invalid(format!("period \"{text}\" is empty")));
        }
        if fields.iter().any(|(_, n)| *n > 1_000_000) {
            return Err(bad());
        }
        Ok(Period { fields })
    }

    /// The period as a fixed duration, when it has no calendar field.
    fn fixed_micros(&self) -> Option<i64> {
        self.fields.iter().try_fold(0i64, |sum, (field, n)| {
            let unit = match field {
                Field::Week => 7 * 24 * MICROS_PER_HOUR,
                Field::Day => 24 * MICROS_PER_HOUR,
                other => other.micros()?,
            };
            sum.checked_add(unit.checked_mul(*n)?)
        })
    }

    /// The start of the bucket of `t`.
    fn floor(
        &self,
        t: i64,
        origin: Option<i64>,
        zone: &Tz,
    ) -> std::result::Result<i64, SqlStateError> {
        let [(field, n)] = self.fields[..] else {
            // Several fields: a fixed duration from the origin.
            let len = self
                .fixed_micros()
                .ok_or_else(|| invalid("a period of several fields cannot have years or months"))?;
            let o = origin.unwrap_or(0);
            return Ok(o + (t - o).div_euclid(len) * len);
        };
        if n == 1 && origin.is_none() {
            // The calendar field, in the zone.
            let l = local(t, zone)?;
            let day = l.date();
            let start = match field {
                Field::Year => NaiveDate::from_ymd_opt(l.year(), 1, 1).map(|d| d.into()),
                Field::Month => NaiveDate::from_ymd_opt(l.year(), l.month(), 1).map(|d| d.into()),
                Field::Week => day
                    .checked_sub_days(Days::new(u64::from(l.weekday().num_days_from_monday())))
                    .map(|d| d.into()),
                Field::Day => Some(day.into()),
                Field::Hour => l
                    .with_minute(0)
                    .and_then(|l| l.with_second(0))
                    .and_then(|l| l.with_nanosecond(0)),
                Field::Minute => l.with_second(0).and_then(|l| l.with_nanosecond(0)),
                Field::Second => l.with_nanosecond(0),
                Field::Milli => l.with_nanosecond(l.nanosecond() / 1_000_000 * 1_000_000),
            };
            return instant(start.ok_or_else(out_of_range)?, zone);
        }
        let o = origin.unwrap_or(0);
        if let Some(unit) = field.micros() {
            let len = unit * n;
            return Ok(o + (t - o).div_euclid(len) * len);
        }
        // Whole calendar units from the origin, in the zone.
        let (lo, lt) = (local(o, zone)?, local(t, zone)?);
        let (step, n) = match field {
            Field::Year => (Step::Months(12), n),
            Field::Month => (Step::Months(1), n),
            Field::Week => (Step::Days(7), n),
            _ => (Step::Days(1), n),
        };
        let units = step.between(lo, lt)?;
        let k = units - units % n;
        let mut start = step.add(lo, k)?;
        if start > lt {
            start = step.add(start, -n)?;
        }
        instant(start, zone)
    }

    /// `t` moved by `step` periods: calendar fields on the zone's calendar, then the
    /// durations.
    fn shift(&self, t: i64, step: i64, zone: &Tz) -> std::result::Result<i64, SqlStateError> {
        let mut months = 0i64;
        let mut days = 0i64;
        let mut micros = 0i64;
        for (field, n) in &self.fields {
            let n = n.checked_mul(step).ok_or_else(out_of_range)?;
            match field {
                Field::Year => months += n * 12,
                Field::Month => months += n,
                Field::Week => days += n * 7,
                Field::Day => days += n,
                other => {
                    let unit = other.micros().unwrap_or(0);
                    micros = micros
                        .checked_add(n.checked_mul(unit).ok_or_else(out_of_range)?)
                        .ok_or_else(out_of_range)?;
                }
            }
        }
        let mut t = t;
        if months != 0 || days != 0 {
            let l = Step::Months(1).add(local(t, zone)?, months)?;
            let l = Step::Days(1).add(l, days)?;
            t = instant(l, zone)?;
        }
        t.checked_add(micros).ok_or_else(out_of_range)
    }
}

/// A calendar unit: a number of months or of days.
#[derive(Debug, Clone, Copy)]
enum Step {
    Months(i64),
    Days(i64),
}

impl Step {
    fn add(self, l: NaiveDateTime, n: i64) -> std::result::Result<NaiveDateTime, SqlStateError> {
        let (count, months) = match self {
            Step::Months(m) => (m * n, true),
            Step::Days(d) => (d * n, false),
        };
        let magnitude = u32::try_from(count.unsigned_abs()).map_err(|_| out_of_range())?;
        let moved = match (months, count >= 0) {
            (true, true) => l.checked_add_months(Months::new(magnitude)),
            (true, false) => l.checked_sub_months(Months::new(magnitude)),
            (false, true) => l.checked_add_days(Days::new(u64::from(magnitude))),
            (false, false) => l.checked_sub_days(Days::new(u64::from(magnitude))),
        };
        moved.ok_or_else(out_of_range)
    }

    /// Whole units from `from` to `to`, toward zero.
    fn between(
        self,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> std::result::Result<i64, SqlStateError> {
        let (raw, size) = match self {
            Step::Months(m) => (
                (i64::from(to.year()) * 12 + i64::from(to.month0()))
                    - (i64::from(from.year()) * 12 + i64::from(from.month0())),
                m,
            ),
            Step::Days(d) => ((to.date() - from.date()).num_days(), d),
        };
        let mut units = raw / size;
        let at = |k: i64| self.add(from, k);
        if units > 0 && at(units)? > to {
            units -= 1;
        } else if units < 0 && at(units)? < to {
            units += 1;
        }
        Ok(units)
    }
}

/// A Joda-Time pattern (`yyyy-MM-dd'T'HH:mm:ss.SSSZZ`), as chrono format items.
#[derive(Debug, Clone)]
struct Pattern {
    /// chrono's format string.
    chrono: String,
    /// Whether the pattern has a date, a time of day, an offset.
    date: bool,
    time: bool,
    offset: bool,
    /// A zone's name (`z`), which can be written but not read back.
    zone_name: bool,
    /// A zero offset is written `Z`.
    zulu: bool,
}

impl Pattern {
    /// Druid's default: ISO 8601 with milliseconds and the offset, `Z` for UTC.
    fn iso() -> Pattern {
        let mut iso = Pattern::parse("yyyy-MM-dd'T'HH:mm:ss.SSSZZ").expect("the ISO pattern");
        iso.zulu = true;
        iso
    }

    fn parse(text: &str) -> std::result::Result<Pattern, SqlStateError> {
        let bad = |what: &str| invalid(format!("invalid TIME_FORMAT pattern \"{text}\": {what}"));
        let chars: Vec<char> = text.chars().collect();
        let mut out = Pattern {
            chrono: String::new(),
            date: false,
            time: false,
            offset: false,
            zone_name: false,
            zulu: false,
        };
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let mut n = 1;
            while i + n < chars.len() && chars[i + n] == c {
                n += 1;
            }
            if c == '\'' {
                // 'literal', and '' for a quote.
                if n >= 2 {
                    out.chrono.push_str(&"'".repeat(n / 2));
                    i += n / 2 * 2;
                    continue;
                }
                let end = chars[i + 1..]
                    .iter()
                    .position(|&q| q == '\'')
                    .ok_or_else(|| bad("unterminated quote"))?;
                for &l in &chars[i + 1..i + 1 + end] {
                    match l {
                        '%' => out.chrono.push_str("%%"),
                        l => out.chrono.push(l),
                    }
                }
                i += end + 2;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                for _ in 0..n {
                    match c {
                        '%' => out.chrono.push_str("%%"),
                        c => out.chrono.push(c),
                    }
                }
                i += n;
                continue;
            }
            let item = match (c, n) {
                ('y' | 'Y' | 'u', 2) => "%y",
                ('y' | 'Y' | 'u', _) => "%Y",
                ('x', 2) => "%g",
                ('x', _) => "%G",
                ('w', 1) => "%-V",
                ('w', _) => "%V",
                ('M', 1) => "%-m",
                ('M', 2) => "%m",
                ('M', 3) => "%b",
                ('M', _) => "%B",
                ('d', 1) => "%-d",
                ('d', _) => "%d",
                ('D', 1 | 2) => "%-j",
                ('D', _) => "%j",
                ('e', _) => "%u",
                ('E', 1..=3) => "%a",
                ('E', _) => "%A",
                ('a', _) => "%p",
                ('H', 1) => "%-H",
                ('H', _) => "%H",
                ('h', 1) => "%-I",
                ('h', _) => "%I",
                ('m', 1) => "%-M",
                ('m', _) => "%M",
                ('s', 1) => "%-S",
                ('s', _) => "%S",
                ('S', 3) => "%3f",
                ('S', 6) => "%6f",
                ('S', 9) => "%9f",
                ('Z', 1) => "%z",
                ('Z', 2) => "%:z",
                ('z', _) => "%Z",
                _ => {
                    return Err(bad(&format!(
                        "\"{}\" is not supported",
                        c.to_string().repeat(n)
                    )))
                }
            };
            match c {
                'y' | 'Y' | 'u' | 'x' | 'w' | 'M' | 'd' | 'D' | 'e' | 'E' => out.date = true,
                'a' | 'H' | 'h' | 'm' | 's' | 'S' => out.time = true,
                'z' => out.zone_name = true,
                _ => out.offset = true,
            }
            out.chrono.push_str(item);
            i += n;
        }
        Ok(out)
    }

    /// The pattern as TIME_PARSE reads with it: it must have a date or time field, and no
    /// zone name (offsets, `Z` and `ZZ`, can be read).
    fn for_parsing(self, text: &str) -> std::result::Result<Pattern, SqlStateError> {
        if self.zone_name {
            return Err(invalid(format!(
                "TIME_PARSE pattern \"{text}\": a time zone name (z) cannot be read; use an offset (Z or ZZ)"
            )));
        }
        if !(self.date || self.time) {
            return Err(invalid(format!(
                "TIME_PARSE pattern \"{text}\" has no date or time field"
            )));
        }
        Ok(self)
    }

    fn format(&self, t: i64, zone: &Tz) -> std::result::Result<String, SqlStateError> {
        let utc = DateTime::from_timestamp_micros(t).ok_or_else(out_of_range)?;
        let mut text = String::new();
        use std::fmt::Write;
        write!(text, "{}", utc.with_timezone(zone).format(&self.chrono))
            .map_err(|_| invalid("the pattern cannot format this value"))?;
        if self.zulu && text.ends_with("+00:00") {
            text.truncate(text.len() - 6);
            text.push('Z');
        }
        Ok(text)
    }
}

/// `TIME_PARSE`: the instant a text stands for, by the pattern (ISO 8601 without one);
/// a time without an offset is in `zone`, and the fields the pattern lacks are Joda's
/// defaults (1970-01-01T00:00:00: `yyyy` reads `2024` as its first of January). NULL when
/// the text does not match, as in Druid.
fn parse_time(text: &str, pattern: Option<&Pattern>, zone: &Tz) -> Option<i64> {
    use chrono::format::{Parsed, StrftimeItems};
    let Some(pattern) = pattern else {
        let local_offset = henge_ingest::value::local_offset(zone);
        return henge_ingest::value::parse_timestamptz_local(text.trim(), local_offset).ok();
    };
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, StrftimeItems::new(&pattern.chrono)).ok()?;
    let by_week = parsed.isoyear().is_some() || parsed.isoweek().is_some();
    if by_week {
        if parsed.weekday().is_none() {
            parsed.set_weekday(chrono::Weekday::Mon).ok()?;
        }
    } else {
        if parsed.year().is_none() && parsed.year_mod_100().is_none() {
            parsed.set_year(1970).ok()?;
        }
        if parsed.ordinal().is_none() {
            if parsed.month().is_none() {
                parsed.set_month(1).ok()?;
            }
            if parsed.day().is_none() {
                parsed.set_day(1).ok()?;
            }
        }
    }
    if parsed.hour_div_12().is_none() && parsed.hour_mod_12().is_none() {
        parsed.set_hour(0).ok()?;
    }
    if parsed.minute().is_none() {
        parsed.set_minute(0).ok()?;
    }
    if parsed.second().is_none() {
        parsed.set_second(0).ok()?;
    }
    if parsed.offset().is_some() {
        return parsed.to_datetime().ok().map(|t| t.timestamp_micros());
    }
    instant(parsed.to_naive_datetime_with_offset(0).ok()?, zone).ok()
}

/// A field `TIME_EXTRACT` reads.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Epoch,
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Dow,
    Doy,
    Week,
    Month,
    Quarter,
    Year,
    IsoYear,
    Decade,
    Century,
    Millennium,
}

impl Unit {
    fn parse(text: &str) -> std::result::Result<Unit, SqlStateError> {
        Ok(match text.trim().to_ascii_uppercase().as_str() {
            "EPOCH" => Unit::Epoch,
            "MICROSECOND" => Unit::Microsecond,
            "MILLISECOND" => Unit::Millisecond,
            "SECOND" => Unit::Second,
            "MINUTE" => Unit::Minute,
            "HOUR" => Unit::Hour,
            "DAY" => Unit::Day,
            "DOW" | "ISODOW" => Unit::Dow,
            "DOY" => Unit::Doy,
            "WEEK" => Unit::Week,
            "MONTH" => Unit::Month,
            "QUARTER" => Unit::Quarter,
            "YEAR" => Unit::Year,
            "ISOYEAR" => Unit::IsoYear,
            "DECADE" => Unit::Decade,
            "CENTURY" => Unit::Century,
            "MILLENNIUM" => Unit::Millennium,
            _ => {
                return Err(invalid(format!(
                    "TIME_EXTRACT unit \"{text}\" not recognized"
                )))
            }
        })
    }

    /// The field of an instant, in the zone (Druid's: the day of week from Monday = 1,
    /// ISO weeks; the millisecond and microsecond of the second).
    fn extract(self, t: i64, zone: &Tz) -> std::result::Result<i64, SqlStateError> {
        if let Unit::Epoch = self {
            return Ok(t.div_euclid(MICROS_PER_SECOND));
        }
        let l = local(t, zone)?;
        let year = i64::from(l.year());
        Ok(match self {
            Unit::Epoch => unreachable!("answered above"),
            Unit::Microsecond => i64::from(l.nanosecond() / 1_000),
            Unit::Millisecond => i64::from(l.nanosecond() / 1_000_000),
            Unit::Second => i64::from(l.second()),
            Unit::Minute => i64::from(l.minute()),
            Unit::Hour => i64::from(l.hour()),
            Unit::Day => i64::from(l.day()),
            Unit::Dow => i64::from(l.weekday().number_from_monday()),
            Unit::Doy => i64::from(l.ordinal()),
            Unit::Week => i64::from(l.iso_week().week()),
            Unit::Month => i64::from(l.month()),
            Unit::Quarter => i64::from(l.month0() / 3 + 1),
            Unit::Year => year,
            Unit::IsoYear => i64::from(l.iso_week().year()),
            Unit::Decade => year.div_euclid(10),
            Unit::Century => (year - 1).div_euclid(100) + 1,
            Unit::Millennium => (year - 1).div_euclid(1000) + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    fn show(t: i64) -> String {
        DateTime::from_timestamp_micros(t)
            .unwrap()
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    fn floor(t: &str, period: &str, origin: Option<&str>, zone: &str) -> String {
        let zone = Tz::from_str(zone).unwrap();
        let p = Period::parse(period).unwrap();
        show(p.floor(at(t), origin.map(at), &zone).unwrap())
    }

    #[test]
    fn buckets_are_druids() {
        let t = "2024-03-14 15:47:23";
        assert_eq!(floor(t, "PT5M", None, "+00:00"), "2024-03-14 15:45:00");
        assert_eq!(floor(t, "PT1H", None, "+00:00"), "2024-03-14 15:00:00");
        assert_eq!(floor(t, "PT6H", None, "+00:00"), "2024-03-14 12:00:00");
        assert_eq!(floor(t, "P1D", None, "+00:00"), "2024-03-14 00:00:00");
        // Weeks start on Monday; 2024-03-14 is a Thursday.
        assert_eq!(floor(t, "P1W", None, "+00:00"), "2024-03-11 00:00:00");
        assert_eq!(floor(t, "P1M", None, "+00:00"), "2024-03-01 00:00:00");
        assert_eq!(floor(t, "P3M", None, "+00:00"), "2024-01-01 00:00:00");
        assert_eq!(floor(t, "P1Y", None, "+00:00"), "2024-01-01 00:00:00");
        // A day in Los Angeles starts at 07:00 UTC in March (daylight saving time).
        assert_eq!(
            floor(t, "P1D", None, "America/Los_Angeles"),
            "2024-03-14 07:00:00"
        );
        // An origin shifts the buckets.
        assert_eq!(
            floor(t, "PT1H", Some("2024-01-01 00:30:00"), "+00:00"),
            "2024-03-14 15:30:00"
        );
        assert_eq!(
            floor("1969-12-31 23:59:59", "PT1H", None, "+00:00"),
            "1969-12-31 23:00:00"
        );
        assert_eq!(floor(t, "PT1H30M", None, "+00:00"), "2024-03-14 15:00:00");
    }

    #[test]
    fn joda_patterns_format_and_parse() {
        let t = at("2024-03-14 15:47:23") + 500_000;
        let zone = utc();
        let iso = Pattern::iso();
        assert_eq!(iso.format(t, &zone).unwrap(), "2024-03-14T15:47:23.500Z");
        let la = Tz::from_str("America/Los_Angeles").unwrap();
        assert_eq!(iso.format(t, &la).unwrap(), "2024-03-14T08:47:23.500-07:00");
        let p = Pattern::parse("yyyy/MM/dd HH:mm 'at' EEE, MMMM d").unwrap();
        assert_eq!(
            p.format(t, &zone).unwrap(),
            "2024/03/14 15:47 at Thu, March 14"
        );
        assert_eq!(
            parse_time("2024/03/14 15:47 at Thu, March 14", Some(&p), &zone),
            Some(at("2024-03-14 15:47:00"))
        );
        let day = Pattern::parse("dd.MM.yyyy").unwrap();
        assert_eq!(
            parse_time("14.03.2024", Some(&day), &la),
            Some(at("2024-03-14 07:00:00"))
        );
        assert_eq!(
            parse_time("2024-03-14T15:47:23Z", None, &la),
            Some(at("2024-03-14 15:47:23"))
        );
        assert_eq!(parse_time("not a time", Some(&day), &zone), None);
        // Fields the pattern lacks take Joda's defaults.
        let year = Pattern::parse("yyyy").unwrap();
        assert_eq!(
            parse_time("2024", Some(&year), &zone),
            Some(at("2024-01-01 00:00:00"))
        );
        let clock = Pattern::parse("HH:mm").unwrap();
        assert_eq!(
            parse_time("10:30", Some(&clock), &zone),
            Some(at("1970-01-01 10:30:00"))
        );
        let offset = Pattern::parse("yyyy-MM-dd HH:mm Z").unwrap();
        assert_eq!(
            parse_time("2024-03-14 10:00 +0530", Some(&offset), &la),
            Some(at("2024-03-14 04:30:00"))
        );
        assert!(Pattern::parse("yyyy z")
            .unwrap()
            .for_parsing("yyyy z")
            .is_err());
        assert!(Pattern::parse("'at'").unwrap().for_parsing("'at'").is_err());
        assert!(Pattern::parse("yyyy-MM-dd'T").is_err());
        assert!(Pattern::parse("yyyy QQ").is_err());
        assert_eq!(
            Pattern::parse("''yy''").unwrap().format(t, &zone).unwrap(),
            "'24'"
        );
    }

    #[test]
    fn periods_are_read_as_iso_8601() {
        assert!(Period::parse("PT0.5S").is_ok());
        for bad in [
            "",
            "P",
            "5M",
            "PT",
            "P1H",
            "PTM",
            "P1.5D",
            "PT0.0001S",
            "P0D",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        let p = Period::parse("P1M").unwrap();
        let zone = utc();
        // Shifting by a month keeps the day where it can.
        assert_eq!(
            show(p.shift(at("2024-01-31 10:00:00"), 1, &zone).unwrap()),
            "2024-02-29 10:00:00"
        );
    }
}

/// Druid's aggregates under Druid's names: `APPROX_COUNT_DISTINCT` and `APPROX_QUANTILE`
/// (Apache DataSketches' HLL and KLL, [`crate::sketch`]), and `EARLIEST`, `LATEST`,
/// `EARLIEST_BY`, `LATEST_BY`, planned by [`DruidAggregates`].
pub fn register_aggregates(ctx: &SessionContext) {
    crate::sketch::register(ctx);
    for name in ["earliest", "latest", "earliest_by", "latest_by"] {
        ctx.register_udaf(datafusion::logical_expr::AggregateUDF::new_from_impl(
            EarliestOrLatest::new(name),
        ));
    }
}

/// `EARLIEST(expr)`, `EARLIEST_BY(expr, by)`, `LATEST(expr)` or `LATEST_BY(expr, by)` as
/// the SQL planner finds them: a name only, planned by [`DruidAggregates`] as
/// `first_value(expr ORDER BY by [DESC] NULLS LAST)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct EarliestOrLatest {
    name: &'static str,
    signature: Signature,
}

impl EarliestOrLatest {
    fn new(name: &'static str) -> EarliestOrLatest {
        EarliestOrLatest {
            name,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl datafusion::logical_expr::AggregateUDFImpl for EarliestOrLatest {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(types.first().cloned().unwrap_or(DataType::Null))
    }

    fn accumulator(
        &self,
        _args: datafusion::logical_expr::function::AccumulatorArgs,
    ) -> Result<Box<dyn datafusion::logical_expr::Accumulator>> {
        Err(SqlStateError::new(
            code::FEATURE_NOT_SUPPORTED,
            format!(
                "{} is not supported here (only as an aggregate)",
                self.name().to_uppercase()
            ),
        )
        .into())
    }
}

/// Plans Druid's `EARLIEST_BY(expr, by)` and `LATEST_BY`: the value of the row with the
/// earliest (latest) `by`, rows whose `by` is NULL last; `EARLIEST(expr)` and `LATEST`
/// order by the time column of the table the value comes from, as Druid's by `__time`.
/// Druid's last argument, the bytes kept of a string value, is refused: Henge keeps whole
/// values, and truncating them silently is not an answer.
#[derive(Debug)]
pub struct DruidAggregates {
    pub engine: Arc<henge_ingest::Engine>,
}

impl datafusion::logical_expr::planner::ExprPlanner for DruidAggregates {
    fn plan_aggregate(
        &self,
        expr: datafusion::logical_expr::planner::RawAggregateExpr,
    ) -> Result<
        datafusion::logical_expr::planner::PlannerResult<
            datafusion::logical_expr::planner::RawAggregateExpr,
        >,
    > {
        use datafusion::logical_expr::planner::PlannerResult;
        use datafusion::logical_expr::{Expr, SortExpr};
        let (latest, by_given) = match expr.func.name() {
            "earliest" => (false, false),
            "latest" => (true, false),
            "earliest_by" => (false, true),
            "latest_by" => (true, true),
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let name = expr.func.name().to_uppercase();
        if expr.distinct || !expr.order_by.is_empty() {
            return Err(SqlStateError::new(
                code::FEATURE_NOT_SUPPORTED,
                format!("{name} takes no DISTINCT or ORDER BY"),
            )
            .into());
        }
        let mut args = expr.args;
        let wanted = if by_given { 2 } else { 1 };
        if args.len() == wanted + 1 {
            return Err(SqlStateError::new(
                code::FEATURE_NOT_SUPPORTED,
                format!(
                    "{name}'s maxBytesPerValue is not supported: Henge keeps whole values, \
                     leave it out"
                ),
            )
            .into());
        }
        let by = match (args.len(), by_given) {
            (2, true) => args.pop().expect("two arguments"),
            (1, false) => {
                let time = self.time_column_of(&args[0]).ok_or_else(|| {
                    SqlStateError::new(
                        code::FEATURE_NOT_SUPPORTED,
                        format!(
                            "{name}(expr) orders by the time column of the table expr comes \
                             from, and this one has none to find: name it, {name}_BY(expr, ts)"
                        ),
                    )
                })?;
                Expr::Column(time)
            }
            _ => {
                return Err(SqlStateError::new(
                    code::UNDEFINED_FUNCTION,
                    format!(
                        "function {} takes {wanted} argument{}",
                        name.to_lowercase(),
                        if wanted == 1 { "" } else { "s" }
                    ),
                )
                .into())
            }
        };
        Ok(PlannerResult::Planned(Expr::AggregateFunction(
            datafusion::logical_expr::expr::AggregateFunction::new_udf(
                datafusion::functions_aggregate::first_last::first_value_udaf(),
                args,
                false,
                expr.filter,
                vec![SortExpr::new(by, !latest, false)],
                expr.null_treatment,
            ),
        )))
    }
}

impl DruidAggregates {
    /// The time column of the one table whose columns `expr` reads.
    fn time_column_of(
        &self,
        expr: &datafusion::logical_expr::Expr,
    ) -> Option<datafusion::common::Column> {
        let columns = expr.column_refs();
        let mut relations = columns.iter().map(|c| c.relation.clone());
        let relation = relations.next()??;
        if relations.any(|r| r.as_ref() != Some(&relation)) {
            return None;
        }
        let table = self.engine.table(relation.table())?;
        let time = table.def.time_column.clone()?;
        Some(datafusion::common::Column::new(Some(relation), time))
    }
}
