//! Process lifecycle: open the data directory, accept connections, shut down cleanly.

use std::sync::Arc;
use std::time::Duration;

use henge_ingest::{Engine, EngineOptions, PersistPolicy};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::session::Shared;
use crate::wire::Frontend;

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("could not open the data directory: {0}")]
    Engine(#[from] henge_ingest::Error),
    #[error("could not listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("could not install signal handlers: {0}")]
    Signal(std::io::Error),
}

/// Stores `password` as the bootstrap superuser's, unless it is the one stored already (a
/// new verifier each start would change the metadata for nothing).
fn set_superuser_password(engine: &Engine, password: &str) -> Result<(), ServeError> {
    use henge_storage::access::BOOTSTRAP_SUPERUSER;
    engine
        .update_access(|access| -> Result<(), henge_storage::Error> {
            if let Some(role) = access.role_mut(BOOTSTRAP_SUPERUSER) {
                let same = role
                    .password
                    .as_deref()
                    .is_some_and(|v| crate::scram::verify(v, password));
                if !same {
                    role.password = Some(crate::scram::verifier(password));
                }
            }
            Ok(())
        })
        .map_err(|e| ServeError::Engine(e.into()))
}

/// Whether some superuser can log in with a password.
fn someone_can_log_in(engine: &Engine) -> bool {
    engine
        .access()
        .roles()
        .any(|r| r.superuser && r.login && r.password.is_some())
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(
    config: Config,
    query_runtime: tokio::runtime::Handle,
) -> Result<(), ServeError> {
    config.validate()?;
    crate::limits::set_max_statement_bytes(config.max_statement_size.bytes_or(|| 16 << 20));
    let options = EngineOptions {
        wal_fsync: config.wal_fsync,
        deep_storage: Some(config.deep_storage.clone()).filter(|url| !url.is_empty()),
        ingest_memory: config.ingest_memory_bytes(),
        ingest_wait: Duration::from_secs(config.ingest_wait_secs),
        segment_rows: config.segment_rows.max(1),
        compact_segments: config.compact_segments,
    };
    let data_dir = config.data_dir.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(&data_dir, &options))
        .await
        .map_err(|e| ServeError::Signal(std::io::Error::other(e)))??;
    let engine = Arc::new(engine);
    if let Some(password) = config.superuser_password() {
        set_superuser_password(&engine, &password)?;
    }
    if !config.listen.ip().is_loopback() && !someone_can_log_in(&engine) {
        return Err(crate::config::ConfigError::NoPassword(config.listen).into());
    }
    // Before any hand-off could reuse the name of a file a crash left unpublished.
    engine.remove_orphans().await;
    let tls = crate::tls::load(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    // Spill files of a previous run are useless now.
    let spill_dir = config.data_dir.join("tmp");
    let _ = std::fs::remove_dir_all(&spill_dir);
    henge_storage::segment::dictionaries::set_capacity(config.dictionary_cache_bytes());
    let query_env = henge_planner::query_runtime(config.query_memory_bytes(), &spill_dir)
        .map_err(|e| ServeError::Engine(henge_ingest::Error::Internal(e.to_string())))?;
    let pipelines = Arc::new(crate::pipeline::Pipelines::new(
        engine.clone(),
        query_env.clone(),
        query_runtime.clone(),
    ));
    let shared = Arc::new(Shared {
        engine: engine.clone(),
        parallelism: config.parallelism(),
        query_runtime,
        query_env,
        statement_memory: config.statement_memory_bytes(),
        pipelines: pipelines.clone(),
        notifications: Arc::default(),
        alerts: Default::default(),
    });
    // Before any connection or pipeline can commit: the rules rebuild their windows from
    // the stored rows first.
    let rules_session = crate::session::Session::new(shared.clone());
    let alerts = crate::alert::start(&rules_session, tokio::runtime::Handle::current())
        .await
        .map_err(|e| ServeError::Engine(henge_ingest::Error::Internal(e.message)))?;
    drop(rules_session);
    let _ = shared.alerts.set(alerts);
    let frontend = Arc::new(Frontend::new(
        shared,
        Arc::new(crate::wire::Gate::new(&config, tls)?),
    ));
    let local = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(%local, data_dir = %config.data_dir.display(), "henge is ready to accept connections");

    let persister = tokio::spawn(engine.clone().run_persister(PersistPolicy {
        rows: config.persist_rows,
        bytes: config.persist_bytes.bytes_or(|| 256 << 20),
        period: Duration::from_secs(config.persist_period_secs),
    }));
    let hand_off = tokio::spawn(engine.clone().run_hand_off());
    pipelines.start_all();

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServeError::Signal)?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    tokio::spawn(crate::wire::socket::serve(socket, frontend.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: wait for connections to end
                    // rather than spin on the listener.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupt received, shutting down");
                break;
            }
            _ = terminate.recv() => {
                tracing::info!("SIGTERM received, shutting down");
                break;
            }
        }
    }
    drop(listener);
    let stopping = pipelines.clone();
    let _ = tokio::task::spawn_blocking(move || stopping.stop_all()).await;
    persister.abort();
    hand_off.abort();
    engine.close();
    tracing::info!("henge stopped");
    Ok(())
}
