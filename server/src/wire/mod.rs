//! The PostgreSQL wire protocol front end, on pgwire: startup, simple and extended query
//! protocol, COPY sub-protocol and cancel requests, all delegating to a [`Session`].

pub mod encode;
pub mod frame;
pub mod socket;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::PortalExecutionState;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{send_query_response, ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::PgWireConnectionState;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type, DEFAULT_NAME, METADATA_DATABASE, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Parse, ParseComplete,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{NoticeResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::copy;
use crate::error::{code, PgError};
use crate::params;
use crate::results::Canceler;
use crate::session::{parse, Command, Prepared, Session, Shared};
use crate::set;
use datafusion::sql::sqlparser::ast::{ObjectType, Statement, TransactionMode};
use encode::pg_type;
use henge_planner::pg::functions;

/// The one database.
pub const DATABASE: &str = "henge";

/// Server-wide protocol state: makes one [`Connection`] per client.
pub struct Frontend {
    shared: Arc<Shared>,
    gate: Arc<Gate>,
    manager: Arc<ConnectionManager>,
    cancel: Arc<HengeCancelHandler>,
    pids: Arc<RandomPidSecretKeyGenerator>,
    backends: Arc<Backends>,
}

/// Every live connection's cancel handles by process id, for cancel requests and
/// `pg_cancel_backend`: pgwire's, which stops a statement still being prepared, and the
/// session's, which stops its results while they stream.
#[derive(Debug, Default)]
pub struct Backends(Mutex<HashMap<i32, BackendHandles>>);

/// One connection's cancel handles, and the role it logged in as.
type BackendHandles = (Weak<ConnectionHandle>, Weak<Canceler>, u32);

impl Backends {
    fn register(
        &self,
        pid: i32,
        handle: &Arc<ConnectionHandle>,
        canceler: &Arc<Canceler>,
        role: u32,
    ) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (h, _, _)| h.strong_count() > 0);
        map.insert(
            pid,
            (Arc::downgrade(handle), Arc::downgrade(canceler), role),
        );
    }

    /// The role a live connection logged in as.
    fn role_of(&self, pid: i32) -> Option<u32> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&pid)
            .filter(|(h, _, _)| h.strong_count() > 0)
            .map(|(_, _, role)| *role)
    }

    /// Asks a connection to cancel its running query; false if no such connection.
    fn cancel(&self, pid: i32) -> bool {
        let handles = {
            let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&pid)
                .and_then(|(h, c, _)| Some((h.upgrade()?, c.upgrade())))
        };
        match (handles, tokio::runtime::Handle::try_current()) {
            (Some((handle, canceler)), Ok(runtime)) => {
                if let Some(canceler) = canceler {
                    canceler.cancel();
                }
                runtime.spawn(async move { handle.cancel().await });
                true
            }
            _ => false,
        }
    }
}

/// Cancel requests: checked against the connection's secret key by pgwire, then applied
/// to the statement and to its streaming results.
#[derive(Debug)]
pub struct HengeCancelHandler {
    manager: Arc<ConnectionManager>,
    backends: Arc<Backends>,
}

#[async_trait]
impl pgwire::api::cancel::CancelHandler for HengeCancelHandler {
    async fn on_cancel_request(&self, request: pgwire::messages::cancel::CancelRequest) {
        if self.manager.cancel(request.pid, &request.secret_key).await {
            self.backends.cancel(request.pid);
        }
    }
}

impl Frontend {
    pub fn new(shared: Arc<Shared>, gate: Arc<Gate>) -> Frontend {
        let manager = Arc::new(ConnectionManager::new());
        let backends: Arc<Backends> = Arc::default();
        Frontend {
            shared,
            gate,
            cancel: Arc::new(HengeCancelHandler {
                manager: manager.clone(),
                backends: backends.clone(),
            }),
            manager,
            pids: Arc::new(RandomPidSecretKeyGenerator::default()),
            backends,
        }
    }

    /// The TLS acceptor, when TLS is on.
    pub fn acceptor(&self) -> Option<pgwire::tokio::TlsAcceptor> {
        self.gate.acceptor()
    }

    /// What one connection may send.
    pub fn socket_limits(&self) -> socket::SocketLimits {
        self.gate.socket_limits.clone()
    }

    /// Handlers for a new client connection.
    pub fn connection(&self, local: Option<std::net::SocketAddr>) -> ConnectionHandlers {
        let session = Arc::new(Session::new(self.shared.clone()));
        ConnectionHandlers {
            connection: Arc::new(Connection {
                parser: Arc::new(StatementParser {
                    session: session.clone(),
                }),
                session,
                manager: self.manager.clone(),
                pids: self.pids.clone(),
                backends: self.backends.clone(),
                gate: self.gate.clone(),
                exchange: Mutex::default(),
                slot: Mutex::default(),
                local,
            }),
            cancel: self.cancel.clone(),
        }
    }
}

/// One connection's handlers, as the socket loop hands them pgwire's messages.
#[derive(Clone)]
pub struct ConnectionHandlers {
    connection: Arc<Connection>,
    cancel: Arc<HengeCancelHandler>,
}

impl ConnectionHandlers {
    /// How long the session may sit idle before it is ended; zero means forever.
    fn idle_timeout(&self, in_transaction: bool) -> std::time::Duration {
        self.connection
            .session
            .settings
            .idle_timeout(in_transaction)
    }

    /// Drops a COPY FROM STDIN in progress, and the rows it read.
    fn abandon_copy(&self) {
        self.connection
            .session
            .copy_in
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

/// One client connection.
pub struct Connection {
    session: Arc<Session>,
    parser: Arc<StatementParser>,
    manager: Arc<ConnectionManager>,
    pids: Arc<RandomPidSecretKeyGenerator>,
    backends: Arc<Backends>,
    gate: Arc<Gate>,
    /// Where the password exchange stands, while the client logs in.
    exchange: Mutex<crate::auth::Exchange>,
    /// The session's place in the connection counts, held while the connection lives.
    slot: Mutex<Option<Slot>>,
    /// The server's end of the socket.
    local: Option<std::net::SocketAddr>,
}

/// An error that ends the connection.
fn fatal(code: impl Into<henge_storage::SqlState>, message: String) -> PgWireError {
    PgError::new(code.into().fatal(), message).into()
}

/// What every connection's login is checked against: the auth rules, the delay after a
/// failure and the failures so far.
pub struct Gate {
    rules: crate::auth::Rules,
    scram: crate::auth::Scram,
    /// Every session's statement_timeout and idle timeouts until it sets its own.
    session_defaults: Vec<(&'static str, String)>,
    /// What one connection may send.
    socket_limits: socket::SocketLimits,
    failure_delay: std::time::Duration,
    failures: crate::auth::Failures,
    tls: Option<crate::tls::Tls>,
    max_connections: usize,
    /// Sessions that have sent their startup message, and sessions by role.
    sessions: Mutex<Sessions>,
}

/// Counts of live sessions.
#[derive(Default)]
struct Sessions {
    all: usize,
    by_role: HashMap<u32, usize>,
}

/// Connection slots reserved for superusers (PostgreSQL's superuser_reserved_connections).
const SUPERUSER_RESERVED: usize = 3;

/// A session's place in the counts, given back when the connection ends.
pub struct Slot {
    gate: Arc<Gate>,
    role: Option<u32>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut sessions = self.gate.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.all = sessions.all.saturating_sub(1);
        if let Some(role) = self.role {
            if let Some(n) = sessions.by_role.get_mut(&role) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    sessions.by_role.remove(&role);
                }
            }
        }
    }
}

fn too_many(message: String) -> PgWireError {
    fatal("53300", message)
}

impl Gate {
    pub fn new(
        config: &crate::config::Config,
        tls: Option<crate::tls::Tls>,
    ) -> Result<Gate, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let certificate = tls.as_ref().map(|t| t.certificate_pem.as_slice());
        Ok(Gate {
            rules: crate::auth::Rules::new(&config.auth).map_err(ConfigError::Rule)?,
            scram: crate::auth::Scram::new(certificate).map_err(ConfigError::Tls)?,
            session_defaults: config
                .session_defaults()
                .iter()
                .map(|(name, value)| (*name, value.to_string()))
                .collect(),
            socket_limits: config.socket_limits(),
            failure_delay: std::time::Duration::from_millis(config.auth_failure_delay_ms),
            failures: crate::auth::Failures::default(),
            tls,
            max_connections: config.max_connections.max(1),
            sessions: Mutex::default(),
        })
    }

    /// Takes a session slot for a connection that sent its startup message; refused past
    /// `max_connections`.
    fn enter(self: &Arc<Gate>) -> Result<Slot, PgWireError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.all >= self.max_connections {
            return Err(too_many("sorry, too many clients already".into()));
        }
        sessions.all += 1;
        Ok(Slot {
            gate: self.clone(),
            role: None,
        })
    }

    /// Counts a logged-in session against its role's CONNECTION LIMIT and the slots kept
    /// for superusers.
    fn admit(&self, slot: &mut Slot, role: &henge_storage::RoleDef) -> Result<(), PgWireError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let reserved = SUPERUSER_RESERVED.min(self.max_connections.saturating_sub(1));
        if !role.superuser && sessions.all > self.max_connections - reserved {
            return Err(too_many(
                "remaining connection slots are reserved for roles with the SUPERUSER attribute"
                    .into(),
            ));
        }
        let mine = sessions.by_role.get(&role.oid).copied().unwrap_or(0);
        if !role.superuser && role.connection_limit >= 0 && mine >= role.connection_limit as usize {
            return Err(too_many(format!(
                "too many connections for role \"{}\"",
                role.name
            )));
        }
        *sessions.by_role.entry(role.oid).or_insert(0) += 1;
        slot.role = Some(role.oid);
        Ok(())
    }

    /// The acceptor that answers SSLRequest, when TLS is on.
    pub fn acceptor(&self) -> Option<pgwire::tokio::TlsAcceptor> {
        self.tls.as_ref().map(|t| t.acceptor.clone())
    }
}

fn password_failed(user: &str) -> PgWireError {
    fatal(
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )
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
        use crate::auth::{Exchange, Method};
        use pgwire::messages::startup::Authentication;
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let slot = self.gate.enter()?;
                *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(slot);
                let user = self.user(client);
                let ip = client.socket_addr().ip();
                if self.gate.tls.as_ref().is_some_and(|t| t.required) && !client.is_secure() {
                    return Err(fatal(
                        "28000",
                        format!(
                            "connection from host \"{ip}\" for user \"{user}\" refused: \
                             this server requires TLS (connect with sslmode=require)"
                        ),
                    ));
                }
                match self.gate.rules.method_for(ip) {
                    Method::Trust => self.log_in(client).await,
                    Method::Reject => Err(fatal(
                        "28000",
                        format!("no auth rule admits host \"{ip}\", user \"{user}\""),
                    )),
                    Method::Scram => {
                        let secure = client.is_secure();
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                                self.gate.scram.mechanisms(secure),
                            )))
                            .await?;
                        client.set_state(PgWireConnectionState::AuthenticationInProgress);
                        *self.exchange.lock().unwrap_or_else(|e| e.into_inner()) =
                            Exchange::Started { secure };
                        Ok(())
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let exchange =
                    std::mem::take(&mut *self.exchange.lock().unwrap_or_else(|e| e.into_inner()));
                let user = self.user(client);
                match exchange {
                    Exchange::Started { secure } => {
                        let (mechanism, data) = crate::auth::sasl_initial(message)
                            .map_err(|e| fatal("08P01", format!("malformed SASL message: {e}")))?;
                        let offered = self.gate.scram.mechanisms(secure);
                        if !offered.contains(&mechanism) {
                            return Err(fatal(
                                "08P01",
                                format!("unsupported SASL mechanism \"{mechanism}\""),
                            ));
                        }
                        let data = data.unwrap_or_default();
                        let verifier = self
                            .session
                            .shared
                            .engine
                            .access()
                            .role_named(&user)
                            .and_then(|r| r.password.clone())
                            .and_then(|v| crate::scram::parse(&v));
                        let real = verifier.is_some();
                        let secret = verifier.unwrap_or_else(|| crate::scram::doomed(&user));
                        let (first, waiting) = self
                            .gate
                            .scram
                            .for_connection(secure)
                            .on_client_first_message_with_secret(&data, secret)
                            .map_err(|e| fatal("08P01", format!("malformed SCRAM message: {e}")))?;
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(bytes::Bytes::from(first)),
                            ))
                            .await?;
                        *self.exchange.lock().unwrap_or_else(|e| e.into_inner()) =
                            Exchange::Proving {
                                waiting: Box::new(waiting),
                                real,
                            };
                        Ok(())
                    }
                    Exchange::Proving { waiting, real } => {
                        let response = message.into_sasl_response()?;
                        match waiting.on_client_final_message(&response.data) {
                            Ok(last) if real => {
                                client
                                    .feed(PgWireBackendMessage::Authentication(
                                        Authentication::SASLFinal(bytes::Bytes::from(last)),
                                    ))
                                    .await?;
                                self.log_in(client).await
                            }
                            Ok(_) | Err(PgWireError::InvalidPassword(_)) => {
                                let ip = client.socket_addr().ip();
                                let delay = self.gate.failures.failed(ip, self.gate.failure_delay);
                                tracing::info!(%user, %ip, "password authentication failed");
                                tokio::time::sleep(delay).await;
                                Err(password_failed(&user))
                            }
                            Err(e) => Err(fatal("08P01", format!("malformed SCRAM message: {e}"))),
                        }
                    }
                    Exchange::None => Err(fatal("08P01", "unexpected password message".to_owned())),
                }
            }
            _ => Ok(()),
        }
    }
}

impl Connection {
    /// The role the client named at startup.
    fn user<C: ClientInfo>(&self, client: &C) -> String {
        client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default()
    }

    /// Ends a successful authentication: checks the role may log in and the database
    /// exists, starts the session as that role and tells the client it is ready.
    async fn log_in<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = self.user(client);
        let database = client
            .metadata()
            .get(METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        let access = self.session.shared.engine.access();
        let Some(role) = access.role_named(&user) else {
            return Err(fatal("28000", format!("role \"{user}\" does not exist")));
        };
        if !role.login {
            return Err(fatal(
                "28000",
                format!("role \"{user}\" is not permitted to log in"),
            ));
        }
        if role
            .valid_until
            .is_some_and(|until| until <= chrono::Utc::now().timestamp_micros())
        {
            return Err(fatal(
                "28000",
                format!("password of role \"{user}\" has expired"),
            ));
        }
        if database != DATABASE {
            return Err(fatal(
                "3D000",
                format!("database \"{database}\" does not exist"),
            ));
        }
        {
            let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_mut() {
                Some(slot) => self.gate.admit(slot, role)?,
                None => return Err(too_many("sorry, too many clients already".into())),
            }
        }
        self.session
            .settings
            .set_identity(henge_planner::pg::settings::Identity {
                session: (role.oid, role.name.clone()),
                role: None,
                superuser: role.superuser,
            });
        for (name, value) in &self.gate.session_defaults {
            self.session
                .settings
                .set_default(name, value)
                .map_err(|e| fatal(e.code, e.message))?;
        }
        let parameters: std::collections::BTreeMap<String, String> = client
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // As in PostgreSQL, what the client sent at startup is the session's default:
        // RESET comes back to it. Custom (dotted) names are plain settings.
        for (name, value) in startup_parameters(&parameters) {
            let settings = &self.session.settings;
            let result = match settings.set_default(&name, &value) {
                Err(e) if e.code == "42704" => settings.set(&name, &value),
                other => other,
            };
            result.map_err(|e| fatal(e.code, e.message))?;
        }
        self.session
            .apply_settings()
            .map_err(|e| fatal(e.code, e.message))?;
        let (pid, secret) = self.pids.generate(&*client);
        client.set_pid_and_secret_key(pid, secret.clone());
        let (handle, guard) = self.manager.register(pid, secret);
        self.backends
            .register(pid, &handle, &self.session.canceler, role.oid);
        let backends = self.backends.clone();
        let (engine, settings) = (
            self.session.shared.engine.clone(),
            self.session.settings.clone(),
        );
        let ports = (
            self.local.map(|a| a.port()),
            Some(client.socket_addr().port()),
        );
        functions::register_transaction_id(&self.session.ctx, self.session.transaction_id.clone());
        functions::register_backend(&self.session.ctx, pid, ports, move |pid| {
            // As in PostgreSQL: a superuser cancels anything; another role the queries of
            // roles whose privileges it has, but not a superuser's.
            if let Some(owner) = backends.role_of(pid) {
                let access = engine.access();
                let me = settings.identity().current().0;
                let allowed = access.is_superuser(me)
                    || (!access.is_superuser(owner) && access.closure(me, true).contains(&owner));
                if !allowed {
                    return Err(henge_planner::pg::SqlStateError::new(
                        "42501",
                        "permission denied to cancel query",
                    )
                    .into());
                }
            }
            Ok(backends.cancel(pid))
        });
        self.session.listener.set_pid(pid);
        crate::notify::register_functions(&self.session.ctx, &self.session.listener);
        client
            .session_extensions()
            .insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert(guard);

        let parameters = ReportedParameters(self.session.settings.reported());
        finish_authentication(client, &parameters).await?;
        tracing::debug!(pid, %user, addr = %client.socket_addr(), "session started");
        Ok(())
    }
}

/// Startup parameters that are session parameters: all but the user, the database and
/// `replication`, with `options` (`-c name=value`, `--name=value`) taken apart.
fn startup_parameters(
    parameters: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in parameters {
        match name.as_str() {
            "user" | "database" | "replication" => {}
            "options" => {
                let mut words = value.split_whitespace();
                while let Some(word) = words.next() {
                    let setting = match word {
                        "-c" => words.next(),
                        w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
                    };
                    if let Some((name, value)) = setting.and_then(|s| s.split_once('=')) {
                        out.push((name.replace('-', "_"), value.to_owned()));
                    }
                }
            }
            _ => out.push((name.clone(), value.clone())),
        }
    }
    out
}

/// The parameters reported to the client when it connects.
struct ReportedParameters(Vec<(&'static str, String)>);

impl ServerParameterProvider for ReportedParameters {
    fn server_parameters<C>(&self, _client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        Some(
            self.0
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }
}

/// What a statement does to the transaction block.
enum TransactionStep<'a> {
    Begin(&'a [TransactionMode]),
    Commit,
    Rollback,
    Savepoint(SavepointStep),
    None,
}

/// SAVEPOINT, RELEASE or ROLLBACK TO, with the savepoint's name (folded to lower case
/// unless quoted, as PostgreSQL folds names).
enum SavepointStep {
    Create(String),
    Release(String),
    RollbackTo(String),
}

impl SavepointStep {
    fn tag(&self) -> &'static str {
        match self {
            SavepointStep::Create(_) => "SAVEPOINT",
            SavepointStep::Release(_) => "RELEASE",
            SavepointStep::RollbackTo(_) => "ROLLBACK",
        }
    }
}

fn savepoint_name(name: &datafusion::sql::sqlparser::ast::Ident) -> String {
    match name.quote_style {
        Some(_) => name.value.clone(),
        None => name.value.to_ascii_lowercase(),
    }
}

fn transaction_step(command: &Command) -> TransactionStep<'_> {
    match command {
        Command::Sql(s) => match s.as_ref() {
            Statement::StartTransaction { modes, .. } => TransactionStep::Begin(modes),
            Statement::Commit { .. } => TransactionStep::Commit,
            Statement::Rollback {
                savepoint: None, ..
            } => TransactionStep::Rollback,
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => TransactionStep::Savepoint(SavepointStep::RollbackTo(savepoint_name(name))),
            Statement::Savepoint { name } => {
                TransactionStep::Savepoint(SavepointStep::Create(savepoint_name(name)))
            }
            Statement::ReleaseSavepoint { name } => {
                TransactionStep::Savepoint(SavepointStep::Release(savepoint_name(name)))
            }
            _ => TransactionStep::None,
        },
        Command::Checkpoint
        | Command::Compact(_)
        | Command::Access(_)
        | Command::Stream(_)
        | Command::Alert(_)
        | Command::Replace(_)
        | Command::ResetOptions(_) => TransactionStep::None,
    }
}

/// Whether `command` is a ROLLBACK TO SAVEPOINT: the one statement besides the block's end
/// that a failed block takes, and that can make it usable again.
fn is_rollback_to(command: &Command) -> bool {
    matches!(
        transaction_step(command),
        TransactionStep::Savepoint(SavepointStep::RollbackTo(_))
    )
}

fn no_such_savepoint(e: henge_ingest::NoSuchSavepoint) -> PgError {
    PgError::new(
        code::INVALID_SAVEPOINT_SPECIFICATION,
        format!("savepoint \"{}\" does not exist", e.0),
    )
}

/// The statement, if it is one a transaction block cannot undo (DDL applies at once).
fn non_transactional(command: &Command) -> Option<&'static str> {
    match command {
        Command::Sql(s) => match s.as_ref() {
            Statement::CreateTable(_) => Some("CREATE TABLE"),
            Statement::CreateView(_) => Some("CREATE VIEW"),
            Statement::Drop {
                object_type: ObjectType::View,
                ..
            } => Some("DROP VIEW"),
            Statement::Drop { .. } => Some("DROP TABLE"),
            Statement::AlterTable(_) => Some("ALTER TABLE"),
            _ => None,
        },
        Command::Access(_) => Some("A role or privilege statement"),
        Command::Stream(_) => Some("A source or pipeline statement"),
        Command::Alert(_) => Some("An alert statement"),
        Command::ResetOptions(_) => Some("ALTER TABLE"),
        Command::Checkpoint | Command::Compact(_) | Command::Replace(_) => None,
    }
}

/// What a failed transaction block answers to anything but its end.
fn aborted_block() -> PgError {
    PgError::new(
        code::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

fn notice(code: henge_storage::SqlState, message: &str) -> PgWireBackendMessage {
    PgWireBackendMessage::NoticeResponse(NoticeResponse::from(ErrorInfo::new(
        "WARNING".into(),
        code.code().into(),
        message.into(),
    )))
}

impl Connection {
    /// Runs one statement inside the client's transaction block, as PostgreSQL would:
    /// BEGIN opens a block whose writes are staged, COMMIT applies them together, ROLLBACK
    /// discards them, savepoints keep or undo what followed them, and a failed block takes
    /// nothing but its end or a ROLLBACK TO SAVEPOINT (which makes it usable again: the
    /// caller has already moved the client's status back to in-transaction for it).
    /// Parameters that changed and are reported go to the client as ParameterStatus.
    async fn run<C>(
        &self,
        client: &mut C,
        status: &mut TransactionStatus,
        prepared: &Prepared,
        params: Vec<datafusion::scalar::ScalarValue>,
        formats: Option<&Format>,
    ) -> Result<Response, PgError>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let settings = &self.session.settings;
        let before = settings.reported();
        let epoch = settings.epoch();
        let end = || {
            for name in ["transaction_isolation", "transaction_read_only"] {
                let _ = settings.reset(name);
            }
            self.session.end_block();
        };
        let writes = &self.session.writes;
        let result = match (transaction_step(&prepared.statement), *status) {
            (TransactionStep::Commit | TransactionStep::Rollback, TransactionStatus::Error) => {
                writes.rollback().await;
                self.session.end_transaction(false);
                end();
                Ok(Response::TransactionEnd(Tag::new("ROLLBACK")))
            }
            (_, TransactionStatus::Error) => Err(aborted_block()),
            (TransactionStep::Begin(modes), current) => {
                if current == TransactionStatus::Transaction {
                    let _ = client
                        .feed(notice(
                            code::ACTIVE_SQL_TRANSACTION,
                            "there is already a transaction in progress",
                        ))
                        .await;
                }
                let started = set::transaction_modes(settings, modes, false)
                    .map(|_| Response::TransactionStart(Tag::new("BEGIN")));
                if current == TransactionStatus::Idle && started.is_ok() {
                    self.session.begin_block();
                    writes.begin().await;
                }
                started
            }
            (TransactionStep::Savepoint(step), TransactionStatus::Transaction) => {
                let tag = step.tag();
                match step {
                    SavepointStep::Create(name) => {
                        writes.savepoint(&name).await;
                        Ok(())
                    }
                    SavepointStep::Release(name) => match writes.release(&name).await {
                        Ok(found) => found.map_err(no_such_savepoint),
                        Err(e) => Err(PgError::from(e)),
                    },
                    SavepointStep::RollbackTo(name) => {
                        writes.rollback_to(&name).await.map_err(no_such_savepoint)
                    }
                }
                .map(|()| Response::Execution(Tag::new(tag)))
            }
            (TransactionStep::Savepoint(step), _) => Err(PgError::new(
                code::NO_ACTIVE_SQL_TRANSACTION,
                format!(
                    "{} can only be used in transaction blocks",
                    match step {
                        SavepointStep::Create(_) => "SAVEPOINT",
                        SavepointStep::Release(_) => "RELEASE SAVEPOINT",
                        SavepointStep::RollbackTo(_) => "ROLLBACK TO SAVEPOINT",
                    }
                ),
            )),
            (step @ (TransactionStep::Commit | TransactionStep::Rollback), current) => {
                if current == TransactionStatus::Idle {
                    let _ = client
                        .feed(notice(
                            code::NO_ACTIVE_SQL_TRANSACTION,
                            "there is no transaction in progress",
                        ))
                        .await;
                }
                let committed = if matches!(step, TransactionStep::Commit) {
                    writes
                        .commit(&self.session.shared.engine)
                        .await
                        .map(|_| "COMMIT")
                        .map_err(PgError::from)
                } else {
                    writes.rollback().await;
                    Ok("ROLLBACK")
                };
                // A block's notifications and LISTENs apply with its writes, or not at all.
                self.session
                    .listener
                    .finish(committed.is_ok() && matches!(step, TransactionStep::Commit));
                end();
                committed.map(|tag| Response::TransactionEnd(Tag::new(tag)))
            }
            (TransactionStep::None, current) => {
                if current == TransactionStatus::Transaction {
                    if let Some(what) = non_transactional(&prepared.statement) {
                        let _ = client
                            .feed(notice(
                                code::WARNING,
                                &format!(
                                    "{what} is not transactional in Henge: it applies at once, \
                                     and ROLLBACK does not undo it"
                                ),
                            ))
                            .await;
                    }
                }
                let result = self.session.execute(prepared, params, formats).await;
                for notice in self.session.take_notices() {
                    let info = ErrorInfo::new(
                        notice.severity.into(),
                        notice.code.code().into(),
                        notice.message,
                    );
                    let _ = client
                        .feed(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
                            info,
                        )))
                        .await;
                }
                result
            }
        };
        *status = match (&result, *status) {
            (Ok(Response::TransactionStart(_)), _) => TransactionStatus::Transaction,
            (Ok(Response::TransactionEnd(_)), _) => TransactionStatus::Idle,
            (Err(_), TransactionStatus::Transaction) => TransactionStatus::Error,
            (_, current) => current,
        };
        // A statement outside a block is its own transaction: what it notified goes out
        // now (rows still to stream may notify more; the socket loop sends those after).
        if *status == TransactionStatus::Idle {
            self.session.end_transaction(result.is_ok());
            let _ = crate::notify::deliver(self.session.listener.mailbox(), client).await;
        }
        // SET, RESET, DISCARD or set_config changed something: DataFusion follows.
        if settings.epoch() != epoch {
            if let Err(e) = self.session.apply_settings() {
                tracing::warn!(error = %e, "applying session settings failed");
            }
        }
        for (name, value) in settings.reported() {
            if !before.iter().any(|(n, v)| *n == name && *v == value) {
                let _ = client
                    .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                        name.to_owned(),
                        value,
                    )))
                    .await;
            }
        }
        result
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // pgwire never moves a failed block back to in-transaction, which ROLLBACK TO
        // SAVEPOINT does: the move is made before it runs (if it fails, the block is
        // failed again).
        if client.transaction_status() == TransactionStatus::Error
            && parse(&query.query)
                .ok()
                .and_then(|statements| statements.first().map(is_rollback_to))
                .unwrap_or(false)
        {
            client.set_transaction_status(TransactionStatus::Transaction);
        }
        self._on_query(client, query).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // A query string run before is not parsed again (outside a failed block, which
        // takes only its end).
        if let Some(prepared) = self.session.kept_simple(query) {
            let mut status = client.transaction_status();
            if status != TransactionStatus::Error {
                let result = self.run(client, &mut status, &prepared, Vec::new(), None);
                return Ok(vec![match result.await {
                    Ok(response) => response,
                    Err(e) => {
                        let e: PgWireError = e.into();
                        Response::Error(Box::new(ErrorInfo::from(e)))
                    }
                }]);
            }
        }
        let statements = parse(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let whole = (statements.len() == 1).then_some(query);
        let mut responses = Vec::with_capacity(statements.len());
        let mut status = client.transaction_status();
        // As in PostgreSQL, the statements of one query string run as one transaction:
        // their writes apply together, or none of them if one fails. Strings that control
        // transactions themselves, or hold a statement Henge cannot undo (CREATE and DROP
        // TABLE, CHECKPOINT) or a COPY, run statement by statement.
        let implicit = statements.len() > 1
            && status == TransactionStatus::Idle
            && statements.iter().all(|c| {
                matches!(transaction_step(c), TransactionStep::None)
                    && non_transactional(c).is_none()
                    && matches!(c, Command::Sql(s) if !matches!(s.as_ref(), Statement::Copy { .. }))
            });
        if implicit {
            self.session.begin_block();
            self.session.writes.begin().await;
            status = TransactionStatus::Transaction;
        }
        for statement in statements {
            // A failed block takes nothing but its end: not even planning is tried.
            if status == TransactionStatus::Error
                && matches!(transaction_step(&statement), TransactionStep::None)
            {
                let e: PgWireError = aborted_block().into();
                responses.push(Response::Error(Box::new(ErrorInfo::from(e))));
                break;
            }
            let result = match self.session.prepare_simple(statement, whole).await {
                Ok(prepared) => {
                    self.run(client, &mut status, &prepared, Vec::new(), None)
                        .await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(response) => {
                    if matches!(response, Response::CopyIn(_)) {
                        // pgwire keeps the status it had before the query string while a
                        // COPY is in progress, and reports that after it: give it this
                        // one (`BEGIN; COPY …` leaves a block open).
                        client.set_transaction_status(status);
                    }
                    responses.push(response)
                }
                Err(e) => {
                    let e: PgWireError = e.into();
                    responses.push(Response::Error(Box::new(ErrorInfo::from(e))));
                    break;
                }
            }
        }
        if implicit {
            let writes = &self.session.writes;
            if matches!(responses.last(), Some(Response::Error(_))) {
                writes.rollback().await;
            } else if let Err(e) = writes.commit(&self.session.shared.engine).await {
                let e: PgWireError = PgError::from(e).into();
                responses.push(Response::Error(Box::new(ErrorInfo::from(e))));
            }
            let committed = !matches!(responses.last(), Some(Response::Error(_)));
            self.session.end_transaction(committed);
            let _ = crate::notify::deliver(self.session.listener.mailbox(), client).await;
            self.session.end_block();
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
        client: &C,
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
        // A failed block takes nothing but its end: not even planning is tried.
        if client.transaction_status() == TransactionStatus::Error
            && matches!(transaction_step(&statement), TransactionStep::None)
        {
            return Err(aborted_block().into());
        }
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

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) => Some(portal),
            _ => None,
        };
        if let Some(portal) = portal {
            let statement = &portal.statement.statement.statement;
            // As in `on_query`: a ROLLBACK TO SAVEPOINT may make a failed block usable again.
            if client.transaction_status() == TransactionStatus::Error && is_rollback_to(statement)
            {
                client.set_transaction_status(TransactionStatus::Transaction);
            }
            // pgwire's portal fetch collects every row of an Execute without a row limit
            // before sending any: a query run to its end streams its rows here instead.
            let fresh = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
            if fresh
                && message.max_rows == 0
                && client.transaction_status() != TransactionStatus::Error
                && matches!(statement, Command::Sql(s) if matches!(**s, Statement::Query(_)))
                && matches!(client.state(), PgWireConnectionState::ReadyForQuery)
            {
                client.set_state(PgWireConnectionState::QueryInProgress);
                let response =
                    ExtendedQueryHandler::do_query(self, client, portal.as_ref(), 0).await?;
                *portal.state().lock().await = PortalExecutionState::Finished;
                match response {
                    Response::Query(results) => send_query_response(client, results, false).await?,
                    Response::Error(e) => return Err(PgWireError::UserError(e)),
                    _ => {
                        return Err(PgError::new(
                            code::INTERNAL_ERROR,
                            "a query answered without rows",
                        )
                        .into())
                    }
                }
                client.set_state(PgWireConnectionState::ReadyForQuery);
                return Ok(());
            }
        }
        self._on_execute(client, message).await
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

    /// As pgwire's, except that a statement with parameters and no result columns
    /// (INSERT …) is described with NoData, as PostgreSQL does, not with an empty
    /// RowDescription (which pgjdbc takes for a result set).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
            if let Some(Entry::Value(statement)) = client.portal_store().get_statement(name) {
                if Session::result_fields(&statement.statement, None).is_empty() {
                    let described = self.do_describe_statement(client, &statement).await?;
                    client
                        .feed(PgWireBackendMessage::ParameterDescription(
                            ParameterDescription::new(
                                described.parameters.iter().map(|t| t.oid()).collect(),
                            ),
                        ))
                        .await?;
                    client
                        .feed(PgWireBackendMessage::NoData(NoData::new()))
                        .await?;
                    return Ok(());
                }
            }
        }
        self._on_describe(client, message).await
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
        client: &mut C,
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
        let zone = self.session.settings.time_zone();
        let mut values = Vec::with_capacity(portal.parameter_len());
        let mut scales = Vec::with_capacity(portal.parameter_len());
        for (i, bytes) in portal.parameters.iter().enumerate() {
            let declared = portal.statement.parameter_types.get(i).cloned().flatten();
            let wanted = prepared.param_types.get(i).cloned().flatten();
            let numeric = match (&declared, &wanted) {
                (Some(declared), _) => *declared == pgwire::api::Type::NUMERIC,
                (None, Some(wanted)) => {
                    matches!(
                        wanted,
                        datafusion::arrow::datatypes::DataType::Decimal128(..)
                    )
                }
                (None, None) => false,
            };
            scales.push(
                numeric
                    .then(|| {
                        params::numeric_scale(
                            bytes.as_deref(),
                            portal.parameter_format.is_binary(i),
                        )
                    })
                    .flatten(),
            );
            values.push(params::decode(
                bytes.as_deref(),
                portal.parameter_format.is_binary(i),
                declared.as_ref(),
                wanted.as_ref(),
                &zone,
            )?);
        }
        *self
            .session
            .parameter_scales
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = scales;
        let mut status = client.transaction_status();
        Ok(self
            .run(
                client,
                &mut status,
                prepared,
                values,
                Some(&portal.result_column_format),
            )
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
        // Taken out while the rows are staged (which may wait for memory), put back after:
        // a connection's COPY messages come one at a time.
        let taken = self
            .session
            .copy_in
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut copy) = taken {
            copy::feed(&mut copy, &copy_data.data).await;
            *self
                .session
                .copy_in
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(copy);
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
        let rows = copy::finish(copy, &self.session.writes).await?;
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
