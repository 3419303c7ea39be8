//! The sqllogictest database: a tokio-postgres connection to a [`TestServer`].

use std::sync::{Arc, Mutex};

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::server::TestServer;
use crate::values::{binary_to_text, display_text, Raw};

/// Which half of the protocol statements are sent through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `Query` messages; results in text.
    Simple,
    /// Parse/Bind/Describe/Execute/Sync; results in binary.
    Extended,
}

/// An error as the test files match it: `<SQLSTATE>: <message>`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DbError(String);

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> DbError {
        match e.as_db_error() {
            Some(db) => DbError(format!("{}: {}", db.code().code(), db.message())),
            None => DbError(e.to_string()),
        }
    }
}

/// A connection to the server under test.
pub struct HengeDb {
    server: Arc<Mutex<TestServer>>,
    client: Client,
    protocol: Protocol,
}

impl HengeDb {
    pub async fn connect(
        server: Arc<Mutex<TestServer>>,
        protocol: Protocol,
    ) -> Result<HengeDb, DbError> {
        let conninfo = server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .connection_string();
        // A server just started (or restarted) may still be opening its data directory on a
        // loaded machine: a refused connection is tried again for a few seconds.
        let mut attempts = 0;
        let (client, connection) = loop {
            match tokio_postgres::connect(&conninfo, NoTls).await {
                Ok(connected) => break connected,
                Err(e) if attempts < 50 && e.as_db_error().is_none() => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        tokio::spawn(connection);
        Ok(HengeDb {
            server,
            client,
            protocol,
        })
    }

    async fn restart(&mut self) -> Result<(), DbError> {
        let server = self.server.clone();
        tokio::task::spawn_blocking(move || {
            server
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .kill_and_restart()
        })
        .await
        .map_err(|e| DbError(e.to_string()))?;
        *self = HengeDb::connect(self.server.clone(), self.protocol).await?;
        Ok(())
    }

    async fn simple(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let messages = self.client.simple_query(sql).await?;
        let mut columns = None;
        let mut rows = Vec::new();
        let mut count = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(desc) => columns = Some(desc.len()),
                SimpleQueryMessage::Row(row) => {
                    rows.push((0..row.len()).map(|i| display_text(row.get(i))).collect());
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        Ok(match columns {
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(count),
        })
    }

    async fn extended(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let statement = self.client.prepare(sql).await?;
        if statement.columns().is_empty() {
            return Ok(DBOutput::StatementComplete(
                self.client.execute(&statement, &[]).await?,
            ));
        }
        let rows = self.client.query(&statement, &[]).await?;
        let rows = rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let ty = row.columns()[i].type_();
                        match row.get::<_, Option<Raw>>(i) {
                            None => "NULL".into(),
                            Some(raw) => match binary_to_text(ty, raw.0) {
                                s if s.is_empty() => "(empty)".into(),
                                s => s,
                            },
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; statement.columns().len()],
            rows,
        })
    }
}

#[async_trait::async_trait]
impl AsyncDB for HengeDb {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        if sql
            .trim()
            .trim_end_matches(';')
            .eq_ignore_ascii_case("RESTART HENGE")
        {
            self.restart().await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        match self.protocol {
            Protocol::Simple => self.simple(sql).await,
            Protocol::Extended => self.extended(sql).await,
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "henge"
    }
}
