//! Parsing of PostgreSQL's text representation of values into their stored form.
//!
//! These follow PostgreSQL's input functions (`boolin`, `int8in`, `float8in`, `numeric_in`,
//! `date_in`, `timestamp_in`, `byteain`): the same accepted spellings and the same error
//! wording, so a client sees what PostgreSQL would have said.

use arrow::array::timezone::Tz;
use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};

use crate::datetime;
use crate::error::{ValueError, ValueErrorKind};
use henge_storage::schema::DEFAULT_NUMERIC;

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
pub const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// Parses a boolean: `t`, `true`, `yes`, `on`, `1` and their opposites, in any case, and
/// any unambiguous prefix of the words.
pub fn parse_bool(input: &str) -> Result<bool, ValueError> {
    let s = input.trim().to_ascii_lowercase();
    let is_prefix = |word: &str, min: usize| s.len() >= min && word.starts_with(s.as_str());
    if s == "1" || is_prefix("true", 1) || is_prefix("yes", 1) || is_prefix("on", 2) {
        Ok(true)
    } else if s == "0" || is_prefix("false", 1) || is_prefix("no", 1) || is_prefix("off", 2) {
        Ok(false)
    } else {
        Err(ValueError::syntax("boolean", input))
    }
}

/// Parses an integer that must fit in `[min, max]`; `type_name` is used in errors.
pub fn parse_int(input: &str, min: i64, max: i64, type_name: &str) -> Result<i64, ValueError> {
    let s = input.trim();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return Err(ValueError::syntax(type_name, input));
    }
    // Accumulate negatively so that the most negative value parses too.
    let mut value: i64 = 0;
    let mut overflow = false;
    let mut previous_underscore = false;
    for b in digits.bytes() {
        match b {
            b'0'..=b'9' => {
                previous_underscore = false;
                match value
                    .checked_mul(10)
                    .and_then(|v| v.checked_sub(i64::from(b - b'0')))
                {
                    Some(v) => value = v,
                    None => overflow = true,
                }
            }
            b'_' if !previous_underscore => previous_underscore = true,
            _ => return Err(ValueError::syntax(type_name, input)),
        }
    }
    let out_of_range = || {
        ValueError::out_of_range(format!(
            "value \"{input}\" is out of range for type {type_name}"
        ))
    };
    if overflow {
        return Err(out_of_range());
    }
    let value = if negative {
        value
    } else {
        value.checked_neg().ok_or_else(out_of_range)?
    };
    if value < min || value > max {
        return Err(out_of_range());
    }
    Ok(value)
}

/// Parses a floating-point number, including `NaN`, `Infinity` and `-Infinity`.
pub fn parse_f64(input: &str, type_name: &str) -> Result<f64, ValueError> {
    let s = input.trim();
    let value: f64 = s
        .parse()
        .map_err(|_| ValueError::syntax(type_name, input))?;
    if value.is_infinite() && !is_infinity_word(s) {
        return Err(ValueError::out_of_range(format!(
            "\"{input}\" is out of range for type {type_name}"
        )));
    }
    Ok(value)
}

/// Parses a single-precision float, refusing values beyond its range.
pub fn parse_f32(input: &str) -> Result<f32, ValueError> {
    let value = parse_f64(input, "real")?;
    let narrowed = value as f32;
    if narrowed.is_infinite() && value.is_finite() {
        return Err(ValueError::out_of_range(format!(
            "\"{input}\" is out of range for type real"
        )));
    }
    Ok(narrowed)
}

fn is_infinity_word(s: &str) -> bool {
    let s = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    s == "inf" || s == "infinity"
}

/// Parses a value of an unconstrained `numeric` (declared without a precision and scale):
/// the value scaled by `10^`[`DEFAULT_NUMERIC`]'s scale, and the scale it was written with
/// (`1.50` two, `1.5e3` none, `2.0000000000000` thirteen). PostgreSQL keeps every digit;
/// Henge keeps the default scale's places, so a value with a digit other than zero beyond
/// them is refused (0A000) rather than rounded, as is one too large for them (22003).
pub fn parse_numeric_unconstrained(input: &str) -> Result<(i128, i16), ValueError> {
    let (precision, scale) = DEFAULT_NUMERIC;
    let written = written_scale(input.trim());
    if let Some((places, whole, fraction)) = written {
        // Counted from the last, the digits past the kept places (the point's position
        // does not matter).
        let beyond = (places - i32::from(scale)).max(0) as usize;
        let digits = whole.bytes().chain(fraction.bytes());
        if !digits.rev().take(beyond).all(|d| d == b'0') {
            return Err(ValueError::of_kind(
                ValueErrorKind::NotSupported,
                format!(
                    "numeric value \"{}\" has more than {scale} digits after the decimal point: \
                     Henge keeps {scale} in a numeric declared without a scale",
                    input.trim()
                ),
            ));
        }
    }
    let value = parse_numeric(input, precision, scale).map_err(|e| match e.kind {
        ValueErrorKind::OutOfRange => ValueError::out_of_range(format!(
            "numeric value \"{}\" is out of range: Henge keeps at most {} digits before the \
             decimal point in a numeric declared without a scale",
            input.trim(),
            i32::from(precision) - i32::from(scale)
        )),
        _ => e,
    })?;
    let places = written.map_or(0, |(places, ..)| places);
    Ok((value, places.clamp(0, i32::from(MAX_SHOWN_SCALE)) as i16))
}

/// The places `v` (held with `places` places) needs: `places` less its trailing zeros
/// (none for zero). An unconstrained numeric's value whose scale is not known is shown
/// with these.
pub fn places_needed(mut v: i128, places: i8) -> i16 {
    let mut zeros = 0;
    while zeros < i16::from(places) && v % 10 == 0 {
        v /= 10;
        zeros += 1;
    }
    i16::from(places) - zeros
}

/// The most places an unconstrained numeric's value is shown with (PostgreSQL's limit of
/// a numeric's display scale).
pub const MAX_SHOWN_SCALE: i16 = 16383;

/// The places a number's text gives it (digits after the point less the exponent, at
/// least none), and its digits before and after the point; `None` if it is no number.
fn written_scale(text: &str) -> Option<(i32, &str, &str)> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let places = (fraction.len() as i64 - i64::from(exponent)).clamp(0, i64::from(i32::MAX));
    Some((places as i32, whole, fraction))
}

/// Parses a decimal number into an integer scaled by `10^scale`, rounding half away from
/// zero, and refuses values that need more than `precision` digits.
pub fn parse_numeric(input: &str, precision: u8, scale: i8) -> Result<i128, ValueError> {
    let s = input.trim();
    let syntax = || ValueError::syntax("numeric", input);
    if [
        "nan",
        "infinity",
        "-infinity",
        "+infinity",
        "inf",
        "-inf",
        "+inf",
    ]
    .iter()
    .any(|w| s.eq_ignore_ascii_case(w))
    {
        return Err(ValueError::of_kind(
            ValueErrorKind::NotSupported,
            format!("numeric value \"{s}\" is not supported: Henge's numerics are finite numbers"),
        ));
    }
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => {
            let e: i32 = rest[i + 1..].parse().map_err(|_| syntax())?;
            (&rest[..i], e)
        }
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(syntax());
    }
    let mut digits: Vec<u8> = Vec::with_capacity(int_part.len() + frac_part.len());
    for b in int_part.bytes().chain(frac_part.bytes()) {
        if !b.is_ascii_digit() {
            return Err(syntax());
        }
        digits.push(b - b'0');
    }
    // The value is `digits * 10^(exponent - frac_len)`; shift it to `scale` decimals.
    let shift = exponent - frac_part.len() as i32 + i32::from(scale);
    let overflow = || {
        ValueError::out_of_range(format!(
            "numeric field overflow: a field with precision {precision}, scale {scale} must round to an absolute value less than 10^{}",
            i32::from(precision) - i32::from(scale)
        ))
    };
    let mut value: i128 = 0;
    let keep = (digits.len() as i64 + i64::from(shift.min(0))).max(0) as usize;
    for &d in &digits[..keep.min(digits.len())] {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(d)))
            .ok_or_else(overflow)?;
    }
    if shift > 0 {
        for _ in 0..shift {
            value = value.checked_mul(10).ok_or_else(overflow)?;
        }
    } else if keep < digits.len() && digits[keep] >= 5 {
        value += 1;
    }
    let limit = 10i128.pow(u32::from(precision));
    if value >= limit {
        return Err(overflow());
    }
    Ok(if negative { -value } else { value })
}

/// Parses a date into days since the Unix epoch: ISO form (`YYYY-MM-DD`) on a fast path,
/// PostgreSQL's other forms by [`crate::datetime`].
pub fn parse_date(input: &str) -> Result<i32, ValueError> {
    parse_date_at(input, None)
}

/// [`parse_date`], reading `now`, `today`, `tomorrow` and `yesterday` against `now`.
pub fn parse_date_at(input: &str, now: Option<datetime::Now>) -> Result<i32, ValueError> {
    let s = input.trim();
    match parse_iso_date(s.as_bytes()) {
        Some((date, len)) if len == s.len() => Ok(days_since_epoch(date)),
        _ => {
            use chrono::Datelike;
            let (stamp, _) = datetime::parse(input, "date", now)?;
            let date = stamp.date();
            if (date.year(), date.month(), date.day()) < (-4713, 11, 24) {
                return Err(ValueError::of_kind(
                    ValueErrorKind::DatetimeOverflow,
                    format!("date out of range: \"{input}\""),
                ));
            }
            Ok(days_since_epoch(date))
        }
    }
}

/// Parses a timestamp without time zone into microseconds since the Unix epoch. A zone
/// given in the input is ignored, as PostgreSQL does for this type.
pub fn parse_timestamp(input: &str) -> Result<i64, ValueError> {
    parse_timestamp_at(input, None)
}

/// [`parse_timestamp`], reading `now`, `today`, … against `now`.
pub fn parse_timestamp_at(input: &str, now: Option<datetime::Now>) -> Result<i64, ValueError> {
    let (local, _offset) = parse_timestamp_parts(input, "timestamp", now)?;
    Ok(local.and_utc().timestamp_micros())
}

/// Parses a timestamp with time zone into microseconds since the Unix epoch (UTC). Input
/// without an explicit zone is read in `default_offset_seconds` east of UTC.
pub fn parse_timestamptz(input: &str, default_offset_seconds: i32) -> Result<i64, ValueError> {
    parse_timestamptz_local(input, |_| default_offset_seconds)
}

/// UTC as Arrow's time zone.
pub fn utc() -> Tz {
    "+00:00".parse().expect("a fixed offset parses")
}

/// The offset east of UTC, in seconds, of a local time in `zone`. A time skipped by a
/// change to summer time takes the offset before the change.
pub fn local_offset(zone: &Tz) -> impl Fn(NaiveDateTime) -> i32 + '_ {
    move |local| match zone.offset_from_local_datetime(&local) {
        LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => o.fix().local_minus_utc(),
        LocalResult::None => zone
            .offset_from_utc_datetime(&local)
            .fix()
            .local_minus_utc(),
    }
}

/// Reads a `timestamp with time zone`; a value written without an offset is a local time,
/// whose offset east of UTC in seconds `local_offset` gives (it depends on the date where
/// there is daylight saving time).
pub fn parse_timestamptz_local(
    input: &str,
    local_offset: impl Fn(NaiveDateTime) -> i32,
) -> Result<i64, ValueError> {
    parse_timestamptz_at(input, local_offset, None)
}

/// [`parse_timestamptz_local`], reading `now`, `today`, … against `now`.
pub fn parse_timestamptz_at(
    input: &str,
    local_offset: impl Fn(NaiveDateTime) -> i32,
    now: Option<datetime::Now>,
) -> Result<i64, ValueError> {
    let (local, offset) = parse_timestamp_parts(input, "timestamp with time zone", now)?;
    let offset = offset.unwrap_or_else(|| local_offset(local));
    Ok(local.and_utc().timestamp_micros() - i64::from(offset) * 1_000_000)
}

fn date_error(type_name: &str, input: &str, trimmed: &str) -> ValueError {
    // A well-formed date that does not exist gets PostgreSQL's range wording.
    let b = trimmed.as_bytes();
    if b.len() >= 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b[..10]
            .iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    {
        return ValueError::datetime_field(input);
    }
    ValueError::datetime_syntax(type_name, input)
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    use chrono::Datelike;
    date.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

/// Parses `YYYY-MM-DD` at the start of `b`; returns the date and the bytes consumed.
fn parse_iso_date(b: &[u8]) -> Option<(NaiveDate, usize)> {
    let year_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(4..=6).contains(&year_len) || b.len() < year_len + 6 {
        return None;
    }
    let year = digits(&b[..year_len])?;
    let rest = &b[year_len..];
    if rest[0] != b'-' || rest[3] != b'-' {
        return None;
    }
    let month = digits(&rest[1..3])?;
    let day = digits(&rest[4..6])?;
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    Some((date, year_len + 6))
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit()
            .then(|| acc.checked_mul(10)?.checked_add(u32::from(c - b'0')))
            .flatten()
    })
}

/// Reads a timestamp: ISO 8601 on a fast path, PostgreSQL's other forms by
/// [`crate::datetime`]; the local time and the explicit offset east of UTC in seconds, if
/// one was given. Years before 4713 BC are out of PostgreSQL's range.
fn parse_timestamp_parts(
    input: &str,
    type_name: &str,
    now: Option<datetime::Now>,
) -> Result<(NaiveDateTime, Option<i32>), ValueError> {
    use chrono::Datelike;
    let parts = match parse_iso_timestamp_parts(input, type_name) {
        Ok(parts) => parts,
        Err(_) => datetime::parse(input, type_name, now)?,
    };
    let date = parts.0.date();
    if (date.year(), date.month(), date.day()) < (-4713, 11, 24) {
        return Err(ValueError::of_kind(
            ValueErrorKind::DatetimeOverflow,
            format!("timestamp out of range: \"{input}\""),
        ));
    }
    Ok(parts)
}

/// Parses `date[( |T)hh:mm[:ss[.ffffff]]][Z|±hh[:mm]]`; returns the local time and the
/// explicit offset east of UTC in seconds, if one was given.
fn parse_iso_timestamp_parts(
    input: &str,
    type_name: &str,
) -> Result<(NaiveDateTime, Option<i32>), ValueError> {
    let s = input.trim();
    let b = s.as_bytes();
    let err = || date_error(type_name, input, s);
    let special = s.to_ascii_lowercase();
    if special == "epoch" {
        return Ok((chrono::DateTime::UNIX_EPOCH.naive_utc(), Some(0)));
    }
    let (date, mut pos) = parse_iso_date(b).ok_or_else(err)?;
    let mut time = NaiveTime::MIN;
    if pos < b.len() && (b[pos] == b' ' || b[pos] == b'T' || b[pos] == b't') {
        pos += 1;
        while pos < b.len() && b[pos] == b' ' {
            pos += 1;
        }
        let field = |at: usize| -> Option<u32> { b.get(at..at + 2).and_then(digits) };
        let hour = field(pos).ok_or_else(err)?;
        if b.get(pos + 2) != Some(&b':') {
            return Err(err());
        }
        let minute = field(pos + 3).ok_or_else(err)?;
        pos += 5;
        let mut second = 0;
        let mut micros = 0;
        if b.get(pos) == Some(&b':') {
            second = field(pos + 1).ok_or_else(err)?;
            pos += 3;
            if b.get(pos) == Some(&b'.') {
                pos += 1;
                let start = pos;
                while pos < b.len() && b[pos].is_ascii_digit() {
                    pos += 1;
                }
                if pos == start {
                    return Err(err());
                }
                // Round to microseconds, as PostgreSQL does.
                let frac = &b[start..pos];
                let mut value = 0u64;
                for i in 0..6 {
                    value = value * 10 + u64::from(frac.get(i).map_or(0, |c| c - b'0'));
                }
                if frac.get(6).is_some_and(|&c| c >= b'5') {
                    value += 1;
                }
                micros = value as u32;
            }
        }
        let (second, carry) = if micros == 1_000_000 {
            (second, 1_000_000)
        } else {
            (second, 0)
        };
        if hour == 24 && minute == 0 && second == 0 && micros == 0 {
            let next = date.succ_opt().ok_or_else(err)?;
            return finish_timestamp(next.and_time(NaiveTime::MIN), b, pos, err);
        }
        time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros - carry)
            .ok_or_else(|| ValueError::datetime_field(input))?;
        let stamp = date.and_time(time) + chrono::Duration::microseconds(i64::from(carry));
        return finish_timestamp(stamp, b, pos, err);
    }
    finish_timestamp(date.and_time(time), b, pos, err)
}

fn finish_timestamp(
    stamp: NaiveDateTime,
    b: &[u8],
    mut pos: usize,
    err: impl Fn() -> ValueError,
) -> Result<(NaiveDateTime, Option<i32>), ValueError> {
    while pos < b.len() && b[pos] == b' ' {
        pos += 1;
    }
    if pos == b.len() {
        return Ok((stamp, None));
    }
    let zone = &b[pos..];
    if zone.eq_ignore_ascii_case(b"z") || zone.eq_ignore_ascii_case(b"utc") {
        return Ok((stamp, Some(0)));
    }
    let sign = match zone[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return Err(err()),
    };
    let z = &zone[1..];
    let (hours, minutes) = match z.len() {
        1 | 2 => (digits(z), Some(0)),
        4 => (digits(&z[..2]), digits(&z[2..])),
        5 if z[2] == b':' => (digits(&z[..2]), digits(&z[3..])),
        _ => (None, None),
    };
    match (hours, minutes) {
        (Some(h), Some(m)) if h <= 15 && m < 60 => {
            Ok((stamp, Some(sign * (h * 3600 + m * 60) as i32)))
        }
        _ => Err(err()),
    }
}

/// Parses `bytea` input: hex format (`\x0a1b`) or the traditional escape format.
pub fn parse_bytea(input: &str) -> Result<Vec<u8>, ValueError> {
    let b = input.as_bytes();
    if b.len() >= 2 && b[0] == b'\\' && (b[1] == b'x' || b[1] == b'X') {
        let mut out = Vec::with_capacity((b.len() - 2) / 2);
        let mut pending: Option<u8> = None;
        for &c in &b[2..] {
            if c.is_ascii_whitespace() && pending.is_none() {
                continue;
            }
            let nibble = (c as char).to_digit(16).ok_or_else(|| ValueError {
                kind: crate::error::ValueErrorKind::InvalidSyntax,
                message: format!("invalid hexadecimal digit: \"{}\"", c as char),
            })? as u8;
            match pending.take() {
                Some(high) => out.push(high << 4 | nibble),
                None => pending = Some(nibble),
            }
        }
        if pending.is_some() {
            return Err(ValueError {
                kind: crate::error::ValueErrorKind::InvalidSyntax,
                message: "invalid hexadecimal data: odd number of digits".into(),
            });
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
            && b[i + 1] <= b'3'
        {
            out.push((b[i + 1] - b'0') << 6 | (b[i + 2] - b'0') << 3 | (b[i + 3] - b'0'));
            i += 4;
        } else {
            // PostgreSQL's wording for bytea names no value.
            return Err(ValueError {
                kind: crate::error::ValueErrorKind::InvalidSyntax,
                message: "invalid input syntax for type bytea".into(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ValueErrorKind;

    #[test]
    fn booleans() {
        for t in ["t", "TRUE", " yes ", "on", "1", "tr"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["f", "false", "no", "off", "0", "of"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert_eq!(
            parse_bool("o").unwrap_err().message,
            "invalid input syntax for type boolean: \"o\""
        );
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int(" -42 ", i64::MIN, i64::MAX, "bigint"), Ok(-42));
        assert_eq!(parse_int("1_000", i64::MIN, i64::MAX, "bigint"), Ok(1000));
        assert_eq!(
            parse_int("-9223372036854775808", i64::MIN, i64::MAX, "bigint"),
            Ok(i64::MIN)
        );
        let e = parse_int("9223372036854775808", i64::MIN, i64::MAX, "bigint").unwrap_err();
        assert_eq!(e.kind, ValueErrorKind::OutOfRange);
        let e = parse_int("40000", -32768, 32767, "smallint").unwrap_err();
        assert_eq!(
            e.message,
            "value \"40000\" is out of range for type smallint"
        );
        for bad in ["", "x", "1.5", "--1", "1__0", "_1"] {
            let e = parse_int(bad, i64::MIN, i64::MAX, "bigint").unwrap_err();
            assert_eq!(e.kind, ValueErrorKind::InvalidSyntax, "{bad}");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64("1.5e3", "double precision"), Ok(1500.0));
        assert!(parse_f64("NaN", "double precision").unwrap().is_nan());
        assert_eq!(
            parse_f64("-Infinity", "double precision"),
            Ok(f64::NEG_INFINITY)
        );
        assert_eq!(
            parse_f64("1e999", "double precision").unwrap_err().kind,
            ValueErrorKind::OutOfRange
        );
        assert_eq!(
            parse_f32("1e39").unwrap_err().kind,
            ValueErrorKind::OutOfRange
        );
    }

    #[test]
    fn numerics() {
        assert_eq!(parse_numeric("12.345", 10, 2), Ok(1235));
        assert_eq!(parse_numeric("-12.344", 10, 2), Ok(-1234));
        assert_eq!(parse_numeric("1e2", 10, 2), Ok(10000));
        assert_eq!(parse_numeric(".5", 10, 0), Ok(1));
        assert_eq!(parse_numeric("999.99", 5, 2), Ok(99999));
        assert_eq!(
            parse_numeric("999.995", 5, 2).unwrap_err().kind,
            ValueErrorKind::OutOfRange
        );
        assert_eq!(
            parse_numeric("1.2.3", 10, 2).unwrap_err().kind,
            ValueErrorKind::InvalidSyntax
        );
    }

    #[test]
    fn unconstrained_numerics_keep_their_scale_or_are_refused() {
        let read = parse_numeric_unconstrained;
        let e10 = 10_000_000_000i128;
        assert_eq!(read("1.50"), Ok((15 * e10 / 10, 2)));
        assert_eq!(read("-2"), Ok((-2 * e10, 0)));
        assert_eq!(read("1.5e3"), Ok((1500 * e10, 0)));
        assert_eq!(read("2.50e-1"), Ok((e10 / 4, 3)));
        assert_eq!(read(" .5 "), Ok((e10 / 2, 1)));
        // Zeros beyond the kept places are places, not digits lost.
        assert_eq!(read("0.123456789000000"), Ok((1_234_567_890, 15)));
        for refused in ["0.12345678901", "1e-11", "0.000000000001"] {
            assert_eq!(
                read(refused).unwrap_err().kind,
                ValueErrorKind::NotSupported,
                "{refused}"
            );
        }
        assert_eq!(
            read("12345678901234567890123456789").unwrap_err().kind,
            ValueErrorKind::OutOfRange
        );
        assert_eq!(
            read("1.2.3").unwrap_err().kind,
            ValueErrorKind::InvalidSyntax
        );
        assert_eq!(places_needed(1_500_000_000, 10), 2);
        assert_eq!(places_needed(0, 10), 0);
        assert_eq!(places_needed(-7, 10), 10);
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date("1970-01-02"), Ok(1));
        assert_eq!(parse_date("1969-12-31"), Ok(-1));
        assert_eq!(
            parse_date("2024-02-30").unwrap_err().kind,
            ValueErrorKind::DatetimeOverflow
        );
        assert_eq!(
            parse_date("yesterday-ish").unwrap_err().kind,
            ValueErrorKind::InvalidDatetimeFormat
        );
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Ok(1_500_000));
        assert_eq!(parse_timestamp("1970-01-01T00:01"), Ok(60_000_000));
        assert_eq!(parse_timestamp("1970-01-02"), Ok(86_400_000_000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00+05"), Ok(0));
        assert_eq!(parse_timestamptz("1970-01-01 01:00:00+01:00", 0), Ok(0));
        assert_eq!(parse_timestamptz("1970-01-01 00:00:00Z", 3600), Ok(0));
        assert_eq!(parse_timestamptz("1970-01-01 01:00:00", 3600), Ok(0));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00.0000005"), Ok(1));
        assert!(parse_timestamp("1970-01-01 25:00:00").is_err());
        assert!(parse_timestamp("noon").is_err());
    }

    #[test]
    fn byteas() {
        assert_eq!(parse_bytea("\\x00ff10"), Ok(vec![0, 255, 16]));
        assert_eq!(parse_bytea("a\\\\b\\001"), Ok(vec![b'a', b'\\', b'b', 1]));
        assert!(parse_bytea("\\x0").is_err());
        assert!(parse_bytea("\\q").is_err());
    }
}
