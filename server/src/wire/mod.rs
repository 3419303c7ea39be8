//! The PostgreSQL wire protocol front end, on pgwire: startup, simple and extended query
//! protocol, COPY sub-protocol and cancel requests, all delegating to a [`Session`].

pub mod encode;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, PgWireServerHandlers,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator, Type, DEFAULT_NAME, METADATA_DATABASE,
    METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Parse, ParseComplete, TARGET_TYPE_BYTE_PORTAL,
    TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::copy;
use crate::error::{code, PgError};
use crate::params;
use crate::session::{parse, Prepared, Session, Shared};
use encode::pg_type;

/// The only user and database until users are configurable.
pub const USER: &str = "henge";
pub const DATABASE: &str = "henge";
/// The PostgreSQL version Henge reports, for clients that check it.
pub const SERVER_VERSION: &str = "16.0";

/// Server-wide protocol state: makes one [`Connection`] per client.
pub struct Frontend {
    shared: Arc<Shared>,
    manager: Arc<ConnectionManager>,
    cancel: Arc<DefaultCancelHandler>,
    pids: Arc<RandomPidSecretKeyGenerator>,
}

impl Frontend {
    pub fn new(shared: Arc<Shared>) -> Frontend {
        let manager = Arc::new(ConnectionManager::new());
        Frontend {
            shared,
            cancel: Arc::new(DefaultCancelHandler::new(manager.clone())),
            manager,
            pids: Arc::new(RandomPidSecretKeyGenerator::default()),
        }
    }

    /// Handlers for a new client connection.
    pub fn connection(&self) -> ConnectionHandlers {
        let session = Arc::new(Session::new(self.shared.clone()));
        ConnectionHandlers {
            connection: Arc::new(Connection {
                parser: Arc::new(StatementParser {
                    session: session.clone(),
                }),
                session,
                manager: self.manager.clone(),
                pids: self.pids.clone(),
            }),
            cancel: self.cancel.clone(),
        }
    }
}

/// pgwire's view of one connection's handlers.
pub struct ConnectionHandlers {
    connection: Arc<Connection>,
    cancel: Arc<DefaultCancelHandler>,
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.connection.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.connection.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.connection.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.connection.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// One client connection.
pub struct Connection {
    session: Arc<Session>,
    parser: Arc<StatementParser>,
    manager: Arc<ConnectionManager>,
    pids: Arc<RandomPidSecretKeyGenerator>,
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(ref startup) = message else {
            return Ok(());
        };
        protocol_negotiation(client, startup).await?;
        save_startup_parameters_to_metadata(client, startup);
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let database = client
            .metadata()
            .get(METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        if user != USER {
            return Err(fatal("28000", format!("role \"{user}\" does not exist")));
        }
        if database != DATABASE {
            return Err(fatal(
                "3D000",
                format!("database \"{database}\" does not exist"),
            ));
        }
        let (pid, secret) = self.pids.generate(&*client);
        client.set_pid_and_secret_key(pid, secret.clone());
        let (handle, guard) = self.manager.register(pid, secret);
        client
            .session_extensions()
            .insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert(guard);

        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.into();
        parameters.time_zone = "UTC".into();
        parameters.date_style = "ISO, MDY".into();
        finish_authentication(client, &parameters).await?;
        tracing::debug!(pid, addr = %client.socket_addr(), "session started");
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = parse(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            let result = match self.session.prepare(statement).await {
                Ok(prepared) => self.session.execute(&prepared, Vec::new(), None).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(response) => responses.push(response),
                Err(e) => {
                    let e: PgWireError = e.into();
                    responses.push(Response::Error(Box::new(ErrorInfo::from(e))));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

/// Parses and plans statements of the extended protocol.
pub struct StatementParser {
    session: Arc<Session>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = parse(sql)?;
        if statements.len() > 1 {
            return Err(PgError::syntax(
                "cannot insert multiple commands into a prepared statement",
            )
            .into());
        }
        let Some(statement) = statements.pop() else {
            return Ok(None);
        };
        Ok(Some(Arc::new(self.session.prepare(statement).await?)))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .param_types
            .iter()
            .map(|t| t.as_ref().map_or(Type::TEXT, pg_type))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(Session::result_fields(stmt, column_format))
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Arc<Prepared>;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    // Parse, Bind and Close answer with `feed` rather than pgwire's default `send`: the
    // replies of a pipelined batch leave together at Sync or Flush, not one write each.

    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(statement) => client.portal_store().put_statement(Arc::new(statement)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client
            .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) if message.parameters.is_empty() => {
                client.portal_store().put_empty_portal(portal_name);
            }
            Some(Entry::Empty) => {
                return Err(PgError::new(
                    code::PROTOCOL_VIOLATION,
                    format!(
                        "bind message supplies {} parameters, but prepared statement \"{statement_name}\" requires 0",
                        message.parameters.len()
                    ),
                )
                .into())
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => client.portal_store().rm_statement(name),
            TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
            _ => {}
        }
        client
            .feed(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let mut values = Vec::with_capacity(portal.parameter_len());
        for (i, bytes) in portal.parameters.iter().enumerate() {
            let declared = portal.statement.parameter_types.get(i).cloned().flatten();
            let wanted = prepared.param_types.get(i).cloned().flatten();
            values.push(params::decode(
                bytes.as_deref(),
                portal.parameter_format.is_binary(i),
                declared.as_ref(),
                wanted.as_ref(),
            )?);
        }
        Ok(self
            .session
            .execute(prepared, values, Some(&portal.result_column_format))
            .await?)
    }
}

#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut state = self
            .session
            .copy_in
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(copy) = state.as_mut() {
            copy::feed(copy, &copy_data.data);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let copy = self
            .session
            .copy_in
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| PgError::new(code::PROTOCOL_VIOLATION, "no COPY in progress"))?;
        let rows = copy::finish(&self.session, copy).await?;
        client
            .send(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows as usize).into(),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.session
            .copy_in
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        PgError::new(
            code::QUERY_CANCELED,
            format!("COPY from stdin failed: {}", fail.message),
        )
        .into()
    }
}
