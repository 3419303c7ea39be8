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
    /// Checkpoint automatically once this many rows are buffered; 0 = never.
    pub checkpoint_rows: usize,
    /// Checkpoint automatically once buffered rows have waited this many seconds; 0 = never.
    pub checkpoint_interval_secs: u64,
    /// Partitions per query; 0 = one per core.
    pub query_parallelism: usize,
    /// Log filter (EnvFilter syntax).
    pub log: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5433)),
            data_dir: PathBuf::from("./henge-data"),
            deep_storage: String::new(),
            wal_fsync: true,
            checkpoint_rows: 1_000_000,
            checkpoint_interval_secs: 600,
            query_parallelism: 0,
            log: "info".into(),
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
    #[error("refusing to listen on {0}: only loopback addresses are allowed until password authentication is configured")]
    NonLoopback(SocketAddr),
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

    /// Parses the text of a configuration file.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks settings that depend on each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.ip().is_loopback() {
            return Err(ConfigError::NonLoopback(self.listen));
        }
        Ok(())
    }

    /// Partitions per query, resolving 0 to the number of cores.
    pub fn parallelism(&self) -> usize {
        match self.query_parallelism {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
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
    fn unknown_fields_and_public_addresses_are_refused() {
        assert!(Config::parse("listne = \"x\"").is_err());
        let config = Config::parse("listen = \"0.0.0.0:5433\"").unwrap();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::NonLoopback(_))
        ));
    }
}
