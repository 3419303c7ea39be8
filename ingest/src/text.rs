//! Numbers, dates and timestamps as PostgreSQL's output functions write them: `double
//! precision` and `real` (the shortest digits that read back the same, exponent form
//! outside 1e-4 up to 1e15 or 1e6), decimals with their scale's places, and dates and
//! timestamps in the ISO style (`2024-03-05 10:00:00.5`, years before 1 as `0044-03-15
//! BC`, years past 9999 in full). Shared by the wire protocol and by the functions and casts
//! that write values into text (`to_json`, `::text`, …).

use arrow::array::timezone::Tz;
use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone};

/// A `double precision` as PostgreSQL writes it.
pub fn float8_text(v: f64) -> String {
    float_text(v, format!("{v:e}"), 15)
}

/// A `real` as PostgreSQL writes it: its own shortest digits, not its double's.
pub fn float4_text(v: f32) -> String {
    float_text(f64::from(v), format!("{v:e}"), 6)
}

/// Shortest round-trip digits (`exp_form` is Rust's `{:e}` of the value), switching to
/// exponent form like PostgreSQL's `float8out` outside 1e-4 up to 1e`max_plain_exponent`.
fn float_text(v: f64, exp_form: String, max_plain_exponent: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (mantissa, exponent) = exp_form.split_once('e').unwrap_or((&exp_form, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= max_plain_exponent {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    // Plain notation from the shortest digits.
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let point = exponent + 1;
    let mut s = String::new();
    if negative {
        s.push('-');
    }
    if point <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-point) as usize));
        s.push_str(&digits);
    } else if point as usize >= digits.len() {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        s.push_str(&digits[..point as usize]);
        s.push('.');
        s.push_str(&digits[point as usize..]);
    }
    s
}

/// A scaled integer as a decimal with exactly `scale` fraction digits.
pub fn decimal_text(v: i128, scale: i8) -> String {
    if scale <= 0 {
        let mut s = v.to_string();
        if v != 0 {
            s.extend(std::iter::repeat_n('0', (-scale) as usize));
        }
        return s;
    }
    let scale = scale as usize;
    let digits = v.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    format!("{}{int}.{frac}", if v < 0 { "-" } else { "" })
}

/// A `time` (microseconds since midnight) as PostgreSQL writes it: `HH:MM:SS`, the
/// fraction without trailing zeros.
pub fn time_text(micros: i64) -> String {
    let (h, rest) = (micros / 3_600_000_000, micros % 3_600_000_000);
    let (m, rest) = (rest / 60_000_000, rest % 60_000_000);
    let (sec, frac) = (rest / 1_000_000, rest % 1_000_000);
    let mut t = format!("{h:02}:{m:02}:{sec:02}");
    if frac != 0 {
        t.push_str(format!(".{frac:06}").trim_end_matches('0'));
    }
    t
}

/// `YYYY-MM-DD` of a date, and whether it is BC (PostgreSQL counts no year 0: the
/// proleptic year 0 is 1 BC).
fn ymd(date: NaiveDate) -> (String, bool) {
    let year = date.year();
    let (shown, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    (
        format!("{shown:04}-{:02}-{:02}", date.month(), date.day()),
        bc,
    )
}

/// A `date` (days since 1970-01-01) as PostgreSQL writes it.
pub fn date_text(days: i32) -> String {
    let date = DateTime::UNIX_EPOCH.date_naive() + chrono::Duration::days(i64::from(days));
    match ymd(date) {
        (s, false) => s,
        (s, true) => s + " BC",
    }
}

/// PostgreSQL's `timestamp` output (microseconds since the epoch), or with `zone` its
/// `timestamptz` output: the local time there and its UTC offset (`+01`, `+05:30`).
pub fn timestamp_text(micros: i64, zone: Option<&Tz>) -> String {
    let Some(utc) = DateTime::from_timestamp_micros(micros) else {
        return micros.to_string();
    };
    let (t, offset) = match zone {
        Some(zone) => {
            let local = zone.from_utc_datetime(&utc.naive_utc());
            let offset = local.offset().fix().local_minus_utc();
            (local.naive_local(), Some(offset))
        }
        None => (utc.naive_utc(), None),
    };
    let (mut s, bc) = ymd(t.date());
    s.push_str(&t.format(" %H:%M:%S").to_string());
    let frac = micros.rem_euclid(1_000_000);
    if frac != 0 {
        let digits = format!(".{frac:06}");
        s.push_str(digits.trim_end_matches('0'));
    }
    if let Some(offset) = offset {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        s.push_str(&format!("{sign}{:02}", abs / 3600));
        if abs % 3600 != 0 {
            s.push_str(&format!(":{:02}", abs % 3600 / 60));
            if abs % 60 != 0 {
                s.push_str(&format!(":{:02}", abs % 60));
            }
        }
    }
    if bc {
        s.push_str(" BC");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(float8_text(1.5), "1.5");
        assert_eq!(float8_text(100.0), "100");
        assert_eq!(float8_text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(float8_text(1e20), "1e+20");
        assert_eq!(float8_text(123456789012345.0), "123456789012345");
        assert_eq!(float8_text(1e15), "1e+15");
        assert_eq!(float8_text(0.0001), "0.0001");
        assert_eq!(float8_text(0.00001), "1e-05");
        assert_eq!(float8_text(-2.5e-7), "-2.5e-07");
        assert_eq!(float4_text(1.1), "1.1");
        assert_eq!(float4_text(1234567.0), "1.234567e+06");
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal_text(12345, 2), "123.45");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(decimal_text(15, -3), "15000");
    }

    #[test]
    fn dates_before_year_one_are_bc_and_late_years_are_written_in_full() {
        assert_eq!(super::date_text(0), "1970-01-01");
        assert_eq!(super::date_text(-719_162), "0001-01-01");
        assert_eq!(super::date_text(-719_163), "0001-12-31 BC");
        assert_eq!(super::date_text(3_789_391), "12345-01-01");
        assert_eq!(
            super::timestamp_text(
                -62_135_596_800_000_000 - 86_400_000_000 + 36_000_000_000,
                None
            ),
            "0001-12-31 10:00:00 BC"
        );
    }
}
