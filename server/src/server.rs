//! Process lifecycle: open the data directory, accept connections, shut down cleanly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use henge_ingest::{Engine, EngineOptions};
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

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(
    config: Config,
    query_runtime: tokio::runtime::Handle,
) -> Result<(), ServeError> {
    config.validate()?;
    let options = EngineOptions {
        wal_fsync: config.wal_fsync,
        deep_storage: Some(config.deep_storage.clone()).filter(|url| !url.is_empty()),
    };
    let data_dir = config.data_dir.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(&data_dir, &options))
        .await
        .map_err(|e| ServeError::Signal(std::io::Error::other(e)))??;
    let engine = Arc::new(engine);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let frontend = Frontend::new(Arc::new(Shared {
        engine: engine.clone(),
        parallelism: config.parallelism(),
        query_runtime,
    }));
    let local = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(%local, data_dir = %config.data_dir.display(), "henge is ready to accept connections");

    let checkpointer = tokio::spawn(auto_checkpoint(
        engine.clone(),
        config.checkpoint_rows,
        Duration::from_secs(config.checkpoint_interval_secs),
    ));

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServeError::Signal)?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    let handlers = frontend.connection();
                    tokio::spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
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
    checkpointer.abort();
    engine.close();
    tracing::info!("henge stopped");
    Ok(())
}

/// Runs a CHECKPOINT whenever `max_rows` rows are buffered, or rows have been buffered for
/// `max_wait` (either trigger off when zero), so memory and the write-ahead log stay bounded
/// without anyone asking.
async fn auto_checkpoint(engine: Arc<Engine>, max_rows: usize, max_wait: Duration) {
    if max_rows == 0 && max_wait.is_zero() {
        return;
    }
    let mut buffered_since: Option<Instant> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let rows = engine.buffered_rows();
        if rows == 0 {
            buffered_since = None;
            continue;
        }
        let since = *buffered_since.get_or_insert_with(Instant::now);
        let full = max_rows > 0 && rows >= max_rows;
        let old = !max_wait.is_zero() && since.elapsed() >= max_wait;
        if !(full || old) {
            continue;
        }
        match engine.checkpoint().await {
            Ok(report) => {
                tracing::info!(
                    rows = report.rows,
                    segments = report.segments,
                    reason = if full { "rows" } else { "age" },
                    "automatic checkpoint"
                );
                buffered_since = None;
            }
            Err(e) => {
                // The rows stay buffered and logged; try again after a pause.
                tracing::error!(error = %e, "automatic checkpoint failed");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}
