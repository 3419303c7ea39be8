//! `statement_timeout`, as PostgreSQL reads and shows it: a whole number of milliseconds, or
//! a number with a unit (`us`, `ms`, `s`, `min`, `h`, `d`); 0 turns it off.

use std::time::Duration;

use crate::error::{code, PgError};

/// The largest value PostgreSQL accepts, in milliseconds.
const MAX_MS: f64 = i32::MAX as f64;

/// Reads a value given to `SET statement_timeout`.
pub fn parse(value: &str) -> Result<Duration, PgError> {
    let text = value.trim();
    let invalid = || {
        PgError::new(
            code::INVALID_PARAMETER_VALUE,
            format!(
                "invalid value for parameter \"statement_timeout\": \"{value}\" \
                 (valid units are \"us\", \"ms\", \"s\", \"min\", \"h\" and \"d\")"
            ),
        )
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let scale = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1_000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(invalid()),
    };
    let ms = (number * scale).round();
    if !(0.0..=MAX_MS).contains(&ms) {
        return Err(PgError::new(
            code::INVALID_PARAMETER_VALUE,
            format!(
                "{} ms is outside the valid range for parameter \"statement_timeout\" (0 .. 2147483647)",
                ms
            ),
        ));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// How SHOW writes a timeout: in the largest unit that divides it, `0` when off.
pub fn show(timeout: Duration) -> String {
    let ms = timeout.as_millis();
    if ms == 0 {
        return "0".into();
    }
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    match units.iter().find(|(size, _)| ms.is_multiple_of(*size)) {
        Some((size, unit)) => format!("{}{unit}", ms / size),
        None => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_postgres_reads_them() {
        let ms = |v: &str| parse(v).map(|d| d.as_millis());
        assert_eq!(ms("0").unwrap(), 0);
        assert_eq!(ms("150").unwrap(), 150);
        assert_eq!(ms("150ms").unwrap(), 150);
        assert_eq!(ms("2s").unwrap(), 2_000);
        assert_eq!(ms(" 1.5 min").unwrap(), 90_000);
        assert_eq!(ms("1h").unwrap(), 3_600_000);
        assert_eq!(ms("1d").unwrap(), 86_400_000);
        assert_eq!(ms("2500us").unwrap(), 3);
        for bad in ["soon", "5 parsecs", "", "-5", "30d", "1e3x"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, code::INVALID_PARAMETER_VALUE, "{bad}");
        }
    }

    #[test]
    fn values_shown_in_their_largest_unit() {
        let show_ms = |ms| show(Duration::from_millis(ms));
        assert_eq!(show_ms(0), "0");
        assert_eq!(show_ms(150), "150ms");
        assert_eq!(show_ms(2_000), "2s");
        assert_eq!(show_ms(90_000), "90s");
        assert_eq!(show_ms(120_000), "2min");
        assert_eq!(show_ms(86_400_000), "1d");
    }
}
