//! PostgreSQL 15's template-pattern formatting functions ("Data Type Formatting
//! Functions", chapter 9.8 of its documentation) as plain Rust, for the SQL functions
//! `to_char`, `to_date`, `to_timestamp` and `to_number` to call.
//!
//! * [`format_datetime`]: `to_char(timestamp | timestamptz | date, text)`;
//! * [`format_interval`]: `to_char(interval, text)`;
//! * [`format_number`]: `to_char(numeric | integer | real | double precision, text)`;
//! * [`parse_date`] and [`parse_timestamp`]: `to_date(text, text)` and
//!   `to_timestamp(text, text)`;
//! * [`parse_number`]: `to_number(text, text)`.
//!
//! The answers are PostgreSQL's under the C locale, which is Henge's: English month and
//! day names (`TM` changes nothing but the padding), `.` as decimal point and `,` as
//! group separator, `L` a blank currency symbol. PostgreSQL's quirks are kept, since
//! clients compare answers: a number that overflows the template prints as `#`s, a float
//! is rounded to the template's digits but to no more than 15 (6 for `real`) significant
//! ones, `to_date` skips one input character per template character whether or not they
//! match. Errors carry PostgreSQL's SQLSTATE and wording.
//!
//! Template syntax, common to both kinds: a pattern is matched by the longest pattern
//! name at the current position (`MONTH` before `MON`); text between double quotes is
//! copied as it is (a backslash in it takes the next character literally), a backslash
//! before a double quote outside them gives the quote; any other character is copied.
//! Date/time patterns take the prefixes `FM` (no padding) and `TM` and the suffixes `TH`
//! and `th` (ordinal suffix, on numeric fields) and `SP` (ignored).
//!
//! Where this stops short of PostgreSQL: chrono's dates end in 262142, so `to_date` and
//! `to_timestamp` refuse later dates (which PostgreSQL takes up to 5874897 and 294276) as
//! out of range, and `to_number` refuses values of more than 38 digits (22003).

use std::fmt;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// An error as PostgreSQL reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The SQLSTATE code, e.g. `22007` (invalid datetime format).
    pub sqlstate: &'static str,
    /// The primary message, in PostgreSQL's words.
    pub message: String,
    /// The DETAIL line PostgreSQL adds, if any.
    pub detail: Option<String>,
    /// The HINT line PostgreSQL adds, if any.
    pub hint: Option<String>,
}

impl TemplateError {
    fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        TemplateError {
            sqlstate,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

/// The SQLSTATE codes this module raises.
mod sqlstate {
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const INVALID_TIME_ZONE_DISPLACEMENT: &str = "22009";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const SYNTAX_ERROR: &str = "42601";
}

type Result<T> = std::result::Result<T, TemplateError>;

/// The time zone of a `timestamptz` being formatted: the session zone's abbreviation at
/// that instant (`TZ`, `tz`) and its offset east of UTC in seconds (`TZH`, `TZM`, `OF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone<'a> {
    /// The abbreviation, e.g. `UTC`, `CEST` or `+0530`.
    pub abbreviation: &'a str,
    /// Seconds east of UTC.
    pub offset_seconds: i32,
}

/// A value for [`format_number`], in the form its SQL type gives it: PostgreSQL formats
/// each type its own way (floats are rounded as C's `printf` rounds, ties to even, a
/// `numeric` half away from zero; `integer` and `bigint` differ with `EEEE` and `V`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A `numeric`: `unscaled × 10^-scale`.
    Decimal { unscaled: i128, scale: i8 },
    /// A `smallint` or `integer`.
    Int4(i32),
    /// A `bigint`.
    Int8(i64),
    /// A `real`.
    Real(f32),
    /// A `double precision`.
    Double(f64),
}

/// What [`parse_timestamp`] read: the wall-clock time, and the offset east of UTC in
/// seconds if the text gave one (`TZH`, `TZM`); without one the time is in the session
/// zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedTimestamp {
    /// The date and time as written (fields beyond a month's end carried over).
    pub local: NaiveDateTime,
    /// The offset the text gave, in seconds east of UTC.
    pub offset_seconds: Option<i32>,
}

/// `to_char(timestamp, template)`; with `zone`, `to_char(timestamptz, template)` of the
/// instant whose wall-clock time in the session zone is `t`. `None` when PostgreSQL
/// answers NULL (an empty template).
pub fn format_datetime(
    template: &str,
    t: NaiveDateTime,
    zone: Option<Zone>,
) -> Result<Option<String>> {
    if template.is_empty() {
        return Ok(None);
    }
    let nodes = parse_template(template, DATETIME_PATTERNS, true);
    render_datetime(&nodes, &Fields::of_timestamp(t, zone)).map(Some)
}

/// `to_char(interval, template)` of the interval `months`, `days`, `micros`. `None` when
/// PostgreSQL answers NULL (an empty template). Patterns tied to calendar dates (names,
/// `D`, eras, zones) are refused as PostgreSQL refuses them.
pub fn format_interval(
    template: &str,
    months: i32,
    days: i32,
    micros: i64,
) -> Result<Option<String>> {
    if template.is_empty() {
        return Ok(None);
    }
    let nodes = parse_template(template, DATETIME_PATTERNS, true);
    render_datetime(&nodes, &Fields::of_interval(months, days, micros)).map(Some)
}

/// `to_char(number, template)`.
pub fn format_number(template: &str, value: &Number) -> Result<String> {
    if template.is_empty() {
        return Ok(String::new());
    }
    let nodes = parse_template(template, NUMBER_PATTERNS, false);
    let mut format = NumberFormat::of(&nodes)?;
    let digits = number_digits(value, &mut format)?;
    render_number(&nodes, format, &digits)
}

/// `to_date(text, template)`.
pub fn parse_date(text: &str, template: &str) -> Result<NaiveDate> {
    let fields = read_datetime(text, template)?;
    let out_of_range = || {
        TemplateError::new(
            sqlstate::DATETIME_FIELD_OVERFLOW,
            format!("date out of range: \"{text}\""),
        )
    };
    if !calendar::valid_julian(fields.year, fields.month) {
        return Err(out_of_range());
    }
    let julian = calendar::julian_day(fields.year, fields.month, fields.day);
    if !(0..calendar::DATE_END_JULIAN).contains(&julian) {
        return Err(out_of_range());
    }
    calendar::date_of_julian(julian).ok_or_else(out_of_range)
}

/// `to_timestamp(text, template)`: the time read, for the caller to place in the session
/// zone when the text gave no offset (and to check against PostgreSQL's range again
/// then). `FF1`–`FF5` round the fraction as PostgreSQL does, ties away from 2000-01-01
/// UTC; without an offset read, which side of it is judged from the wall-clock time.
pub fn parse_timestamp(text: &str, template: &str) -> Result<ParsedTimestamp> {
    let fields = read_datetime(text, template)?;
    let out_of_range =
        || TemplateError::new(sqlstate::DATETIME_FIELD_OVERFLOW, "timestamp out of range");
    if !calendar::valid_julian(fields.year, fields.month) {
        return Err(out_of_range());
    }
    let julian = calendar::julian_day(fields.year, fields.month, fields.day);
    let date = calendar::date_of_julian(julian).ok_or_else(out_of_range)?;
    let time = NaiveTime::from_hms_micro_opt(
        fields.hour as u32,
        fields.minute as u32,
        fields.second as u32,
        fields.micros as u32,
    )
    .ok_or_else(out_of_range)?;
    let local = date.and_time(time);
    let utc = local
        .checked_sub_signed(Duration::seconds(fields.offset.unwrap_or(0).into()))
        .filter(|utc| calendar::valid_timestamp(*utc))
        .ok_or_else(out_of_range)?;
    let local = round_fraction(local, utc, fields.fraction_digits).ok_or_else(out_of_range)?;
    Ok(ParsedTimestamp {
        local,
        offset_seconds: fields.offset,
    })
}

/// `to_number(text, template)`: the value as `unscaled × 10^-scale`, `None` when
/// PostgreSQL answers NULL (an empty template). Values beyond 38 digits are refused with
/// 22003, which PostgreSQL (whose `numeric` holds more) would not.
pub fn parse_number(text: &str, template: &str) -> Result<Option<(i128, i8)>> {
    if template.is_empty() {
        return Ok(None);
    }
    let nodes = parse_template(template, NUMBER_PATTERNS, false);
    let format = NumberFormat::of(&nodes)?;
    read_number(&nodes, &format, text).map(Some)
}

// ---------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------

/// Upper, capitalised or lower case, as a pattern's spelling asks for its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Upper,
    Capital,
    Lower,
}

impl Case {
    /// `word`, given capitalised, in this case.
    fn apply(self, word: &str) -> String {
        match self {
            Case::Upper => word.to_ascii_uppercase(),
            Case::Capital => word.to_string(),
            Case::Lower => word.to_ascii_lowercase(),
        }
    }
}

/// How `to_date` treats a template character that is no pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    /// A letter, digit, other character, or anything quoted: skips one input character.
    Plain,
    /// ASCII punctuation: matches one separator or space, or nothing.
    Separator,
    /// White space: as a separator.
    Space,
}

/// A pattern of a template with its modifiers.
#[derive(Debug, Clone, Copy)]
struct Pattern<K> {
    key: K,
    /// The pattern as written (`YYYY`, `yyyy`, `Month`), which messages quote.
    name: &'static str,
    /// `FM`: no padding, and variable-width input.
    fill: bool,
    /// `TM`: localized names, which are not padded.
    translate: bool,
    /// `TH` (`Some(Case::Upper)`) or `th`: ordinal suffix.
    ordinal: Option<Case>,
}

/// An element of a parsed template.
#[derive(Debug, Clone, Copy)]
enum Node<K> {
    Pattern(Pattern<K>),
    Text(char, TextKind),
}

/// Splits `template` into patterns (`keywords`) and text. Date/time templates take the
/// `FM`/`TM` prefixes and `TH`/`th`/`SP` suffixes and know separators.
fn parse_template<K: Copy>(
    template: &str,
    keywords: &'static [(&'static str, K)],
    datetime: bool,
) -> Vec<Node<K>> {
    let mut nodes = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let (mut fill, mut translate) = (false, false);
        if datetime {
            if let Some(after) = strip_either(rest, "FM", "fm") {
                (fill, rest) = (true, after);
            } else if let Some(after) = strip_either(rest, "TM", "tm") {
                (translate, rest) = (true, after);
            }
        }
        let keyword = keywords
            .iter()
            .filter(|(name, _)| rest.starts_with(name))
            .max_by_key(|(name, _)| name.len());
        match keyword {
            Some(&(name, key)) => {
                rest = &rest[name.len()..];
                let mut ordinal = None;
                if datetime {
                    (ordinal, rest) = parse_suffix(rest);
                }
                nodes.push(Node::Pattern(Pattern {
                    key,
                    name,
                    fill,
                    translate,
                    ordinal,
                }));
            }
            None => rest = parse_text(rest, datetime, &mut nodes),
        }
    }
    nodes
}

fn strip_either<'a>(text: &'a str, upper: &str, lower: &str) -> Option<&'a str> {
    text.strip_prefix(upper)
        .or_else(|| text.strip_prefix(lower))
}

/// The `TH`, `th` or `SP` suffix at the start of `rest`, and what follows it.
fn parse_suffix(rest: &str) -> (Option<Case>, &str) {
    if let Some(after) = rest.strip_prefix("TH") {
        (Some(Case::Upper), after)
    } else if let Some(after) = rest.strip_prefix("th") {
        (Some(Case::Lower), after)
    } else {
        (None, rest.strip_prefix("SP").unwrap_or(rest))
    }
}

/// Adds the text at the start of `rest` (a character, or a quoted string) to `nodes`;
/// returns what follows it.
fn parse_text<'a, K>(rest: &'a str, datetime: bool, nodes: &mut Vec<Node<K>>) -> &'a str {
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            let literal = match c {
                '"' => return chars.as_str(),
                '\\' => chars.clone().next().map_or(c, |next| {
                    chars.next();
                    next
                }),
                _ => c,
            };
            nodes.push(Node::Text(literal, TextKind::Plain));
        }
        return chars.as_str();
    }
    // Outside quotes a backslash only escapes a double quote.
    let rest = if rest.starts_with("\\\"") {
        &rest[1..]
    } else {
        rest
    };
    let mut chars = rest.chars();
    let Some(c) = chars.next() else {
        return rest;
    };
    let kind = if datetime && is_separator(c) {
        TextKind::Separator
    } else if is_space(c) {
        TextKind::Space
    } else {
        TextKind::Plain
    };
    nodes.push(Node::Text(c, kind));
    chars.as_str()
}

/// C's `isspace` in the C locale.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// ASCII punctuation, which `to_date` takes as a separator.
fn is_separator(c: char) -> bool {
    c.is_ascii_graphic() && !c.is_ascii_alphanumeric()
}

// ---------------------------------------------------------------------------------
// Date/time patterns
// ---------------------------------------------------------------------------------

/// A date/time pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dt {
    /// `AM`, `PM`, `A.M.`, `P.M.` and their lower case: which one is written depends on
    /// the hour only.
    Meridiem { dots: bool, case: Case },
    /// `AD`, `BC`, `A.D.`, `B.C.` and their lower case.
    Era { dots: bool, case: Case },
    /// `HH`, `HH12`.
    Hour12,
    /// `HH24`.
    Hour24,
    /// `MI`.
    Minute,
    /// `SS`.
    Second,
    /// `MS`.
    Millisecond,
    /// `US`.
    Microsecond,
    /// `FF1` to `FF6`: that many fractional digits.
    Fraction(u32),
    /// `SSSS`, `SSSSS`.
    SecondOfDay,
    /// `TZ`, `tz`.
    ZoneName(Case),
    /// `TZH`.
    ZoneHour,
    /// `TZM`.
    ZoneMinute,
    /// `OF`.
    ZoneOffset,
    /// `Y,YYY`.
    YearWithComma,
    /// `YYYY`, `YYY`, `YY`, `Y`: the last that many digits.
    Year(u32),
    /// `IYYY`, `IYY`, `IY`, `I`.
    IsoYear(u32),
    /// `MONTH`, `Month`, `month`.
    MonthName(Case),
    /// `MON`, `Mon`, `mon`.
    MonthAbbreviation(Case),
    /// `MM`.
    Month,
    /// `DAY`, `Day`, `day`.
    DayName(Case),
    /// `DY`, `Dy`, `dy`.
    DayAbbreviation(Case),
    /// `DDD`.
    DayOfYear,
    /// `IDDD`.
    IsoDayOfYear,
    /// `DD`.
    DayOfMonth,
    /// `D`: 1 for Sunday.
    DayOfWeek,
    /// `ID`: 1 for Monday.
    IsoDayOfWeek,
    /// `W`.
    WeekOfMonth,
    /// `WW`.
    WeekOfYear,
    /// `IW`.
    IsoWeek,
    /// `CC`.
    Century,
    /// `J`.
    JulianDay,
    /// `Q`.
    Quarter,
    /// `RM`, `rm`.
    RomanMonth(Case),
    /// `FX`: exact matching in `to_date` from here on.
    FixedFormat,
}

/// Which calendar a pattern's field belongs to; `to_date` refuses mixing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum DateMode {
    #[default]
    None,
    Gregorian,
    IsoWeek,
}

impl Dt {
    /// Whether `to_date` reads the field as digits (so that a field before it is read
    /// with its fixed width).
    fn is_digits(self) -> bool {
        !matches!(
            self,
            Dt::Meridiem { .. }
                | Dt::Era { .. }
                | Dt::ZoneName(_)
                | Dt::ZoneHour
                | Dt::ZoneOffset
                | Dt::MonthName(_)
                | Dt::MonthAbbreviation(_)
                | Dt::DayName(_)
                | Dt::DayAbbreviation(_)
                | Dt::RomanMonth(_)
                | Dt::FixedFormat
        )
    }

    fn mode(self) -> DateMode {
        match self {
            Dt::DayOfYear
            | Dt::DayOfMonth
            | Dt::DayOfWeek
            | Dt::Month
            | Dt::MonthName(_)
            | Dt::MonthAbbreviation(_)
            | Dt::RomanMonth(_)
            | Dt::WeekOfYear
            | Dt::WeekOfMonth
            | Dt::YearWithComma
            | Dt::Year(_) => DateMode::Gregorian,
            Dt::IsoDayOfYear | Dt::IsoDayOfWeek | Dt::IsoWeek | Dt::IsoYear(_) => DateMode::IsoWeek,
            _ => DateMode::None,
        }
    }

    /// Whether the pattern has no meaning for an interval.
    fn is_calendar_only(self) -> bool {
        matches!(
            self,
            Dt::Era { .. }
                | Dt::MonthName(_)
                | Dt::MonthAbbreviation(_)
                | Dt::DayName(_)
                | Dt::DayAbbreviation(_)
                | Dt::DayOfWeek
                | Dt::IsoDayOfWeek
                | Dt::ZoneName(_)
                | Dt::ZoneHour
                | Dt::ZoneMinute
                | Dt::ZoneOffset
        )
    }

    /// Whether `TH` adds an ordinal suffix to the field in `to_char`.
    fn takes_ordinal(self) -> bool {
        self.is_digits() && self != Dt::ZoneMinute
    }
}

const fn meridiem(dots: bool, case: Case) -> Dt {
    Dt::Meridiem { dots, case }
}

const fn era(dots: bool, case: Case) -> Dt {
    Dt::Era { dots, case }
}

/// The date/time patterns by name; where one name starts another, the longer is taken.
const DATETIME_PATTERNS: &[(&str, Dt)] = &[
    ("A.D.", era(true, Case::Upper)),
    ("A.M.", meridiem(true, Case::Upper)),
    ("AD", era(false, Case::Upper)),
    ("AM", meridiem(false, Case::Upper)),
    ("B.C.", era(true, Case::Upper)),
    ("BC", era(false, Case::Upper)),
    ("CC", Dt::Century),
    ("DAY", Dt::DayName(Case::Upper)),
    ("DDD", Dt::DayOfYear),
    ("DD", Dt::DayOfMonth),
    ("DY", Dt::DayAbbreviation(Case::Upper)),
    ("Day", Dt::DayName(Case::Capital)),
    ("Dy", Dt::DayAbbreviation(Case::Capital)),
    ("D", Dt::DayOfWeek),
    ("FF1", Dt::Fraction(1)),
    ("FF2", Dt::Fraction(2)),
    ("FF3", Dt::Fraction(3)),
    ("FF4", Dt::Fraction(4)),
    ("FF5", Dt::Fraction(5)),
    ("FF6", Dt::Fraction(6)),
    ("FX", Dt::FixedFormat),
    ("HH24", Dt::Hour24),
    ("HH12", Dt::Hour12),
    ("HH", Dt::Hour12),
    ("IDDD", Dt::IsoDayOfYear),
    ("ID", Dt::IsoDayOfWeek),
    ("IW", Dt::IsoWeek),
    ("IYYY", Dt::IsoYear(4)),
    ("IYY", Dt::IsoYear(3)),
    ("IY", Dt::IsoYear(2)),
    ("I", Dt::IsoYear(1)),
    ("J", Dt::JulianDay),
    ("MI", Dt::Minute),
    ("MM", Dt::Month),
    ("MONTH", Dt::MonthName(Case::Upper)),
    ("MON", Dt::MonthAbbreviation(Case::Upper)),
    ("MS", Dt::Millisecond),
    ("Month", Dt::MonthName(Case::Capital)),
    ("Mon", Dt::MonthAbbreviation(Case::Capital)),
    ("OF", Dt::ZoneOffset),
    ("P.M.", meridiem(true, Case::Upper)),
    ("PM", meridiem(false, Case::Upper)),
    ("Q", Dt::Quarter),
    ("RM", Dt::RomanMonth(Case::Upper)),
    ("SSSSS", Dt::SecondOfDay),
    ("SSSS", Dt::SecondOfDay),
    ("SS", Dt::Second),
    ("TZH", Dt::ZoneHour),
    ("TZM", Dt::ZoneMinute),
    ("TZ", Dt::ZoneName(Case::Upper)),
    ("US", Dt::Microsecond),
    ("WW", Dt::WeekOfYear),
    ("W", Dt::WeekOfMonth),
    ("Y,YYY", Dt::YearWithComma),
    ("YYYY", Dt::Year(4)),
    ("YYY", Dt::Year(3)),
    ("YY", Dt::Year(2)),
    ("Y", Dt::Year(1)),
    ("a.d.", era(true, Case::Lower)),
    ("a.m.", meridiem(true, Case::Lower)),
    ("ad", era(false, Case::Lower)),
    ("am", meridiem(false, Case::Lower)),
    ("b.c.", era(true, Case::Lower)),
    ("bc", era(false, Case::Lower)),
    ("cc", Dt::Century),
    ("day", Dt::DayName(Case::Lower)),
    ("ddd", Dt::DayOfYear),
    ("dd", Dt::DayOfMonth),
    ("dy", Dt::DayAbbreviation(Case::Lower)),
    ("d", Dt::DayOfWeek),
    ("ff1", Dt::Fraction(1)),
    ("ff2", Dt::Fraction(2)),
    ("ff3", Dt::Fraction(3)),
    ("ff4", Dt::Fraction(4)),
    ("ff5", Dt::Fraction(5)),
    ("ff6", Dt::Fraction(6)),
    ("fx", Dt::FixedFormat),
    ("hh24", Dt::Hour24),
    ("hh12", Dt::Hour12),
    ("hh", Dt::Hour12),
    ("iddd", Dt::IsoDayOfYear),
    ("id", Dt::IsoDayOfWeek),
    ("iw", Dt::IsoWeek),
    ("iyyy", Dt::IsoYear(4)),
    ("iyy", Dt::IsoYear(3)),
    ("iy", Dt::IsoYear(2)),
    ("i", Dt::IsoYear(1)),
    ("j", Dt::JulianDay),
    ("mi", Dt::Minute),
    ("mm", Dt::Month),
    ("month", Dt::MonthName(Case::Lower)),
    ("mon", Dt::MonthAbbreviation(Case::Lower)),
    ("ms", Dt::Millisecond),
    ("of", Dt::ZoneOffset),
    ("p.m.", meridiem(true, Case::Lower)),
    ("pm", meridiem(false, Case::Lower)),
    ("q", Dt::Quarter),
    ("rm", Dt::RomanMonth(Case::Lower)),
    ("sssss", Dt::SecondOfDay),
    ("ssss", Dt::SecondOfDay),
    ("ss", Dt::Second),
    ("tzh", Dt::ZoneHour),
    ("tzm", Dt::ZoneMinute),
    ("tz", Dt::ZoneName(Case::Lower)),
    ("us", Dt::Microsecond),
    ("ww", Dt::WeekOfYear),
    ("w", Dt::WeekOfMonth),
    ("y,yyy", Dt::YearWithComma),
    ("yyyy", Dt::Year(4)),
    ("yyy", Dt::Year(3)),
    ("yy", Dt::Year(2)),
    ("y", Dt::Year(1)),
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Roman month numbers from December down, the order in which `to_date` tries them
/// (so that `xii` is tried before `xi` and `x`).
const ROMAN_MONTHS_DOWN: [&str; 12] = [
    "XII", "XI", "X", "IX", "VIII", "VII", "VI", "V", "IV", "III", "II", "I",
];

// ---------------------------------------------------------------------------------
// to_char for timestamps and intervals
// ---------------------------------------------------------------------------------

/// The fields `to_char` formats: a timestamp's, or an interval's (whose fields may be
/// negative and beyond their calendar ranges, as PostgreSQL then computes with them, in
/// 32 bits for the date's).
struct Fields<'a> {
    /// The year, 0 being 1 BC; an interval's whole years.
    year: i32,
    /// 1–12; an interval's months beyond whole years.
    month: i32,
    day: i32,
    hour: i64,
    minute: i64,
    second: i64,
    micros: i64,
    /// 1 on January 1st; an interval's total days at 30 a month.
    day_of_year: i32,
    /// 0 for Sunday.
    weekday: i32,
    /// The zone's abbreviation, for `timestamptz` only.
    zone_name: Option<&'a str>,
    /// Seconds east of UTC (0 for `timestamp`).
    offset: i64,
    interval: bool,
}

impl<'a> Fields<'a> {
    fn of_timestamp(t: NaiveDateTime, zone: Option<Zone<'a>>) -> Self {
        Fields {
            year: t.year(),
            month: t.month() as i32,
            day: t.day() as i32,
            hour: t.hour().into(),
            minute: t.minute().into(),
            second: t.second().into(),
            micros: (t.nanosecond() / 1000).min(999_999).into(),
            day_of_year: t.ordinal() as i32,
            weekday: t.weekday().num_days_from_sunday() as i32,
            zone_name: zone.map(|z| z.abbreviation),
            offset: zone.map_or(0, |z| z.offset_seconds.into()),
            interval: false,
        }
    }

    fn of_interval(months: i32, days: i32, micros: i64) -> Fields<'static> {
        let (year, month) = (months / 12, months % 12);
        Fields {
            year,
            month,
            day: days,
            hour: micros / 3_600_000_000,
            minute: micros / 60_000_000 % 60,
            second: micros / 1_000_000 % 60,
            micros: micros % 1_000_000,
            day_of_year: (year * 12 + month).wrapping_mul(30).wrapping_add(days),
            weekday: 0,
            zone_name: None,
            offset: 0,
            interval: true,
        }
    }

    /// The year as written: BC years count up from 1 (intervals' as they are).
    fn shown_year(&self, year: i32) -> i32 {
        if !self.interval && year <= 0 {
            1 - year
        } else {
            year
        }
    }

    fn iso_year(&self) -> i32 {
        calendar::iso_year(self.year, self.month, self.day)
    }
}

fn render_datetime(nodes: &[Node<Dt>], fields: &Fields) -> Result<String> {
    let mut out = String::new();
    for node in nodes {
        match node {
            Node::Text(c, _) => out.push(*c),
            Node::Pattern(pattern) => {
                if fields.interval && pattern.key.is_calendar_only() {
                    return Err(TemplateError::new(
                        sqlstate::INVALID_DATETIME_FORMAT,
                        "invalid format specification for an interval value",
                    )
                    .with_hint("Intervals are not tied to specific calendar dates."));
                }
                let text = datetime_field(pattern, fields);
                out.push_str(&text);
                match pattern.ordinal {
                    Some(case) if pattern.key.takes_ordinal() && !text.is_empty() => {
                        out.push_str(ordinal_suffix(&text, case)?);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

/// The text of one pattern (without its ordinal suffix).
fn datetime_field(pattern: &Pattern<Dt>, f: &Fields) -> String {
    let fill = pattern.fill;
    // `width` digits (sign not counted), or as many as needed in fill mode.
    let padded = |value: i64, width: usize| {
        zero_pad(value, width_unless(fill, width + usize::from(value < 0)))
    };
    // `width` characters, sign included (C's `%0*d`).
    let fixed = |value: i64, width: usize| zero_pad(value, width_unless(fill, width));
    match pattern.key {
        Dt::Meridiem { dots, case } => {
            let pm = f.hour % 24 >= 12;
            let text = match (dots, pm) {
                (false, false) => "AM",
                (false, true) => "PM",
                (true, false) => "A.M.",
                (true, true) => "P.M.",
            };
            case.apply(text)
        }
        Dt::Era { dots, case } => {
            let text = match (dots, f.year <= 0) {
                (false, false) => "AD",
                (false, true) => "BC",
                (true, false) => "A.D.",
                (true, true) => "B.C.",
            };
            case.apply(text)
        }
        Dt::Hour12 => {
            let hour = f.hour % 12;
            padded(if hour == 0 { 12 } else { hour }, 2)
        }
        Dt::Hour24 => padded(f.hour, 2),
        Dt::Minute => padded(f.minute, 2),
        Dt::Second => padded(f.second, 2),
        Dt::Millisecond => zero_pad(f.micros / 1000, 3),
        Dt::Microsecond => zero_pad(f.micros, 6),
        Dt::Fraction(digits) => zero_pad(f.micros / 10i64.pow(6 - digits), digits as usize),
        Dt::SecondOfDay => (f.hour * 3600 + f.minute * 60 + f.second).to_string(),
        Dt::ZoneName(case) => f.zone_name.map_or_else(String::new, |name| match case {
            Case::Lower => name.to_ascii_lowercase(),
            _ => name.to_string(),
        }),
        Dt::ZoneHour => format!("{}{:02}", offset_sign(f.offset), f.offset.abs() / 3600),
        Dt::ZoneMinute => format!("{:02}", f.offset.abs() % 3600 / 60),
        Dt::ZoneOffset => {
            let (hours, rest) = (f.offset.abs() / 3600, f.offset.abs() % 3600);
            let mut text = format!("{}{}", offset_sign(f.offset), fixed(hours, 2));
            if rest != 0 {
                text.push_str(&format!(":{:02}", rest / 60));
            }
            text
        }
        Dt::YearWithComma => {
            let year = f.shown_year(f.year);
            let thousands = year / 1000;
            format!(
                "{thousands},{}",
                zero_pad((year - thousands * 1000).into(), 3)
            )
        }
        Dt::Year(digits) => year_digits(f.shown_year(f.year), f, digits, fill),
        Dt::IsoYear(digits) => year_digits(f.shown_year(f.iso_year()), f, digits, fill),
        Dt::MonthName(case) | Dt::MonthAbbreviation(case) if (1..=12).contains(&f.month) => {
            let name = MONTHS[(f.month - 1) as usize];
            match pattern.key {
                Dt::MonthName(_) => padded_name(case.apply(name), fill || pattern.translate),
                _ => case.apply(&name[..3]),
            }
        }
        Dt::MonthName(_) | Dt::MonthAbbreviation(_) => String::new(),
        Dt::DayName(case) | Dt::DayAbbreviation(case) => {
            let name = DAYS[f.weekday.rem_euclid(7) as usize];
            match pattern.key {
                Dt::DayName(_) => padded_name(case.apply(name), fill || pattern.translate),
                _ => case.apply(&name[..3]),
            }
        }
        Dt::Month => padded(f.month.into(), 2),
        Dt::DayOfYear => fixed(f.day_of_year.into(), 3),
        Dt::IsoDayOfYear => fixed(calendar::iso_day_of_year(f.year, f.month, f.day).into(), 3),
        Dt::DayOfMonth => fixed(f.day.into(), 2),
        Dt::DayOfWeek => (f.weekday + 1).to_string(),
        Dt::IsoDayOfWeek => (if f.weekday == 0 { 7 } else { f.weekday }).to_string(),
        Dt::WeekOfMonth => (f.day.wrapping_sub(1) / 7 + 1).to_string(),
        Dt::WeekOfYear => fixed((f.day_of_year.wrapping_sub(1) / 7 + 1).into(), 2),
        Dt::IsoWeek => fixed(calendar::iso_week(f.year, f.month, f.day).into(), 2),
        Dt::Century => {
            let century = if f.interval {
                f.year / 100
            } else if f.year > 0 {
                (f.year - 1) / 100 + 1
            } else {
                f.year / 100 - 1
            };
            if (-99..=99).contains(&century) {
                padded(century.into(), 2)
            } else {
                century.to_string()
            }
        }
        Dt::JulianDay => calendar::julian_day(f.year, f.month, f.day).to_string(),
        Dt::Quarter if f.month == 0 => String::new(),
        Dt::Quarter => ((f.month - 1) / 3 + 1).to_string(),
        Dt::RomanMonth(case) => roman_month(f).map_or_else(String::new, |numeral| {
            let numeral = case.apply(numeral);
            if fill {
                numeral
            } else {
                format!("{numeral:<4}")
            }
        }),
        Dt::FixedFormat => String::new(),
    }
}

fn width_unless(fill: bool, width: usize) -> usize {
    if fill {
        0
    } else {
        width
    }
}

fn offset_sign(offset: i64) -> char {
    if offset >= 0 {
        '+'
    } else {
        '-'
    }
}

/// A month or day name, blank-padded to 9 characters unless `unpadded`.
fn padded_name(name: String, unpadded: bool) -> String {
    if unpadded {
        name
    } else {
        format!("{name:<9}")
    }
}

/// The last `digits` digits of `year` (all of them for 4), zero-padded to that many,
/// one more when the calendar year is negative (as an interval's may be).
fn year_digits(year: i32, f: &Fields, digits: u32, fill: bool) -> String {
    let value = if digits >= 4 {
        year
    } else {
        year % 10i32.pow(digits)
    };
    let negative = f.shown_year(f.year) < 0;
    let width = if digits == 1 {
        1
    } else {
        digits as usize + usize::from(negative)
    };
    zero_pad(value.into(), width_unless(fill, width))
}

/// The Roman numeral of the month; for an interval, of its months beyond whole years
/// (counted back from December when negative, December for whole years).
fn roman_month(f: &Fields) -> Option<&'static str> {
    let month = match f.month {
        0 if f.year == 0 => return None,
        0 if f.year >= 0 => 12,
        0 => 1,
        m if m < 0 => 13 + m,
        m => m,
    };
    ROMAN_MONTHS_DOWN
        .get(usize::try_from(12 - month).ok()?)
        .copied()
}

/// `value` as C's `%0*d` writes it: zero-padded to `width` characters, sign included.
fn zero_pad(value: i64, width: usize) -> String {
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    let zeros = width.saturating_sub(digits.len() + sign.len());
    format!("{sign}{}{digits}", "0".repeat(zeros))
}

/// The English ordinal suffix of the number written as `number` ("1" → "st").
fn ordinal_suffix(number: &str, case: Case) -> Result<&'static str> {
    let bytes = number.as_bytes();
    let last = match bytes.last() {
        Some(&b) if b.is_ascii_digit() => b,
        _ => {
            return Err(TemplateError::new(
                sqlstate::INVALID_TEXT_REPRESENTATION,
                format!("\"{number}\" is not a number"),
            ))
        }
    };
    let teen = bytes.len() > 1 && bytes[bytes.len() - 2] == b'1';
    let index = match last {
        _ if teen => 3,
        b'1' => 0,
        b'2' => 1,
        b'3' => 2,
        _ => 3,
    };
    Ok(match case {
        Case::Lower => ["st", "nd", "rd", "th"][index],
        _ => ["ST", "ND", "RD", "TH"][index],
    })
}

/// PostgreSQL's calendar arithmetic on Julian day numbers, which it also applies to an
/// interval's fields (giving the numbers its `to_char` shows for `J` or `IW`). It
/// computes in 32-bit integers, wrapping around, as PostgreSQL does (which only shows
/// for intervals of absurd size).
mod calendar {
    use chrono::{NaiveDate, NaiveDateTime};

    /// The Julian day of 5874898-01-01, where PostgreSQL's dates end.
    pub const DATE_END_JULIAN: i32 = 2_147_483_494;
    /// The Julian day of 0001-01-01 less one: chrono counts days from it.
    const CE_JULIAN: i32 = 1_721_425;

    /// The Julian day of a date, months and days beyond their ranges carried over.
    pub fn julian_day(year: i32, month: i32, day: i32) -> i32 {
        let (y, m) = if month > 2 {
            (year.wrapping_add(4800), month.wrapping_add(1))
        } else {
            (year.wrapping_add(4799), month.wrapping_add(13))
        };
        let century = y / 100;
        y.wrapping_mul(365)
            .wrapping_sub(32167)
            .wrapping_add(y / 4 - century + century / 4)
            .wrapping_add(m.wrapping_mul(7834) / 256)
            .wrapping_add(day)
    }

    /// The day of the week of a Julian day, 0 for Sunday.
    pub fn weekday(julian: i32) -> i32 {
        julian.wrapping_add(1).rem_euclid(7)
    }

    /// The date of a Julian day, if chrono holds it.
    pub fn date_of_julian(julian: i32) -> Option<NaiveDate> {
        NaiveDate::from_num_days_from_ce_opt(julian.checked_sub(CE_JULIAN)?)
    }

    /// Whether a year and month lie within PostgreSQL's Julian-day range
    /// (4714-11 BC to 5874898-05).
    pub fn valid_julian(year: i32, month: i32) -> bool {
        (year > -4713 || (year == -4713 && month >= 11))
            && (year < 5_874_898 || (year == 5_874_898 && month < 6))
    }

    /// Whether a UTC time lies within PostgreSQL's timestamps, which start at
    /// 4714-11-24 BC (and end in 294276 AD, beyond chrono's last year).
    pub fn valid_timestamp(t: NaiveDateTime) -> bool {
        date_of_julian(0)
            .and_then(|first| first.and_hms_opt(0, 0, 0))
            .is_some_and(|first| first <= t)
    }

    /// The Julian day of the Monday starting ISO week 1 of `year`.
    fn first_monday(year: i32) -> i32 {
        let fourth = julian_day(year, 1, 4);
        fourth.wrapping_sub(weekday(fourth.wrapping_sub(1)))
    }

    /// The Julian day of the Monday starting ISO week `week` of `year`.
    pub fn iso_week_start(year: i32, week: i32) -> i32 {
        week.wrapping_sub(1)
            .wrapping_mul(7)
            .wrapping_add(first_monday(year))
    }

    /// Weeks from the Monday `start` to the day `julian`, plus one.
    fn week_from(start: i32, julian: i32) -> i32 {
        julian.wrapping_sub(start) / 7 + 1
    }

    /// The ISO week number of a date.
    pub fn iso_week(year: i32, month: i32, day: i32) -> i32 {
        let julian = julian_day(year, month, day);
        let mut start = first_monday(year);
        if julian < start {
            start = first_monday(year.wrapping_sub(1));
        }
        let week = week_from(start, julian);
        let next_start = first_monday(year.wrapping_add(1));
        if week >= 52 && julian >= next_start {
            week_from(next_start, julian)
        } else {
            week
        }
    }

    /// The ISO year of a date.
    pub fn iso_year(year: i32, month: i32, day: i32) -> i32 {
        let julian = julian_day(year, month, day);
        let mut iso_year = year;
        if julian < first_monday(iso_year) {
            iso_year = iso_year.wrapping_sub(1);
        }
        let week = week_from(first_monday(iso_year), julian);
        if week >= 52 && julian >= first_monday(iso_year.wrapping_add(1)) {
            iso_year.wrapping_add(1)
        } else {
            iso_year
        }
    }

    /// The day of the ISO year of a date, 1 on the Monday of week 1.
    pub fn iso_day_of_year(year: i32, month: i32, day: i32) -> i32 {
        let start = first_monday(iso_year(year, month, day));
        julian_day(year, month, day)
            .wrapping_sub(start)
            .wrapping_add(1)
    }

    pub fn is_leap(year: i32) -> bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// The days of the months before each month (and of the year, last).
    pub fn days_before_month(year: i32) -> [i32; 13] {
        let leap = i32::from(is_leap(year));
        [
            0,
            31,
            59 + leap,
            90 + leap,
            120 + leap,
            151 + leap,
            181 + leap,
            212 + leap,
            243 + leap,
            273 + leap,
            304 + leap,
            334 + leap,
            365 + leap,
        ]
    }
}

// ---------------------------------------------------------------------------------
// Number patterns
// ---------------------------------------------------------------------------------

/// A number pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nm {
    /// `9`: a digit, blank when a leading zero.
    Nine,
    /// `0`: a digit, leading zeros kept.
    Zero,
    /// `.`: decimal point.
    Point,
    /// `D`: decimal point of the locale.
    Decimal,
    /// `,`: group separator.
    Comma,
    /// `G`: group separator of the locale.
    Group,
    /// `L`: currency symbol of the locale.
    Currency,
    /// `S`: sign anchored to the number.
    Sign,
    /// `MI`: minus sign if negative.
    Minus,
    /// `PL`: plus sign if positive.
    Plus,
    /// `SG`: plus or minus sign.
    PlusMinus,
    /// `PR`: negative value in angle brackets.
    Brackets,
    /// `RN`, `rn`: Roman numeral.
    Roman(Case),
    /// `TH`, `th`: ordinal suffix.
    Ordinal(Case),
    /// `V`: shift by the digits after it.
    Shift,
    /// `EEEE`: scientific notation.
    Exponent,
    /// `FM`: fill mode.
    Fill,
    /// `B`: accepted, no effect but refusing `EEEE`.
    Blank,
    /// `C`, `SP`: accepted, no effect.
    Ignored,
}

/// The number patterns by name; where one name starts another, the longer is taken.
const NUMBER_PATTERNS: &[(&str, Nm)] = &[
    (",", Nm::Comma),
    (".", Nm::Point),
    ("0", Nm::Zero),
    ("9", Nm::Nine),
    ("B", Nm::Blank),
    ("C", Nm::Ignored),
    ("D", Nm::Decimal),
    ("EEEE", Nm::Exponent),
    ("FM", Nm::Fill),
    ("G", Nm::Group),
    ("L", Nm::Currency),
    ("MI", Nm::Minus),
    ("PL", Nm::Plus),
    ("PR", Nm::Brackets),
    ("RN", Nm::Roman(Case::Upper)),
    ("SG", Nm::PlusMinus),
    ("SP", Nm::Ignored),
    ("S", Nm::Sign),
    ("TH", Nm::Ordinal(Case::Upper)),
    ("V", Nm::Shift),
    ("b", Nm::Blank),
    ("c", Nm::Ignored),
    ("d", Nm::Decimal),
    ("eeee", Nm::Exponent),
    ("fm", Nm::Fill),
    ("g", Nm::Group),
    ("l", Nm::Currency),
    ("mi", Nm::Minus),
    ("pl", Nm::Plus),
    ("pr", Nm::Brackets),
    ("rn", Nm::Roman(Case::Lower)),
    ("sg", Nm::PlusMinus),
    ("sp", Nm::Ignored),
    ("s", Nm::Sign),
    ("th", Nm::Ordinal(Case::Lower)),
    ("v", Nm::Shift),
];

/// Where an `S` writes its sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignAt {
    /// Before the first digit.
    Start,
    /// After the last digit.
    End,
}

/// What a number template asks for, gathered from its patterns in order.
#[derive(Debug, Clone, Default)]
struct NumberFormat {
    /// Digit positions before the decimal point (and after a `V`'s digits are added).
    pre: usize,
    /// Digit positions after the decimal point.
    post: usize,
    /// Digits after `V`: the value is shifted left by that many.
    shift: usize,
    /// `0`: the position (1-based, among `pre`) from which leading zeros are written.
    zero_start: usize,
    /// `0`: the position (1-based, among all digits) of the last `0`.
    zero_end: usize,
    zero: bool,
    decimal: bool,
    fill: bool,
    /// `S`, and where it is.
    sign_at: Option<SignAt>,
    /// For `S` before the decimal point: the digit positions before it.
    sign_after_digits: usize,
    brackets: bool,
    minus: bool,
    plus: bool,
    roman: bool,
    shifts: bool,
    exponent: bool,
    blank: bool,
}

fn syntax_error(message: &str) -> TemplateError {
    TemplateError::new(sqlstate::SYNTAX_ERROR, message)
}

impl NumberFormat {
    /// The format of a template's patterns, refusing combinations PostgreSQL refuses.
    fn of(nodes: &[Node<Nm>]) -> Result<Self> {
        let mut format = NumberFormat::default();
        for node in nodes {
            if let Node::Pattern(pattern) = node {
                format.add(pattern.key)?;
            }
        }
        Ok(format)
    }

    fn add(&mut self, key: Nm) -> Result<()> {
        if self.exponent && key != Nm::Exponent {
            return Err(syntax_error("\"EEEE\" must be the last pattern used"));
        }
        match key {
            Nm::Nine => self.add_nine()?,
            Nm::Zero => self.add_zero()?,
            Nm::Blank => self.blank |= self.pre == 0 && self.post == 0 && !self.zero,
            Nm::Point | Nm::Decimal => self.add_decimal_point()?,
            Nm::Fill => self.fill = true,
            Nm::Sign => self.add_sign()?,
            Nm::Minus | Nm::Plus | Nm::PlusMinus => self.add_sign_pattern(key)?,
            Nm::Brackets => {
                if self.sign_at.is_some() || self.plus || self.minus {
                    return Err(syntax_error(
                        "cannot use \"PR\" and \"S\"/\"PL\"/\"MI\"/\"SG\" together",
                    ));
                }
                self.brackets = true;
            }
            Nm::Roman(_) => self.roman = true,
            Nm::Shift => {
                if self.decimal {
                    return Err(syntax_error("cannot use \"V\" and decimal point together"));
                }
                self.shifts = true;
            }
            Nm::Exponent => self.add_exponent()?,
            Nm::Comma | Nm::Group | Nm::Currency | Nm::Ordinal(_) | Nm::Ignored => {}
        }
        Ok(())
    }

    fn add_nine(&mut self) -> Result<()> {
        if self.brackets {
            return Err(syntax_error("\"9\" must be ahead of \"PR\""));
        }
        if self.shifts {
            self.shift += 1;
        } else if self.decimal {
            self.post += 1;
        } else {
            self.pre += 1;
        }
        Ok(())
    }

    fn add_zero(&mut self) -> Result<()> {
        if self.brackets {
            return Err(syntax_error("\"0\" must be ahead of \"PR\""));
        }
        if !self.zero && !self.decimal {
            self.zero = true;
            self.zero_start = self.pre + 1;
        }
        if self.decimal {
            self.post += 1;
        } else {
            self.pre += 1;
        }
        self.zero_end = self.pre + self.post;
        Ok(())
    }

    fn add_decimal_point(&mut self) -> Result<()> {
        if self.decimal {
            return Err(syntax_error("multiple decimal points"));
        }
        if self.shifts {
            return Err(syntax_error("cannot use \"V\" and decimal point together"));
        }
        self.decimal = true;
        Ok(())
    }

    fn add_sign(&mut self) -> Result<()> {
        if self.sign_at.is_some() {
            return Err(syntax_error("cannot use \"S\" twice"));
        }
        if self.plus || self.minus || self.brackets {
            return Err(syntax_error(
                "cannot use \"S\" and \"PL\"/\"MI\"/\"SG\"/\"PR\" together",
            ));
        }
        if self.decimal {
            self.sign_at = Some(SignAt::End);
        } else {
            self.sign_at = Some(SignAt::Start);
            self.sign_after_digits = self.pre;
        }
        Ok(())
    }

    fn add_sign_pattern(&mut self, key: Nm) -> Result<()> {
        if self.sign_at.is_some() {
            let name = match key {
                Nm::Minus => "MI",
                Nm::Plus => "PL",
                _ => "SG",
            };
            return Err(syntax_error(&format!(
                "cannot use \"S\" and \"{name}\" together"
            )));
        }
        self.minus |= key != Nm::Plus;
        self.plus |= key != Nm::Minus;
        Ok(())
    }

    fn add_exponent(&mut self) -> Result<()> {
        if self.exponent {
            return Err(syntax_error("cannot use \"EEEE\" twice"));
        }
        if self.blank
            || self.fill
            || self.sign_at.is_some()
            || self.brackets
            || self.minus
            || self.plus
            || self.roman
            || self.shifts
        {
            return Err(
                syntax_error("\"EEEE\" is incompatible with other formats").with_detail(
                    "\"EEEE\" may only be used together with digit and decimal point patterns.",
                ),
            );
        }
        self.exponent = true;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// to_char for numbers
// ---------------------------------------------------------------------------------

/// A value made ready for a number template, as PostgreSQL prepares it.
#[derive(Debug)]
struct Digits {
    /// The digits with any decimal point ("485.00"); `#`s and a point when too wide;
    /// "NaN" or "Infinity"; a Roman numeral; or, for `EEEE`, the whole answer.
    text: String,
    /// `b'+'`, `b'-'`, or 0 for a Roman numeral.
    sign: u8,
    /// How many leading digit positions the value leaves empty.
    pad: usize,
}

fn number_digits(value: &Number, format: &mut NumberFormat) -> Result<Digits> {
    if format.roman {
        return roman_digits(value);
    }
    if format.exponent {
        return Ok(exponent_digits(value, format));
    }
    let shift = format.shift;
    format.pre += shift;
    match *value {
        Number::Decimal { unscaled, scale } => {
            let decimal = Decimal::new(unscaled, scale.into()).shifted(shift);
            Ok(decimal_digits(&decimal, format))
        }
        Number::Int4(integer) => {
            // PostgreSQL multiplies in 32 bits, wrapping around, by 10^shift converted
            // to an integer (which gives the lowest integer when too large).
            let factor = 10i32.checked_pow(shift as u32).unwrap_or(i32::MIN);
            let shifted = integer.wrapping_mul(factor);
            Ok(decimal_digits(&Decimal::new(shifted.into(), 0), format))
        }
        Number::Int8(integer) => {
            let shifted = 10i64
                .checked_pow(shift as u32)
                .and_then(|power| integer.checked_mul(power))
                .ok_or_else(|| {
                    TemplateError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range")
                })?;
            Ok(decimal_digits(&Decimal::new(shifted.into(), 0), format))
        }
        Number::Real(real) => {
            let shifted = if shift > 0 {
                real * power_of_ten(shift) as f32
            } else {
                real
            };
            Ok(float_digits(shifted.into(), 6, format))
        }
        Number::Double(double) => {
            let shifted = if shift > 0 {
                double * power_of_ten(shift)
            } else {
                double
            };
            Ok(float_digits(shifted, 15, format))
        }
    }
}

/// 10^`exponent`, correctly rounded.
fn power_of_ten(exponent: usize) -> f64 {
    format!("1e{exponent}").parse().unwrap_or(f64::INFINITY)
}

fn roman_digits(value: &Number) -> Result<Digits> {
    let out_of_range =
        || TemplateError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "integer out of range");
    let integer = match *value {
        Number::Decimal { unscaled, scale } => Decimal::new(unscaled, scale.into())
            .to_i32()
            .ok_or_else(out_of_range)?,
        Number::Int4(integer) => integer,
        Number::Int8(integer) => i32::try_from(integer).map_err(|_| out_of_range())?,
        Number::Real(real) => real.round_ties_even() as i32,
        Number::Double(double) => double.round_ties_even() as i32,
    };
    Ok(Digits {
        text: roman_numeral(integer),
        sign: 0,
        pad: 0,
    })
}

/// The Roman numeral of 1 to 3999, 15 `#`s for others.
fn roman_numeral(value: i32) -> String {
    if !(1..=3999).contains(&value) {
        return "#".repeat(15);
    }
    const NUMERALS: [(i32, &str); 13] = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut rest = value;
    let mut text = String::new();
    for (amount, numeral) in NUMERALS {
        while rest >= amount {
            text.push_str(numeral);
            rest -= amount;
        }
    }
    text
}

/// The whole answer for an `EEEE` template: a blank or minus sign, then the
/// significand with the template's decimals, then the exponent.
fn exponent_digits(value: &Number, format: &NumberFormat) -> Digits {
    let post = format.post;
    let text = match *value {
        Number::Decimal { unscaled, scale } => {
            Decimal::new(unscaled, scale.into()).to_scientific(post)
        }
        Number::Int4(integer) => c_scientific(integer.into(), post),
        Number::Int8(integer) => Decimal::new(integer.into(), 0).to_scientific(post),
        Number::Real(real) => float_scientific(real.into(), format),
        Number::Double(double) => float_scientific(double, format),
    };
    // Positive values get a blank where the minus sign would be.
    let text = match text.strip_prefix('+') {
        Some(rest) => format!(" {rest}"),
        None if text.starts_with('-') => text,
        None => format!(" {text}"),
    };
    Digits {
        text,
        sign: 0,
        pad: 0,
    }
}

fn float_scientific(value: f64, format: &NumberFormat) -> String {
    if value.is_finite() {
        return c_scientific(value, format.post);
    }
    format!("{}.{}", "#".repeat(format.pre), "#".repeat(format.post + 4))
}

/// `value` as C's `%+.*e` writes it: sign, significand, and an exponent of at least two
/// digits.
fn c_scientific(value: f64, post: usize) -> String {
    let text = format!("{value:+.post$e}");
    match text.split_once('e') {
        Some((significand, exponent)) => {
            let exponent: i32 = exponent.parse().unwrap_or(0);
            format!("{significand}e{exponent:+03}")
        }
        None => text,
    }
}

/// `value` as PostgreSQL's `%.*f` writes it (`NaN`, `Infinity` for the special values).
fn c_fixed(value: f64, post: usize) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        format!("{value:.post$}")
    }
}

/// A float's digits: rounded to the template's decimals, but to no more than
/// `significant` digits in all.
fn float_digits(value: f64, significant: usize, format: &mut NumberFormat) -> Digits {
    let whole = c_fixed(value.abs(), 0).len();
    if whole >= significant {
        format.post = 0;
    } else if whole + format.post > significant {
        format.post = significant - whole;
    }
    layout_digits(c_fixed(value, format.post), format)
}

fn decimal_digits(value: &Decimal, format: &NumberFormat) -> Digits {
    layout_digits(value.to_fixed(format.post), format)
}

/// Splits off the sign of `text` and fits its integer digits to the template's.
fn layout_digits(text: String, format: &NumberFormat) -> Digits {
    let (sign, text) = match text.strip_prefix('-') {
        Some(rest) => (b'-', rest.to_string()),
        None => (b'+', text),
    };
    let whole = text.find('.').unwrap_or(text.len());
    if whole > format.pre {
        let text = format!("{}.{}", "#".repeat(format.pre), "#".repeat(format.post));
        return Digits { text, sign, pad: 0 };
    }
    Digits {
        text,
        sign,
        pad: format.pre - whole,
    }
}

/// An exact decimal `digits × 10^-scale`.
#[derive(Debug, Clone)]
struct Decimal {
    negative: bool,
    /// ASCII digits without leading zeros, empty for zero.
    digits: Vec<u8>,
    scale: i64,
}

impl Decimal {
    fn new(unscaled: i128, scale: i64) -> Self {
        let digits = if unscaled == 0 {
            Vec::new()
        } else {
            unscaled.unsigned_abs().to_string().into_bytes()
        };
        Decimal {
            negative: unscaled < 0,
            digits,
            scale,
        }
    }

    /// The value times 10^`places`.
    fn shifted(self, places: usize) -> Self {
        Decimal {
            scale: self.scale - places as i64,
            ..self
        }
    }

    /// The digits of the value rounded half away from zero to `places` decimals,
    /// without the decimal point; empty for zero.
    fn rounded(&self, places: i64) -> Vec<u8> {
        let dropped = self.scale - places;
        let mut digits = self.digits.clone();
        if dropped <= 0 {
            if !digits.is_empty() {
                digits.resize(digits.len() + (-dropped) as usize, b'0');
            }
            return digits;
        }
        let Some(kept) = (digits.len() as i64)
            .checked_sub(dropped)
            .filter(|k| *k >= 0)
        else {
            return Vec::new();
        };
        let round_up = digits[kept as usize] >= b'5';
        digits.truncate(kept as usize);
        if round_up {
            increment(&mut digits);
        }
        digits
    }

    /// The value as `numeric_out` writes it with `places` decimals, minus sign and all.
    fn to_fixed(&self, places: usize) -> String {
        let digits = self.rounded(places as i64);
        let sign = if self.negative && !digits.is_empty() {
            "-"
        } else {
            ""
        };
        format!("{sign}{}", point_digits(digits, places))
    }

    /// The value rounded to an integer, if it fits in 32 bits.
    fn to_i32(&self) -> Option<i32> {
        let digits = String::from_utf8(self.rounded(0)).ok()?;
        let magnitude: i64 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        i32::try_from(if self.negative { -magnitude } else { magnitude }).ok()
    }

    /// The value in scientific notation with `places` decimals, as PostgreSQL writes a
    /// `numeric` for `EEEE`: the exponent is that of the leading digit, even when
    /// rounding makes the significand 10.
    fn to_scientific(&self, places: usize) -> String {
        let exponent = self.digits.len() as i64 - 1 - self.scale;
        let significand = if self.digits.is_empty() {
            Decimal::new(0, 0)
        } else {
            Decimal {
                negative: self.negative,
                digits: self.digits.clone(),
                scale: self.digits.len() as i64 - 1,
            }
        };
        let exponent = if self.digits.is_empty() { 0 } else { exponent };
        format!("{}e{exponent:+03}", significand.to_fixed(places))
    }
}

/// Adds one to a string of ASCII digits.
fn increment(digits: &mut Vec<u8>) {
    for digit in digits.iter_mut().rev() {
        if *digit == b'9' {
            *digit = b'0';
        } else {
            *digit += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

/// `digits` (an integer, empty for zero) with a decimal point before the last `places`,
/// and a zero before the point.
fn point_digits(mut digits: Vec<u8>, places: usize) -> String {
    if digits.len() <= places {
        let zeros = places + 1 - digits.len();
        digits.splice(0..0, std::iter::repeat_n(b'0', zeros));
    }
    let whole = digits.len() - places;
    let (integer, fraction) = digits.split_at(whole);
    let integer = String::from_utf8_lossy(integer);
    if places == 0 {
        integer.into_owned()
    } else {
        format!("{integer}.{}", String::from_utf8_lossy(fraction))
    }
}

fn render_number(nodes: &[Node<Nm>], format: NumberFormat, digits: &Digits) -> Result<String> {
    if format.exponent {
        return Ok(digits.text.clone());
    }
    let format = if format.roman {
        NumberFormat {
            fill: format.fill,
            roman: true,
            ..NumberFormat::default()
        }
    } else {
        format
    };
    let mut writer = NumberWriter::new(format, digits);
    for node in nodes {
        match node {
            Node::Text(c, _) => writer.put(c.encode_utf8(&mut [0; 4])),
            Node::Pattern(pattern) => writer.pattern(pattern.key)?,
        }
    }
    Ok(writer.out)
}

/// Lays a value's digits into a number template, position by position, as PostgreSQL
/// does (including its stopping short where it runs out of digits).
struct NumberWriter<'a> {
    format: NumberFormat,
    text: &'a [u8],
    /// The next character of `text` to write.
    at: usize,
    sign: u8,
    sign_written: bool,
    /// Digit positions before the one after which a trailing sign goes.
    count: isize,
    /// The digit position being written.
    position: isize,
    pad: isize,
    /// Whether a digit has been written (so group separators show).
    started: bool,
    /// In fill mode, the last character of `text` worth writing after the point.
    last_relevant: Option<usize>,
    /// Set where PostgreSQL writes a NUL, which ends its answer.
    ended: bool,
    out: String,
}

impl<'a> NumberWriter<'a> {
    fn new(mut format: NumberFormat, digits: &'a Digits) -> Self {
        let sign = digits.sign;
        let text = digits.text.as_bytes();
        format.zero_start = format.zero_start.saturating_sub(1);
        let sign_written = if format.plus || format.minus {
            // Only `PL` leaves the minus sign to the digits.
            format.minus || !format.plus
        } else {
            if sign != b'-' && format.fill {
                format.brackets = false;
            }
            if format.sign_at == Some(SignAt::Start) && format.pre == format.sign_after_digits {
                format.sign_at = Some(SignAt::End);
            }
            sign == b'+' && format.fill && format.sign_at.is_none()
        };
        let pad = digits.pad as isize;
        let mut last_relevant = None;
        if format.fill && format.decimal {
            last_relevant = last_relevant_digit(text);
            if let Some(relevant) = last_relevant {
                let zero_end = format.zero_end as isize;
                if zero_end > pad {
                    let last_zero = (text.len() as isize - 1).min(zero_end - pad);
                    if (relevant as isize) < last_zero {
                        last_relevant = Some(last_zero as usize);
                    }
                }
            }
        }
        let mut count = format.post as isize + format.pre as isize - 1;
        if !sign_written && pad == 0 {
            count += 1;
        }
        NumberWriter {
            format,
            text,
            at: 0,
            sign,
            sign_written,
            count,
            position: 0,
            pad,
            started: false,
            last_relevant,
            ended: false,
            out: String::new(),
        }
    }

    fn put(&mut self, text: &str) {
        if !self.ended {
            self.out.push_str(text);
        }
    }

    /// Writes a character of the value's text; a NUL (past its end) ends the answer.
    fn put_byte(&mut self, byte: u8) {
        if byte == 0 {
            self.ended = true;
        } else if !self.ended {
            self.out.push(char::from(byte));
        }
    }

    fn current(&self) -> u8 {
        self.text.get(self.at).copied().unwrap_or(0)
    }

    fn pattern(&mut self, key: Nm) -> Result<()> {
        let fill = self.format.fill;
        match key {
            Nm::Nine | Nm::Zero | Nm::Point | Nm::Decimal => self.digit(key),
            Nm::Comma | Nm::Group => {
                if self.started {
                    self.put(",");
                } else if !fill {
                    self.put(" ");
                }
            }
            Nm::Currency => self.put(" "),
            Nm::Roman(case) => {
                let numeral = case.apply(&String::from_utf8_lossy(self.text));
                if fill {
                    self.put(&numeral);
                } else {
                    self.put(&format!("{numeral:>15}"));
                }
            }
            Nm::Ordinal(case) => {
                let skip = self.format.roman
                    || self.text.first() == Some(&b'#')
                    || self.sign == b'-'
                    || self.format.decimal;
                if !skip {
                    let suffix = ordinal_suffix(&String::from_utf8_lossy(self.text), case)?;
                    self.put(suffix);
                }
            }
            Nm::Minus | Nm::Plus => {
                let (wanted, text) = if key == Nm::Minus {
                    (b'-', "-")
                } else {
                    (b'+', "+")
                };
                if self.sign == wanted {
                    self.put(text);
                } else if !fill {
                    self.put(" ");
                }
            }
            Nm::PlusMinus => self.put_byte(self.sign),
            Nm::Sign | Nm::Brackets | Nm::Shift | Nm::Exponent | Nm::Fill => {}
            Nm::Blank | Nm::Ignored => {}
        }
        Ok(())
    }

    /// Whether a leading zero before the decimal point is left blank ("0.1" → " .1").
    fn blank_before_point(&self) -> bool {
        !self.format.zero
            && self.at == 0
            && self.text.first() == Some(&b'0')
            && self.format.post != 0
    }

    fn relevant_is_point(&self) -> bool {
        self.last_relevant
            .is_some_and(|i| self.text.get(i) == Some(&b'.'))
    }

    /// A digit position or decimal point of the template.
    fn digit(&mut self, key: Nm) {
        if self.format.roman {
            return;
        }
        self.leading_sign();
        let zero_from = self.format.zero_start as isize;
        if self.position < self.pad && (zero_from > self.position || !self.format.zero) {
            if !self.format.fill {
                self.put(" ");
            }
        } else if self.format.zero && self.position < self.pad {
            self.put("0");
            self.started = true;
        } else {
            self.value_character(key);
        }
        let mut end = self.count + isize::from(self.pad > 0) + isize::from(self.format.decimal);
        if self.last_relevant == Some(self.at) {
            end = self.position;
        }
        if self.position + 1 == end {
            self.trailing_sign();
        }
        self.position += 1;
    }

    fn leading_sign(&mut self) {
        let at_first_digit = self.position >= self.pad
            || (self.format.zero && self.format.zero_start as isize == self.position);
        if self.sign_written
            || !at_first_digit
            || (self.blank_before_point() && !self.relevant_is_point())
        {
            return;
        }
        if let Some(at) = self.format.sign_at {
            if at == SignAt::Start {
                self.put(if self.sign == b'-' { "-" } else { "+" });
                self.sign_written = true;
            }
        } else if self.format.brackets {
            self.put(if self.sign == b'+' { " " } else { "<" });
            self.sign_written = true;
        } else if self.sign == b'+' {
            if !self.format.fill {
                self.put(" ");
            }
            self.sign_written = true;
        } else if self.sign == b'-' {
            self.put("-");
            self.sign_written = true;
        }
    }

    /// Writes the next character of the value (a digit or the point) at a position.
    fn value_character(&mut self, key: Nm) {
        let c = self.current();
        if c == b'.' {
            self.put(".");
            // Group separators right after the point are blank.
            self.started = false;
        } else if self.last_relevant.is_some_and(|i| self.at > i) && key != Nm::Zero {
            // A trailing zero dropped in fill mode.
        } else if self.blank_before_point() {
            if !self.format.fill {
                self.put(" ");
            } else if self.relevant_is_point() {
                self.put("0");
            }
        } else {
            self.put_byte(c);
            self.started = true;
        }
        if c != 0 {
            self.at += 1;
        }
    }

    fn trailing_sign(&mut self) {
        if self.sign_written && self.format.brackets {
            self.put(if self.sign == b'+' { " " } else { ">" });
        } else if self.format.sign_at == Some(SignAt::End) {
            self.put(if self.sign == b'-' { "-" } else { "+" });
        }
    }
}

/// In `text` with a decimal point, the index of its last non-zero decimal (of the
/// point if there is none).
fn last_relevant_digit(text: &[u8]) -> Option<usize> {
    let point = text.iter().position(|&c| c == b'.')?;
    let last = text[point + 1..].iter().rposition(|&c| c != b'0');
    Some(last.map_or(point, |i| point + 1 + i))
}

// ---------------------------------------------------------------------------------
// to_number
// ---------------------------------------------------------------------------------

fn read_number(nodes: &[Node<Nm>], format: &NumberFormat, text: &str) -> Result<(i128, i8)> {
    let unsupported = |name: &str| {
        TemplateError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("\"{name}\" not supported for input"),
        )
    };
    if format.exponent {
        return Err(unsupported("EEEE"));
    }
    if format.roman {
        return Err(unsupported("RN"));
    }
    let mut reader = NumberReader {
        format,
        input: text.as_bytes(),
        at: 0,
        sign: b' ',
        digits: Vec::new(),
        before_point: 0,
        after_point: 0,
        point: false,
    };
    for node in nodes {
        if reader.at >= reader.input.len() {
            break;
        }
        match node {
            Node::Text(..) => reader.at += utf8_len(reader.input[reader.at]),
            Node::Pattern(pattern) => reader.pattern(pattern.key),
        }
    }
    reader.finish()
}

/// Reads a number along a template, as PostgreSQL does: each digit position takes a
/// digit (or the decimal point) if there is one, and skips a character otherwise.
struct NumberReader<'a> {
    format: &'a NumberFormat,
    input: &'a [u8],
    at: usize,
    /// `b' '` until a sign is read.
    sign: u8,
    /// The digits and decimal point read.
    digits: Vec<u8>,
    before_point: usize,
    after_point: usize,
    point: bool,
}

impl NumberReader<'_> {
    fn current(&self) -> u8 {
        self.input.get(self.at).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.at >= self.input.len()
    }

    fn pattern(&mut self, key: Nm) {
        let fill = self.format.fill;
        match key {
            Nm::Nine | Nm::Zero | Nm::Point | Nm::Decimal => {
                self.digit(key);
                self.at += 1;
            }
            Nm::Comma | Nm::Group if !fill && self.current() == b',' => self.at += 1,
            Nm::Currency => self.skip_non_data(1),
            Nm::Ordinal(_) if !self.format.decimal => self.skip_non_data(2),
            Nm::Minus | Nm::Plus | Nm::PlusMinus => {
                let c = self.current();
                let accepted = match key {
                    Nm::Minus => c == b'-',
                    Nm::Plus => c == b'+',
                    _ => c == b'-' || c == b'+',
                };
                if accepted {
                    self.sign = c;
                    self.at += 1;
                } else {
                    self.skip_non_data(1);
                }
            }
            _ => {}
        }
    }

    /// Skips up to `count` characters that cannot be part of a number.
    fn skip_non_data(&mut self, count: usize) {
        for _ in 0..count {
            if self.at_end() || b"0123456789.,+-".contains(&self.current()) {
                break;
            }
            self.at += utf8_len(self.current());
        }
    }

    /// A digit position or decimal point of the template.
    fn digit(&mut self, key: Nm) {
        if self.current() == b' ' {
            self.at += 1;
        }
        if self.at_end() {
            return;
        }
        if self.sign == b' '
            && matches!(key, Nm::Nine | Nm::Zero)
            && self.before_point + self.after_point == 0
        {
            self.leading_sign();
            if self.at_end() {
                return;
            }
        }
        let c = self.current();
        let mut read = false;
        if c.is_ascii_digit() {
            if self.point && self.after_point == self.format.post {
                return;
            }
            self.digits.push(c);
            if self.point {
                self.after_point += 1;
            } else {
                self.before_point += 1;
            }
            read = true;
        } else if self.format.decimal && !self.point && c == b'.' {
            self.digits.push(b'.');
            self.point = true;
            read = true;
        }
        if self.sign == b' ' && self.before_point + self.after_point > 0 {
            self.trailing_sign(read);
        }
    }

    fn leading_sign(&mut self) {
        let c = self.current();
        let minus = c == b'-' || (self.format.brackets && c == b'<');
        if minus || c == b'+' {
            self.sign = if minus { b'-' } else { b'+' };
            self.at += 1;
        }
    }

    /// A sign right after the digits read so far.
    fn trailing_sign(&mut self, read: bool) {
        if self.format.sign_at.is_some() {
            let next = self.input.get(self.at + 1).copied();
            if read && next.is_some_and(|c| !c.is_ascii_digit()) {
                if let Some(c @ (b'-' | b'+')) = next {
                    self.sign = c;
                    self.at += 1;
                }
            }
        } else if !read && (self.format.plus || self.format.minus) {
            let c = self.current();
            if c == b'-' || c == b'+' {
                self.sign = c;
            }
        }
    }

    /// The number read, as `numeric_in` takes it with the template's precision.
    fn finish(mut self) -> Result<(i128, i8)> {
        if self.digits.last() == Some(&b'.') {
            self.digits.pop();
        }
        let mut written = vec![self.sign];
        written.extend_from_slice(&self.digits);
        let written = String::from_utf8_lossy(&written).into_owned();
        if !self.digits.iter().any(u8::is_ascii_digit) {
            return Err(TemplateError::new(
                sqlstate::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type numeric: \"{written}\""),
            ));
        }
        let scale = self.after_point;
        let precision = self.format.pre + self.format.shift + scale;
        let integer_digits = self.digits[..self.before_point]
            .iter()
            .skip_while(|&&c| c == b'0')
            .count();
        if integer_digits > precision - scale {
            let limit = match precision - scale {
                0 => "1".to_string(),
                digits => format!("10^{digits}"),
            };
            return Err(TemplateError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                "numeric field overflow",
            )
            .with_detail(format!(
                "A field with precision {precision}, scale {scale} must round to an absolute value less than {limit}."
            )));
        }
        let unscaled = self.unscaled()?;
        self.unshift(unscaled, scale)
    }

    fn unscaled(&self) -> Result<i128> {
        let overflow = || {
            TemplateError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                "value overflows numeric format",
            )
        };
        let mut value: i128 = 0;
        for digit in self.digits.iter().filter(|c| c.is_ascii_digit()) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(digit - b'0')))
                .ok_or_else(overflow)?;
        }
        Ok(if self.sign == b'-' { -value } else { value })
    }

    /// Divides by 10^(digits after `V`) as PostgreSQL does, at 16 decimals.
    fn unshift(&self, unscaled: i128, scale: usize) -> Result<(i128, i8)> {
        let overflow = || {
            TemplateError::new(
                sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                "value overflows numeric format",
            )
        };
        let shift = self.format.shift;
        let (unscaled, scale) = if !self.format.shifts {
            (unscaled, scale)
        } else if shift > 16 {
            (0, scale + 16)
        } else {
            let factor = 10i128.pow(16 - shift as u32);
            (
                unscaled.checked_mul(factor).ok_or_else(overflow)?,
                scale + 16,
            )
        };
        Ok((unscaled, i8::try_from(scale).map_err(|_| overflow())?))
    }
}

/// The length of the UTF-8 character starting with `byte`.
fn utf8_len(byte: u8) -> usize {
    match byte {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

// ---------------------------------------------------------------------------------
// to_date and to_timestamp
// ---------------------------------------------------------------------------------

/// The fields `to_date`/`to_timestamp` read from the text; 0 for one not given.
#[derive(Debug, Default)]
struct ReadFields {
    mode: DateMode,
    hour: i32,
    /// 1 for PM.
    pm: i32,
    twelve_hour: bool,
    minute: i32,
    second: i32,
    second_of_day: i32,
    /// Day of the week, 1 for Sunday.
    weekday: i32,
    day: i32,
    day_of_year: i32,
    month: i32,
    millis: i32,
    year: i32,
    /// 1 for BC.
    bc: i32,
    /// Week of the year (`WW`) or ISO week (`IW`).
    week: i32,
    week_of_month: i32,
    century: i32,
    julian: i32,
    micros: i32,
    /// How many digits the year pattern had (`YY`: 2).
    year_digits: i32,
    /// `FFn`: the fraction's precision.
    fraction_digits: i32,
    zone_sign: i32,
    zone_hour: i32,
    zone_minute: i32,
}

/// A date and time as `to_date`/`to_timestamp` resolve the fields read; the date may
/// run beyond its month (carried over), the time lies within its day.
#[derive(Debug)]
struct DateTimeFields {
    year: i32,
    month: i32,
    day: i32,
    hour: i32,
    minute: i32,
    second: i32,
    micros: i32,
    fraction_digits: i32,
    offset: Option<i32>,
}

fn read_datetime(text: &str, template: &str) -> Result<DateTimeFields> {
    let nodes = parse_template(template, DATETIME_PATTERNS, true);
    let mut reader = DateReader {
        input: text.as_bytes(),
        at: 0,
        fixed: false,
        extra_skip: 0,
        fields: ReadFields::default(),
    };
    reader.read(&nodes)?;
    reader.fields.resolve(text)
}

fn invalid_format(message: impl Into<String>) -> TemplateError {
    TemplateError::new(sqlstate::INVALID_DATETIME_FORMAT, message)
}

/// Sets a field read, refusing a second, different value.
fn set_field(slot: &mut i32, value: i32, name: &str) -> Result<()> {
    if *slot != 0 && *slot != value {
        return Err(invalid_format(format!(
            "conflicting values for \"{name}\" field in formatting string"
        ))
        .with_detail("This value contradicts a previous setting for the same field type."));
    }
    *slot = value;
    Ok(())
}

/// C's `strtol` on `bytes`: the value, how many bytes it took (0 when there are no
/// digits), and whether it overflowed.
fn c_integer(bytes: &[u8]) -> (i64, usize, bool) {
    let mut i = bytes
        .iter()
        .take_while(|&&b| is_space(char::from(b)))
        .count();
    let negative = bytes.get(i) == Some(&b'-');
    if matches!(bytes.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let start = i;
    let (mut value, mut overflow) = (0i64, false);
    while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
        let digit = i64::from(b - b'0');
        match value.checked_mul(10).and_then(|v| v.checked_add(digit)) {
            Some(v) => value = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return (0, 0, false);
    }
    (if negative { -value } else { value }, i, overflow)
}

/// The longest prefix of `bytes` of whole characters within `limit` bytes, as text.
fn text_prefix(bytes: &[u8], limit: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() > limit {
            break;
        }
        end = i + c.len_utf8();
    }
    text[..end].to_string()
}

/// Walks a date/time template along the text, as PostgreSQL's `to_date` does.
struct DateReader<'a> {
    input: &'a [u8],
    at: usize,
    /// `FX` seen: text must match the template character for character.
    fixed: bool,
    /// Spaces skipped beyond what the template asked for.
    extra_skip: i64,
    fields: ReadFields,
}

impl DateReader<'_> {
    fn at_end(&self) -> bool {
        self.at >= self.input.len()
    }

    fn current(&self) -> u8 {
        self.input.get(self.at).copied().unwrap_or(0)
    }

    fn skip_spaces(&mut self) {
        while !self.at_end() && is_space(char::from(self.current())) {
            self.at += 1;
            self.extra_skip += 1;
        }
    }

    /// Advances past one character (or past the end).
    fn skip_character(&mut self) {
        self.at = (self.at + utf8_len(self.current())).min(self.input.len());
    }

    fn read(&mut self, nodes: &[Node<Dt>]) -> Result<()> {
        for (i, node) in nodes.iter().enumerate() {
            if self.at_end() {
                break;
            }
            let is_pattern = matches!(node, Node::Pattern(_));
            let is_fx = matches!(node, Node::Pattern(p) if p.key == Dt::FixedFormat);
            if !self.fixed && !is_fx && (is_pattern || i == 0) {
                self.skip_spaces();
            }
            match node {
                Node::Text(_, kind) => self.text(*kind),
                Node::Pattern(pattern) => {
                    self.pattern(pattern, next_is_separator(nodes, i))?;
                    if !self.fixed {
                        self.extra_skip = 0;
                        self.skip_spaces();
                    }
                }
            }
        }
        Ok(())
    }

    /// A template character that is no pattern.
    fn text(&mut self, kind: TextKind) {
        if self.fixed {
            self.skip_character();
        } else if kind == TextKind::Plain {
            if self.extra_skip > 0 {
                self.extra_skip -= 1;
            } else {
                self.skip_character();
            }
        } else {
            self.extra_skip -= 1;
            let c = char::from(self.current());
            if !self.at_end() && (is_space(c) || is_separator(c)) {
                self.at += 1;
                self.extra_skip += 1;
            }
        }
    }

    fn pattern(&mut self, p: &Pattern<Dt>, next_separator: bool) -> Result<()> {
        self.set_mode(p.key.mode())?;
        let slot_width = |width: usize| (width, next_separator);
        match p.key {
            Dt::FixedFormat => self.fixed = true,
            Dt::Meridiem { dots, .. } => {
                let words = if dots { ["a.m.", "p.m."] } else { ["am", "pm"] };
                let pm = self.word(&words, p)?;
                set_field(&mut self.fields.pm, pm as i32, p.name)?;
                self.fields.twelve_hour = true;
            }
            Dt::Era { dots, .. } => {
                let words = if dots { ["a.d.", "b.c."] } else { ["ad", "bc"] };
                let bc = self.word(&words, p)?;
                set_field(&mut self.fields.bc, bc as i32, p.name)?;
            }
            Dt::MonthName(_) | Dt::MonthAbbreviation(_) => {
                let abbreviations = MONTHS.map(|m| &m[..3]);
                let words = if matches!(p.key, Dt::MonthName(_)) {
                    &MONTHS
                } else {
                    &abbreviations
                };
                let month = self.word(words, p)?;
                set_field(&mut self.fields.month, month as i32 + 1, p.name)?;
            }
            Dt::DayName(_) | Dt::DayAbbreviation(_) => {
                let abbreviations = DAYS.map(|d| &d[..3]);
                let words = if matches!(p.key, Dt::DayName(_)) {
                    &DAYS
                } else {
                    &abbreviations
                };
                let day = self.word(words, p)?;
                set_field(&mut self.fields.weekday, day as i32, p.name)?;
                self.fields.weekday += 1;
            }
            Dt::RomanMonth(_) => {
                let index = self.word(&ROMAN_MONTHS_DOWN, p)?;
                set_field(&mut self.fields.month, 12 - index as i32, p.name)?;
            }
            Dt::ZoneName(_) | Dt::ZoneOffset => {
                return Err(TemplateError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!(
                        "formatting field \"{}\" is only supported in to_char",
                        p.name
                    ),
                ))
            }
            Dt::ZoneHour => self.zone_hour(p, next_separator)?,
            Dt::ZoneMinute => {
                if self.fields.zone_sign == 0 {
                    self.fields.zone_sign = 1;
                }
                let (minute, _) = self.integer(p, slot_width(2))?;
                set_field(&mut self.fields.zone_minute, minute, p.name)?;
            }
            Dt::YearWithComma => {
                self.year_with_comma(p)?;
                self.skip_ordinal(p);
            }
            _ => {
                self.numeric_field(p, next_separator)?;
                self.skip_ordinal(p);
            }
        }
        Ok(())
    }

    /// A field written in digits.
    fn numeric_field(&mut self, p: &Pattern<Dt>, next_separator: bool) -> Result<()> {
        let width = match p.key {
            Dt::Hour12 | Dt::Hour24 => 2,
            Dt::Millisecond | Dt::IsoDayOfYear => 3,
            Dt::Microsecond => 6,
            Dt::Fraction(digits) => digits as usize,
            Dt::IsoDayOfWeek => 1,
            _ => p.name.len(),
        };
        let (value, length) = self.integer(p, (width, next_separator))?;
        let fields = &mut self.fields;
        let slot = match p.key {
            Dt::Hour12 | Dt::Hour24 => {
                fields.twelve_hour |= p.key == Dt::Hour12;
                &mut fields.hour
            }
            Dt::Minute => &mut fields.minute,
            Dt::Second => &mut fields.second,
            Dt::SecondOfDay => &mut fields.second_of_day,
            Dt::Millisecond => {
                set_field(&mut fields.millis, value, p.name)?;
                let scale = [100, 10].get(length.wrapping_sub(1));
                fields.millis = fields.millis.wrapping_mul(scale.copied().unwrap_or(1));
                return Ok(());
            }
            Dt::Microsecond | Dt::Fraction(_) => {
                if let Dt::Fraction(digits) = p.key {
                    fields.fraction_digits = digits as i32;
                }
                set_field(&mut fields.micros, value, p.name)?;
                let scale = [100_000, 10_000, 1000, 100, 10].get(length.wrapping_sub(1));
                fields.micros = fields.micros.wrapping_mul(scale.copied().unwrap_or(1));
                return Ok(());
            }
            Dt::Month => &mut fields.month,
            Dt::DayOfYear | Dt::IsoDayOfYear => &mut fields.day_of_year,
            Dt::DayOfMonth => &mut fields.day,
            Dt::DayOfWeek => &mut fields.weekday,
            Dt::IsoDayOfWeek => {
                set_field(&mut fields.weekday, value, p.name)?;
                // ISO numbering (Monday 1) to Sunday 1.
                fields.weekday = match fields.weekday.wrapping_add(1) {
                    8.. => 1,
                    weekday => weekday,
                };
                return Ok(());
            }
            Dt::WeekOfYear | Dt::IsoWeek => &mut fields.week,
            Dt::WeekOfMonth => &mut fields.week_of_month,
            Dt::Century => &mut fields.century,
            Dt::JulianDay => &mut fields.julian,
            Dt::Year(digits) | Dt::IsoYear(digits) => {
                set_field(&mut fields.year, value, p.name)?;
                if digits < 4 && length < 4 {
                    fields.year = year_near_2020(fields.year);
                }
                fields.year_digits = digits as i32;
                return Ok(());
            }
            // The quarter is read and ignored.
            _ => return Ok(()),
        };
        set_field(slot, value, p.name)
    }

    fn set_mode(&mut self, mode: DateMode) -> Result<()> {
        if mode == DateMode::None {
            return Ok(());
        }
        if self.fields.mode == DateMode::None {
            self.fields.mode = mode;
        } else if self.fields.mode != mode {
            return Err(
                invalid_format("invalid combination of date conventions").with_hint(
                    "Do not mix Gregorian and ISO week date conventions in a formatting template.",
                ),
            );
        }
        Ok(())
    }

    /// The index of the first of `words` the text starts with, ignoring ASCII case.
    fn word(&mut self, words: &[&str], p: &Pattern<Dt>) -> Result<usize> {
        let rest = &self.input[self.at..];
        let found = words.iter().position(|word| {
            rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word.as_bytes())
        });
        match found {
            Some(index) => {
                self.at += words[index].len();
                Ok(index)
            }
            None => {
                let end = rest
                    .iter()
                    .position(|b| b" \t\n\r\x0C".contains(b))
                    .unwrap_or(rest.len());
                let value = String::from_utf8_lossy(&rest[..end]);
                Err(
                    invalid_format(format!("invalid value \"{value}\" for \"{}\"", p.name))
                        .with_detail(
                        "The given value did not match any of the allowed values for this field.",
                    ),
                )
            }
        }
    }

    /// Reads an integer field: `width` characters, or as many digits as there are in
    /// fill mode or before a separator. Returns it and the characters read.
    fn integer(
        &mut self,
        p: &Pattern<Dt>,
        (width, next_separator): (usize, bool),
    ) -> Result<(i32, usize)> {
        let start = self.at;
        let digits_at = start
            + self.input[start..]
                .iter()
                .take_while(|&&b| is_space(char::from(b)))
                .count();
        let rest = &self.input[digits_at..];
        let copy = text_prefix(rest, width);
        let (value, end, overflow) = if p.fill || next_separator {
            let (value, used, overflow) = c_integer(&self.input[start..]);
            (value, start + used, overflow)
        } else {
            if rest.len() < width {
                return Err(invalid_format(format!(
                    "source string too short for \"{}\" formatting field",
                    p.name
                ))
                .with_detail(format!(
                    "Field requires {width} characters, but only {} remain.",
                    rest.len()
                ))
                .with_hint(FILL_MODE_HINT));
            }
            let (value, used, overflow) = c_integer(&rest[..width]);
            if used > 0 && used < width {
                return Err(invalid_value(&copy, p.name)
                    .with_detail(format!(
                        "Field requires {width} characters, but only {used} could be parsed."
                    ))
                    .with_hint(FILL_MODE_HINT));
            }
            (value, digits_at + used, overflow)
        };
        if end == start {
            return Err(invalid_value(&copy, p.name).with_detail("Value must be an integer."));
        }
        let value = i32::try_from(value)
            .ok()
            .filter(|_| !overflow)
            .ok_or_else(|| {
                TemplateError::new(
                    sqlstate::DATETIME_FIELD_OVERFLOW,
                    format!("value for \"{}\" in source string is out of range", p.name),
                )
                .with_detail("Value must be in the range -2147483648 to 2147483647.")
            })?;
        self.at = end;
        Ok((value, end - start))
    }

    /// `Y,YYY`: thousands, a comma, and up to three more digits.
    fn year_with_comma(&mut self, p: &Pattern<Dt>) -> Result<()> {
        let invalid = || invalid_format("invalid input string for \"Y,YYY\"");
        let rest = &self.input[self.at..];
        let (thousands, used, _) = c_integer(rest);
        if used == 0 || rest.get(used) != Some(&b',') {
            return Err(invalid());
        }
        let after = used + 1;
        let spaces = rest[after..]
            .iter()
            .take_while(|&&b| is_space(char::from(b)))
            .count();
        let field = &rest[after + spaces..(after + spaces + 3).min(rest.len())];
        let (years, used, _) = c_integer(field);
        if used == 0 {
            return Err(invalid());
        }
        let year = thousands
            .checked_mul(1000)
            .and_then(|t| t.checked_add(years))
            .and_then(|year| i32::try_from(year).ok())
            .ok_or_else(invalid)?;
        set_field(&mut self.fields.year, year, p.name)?;
        self.fields.year_digits = 4;
        self.at += after + spaces + used;
        Ok(())
    }

    /// `TZH`: a sign (or the minus taken for a separator before it) and the hours.
    fn zone_hour(&mut self, p: &Pattern<Dt>, next_separator: bool) -> Result<()> {
        let c = self.current();
        if matches!(c, b'+' | b'-' | b' ') {
            self.fields.zone_sign = if c == b'-' { -1 } else { 1 };
            self.at += 1;
        } else {
            let after_minus = self.at > 0 && self.input[self.at - 1] == b'-';
            self.fields.zone_sign = if self.extra_skip > 0 && after_minus {
                -1
            } else {
                1
            };
        }
        let (hour, _) = self.integer(p, (2, next_separator))?;
        set_field(&mut self.fields.zone_hour, hour, p.name)
    }

    /// Skips the two characters of an ordinal suffix the template has (`DDTH`).
    fn skip_ordinal(&mut self, p: &Pattern<Dt>) {
        if p.ordinal.is_some() {
            self.skip_character();
            self.skip_character();
        }
    }
}

const FILL_MODE_HINT: &str =
    "If your source string is not fixed-width, try using the \"FM\" modifier.";

fn invalid_value(value: &str, name: &str) -> TemplateError {
    invalid_format(format!("invalid value \"{value}\" for \"{name}\""))
}

/// Whether the field at `index` ends at a non-digit (so that it is read up to it rather
/// than by its width): an ordinal suffix, the end, a text character or a pattern
/// other than digits.
fn next_is_separator(nodes: &[Node<Dt>], index: usize) -> bool {
    if matches!(nodes.get(index), Some(Node::Pattern(p)) if p.ordinal.is_some()) {
        return true;
    }
    match nodes.get(index + 1) {
        None => true,
        Some(Node::Pattern(p)) => !p.key.is_digits(),
        Some(Node::Text(c, _)) => !c.is_ascii_digit(),
    }
}

/// A year of fewer than four digits placed as PostgreSQL does: 70–99 in the 1900s,
/// 0–69 and 100–519 in the 2000s, 520–999 in the 1000s.
fn year_near_2020(year: i32) -> i32 {
    match year {
        ..70 => year + 2000,
        70..100 => year + 1900,
        100..520 => year + 2000,
        520..1000 => year + 1000,
        _ => year,
    }
}

impl ReadFields {
    /// The date and time the fields give, checked as PostgreSQL checks them. Like
    /// PostgreSQL, this computes in 32 bits, wrapping around.
    fn resolve(&self, text: &str) -> Result<DateTimeFields> {
        let field_overflow = || {
            TemplateError::new(
                sqlstate::DATETIME_FIELD_OVERFLOW,
                format!("date/time field value out of range: \"{text}\""),
            )
        };
        let (hour, minute, second) = self.time()?;
        let date = self.date()?;
        if !date.valid() {
            return Err(field_overflow());
        }
        let micros = self.millis.wrapping_mul(1000).wrapping_add(self.micros);
        if !(0..24).contains(&hour)
            || !(0..60).contains(&minute)
            || !(0..60).contains(&second)
            || !(0..1_000_000).contains(&micros)
        {
            return Err(field_overflow());
        }
        Ok(DateTimeFields {
            year: date.year,
            month: date.month,
            day: date.day,
            hour,
            minute,
            second,
            micros,
            fraction_digits: self.fraction_digits,
            offset: self.offset(text)?,
        })
    }

    fn time(&self) -> Result<(i32, i32, i32)> {
        let (mut hour, mut minute, mut second) = (0, 0, 0);
        if self.second_of_day != 0 {
            let seconds = self.second_of_day;
            (hour, minute, second) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
        }
        if self.second != 0 {
            second = self.second;
        }
        if self.minute != 0 {
            minute = self.minute;
        }
        if self.hour != 0 {
            hour = self.hour;
        }
        if self.twelve_hour {
            if !(1..=12).contains(&hour) {
                return Err(invalid_format(format!(
                    "hour \"{hour}\" is invalid for the 12-hour clock"
                ))
                .with_hint("Use the 24-hour clock, or give an hour between 1 and 12."));
            }
            if self.pm != 0 && hour < 12 {
                hour += 12;
            } else if self.pm == 0 && hour == 12 {
                hour = 0;
            }
        }
        Ok((hour, minute, second))
    }

    /// The year from a year field (with the century for two digits) or the century.
    fn resolved_year(&self) -> Option<i32> {
        let century = if self.bc != 0 {
            self.century.wrapping_neg()
        } else {
            self.century
        };
        if self.year != 0 && self.century != 0 && self.year_digits <= 2 {
            let in_century = self.year % 100;
            return Some(match in_century {
                0 if century >= 0 => century.wrapping_mul(100),
                0 => century.wrapping_mul(100).wrapping_add(1),
                _ if century >= 0 => century.wrapping_sub(1).wrapping_mul(100) + in_century,
                _ => century.wrapping_add(1).wrapping_mul(100) - in_century + 1,
            });
        }
        if self.year != 0 {
            let year = if self.bc != 0 {
                self.year.wrapping_neg()
            } else {
                self.year
            };
            return Some(if year < 0 { year + 1 } else { year });
        }
        (self.century != 0).then(|| match century {
            0.. => century.wrapping_sub(1).wrapping_mul(100).wrapping_add(1),
            _ => century.wrapping_mul(100).wrapping_add(1),
        })
    }

    fn date(&self) -> Result<ResolvedDate> {
        let mut date = ResolvedDate {
            year: 0,
            month: 1,
            day: 1,
            has_year: false,
            has_month: false,
            has_day: false,
        };
        if let Some(year) = self.resolved_year() {
            date.year = year;
            date.has_year = true;
        }
        if self.julian != 0 {
            date.set_julian(self.julian);
        }
        let mut day_of_year = self.day_of_year;
        if self.week != 0 && self.mode == DateMode::IsoWeek {
            let start = calendar::iso_week_start(date.year, self.week);
            // Sunday (1) ends the ISO week; without a day of the week, its Monday.
            let julian = match self.weekday {
                0 => start,
                weekday if weekday > 1 => start.wrapping_add(weekday - 2),
                _ => start.wrapping_add(6),
            };
            date.set_julian(julian);
        } else if self.week != 0 {
            day_of_year = week_start(self.week);
        }
        let mut day = self.day;
        if self.week_of_month != 0 {
            day = week_start(self.week_of_month);
        }
        if day != 0 {
            date.day = day;
            date.has_day = true;
        }
        if self.month != 0 {
            date.month = self.month;
            date.has_month = true;
        }
        if day_of_year != 0 && (date.month <= 1 || date.day <= 1) {
            self.apply_day_of_year(&mut date, day_of_year)?;
        }
        Ok(date)
    }

    fn apply_day_of_year(&self, date: &mut ResolvedDate, day_of_year: i32) -> Result<()> {
        if date.year == 0 && self.bc == 0 {
            return Err(invalid_format(
                "cannot calculate day of year without year information",
            ));
        }
        if self.mode == DateMode::IsoWeek {
            let before_week_1 = calendar::iso_week_start(date.year, 1).wrapping_sub(1);
            date.set_julian(before_week_1.wrapping_add(day_of_year));
            return Ok(());
        }
        let before = calendar::days_before_month(date.year);
        let month = (1..=12).find(|&m| day_of_year <= before[m]).unwrap_or(13);
        if date.month <= 1 {
            date.month = month as i32;
        }
        if date.day <= 1 {
            date.day = day_of_year.wrapping_sub(before[month - 1]);
        }
        date.has_month = true;
        date.has_day = true;
        Ok(())
    }

    fn offset(&self, text: &str) -> Result<Option<i32>> {
        if self.zone_sign == 0 {
            return Ok(None);
        }
        if !(0..=15).contains(&self.zone_hour) || !(0..60).contains(&self.zone_minute) {
            return Err(TemplateError::new(
                sqlstate::INVALID_TIME_ZONE_DISPLACEMENT,
                format!("time zone displacement out of range: \"{text}\""),
            ));
        }
        Ok(Some(
            self.zone_sign * (self.zone_hour * 3600 + self.zone_minute * 60),
        ))
    }
}

/// The first day of week `week` (of a year or a month): 1 for week 1.
fn week_start(week: i32) -> i32 {
    week.wrapping_sub(1).wrapping_mul(7).wrapping_add(1)
}

/// A date being resolved, and which of its fields the text gave.
struct ResolvedDate {
    year: i32,
    month: i32,
    day: i32,
    has_year: bool,
    has_month: bool,
    has_day: bool,
}

impl ResolvedDate {
    /// Sets the whole date from a Julian day; one beyond chrono's dates gets a year
    /// beyond PostgreSQL's, to be refused as out of range.
    fn set_julian(&mut self, julian: i32) {
        (self.year, self.month, self.day) = match calendar::date_of_julian(julian) {
            Some(date) => (date.year(), date.month() as i32, date.day() as i32),
            None => (if julian < 0 { -10_000_000 } else { 10_000_000 }, 1, 1),
        };
        (self.has_year, self.has_month, self.has_day) = (true, true, true);
    }

    /// Whether the fields given lie within their ranges (the day within its month when
    /// year, month and day are all given).
    fn valid(&self) -> bool {
        if self.has_month && !(1..=12).contains(&self.month) {
            return false;
        }
        if self.has_day && !(1..=31).contains(&self.day) {
            return false;
        }
        if self.has_year && self.has_month && self.has_day {
            let before = calendar::days_before_month(self.year);
            let month = self.month as usize;
            return self.day <= before[month] - before[month - 1];
        }
        true
    }
}

/// Rounds a time read with `FF1`–`FF5` to that many decimals, half away from
/// 2000-01-01 as PostgreSQL rounds its timestamps (judged from `utc`); `None` beyond
/// chrono's last time.
fn round_fraction(local: NaiveDateTime, utc: NaiveDateTime, digits: i32) -> Option<NaiveDateTime> {
    if !(1..=5).contains(&digits) {
        return Some(local);
    }
    let unit = 10i64.pow(6 - digits as u32);
    let rest = i64::from(local.nanosecond() / 1000) % unit;
    let before_2000 = NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .is_some_and(|epoch| utc < epoch);
    let up = rest * 2 > unit || (rest * 2 == unit && !before_2000);
    let rounded = local.checked_sub_signed(Duration::microseconds(rest))?;
    if up {
        rounded.checked_add_signed(Duration::microseconds(unit))
    } else {
        Some(rounded)
    }
}

#[cfg(test)]
mod tests {
    //! Every expected answer here is PostgreSQL 15.18's (C locale, session time zone UTC)
    //! as psql printed it; an error as `ERROR <SQLSTATE>: <message>`, NULL as `<NULL>`.
    //! Each table starts with the cases of Henge's compatibility suite.

    use super::*;
    use std::fmt::Debug;

    /// A time as PostgreSQL prints one: `YYYY-MM-DD HH:MI:SS[.ffffff][ BC]`.
    fn time(text: &str) -> NaiveDateTime {
        let (text, bc) = match text.strip_suffix(" BC") {
            Some(text) => (text, true),
            None => (text, false),
        };
        let (date, clock) = text.split_once(' ').expect("a date and a time");
        let numbers = |text: &str, separator| -> Vec<u32> {
            text.split(separator)
                .map(|n| n.parse().expect("a number"))
                .collect()
        };
        let ymd = numbers(date, '-');
        let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
        let hms = numbers(hms, ':');
        let micros = format!("{fraction:0<6}").parse().expect("microseconds");
        let year = ymd[0] as i32;
        NaiveDate::from_ymd_opt(if bc { 1 - year } else { year }, ymd[1], ymd[2])
            .and_then(|d| d.and_hms_micro_opt(hms[0], hms[1], hms[2], micros))
            .expect("a valid time")
    }

    /// A value of a SQL type as `format_number` takes it.
    fn number(kind: &str, text: &str) -> Number {
        match kind {
            "numeric" => {
                let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
                let unscaled = format!("{whole}{fraction}").parse().expect("a numeric");
                Number::Decimal {
                    unscaled,
                    scale: fraction.len() as i8,
                }
            }
            "int4" => Number::Int4(text.parse().expect("an integer")),
            "int8" => Number::Int8(text.parse().expect("a bigint")),
            "float4" => Number::Real(text.parse().expect("a real")),
            _ => Number::Double(text.parse().expect("a double")),
        }
    }

    /// A year as PostgreSQL prints it: BC years counted from 1, with " BC" after.
    fn printed_year(year: i32) -> (i32, &'static str) {
        if year <= 0 {
            (1 - year, " BC")
        } else {
            (year, "")
        }
    }

    fn printed_date(date: NaiveDate) -> String {
        let (year, era) = printed_year(date.year());
        format!("{year:04}-{:02}-{:02}{era}", date.month(), date.day())
    }

    /// A `timestamptz` as PostgreSQL prints it at UTC.
    fn printed_timestamp(read: ParsedTimestamp) -> String {
        let offset = Duration::seconds(read.offset_seconds.unwrap_or(0).into());
        let t = read.local - offset;
        let (year, era) = printed_year(t.year());
        let micros = format!("{:06}", t.nanosecond() / 1000);
        let fraction = match micros.trim_end_matches('0') {
            "" => String::new(),
            digits => format!(".{digits}"),
        };
        format!(
            "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}{fraction}+00{era}",
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    fn printed_numeric((unscaled, scale): (i128, i8)) -> String {
        let digits = format!("{:01$}", unscaled.unsigned_abs(), scale as usize + 1);
        let (whole, fraction) = digits.split_at(digits.len() - scale as usize);
        let sign = if unscaled < 0 { "-" } else { "" };
        match fraction {
            "" => format!("{sign}{whole}"),
            _ => format!("{sign}{whole}.{fraction}"),
        }
    }

    /// An answer as the tables write it.
    fn shown<T>(result: Result<Option<T>>, print: impl Fn(T) -> String) -> String {
        match result {
            Ok(Some(value)) => print(value),
            Ok(None) => "<NULL>".to_string(),
            Err(error) => format!("ERROR {}: {}", error.sqlstate, error.message),
        }
    }

    /// Checks every case, reporting all that differ from PostgreSQL at once.
    fn check<C: Debug>(cases: &[C], expected: impl Fn(&C) -> &str, answer: impl Fn(&C) -> String) {
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|case| {
                let got = answer(case);
                (got != expected(case)).then(|| format!("{case:?}: got {got:?}"))
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "{} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn formats_timestamps() {
        check(
            TIMESTAMPS,
            |c| c.2,
            |&(template, t, _)| shown(format_datetime(template, time(t), None), |s| s),
        );
    }

    #[test]
    fn formats_timestamps_with_zones() {
        check(
            TIMESTAMPTZS,
            |c| c.4,
            |&(template, t, abbreviation, offset, _)| {
                let zone = Zone {
                    abbreviation,
                    offset_seconds: offset,
                };
                shown(format_datetime(template, time(t), Some(zone)), |s| s)
            },
        );
    }

    #[test]
    fn formats_intervals() {
        check(
            INTERVALS,
            |c| c.4,
            |&(template, months, days, micros, _)| {
                shown(format_interval(template, months, days, micros), |s| s)
            },
        );
    }

    #[test]
    fn formats_numbers() {
        check(
            NUMBERS,
            |c| c.3,
            |&(template, kind, value, _)| {
                shown(
                    format_number(template, &number(kind, value)).map(Some),
                    |s| s,
                )
            },
        );
    }

    #[test]
    fn reads_dates() {
        check(
            DATES,
            |c| c.2,
            |&(text, template, _)| shown(parse_date(text, template).map(Some), printed_date),
        );
    }

    #[test]
    fn reads_timestamps() {
        check(
            TIMESTAMPS_READ,
            |c| c.2,
            |&(text, template, _)| {
                shown(parse_timestamp(text, template).map(Some), printed_timestamp)
            },
        );
    }

    #[test]
    fn reads_numbers() {
        check(
            NUMBERS_READ,
            |c| c.2,
            |&(text, template, _)| shown(parse_number(text, template), printed_numeric),
        );
    }

    #[test]
    fn returns_the_offset_read_without_applying_it() {
        let read = parse_timestamp("2000-01-01 12:00 +05:30", "YYYY-MM-DD HH24:MI TZH:TZM");
        assert_eq!(
            read,
            Ok(ParsedTimestamp {
                local: time("2000-01-01 12:00:00"),
                offset_seconds: Some(19_800),
            })
        );
        let read = parse_timestamp("2000-01-01 12:00", "YYYY-MM-DD HH24:MI");
        assert_eq!(read.map(|r| r.offset_seconds), Ok(None));
    }

    #[test]
    fn errors_carry_postgresql_details_and_hints() {
        let detail_and_hint = |result: Result<()>| {
            let error = result.expect_err("an error");
            (error.detail, error.hint)
        };
        let fill_hint = Some(FILL_MODE_HINT.to_string());
        assert_eq!(
            detail_and_hint(parse_date("abc", "YYYY-MM-DD").map(drop)),
            (Some("Value must be an integer.".into()), None)
        );
        assert_eq!(
            detail_and_hint(parse_date("2000 1", "YYYYMMDD").map(drop)),
            (
                Some("Field requires 2 characters, but only 1 remain.".into()),
                fill_hint.clone()
            )
        );
        assert_eq!(
            detail_and_hint(parse_date("20001x01", "YYYYMMDD").map(drop)),
            (
                Some("Field requires 2 characters, but only 1 could be parsed.".into()),
                fill_hint
            )
        );
        assert_eq!(
            detail_and_hint(parse_timestamp("13:30 PM", "HH12:MI PM").map(drop)),
            (
                None,
                Some("Use the 24-hour clock, or give an hour between 1 and 12.".into())
            )
        );
        assert_eq!(
            detail_and_hint(format_interval("Mon", 1, 0, 0).map(drop)),
            (
                None,
                Some("Intervals are not tied to specific calendar dates.".into())
            )
        );
        assert_eq!(
            detail_and_hint(format_number("FM9EEEE", &Number::Int4(1)).map(drop)),
            (
                Some(
                    "\"EEEE\" may only be used together with digit and decimal point patterns."
                        .into()
                ),
                None
            )
        );
        assert_eq!(
            detail_and_hint(parse_number("123", "9.9").map(drop)),
            (
                Some(
                    "A field with precision 1, scale 0 must round to an absolute value less than 10^1."
                        .into()
                ),
                None
            )
        );
    }

    /// `to_char(timestamp, template)`: template, time, PostgreSQL's answer.
    #[rustfmt::skip]
    const TIMESTAMPS: &[(&str, &str, &str)] = &[
        ("YYYY-MM-DD", "2024-03-05 00:00:00", "2024-03-05"),
        ("YYYY-MM-DD HH24:MI:SS", "2024-03-05 14:07:09", "2024-03-05 14:07:09"),
        ("HH12:MI AM", "2024-03-05 14:07:09", "02:07 PM"),
        ("HH24:MI:SS.MS", "2024-03-05 14:07:09.123456", "14:07:09.123"),
        ("US", "2024-03-05 14:07:09.123456", "123456"),
        ("Day, DD Month YYYY", "2024-03-05 14:07:09", "Tuesday  , 05 March     2024"),
        ("FMDay, FMDD FMMonth YYYY", "2024-03-05 14:07:09", "Tuesday, 5 March 2024"),
        ("Dy Mon DD", "2024-03-05 14:07:09", "Tue Mar 05"),
        ("DY MON dy mon", "2024-03-05 14:07:09", "TUE MAR tue mar"),
        ("YY YYY Y,YYY Q WW W DDD D ID IW IYYY J", "2024-03-05 14:07:09", "24 024 2,024 1 10 1 065 3 2 10 2024 2460375"),
        ("IYYY-IW-ID", "2024-12-30 00:00:00", "2025-01-1"),
        ("IYYY-IW", "2021-01-03 00:00:00", "2020-53"),
        ("HH HH12 am pm A.M. P.M.", "2024-03-05 00:30:00", "12 12 am am A.M. A.M."),
        ("HH12 PM", "2024-03-05 12:00:00", "12 PM"),
        ("DDth Mon", "2024-03-05 14:07:09", "05th Mar"),
        ("FMDDth", "2024-03-01 00:00:00", "1st"),
        ("DDTH", "2024-03-05 14:07:09", "05TH"),
        ("DDth", "2024-03-05 14:07:09", "05th"),
        ("\"Year\" YYYY, \"quarter\" Q", "2024-03-05 14:07:09", "Year 2024, quarter 1"),
        ("YYYY\\\"MM", "2024-03-05 14:07:09", "2024\"03"),
        ("SSSS", "2024-03-05 14:07:09", "50829"),
        ("CC", "2024-03-05 14:07:09", "21"),
        ("RM", "2024-03-05 14:07:09", "III "),
        ("FF1 FF2 FF3 FF4 FF5 FF6", "2024-03-05 14:07:09.123456", "1 12 123 1234 12345 123456"),
        ("MS US", "2024-03-05 14:07:09.000001", "000 000001"),
        ("SSSSS", "2024-03-05 23:59:59", "86399"),
        ("HH24:MI:SS", "2024-03-05 00:00:00", "00:00:00"),
        ("HH12 AM a.m.", "2024-03-05 12:30:00", "12 PM p.m."),
        ("HH12 PM p.m.", "2024-03-05 23:30:00", "11 PM p.m."),
        ("YYYY BC B.C. ad a.d.", "0044-03-15 10:00:00 BC", "0044 BC B.C. bc b.c."),
        ("YYYY AD", "0001-01-01 00:00:00", "0001 AD"),
        ("YYYY-MM-DD BC", "0001-12-31 00:00:00 BC", "0001-12-31 BC"),
        ("Y,YYY YYY YY Y", "0044-03-15 00:00:00 BC", "0,044 044 44 4"),
        ("CC", "0001-01-01 00:00:00 BC", "-01"),
        ("CC", "0100-01-01 00:00:00 BC", "-01"),
        ("CC", "0101-01-01 00:00:00 BC", "-02"),
        ("CC", "2000-06-01 00:00:00", "20"),
        ("CC", "2001-01-01 00:00:00", "21"),
        ("CC", "12345-06-07 00:00:00", "124"),
        ("YYYY Y,YYY", "12345-06-07 00:00:00", "12345 12,345"),
        ("IYYY IW ID IDDD", "0001-01-01 00:00:00", "0001 01 1 001"),
        ("J", "4713-11-24 00:00:00 BC", "366"),
        ("IYYY-IW-ID IDDD", "2020-12-31 00:00:00", "2020-53-4 368"),
        ("IYYY-IW-ID IDDD", "2021-01-03 00:00:00", "2020-53-7 371"),
        ("IYYY-IW-ID IDDD", "2021-01-04 00:00:00", "2021-01-1 001"),
        ("IYYY-IW-ID IDDD", "2026-12-31 00:00:00", "2026-53-4 368"),
        ("IYYY-IW-ID IDDD", "2027-01-01 00:00:00", "2026-53-5 369"),
        ("IYYY-IW-ID IDDD", "2008-12-29 00:00:00", "2009-01-1 001"),
        ("IYYY-IW-ID IDDD", "2010-01-03 00:00:00", "2009-53-7 371"),
        ("IYY IY I", "2010-01-03 00:00:00", "009 09 9"),
        ("DDD WW W D Q", "2000-02-29 00:00:00", "060 09 5 3 1"),
        ("DDD WW", "2000-12-31 00:00:00", "366 53"),
        ("FMDDD FMWW FMDD FMMM FMHH24", "2024-01-02 03:04:05", "2 1 2 1 3"),
        ("MONTH|Month|month|MON|Mon|mon", "2024-09-05 00:00:00", "SEPTEMBER|September|september|SEP|Sep|sep"),
        ("FMMONTH|FMMonth|FMmonth", "2024-05-05 00:00:00", "MAY|May|may"),
        ("DAY|Day|day|DY|Dy|dy", "2024-03-06 00:00:00", "WEDNESDAY|Wednesday|wednesday|WED|Wed|wed"),
        ("FMDAY|FMDay|FMday", "2024-03-09 00:00:00", "SATURDAY|Saturday|saturday"),
        ("TMMonth|TMDay|TMmon", "2024-03-05 00:00:00", "March|Tuesday|mar"),
        ("RM rm FMRM FMrm", "2024-09-05 00:00:00", "IX   ix   IX ix"),
        ("RM", "2024-12-05 00:00:00", "XII "),
        ("DDth DDTH", "2024-03-01 00:00:00", "01st 01ST"),
        ("DDth", "2024-03-02 00:00:00", "02nd"),
        ("DDth", "2024-03-03 00:00:00", "03rd"),
        ("DDth", "2024-03-11 00:00:00", "11th"),
        ("DDth", "2024-03-12 00:00:00", "12th"),
        ("DDth", "2024-03-13 00:00:00", "13th"),
        ("DDth", "2024-03-21 00:00:00", "21st"),
        ("DDth", "2024-03-22 00:00:00", "22nd"),
        ("DDth", "2024-03-23 00:00:00", "23rd"),
        ("Jth DDDth YYYYth HH24th MIth SSth", "2024-03-05 01:02:03", "2460375th 065th 2024th 01st 02nd 03rd"),
        ("Monthth DaySP DDSP DDsp", "2024-03-05 14:07:09", "March     Tuesday   05 05sp"),
        ("FMx|FM|fmMonth|Fmx", "2024-03-05 14:07:09", "x||March|Fmx"),
        ("FMTMMonth", "2024-03-05 14:07:09", "T03onth"),
        ("HH24\"h\"MI\"m\"", "2024-03-05 01:02:03", "01h02m"),
        ("\"a\\\"b\" \"x\\\\y\" \\x \"abc", "2024-03-05 14:07:09", "a\"b x\\y \\x abc"),
        ("YYYY é MM", "2024-03-05 14:07:09", "2024 é 03"),
        ("FX YYYY fx", "2024-03-05 14:07:09", " 2024 "),
        ("yyyy-mm-dd hh24:mi:ss", "2024-03-05 14:07:09", "2024-03-05 14:07:09"),
        ("Yyyy dAY mONTH Hh24", "2024-03-05 14:07:09", "4024 3A4 mONTH Hh24"),
        ("TZ tz TZH TZM OF", "2024-03-05 14:07:09", "  +00 00 +00"),
        ("Y,YYY", "2024-03-05 00:00:00", "2,024"),
        ("FMY,YYY FMYYYY", "0099-01-01 00:00:00", "0,099 99"),
        ("YYYY", "0009-01-01 00:00:00", "0009"),
        ("FMYYYY FMCC", "0009-01-01 00:00:00", "9 1"),
        ("HH:MI:SS.US", "1970-01-01 00:00:00.01", "12:00:00.010000"),
        ("", "2024-03-05 14:07:09", "<NULL>"),
    ];

    /// `to_char(timestamptz, template)` with the session zone: template, wall-clock time,
    /// zone abbreviation, offset, PostgreSQL's answer.
    #[rustfmt::skip]
    const TIMESTAMPTZS: &[(&str, &str, &str, i32, &str)] = &[
        ("YYYY-MM-DD HH24:MI:SS TZ OF", "2024-03-05 14:07:09", "UTC", 0, "2024-03-05 14:07:09 UTC +00"), // UTC
        ("TZ tz TZH TZM OF", "2024-07-05 14:07:09", "EDT", -14400, "EDT edt -04 00 -04"), // America/New_York
        ("TZ TZH:TZM OF FMOF", "2024-03-05 14:07:09", "IST", 19800, "IST +05:30 +05:30 +5:30"), // Asia/Kolkata
        ("OF TZH TZM", "2024-03-05 14:07:09", "NST", -12600, "-03:30 -03 30"), // America/St_Johns
        ("TZ OF", "2024-03-05 14:07:09", "+0545", 20700, "+0545 +05:45"), // Asia/Kathmandu
        ("tz OF", "2024-03-05 14:07:09", "+04", 14400, "+04 +04"), // Asia/Dubai
        ("TZ OF TZHTZM", "1900-01-01 00:00:00", "PMT", 561, "PMT +00:09 +0009"), // Europe/Paris
        ("TZ OF", "2024-03-05 14:07:09", "+1345", 49500, "+1345 +13:45"), // Pacific/Chatham
    ];

    /// `to_char(interval, template)`: template, months, days, microseconds, PostgreSQL's
    /// answer.
    #[rustfmt::skip]
    const INTERVALS: &[(&str, i32, i32, i64, &str)] = &[
        ("HH24:MI:SS", 0, 1, 7384000000, "02:03:04"),
        ("HH12 HH24", 0, 0, 54000000000, "03 15"),
        ("HH HH12 HH24 MI SS MS US", 0, 0, 0, "12 12 00 00 00 000 000000"),
        ("HH HH12 HH24 MI SS MS US", 14, 40, 94029500000, "02 02 26 07 09 500 500000"),
        ("HH HH12 HH24 MI SS MS US", -14, -40, -94029500000, "-02 -02 -26 -07 -09 -500 -500000"),
        ("HH HH12 HH24 MI SS MS US", -3, -5, -1000, "12 12 00 00 00 -01 -01000"),
        ("HH HH12 HH24 MI SS MS US", -12000, 0, 0, "12 12 00 00 00 000 000000"),
        ("HH HH12 HH24 MI SS MS US", 12, 0, 0, "12 12 00 00 00 000 000000"),
        ("HH HH12 HH24 MI SS MS US", -12, 0, 0, "12 12 00 00 00 000 000000"),
        ("SSSS AM a.m.", 0, 0, 0, "0 AM a.m."),
        ("SSSS AM a.m.", 14, 40, 94029500000, "94029 AM a.m."),
        ("SSSS AM a.m.", -14, -40, -94029500000, "-94029 AM a.m."),
        ("SSSS AM a.m.", -3, -5, -1000, "0 AM a.m."),
        ("SSSS AM a.m.", -12000, 0, 0, "0 AM a.m."),
        ("SSSS AM a.m.", 12, 0, 0, "0 AM a.m."),
        ("SSSS AM a.m.", -12, 0, 0, "0 AM a.m."),
        ("YYYY YYY YY Y Y,YYY", 0, 0, 0, "0000 000 00 0 0,000"),
        ("YYYY YYY YY Y Y,YYY", 14, 40, 94029500000, "0001 001 01 1 0,001"),
        ("YYYY YYY YY Y Y,YYY", -14, -40, -94029500000, "-0001 -001 -01 -1 0,-01"),
        ("YYYY YYY YY Y Y,YYY", -3, -5, -1000, "0000 000 00 0 0,000"),
        ("YYYY YYY YY Y Y,YYY", -12000, 0, 0, "-1000 0000 000 0 -1,000"),
        ("YYYY YYY YY Y Y,YYY", 12, 0, 0, "0001 001 01 1 0,001"),
        ("YYYY YYY YY Y Y,YYY", -12, 0, 0, "-0001 -001 -01 -1 0,-01"),
        ("IYYY IYY IY I", 0, 0, 0, "-001 -01 -1 -1"),
        ("IYYY IYY IY I", 14, 40, 94029500000, "0001 001 01 1"),
        ("IYYY IYY IY I", -14, -40, -94029500000, "-0002 -002 -02 -2"),
        ("IYYY IYY IY I", -3, -5, -1000, "-001 -01 -1 -1"),
        ("IYYY IYY IY I", -12000, 0, 0, "-1001 -001 -01 -1"),
        ("IYYY IYY IY I", 12, 0, 0, "0000 000 00 0"),
        ("IYYY IYY IY I", -12, 0, 0, "-0002 -002 -02 -2"),
        ("MM DD DDD WW W", 0, 0, 0, "00 00 000 01 1"),
        ("MM DD DDD WW W", 14, 40, 94029500000, "02 40 460 66 6"),
        ("MM DD DDD WW W", -14, -40, -94029500000, "-02 -40 -460 -64 -4"),
        ("MM DD DDD WW W", -3, -5, -1000, "-03 -5 -95 -12 1"),
        ("MM DD DDD WW W", -12000, 0, 0, "00 00 -360000 -51427 1"),
        ("MM DD DDD WW W", 12, 0, 0, "00 00 360 52 1"),
        ("MM DD DDD WW W", -12, 0, 0, "00 00 -360 -50 1"),
        ("CC J Q RM rm", 0, 0, 0, "00 1721028   "),
        ("CC J Q RM rm", 14, 40, 94029500000, "00 1721496 1 II   ii  "),
        ("CC J Q RM rm", -14, -40, -94029500000, "00 1720562 0 XI   xi  "),
        ("CC J Q RM rm", -3, -5, -1000, "00 1720932 0 X    x   "),
        ("CC J Q RM rm", -12000, 0, 0, "-10 1355786  I    i   "),
        ("CC J Q RM rm", 12, 0, 0, "00 1721394  XII  xii "),
        ("CC J Q RM rm", -12, 0, 0, "00 1720663  I    i   "),
        ("IW IDDD", 0, 0, 0, "48 331"),
        ("IW IDDD", 14, 40, 94029500000, "11 071"),
        ("IW IDDD", -14, -40, -94029500000, "34 236"),
        ("IW IDDD", -3, -5, -1000, "34 235"),
        ("IW IDDD", -12000, 0, 0, "48 335"),
        ("IW IDDD", 12, 0, 0, "48 333"),
        ("IW IDDD", -12, 0, 0, "49 337"),
        ("DDth HH24TH FMMM FMDD FMHH", 0, 0, 0, "00th 00TH 0 0 12"),
        ("DDth HH24TH FMMM FMDD FMHH", 14, 40, 94029500000, "40th 26TH 2 40 2"),
        ("DDth HH24TH FMMM FMDD FMHH", -14, -40, -94029500000, "-40th -26TH -2 -40 -2"),
        ("DDth HH24TH FMMM FMDD FMHH", -3, -5, -1000, "-5th 00TH -3 -5 12"),
        ("DDth HH24TH FMMM FMDD FMHH", -12000, 0, 0, "00th 00TH 0 0 12"),
        ("DDth HH24TH FMMM FMDD FMHH", 12, 0, 0, "00th 00TH 0 0 12"),
        ("DDth HH24TH FMMM FMDD FMHH", -12, 0, 0, "00th 00TH 0 0 12"),
        ("Mon", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("Month", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("DAY", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("Dy", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("D", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("ID", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("BC", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("a.d.", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("TZ", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("TZH", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("OF", 1, 1, 1, "ERROR 22007: invalid format specification for an interval value"),
        ("", 0, 0, 0, "<NULL>"),
        // PostgreSQL's 32-bit calendar arithmetic wraps around.
        ("J", 2147483647, 0, 0, "939902916"),
        ("DDD WW", 2147483647, 0, 0, "-30 -3"),
        ("IW IYYY", 0, 2147483647, 0, "-306783330 -001"),
    ];

    /// `to_char(number, template)`: template, SQL type, value, PostgreSQL's answer.
    #[rustfmt::skip]
    const NUMBERS: &[(&str, &str, &str, &str)] = &[
        ("999", "int4", "125", " 125"),
        ("999D9", "float4", "125.8", " 125.8"),
        ("999D99S", "numeric", "-125.8", "125.80-"),
        ("0.9", "numeric", "0.1", " 0.1"),
        ("9990999.9", "int4", "12", "    0012.0"),
        ("FM999", "int4", "485", "485"),
        ("999", "int4", "-485", "-485"),
        ("9,999", "int4", "1485", " 1,485"),
        ("9G999", "int4", "1485", " 1,485"),
        ("999.999", "numeric", "148.5", " 148.500"),
        ("FM999.999", "numeric", "148.5", "148.5"),
        ("9G999D999", "numeric", "3148.5", " 3,148.500"),
        ("999S", "int4", "-485", "485-"),
        ("999MI", "int4", "-485", "485-"),
        ("PL999", "int4", "485", "+ 485"),
        ("999PR", "int4", "-485", "<485>"),
        ("SG999", "int4", "485", "+485"),
        ("FMSG999", "int4", "-485", "-485"),
        ("99", "int4", "12345", " ##"),
        ("99999.9", "numeric", "1234.567", "  1234.6"),
        ("999th", "int4", "482", " 482nd"),
        ("RN", "int4", "485", "        CDLXXXV"),
        ("FMRN", "numeric", "5.2", "V"),
        ("FM9990999.9", "int4", "12", "0012."),
        ("9.99EEEE", "numeric", "0.0004859", " 4.86e-04"),
        ("9.9EEEE", "numeric", "1234567.8", " 1.2e+06"),
        ("999.99", "numeric", "123.456", " 123.46"),
        ("FM999,999,999", "int4", "123456789", "123,456,789"),
        ("9.9", "float8", "1.5", " 1.5"),
        ("FM0.00", "numeric", "-0.5", "-0.50"),
        ("99.99", "int4", "0", "   .00"),
        ("FM90.99", "int4", "0", "0."),
        (".9", "numeric", "0.1", " .#"),
        (".99", "int4", "0", " .##"),
        ("9.99", "int4", "0", "  .00"),
        ("999C", "int4", "485", " 485"),
        ("B999", "int4", "485", " 485"),
        ("999SP", "int4", "485", " 485"),
        ("L999", "int4", "485", "  485"),
        ("99V00", "int4", "12", "   12"),
        ("99V99", "int4", "12", " 1200"),
        ("99V9", "numeric", "12.345", " 123"),
        ("9V00", "int4", "12", "  12"),
        ("9V99", "int4", "2147483647", "-100"),
        ("9V999", "int8", "92233720368547758", "ERROR 22003: bigint out of range"),
        ("x9.99EEEEy", "numeric", "0.0004859", " 4.86e-04"),
        ("9.99EEEE", "numeric", "9.999", " 10.00e+00"),
        ("9.99EEEE", "float8", "9.999", " 1.00e+01"),
        ("9.99EEEE", "int4", "-12", "-1.20e+01"),
        ("9.99EEEE", "int4", "0", " 0.00e+00"),
        ("99.9EEEE", "int4", "485", " 4.8e+02"),
        ("99.9EEEE", "int8", "485", " 4.9e+02"),
        ("9EEEE", "int8", "999", " 10e+02"),
        ("9.9EEEE", "float8", "1e20", " 1.0e+20"),
        ("9.99EEEE", "float8", "Infinity", " #.######"),
        ("9.9EEEE", "float8", "NaN", " #.#####"),
        ("9999", "float8", "Infinity", " ####"),
        ("9999", "float8", "-Infinity", "-####"),
        ("9999.9", "float8", "NaN", "  NaN"),
        ("9", "float8", "NaN", " #"),
        ("FM9999", "float8", "NaN", "NaN"),
        ("S9999", "float8", "NaN", " +NaN"),
        ("9999.99", "float4", "Infinity", " ####."),
        ("9.99", "float8", "0.125", "  .12"),
        ("9.99", "numeric", "0.125", "  .13"),
        ("9", "float8", "2.5", " 2"),
        ("9", "float8", "-0.4", "-0"),
        ("9", "numeric", "-0.4", " 0"),
        ("9.99", "float8", "-0.001", " -.00"),
        ("9.99", "numeric", "-0.001", "  .00"),
        ("9999999999999999999.99", "float8", "1234567890123456789", " 1234567890123456768"),
        ("9999999999.99", "float4", "1234567.8", "    1234568"),
        ("9.9999999999", "float4", "0.1", "  .10000"),
        ("9.99999999999999999999", "float8", "0.1", "  .10000000000000"),
        ("RN", "int4", "4000", "###############"),
        ("RN", "int4", "0", "###############"),
        ("rn", "int4", "3999", "      mmmcmxcix"),
        ("RN", "numeric", "2.5", "            III"),
        ("RN", "float8", "2.5", "             II"),
        ("FMRN", "int4", "1994", "MCMXCIV"),
        ("RN", "float8", "NaN", "###############"),
        ("RN", "int8", "3000000000", "ERROR 22003: integer out of range"),
        ("9th", "int4", "-1", "-1"),
        ("99TH", "int4", "11", " 11TH"),
        ("9.9th", "numeric", "1.5", " 1.5"),
        ("99th", "int4", "12345", " ##"),
        ("999th", "int4", "112", " 112th"),
        ("999th", "int4", "123", " 123rd"),
        ("FM999th", "int4", "1", "1st"),
        ("FM999TH", "int4", "22", "22ND"),
        ("9th", "float8", "NaN", " #"),
        ("FM999", "int4", "-485", "-485"),
        ("FMPL999", "int4", "485", "+485"),
        ("PL999", "int4", "-485", " -485"),
        ("MI999", "int4", "-485", "-485"),
        ("MI999", "int4", "485", " 485"),
        ("FMMI999", "int4", "485", "485"),
        ("999PL", "int4", "485", " 485+"),
        ("999SG", "int4", "-485", "485-"),
        ("S999", "int4", "485", "+485"),
        ("S9.99", "numeric", "-5.5", "-5.50"),
        ("9.99S", "numeric", "-5.5", "5.50-"),
        ("9S.9", "numeric", "-5.5", "5.5-"),
        ("S9.9", "numeric", "-0.5", " -.5"),
        ("S0.9", "numeric", "0.5", "+0.5"),
        ("FMS999", "int4", "485", "+485"),
        ("FM999S", "int4", "-485", "485-"),
        ("9,999,999", "int4", "123", "       123"),
        ("FM9,999,999", "int4", "123", "123"),
        ("0,000", "int4", "123", " 0,123"),
        ("9,999.9PR", "numeric", "-123.45", "  <123.5>"),
        ("9,999.9PR", "numeric", "123.45", "   123.5 "),
        ("FM9,999.9PR", "numeric", "123.45", "123.5"),
        ("FM9,999.9PR", "numeric", "-123.45", "<123.5>"),
        ("FM9.9", "numeric", "0.5", ".5"),
        ("FM9.9", "int4", "0", "0."),
        ("FM9.9", "int4", "5", "5."),
        ("FM9.09", "int4", "5", "5.0"),
        ("FM9.009", "numeric", "5.1", "5.10"),
        ("FM9", "int4", "0", "0"),
        ("9", "int4", "0", " 0"),
        ("FM99.0", "numeric", "0.0004859", ".0"),
        ("FM9909.9099", "int4", "13", "13.00"),
        ("FM00.000", "numeric", "1.5", "01.500"),
        ("0999.99S", "numeric", "-12.3", "0012.30-"),
        ("S0999.99", "numeric", "12.3", "+0012.30"),
        ("9999.9,9", "numeric", "1234.56", " 1234.5,6"),
        ("9999.,99", "numeric", "1234.56", " 1234. 56"),
        ("9,9,9,9,.,9,9", "numeric", "1234.56", " 1,2,3,4,. 5,6"),
        ("SG0.,", "int4", "12345", "+#. "),
        ("\"x\"999\"y\"", "int4", "5", "x   5y"),
        ("999 units", "int4", "5", "  5+ unit"),
        ("$999.99", "numeric", "1.5", "$   1.50"),
        ("RNSG", "int4", "5", "              V"),
        ("999,999,999,999,999,999.99999", "numeric", "-123456789012.123456", "        -123,456,789,012.12346"),
        ("9.99", "numeric", "99999999999999999999999999999999999.5", " #.##"),
        ("FM999999999999999999999999999999999999999", "numeric", "-99999999999999999999999999999999999999", "-99999999999999999999999999999999999999"),
        ("", "int4", "5", ""),
        ("9.9.9", "int4", "1", "ERROR 42601: multiple decimal points"),
        ("9V9.9", "int4", "1", "ERROR 42601: cannot use \"V\" and decimal point together"),
        ("S999S", "int4", "1", "ERROR 42601: cannot use \"S\" twice"),
        ("999MIS", "int4", "1", "ERROR 42601: cannot use \"S\" and \"PL\"/\"MI\"/\"SG\"/\"PR\" together"),
        ("S999PR", "int4", "1", "ERROR 42601: cannot use \"PR\" and \"S\"/\"PL\"/\"MI\"/\"SG\" together"),
        ("999PR9", "int4", "1", "ERROR 42601: \"9\" must be ahead of \"PR\""),
        ("0PR0", "int4", "1", "ERROR 42601: \"0\" must be ahead of \"PR\""),
        ("EEEE9", "int4", "1", "ERROR 42601: \"EEEE\" must be the last pattern used"),
        ("9.9EEEEEEEE", "int4", "1", "ERROR 42601: cannot use \"EEEE\" twice"),
        ("FM9EEEE", "int4", "1", "ERROR 42601: \"EEEE\" is incompatible with other formats"),
        ("RN9.9EEEE", "int4", "1", "ERROR 42601: \"EEEE\" is incompatible with other formats"),
        ("9V9EEEE", "int4", "1", "ERROR 42601: \"EEEE\" is incompatible with other formats"),
        ("S9EEEE", "int4", "1", "ERROR 42601: \"EEEE\" is incompatible with other formats"),
    ];

    /// `to_date(text, template)`: text, template, PostgreSQL's answer.
    #[rustfmt::skip]
    const DATES: &[(&str, &str, &str)] = &[
        ("05 Dec 2000", "DD Mon YYYY", "2000-12-05"),
        ("2000-12-05", "YYYY-MM-DD", "2000-12-05"),
        ("20001205", "YYYYMMDD", "2000-12-05"),
        ("2000 Dec", "YYYY Mon", "2000-12-01"),
        ("5/12/2000", "DD/MM/YYYY", "2000-12-05"),
        ("2024-060", "YYYY-DDD", "2024-02-29"),
        ("2000-13-01", "YYYY-MM-DD", "ERROR 22008: date/time field value out of range: \"2000-13-01\""),
        ("abc", "YYYY-MM-DD", "ERROR 22007: invalid value \"abc\" for \"YYYY\""),
        ("2000 1", "YYYYMMDD", "ERROR 22007: source string too short for \"MM\" formatting field"),
        ("x", "Month", "ERROR 22007: invalid value \"x\" for \"Month\""),
        ("2000-02-30", "YYYY-MM-DD", "ERROR 22008: date/time field value out of range: \"2000-02-30\""),
        ("02-30", "MM-DD", "0001-03-01 BC"),
        ("99999999999", "YYYY", "ERROR 22008: value for \"YYYY\" in source string is out of range"),
        ("2000 2001", "YYYY YYYY", "ERROR 22007: conflicting values for \"YYYY\" field in formatting string"),
        ("2000 2024", "YYYY IYYY", "ERROR 22007: invalid combination of date conventions"),
        ("", "", "0001-01-01 BC"),
        ("2000-01-01", "", "0001-01-01 BC"),
        ("2024 366", "YYYY DDD", "2024-12-31"),
        ("2023 366", "YYYY DDD", "ERROR 22008: date/time field value out of range: \"2023 366\""),
        ("2024 03 60", "YYYY MM DDD", "2024-03-29"),
        ("366", "DDD", "ERROR 22007: cannot calculate day of year without year information"),
        ("2460000", "J", "2023-02-24"),
        ("0", "J", "0001-01-01 BC"),
        ("-1", "J", "ERROR 22008: date out of range: \"-1\""),
        ("4714-11-24 BC", "YYYY-MM-DD BC", "4714-11-24 BC"),
        ("4714-11-23 BC", "YYYY-MM-DD BC", "ERROR 22008: date out of range: \"4714-11-23 BC\""),
        ("4714-10-31 BC", "YYYY-MM-DD BC", "ERROR 22008: date out of range: \"4714-10-31 BC\""),
        ("0044-03-15 BC", "YYYY-MM-DD BC", "0044-03-15 BC"),
        ("0044-03-15 b.c.", "YYYY-MM-DD B.C.", "0044-03-15 BC"),
        ("1,999", "Y,YYY", "1999-01-01"),
        ("1999", "Y,YYY", "ERROR 22007: invalid input string for \"Y,YYY\""),
        ("21 05", "CC YY", "2005-01-01"),
        ("21", "CC", "2001-01-01"),
        ("5 05 BC", "CC YY BC", "0405-01-01 BC"),
        ("5 BC", "CC BC", "0500-01-01 BC"),
        ("00", "YY", "2000-01-01"),
        ("69", "YY", "2069-01-01"),
        ("70", "YY", "1970-01-01"),
        ("519", "YYY", "2519-01-01"),
        ("520", "YYY", "1520-01-01"),
        ("5", "Y", "2005-01-01"),
        ("05", "YYYY", "0005-01-01"),
        ("2024 10 3", "IYYY IW ID", "2024-03-06"),
        ("2024 10", "IYYY IW", "2024-03-04"),
        ("2024 100", "IYYY IDDD", "2024-04-09"),
        ("2024 10", "YYYY WW", "2024-03-04"),
        ("2024 10 2", "YYYY MM W", "2024-10-08"),
        ("2024 10 7", "IYYY IW ID", "2024-03-10"),
        ("5 2024-03-05", "D YYYY-MM-DD", "2024-03-05"),
        ("Friday 2024-03-05", "Day YYYY-MM-DD", "2024-03-05"),
        ("xii 2000", "RM YYYY", "2000-12-01"),
        ("IV 2000", "rm YYYY", "2000-04-01"),
        ("XIII 2000", "RM YYYY", "ERROR 22007: invalid value \"I 20\" for \"YYYY\""),
        ("2000  01 01", "YYYY MM DD", "2000-01-01"),
        ("2000--01-01", "YYYY-MM-DD", "ERROR 22008: date/time field value out of range: \"2000--01-01\""),
        ("2000/01/01", "YYYY-MM-DD", "2000-01-01"),
        ("2000-01-01", "FXYYYY MM DD", "2000-01-01"),
        ("2000 01 01", "FXYYYY-MM-DD", "2000-01-01"),
        ("2000  01-01", "FXYYYY-MM-DD", "2000-01-01"),
        ("2000-1-1", "YYYY-MM-DD", "2000-01-01"),
        ("2000-1-1", "FXYYYY-MM-DD", "2000-01-01"),
        ("2000-1-1", "YYYY-FMMM-FMDD", "2000-01-01"),
        ("20000101", "FMYYYYMMDD", "ERROR 22008: date out of range: \"20000101\""),
        ("1st Jan 2000", "DDth Mon YYYY", "2000-01-01"),
        ("Jan2000", "MonYYYY", "2000-01-01"),
        ("January2000", "MonthYYYY", "2000-01-01"),
        ("Ja 2000", "Mon YYYY", "ERROR 22007: invalid value \"Ja\" for \"Mon\""),
        ("2000 Mayday", "YYYY Month", "2000-05-01"),
        ("jan-05-2000", "mon-DD-YYYY", "2000-01-05"),
        ("2000x01x01", "YYYYxMMxDD", "2000-01-01"),
        ("2000x01x01", "YYYY\"x\"MM\"x\"DD", "2000-01-01"),
        ("2000é01é01", "YYYY-MM-DD", "ERROR 22007: invalid value \"é\" for \"MM\""),
        ("2000-01-01 5", "YYYY-MM-DD Q", "2000-01-01"),
        ("2000-01-01 UTC", "YYYY-MM-DD TZ", "ERROR 0A000: formatting field \"TZ\" is only supported in to_char"),
        ("2000-01-01 +00", "YYYY-MM-DD OF", "ERROR 0A000: formatting field \"OF\" is only supported in to_char"),
        ("2000-01-01 +16", "YYYY-MM-DD TZH", "ERROR 22009: time zone displacement out of range: \"2000-01-01 +16\""),
        ("Jan Feb", "Mon Mon", "ERROR 22007: conflicting values for \"Mon\" field in formatting string"),
        ("2000 AD BC", "YYYY AD BC", "2000-01-01 BC"),
        ("-2000-01-01", "YYYY-MM-DD", "2000-01-01 BC"),
        ("0000-01-01", "YYYY-MM-DD", "0001-01-01 BC"),
        ("2000-01-01 24:00", "YYYY-MM-DD HH24:MI", "ERROR 22008: date/time field value out of range: \"2000-01-01 24:00\""),
        ("1 1", "J J", "4714-11-25 BC"),
        ("2000-01-01", "IYYY-MM-DD", "ERROR 22007: invalid combination of date conventions"),
        ("001", "DDD", "ERROR 22007: cannot calculate day of year without year information"),
        ("2000 1,234", "YYYY Y,YYY", "ERROR 22007: conflicting values for \"Y,YYY\" field in formatting string"),
        ("x,234", "Y,YYY", "ERROR 22007: invalid input string for \"Y,YYY\""),
    ];

    /// `to_timestamp(text, template)` in a session at UTC: text, template, PostgreSQL's
    /// answer.
    #[rustfmt::skip]
    const TIMESTAMPS_READ: &[(&str, &str, &str)] = &[
        ("05 Dec 2000 14:30:15", "DD Mon YYYY HH24:MI:SS", "2000-12-05 14:30:15+00"),
        ("2000-12-05 02:30 PM", "YYYY-MM-DD HH12:MI AM", "2000-12-05 14:30:00+00"),
        ("2024-03-05 14:07:09.123", "YYYY-MM-DD HH24:MI:SS.MS", "2024-03-05 14:07:09.123+00"),
        ("2460000", "J", "2023-02-24 00:00:00+00"),
        ("14:30", "HH24:MI", "0001-01-01 14:30:00+00 BC"),
        ("13:30 PM", "HH12:MI PM", "ERROR 22007: hour \"13\" is invalid for the 12-hour clock"),
        ("12:00 am", "HH12:MI am", "0001-01-01 00:00:00+00 BC"),
        ("12:00 p.m.", "HH12:MI a.m.", "0001-01-01 12:00:00+00 BC"),
        ("0:00 am", "HH:MI am", "ERROR 22007: hour \"0\" is invalid for the 12-hour clock"),
        ("2000-01-01 +05:30", "YYYY-MM-DD TZH:TZM", "1999-12-31 18:30:00+00"),
        ("2000-01-01 -05", "YYYY-MM-DD TZH", "2000-01-01 05:00:00+00"),
        ("2000-01-01 -5", "YYYY-MM-DD TZH", "2000-01-01 05:00:00+00"),
        ("2000-01-01 05:61", "YYYY-MM-DD TZH:TZM", "ERROR 22009: time zone displacement out of range: \"2000-01-01 05:61\""),
        ("2000-01-01 12:00 +0530", "YYYY-MM-DD HH24:MI TZHTZM", "2000-01-01 06:30:00+00"),
        ("2000-01-01 12:00-05", "YYYY-MM-DD HH24:MITZH", "2000-01-01 17:00:00+00"),
        ("2000-01-01 12:00 30", "YYYY-MM-DD HH24:MI TZM", "2000-01-01 11:30:00+00"),
        ("2000-01-01 12:00  -03", "YYYY-MM-DD HH24:MI TZH", "2000-01-01 15:00:00+00"),
        ("12:00:00.15", "HH24:MI:SS.FF1", "0001-01-01 12:00:00.1+00 BC"),
        ("2024-01-01 12:00:00.15", "YYYY-MM-DD HH24:MI:SS.FF1", "2024-01-01 12:00:00.2+00"),
        ("1999-12-31 12:00:00.15", "YYYY-MM-DD HH24:MI:SS.FF1", "1999-12-31 12:00:00.1+00"),
        ("2024-01-01 12:00:00.123456", "YYYY-MM-DD HH24:MI:SS.FF3", "2024-01-01 12:00:00.123+00"),
        ("2024-01-01 12:00:00.999999", "YYYY-MM-DD HH24:MI:SS.FF2", "2024-01-01 12:00:01+00"),
        ("2000-01-01 10:00:00.1234567", "YYYY-MM-DD HH24:MI:SS.US", "ERROR 22008: date/time field value out of range: \"2000-01-01 10:00:00.1234567\""),
        ("10:00:00.5", "HH24:MI:SS.MS", "0001-01-01 10:00:00.5+00 BC"),
        ("10:00:00.05", "HH24:MI:SS.MS", "0001-01-01 10:00:00.05+00 BC"),
        ("10:00:00.1 2", "HH24:MI:SS.MS US", "0001-01-01 10:00:00.3+00 BC"),
        ("2000-01-01 23:60:00", "YYYY-MM-DD HH24:MI:SS", "ERROR 22008: date/time field value out of range: \"2000-01-01 23:60:00\""),
        ("2000-01-01 23:59:60", "YYYY-MM-DD HH24:MI:SS", "ERROR 22008: date/time field value out of range: \"2000-01-01 23:59:60\""),
        ("86399", "SSSS", "0001-01-01 23:59:59+00 BC"),
        ("86400", "SSSS", "ERROR 22008: date/time field value out of range: \"86400\""),
        ("2000-01-01 43200", "YYYY-MM-DD SSSSS", "2000-01-01 12:00:00+00"),
        ("1 2", "HH24 HH24", "ERROR 22007: conflicting values for \"HH24\" field in formatting string"),
        ("10:00 14", "HH12:MI HH24", "ERROR 22007: conflicting values for \"HH24\" field in formatting string"),
        ("2000-01-01 2:30:01", "YYYY-MM-DD FMHH24:FMMI:FMSS", "2000-01-01 02:30:01+00"),
        ("2000-01-01T10:11:12", "YYYY-MM-DD\"T\"HH24:MI:SS", "2000-01-01 10:11:12+00"),
        ("Tue, 05 Mar 2024 14:07:09", "Dy, DD Mon YYYY HH24:MI:SS", "2024-03-05 14:07:09+00"),
        ("4714-11-23 BC 23:00 -05", "YYYY-MM-DD BC HH24:MI TZH", "4714-11-24 04:00:00+00 BC"),
        ("4714-11-24 BC 01:00 +05", "YYYY-MM-DD BC HH24:MI TZH", "ERROR 22008: timestamp out of range"),
    ];

    /// `to_number(text, template)`: text, template, PostgreSQL's answer.
    #[rustfmt::skip]
    const NUMBERS_READ: &[(&str, &str, &str)] = &[
        ("12,454.8-", "99G999D9S", "-12454.8"),
        ("$1,234.56", "L9,999.99", "1234.56"),
        ("-12.5", "999.9", "-12.5"),
        ("12,454", "99,999", "12454"),
        ("1234", "9999", "1234"),
        (" 42", "999", "42"),
        ("1234", "99V99", "12.3400000000000000"),
        ("1234", "9V9", "1.2000000000000000"),
        ("12", "FM", "ERROR 22P02: invalid input syntax for type numeric: \" \""),
        ("12", "L", "ERROR 22P02: invalid input syntax for type numeric: \" \""),
        ("abc", "999", "ERROR 22P02: invalid input syntax for type numeric: \" \""),
        ("-", "999", "ERROR 22P02: invalid input syntax for type numeric: \"-\""),
        ("12.", "99.9", "12"),
        (".5", "9.9", "0.5"),
        ("1 2 3", "999", "123"),
        ("12345", "99", "12"),
        ("12", "", "<NULL>"),
        ("1,2", "9G9", "12"),
        ("1,2", "FM9G9", "1"),
        ("1,2", "9,9", "12"),
        ("1,2", "FM9,9", "1"),
        ("<12>", "99PR", "-12"),
        ("12-", "99MI", "-12"),
        ("-12", "MI99", "-12"),
        ("+12", "SG99", "12"),
        ("12+", "99S", "12"),
        ("12 -", "99S", "12"),
        ("  42", "99", "4"),
        ("  42", "9", "ERROR 22P02: invalid input syntax for type numeric: \" \""),
        ("12  -", "MI999", "12"),
        ("1e5", "9EEEE", "ERROR 0A000: \"EEEE\" not supported for input"),
        ("IV", "RN", "ERROR 0A000: \"RN\" not supported for input"),
        ("5.01-", "FM9.999999MI", "-5.01"),
        ("123.001-", "FM9999.9999999S", "-123.001"),
        (".5-", "9.9S", "-0.5"),
        ("-12.5", "S99.9", "-12.5"),
        ("12.50", "99.99", "12.50"),
        ("007", "999", "7"),
        ("-0", "9", "0"),
        ("123", "9.9", "ERROR 22003: numeric field overflow"),
        ("12.345", "99.9", "12.3"),
        ("1st", "9th", "1"),
        ("12€", "99L", "12"),
        ("€12", "L99", "12"),
        ("12 units", "99 units", "12"),
        ("x12", "\"x\"99", "12"),
        ("12.3.4", "99.9.9", "ERROR 42601: multiple decimal points"),
        ("٣", "9", "ERROR 22P02: invalid input syntax for type numeric: \" \""),
    ];
}
