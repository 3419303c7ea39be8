//! Starting, killing and restarting a `henge serve` process for tests.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the `henge` binary: `$HENGE_BIN`, or built now with the cargo running the tests.
pub fn henge_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Ok(path) = std::env::var("HENGE_BIN") {
                return PathBuf::from(path);
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = Command::new(cargo);
            // Cargo describes the test's own package to it in CARGO_MANIFEST_DIR and friends;
            // some build scripts (ring's) rerun when those change, so the nested build would
            // rebuild them and invalidate the outer build's artifacts every time.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy().into_owned();
                if key == "CARGO_MANIFEST_DIR"
                    || key == "CARGO_MANIFEST_PATH"
                    || key == "CARGO_CRATE_NAME"
                    || key == "CARGO_PRIMARY_PACKAGE"
                    || key == "CARGO_TARGET_TMPDIR"
                    || key == "CARGO_RUSTC_CURRENT_DIR"
                    || key.starts_with("CARGO_PKG_")
                    || key.starts_with("CARGO_BIN_")
                {
                    command.env_remove(key);
                }
            }
            let status = command
                // The same targets `cargo test --workspace` builds, so both resolve features
                // alike and neither invalidates the other's artifacts.
                .args(["build", "--quiet", "--workspace", "--tests", "--bins"])
                .status()
                .expect("run cargo build for the henge binary");
            assert!(status.success(), "building the henge binary failed");
            // Test executables live in <target>/<profile>/deps; the binary one level up.
            let exe = std::env::current_exe().expect("current test executable");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("test executable inside a target directory");
            profile_dir.join("henge")
        })
        .clone()
}

/// A running `henge serve` with its own data directory, killed when dropped.
pub struct TestServer {
    child: Option<Child>,
    addr: SocketAddr,
    data_dir: tempfile::TempDir,
    /// A configuration file passed with `--config`.
    config: Option<PathBuf>,
    /// Extra environment variables of the process (`HENGE_FAIL_AT`).
    env: Vec<(String, String)>,
}

impl TestServer {
    /// Starts a server on a free loopback port with an empty data directory.
    pub fn start() -> TestServer {
        TestServer::start_with_config(None)
    }

    /// Like [`TestServer::start`], with `config` (TOML) as the configuration file.
    pub fn start_with_config(config: Option<&str>) -> TestServer {
        let data_dir = tempfile::tempdir().expect("create a data directory");
        let config = config.map(|text| {
            let path = data_dir.path().join("henge.toml");
            std::fs::write(&path, text).expect("write the configuration file");
            path
        });
        let mut server = TestServer {
            child: None,
            addr: free_port(),
            data_dir,
            config,
            env: Vec::new(),
        };
        server.spawn();
        server
    }

    /// Restarts the server (killing it first if it runs) with `HENGE_FAIL_AT` set to
    /// `point`, or unset with `None`: the process then aborts when it reaches that step.
    pub fn restart_failing_at(&mut self, point: Option<&str>) {
        self.kill();
        self.env.retain(|(k, _)| k != "HENGE_FAIL_AT");
        if let Some(point) = point {
            self.env.push(("HENGE_FAIL_AT".into(), point.into()));
        }
        self.spawn();
    }

    /// Waits up to `within` for the process to exit by itself; whether it did.
    pub fn exited_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(_))) | None => {
                    self.child = None;
                    return true;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// A tokio-postgres connection string for this server.
    pub fn connection_string(&self) -> String {
        format!(
            "host={} port={} user=henge dbname=henge",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// A client connected to this server, its connection driven by a spawned task.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.connection_string(), tokio_postgres::NoTls)
                .await
                .expect("connect");
        tokio::spawn(connection);
        client
    }

    /// A client whose asynchronous messages (notifications, notices) come out of the
    /// returned receiver, its connection driven by a spawned task.
    pub async fn listening(
        &self,
    ) -> (
        tokio_postgres::Client,
        tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::AsyncMessage>,
    ) {
        let (client, mut connection) =
            tokio_postgres::connect(&self.connection_string(), tokio_postgres::NoTls)
                .await
                .expect("connect");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) =
                std::future::poll_fn(|cx| connection.poll_message(cx)).await
            {
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        (client, rx)
    }

    fn spawn(&mut self) {
        let mut command = Command::new(henge_binary());
        command.arg("serve");
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        let child = command
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .env(
                "HENGE_LOG",
                std::env::var("HENGE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .spawn()
            .expect("start henge");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(self.addr).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("henge exited during start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "henge did not start listening within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL (no shutdown at all), then starts it again on the same
    /// data directory and port.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills the server with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with SIGTERM and waits for it; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}
