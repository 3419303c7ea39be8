//! A PostgreSQL-protocol client shared by Henge and PostgreSQL: queries in the simple
//! protocol with text results (what psql and most BI tools do), COPY FROM STDIN from a file.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;
use tokio::io::AsyncReadExt;
use tokio_postgres::{Client, CopyInSink, NoTls, SimpleQueryMessage};

use super::Answer;
use crate::Result;

/// A connected client.
pub struct Wire {
    pub client: Client,
}

impl Wire {
    /// Connects, retrying until `patience` runs out (a server that was just started).
    pub async fn connect(config: &str, patience: Duration) -> Result<Wire> {
        let start = Instant::now();
        loop {
            match tokio_postgres::connect(config, NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return Ok(Wire { client });
                }
                Err(e) if start.elapsed() > patience => {
                    return Err(format!("connecting to {config}: {e}").into())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Runs statements, discarding any rows.
    pub async fn execute(&self, sql: &str) -> Result<()> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| format!("{sql}: {}", error_text(&e)))?;
        Ok(())
    }

    /// Runs one query and times it until the last row has arrived.
    pub async fn query(&self, sql: &str) -> Result<Answer> {
        let start = Instant::now();
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| format!("{sql}: {}", error_text(&e)))?;
        let elapsed = start.elapsed();
        let rows = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).unwrap_or("NULL").to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        Ok(Answer { elapsed, rows })
    }

    /// A COPY FROM STDIN into `table`, started: its statement and the sink its rows go to.
    async fn start_copy(&self, table: &str) -> Result<(String, CopyInSink<Bytes>)> {
        let statement = format!("COPY {table} FROM STDIN");
        let sink = self
            .client
            .copy_in::<_, Bytes>(&statement)
            .await
            .map_err(|e| format!("{statement}: {}", error_text(&e)))?;
        Ok((statement, sink))
    }

    /// Streams `file` (COPY text) into `table`; returns the rows loaded and the wall time.
    pub async fn copy_in(&self, table: &str, file: &Path) -> Result<(u64, Duration)> {
        let start = Instant::now();
        let (statement, sink) = self.start_copy(table).await?;
        futures::pin_mut!(sink);
        let mut input = tokio::fs::File::open(file)
            .await
            .map_err(|e| format!("opening {}: {e}", file.display()))?;
        loop {
            let mut chunk = Vec::with_capacity(1 << 20);
            let n = (&mut input)
                .take(1 << 20)
                .read_to_end(&mut chunk)
                .await
                .map_err(|e| format!("reading {}: {e}", file.display()))?;
            if n == 0 {
                break;
            }
            sink.send(Bytes::from(chunk))
                .await
                .map_err(|e| format!("{statement}: {}", error_text(&e)))?;
        }
        let rows = sink
            .finish()
            .await
            .map_err(|e| format!("{statement}: {}", error_text(&e)))?;
        Ok((rows, start.elapsed()))
    }

    /// One COPY FROM STDIN of `text` (COPY text, whole lines) into `table`; the rows loaded.
    pub async fn copy_text(&self, table: &str, text: Bytes) -> Result<u64> {
        let (statement, sink) = self.start_copy(table).await?;
        futures::pin_mut!(sink);
        sink.send(text)
            .await
            .map_err(|e| format!("{statement}: {}", error_text(&e)))?;
        Ok(sink
            .finish()
            .await
            .map_err(|e| format!("{statement}: {}", error_text(&e)))?)
    }
}

/// The server's message where there is one (tokio-postgres's Display says only "db error").
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
