//! Henge, started by the harness as a separate process on a temporary data directory and
//! queried over the wire like any client would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::wire::Wire;
use super::{process_cpu, Load};
use crate::Result;

/// A running `henge serve`, stopped when dropped.
pub struct Henge {
    pub client: Wire,
    child: Child,
    binary: PathBuf,
    port: u16,
    data_dir: tempfile::TempDir,
}

impl Henge {
    /// Starts `binary` on a new data directory under `work`. `wal_fsync` as in henge.toml;
    /// automatic persists are off, so the harness decides when segments are written (the
    /// ingest memory budget still persists when it must).
    pub async fn start(binary: &Path, work: &Path, wal_fsync: bool) -> Result<Henge> {
        Henge::start_with(
            binary,
            work,
            &format!("wal_fsync = {wal_fsync}\npersist_rows = 0\npersist_period_secs = 0\n"),
        )
        .await
    }

    /// Starts `binary` on a new data directory under `work` with `config` (henge.toml
    /// lines; the log level is set here).
    pub async fn start_with(binary: &Path, work: &Path, config: &str) -> Result<Henge> {
        let data_dir = tempfile::Builder::new()
            .prefix("henge-")
            .tempdir_in(work)
            .map_err(|e| format!("creating a data directory in {}: {e}", work.display()))?;
        let config_file = data_dir.path().join("bench.toml");
        std::fs::write(&config_file, format!("{config}\nlog = \"warn\"\n"))
            .map_err(|e| format!("writing {}: {e}", config_file.display()))?;
        let port = super::free_port()?;
        let child = spawn(binary, data_dir.path(), port)?;
        let client = connected(child, data_dir.path(), port, Duration::from_secs(60)).await?;
        Ok(Henge {
            client: client.1,
            child: client.0,
            binary: binary.to_owned(),
            port,
            data_dir,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's data directory (`--data-dir`).
    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    /// Kills the server with SIGKILL, starts it again on the same data directory, and
    /// returns how long it took from the start until `probe` answered.
    pub async fn kill_and_restart(&mut self, probe: &str) -> Result<Duration> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let start = Instant::now();
        let child = spawn(&self.binary, self.data_dir.path(), self.port)?;
        let (child, client) = connected(
            child,
            self.data_dir.path(),
            self.port,
            Duration::from_secs(600),
        )
        .await?;
        self.child = child;
        self.client = client;
        self.client.query(probe).await?;
        Ok(start.elapsed())
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Another connection to the same server.
    pub async fn connect(&self) -> Result<Wire> {
        Wire::connect(&connection_string(self.port), Duration::from_secs(10)).await
    }

    pub async fn version(&self) -> Result<String> {
        let output = Command::new(&self.binary)
            .arg("--version")
            .output()
            .map_err(|e| format!("{} --version: {e}", self.binary.display()))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    pub async fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.client
            .execute(&format!(
                "SET datafusion.execution.target_partitions = {threads}"
            ))
            .await
    }

    /// Turns the scan's pushdown (pruning, bitmap indexes) on or off for this session.
    pub async fn set_pushdown(&mut self, on: bool) -> Result<()> {
        self.client
            .execute(&format!("SET henge.pushdown = {on}"))
            .await
    }

    /// Creates `table` and loads `file` with one COPY; CPU time is the server's.
    pub async fn load(
        &mut self,
        table: &str,
        columns: &str,
        with: &str,
        file: &Path,
    ) -> Result<Load> {
        self.client
            .execute(&format!("CREATE TABLE {table} ({columns}) WITH ({with})"))
            .await?;
        let cpu = process_cpu(self.child.id())?;
        let (rows, elapsed) = self.client.copy_in(table, file).await?;
        let cpu = process_cpu(self.child.id())? - cpu;
        Ok(Load { rows, elapsed, cpu })
    }

    /// Runs CHECKPOINT: everything buffered becomes segments.
    pub async fn checkpoint(&mut self) -> Result<Duration> {
        let start = Instant::now();
        self.client.execute("CHECKPOINT").await?;
        Ok(start.elapsed())
    }

    /// Bytes of segment files on local disk.
    pub fn segment_bytes(&self) -> u64 {
        let dir = self.data_dir.path().join("data").join("segments");
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Drop for Henge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `henge serve` on the data directory and config file under `dir`, its log appended to
/// `dir/henge.log`.
fn spawn(binary: &Path, dir: &Path, port: u16) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("henge.log"))
        .map_err(|e| format!("opening the server log: {e}"))?;
    Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(dir.join("bench.toml"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()).into())
}

/// A connection to the server `child` once it accepts one, or the error with its log.
async fn connected(
    mut child: Child,
    dir: &Path,
    port: u16,
    patience: Duration,
) -> Result<(Child, Wire)> {
    match Wire::connect(&connection_string(port), patience).await {
        Ok(client) => Ok((child, client)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("henge.log")).unwrap_or_default();
            Err(format!("{e}; the server's log:\n{log}").into())
        }
    }
}

fn connection_string(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=henge dbname=henge")
}
