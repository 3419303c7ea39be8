//! PostgreSQL from the distribution's packages, started by the harness with `initdb` and
//! `pg_ctl` on a temporary directory (as the `postgres` user when the harness runs as root,
//! since PostgreSQL refuses to run as root) and stopped afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::wire::Wire;
use super::{tree_cpu, Load};
use crate::Result;

/// A running PostgreSQL cluster, stopped and removed when dropped.
pub struct Postgres {
    pub client: Wire,
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// The newest PostgreSQL installed under /usr/lib/postgresql, Debian's layout.
pub fn find_bin_dir() -> Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "PostgreSQL is not installed (no /usr/lib/postgresql); run benches/run")?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin; run benches/run".into())
}

impl Postgres {
    /// initdb and start a cluster on a free port. `threads` is the machine's core count:
    /// parallel query may use all of them.
    pub async fn start(bin: &Path, threads: usize) -> Result<Postgres> {
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("henge-bench-postgres-")
            .tempdir()
            .map_err(|e| format!("creating a directory for PostgreSQL: {e}"))?;
        let path = dir
            .path()
            .to_str()
            .ok_or("temporary path is not UTF-8")?
            .to_owned();
        if as_postgres {
            run(Command::new("chown").args(["postgres:postgres", &path]))?;
        }
        let port = super::free_port()?;
        let data = format!("{path}/data");
        let pg = |tool: &str| {
            let program = bin.join(tool);
            if as_postgres {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            } else {
                Command::new(program)
            }
        };
        run(pg("initdb")
            .args(["-D", &data, "-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync"]))?;
        // Settings a user tuning a 24 GiB analytics box would pick; parallel query on.
        let options = format!(
            "-p {port} -k {path} -c listen_addresses=127.0.0.1 -c shared_buffers=4GB \
             -c work_mem=256MB -c maintenance_work_mem=1GB -c max_wal_size=8GB \
             -c effective_cache_size=16GB -c max_worker_processes={w} \
             -c max_parallel_workers={w} -c max_parallel_workers_per_gather={g}",
            w = threads.max(8),
            g = threads.saturating_sub(1),
        );
        run(pg("pg_ctl")
            .args([
                "-D",
                &data,
                "-l",
                &format!("{path}/log"),
                "-w",
                "-o",
                &options,
            ])
            .arg("start"))?;
        let client = Wire::connect(
            &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            Duration::from_secs(30),
        )
        .await?;
        Ok(Postgres {
            client,
            bin: bin.to_owned(),
            dir,
            port,
            as_postgres,
        })
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Another connection to the same cluster.
    pub async fn connect(&self) -> Result<Wire> {
        Wire::connect(&self.connection_string(), Duration::from_secs(10)).await
    }

    /// The libpq connection string (also for pgbench).
    pub fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    pub async fn version(&self) -> Result<String> {
        let answer = self.client.query("SHOW server_version").await?;
        let version = answer.rows.first().and_then(|r| r.first()).cloned();
        Ok(format!("PostgreSQL {}", version.unwrap_or_default()))
    }

    /// One thread: no parallel workers; n threads: the leader and n − 1 workers.
    pub async fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.client
            .execute(&format!(
                "SET max_parallel_workers_per_gather = {}",
                threads.saturating_sub(1)
            ))
            .await
    }

    /// Creates `table`, loads `file` with one COPY, then VACUUM ANALYZE (not timed), as a
    /// user would before querying. CPU time is the whole cluster's (every server process).
    pub async fn load(&mut self, table: &str, columns: &str, file: &Path) -> Result<Load> {
        self.client
            .execute(&format!("CREATE TABLE {table} ({columns})"))
            .await?;
        let postmaster = self.postmaster_pid()?;
        let cpu = tree_cpu(postmaster)?;
        let (rows, elapsed) = self.client.copy_in(table, file).await?;
        let cpu = tree_cpu(postmaster)? - cpu;
        self.client
            .execute(&format!("VACUUM ANALYZE {table}"))
            .await?;
        Ok(Load { rows, elapsed, cpu })
    }

    fn postmaster_pid(&self) -> Result<u32> {
        let file = self.dir.path().join("data/postmaster.pid");
        std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse().ok())
            .ok_or_else(|| format!("no PID in {}", file.display()).into())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = command
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

fn run(command: &mut Command) -> Result<()> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into())
    }
}
