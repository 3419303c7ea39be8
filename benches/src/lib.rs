//! Henge's benchmarks and their harness.
//!
//! [`data`] generates the benchmark data (TPC-H `lineitem` with `tpchgen`, a Druid-style
//! event stream); `benches/segments.rs` measures the segment format on it with criterion.
//! The `henge-bench` binary (`main.rs`) is the harness that runs Henge side by side with
//! DuckDB, DataFusion and PostgreSQL: it loads the data into each through [`systems`]
//! (after [`copy_text`] writes it out), runs the Druid paper's TPC-H [`queries`], measures
//! ingest, INSERT latency and small-query throughput ([`latency`]), and writes the tables
//! and chart of [`report`]; [`rollup`] compares the event stream rolled up and not;
//! [`kafka`] measures a Kafka pipeline against a real broker.
//! `benches/run` is the one command that does all of it.

pub mod alerts;
pub mod copy_text;
pub mod data;
pub mod kafka;
pub mod latency;
pub mod lifecycle;
pub mod queries;
pub mod report;
pub mod rollup;
pub mod systems;

pub use data::{events, events_def, lineitem, lineitem_def, parquet_zstd_size};

/// Errors of the harness: a message with its context, shown to whoever runs it.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// The median of `values`, which must not be empty.
pub fn median(values: &mut [std::time::Duration]) -> std::time::Duration {
    values.sort();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    }
}

/// The value at `percentile` (0–100) of sorted `values`, nearest rank.
pub fn percentile(sorted: &[std::time::Duration], percentile: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let rank = (percentile / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn generated_data_fits_its_tables() {
        let rows: usize = lineitem(0.001).iter().map(|b| b.num_rows()).sum();
        assert!(rows > 5_000, "{rows}");
        let events = events(1000);
        assert_eq!(events.schema(), events_def().arrow_schema());
        assert!(parquet_zstd_size(&[events]) > 0);
    }

    #[test]
    fn medians_and_percentiles() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(5), ms(1), ms(3)]), ms(3));
        assert_eq!(
            median(&mut [ms(4), ms(1), ms(3), ms(2)]),
            Duration::from_micros(2500)
        );
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), ms(50));
        assert_eq!(percentile(&sorted, 99.0), ms(99));
        assert_eq!(percentile(&sorted[..10], 99.0), ms(10));
    }
}
