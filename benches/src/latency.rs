//! Latency and small-query throughput: single-row INSERT round trips (and whether each row
//! is visible to another connection at once), and pgbench with prepared statements.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use arrow::temporal_conversions::timestamp_us_to_datetime;

use crate::systems::wire::Wire;
use crate::{percentile, Result};

/// INSERT round trips of one configuration.
pub struct Inserts {
    pub label: String,
    pub p50: Duration,
    pub p99: Duration,
    pub count: usize,
    /// Rows another connection saw right after the INSERT was acknowledged.
    pub visible: usize,
}

/// The table the INSERT test writes; `with` is Henge's `WITH (…)` clause or empty.
pub fn inserts_table(with: &str) -> String {
    format!("CREATE TABLE inserts (ts TIMESTAMP NOT NULL, id BIGINT NOT NULL, note TEXT){with}")
}

/// `count` single-row INSERTs through `writer`, each checked for at once by `reader`.
pub async fn inserts(label: &str, writer: &Wire, reader: &Wire, count: usize) -> Result<Inserts> {
    let mut times = Vec::with_capacity(count);
    let mut visible = 0;
    let start = 1_790_000_000_000_000i64;
    for id in 0..count {
        let ts = timestamp_us_to_datetime(start + id as i64 * 1000).ok_or("timestamp range")?;
        let sql = format!(
            "INSERT INTO inserts VALUES ('{}', {id}, 'row {id}')",
            ts.format("%Y-%m-%d %H:%M:%S%.6f")
        );
        let began = Instant::now();
        writer.execute(&sql).await?;
        times.push(began.elapsed());
        let seen = reader
            .query(&format!("SELECT count(*) FROM inserts WHERE id = {id}"))
            .await?;
        if seen
            .rows
            .first()
            .and_then(|r| r.first())
            .map(String::as_str)
            == Some("1")
        {
            visible += 1;
        }
    }
    times.sort();
    Ok(Inserts {
        label: label.to_owned(),
        p50: percentile(&times, 50.0),
        p99: percentile(&times, 99.0),
        count,
        visible,
    })
}

/// One pgbench run.
pub struct Pgbench {
    pub tps: f64,
    pub latency_ms: f64,
    pub transactions: u64,
}

/// The accounts table of pgbench's select-only test, `scale` × 100,000 rows, as COPY text.
pub fn pgbench_accounts(scale: usize) -> String {
    let mut out = String::new();
    for aid in 1..=scale * 100_000 {
        let bid = (aid - 1) / 100_000 + 1;
        out.push_str(&format!("{aid}\t{bid}\t0\t{}\n", " ".repeat(84)));
    }
    out
}

/// Runs `pgbench -M prepared` with `script` for `seconds` on `clients` connections.
pub fn pgbench(
    bin: &Path,
    port: u16,
    user: &str,
    script: &Path,
    clients: usize,
    seconds: u64,
) -> Result<Pgbench> {
    let mut command = Command::new(bin.join("pgbench"));
    command
        .args(["-n", "-M", "prepared", "-h", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-U", user])
        .args(["-c", &clients.to_string(), "-j", &clients.to_string()])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(script)
        .arg(user);
    let output = command
        .output()
        .map_err(|e| format!("running pgbench: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let number = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let failed = number("number of failed transactions: ").unwrap_or(0.0);
    match (
        output.status.success() && failed == 0.0,
        number("tps = "),
        number("latency average = "),
        number("number of transactions actually processed: "),
    ) {
        (true, Some(tps), Some(latency_ms), Some(transactions)) => Ok(Pgbench {
            tps,
            latency_ms,
            transactions: transactions as u64,
        }),
        _ => Err(format!(
            "pgbench failed:\n{text}{}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into()),
    }
}
