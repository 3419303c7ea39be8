//! Rollup on the Druid-style event stream: the same events loaded into a plain table and
//! into a rolled-up one (one row per hour and the five low-cardinality dimensions; the
//! high-cardinality columns — page, city, referrer, campaign — kept as their latest value
//! rather than grouped by, as Druid users leave ids out of rollups, and the user as a
//! HyperLogLog sketch), with the rows and bytes each stores, the load rate, and query times
//! side by side — and the answers compared, since a rolled-up table must answer as the raw
//! rows would (approximate distinct counts within the sketch's error).

use std::path::Path;
use std::time::Duration;

use crate::systems::henge::Henge;
use crate::Result;

/// The rolled-up table's columns: those of `events`, the high-cardinality ones as
/// `ROLLUP LAST`, the user as `ROLLUP HLL`.
pub const ROLLED_COLUMNS: &str = "ts TIMESTAMP NOT NULL, page TEXT ROLLUP LAST, \
     user_name TEXT ROLLUP HLL, country TEXT, city TEXT ROLLUP LAST, browser TEXT, os TEXT, \
     device TEXT, referrer TEXT ROLLUP LAST, campaign TEXT ROLLUP LAST, language TEXT, \
     added BIGINT, deleted BIGINT, delta DOUBLE PRECISION";

/// The queries timed on both tables: whole-table sums, group-bys on a few dimensions and a
/// time bucket, a distinct count under a filter, approximate distinct users per country;
/// each with the relative difference its answers may have between the tables (0: none).
pub const QUERIES: [(&str, &str, f64); 5] = [
    (
        "totals",
        "SELECT count(*), sum(added), sum(deleted), round(sum(delta)::numeric, 3) FROM {t}",
        0.0,
    ),
    (
        "top_countries",
        "SELECT country, count(*), sum(added) FROM {t} GROUP BY country ORDER BY 2 DESC, 1 LIMIT 10",
        0.0,
    ),
    (
        "browser_by_hour",
        "SELECT date_trunc('hour', ts), browser, count(*), sum(deleted) FROM {t} GROUP BY 1, 2 ORDER BY 1, 2",
        0.0,
    ),
    (
        "browsers_in_country",
        "SELECT count(DISTINCT browser), count(*) FROM {t} WHERE country = 'cc-1' AND os <> 'os-0'",
        0.0,
    ),
    // Both tables' sketches hash the same values alike; the estimators may differ (a merged
    // sketch's and a directly updated one's), within three standard errors of lg_k 12.
    (
        "users_by_country",
        "SELECT country, APPROX_COUNT_DISTINCT(user_name) FROM {t} GROUP BY country ORDER BY country",
        0.05,
    ),
];

/// Whether two answers agree: the same rows, each value equal, or numbers within
/// `tolerance` of each other relatively.
fn agree(a: &[Vec<String>], b: &[Vec<String>], tolerance: f64) -> bool {
    let close = |x: &String, y: &String| {
        x == y
            || match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= tolerance * x.abs().max(y.abs()),
                _ => false,
            }
    };
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y)))
}

/// One table's figures.
#[derive(Debug, Clone)]
pub struct TableFigures {
    pub table: String,
    pub loaded: u64,
    pub load: Duration,
    pub stored_rows: u64,
    pub stored_bytes: u64,
    /// Median time of each of [`QUERIES`].
    pub queries: Vec<Duration>,
}

/// Figures of the plain and the rolled-up table, and whether every answer agreed.
#[derive(Debug, Clone)]
pub struct RollupFigures {
    pub plain: TableFigures,
    pub rolled: TableFigures,
    pub differences: Vec<String>,
}

/// Loads `events_file` into both tables of a fresh Henge and times the queries `runs` times
/// each (after one warm-up), alternating between the tables.
pub async fn measure(
    henge: &mut Henge,
    events_file: &Path,
    runs: usize,
    columns: &str,
) -> Result<RollupFigures> {
    let with = "time_column = 'ts', segment_granularity = 'hour'";
    let plain_load = henge.load("events", columns, with, events_file).await?;
    let rolled_load = henge
        .load(
            "events_rolled",
            ROLLED_COLUMNS,
            &format!("{with}, rollup = true, query_granularity = 'hour'"),
            events_file,
        )
        .await?;
    henge.checkpoint().await?;
    let mut times: [Vec<Vec<Duration>>; 2] = [
        vec![Vec::new(); QUERIES.len()],
        vec![Vec::new(); QUERIES.len()],
    ];
    let mut differences = Vec::new();
    for (q, (name, sql, tolerance)) in QUERIES.iter().enumerate() {
        let plain_sql = sql.replace("{t}", "events");
        let rolled_sql = sql.replace("{t}", "events_rolled");
        let plain = henge.client.query(&plain_sql).await?;
        let rolled = henge.client.query(&rolled_sql).await?;
        if !agree(&plain.rows, &rolled.rows, *tolerance) {
            differences.push(format!(
                "{name}: {:?} vs {:?}",
                plain.rows.first(),
                rolled.rows.first()
            ));
        }
        for _ in 0..runs {
            times[0][q].push(henge.client.query(&plain_sql).await?.elapsed);
            times[1][q].push(henge.client.query(&rolled_sql).await?.elapsed);
        }
    }
    let stored = |table: &str| {
        let sql = format!(
            "SELECT coalesce(sum(rows), 0)::BIGINT, coalesce(sum(bytes), 0)::BIGINT FROM sys.segments WHERE \"table\" = '{table}'"
        );
        sql
    };
    let mut figures = Vec::new();
    for (i, (table, load)) in [("events", plain_load), ("events_rolled", rolled_load)]
        .into_iter()
        .enumerate()
    {
        let answer = henge.client.query(&stored(table)).await?;
        let row = answer.rows.first().ok_or("sys.segments answered nothing")?;
        let number = |v: &String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        figures.push(TableFigures {
            table: table.to_owned(),
            loaded: load.rows,
            load: load.elapsed,
            stored_rows: number(&row[0])?,
            stored_bytes: number(&row[1])?,
            queries: times[i].iter_mut().map(|t| crate::median(t)).collect(),
        });
    }
    let rolled = figures.pop().ok_or("no figures")?;
    let plain = figures.pop().ok_or("no figures")?;
    Ok(RollupFigures {
        plain,
        rolled,
        differences,
    })
}

impl RollupFigures {
    /// The markdown table of both tables' figures.
    pub fn markdown(&self) -> String {
        let mut out =
            String::from("| table | rows loaded | load s | rows/s | rows stored | segment MB |");
        for (name, _, _) in QUERIES {
            out.push_str(&format!(" {name} ms |"));
        }
        out.push('\n');
        out.push_str("|---|---:|---:|---:|---:|---:|");
        out.push_str(&"---:|".repeat(QUERIES.len()));
        out.push('\n');
        for t in [&self.plain, &self.rolled] {
            out.push_str(&format!(
                "| {} | {} | {:.2} | {:.0} | {} | {:.1} |",
                t.table,
                t.loaded,
                t.load.as_secs_f64(),
                t.loaded as f64 / t.load.as_secs_f64().max(1e-9),
                t.stored_rows,
                t.stored_bytes as f64 / 1e6
            ));
            for q in &t.queries {
                out.push_str(&format!(" {:.1} |", q.as_secs_f64() * 1000.0));
            }
            out.push('\n');
        }
        out.push('\n');
        match self.differences.as_slice() {
            [] => out.push_str("Every query gave the same answer over both tables.\n"),
            differences => {
                out.push_str("**Answers differed:**\n\n");
                for d in differences {
                    out.push_str(&format!("- {d}\n"));
                }
            }
        }
        out
    }
}
