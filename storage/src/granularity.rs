//! Segment granularity: how a table's time line is cut into chunks.
//!
//! A time chunk is the half-open interval `[start, end)` of microseconds since the Unix
//! epoch (UTC) that one set of segments covers. Chunks of a granularity tile the time line
//! with no gaps: every instant belongs to exactly one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The length of a table's time chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Second,
    Minute,
    FifteenMinute,
    ThirtyMinute,
    Hour,
    SixHour,
    Day,
    /// ISO weeks, starting on Monday.
    Week,
    Month,
    Quarter,
    Year,
    /// One chunk for all time.
    All,
}

impl Granularity {
    /// Every granularity with its name, in increasing length.
    pub const ALL: [Granularity; 12] = [
        Granularity::Second,
        Granularity::Minute,
        Granularity::FifteenMinute,
        Granularity::ThirtyMinute,
        Granularity::Hour,
        Granularity::SixHour,
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
        Granularity::Quarter,
        Granularity::Year,
        Granularity::All,
    ];

    /// The name used in `WITH (segment_granularity = '…')`.
    pub fn name(&self) -> &'static str {
        match self {
            Granularity::Second => "second",
            Granularity::Minute => "minute",
            Granularity::FifteenMinute => "fifteen_minute",
            Granularity::ThirtyMinute => "thirty_minute",
            Granularity::Hour => "hour",
            Granularity::SixHour => "six_hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
            Granularity::Year => "year",
            Granularity::All => "all",
        }
    }

    fn fixed_length(&self) -> Option<i64> {
        match self {
            Granularity::Second => Some(MICROS_PER_SECOND),
            Granularity::Minute => Some(MICROS_PER_MINUTE),
            Granularity::FifteenMinute => Some(15 * MICROS_PER_MINUTE),
            Granularity::ThirtyMinute => Some(30 * MICROS_PER_MINUTE),
            Granularity::Hour => Some(MICROS_PER_HOUR),
            Granularity::SixHour => Some(6 * MICROS_PER_HOUR),
            Granularity::Day => Some(MICROS_PER_DAY),
            _ => None,
        }
    }

    /// Months per chunk for the calendar granularities.
    fn months(&self) -> Option<u32> {
        match self {
            Granularity::Month => Some(1),
            Granularity::Quarter => Some(3),
            Granularity::Year => Some(12),
            _ => None,
        }
    }

    /// The start of the chunk holding the instant `micros`.
    pub fn chunk_start(&self, micros: i64) -> i64 {
        if let Some(len) = self.fixed_length() {
            return micros.div_euclid(len).saturating_mul(len);
        }
        match self {
            Granularity::All => i64::MIN,
            Granularity::Week => {
                // 1970-01-01 was a Thursday; weeks start on Monday, three days earlier.
                let day = micros.div_euclid(MICROS_PER_DAY) + 3;
                (day.div_euclid(7) * 7 - 3).saturating_mul(MICROS_PER_DAY)
            }
            _ => {
                let months = self.months().unwrap_or(1);
                let date = DateTime::from_timestamp_micros(micros)
                    .map(|t| t.date_naive())
                    .unwrap_or(NaiveDate::MIN);
                let month0 = date.month0() / months * months;
                month_start(date.year(), month0)
            }
        }
    }

    /// The end (exclusive) of the chunk that starts at `start`.
    pub fn chunk_end(&self, start: i64) -> i64 {
        if let Some(len) = self.fixed_length() {
            return start.saturating_add(len);
        }
        match self {
            Granularity::All => i64::MAX,
            Granularity::Week => start.saturating_add(7 * MICROS_PER_DAY),
            _ => {
                let months = self.months().unwrap_or(1);
                let date = DateTime::from_timestamp_micros(start)
                    .map(|t| t.date_naive())
                    .unwrap_or(NaiveDate::MIN);
                let next = date.month0() + months;
                month_start(date.year() + (next / 12) as i32, next % 12)
            }
        }
    }
}

fn month_start(year: i32, month0: u32) -> i64 {
    NaiveDate::from_ymd_opt(year, month0 + 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or(i64::MIN)
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Granularity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Granularity::ALL
            .into_iter()
            .find(|g| g.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<_> = Granularity::ALL.iter().map(|g| g.name()).collect();
                format!("expected one of: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn chunks_tile_the_time_line() {
        let instants = [
            "1969-12-31 23:59:59",
            "1970-01-01 00:00:00",
            "2024-02-29 13:45:10",
            "2024-12-31 23:59:59",
            "1900-03-15 06:00:00",
        ];
        for g in Granularity::ALL {
            for s in instants {
                let t = micros(s);
                let start = g.chunk_start(t);
                let end = g.chunk_end(start);
                assert!(start <= t && t < end, "{g} {s}: {start}..{end}");
                if g != Granularity::All {
                    assert_eq!(g.chunk_start(end), end, "{g}: next chunk starts at end");
                }
                assert_eq!(g.chunk_start(start), start);
            }
        }
    }

    #[test]
    fn calendar_chunks() {
        let t = micros("2024-05-17 10:00:00");
        assert_eq!(
            Granularity::Month.chunk_start(t),
            micros("2024-05-01 00:00:00")
        );
        assert_eq!(
            Granularity::Quarter.chunk_start(t),
            micros("2024-04-01 00:00:00")
        );
        assert_eq!(
            Granularity::Year.chunk_end(Granularity::Year.chunk_start(t)),
            micros("2025-01-01 00:00:00")
        );
        // 2024-05-13 is a Monday.
        assert_eq!(
            Granularity::Week.chunk_start(t),
            micros("2024-05-13 00:00:00")
        );
        assert_eq!(Granularity::Hour.chunk_start(t + 59), t);
    }

    #[test]
    fn names_round_trip() {
        for g in Granularity::ALL {
            assert_eq!(g.name().parse::<Granularity>(), Ok(g));
        }
        assert!("fortnight".parse::<Granularity>().is_err());
    }
}
