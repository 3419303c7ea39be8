//! PostgreSQL's `interval` type as text: reading it as `interval_in` does and writing it as
//! `interval_out` does with `IntervalStyle = postgres`, so that clients see exactly what
//! PostgreSQL 15 would accept, store and print.
//!
//! An interval keeps three independent counts — months, days and microseconds — because a
//! month is not a fixed number of days nor a day a fixed number of hours. Input accepts what
//! PostgreSQL accepts: the verbose form (`@ 1 year 2 mons -3 days ago`, every unit spelling
//! and abbreviation), times of day (`-04:05:06.7`), SQL-standard `1-2` (years-months) and
//! `3 4:05:06`, and ISO 8601 (`P1Y2M3DT4H5M6S`, `P0001-02-03T04:05:06`). Fractions cascade
//! into smaller fields as PostgreSQL's do (`1.5 months` is 1 mon 15 days), a field that
//! overflows is an error rather than a wrap-around, and refused input gets PostgreSQL's
//! message.
//!
//! Reading follows PostgreSQL's two passes: the text is split into fields (numbers, words,
//! times, signed numbers, date-like runs), then the fields are combined from right to left,
//! so that a unit is known before the number it applies to. Text that does not make sense
//! that way is tried once more as ISO 8601.

use crate::error::{ValueError, ValueErrorKind};

/// An interval as PostgreSQL keeps it: months, days and microseconds, each with its own sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interval {
    /// Whole months (a year is twelve of them).
    pub months: i32,
    /// Whole days, independent of the months.
    pub days: i32,
    /// Microseconds, independent of the days (they may add up to more than a day).
    pub micros: i64,
}

const USECS_PER_SEC: i64 = 1_000_000;
const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
const MONTHS_PER_YEAR: i32 = 12;
/// The days that a fraction of a month stands for.
const DAYS_PER_MONTH: i32 = 30;
/// PostgreSQL copies the fields into a buffer of this many bytes, each field followed by a
/// NUL, and refuses input whose fields do not fit.
const FIELD_BUFFER: usize = 256;
/// PostgreSQL refuses input with more fields than this.
const MAX_FIELDS: usize = 25;
/// Words are compared on at most this many characters (`microseconds` is `microsecon`).
const WORD_PREFIX: usize = 10;
/// ISO 8601 numbers beyond this magnitude are refused, so that their integer part is exact.
const ISO_NUMBER_LIMIT: f64 = 1.0e15;

/// Parses PostgreSQL's text form of an `interval`, as `'…'::interval` does in PostgreSQL 15.
///
/// Text that is not an interval is refused with `invalid input syntax for type interval`;
/// a field too large for its part of the interval with `interval field value out of range`,
/// and years and months that together exceed the months' range with `interval out of range`.
pub fn parse_interval(input: &str) -> Result<Interval, ValueError> {
    let parts = decode(input.as_bytes()).map_err(|fault| match fault {
        Fault::BadFormat => ValueError::of_kind(
            ValueErrorKind::InvalidDatetimeFormat,
            format!("invalid input syntax for type interval: \"{input}\""),
        ),
        Fault::FieldOverflow => ValueError::of_kind(
            ValueErrorKind::IntervalFieldOverflow,
            format!("interval field value out of range: \"{input}\""),
        ),
    })?;
    parts.into_interval().ok_or_else(|| {
        ValueError::of_kind(
            ValueErrorKind::DatetimeOverflow,
            "interval out of range".to_string(),
        )
    })
}

/// Formats an interval as PostgreSQL does with `IntervalStyle = postgres`, for example
/// `1 year 2 mons -3 days +04:05:06.789`.
///
/// Years and months come from the months, each count is plural unless it is exactly 1, the
/// time is `hh:mm:ss` with the fraction's trailing zeros dropped (hours may pass 24), and a
/// positive part right after a negative one gets a `+`.
pub fn format_interval(value: Interval) -> String {
    let mut out = Output::default();
    out.count(value.months / MONTHS_PER_YEAR, "year");
    out.count(value.months % MONTHS_PER_YEAR, "mon");
    out.count(value.days, "day");
    out.time(value.micros);
    out.text
}

/// The text of an interval being written, and whether the last part written was negative.
#[derive(Default)]
struct Output {
    text: String,
    previous_negative: bool,
}

impl Output {
    /// Writes a nonzero count such as `-2 mons`.
    fn count(&mut self, value: i32, unit: &str) {
        if value == 0 {
            return;
        }
        let separator = if self.text.is_empty() { "" } else { " " };
        let plus = if self.previous_negative && value > 0 {
            "+"
        } else {
            ""
        };
        let plural = if value == 1 { "" } else { "s" };
        self.text
            .push_str(&format!("{separator}{plus}{value} {unit}{plural}"));
        self.previous_negative = value < 0;
    }

    /// Writes the time part, which a zero interval shows too (`00:00:00`).
    fn time(&mut self, micros: i64) {
        if micros == 0 && !self.text.is_empty() {
            return;
        }
        let separator = if self.text.is_empty() { "" } else { " " };
        let sign = if micros < 0 {
            "-"
        } else if self.previous_negative {
            "+"
        } else {
            ""
        };
        let total = micros.unsigned_abs();
        let hours = total / USECS_PER_HOUR.unsigned_abs();
        let minutes = total / USECS_PER_MINUTE.unsigned_abs() % 60;
        let seconds = total / USECS_PER_SEC.unsigned_abs() % 60;
        let fraction = total % USECS_PER_SEC.unsigned_abs();
        self.text.push_str(&format!(
            "{separator}{sign}{hours:02}:{minutes:02}:{seconds:02}"
        ));
        if fraction != 0 {
            let digits = format!("{fraction:06}");
            self.text.push('.');
            self.text.push_str(digits.trim_end_matches('0'));
        }
    }
}

/// Why PostgreSQL's decoder gives up on a text; each has its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The text is not an interval (`invalid input syntax`).
    BadFormat,
    /// A number does not fit its field (`interval field value out of range`).
    FieldOverflow,
}

/// `Ok` when a checked computation did not overflow.
fn fits<T>(value: Option<T>) -> Result<T, Fault> {
    value.ok_or(Fault::FieldOverflow)
}

/// Reads the text as PostgreSQL's fields, or failing that as ISO 8601.
fn decode(input: &[u8]) -> Result<Parts, Fault> {
    match split_fields(input).and_then(|fields| decode_fields(&fields)) {
        Err(Fault::BadFormat) => decode_iso8601(input),
        decoded => decoded,
    }
}

/// The parts of an interval while it is being read; years are kept apart from months so
/// that each can overflow on its own, as in PostgreSQL.
#[derive(Debug, Default)]
struct Parts {
    years: i32,
    months: i32,
    days: i32,
    micros: i64,
}

impl Parts {
    /// Adds `(whole + fraction) * scale` microseconds.
    fn add_micros(&mut self, whole: i64, fraction: f64, scale: i64) -> Result<(), Fault> {
        let whole = fits(whole.checked_mul(scale))?;
        self.micros = fits(self.micros.checked_add(whole))?;
        self.add_fraction_micros(fraction, scale)
    }

    /// Adds `fraction * scale` microseconds, rounded to a whole microsecond (an exact half
    /// goes toward zero, as PostgreSQL's does).
    fn add_fraction_micros(&mut self, fraction: f64, scale: i64) -> Result<(), Fault> {
        if fraction == 0.0 {
            return Ok(());
        }
        let scaled = fraction * scale as f64;
        let mut micros = scaled as i64;
        let rest = scaled - micros as f64;
        if rest > 0.5 {
            micros += 1;
        } else if rest < -0.5 {
            micros -= 1;
        }
        self.micros = fits(self.micros.checked_add(micros))?;
        Ok(())
    }

    /// Adds `whole * scale` days.
    fn add_days(&mut self, whole: i64, scale: i32) -> Result<(), Fault> {
        let whole = fits(i32::try_from(whole).ok())?;
        let days = fits(whole.checked_mul(scale))?;
        self.days = fits(self.days.checked_add(days))?;
        Ok(())
    }

    /// Adds `fraction * scale` days: whole days to the days, the rest as microseconds.
    fn add_fraction_days(&mut self, fraction: f64, scale: i32) -> Result<(), Fault> {
        if fraction == 0.0 {
            return Ok(());
        }
        let scaled = fraction * f64::from(scale);
        let days = scaled as i32;
        self.days = fits(self.days.checked_add(days))?;
        self.add_fraction_micros(scaled - f64::from(days), USECS_PER_DAY)
    }

    /// Adds whole months.
    fn add_months(&mut self, whole: i64) -> Result<(), Fault> {
        let whole = fits(i32::try_from(whole).ok())?;
        self.months = fits(self.months.checked_add(whole))?;
        Ok(())
    }

    /// Adds `whole * scale` years.
    fn add_years(&mut self, whole: i64, scale: i32) -> Result<(), Fault> {
        let whole = fits(i32::try_from(whole).ok())?;
        let years = fits(whole.checked_mul(scale))?;
        self.years = fits(self.years.checked_add(years))?;
        Ok(())
    }

    /// Adds `fraction * scale` years as the nearest whole number of months (an exact half
    /// goes to the even one); what is left of a month is dropped.
    fn add_fraction_years(&mut self, fraction: f64, scale: i32) -> Result<(), Fault> {
        let months = fraction * f64::from(scale) * f64::from(MONTHS_PER_YEAR);
        self.months = fits(self.months.checked_add(months.round_ties_even() as i32))?;
        Ok(())
    }

    /// Adds `whole + fraction` of `unit`; returns the fields this fills.
    fn add_in_unit(&mut self, unit: Unit, whole: i64, fraction: f64) -> Result<u16, Fault> {
        match unit {
            Unit::Microsecond => self.add_micros(whole, fraction, 1)?,
            Unit::Millisecond => self.add_micros(whole, fraction, 1000)?,
            Unit::Second => {
                self.add_micros(whole, fraction, USECS_PER_SEC)?;
                // Fractional seconds count as milliseconds and microseconds as well.
                if fraction != 0.0 {
                    return Ok(ALL_SECONDS);
                }
            }
            Unit::Minute => self.add_micros(whole, fraction, USECS_PER_MINUTE)?,
            Unit::Hour => self.add_micros(whole, fraction, USECS_PER_HOUR)?,
            Unit::Day => {
                self.add_days(whole, 1)?;
                self.add_fraction_micros(fraction, USECS_PER_DAY)?;
            }
            Unit::Week => {
                self.add_days(whole, 7)?;
                self.add_fraction_days(fraction, 7)?;
            }
            Unit::Month => {
                self.add_months(whole)?;
                self.add_fraction_days(fraction, DAYS_PER_MONTH)?;
            }
            Unit::Year | Unit::Decade | Unit::Century | Unit::Millennium => {
                let scale = unit.years();
                self.add_years(whole, scale)?;
                self.add_fraction_years(fraction, scale)?;
            }
            Unit::Unusable => return Err(Fault::BadFormat),
        }
        Ok(unit.bit())
    }

    /// Turns every part around, as `ago` does.
    fn negate(&mut self) -> Result<(), Fault> {
        self.micros = fits(self.micros.checked_neg())?;
        self.days = fits(self.days.checked_neg())?;
        self.months = fits(self.months.checked_neg())?;
        self.years = fits(self.years.checked_neg())?;
        Ok(())
    }

    /// The interval, unless years and months together do not fit the months.
    fn into_interval(self) -> Option<Interval> {
        let months = i64::from(self.years) * i64::from(MONTHS_PER_YEAR) + i64::from(self.months);
        Some(Interval {
            months: i32::try_from(months).ok()?,
            days: self.days,
            micros: self.micros,
        })
    }
}

/// A unit a number can be given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
    Decade,
    Century,
    Millennium,
    /// A unit PostgreSQL knows but an interval cannot take (`quarter`, `timezone`): it is
    /// refused only when a number is given in it.
    Unusable,
}

impl Unit {
    /// The field this unit fills; a field may be given only once.
    const fn bit(self) -> u16 {
        1 << self as u16
    }

    /// Years in one of this unit (for units of years).
    fn years(self) -> i32 {
        match self {
            Unit::Decade => 10,
            Unit::Century => 100,
            Unit::Millennium => 1000,
            _ => 1,
        }
    }
}

/// The fields that seconds with a fraction fill.
const ALL_SECONDS: u16 = Unit::Second.bit() | Unit::Millisecond.bit() | Unit::Microsecond.bit();
/// The fields that a time of day fills.
const TIME_OF_DAY: u16 = Unit::Hour.bit() | Unit::Minute.bit() | ALL_SECONDS;

/// What a word of an interval means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    /// `ago`: the whole interval is negated.
    Ago,
    /// A unit for the number before it.
    Unit(Unit),
}

/// Looks a (lower-case) word up among PostgreSQL's interval words.
fn lookup_word(word: &str) -> Option<Word> {
    let key = word.get(..WORD_PREFIX).unwrap_or(word);
    let unit = match key {
        "ago" => return Some(Word::Ago),
        "us" | "usec" | "usecs" | "usecond" | "useconds" | "microsecon" => Unit::Microsecond,
        "ms" | "msec" | "msecs" | "msecond" | "mseconds" | "millisecon" => Unit::Millisecond,
        "s" | "sec" | "secs" | "second" | "seconds" => Unit::Second,
        "m" | "min" | "mins" | "minute" | "minutes" => Unit::Minute,
        "h" | "hr" | "hrs" | "hour" | "hours" => Unit::Hour,
        "d" | "day" | "days" => Unit::Day,
        "w" | "week" | "weeks" => Unit::Week,
        "mon" | "mons" | "month" | "months" => Unit::Month,
        "y" | "yr" | "yrs" | "year" | "years" => Unit::Year,
        "dec" | "decs" | "decade" | "decades" => Unit::Decade,
        "c" | "cent" | "century" | "centuries" => Unit::Century,
        "mil" | "mils" | "millennium" | "millennia" => Unit::Millennium,
        "qtr" | "quarter" | "timezone" => Unit::Unusable,
        _ => return None,
    };
    Some(Word::Unit(unit))
}

/// PostgreSQL's date and time keywords, separated by spaces.
const DATE_KEYWORDS: &str =
    "ad allballs am apr april at aug august bc d dec december dow doy dst epoch feb \
     february fri friday h infinity isodow isoyear j jan january jd jul julian july \
     jun june m mar march may mm mon monday nov november now oct october on pm s sat \
     saturday sep sept september sun sunday t thu thur thurs thursday today tomorrow \
     tue tues tuesday wed wednesday weds y yesterday";

/// Whether a word is one of PostgreSQL's date and time keywords. Such a word stays a word
/// when digits or `+` follow it (`1d2h`); any other word runs together with them into one
/// date-like field (`1hr30min` is refused).
fn is_date_keyword(word: &str) -> bool {
    DATE_KEYWORDS.split(' ').any(|keyword| keyword == word)
}

/// How PostgreSQL's lexer classifies a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// Digits with at most one fraction: `12`, `1.5`, `.5`.
    Number,
    /// Digits with date punctuation (`1-2`, `1.5.6`, `1/2`) or letters run into digits.
    Date,
    /// Digits followed by a colon: `04:05:06.7`.
    Time,
    /// A sign and digits: `-1`, `+02:00`, `-1-2`.
    Signed,
    /// Letters, perhaps after a sign: `days`, `ago`, `-x`.
    Word,
}

/// One field of the text, lower-cased.
#[derive(Debug)]
struct Field {
    kind: FieldKind,
    text: String,
}

/// C's `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits the text into fields as PostgreSQL's `ParseDateTime` does; other punctuation
/// only separates fields.
fn split_fields(input: &[u8]) -> Result<Vec<Field>, Fault> {
    let mut lexer = Lexer {
        input,
        pos: 0,
        buffer_used: 0,
    };
    let mut fields = Vec::new();
    while let Some(c) = lexer.peek() {
        if is_space(c) {
            lexer.pos += 1;
            continue;
        }
        if fields.len() >= MAX_FIELDS {
            return Err(Fault::BadFormat);
        }
        let mut text = String::new();
        let kind = match c {
            b'0'..=b'9' => lexer.numeric(&mut text)?,
            b'.' => {
                lexer.take(&mut text)?;
                lexer.take_while(&mut text, |c| c.is_ascii_digit())?;
                FieldKind::Number
            }
            b'+' | b'-' => lexer.signed(&mut text)?,
            c if c.is_ascii_alphabetic() => lexer.word(&mut text)?,
            c if c.is_ascii_punctuation() => {
                lexer.pos += 1;
                continue;
            }
            _ => return Err(Fault::BadFormat),
        };
        lexer.buffer_used += 1;
        fields.push(Field { kind, text });
    }
    Ok(fields)
}

/// The state of splitting a text into fields.
struct Lexer<'a> {
    input: &'a [u8],
    pos: usize,
    /// Bytes of PostgreSQL's field buffer used so far.
    buffer_used: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn peek_is(&self, test: impl Fn(u8) -> bool) -> bool {
        self.peek().is_some_and(test)
    }

    /// Copies the current byte, lower-cased, into the field.
    fn take(&mut self, text: &mut String) -> Result<(), Fault> {
        if self.buffer_used + 1 >= FIELD_BUFFER {
            return Err(Fault::BadFormat);
        }
        if let Some(c) = self.peek() {
            text.push(char::from(c.to_ascii_lowercase()));
            self.pos += 1;
            self.buffer_used += 1;
        }
        Ok(())
    }

    fn take_while(&mut self, text: &mut String, test: impl Fn(u8) -> bool) -> Result<(), Fault> {
        while self.peek_is(&test) {
            self.take(text)?;
        }
        Ok(())
    }

    /// A field starting with a digit: a number, a time or a date-like run.
    fn numeric(&mut self, text: &mut String) -> Result<FieldKind, Fault> {
        self.take_while(text, |c| c.is_ascii_digit())?;
        match self.peek() {
            Some(b':') => {
                self.take(text)?;
                self.take_while(text, |c| c.is_ascii_digit() || c == b':' || c == b'.')?;
                Ok(FieldKind::Time)
            }
            Some(delimiter @ (b'-' | b'/' | b'.')) => self.delimited(text, delimiter),
            _ => Ok(FieldKind::Number),
        }
    }

    /// Digits followed by `-`, `/` or `.`: a fraction, or a date-like run.
    fn delimited(&mut self, text: &mut String, delimiter: u8) -> Result<FieldKind, Fault> {
        self.take(text)?;
        if !self.peek_is(|c| c.is_ascii_digit()) {
            self.take_while(text, |c| c.is_ascii_alphanumeric() || c == delimiter)?;
            return Ok(FieldKind::Date);
        }
        self.take_while(text, |c| c.is_ascii_digit())?;
        if self.peek() == Some(delimiter) {
            self.take(text)?;
            self.take_while(text, |c| c.is_ascii_digit() || c == delimiter)?;
            return Ok(FieldKind::Date);
        }
        Ok(if delimiter == b'.' {
            FieldKind::Number
        } else {
            FieldKind::Date
        })
    }

    /// A field starting with a sign; spaces after the sign are skipped.
    fn signed(&mut self, text: &mut String) -> Result<FieldKind, Fault> {
        self.take(text)?;
        while self.peek_is(is_space) {
            self.pos += 1;
        }
        if self.peek_is(|c| c.is_ascii_digit()) {
            self.take_while(text, |c| {
                c.is_ascii_digit() || matches!(c, b':' | b'.' | b'-')
            })?;
            Ok(FieldKind::Signed)
        } else if self.peek_is(|c| c.is_ascii_alphabetic()) {
            self.take_while(text, |c| c.is_ascii_alphabetic())?;
            Ok(FieldKind::Word)
        } else {
            Err(Fault::BadFormat)
        }
    }

    /// A field starting with a letter: a word, or a date-like run when punctuation or
    /// digits follow that cannot end a word.
    fn word(&mut self, text: &mut String) -> Result<FieldKind, Fault> {
        self.take_while(text, |c| c.is_ascii_alphabetic())?;
        let run_on = match self.peek() {
            Some(b'-' | b'/' | b'.') => true,
            Some(c) if c == b'+' || c.is_ascii_digit() => !is_date_keyword(text),
            _ => false,
        };
        if !run_on {
            return Ok(FieldKind::Word);
        }
        self.take(text)?;
        self.take_while(text, |c| {
            c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'/' | b'_' | b'.' | b':')
        })?;
        Ok(FieldKind::Date)
    }
}

/// What a number without a unit of its own is in: the unit last named to its right.
#[derive(Debug, Clone, Copy, Default)]
enum Pending {
    /// Nothing named yet: seconds.
    #[default]
    Nothing,
    /// `ago` was the last word: a plain number here is refused.
    Ago,
    Unit(Unit),
}

/// The state of combining the fields, from right to left, as PostgreSQL's `DecodeInterval`.
#[derive(Debug, Default)]
struct FieldDecoder {
    parts: Parts,
    /// The fields already given.
    filled: u16,
    pending: Pending,
    ago: bool,
}

/// Combines the fields into the parts of an interval.
fn decode_fields(fields: &[Field]) -> Result<Parts, Fault> {
    let mut decoder = FieldDecoder::default();
    for field in fields.iter().rev() {
        let filled = decoder.field(field)?;
        if filled & decoder.filled != 0 {
            return Err(Fault::BadFormat);
        }
        decoder.filled |= filled;
    }
    if decoder.filled == 0 {
        return Err(Fault::BadFormat);
    }
    if decoder.ago {
        decoder.parts.negate()?;
    }
    Ok(decoder.parts)
}

impl FieldDecoder {
    /// Takes in one field; returns the fields it fills.
    fn field(&mut self, field: &Field) -> Result<u16, Fault> {
        let text = field.text.as_bytes();
        match field.kind {
            FieldKind::Time => {
                // Like PostgreSQL, a time replaces the microseconds read so far.
                self.parts.micros = time_of_day(text)?;
                self.pending = Pending::Unit(Unit::Day);
                Ok(TIME_OF_DAY)
            }
            FieldKind::Signed => self.signed(text),
            FieldKind::Number | FieldKind::Date => self.number(text),
            FieldKind::Word => self.word(&field.text),
        }
    }

    /// A signed time (`-01:30`), or else a signed number.
    fn signed(&mut self, text: &[u8]) -> Result<u16, Fault> {
        if let Some((&sign, time)) = text.split_first() {
            if time.contains(&b':') {
                if let Ok(micros) = time_of_day(time) {
                    self.parts.micros = if sign == b'-' { -micros } else { micros };
                    self.pending = Pending::Unit(Unit::Day);
                    return Ok(TIME_OF_DAY);
                }
            }
        }
        self.number(text)
    }

    /// A number, perhaps with a fraction or as SQL-standard `years-months`.
    fn number(&mut self, text: &[u8]) -> Result<u16, Fault> {
        if let Pending::Nothing = self.pending {
            self.pending = Pending::Unit(Unit::Second);
        }
        let negative = text.first() == Some(&b'-');
        let (whole, end) = c_strtol(text);
        let mut whole = fits(whole)?;
        let rest = text.get(end..).unwrap_or_default();
        let fraction = match rest.split_first() {
            None => 0.0,
            Some((b'-', months)) => {
                whole = years_and_months(whole, months, negative)?;
                self.pending = Pending::Unit(Unit::Month);
                0.0
            }
            Some((b'.', _)) => {
                let fraction = decimal_fraction(rest)?;
                if negative {
                    -fraction
                } else {
                    fraction
                }
            }
            Some(_) => return Err(Fault::BadFormat),
        };
        let Pending::Unit(unit) = self.pending else {
            return Err(Fault::BadFormat);
        };
        let filled = self.parts.add_in_unit(unit, whole, fraction)?;
        if unit == Unit::Hour {
            // A number left of hours is days: `1 2 hours` is 1 day 02:00:00.
            self.pending = Pending::Unit(Unit::Day);
        }
        Ok(filled)
    }

    /// A unit or `ago`.
    fn word(&mut self, word: &str) -> Result<u16, Fault> {
        match lookup_word(word) {
            Some(Word::Ago) => {
                self.ago = true;
                self.pending = Pending::Ago;
            }
            Some(Word::Unit(unit)) => self.pending = Pending::Unit(unit),
            None => return Err(Fault::BadFormat),
        }
        Ok(0)
    }
}

/// SQL-standard `years-months` (months 0 to 11, taking the sign of the years) as months.
fn years_and_months(years: i64, months: &[u8], negative: bool) -> Result<i64, Fault> {
    let (value, end) = c_strtol(months);
    let value = fits(value.and_then(|v| i32::try_from(v).ok()))?;
    if !(0..MONTHS_PER_YEAR).contains(&value) {
        return Err(Fault::FieldOverflow);
    }
    if end != months.len() {
        return Err(Fault::BadFormat);
    }
    let value = i64::from(if negative { -value } else { value });
    fits(years.checked_mul(i64::from(MONTHS_PER_YEAR)))
        .and_then(|months| fits(months.checked_add(value)))
}

/// Reads `h:mm`, `h:mm:ss[.f]` or `mm:ss.f` into microseconds; hours are unbounded, minutes
/// below 60, seconds at most 60.
fn time_of_day(text: &[u8]) -> Result<i64, Fault> {
    let (hours, end) = c_strtol(text);
    let hours = fits(hours)?;
    let Some((b':', rest)) = text.get(end..).and_then(<[u8]>::split_first) else {
        return Err(Fault::BadFormat);
    };
    let (minutes, end) = c_strtoint(rest)?;
    let rest = rest.get(end..).unwrap_or_default();
    let (hours, minutes, seconds, micros) = match rest.split_first() {
        None => (hours, minutes, 0, 0),
        Some((b'.', _)) => {
            // Two numbers with a fraction are minutes and seconds.
            let micros = fractional_second(rest)?;
            (0, fits(i32::try_from(hours).ok())?, minutes, micros)
        }
        Some((b':', after)) => {
            let (seconds, end) = c_strtoint(after)?;
            let rest = after.get(end..).unwrap_or_default();
            let micros = match rest.first() {
                None => 0,
                Some(b'.') => fractional_second(rest)?,
                Some(_) => return Err(Fault::BadFormat),
            };
            (hours, minutes, seconds, micros)
        }
        Some(_) => return Err(Fault::BadFormat),
    };
    if hours < 0
        || !(0..60).contains(&minutes)
        || !(0..=60).contains(&seconds)
        || !(0..=USECS_PER_SEC).contains(&micros)
    {
        return Err(Fault::FieldOverflow);
    }
    let total = fits(hours.checked_mul(USECS_PER_HOUR))
        .and_then(|t| fits(t.checked_add(micros)))
        .and_then(|t| fits(t.checked_add(i64::from(minutes) * USECS_PER_MINUTE)))?;
    fits(total.checked_add(i64::from(seconds) * USECS_PER_SEC))
}

/// A fraction of a second (`.5`) as microseconds, rounded half to even.
fn fractional_second(text: &[u8]) -> Result<i64, Fault> {
    Ok((decimal_fraction(text)? * 1e6).round_ties_even() as i64)
}

/// Reads `.digits` (a lone `.` is zero); anything else after the point is refused.
fn decimal_fraction(text: &[u8]) -> Result<f64, Fault> {
    let digits = text.get(1..).unwrap_or_default();
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(Fault::BadFormat);
    }
    if digits.is_empty() {
        return Ok(0.0);
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(Fault::BadFormat)
}

/// C's `strtol` in base 10: an optional sign and digits. Returns the value (`None` on
/// overflow) and the bytes read (none when there are no digits).
fn c_strtol(text: &[u8]) -> (Option<i64>, usize) {
    let (negative, start) = match text.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let digits = text
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 {
        return (Some(0), 0);
    }
    // Accumulate toward the sign so that the most negative value reads too.
    let value = text[start..start + digits]
        .iter()
        .try_fold(0i64, |value, &c| {
            let digit = i64::from(c - b'0');
            let value = value.checked_mul(10)?;
            if negative {
                value.checked_sub(digit)
            } else {
                value.checked_add(digit)
            }
        });
    (value, start + digits)
}

/// `c_strtol` narrowed to an `i32`; a value out of range is a field overflow.
fn c_strtoint(text: &[u8]) -> Result<(i32, usize), Fault> {
    let (value, end) = c_strtol(text);
    Ok((fits(value.and_then(|v| i32::try_from(v).ok()))?, end))
}

/// Reads ISO 8601 durations as PostgreSQL's `DecodeISO8601Interval`: designators with a
/// number each (`P1Y2M3W4DT5H6M7.5S`, fractions and signs allowed, repeats added up) and
/// the alternative format (`P0001-02-03T04:05:06`, `P00010203T040506`). Upper case only,
/// and no spaces anywhere.
fn decode_iso8601(input: &[u8]) -> Result<Parts, Fault> {
    if input.len() < 2 || input.first() != Some(&b'P') {
        return Err(Fault::BadFormat);
    }
    let mut iso = Iso {
        input,
        pos: 1,
        parts: Parts::default(),
        date_part: true,
        have_field: false,
    };
    while let Some(c) = iso.peek() {
        if c == b'T' {
            iso.pos += 1;
            iso.begin_time();
            continue;
        }
        let start = iso.pos;
        let (whole, fraction) = iso.number()?;
        let unit = iso.peek();
        iso.pos += 1;
        let step = if iso.date_part {
            iso.date_unit(start, unit, whole, fraction)?
        } else {
            iso.time_unit(start, unit, whole, fraction)?
        };
        match step {
            Step::Field => iso.have_field = true,
            Step::Part => {}
            Step::Done => break,
        }
    }
    Ok(iso.parts)
}

/// What reading one ISO 8601 number and what follows it led to.
enum Step {
    /// A designated field (`3D`).
    Field,
    /// The date part ended with `T`; the time part follows.
    Part,
    /// The end of the text.
    Done,
}

/// The state of reading an ISO 8601 duration.
struct Iso<'a> {
    input: &'a [u8],
    pos: usize,
    parts: Parts,
    /// Before the `T`.
    date_part: bool,
    /// A designated field was read in the current part, which rules out the alternative
    /// format there.
    have_field: bool,
}

impl Iso<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn begin_time(&mut self) -> Step {
        self.date_part = false;
        self.have_field = false;
        Step::Part
    }

    /// After the last number of the alternative format's date: the end, or the time part.
    fn end_date(&mut self, next: Option<u8>) -> Result<Step, Fault> {
        match next {
            None => Ok(Step::Done),
            Some(b'T') => Ok(self.begin_time()),
            Some(_) => Err(Fault::BadFormat),
        }
    }

    /// The number of digits of the number at `start`, after any minus sign.
    fn integer_width(&self, start: usize) -> usize {
        let text = self.input.get(start..).unwrap_or_default();
        let text = text.strip_prefix(b"-").unwrap_or(text);
        text.iter().take_while(|c| c.is_ascii_digit()).count()
    }

    /// Reads a number as C's `strtod` does, split into its integer part and the fraction.
    fn number(&mut self) -> Result<(i64, f64), Fault> {
        let text = self.input.get(self.pos..).unwrap_or_default();
        if !text
            .first()
            .is_some_and(|&c| c.is_ascii_digit() || c == b'-' || c == b'.')
        {
            return Err(Fault::BadFormat);
        }
        let (value, len) = c_strtod(text)?;
        self.pos += len;
        if value.is_nan() || value.abs() > ISO_NUMBER_LIMIT {
            return Err(Fault::FieldOverflow);
        }
        let whole = value.trunc() as i64;
        Ok((whole, value - whole as f64))
    }

    /// A number before the `T`, followed by `unit`.
    fn date_unit(
        &mut self,
        start: usize,
        unit: Option<u8>,
        whole: i64,
        fraction: f64,
    ) -> Result<Step, Fault> {
        let basic = self.integer_width(start) == 8 && !self.have_field;
        let parts = &mut self.parts;
        match unit {
            Some(b'Y') => {
                parts.add_years(whole, 1)?;
                parts.add_fraction_years(fraction, 1)?;
            }
            Some(b'M') => {
                parts.add_months(whole)?;
                parts.add_fraction_days(fraction, DAYS_PER_MONTH)?;
            }
            Some(b'W') => {
                parts.add_days(whole, 7)?;
                parts.add_fraction_days(fraction, 7)?;
            }
            Some(b'D') => {
                parts.add_days(whole, 1)?;
                parts.add_fraction_micros(fraction, USECS_PER_DAY)?;
            }
            None | Some(b'T') if basic => {
                // Basic alternative format: YYYYMMDD.
                parts.add_years(whole / 10000, 1)?;
                parts.add_months(whole / 100 % 100)?;
                parts.add_days(whole % 100, 1)?;
                parts.add_fraction_micros(fraction, USECS_PER_DAY)?;
                return self.end_date(unit);
            }
            None | Some(b'T' | b'-') => return self.extended_date(unit, whole, fraction),
            Some(_) => return Err(Fault::BadFormat),
        }
        Ok(Step::Field)
    }

    /// Extended alternative format: `YYYY[-MM[-DD]]`, the years already read.
    fn extended_date(
        &mut self,
        unit: Option<u8>,
        whole: i64,
        fraction: f64,
    ) -> Result<Step, Fault> {
        if self.have_field {
            return Err(Fault::BadFormat);
        }
        self.parts.add_years(whole, 1)?;
        self.parts.add_fraction_years(fraction, 1)?;
        if unit != Some(b'-') {
            return self.end_date(unit);
        }
        let (whole, fraction) = self.number()?;
        self.parts.add_months(whole)?;
        self.parts.add_fraction_days(fraction, DAYS_PER_MONTH)?;
        if self.peek() != Some(b'-') {
            let next = self.peek();
            self.pos += 1;
            return self.end_date(next);
        }
        self.pos += 1;
        let (whole, fraction) = self.number()?;
        self.parts.add_days(whole, 1)?;
        self.parts.add_fraction_micros(fraction, USECS_PER_DAY)?;
        let next = self.peek();
        self.pos += 1;
        self.end_date(next)
    }

    /// A number after the `T`, followed by `unit`.
    fn time_unit(
        &mut self,
        start: usize,
        unit: Option<u8>,
        whole: i64,
        fraction: f64,
    ) -> Result<Step, Fault> {
        let basic = self.integer_width(start) == 6 && !self.have_field;
        let parts = &mut self.parts;
        match unit {
            Some(b'H') => parts.add_micros(whole, fraction, USECS_PER_HOUR)?,
            Some(b'M') => parts.add_micros(whole, fraction, USECS_PER_MINUTE)?,
            Some(b'S') => parts.add_micros(whole, fraction, USECS_PER_SEC)?,
            None if basic => {
                // Basic alternative format: hhmmss; PostgreSQL reads a fraction after it as
                // a fraction of a microsecond.
                parts.add_micros(whole / 10000, 0.0, USECS_PER_HOUR)?;
                parts.add_micros(whole / 100 % 100, 0.0, USECS_PER_MINUTE)?;
                parts.add_micros(whole % 100, 0.0, USECS_PER_SEC)?;
                parts.add_fraction_micros(fraction, 1)?;
                return Ok(Step::Done);
            }
            None | Some(b':') => return self.extended_time(unit, whole, fraction),
            Some(_) => return Err(Fault::BadFormat),
        }
        Ok(Step::Field)
    }

    /// Extended alternative format: `hh[:mm[:ss]]`, the hours already read.
    fn extended_time(
        &mut self,
        unit: Option<u8>,
        whole: i64,
        fraction: f64,
    ) -> Result<Step, Fault> {
        if self.have_field {
            return Err(Fault::BadFormat);
        }
        self.parts.add_micros(whole, fraction, USECS_PER_HOUR)?;
        if unit.is_none() {
            return Ok(Step::Done);
        }
        let (whole, fraction) = self.number()?;
        self.parts.add_micros(whole, fraction, USECS_PER_MINUTE)?;
        match self.peek() {
            None => return Ok(Step::Done),
            Some(b':') => self.pos += 1,
            Some(_) => return Err(Fault::BadFormat),
        }
        let (whole, fraction) = self.number()?;
        self.parts.add_micros(whole, fraction, USECS_PER_SEC)?;
        match self.peek() {
            None => Ok(Step::Done),
            Some(_) => Err(Fault::BadFormat),
        }
    }
}

/// What C's `strtod` makes of the start of `text`: the value and the bytes read. Decimal
/// and hexadecimal numbers, `inf`, `infinity` and `nan` are read; no number at all, and a
/// value too large or too small for a double (C's `ERANGE`), are `BadFormat`.
fn c_strtod(text: &[u8]) -> Result<(f64, usize), Fault> {
    let (negative, sign_len) = match text.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let body = text.get(sign_len..).unwrap_or_default();
    let (magnitude, len) = if let Some(len) = word_len(body, &[b"infinity", b"inf"]) {
        (f64::INFINITY, len)
    } else if let Some(len) = word_len(body, &[b"nan"]) {
        (f64::NAN, len)
    } else if let Some(hex) = hex_float(body) {
        hex?
    } else {
        decimal_float(body)?
    };
    Ok((
        if negative { -magnitude } else { magnitude },
        sign_len + len,
    ))
}

/// The length of the first of `words` that starts `text`, in any case.
fn word_len(text: &[u8], words: &[&[u8]]) -> Option<usize> {
    words
        .iter()
        .find(|word| {
            text.get(..word.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(word))
        })
        .map(|word| word.len())
}

/// `ERANGE`: an infinite result, or a zero or subnormal one from nonzero digits.
fn in_double_range(value: f64, nonzero: bool) -> Result<f64, Fault> {
    if value.is_infinite() || (nonzero && (value == 0.0 || value.is_subnormal())) {
        return Err(Fault::BadFormat);
    }
    Ok(value)
}

/// The number of ASCII digits (of the given kind) at `from`.
fn count_digits(text: &[u8], from: usize, is_digit: fn(&u8) -> bool) -> usize {
    text.get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| is_digit(c))
        .count()
}

/// The length of an exponent (`e-5`, `p+3`) at `from` led by `marker`; zero without digits.
fn exponent_len(text: &[u8], from: usize, marker: u8) -> usize {
    if !text
        .get(from)
        .is_some_and(|c| c.eq_ignore_ascii_case(&marker))
    {
        return 0;
    }
    let sign = usize::from(matches!(text.get(from + 1), Some(b'+' | b'-')));
    match count_digits(text, from + 1 + sign, u8::is_ascii_digit) {
        0 => 0,
        digits => 1 + sign + digits,
    }
}

/// A decimal number: digits with an optional point and exponent.
fn decimal_float(text: &[u8]) -> Result<(f64, usize), Fault> {
    let integer = count_digits(text, 0, u8::is_ascii_digit);
    let fraction = if text.get(integer) == Some(&b'.') {
        count_digits(text, integer + 1, u8::is_ascii_digit)
    } else {
        0
    };
    if integer + fraction == 0 {
        return Err(Fault::BadFormat);
    }
    let mantissa = if text.get(integer) == Some(&b'.') {
        integer + 1 + fraction
    } else {
        integer
    };
    let len = mantissa + exponent_len(text, mantissa, b'e');
    let value: f64 = std::str::from_utf8(&text[..len])
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(Fault::BadFormat)?;
    let nonzero = text[..mantissa].iter().any(|c| matches!(c, b'1'..=b'9'));
    Ok((in_double_range(value, nonzero)?, len))
}

/// A hexadecimal number (`0x1.8p3`), or `None` when `text` is not one (`0x` without hex
/// digits is read by C as the number 0 followed by `x`).
fn hex_float(text: &[u8]) -> Option<Result<(f64, usize), Fault>> {
    if !(text.first() == Some(&b'0') && matches!(text.get(1), Some(b'x' | b'X'))) {
        return None;
    }
    let integer = count_digits(text, 2, u8::is_ascii_hexdigit);
    let has_point = text.get(2 + integer) == Some(&b'.');
    let fraction = if has_point {
        count_digits(text, 3 + integer, u8::is_ascii_hexdigit)
    } else {
        0
    };
    if integer + fraction == 0 {
        return None;
    }
    let mantissa = 2 + integer + usize::from(has_point) + fraction;
    let exponent = exponent_len(text, mantissa, b'p');
    let power = text
        .get(mantissa + 1..mantissa + exponent)
        .map_or(0, parse_exponent);
    let int_digits = &text[2..2 + integer];
    let frac_digits = &text[mantissa - fraction..mantissa];
    let value = hex_value(int_digits, frac_digits, power);
    let nonzero = int_digits.iter().chain(frac_digits).any(|&c| c != b'0');
    Some(in_double_range(value, nonzero).map(|v| (v, mantissa + exponent)))
}

/// A signed decimal exponent, saturating far beyond any double's range.
fn parse_exponent(text: &[u8]) -> i64 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let magnitude = digits.iter().fold(0i64, |acc, &c| {
        (acc * 10 + i64::from(c - b'0')).min(1_000_000)
    });
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// The value of hexadecimal digits (integer and fraction) times `2^power`, rounded to the
/// nearest double (ties to even).
fn hex_value(int_digits: &[u8], frac_digits: &[u8], power: i64) -> f64 {
    let mut mantissa: u64 = 0;
    let mut exponent = power;
    let mut sticky = false;
    let digits = int_digits.iter().map(|&c| (c, false));
    for (c, in_fraction) in digits.chain(frac_digits.iter().map(|&c| (c, true))) {
        let digit = u64::from(char::from(c).to_digit(16).unwrap_or(0));
        if mantissa >> 60 == 0 {
            mantissa = mantissa << 4 | digit;
            exponent -= if in_fraction { 4 } else { 0 };
        } else {
            sticky |= digit != 0;
            exponent += if in_fraction { 0 } else { 4 };
        }
    }
    if mantissa == 0 {
        return 0.0;
    }
    let bits = 64 - mantissa.leading_zeros();
    let mut kept = mantissa;
    if bits > 53 {
        let shift = bits - 53;
        let dropped = mantissa & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        kept = mantissa >> shift;
        if dropped > half || (dropped == half && (sticky || kept & 1 == 1)) {
            kept += 1;
        }
        exponent += i64::from(shift);
    }
    scale_by_power_of_two(kept as f64, exponent)
}

/// `value * 2^exponent`, exact unless the result leaves the normal range.
fn scale_by_power_of_two(value: f64, exponent: i64) -> f64 {
    let exponent = exponent.clamp(-2200, 2200);
    let first = exponent / 3;
    let second = (exponent - first) / 2;
    let third = exponent - first - second;
    let power = |e: i64| f64::from_bits(((e + 1023) as u64) << 52);
    value * power(first) * power(second) * power(third)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ValueErrorKind;

    /// Input text and PostgreSQL 15's output for `SELECT '<input>'::interval` (checked
    /// against a real PostgreSQL 15.18 with `IntervalStyle = postgres`).
    const ROUND_TRIPS: &[(&str, &str)] = &[
        (
            "1 year 2 mons 3 days 04:05:06.789",
            "1 year 2 mons 3 days 04:05:06.789",
        ),
        (
            "@ 1 year 2 months 3 days 4 hours 5 minutes 6 seconds",
            "1 year 2 mons 3 days 04:05:06",
        ),
        (
            "1 Y 2 MONS 3 D 4 H 5 M 6 S",
            "1 year 2 mons 3 days 04:05:06",
        ),
        ("5 MIN", "00:05:00"),
        ("7 hrs 3 secs", "07:00:03"),
        ("4 msecs 5 us", "00:00:00.004005"),
        ("1 millisecond 1 microsecond", "00:00:00.001001"),
        ("2 decades 1 century 1 millennium", "1120 years"),
        ("3 centuries", "300 years"),
        ("1 millennia", "1000 years"),
        ("1 week", "7 days"),
        ("2 weeks 1 day", "15 days"),
        ("1.5 months", "1 mon 15 days"),
        ("1.5 days", "1 day 12:00:00"),
        ("1.5 years", "1 year 6 mons"),
        ("0.5 weeks", "3 days 12:00:00"),
        ("1.5 decades", "15 years"),
        ("1.05 years", "1 year 1 mon"),
        ("-1.5 years", "-1 years -6 mons"),
        ("-1.5 months", "-1 mons -15 days"),
        ("1.23456789 hours", "01:14:04.444404"),
        ("0.0000015 seconds", "00:00:00.000001"),
        ("-1.5 us", "-00:00:00.000001"),
        ("@ 1 minute ago", "-00:01:00"),
        ("@ 1 day 2 hours ago", "-1 days -02:00:00"),
        ("-1 day ago", "1 day"),
        ("1 day ago 2 hours", "-1 days -02:00:00"),
        ("-1 day +02:00", "-1 days +02:00:00"),
        ("1 day -01:00:00", "1 day -01:00:00"),
        ("-1 year 2 days 3 hours", "-1 years +2 days 03:00:00"),
        ("-1 year -2 days 3 hours", "-1 years -2 days +03:00:00"),
        ("1 year -2 mons 3 days -4 hours", "10 mons 3 days -04:00:00"),
        ("-1 mon 2 days", "-1 mons +2 days"),
        ("25:30:00", "25:30:00"),
        ("0", "00:00:00"),
        ("1", "00:00:01"),
        ("1.5", "00:00:01.5"),
        ("-1.5", "-00:00:01.5"),
        ("1-2", "1 year 2 mons"),
        ("-1-2", "-1 years -2 mons"),
        ("1-2 ago", "-1 years -2 mons"),
        ("3 4:05:06", "3 days 04:05:06"),
        ("-3 4:05:06", "-3 days +04:05:06"),
        ("3 -4:05:06", "3 days -04:05:06"),
        ("1 2 hours", "1 day 02:00:00"),
        ("1:30.5", "00:01:30.5"),
        ("10:59:60.5", "11:00:00.5"),
        ("00:00:00.0000015", "00:00:00.000002"),
        ("00:00:00.9999995", "00:00:01"),
        ("1:", "01:00:00"),
        ("01:00 1.5 days", "1 day 01:00:00"),
        ("1.5 days 01:00", "1 day 13:00:00"),
        ("1 day quarter", "1 day"),
        ("1h30m", "01:30:00"),
        ("1mon2d", "1 mon 2 days"),
        ("1dec2y", "12 years"),
        ("1,day", "1 day"),
        ("- 1 day", "-1 days"),
        (".", "00:00:00"),
        ("1 microsecondsxyz", "00:00:00.000001"),
        ("1 millenniums", "1000 years"),
        ("2147483647 days", "2147483647 days"),
        ("-2147483648 days", "-2147483648 days"),
        ("178956970 years", "178956970 years"),
        ("-178956970 years -8 mons", "-178956970 years -8 mons"),
        ("2147483647 months", "178956970 years 7 mons"),
        ("9223372036854775807 us", "2562047788:00:54.775807"),
        ("-9223372036854775808 us", "-2562047788:00:54.775808"),
        ("P1Y2M3DT4H5M6S", "1 year 2 mons 3 days 04:05:06"),
        ("P1Y2M3DT4H5M6.789S", "1 year 2 mons 3 days 04:05:06.789"),
        ("P3D", "3 days"),
        ("PT1.5S", "00:00:01.5"),
        ("P1.5Y", "1 year 6 mons"),
        ("P1.5M", "1 mon 15 days"),
        ("P1.5W", "10 days 12:00:00"),
        ("P-1D", "-1 days"),
        ("PT-1.5S", "-00:00:01.5"),
        ("P1Y1Y", "2 years"),
        ("P1e2D", "100 days"),
        ("P.5D", "12:00:00"),
        ("PT", "00:00:00"),
        ("P1T2", "1 year 02:00:00"),
        ("P0001-02-03T04:05:06", "1 year 2 mons 3 days 04:05:06"),
        ("P00010203T040506", "1 year 2 mons 3 days 04:05:06"),
        ("P0001-02-03.5", "1 year 2 mons 3 days 12:00:00"),
        ("P0001.5-02", "1 year 8 mons"),
        ("PT04:05", "04:05:00"),
        ("PT040506.5", "04:05:06"),
        ("PT04:05:06.5e1", "04:06:05"),
        ("P0x10D", "269 years"),
        ("P0X1P3D", "8 days"),
        ("P0x1p-1D", "12:00:00"),
    ];

    /// Input PostgreSQL 15 refuses as not an interval (SQLSTATE 22007).
    const SYNTAX_ERRORS: &[&str] = &[
        "",
        " ",
        "abc",
        "'abc'",
        "1 foo",
        "1 day foo",
        "1 day 2 days",
        "1 us 1 microseconds",
        "1 second 1 sec",
        "01:00 1 hour",
        "1 day 01:00 02:00",
        "1 2",
        "1 01:00 2",
        "1-2 3-4",
        "1 ago",
        "ago",
        "invalid",
        "infinity",
        "1 quarter",
        "1 timezone",
        "1hr30min",
        "1day+02:00",
        "1w2d",
        "1 -day",
        "1 day -",
        "-",
        "-.5 days",
        "1 day.",
        "1.e5 days",
        "1.5.6 days",
        "1:2:3:4",
        "1:2:3.5:",
        "+1:99",
        "-2562047788:00:54.775808",
        "1 dayé",
        "p1d",
        " P1D",
        "P1D ",
        "-P1D",
        "P",
        "P.D",
        "P1Y2",
        "P1Y-2",
        "PT1H2M3",
        "P1e400D",
        "P1e-310D",
        "1 d ago ago ago ago ago ago ago ago ago ago ago ago ago ago ago ago ago \
         ago ago ago ago ago ago ago",
        "1 d ago ago ago ago ago ago ago ago ago ago ago ago ago ago ago ago ago ago ago ago \
         ago ago ago ,",
    ];

    /// Input PostgreSQL 15 refuses as a field out of range (SQLSTATE 22015).
    const FIELD_OVERFLOWS: &[&str] = &[
        "2147483648 days",
        "-2147483649 days",
        "99999999999999999999 days",
        "9223372036854775808 us",
        "-9223372036854775808 us ago",
        "-2147483648 days ago",
        "2562047789 hours",
        "2562047789:00:00",
        "2562047788:00:54.775808",
        "1:99",
        "10:59:61",
        "1-12",
        "1--2",
        "at99999999999999999999",
        "P2147483648D",
        "P1e15D",
        "PT2562047789H",
        "P-infD",
        "P-nanD",
    ];

    #[test]
    fn round_trips_match_postgresql() {
        for &(input, expected) in ROUND_TRIPS {
            let parsed = parse_interval(input)
                .unwrap_or_else(|e| panic!("{input:?} was refused: {}", e.message));
            assert_eq!(format_interval(parsed), expected, "{input:?}");
        }
    }

    #[test]
    fn parses_into_months_days_and_microseconds() {
        assert_eq!(
            parse_interval("1 year 2 mons -3 days 04:05:06.789"),
            Ok(Interval {
                months: 14,
                days: -3,
                micros: 4 * USECS_PER_HOUR + 5 * USECS_PER_MINUTE + 6_789_000,
            })
        );
        assert_eq!(
            parse_interval("-1 day +02:00"),
            Ok(Interval {
                months: 0,
                days: -1,
                micros: 2 * USECS_PER_HOUR,
            })
        );
        assert_eq!(parse_interval("00:00:00"), Ok(Interval::default()));
    }

    #[test]
    fn refuses_what_postgresql_refuses() {
        for &input in SYNTAX_ERRORS {
            let error = parse_interval(input).expect_err(input);
            assert_eq!(
                error.kind,
                ValueErrorKind::InvalidDatetimeFormat,
                "{input:?}"
            );
            assert_eq!(
                error.message,
                format!("invalid input syntax for type interval: \"{input}\""),
            );
        }
        for &input in FIELD_OVERFLOWS {
            let error = parse_interval(input).expect_err(input);
            assert_eq!(
                error.kind,
                ValueErrorKind::IntervalFieldOverflow,
                "{input:?}"
            );
            assert_eq!(
                error.message,
                format!("interval field value out of range: \"{input}\""),
            );
        }
    }

    #[test]
    fn years_and_months_beyond_the_months_range_are_refused() {
        for input in [
            "178956971 years",
            "-178956971 years",
            "2147483647 months 1 year",
        ] {
            let error = parse_interval(input).expect_err(input);
            assert_eq!(error.kind, ValueErrorKind::DatetimeOverflow);
            assert_eq!(error.message, "interval out of range");
        }
    }

    #[test]
    fn the_field_buffer_and_field_count_are_limited_like_postgresql() {
        let longest = format!("{}1", "0".repeat(254));
        assert_eq!(
            format_interval(parse_interval(&longest).unwrap()),
            "00:00:01"
        );
        let too_long = format!("{}1", "0".repeat(255));
        assert!(parse_interval(&too_long).is_err());
        let two_fields = format!("{}1 d", "0".repeat(252));
        assert!(parse_interval(&two_fields).is_ok());
        let two_fields_too_long = format!("{}1 d", "0".repeat(253));
        assert!(parse_interval(&two_fields_too_long).is_err());
        let spaces = format!("1{}day", " ".repeat(300));
        assert_eq!(format_interval(parse_interval(&spaces).unwrap()), "1 day");
    }

    #[test]
    fn formats_extreme_values() {
        let min = Interval {
            months: i32::MIN,
            days: i32::MIN,
            micros: i64::MIN,
        };
        assert_eq!(
            format_interval(min),
            "-178956970 years -8 mons -2147483648 days -2562047788:00:54.775808"
        );
        let mixed = Interval {
            months: 1,
            days: -1,
            micros: 1,
        };
        assert_eq!(format_interval(mixed), "1 mon -1 days +00:00:00.000001");
    }
}
