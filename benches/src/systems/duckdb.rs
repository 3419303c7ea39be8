//! DuckDB through its Python package, in a child process that runs `benches/duckdb_peer.py`:
//! queries are timed inside that process, around `execute(...).fetchall()`, so the pipe
//! between the harness and Python is not counted.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Answer, Load};
use crate::Result;

/// The Python process holding a DuckDB database file.
pub struct DuckDb {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl DuckDb {
    /// Starts `python` on the peer script and opens a database file in `work`.
    pub fn start(python: &str, work: &Path) -> Result<DuckDb> {
        // From the repository's root (where benches/run starts the harness), else from the
        // source tree the harness was built in.
        let script = Path::new("benches/duckdb_peer.py").to_owned();
        let script = if script.exists() {
            script
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("duckdb_peer.py")
        };
        let mut child = Command::new(python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {python} {}: {e}", script.display()))?;
        let input = child.stdin.take().ok_or("no stdin")?;
        let output = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut duckdb = DuckDb {
            child,
            input,
            output,
        };
        let path = work.join("duckdb.db");
        duckdb.call(json!({"op": "open", "path": path}))?;
        Ok(duckdb)
    }

    fn call(&mut self, command: Value) -> Result<Value> {
        writeln!(self.input, "{command}").map_err(|e| format!("writing to DuckDB: {e}"))?;
        self.input
            .flush()
            .map_err(|e| format!("writing to DuckDB: {e}"))?;
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .map_err(|e| format!("reading from DuckDB: {e}"))?;
        if line.is_empty() {
            return Err("the DuckDB process ended (is the duckdb package installed?)".into());
        }
        let answer: Value =
            serde_json::from_str(&line).map_err(|e| format!("DuckDB answered {line:?}: {e}"))?;
        match answer.get("error") {
            Some(error) => {
                Err(format!("DuckDB: {} ({command})", error.as_str().unwrap_or("")).into())
            }
            None => Ok(answer),
        }
    }

    pub fn version(&mut self) -> Result<String> {
        let answer = self.call(json!({"op": "version"}))?;
        Ok(answer["version"].as_str().unwrap_or("DuckDB").to_owned())
    }

    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.call(json!({"op": "execute", "sql": format!("SET threads = {threads}")}))?;
        Ok(())
    }

    pub fn query(&mut self, sql: &str) -> Result<Answer> {
        let answer = self.call(json!({"op": "query", "sql": sql}))?;
        let rows = answer["rows"]
            .as_array()
            .ok_or("DuckDB answered without rows")?
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

    /// Creates `table` and loads `file` (COPY text) with DuckDB's own COPY from the file.
    pub fn load(&mut self, table: &str, columns: &str, file: &Path) -> Result<Load> {
        self.call(json!({"op": "execute", "sql": format!("CREATE TABLE {table} ({columns})")}))?;
        let sql = format!(
            "COPY {table} FROM '{}' (FORMAT csv, DELIMITER '\t', HEADER false, NULL '\\N')",
            file.display()
        );
        let answer = self.call(json!({"op": "load", "sql": sql}))?;
        Ok(Load {
            rows: answer["rows"].as_u64().unwrap_or(0),
            elapsed: seconds(&answer["seconds"]),
            cpu: seconds(&answer["cpu"]),
        })
    }
}

impl Drop for DuckDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seconds(value: &Value) -> Duration {
    Duration::from_secs_f64(value.as_f64().unwrap_or(0.0).max(0.0))
}
