//! PostgreSQL's date and time input beyond ISO 8601, which [`crate::value`] reads on its
//! fast path: month names (`March 5, 2024`, `5-Mar-2024`), `MM/DD/YYYY` (DateStyle
//! `ISO, MDY`, PostgreSQL's default), `YYYYMMDD`, two-digit years (70 and later are
//! 19xx), weekday names (ignored), `AM`/`PM`, `BC`/`AD`, `T` between date and time, zone
//! offsets and names (`+05:30`, `UTC`, `Europe/Berlin`), and the special values `epoch`,
//! `now`, `today`, `tomorrow` and `yesterday`. `infinity` is refused: Henge's dates and
//! timestamps have no infinite values.

use std::str::FromStr;

use arrow::array::timezone::Tz;
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use crate::error::{ValueError, ValueErrorKind};

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// The current time where the session is, for `now`, `today`, `tomorrow` and
/// `yesterday`: the local wall-clock time and its offset east of UTC in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub local: NaiveDateTime,
    pub offset: i32,
}

/// A month's number (1–12) from its name or an abbreviation of at least three letters
/// (`sept` too).
fn month(word: &str) -> Option<u32> {
    if word.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.starts_with(word))
        .map(|i| i as u32 + 1)
}

fn weekday(word: &str) -> bool {
    word.len() >= 3 && DAYS.iter().any(|d| d.starts_with(word))
        || matches!(word, "tues" | "wednes" | "thur" | "thurs")
}

/// One field of a date written with separators: a number as written, or a month.
#[derive(Debug, Clone)]
enum Part {
    Number(String),
    Month(u32),
}

#[derive(Debug, Default)]
struct Fields {
    /// A date written with separators (`2024-3-5`, `3/5/2024`, `5-Mar-2024`).
    date: Option<Vec<Part>>,
    /// Numbers standing alone, as written.
    numbers: Vec<String>,
    month: Option<u32>,
    time: Option<(u32, u32, u32, u32)>,
    meridian: Option<bool>,
    bc: bool,
    offset: Option<Zone>,
}

#[derive(Debug, Clone)]
enum Zone {
    Fixed(i32),
    Named(Tz),
}

/// Reads `input` as a date and optional time with an optional zone; `type_name` names the
/// type in errors. `None` for the time when the input has none.
pub fn parse(
    input: &str,
    type_name: &str,
    now: Option<Now>,
) -> Result<(NaiveDateTime, Option<i32>), ValueError> {
    let syntax = || ValueError::datetime_syntax(type_name, input);
    let range = || ValueError::datetime_field(input);
    let lower = input.trim().to_ascii_lowercase();
    if let Some(value) = special(&lower, input, type_name, now)? {
        return Ok(value);
    }
    let mut f = Fields::default();
    let chunks = lower
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|c| !c.is_empty());
    let originals: Vec<&str> = input
        .trim()
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|c| !c.is_empty())
        .collect();
    for (i, chunk) in chunks.enumerate() {
        field(chunk, originals.get(i).copied().unwrap_or(chunk), &mut f).ok_or_else(syntax)?;
    }
    let (year, month, day, two_digit_year) = date_of(&mut f).ok_or_else(syntax)?;
    let mut year = match (two_digit_year, year) {
        (true, y) if y < 70 => y + 2000,
        (true, y) => y + 1900,
        (false, y) => y,
    };
    if f.bc {
        if year == 0 {
            return Err(range());
        }
        year = 1 - year;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(range)?;
    let mut stamp = date.and_time(NaiveTime::MIN);
    if let Some((mut hour, minute, second, micros)) = f.time {
        match f.meridian {
            Some(_) if hour > 12 || hour == 0 => return Err(range()),
            Some(false) if hour == 12 => hour = 0,
            Some(true) if hour < 12 => hour += 12,
            _ => {}
        }
        if hour == 24 && minute == 0 && second == 0 && micros == 0 {
            stamp += Duration::days(1);
        } else {
            let time =
                NaiveTime::from_hms_micro_opt(hour, minute, second, micros).ok_or_else(range)?;
            stamp = date.and_time(time);
        }
    } else if f.meridian.is_some() {
        return Err(syntax());
    }
    let offset = f.offset.map(|zone| match zone {
        Zone::Fixed(seconds) => seconds,
        Zone::Named(tz) => crate::value::local_offset(&tz)(stamp),
    });
    Ok((stamp, offset))
}

/// A time of day alone (`14:07:09.5`, `2:07 PM`, `24:00:00`), in microseconds since
/// midnight; a zone is accepted and ignored, as PostgreSQL's `time` does.
pub fn parse_time(input: &str) -> Result<i64, ValueError> {
    let syntax = || ValueError::datetime_syntax("time without time zone", input);
    let range = || ValueError::datetime_field(input);
    let lower = input.trim().to_ascii_lowercase();
    if lower == "allballs" {
        return Ok(0);
    }
    let mut f = Fields::default();
    let originals: Vec<&str> = input.split_whitespace().collect();
    for (i, chunk) in lower.split_whitespace().enumerate() {
        field(chunk, originals.get(i).copied().unwrap_or(chunk), &mut f).ok_or_else(syntax)?;
    }
    // A date before the time is read and dropped.
    if f.date.is_some() || !f.numbers.is_empty() {
        date_of(&mut f).ok_or_else(syntax)?;
    }
    let (mut hour, minute, second, micros) = f.time.ok_or_else(syntax)?;
    match f.meridian {
        Some(_) if hour > 12 || hour == 0 => return Err(range()),
        Some(false) if hour == 12 => hour = 0,
        Some(true) if hour < 12 => hour += 12,
        _ => {}
    }
    let total = ((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second)) * 1_000_000
        + i64::from(micros);
    if minute > 59 || second > 59 || total > 86_400_000_000 {
        return Err(range());
    }
    Ok(total)
}

/// The special input words; `None` for other input.
fn special(
    lower: &str,
    input: &str,
    type_name: &str,
    now: Option<Now>,
) -> Result<Option<(NaiveDateTime, Option<i32>)>, ValueError> {
    let midnight = |days: i64| -> Result<NaiveDateTime, ValueError> {
        let now = now.ok_or_else(|| relative(input))?;
        Ok(now.local.date().and_time(NaiveTime::MIN) + Duration::days(days))
    };
    Ok(Some(match lower {
        "epoch" => (chrono::DateTime::UNIX_EPOCH.naive_utc(), Some(0)),
        "now" => {
            let now = now.ok_or_else(|| relative(input))?;
            (now.local, Some(now.offset))
        }
        "today" => (midnight(0)?, None),
        "tomorrow" => (midnight(1)?, None),
        "yesterday" => (midnight(-1)?, None),
        "infinity" | "+infinity" | "-infinity" => {
            return Err(ValueError::of_kind(
                ValueErrorKind::NotSupported,
                format!("infinite values of type {type_name} are not supported"),
            ))
        }
        _ => return Ok(None),
    }))
}

fn relative(input: &str) -> ValueError {
    ValueError::of_kind(
        ValueErrorKind::NotSupported,
        format!("\"{input}\" is read only in SQL statements, not in COPY or parameters"),
    )
}

/// Reads one whitespace-separated chunk into `f`; `None` if it is not date/time input.
fn field(chunk: &str, original: &str, f: &mut Fields) -> Option<()> {
    let b = chunk.as_bytes();
    // `2024-03-05t10:00:00`: ISO's T between date and time.
    if let Some(t) = chunk.find('t') {
        if t > 0 && b[t - 1].is_ascii_digit() && b.get(t + 1).is_some_and(u8::is_ascii_digit) {
            field(&chunk[..t], &original[..t], f)?;
            return field(&chunk[t + 1..], &original[t + 1..], f);
        }
    }
    if chunk.contains(':') && b[0].is_ascii_digit() {
        // A time, perhaps with its zone attached (`10:00+02`, `10:00z`).
        let zone_at = chunk
            .char_indices()
            .skip(1)
            .find(|(_, c)| matches!(c, '+' | '-' | 'z' | 'a' | 'p'))
            .map(|(i, _)| i);
        let (time, rest) = match zone_at {
            Some(i) => chunk.split_at(i),
            None => (chunk, ""),
        };
        f.time.is_none().then_some(())?;
        f.time = Some(time_of(time)?);
        if !rest.is_empty() {
            return field(rest, &original[original.len() - rest.len()..], f);
        }
        return Some(());
    }
    if (b[0] == b'+' || b[0] == b'-') && b.len() > 1 && b[1].is_ascii_digit() {
        f.offset.is_none().then_some(())?;
        f.offset = Some(Zone::Fixed(offset_of(&chunk[1..], b[0] == b'-')?));
        return Some(());
    }
    if b[0].is_ascii_digit() {
        if b.iter().all(u8::is_ascii_digit) {
            if f.date.is_none() && f.month.is_none() && f.numbers.is_empty() && b.len() == 8 {
                f.date = Some(vec![
                    Part::Number(chunk[..4].into()),
                    Part::Number(chunk[4..6].into()),
                    Part::Number(chunk[6..].into()),
                ]);
            } else {
                f.numbers.push(chunk.into());
            }
            return Some(());
        }
        // A date with separators, its parts numbers or a month name.
        let separator = chunk.chars().find(|c| matches!(c, '-' | '/' | '.'))?;
        let parts: Vec<Part> = chunk
            .split(separator)
            .map(|p| {
                if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) {
                    Some(Part::Number(p.into()))
                } else {
                    month(p).map(Part::Month)
                }
            })
            .collect::<Option<_>>()?;
        (parts.len() == 3 && f.date.is_none()).then_some(())?;
        f.date = Some(parts);
        return Some(());
    }
    if let Some((m, rest)) = chunk
        .split_once('-')
        .and_then(|(name, rest)| Some((month(name)?, rest)))
    {
        // `Mar-05-2024`.
        let mut parts = vec![Part::Month(m)];
        for p in rest.split('-') {
            (!p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())).then_some(())?;
            parts.push(Part::Number(p.into()));
        }
        (parts.len() == 3 && f.date.is_none()).then_some(())?;
        f.date = Some(parts);
        return Some(());
    }
    if let Some(m) = month(chunk) {
        f.month.is_none().then_some(())?;
        f.month = Some(m);
        return Some(());
    }
    match chunk {
        "am" | "a.m." => f.meridian = Some(false),
        "pm" | "p.m." => f.meridian = Some(true),
        "bc" => f.bc = true,
        "ad" => {}
        "z" | "utc" | "gmt" | "zulu" | "ut" => f.offset = Some(Zone::Fixed(0)),
        _ if weekday(chunk) => {}
        _ if chunk.contains('/') => {
            f.offset = Some(Zone::Named(Tz::from_str(original).ok()?));
        }
        _ => return None,
    }
    Some(())
}

/// `h:mm[:ss[.ffffff]]`, rounded to microseconds.
fn time_of(text: &str) -> Option<(u32, u32, u32, u32)> {
    let mut parts = text.split(':');
    let number = |p: &str| -> Option<u32> {
        (!p.is_empty() && p.len() <= 2 && p.bytes().all(|c| c.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let hour = number(parts.next()?)?;
    let minute = number(parts.next()?)?;
    let (second, micros) = match parts.next() {
        None => (0, 0),
        Some(s) => {
            let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
            let second = number(whole)?;
            if !frac.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let mut micros: u32 = 0;
            for i in 0..6 {
                micros = micros * 10 + frac.as_bytes().get(i).map_or(0, |c| u32::from(c - b'0'));
            }
            if frac.as_bytes().get(6).is_some_and(|&c| c >= b'5') {
                micros += 1;
            }
            if micros == 1_000_000 {
                (second + 1, 0)
            } else {
                (second, micros)
            }
        }
    };
    parts
        .next()
        .is_none()
        .then_some((hour, minute, second, micros))
}

/// `hh`, `hhmm` or `hh:mm` of a zone offset, in seconds east of UTC.
fn offset_of(text: &str, negative: bool) -> Option<i32> {
    let digits = |p: &str| -> Option<i32> {
        (!p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (hours, minutes) = match text.split_once(':') {
        Some((h, m)) => (digits(h)?, digits(m)?),
        None if text.len() <= 2 => (digits(text)?, 0),
        None if text.len() == 4 => (digits(&text[..2])?, digits(&text[2..])?),
        None => return None,
    };
    (hours <= 15 && minutes < 60).then_some(())?;
    let seconds = hours * 3600 + minutes * 60;
    Some(if negative { -seconds } else { seconds })
}

/// Year, month, day and whether the year was written with two digits or fewer.
fn date_of(f: &mut Fields) -> Option<(i64, u32, u32, bool)> {
    let num = |p: &str| -> Option<i64> { p.parse().ok() };
    let year_of = |p: &str| -> Option<(i64, bool)> { Some((num(p)?, p.len() <= 2)) };
    if let Some(parts) = f.date.take() {
        f.numbers.is_empty().then_some(())?;
        let (y, m, d) = match parts.as_slice() {
            [Part::Number(a), Part::Number(b), Part::Number(c)] => {
                if a.len() >= 3 {
                    (year_of(a)?, num(b)?, num(c)?)
                } else {
                    // DateStyle MDY.
                    (year_of(c)?, num(a)?, num(b)?)
                }
            }
            [Part::Month(m), Part::Number(d), Part::Number(y)] => {
                (year_of(y)?, i64::from(*m), num(d)?)
            }
            [Part::Number(a), Part::Month(m), Part::Number(c)] => {
                if a.len() >= 3 {
                    (year_of(a)?, i64::from(*m), num(c)?)
                } else {
                    (year_of(c)?, i64::from(*m), num(a)?)
                }
            }
            _ => return None,
        };
        return Some((y.0, u32::try_from(m).ok()?, u32::try_from(d).ok()?, y.1));
    }
    let m = f.month?;
    let (day, year) = match f.numbers.as_slice() {
        [a, b] => {
            // The year is the one written with more than two digits, or else the second.
            if a.len() > 2 && b.len() <= 2 {
                (b.clone(), a.clone())
            } else {
                (a.clone(), b.clone())
            }
        }
        _ => return None,
    };
    let (y, two) = year_of(&year)?;
    Some((y, m, u32::try_from(num(&day)?).ok()?, two))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(input: &str) -> String {
        let (stamp, offset) = parse(input, "date", None).unwrap();
        format!("{stamp} {offset:?}")
    }

    #[test]
    fn postgresql_date_styles_are_read() {
        assert_eq!(ymd("March 5, 2024"), "2024-03-05 00:00:00 None");
        assert_eq!(ymd("5 Mar 2024"), "2024-03-05 00:00:00 None");
        assert_eq!(ymd("20240305"), "2024-03-05 00:00:00 None");
        assert_eq!(ymd("2024-3-5"), "2024-03-05 00:00:00 None");
        assert_eq!(ymd("3/5/2024"), "2024-03-05 00:00:00 None");
        assert_eq!(ymd("5-Mar-2024"), "2024-03-05 00:00:00 None");
        assert_eq!(ymd("Mar-05-2024"), "2024-03-05 00:00:00 None");
        assert_eq!(ymd("Tuesday, March 5, 24"), "2024-03-05 00:00:00 None");
        assert_eq!(ymd("1/8/99"), "1999-01-08 00:00:00 None");
        assert_eq!(ymd("0044-03-15 12:00 BC"), "-0043-03-15 12:00:00 None");
        assert_eq!(ymd("March 5, 2024 2:07 PM"), "2024-03-05 14:07:00 None");
        assert_eq!(
            ymd("2024-03-05T10:00:00+05:30"),
            "2024-03-05 10:00:00 Some(19800)"
        );
        assert_eq!(ymd("2024-03-05 10:00 UTC"), "2024-03-05 10:00:00 Some(0)");
    }

    #[test]
    fn nonsense_and_impossible_dates_are_refused() {
        let kind = |s: &str| parse(s, "date", None).unwrap_err().kind;
        assert_eq!(kind("March 32, 2024"), ValueErrorKind::DatetimeOverflow);
        assert_eq!(kind("2024-02-30"), ValueErrorKind::DatetimeOverflow);
        assert_eq!(
            kind("13:00 PM 2024-01-01"),
            ValueErrorKind::DatetimeOverflow
        );
        assert_eq!(kind("banana"), ValueErrorKind::InvalidDatetimeFormat);
        assert_eq!(kind("2024-03"), ValueErrorKind::InvalidDatetimeFormat);
        assert_eq!(kind("infinity"), ValueErrorKind::NotSupported);
        assert_eq!(kind("today"), ValueErrorKind::NotSupported);
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time("14:07:09.5").unwrap(), 50_829_500_000);
        assert_eq!(parse_time("2:07 PM").unwrap(), 50_820_000_000);
        assert_eq!(parse_time("24:00:00").unwrap(), 86_400_000_000);
        assert_eq!(parse_time("12:00 am").unwrap(), 0);
        assert_eq!(
            parse_time("25:00").unwrap_err().kind,
            ValueErrorKind::DatetimeOverflow
        );
    }
}
