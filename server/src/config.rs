//! Server configuration: one typed struct, loaded from `config/henge.toml` (every field is
//! documented there) and overridden from the command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where `henge serve` looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/henge.toml";

/// The server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the PostgreSQL protocol listens on.
    pub listen: SocketAddr,
    /// Directory holding the metadata, the write-ahead log and the local segment cache.
    pub data_dir: PathBuf,
    /// `object_store` URL of deep storage; empty means `file://<data_dir>/deep`.
    pub deep_storage: String,
    /// fsync the write-ahead log before acknowledging writes.
    pub wal_fsync: bool,
    /// Memory that rows in memory of all tables may take: a size, or "auto".
    pub ingest_memory: ByteSize,
    /// Seconds a writer waits for ingest memory before its statement fails (53200).
    pub ingest_wait_secs: u64,
    /// Persist once a time chunk holds this many rows in memory; 0 = no row trigger.
    #[serde(alias = "checkpoint_rows")]
    pub persist_rows: usize,
    /// Persist once a time chunk holds this much memory; 0 = no byte trigger.
    pub persist_bytes: ByteSize,
    /// Persist once rows have waited in memory this many seconds; 0 = no age trigger.
    #[serde(alias = "checkpoint_interval_secs")]
    pub persist_period_secs: u64,
    /// Rows of a segment made by a hand-off; more become more partitions.
    pub segment_rows: usize,
    /// Compact an interval by itself once it has this many published segments; 0 = never.
    pub compact_segments: usize,
    /// Memory that queries' sorts, joins and aggregations may take together before they
    /// spill to disk: a size, or "auto".
    pub query_memory: ByteSize,
    /// What one statement may hold of `query_memory`: a size, or "auto" (half of it).
    pub statement_memory: ByteSize,
    /// Memory for the decoded dictionaries of string columns, kept between queries: a
    /// size, or "auto".
    pub dictionary_cache: ByteSize,
    /// Partitions per query; 0 = one per core.
    pub query_parallelism: usize,
    /// Log filter (EnvFilter syntax).
    pub log: String,
    /// The password set for the superuser `henge` at start (`HENGE_PASSWORD` overrides
    /// it); empty leaves the stored one.
    pub superuser_password: String,
    /// Milliseconds before a failed login is answered (doubling with each further failure
    /// from the same address within a minute, up to ten seconds).
    pub auth_failure_delay_ms: u64,
    /// Sessions at once; more are refused with 53300 (the last three slots are kept for
    /// superusers).
    pub max_connections: usize,
    /// Every session's `statement_timeout` until it sets its own ("0": none).
    pub statement_timeout: String,
    /// Every session's `idle_session_timeout` until it sets its own ("0": none).
    pub idle_session_timeout: String,
    /// Every session's `idle_in_transaction_session_timeout` until it sets its own.
    pub idle_in_transaction_session_timeout: String,
    /// Time a client has from connecting to being logged in.
    pub authentication_timeout: String,
    /// The largest message other than a statement's text (a Bind's parameters, a
    /// CopyData chunk): a size.
    pub max_message_size: ByteSize,
    /// The largest statement text a client may send: a size.
    pub max_statement_size: ByteSize,
    /// TLS: off, on (offered to clients that ask), or required (plaintext refused).
    pub tls: TlsMode,
    /// PEM file of the server's certificate chain, the server's first.
    pub tls_cert: PathBuf,
    /// PEM file of the certificate's private key.
    pub tls_key: PathBuf,
    /// How clients authenticate, by their address: the first rule that matches decides.
    pub auth: Vec<crate::auth::Rule>,
}

/// Whether connections are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    Off,
    On,
    Required,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5433)),
            data_dir: PathBuf::from("./henge-data"),
            deep_storage: String::new(),
            wal_fsync: true,
            ingest_memory: ByteSize::Auto,
            ingest_wait_secs: 60,
            persist_rows: 1_000_000,
            persist_bytes: ByteSize::Bytes(256 << 20),
            persist_period_secs: 600,
            segment_rows: 5_000_000,
            compact_segments: 4,
            query_memory: ByteSize::Auto,
            statement_memory: ByteSize::Auto,
            dictionary_cache: ByteSize::Auto,
            query_parallelism: 0,
            log: "info".into(),
            superuser_password: String::new(),
            auth_failure_delay_ms: 500,
            max_connections: 100,
            statement_timeout: "0".into(),
            idle_session_timeout: "0".into(),
            idle_in_transaction_session_timeout: "0".into(),
            authentication_timeout: "1min".into(),
            max_message_size: ByteSize::Bytes(64 << 20),
            max_statement_size: ByteSize::Bytes(16 << 20),
            tls: TlsMode::Off,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            auth: crate::auth::Rule::defaults(),
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read configuration file \"{path}\": {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file \"{path}\": {message}")]
    Parse { path: PathBuf, message: String },
    #[error("refusing to listen on {0}: an auth rule trusts clients beyond this machine (use method \"scram-sha-256\" for them)")]
    TrustsRemote(SocketAddr),
    #[error("refusing to listen on {0}: no superuser has a password yet (set superuser_password in the configuration or the HENGE_PASSWORD environment variable)")]
    NoPassword(SocketAddr),
    #[error("invalid auth rule: {0}")]
    Rule(String),
    #[error("TLS cannot be set up: {0}")]
    Tls(String),
    #[error("invalid setting: {0}")]
    Setting(String),
}

impl Config {
    /// Loads `path`; without one, `config/henge.toml` if it exists, else the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match path {
            Some(path) => path.to_path_buf(),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => PathBuf::from(DEFAULT_CONFIG_PATH),
            None => return Ok(Config::default()),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Parse { path, message })
    }

    /// The session parameters whose defaults come from the configuration.
    pub fn session_defaults(&self) -> [(&'static str, &str); 3] {
        [
            ("statement_timeout", &self.statement_timeout),
            ("idle_session_timeout", &self.idle_session_timeout),
            (
                "idle_in_transaction_session_timeout",
                &self.idle_in_transaction_session_timeout,
            ),
        ]
    }

    /// The limits on what one connection may send.
    pub fn socket_limits(&self) -> crate::wire::socket::SocketLimits {
        crate::wire::socket::SocketLimits {
            authentication_timeout: henge_planner::pg::settings::parse_duration(
                &self.authentication_timeout,
            )
            .filter(|t| !t.is_zero())
            .unwrap_or(std::time::Duration::from_secs(60)),
            max_message: self.max_message_size.bytes_or(|| 64 << 20).max(1 << 16),
        }
    }

    /// Parses the text of a configuration file.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks settings that depend on each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rules = crate::auth::Rules::new(&self.auth).map_err(ConfigError::Rule)?;
        let settings = henge_planner::Settings::new();
        for (name, value) in self.session_defaults() {
            if let Err(e) = settings.set(name, value) {
                return Err(ConfigError::Setting(e.message));
            }
        }
        match henge_planner::pg::settings::parse_duration(&self.authentication_timeout) {
            Some(t) if !t.is_zero() => {}
            _ => {
                return Err(ConfigError::Setting(format!(
                "authentication_timeout must be a positive duration such as \"1min\", not \"{}\"",
                self.authentication_timeout
            )))
            }
        }
        if self.tls != TlsMode::Off
            && (self.tls_cert.as_os_str().is_empty() || self.tls_key.as_os_str().is_empty())
        {
            return Err(ConfigError::Tls(
                "tls_cert and tls_key must name the certificate and key files".into(),
            ));
        }
        // On an address others can reach, everyone from elsewhere gives a password.
        if !self.listen.ip().is_loopback() && rules.trust_remote() {
            return Err(ConfigError::TrustsRemote(self.listen));
        }
        Ok(())
    }

    /// The superuser's password to set at start: `HENGE_PASSWORD`, else the file's.
    pub fn superuser_password(&self) -> Option<String> {
        std::env::var("HENGE_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .or_else(|| Some(self.superuser_password.clone()).filter(|p| !p.is_empty()))
    }

    /// The ingest memory budget in bytes, resolving "auto" to min(RAM / 8, 4 GiB).
    pub fn ingest_memory_bytes(&self) -> usize {
        self.ingest_memory.bytes_or(|| {
            let ram = physical_memory().unwrap_or(8 << 30);
            (ram / 8).min(4 << 30)
        })
    }

    /// The query memory pool in bytes, resolving "auto" to RAM / 4.
    pub fn query_memory_bytes(&self) -> usize {
        self.query_memory
            .bytes_or(|| physical_memory().unwrap_or(8 << 30) / 4)
    }

    /// What one statement may hold of the query memory, resolving "auto" to half of it;
    /// never more than all of it.
    pub fn statement_memory_bytes(&self) -> usize {
        let pool = self.query_memory_bytes();
        self.statement_memory
            .bytes_or(|| pool / 2)
            .clamp(1 << 20, pool.max(1 << 20))
    }

    /// The dictionary cache in bytes, resolving "auto" to min(RAM / 32, 1 GiB).
    pub fn dictionary_cache_bytes(&self) -> usize {
        self.dictionary_cache.bytes_or(|| {
            let ram = physical_memory().unwrap_or(8 << 30);
            (ram / 32).min(1 << 30)
        })
    }

    /// Partitions per query, resolving 0 to the number of cores.
    pub fn parallelism(&self) -> usize {
        match self.query_parallelism {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// A size in bytes, written as a number of bytes or with PostgreSQL's units (`kB`, `MB`,
/// `GB`, `TB`, multiples of 1024; `KiB`, `MiB`, `GiB`, `TiB` too), or `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteSize {
    Auto,
    Bytes(usize),
}

impl ByteSize {
    /// The size, with `auto` resolved by `auto`.
    pub fn bytes_or(&self, auto: impl FnOnce() -> usize) -> usize {
        match self {
            ByteSize::Auto => auto(),
            ByteSize::Bytes(n) => *n,
        }
    }

    fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(ByteSize::Auto);
        }
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: usize = number
            .parse()
            .map_err(|_| format!("invalid size \"{text}\""))?;
        let shift = match unit.trim() {
            "" | "B" => 0,
            "kB" | "KB" | "KiB" => 10,
            "MB" | "MiB" => 20,
            "GB" | "GiB" => 30,
            "TB" | "TiB" => 40,
            other => {
                return Err(format!(
                    "invalid size unit \"{other}\" in \"{text}\"; use B, kB, MB, GB or TB"
                ))
            }
        };
        number
            .checked_mul(1usize << shift)
            .map(ByteSize::Bytes)
            .ok_or_else(|| format!("size \"{text}\" is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => usize::try_from(n)
                .map(ByteSize::Bytes)
                .map_err(serde::de::Error::custom),
            Raw::Text(text) => ByteSize::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// Total memory of the machine, from /proc/meminfo.
fn physical_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_holds_the_defaults() {
        let text = include_str!("../../config/henge.toml");
        assert_eq!(Config::parse(text).unwrap(), Config::default());
    }

    #[test]
    fn sizes_take_postgres_units() {
        let config = Config::parse("ingest_memory = \"512MB\"\npersist_bytes = 1024").unwrap();
        assert_eq!(config.ingest_memory_bytes(), 512 << 20);
        assert_eq!(config.persist_bytes, ByteSize::Bytes(1024));
        assert!(Config::default().ingest_memory_bytes() <= 4 << 30);
        assert!(Config::parse("ingest_memory = \"12 parsecs\"").is_err());
        assert!(Config::parse("ingest_memory = \"lots\"").is_err());
        // The names of earlier versions still load.
        let old = Config::parse("checkpoint_rows = 10\ncheckpoint_interval_secs = 5").unwrap();
        assert_eq!((old.persist_rows, old.persist_period_secs), (10, 5));
    }

    #[test]
    fn unknown_fields_and_trust_beyond_this_machine_are_refused() {
        assert!(Config::parse("listne = \"x\"").is_err());
        // The default rules ask everyone but this machine for a password.
        let config = Config::parse("listen = \"0.0.0.0:5433\"").unwrap();
        assert!(config.validate().is_ok());
        let trusting = Config::parse(
            "listen = \"0.0.0.0:5433\"\n[[auth]]\naddress = \"all\"\nmethod = \"trust\"",
        )
        .unwrap();
        assert!(matches!(
            trusting.validate(),
            Err(ConfigError::TrustsRemote(_))
        ));
        let loopback = Config::parse("[[auth]]\naddress = \"all\"\nmethod = \"trust\"").unwrap();
        assert!(loopback.validate().is_ok());
        assert!(Config::parse("[[auth]]\naddress = \"all\"\nmethod = \"md5\"").is_err());
    }
}
