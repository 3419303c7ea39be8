//! DuckDB (its Python package) and ClickHouse (chDB, ClickHouse in-process, from Python),
//! each in a child process that runs `benches/peer.py`: queries are timed inside that
//! process, around running the query and fetching its rows, so the pipe between the
//! harness and Python is not counted.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Answer, Load};
use crate::Result;

/// Which engine a [`Peer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    DuckDb,
    /// ClickHouse through chDB: tables are MergeTree, ordered by the time column.
    ClickHouse,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::DuckDb => "DuckDB",
            Engine::ClickHouse => "ClickHouse",
        }
    }

    fn argument(self) -> &'static str {
        match self {
            Engine::DuckDb => "duckdb",
            Engine::ClickHouse => "chdb",
        }
    }
}

/// The Python process holding one engine's database.
pub struct Peer {
    engine: Engine,
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Peer {
    /// Starts `python` on the peer script and opens a database in `work`.
    pub fn start(engine: Engine, python: &str, work: &Path) -> Result<Peer> {
        // From the repository's root (where benches/run starts the harness), else from the
        // source tree the harness was built in.
        let script = Path::new("benches/peer.py").to_owned();
        let script = if script.exists() {
            script
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("peer.py")
        };
        let mut child = Command::new(python)
            .arg(&script)
            .arg(engine.argument())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {python} {}: {e}", script.display()))?;
        let input = child.stdin.take().ok_or("no stdin")?;
        let output = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut peer = Peer {
            engine,
            child,
            input,
            output,
        };
        peer.call(json!({"op": "open", "path": work}))?;
        Ok(peer)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    fn call(&mut self, command: Value) -> Result<Value> {
        let name = self.engine.name();
        writeln!(self.input, "{command}").map_err(|e| format!("writing to {name}: {e}"))?;
        self.input
            .flush()
            .map_err(|e| format!("writing to {name}: {e}"))?;
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .map_err(|e| format!("reading from {name}: {e}"))?;
        if line.is_empty() {
            return Err(
                format!("the {name} process ended (is its Python package installed?)").into(),
            );
        }
        let answer: Value =
            serde_json::from_str(&line).map_err(|e| format!("{name} answered {line:?}: {e}"))?;
        match answer.get("error") {
            Some(error) => {
                Err(format!("{name}: {} ({command})", error.as_str().unwrap_or("")).into())
            }
            None => Ok(answer),
        }
    }

    pub fn version(&mut self) -> Result<String> {
        let answer = self.call(json!({"op": "version"}))?;
        Ok(answer["version"]
            .as_str()
            .unwrap_or(self.engine.name())
            .to_owned())
    }

    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        let sql = match self.engine {
            Engine::DuckDb => format!("SET threads = {threads}"),
            Engine::ClickHouse => format!("SET max_threads = {threads}"),
        };
        self.call(json!({"op": "execute", "sql": sql}))?;
        Ok(())
    }

    pub fn query(&mut self, sql: &str) -> Result<Answer> {
        let answer = self.call(json!({"op": "query", "sql": sql}))?;
        let rows = answer["rows"]
            .as_array()
            .ok_or_else(|| format!("{} answered without rows", self.engine.name()))?
            .iter()
            .map(|row| {
                row.as_array()
                    .map(|r| {
                        r.iter()
                            .map(|v| v.as_str().unwrap_or("").to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        Ok(Answer {
            elapsed: seconds(&answer["seconds"]),
            rows,
        })
    }

    /// Creates `table` with `columns` (SQL column definitions, `time_column` the one it is
    /// ordered by in ClickHouse) and loads `file` (COPY text) with the engine's own reader
    /// of the file: DuckDB's COPY FROM, ClickHouse's `INSERT … SELECT FROM file()`.
    pub fn load(
        &mut self,
        table: &str,
        columns: &str,
        time_column: &str,
        file: &Path,
    ) -> Result<Load> {
        let (create, load) = match self.engine {
            Engine::DuckDb => (
                format!("CREATE TABLE {table} ({columns})"),
                format!(
                    "COPY {table} FROM '{}' (FORMAT csv, DELIMITER '\t', HEADER false, NULL '\\N')",
                    file.display()
                ),
            ),
            Engine::ClickHouse => {
                let columns = clickhouse_columns(columns)?;
                (
                    format!(
                        "CREATE TABLE {table} ({columns}) ENGINE = MergeTree ORDER BY {time_column}"
                    ),
                    format!(
                        "INSERT INTO {table} SELECT * FROM file('{}', 'TabSeparated', '{columns}')",
                        file.display()
                    ),
                )
            }
        };
        self.call(json!({"op": "execute", "sql": create}))?;
        let answer = self.call(json!({"op": "load", "sql": load, "table": table}))?;
        Ok(Load {
            rows: answer["rows"].as_u64().unwrap_or(0),
            elapsed: seconds(&answer["seconds"]),
            cpu: seconds(&answer["cpu"]),
        })
    }
}

/// SQL column definitions (`name TYPE [NOT NULL]`, comma-separated) in ClickHouse's types:
/// `Nullable(…)` unless NOT NULL, timestamps as `DateTime64(6)` (microseconds, as Henge's
/// and DuckDB's).
fn clickhouse_columns(columns: &str) -> Result<String> {
    columns
        .split(", ")
        .map(|column| {
            let (name, ty) = column
                .split_once(' ')
                .ok_or_else(|| format!("column without a type: {column}"))?;
            let (ty, not_null) = match ty.strip_suffix(" NOT NULL") {
                Some(ty) => (ty, true),
                None => (ty, false),
            };
            let ch = match ty {
                "BIGINT" => "Int64",
                "INTEGER" => "Int32",
                "SMALLINT" => "Int16",
                "DOUBLE PRECISION" => "Float64",
                "REAL" => "Float32",
                "TEXT" => "String",
                "BOOLEAN" => "Bool",
                "DATE" => "Date",
                "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" => "DateTime64(6)",
                other => return Err(format!("no ClickHouse type for {other}").into()),
            };
            Ok(match not_null {
                true => format!("{name} {ch}"),
                false => format!("{name} Nullable({ch})"),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(|c| c.join(", "))
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seconds(value: &Value) -> Duration {
    Duration::from_secs_f64(value.as_f64().unwrap_or(0.0).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_in_clickhouse_types() {
        assert_eq!(
            clickhouse_columns("ts TIMESTAMP NOT NULL, n BIGINT, x DOUBLE PRECISION NOT NULL")
                .unwrap(),
            "ts DateTime64(6), n Nullable(Int64), x Float64"
        );
        assert!(clickhouse_columns("j JSONB").is_err());
    }
}
