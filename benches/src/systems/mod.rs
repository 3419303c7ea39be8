//! The systems under test, each behind the same few operations: set the number of threads a
//! query may use, run a query and time it, load COPY text and time it.

pub mod datafusion;
pub mod henge;
pub mod postgres;
pub mod python;
pub mod wire;

use std::path::Path;
use std::time::Duration;

use crate::queries::Rows;
use crate::Result;

/// A query's wall time and its rows as text.
pub struct Answer {
    pub elapsed: Duration,
    pub rows: Rows,
}

/// A load's wall time and the CPU time the system spent on it.
pub struct Load {
    pub rows: u64,
    pub elapsed: Duration,
    pub cpu: Duration,
}

/// One system, ready to query the loaded `lineitem`.
pub enum System {
    Henge(henge::Henge),
    /// DuckDB or ClickHouse.
    Python(python::Peer),
    DataFusion(datafusion::DataFusion),
    Postgres(postgres::Postgres),
}

impl System {
    pub fn name(&self) -> &'static str {
        match self {
            System::Henge(_) => "Henge",
            System::Python(s) => s.engine().name(),
            System::DataFusion(_) => "DataFusion",
            System::Postgres(_) => "PostgreSQL",
        }
    }

    /// The version string shown in the results.
    pub async fn version(&mut self) -> Result<String> {
        match self {
            System::Henge(s) => s.version().await,
            System::Python(s) => s.version(),
            System::DataFusion(_) => Ok(datafusion::version()),
            System::Postgres(s) => s.version().await,
        }
    }

    /// Lets each following query use `threads` threads (cores).
    pub async fn set_threads(&mut self, threads: usize) -> Result<()> {
        match self {
            System::Henge(s) => s.set_threads(threads).await,
            System::Python(s) => s.set_threads(threads),
            System::DataFusion(s) => s.set_threads(threads).await,
            System::Postgres(s) => s.set_threads(threads).await,
        }
    }

    pub async fn query(&mut self, sql: &str) -> Result<Answer> {
        match self {
            System::Henge(s) => s.client.query(sql).await,
            System::Python(s) => s.query(sql),
            System::DataFusion(s) => s.query(sql).await,
            System::Postgres(s) => s.client.query(sql).await,
        }
    }

    /// Creates `table` with `columns` (SQL column definitions) and loads `file`, COPY text.
    /// DataFusion has no load of its own: it reads Parquet files in place.
    pub async fn load(
        &mut self,
        table: &str,
        columns: &str,
        with: &str,
        file: &Path,
    ) -> Result<Load> {
        match self {
            System::Henge(s) => s.load(table, columns, with, file).await,
            System::Python(s) => {
                let time_column = time_column(with)
                    .ok_or_else(|| format!("no time_column in the table options {with:?}"))?;
                s.load(table, columns, time_column, file)
            }
            System::DataFusion(_) => Err("DataFusion reads Parquet in place".into()),
            System::Postgres(s) => s.load(table, columns, file).await,
        }
    }
}

/// The `time_column` of Henge's table options (`time_column = 'ts', …`).
fn time_column(with: &str) -> Option<&str> {
    let (_, rest) = with.split_once("time_column")?;
    let rest = rest
        .trim_start()
        .strip_prefix('=')?
        .trim_start()
        .strip_prefix('\'')?;
    rest.split_once('\'').map(|(name, _)| name)
}

/// CPU time (user + system) process `pid` has used so far, from /proc.
pub fn process_cpu(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("unexpected /proc/{pid}/stat: {stat}").into())
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(total as f64 / clock_ticks() as f64))
}

/// Parent process id of `pid`, from /proc.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time used so far by `pid` and every process it started.
pub fn tree_cpu(pid: u32) -> Result<Duration> {
    let mut total = process_cpu(pid)?;
    for entry in std::fs::read_dir("/proc").map_err(|e| format!("reading /proc: {e}"))? {
        let Some(child) = entry
            .ok()
            .and_then(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        else {
            continue;
        };
        if parent_of(child) == Some(pid) {
            // A process may end between listing and reading: it no longer counts.
            total += process_cpu(child).unwrap_or_default();
        }
    }
    Ok(total)
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("finding a free port: {e}"))?;
    Ok(listener
        .local_addr()
        .map_err(|e| format!("finding a free port: {e}"))?
        .port())
}
